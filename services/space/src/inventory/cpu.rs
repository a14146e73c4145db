//! The processor: model, vendor and frequency from sysinfo; feature flags from /proc/cpuinfo
//! (`flags` on x86, `Features` on ARM), which sysinfo does not expose; the online CPU count
//! from `/sys/devices/system/cpu/online` (what `nproc` counts, ignoring this process's
//! affinity); physical cores from each online CPU's `topology/`.

use std::collections::BTreeSet;
use std::path::Path;

use steppps::api::space::Cpu;

use super::read_parsed;

/// What sysinfo knows about the first CPU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SysinfoCpu {
    pub brand: String,
    pub vendor: String,
    pub frequency_mhz: u64,
    /// How many CPUs sysinfo found (in /proc/stat); used when sysfs has no `online` list.
    pub count: usize,
}

/// Assembles [`Cpu`] from /proc/cpuinfo, the online CPU list and sysinfo.
pub fn cpu(
    cpuinfo: &str,
    online: &[u32],
    physical_cores: u32,
    from_sysinfo: &SysinfoCpu,
    load_average: (f64, f64, f64),
) -> Cpu {
    let from_cpuinfo = CpuInfo::parse(cpuinfo);
    let logical_cpus = if !online.is_empty() {
        online.len()
    } else if from_cpuinfo.processors > 0 {
        from_cpuinfo.processors
    } else {
        from_sysinfo.count
    };
    Cpu {
        model: first_non_empty(&from_sysinfo.brand, &from_cpuinfo.model_name),
        vendor: first_non_empty(&from_sysinfo.vendor, &from_cpuinfo.vendor_id),
        physical_cores,
        logical_cpus: u32::try_from(logical_cpus).unwrap_or(u32::MAX),
        frequency_mhz: from_sysinfo.frequency_mhz,
        flags: from_cpuinfo.flags,
        load_average,
    }
}

fn first_non_empty(preferred: &str, fallback: &str) -> String {
    if preferred.is_empty() {
        fallback.to_owned()
    } else {
        preferred.to_owned()
    }
}

/// The parts of /proc/cpuinfo the inventory uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// `processor` stanzas.
    pub processors: usize,
    /// `model name` of the first processor (x86, and some ARM kernels).
    pub model_name: String,
    /// `vendor_id` of the first processor (x86 only).
    pub vendor_id: String,
    /// Flags every listed processor has, sorted and without duplicates.
    pub flags: Vec<String>,
}

impl CpuInfo {
    pub fn parse(cpuinfo: &str) -> CpuInfo {
        let mut info = CpuInfo::default();
        // Intersected rather than united: on hybrid parts a program may run on any core, so a
        // flag only counts when every core reports it.
        let mut common_flags: Option<BTreeSet<&str>> = None;
        for line in cpuinfo.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "processor" => info.processors += 1,
                "model name" if info.model_name.is_empty() => {
                    value.clone_into(&mut info.model_name)
                }
                "vendor_id" if info.vendor_id.is_empty() => value.clone_into(&mut info.vendor_id),
                "flags" | "Features" => {
                    let flags: BTreeSet<&str> = value.split_whitespace().collect();
                    common_flags = Some(match common_flags {
                        None => flags,
                        Some(common) => common.intersection(&flags).copied().collect(),
                    });
                }
                _ => {}
            }
        }
        info.flags = common_flags
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect();
        info
    }
}

