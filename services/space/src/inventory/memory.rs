//! Memory and swap, from sysinfo (which reads /proc/meminfo). The "used" figure is defined
//! here rather than taken from sysinfo so that it always means total − MemAvailable, the
//! memory that cannot be had back without swapping, as the wire type documents.

use steppps::api::space::Memory;

/// The raw counters, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    pub total: u64,
    pub available: u64,
    pub free: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn memory(counters: &MemoryCounters) -> Memory {
    Memory {
        total_bytes: counters.total,
        available_bytes: counters.available,
        used_bytes: counters.total.saturating_sub(counters.available),
        free_bytes: counters.free,
        swap_total_bytes: counters.swap_total,
        swap_used_bytes: counters.swap_total.saturating_sub(counters.swap_free),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn used_is_total_minus_available() {
        let memory = memory(&MemoryCounters {
            total: 16 << 30,
            available: 10 << 30,
            free: 2 << 30,
            swap_total: 4 << 30,
            swap_free: 3 << 30,
        });
        assert_eq!(memory.used_bytes, 6 << 30);
        assert_eq!(memory.free_bytes, 2 << 30);
        assert_eq!(memory.swap_used_bytes, 1 << 30);
        // Counters read at different instants must not underflow.
        let odd = super::memory(&MemoryCounters {
            total: 1,
            available: 2,
            ..MemoryCounters::default()
        });
        assert_eq!(odd.used_bytes, 0);
    }

    /// MemTotal in bytes, read straight from /proc/meminfo.
    fn meminfo_kib(key: &str) -> u64 {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap();
        let line = text
            .lines()
            .find(|line| line.split(':').next() == Some(key))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn live_total_equals_proc_meminfo() {
        let memory = crate::inventory::Collector::new().memory();
        assert!(memory.total_bytes > 0);
        assert_eq!(memory.total_bytes, meminfo_kib("MemTotal") * 1024);
        assert_eq!(memory.swap_total_bytes, meminfo_kib("SwapTotal") * 1024);
        assert!(memory.available_bytes <= memory.total_bytes);
        assert_eq!(
            memory.used_bytes,
            memory.total_bytes - memory.available_bytes
        );
    }
}
