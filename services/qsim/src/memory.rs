//! Does a state vector fit? `16 · 2^n` bytes for `n` qubits, compared with the memory the
//! machine has available (or a limit the caller sets).

/// The largest register the simulator accepts at all (2^40 amplitudes is 16 TiB).
pub const MAX_QUBITS: usize = 40;

/// Bytes a state vector of `num_qubits` needs, or `None` when it does not fit in a `u128`.
pub fn state_bytes(num_qubits: usize) -> Option<u128> {
    if num_qubits >= 120 {
        None
    } else {
        Some(16u128 << num_qubits)
    }
}

/// Human size: `256.0 MiB`, `16.0 EiB`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Memory a new state vector may take, in bytes: `MemAvailable` from `/proc/meminfo`, or, where
/// that file is hidden (a sandbox with `ProcSubset=pid`), the unused RAM sysinfo(2) reports.
/// The fallback leaves out reclaimable cache, so it refuses sooner rather than letting an
/// allocation fail (which aborts the process).
pub fn available_memory() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text))
        .or_else(unused_ram)
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Free RAM from sysinfo(2), which needs no file system.
fn unused_ram() -> Option<u64> {
    nix::sys::sysinfo::sysinfo()
        .ok()
        .map(|info| info.ram_unused())
}

/// The state of a circuit would not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemoryError {
    pub num_qubits: usize,
    pub message: String,
}

/// Refuses `num_qubits` when its state vector exceeds `limit` bytes (the machine's available
/// memory when `None`) or [`MAX_QUBITS`].
pub fn check(num_qubits: usize, limit: Option<u64>) -> Result<u128, MemoryError> {
    check_states(num_qubits, 1, limit)
}

/// Like [`check`] for a run that holds `states` state vectors at once (a circuit with
/// measurements before its end keeps the state before them and works on a copy).
pub fn check_states(
    num_qubits: usize,
    states: u32,
    limit: Option<u64>,
) -> Result<u128, MemoryError> {
    let states = states.max(1);
    let per_state = state_bytes(num_qubits);
    let needed = per_state.and_then(|b| b.checked_mul(u128::from(states)));
    let needs = match per_state {
        None => format!("a {num_qubits}-qubit state vector needs more than 2^120 bytes"),
        Some(b) => {
            let one = format!(
                "a {num_qubits}-qubit state vector needs {} (2^{num_qubits} amplitudes × 16 bytes)",
                human_bytes(b)
            );
            match needed.filter(|_| states > 1) {
                Some(all) => format!(
                    "{one}, and this run keeps {states} of them ({} in all)",
                    human_bytes(all)
                ),
                None => one,
            }
        }
    };
    let limit = limit.or_else(available_memory);
    match (needed, limit) {
        (Some(b), Some(l)) if num_qubits <= MAX_QUBITS && b <= l as u128 => Ok(b),
        (Some(b), None) if num_qubits <= MAX_QUBITS => Ok(b),
        (_, Some(l)) => Err(MemoryError {
            num_qubits,
            message: format!(
                "{needs}, but only {} of memory is available; use fewer qubits",
                human_bytes(l as u128)
            ),
        }),
        (_, None) => Err(MemoryError {
            num_qubits,
            message: format!("{needs}; the simulator's limit is {MAX_QUBITS} qubits"),
        }),
    }
}

/// The system refused the memory for a state vector even though the check passed (it was
/// taken by someone else in between, or an overcommit policy says no).
pub fn allocation_failed(num_qubits: usize) -> MemoryError {
    let size =
        state_bytes(num_qubits).map_or_else(|| "more than 2^120 bytes".to_string(), human_bytes);
    MemoryError {
        num_qubits,
        message: format!(
            "the system refused the {size} a {num_qubits}-qubit state vector needs; \
             free memory or use fewer qubits"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_comes_from_meminfo_or_sysinfo() {
        let meminfo = "MemTotal:        2014000 kB\nMemFree:          900000 kB\nMemAvailable:    1500000 kB\n";
        assert_eq!(mem_available(meminfo), Some(1_500_000 * 1024));
        assert_eq!(mem_available("MemTotal: 2014000 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots kB\n"), None);
        // The fallback for a sandbox without /proc/meminfo reads the kernel directly.
        let unused = unused_ram().unwrap();
        assert!(unused > 0);
        assert!(available_memory().unwrap() > 0);
    }

    #[test]
    fn sixty_qubits_are_refused_saying_how_much() {
        let e = check(60, Some(8 << 30)).unwrap_err();
        assert!(e.message.contains("16.0 EiB"), "{}", e.message);
        assert!(e.message.contains("8.0 GiB"), "{}", e.message);
        assert!(check(20, Some(8 << 30)).is_ok());
        assert!(check(30, Some(1 << 30)).is_err());
        assert_eq!(human_bytes(16 << 20), "16.0 MiB");
    }

    #[test]
    fn a_run_that_keeps_two_states_needs_room_for_both() {
        let gib = 1u64 << 30;
        // 26 qubits: 1 GiB per state vector.
        assert_eq!(check_states(26, 1, Some(3 * gib / 2)), Ok(gib as u128));
        let e = check_states(26, 2, Some(3 * gib / 2)).unwrap_err();
        assert!(
            e.message.contains("keeps 2 of them (2.0 GiB in all)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("only 1.5 GiB"), "{}", e.message);
        assert_eq!(check_states(26, 2, Some(2 * gib)), Ok(2 * gib as u128));
    }
}