/// Parses a kernel CPU list such as `0-3,8-11,15` (the format of
/// `/sys/devices/system/cpu/online`). `None` when the text is not such a list.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut cpus = BTreeSet::new();
    for range in text.split(',') {
        let (first, last): (u32, u32) = match range.split_once('-') {
            Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
            None => {
                let cpu = range.trim().parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus.into_iter().collect())
}

/// Counts distinct (package, core) pairs over the online CPUs' `topology/` directories under
/// `cpu_dir` (`/sys/devices/system/cpu`). 0 when no CPU exposes its topology.
pub fn physical_cores(cpu_dir: &Path, online: &[u32]) -> u32 {
    let cores: BTreeSet<(i64, i64)> = online
        .iter()
        .filter_map(|cpu| {
            let topology = cpu_dir.join(format!("cpu{cpu}/topology"));
            // Signed: some ARM firmware reports a package id of -1.
            let package = read_parsed::<i64>(&topology, "physical_package_id")?;
            let core = read_parsed::<i64>(&topology, "core_id")?;
            Some((package, core))
        })
        .collect();
    u32::try_from(cores.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;

    /// Two processors of a KVM guest on AMD EPYC (fields trimmed, flags lines as printed).
    const X86_CPUINFO: &str = "\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9654 96-Core Processor
stepping\t: 1
cpu MHz\t\t: 2596.130
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 2
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ht syscall nx lm pni ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c rdrand hypervisor avx2 bmi1 bmi2 avx512f
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2
bogomips\t: 5192.26

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ht syscall nx lm pni ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c rdrand hypervisor avx2 bmi1 bmi2 avx512f
bogomips\t: 5192.26
";

    /// A Raspberry Pi 4 (Cortex-A72), 64-bit kernel: no model name, `Features` not `flags`.
    const ARM_CPUINFO: &str = "\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

processor\t: 1
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Revision\t: c03111
Serial\t\t: 10000000a1b2c3d4
Model\t\t: Raspberry Pi 4 Model B Rev 1.1
";

    #[test]
    fn x86_cpuinfo_gives_sorted_flags_model_and_vendor() {
        let info = CpuInfo::parse(X86_CPUINFO);
        assert_eq!(info.processors, 2);
        assert_eq!(info.model_name, "AMD EPYC 9654 96-Core Processor");
        assert_eq!(info.vendor_id, "AuthenticAMD");
        assert_eq!(info.flags.len(), 35);
        assert!(info.flags.windows(2).all(|pair| pair[0] < pair[1]));
        let cpu = cpu(
            X86_CPUINFO,
            &[0, 1],
            1,
            &SysinfoCpu::default(),
            (0.5, 0.25, 0.0),
        );
        assert!(cpu.has_flag("avx2"));
        assert!(cpu.has_flag("sse4_2"));
        assert!(!cpu.has_flag("asimd"));
        assert_eq!(cpu.model, "AMD EPYC 9654 96-Core Processor");
        assert_eq!(cpu.vendor, "AuthenticAMD");
        assert_eq!(cpu.logical_cpus, 2);
        assert_eq!(cpu.physical_cores, 1);
        assert_eq!(cpu.load_average, (0.5, 0.25, 0.0));
    }

    #[test]
    fn arm_cpuinfo_uses_features_and_sysinfo_brand() {
        let info = CpuInfo::parse(ARM_CPUINFO);
        assert_eq!(info.processors, 2);
        assert_eq!(info.flags, ["asimd", "cpuid", "crc32", "evtstrm", "fp"]);
        assert_eq!(info.model_name, "");
        let from_sysinfo = SysinfoCpu {
            brand: "Cortex-A72".into(),
            vendor: "ARM".into(),
            frequency_mhz: 1800,
            count: 2,
        };
        let cpu = cpu(ARM_CPUINFO, &[], 0, &from_sysinfo, (0.0, 0.0, 0.0));
        assert_eq!(cpu.model, "Cortex-A72");
        assert_eq!(cpu.vendor, "ARM");
        assert_eq!(cpu.frequency_mhz, 1800);
        // No online list: the processor stanzas count.
        assert_eq!(cpu.logical_cpus, 2);
        assert!(cpu.has_flag("asimd"));
    }

    #[test]
    fn flags_are_those_every_core_has() {
        let hybrid = "processor : 0\nflags : b a c a\nprocessor : 1\nflags : c a d\n";
        assert_eq!(CpuInfo::parse(hybrid).flags, ["a", "c"]);
        assert!(CpuInfo::parse("garbage\n:::\n").flags.is_empty());
    }

    #[test]
    fn cpu_lists_parse_ranges_and_reject_garbage() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a-b"), None);
    }

    #[test]
    fn physical_cores_count_distinct_package_core_pairs() {
        let dir = tempfile::tempdir().unwrap();
        // Two packages, two cores each, two threads per core; cpu7 is offline.
        for cpu in 0..8u32 {
            let topology = dir.path().join(format!("cpu{cpu}/topology"));
            fs::create_dir_all(&topology).unwrap();
            fs::write(
                topology.join("physical_package_id"),
                format!("{}\n", cpu / 4),
            )
            .unwrap();
            fs::write(topology.join("core_id"), format!("{}\n", (cpu / 2) % 2)).unwrap();
        }
        assert_eq!(physical_cores(dir.path(), &[0, 1, 2, 3, 4, 5, 6, 7]), 4);
        assert_eq!(physical_cores(dir.path(), &[0, 1, 2, 3]), 2);
        assert_eq!(physical_cores(&dir.path().join("missing"), &[0, 1]), 0);
    }

    #[test]
    fn live_logical_cpus_equal_nproc() {
        let nproc = std::process::Command::new("nproc").output().unwrap();
        let nproc: u32 = String::from_utf8_lossy(&nproc.stdout)
            .trim()
            .parse()
            .unwrap();
        let cpu = crate::inventory::Collector::new().cpu();
        assert_eq!(cpu.logical_cpus, nproc);
        assert!(cpu.physical_cores >= 1 && cpu.physical_cores <= cpu.logical_cpus);
        assert!(!cpu.model.is_empty());
        assert!(!cpu.flags.is_empty());
        assert!(cpu.flags.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
