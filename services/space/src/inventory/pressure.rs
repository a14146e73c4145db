//! Pressure stall information from /proc/pressure/{cpu,memory,io} (kernel ≥ 4.20 built with
//! `CONFIG_PSI` and not booted with `psi=0`): the share of time tasks waited for each
//! resource. Each file has a `some` line and, except the system-wide CPU file before 5.13,
//! a `full` line: `some avg10=0.12 avg60=0.05 avg300=0.01 total=123456`.

use std::path::Path;

use steppps::api::space::{Pressure, PressureResource};

use super::read_text;

/// Reads the three resources under `pressure_dir` (`/proc/pressure`). `available` is true when
/// any of them could be read: without PSI the kernel creates none of the files.
pub fn pressure(pressure_dir: &Path) -> Pressure {
    let read =
        |resource: &str| read_text(&pressure_dir.join(resource)).and_then(|t| parse_resource(&t));
    let (cpu, memory, io) = (read("cpu"), read("memory"), read("io"));
    Pressure {
        available: cpu.is_some() || memory.is_some() || io.is_some(),
        cpu: cpu.unwrap_or_default(),
        memory: memory.unwrap_or_default(),
        io: io.unwrap_or_default(),
    }
}

/// Parses one /proc/pressure file. `None` when it has neither a `some` nor a `full` line.
/// Unknown keys are ignored, so fields a future kernel adds do not break parsing; a field with
/// an unparsable value stays 0.
pub fn parse_resource(text: &str) -> Option<PressureResource> {
    let mut resource = PressureResource::default();
    let mut found = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let averages = match words.next() {
            Some("some") => &mut resource.some,
            Some("full") => &mut resource.full,
            _ => continue,
        };
        found = true;
        for (key, value) in words.filter_map(|word| word.split_once('=')) {
            match key {
                "avg10" => averages.avg10 = value.parse().unwrap_or(0.0),
                "avg60" => averages.avg60 = value.parse().unwrap_or(0.0),
                "avg300" => averages.avg300 = value.parse().unwrap_or(0.0),
                "total" => averages.total_usec = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    found.then_some(resource)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use steppps::api::space::PressureAverages;

    use super::*;

    #[test]
    fn some_and_full_lines_parse() {
        let text = "some avg10=1.90 avg60=2.36 avg300=1.42 total=7621721\n\
                    full avg10=0.25 avg60=0.00 avg300=0.00 total=1200\n";
        let resource = parse_resource(text).unwrap();
        assert_eq!(
            resource.some,
            PressureAverages {
                avg10: 1.90,
                avg60: 2.36,
                avg300: 1.42,
                total_usec: 7_621_721,
            }
        );
        assert_eq!(resource.full.avg10, 0.25);
        assert_eq!(resource.full.total_usec, 1200);
    }

    #[test]
    fn old_kernel_cpu_file_without_full_line() {
        let resource = parse_resource("some avg10=0.00 avg60=0.10 avg300=0.05 total=99\n").unwrap();
        assert_eq!(resource.some.avg60, 0.10);
        assert_eq!(resource.full, PressureAverages::default());
    }

    #[test]
    fn malformed_text_does_not_panic() {
        assert_eq!(parse_resource(""), None);
        assert_eq!(parse_resource("garbage\n"), None);
        let odd = parse_resource("some avg10=x avg60 total=-1 newkey=3\n").unwrap();
        assert_eq!(odd.some, PressureAverages::default());
    }

    #[test]
    fn fixture_directory_and_missing_directory() {
        let root = tempfile::tempdir().unwrap();
        assert!(!pressure(&root.path().join("pressure")).available);
        let dir = root.path().join("pressure");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("memory"),
            "some avg10=3.00 avg60=2.00 avg300=1.00 total=5\n",
        )
        .unwrap();
        let pressure = pressure(&dir);
        assert!(pressure.available);
        assert_eq!(pressure.memory.some.avg10, 3.0);
        assert_eq!(pressure.cpu, PressureResource::default());
    }

    #[test]
    fn live_pressure_available_iff_proc_pressure_exists() {
        let pressure = crate::inventory::Collector::new().pressure();
        let exists = Path::new("/proc/pressure/cpu").exists();
        assert_eq!(pressure.available, exists);
        if exists {
            let text = fs::read_to_string("/proc/pressure/cpu").unwrap();
            assert!(text.starts_with("some avg10="));
            // The total only grows: a reading taken after ours is at least as large.
            let again = parse_resource(&text).unwrap();
            assert!(again.some.total_usec >= pressure.cpu.some.total_usec);
        }
    }
}
