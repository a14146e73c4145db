//! `qos-image bench`: the boot benchmark. Boots the live and the baseline ISO the same
//! number of times under the same qemu settings and compares: time to multi-user.target
//! and to steppps.target (seen on the console, from qemu's start, firmware included; and
//! systemd's own monotonic timestamps, from kernel start), memory used after boot, and the
//! QuantumOS daemons' RSS. Nothing is added to either image: the figures are read through
//! the live session's autologin shell on the serial console.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::qemu::{Console, Vm};

/// Typed into the guest's shell. `"-"` keeps the echo of the typed line from matching.
/// Per daemon: VmRSS and RssAnon from /proc/PID/status (readable by the live user), Pss from
/// smaps_rollup (root's processes: through the live user's sudo). CPU time: `usage_usec` of
/// each daemon's unit cgroup (systemd-executor building its sandbox included) and of the root
/// cgroup (the whole system since the kernel started), from cgroup v2's cpu.stat.
const PROBE: &str = "sleep 10; w=$(systemctl show -P Wants steppps.target 2>/dev/null); r=0; a=0; s=0; c=0; \
for p in $( [ -n \"$w\" ] && systemctl show -P MainPID $w); do [ \"$p\" -gt 0 ] && \
r=$((r + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))) && \
a=$((a + $(awk '/^RssAnon/ {print $2}' /proc/$p/status))) && \
s=$((s + $(sudo -n awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0))); done; \
for g in $( [ -n \"$w\" ] && systemctl show -P ControlGroup $w); do \
c=$((c + $(awk '/^usage_usec/ {print $2}' /sys/fs/cgroup$g/cpu.stat 2>/dev/null || echo 0))); done; \
echo QOS-BENCH\"-\"RESULT mu=$(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target) \
st=$(systemctl show -P ActiveEnterTimestampMonotonic steppps.target 2>/dev/null) \
used=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t-a}' /proc/meminfo) rss=$r anon=$a pss=$s \
cpu=$c syscpu=$(awk '/^usage_usec/ {print $2}' /sys/fs/cgroup/cpu.stat)\n";

const RESULT: &str = "QOS-BENCH-RESULT ";

/// One boot's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds from qemu's start to the console line `Reached target multi-user.target`.
    pub console_multi_user_s: Option<f64>,
    /// Seconds from qemu's start to `Reached target steppps.target`.
    pub console_steppps_s: Option<f64>,
    /// systemd's ActiveEnterTimestampMonotonic of multi-user.target, seconds from kernel start.
    pub multi_user_s: Option<f64>,
    pub steppps_s: Option<f64>,
    /// MemTotal − MemAvailable, KiB, ten seconds after login.
    pub used_kib: Option<u64>,
    /// Sum of VmRSS of the services steppps.target wants, KiB. Most of it is page cache:
    /// the pages of the binaries and shared libraries each daemon has mapped, counted once
    /// per process, and not part of "used" (MemAvailable counts page cache as available).
    pub daemons_rss_kib: Option<u64>,
    /// Sum of their anonymous resident memory (RssAnon): heap, stacks, relocated data.
    pub daemons_anon_kib: Option<u64>,
    /// Sum of their proportional set sizes: each shared page divided among its users.
    pub daemons_pss_kib: Option<u64>,
    /// CPU seconds the daemons' units used from their start to the probe.
    pub daemons_cpu_s: Option<f64>,
    /// CPU seconds the whole system used from kernel start to the probe (all vCPUs). The boot
    /// under TCG is CPU-bound, and this varies less between boots than the times do.
    pub system_cpu_s: Option<f64>,
}

impl Sample {
    /// Boot completion as the benchmark counts it: multi-user.target and, when the image
    /// has one, steppps.target (from kernel start).
    pub fn ready_s(&self) -> Option<f64> {
        match (self.multi_user_s, self.steppps_s) {
            (Some(m), Some(s)) => Some(m.max(s)),
            (m, None) => m,
            (None, s) => s,
        }
    }
}

impl Sample {
    /// The same, seen on the console from qemu's start (firmware and loader included).
    pub fn console_ready_s(&self) -> Option<f64> {
        match (self.console_multi_user_s, self.console_steppps_s) {
            (Some(m), Some(s)) => Some(m.max(s)),
            (m, None) => m,
            (None, s) => s,
        }
    }
}

/// Parses `QOS-BENCH-RESULT mu=… st=… used=… rss=…`.
pub fn parse_result(line: &str, sample: &mut Sample) -> bool {
    let Some(i) = line.find(RESULT) else {
        return false;
    };
    for field in line[i + RESULT.len()..].split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let number: Option<u64> = value.parse().ok().filter(|v| *v > 0);
        match key {
            "mu" => sample.multi_user_s = number.map(|us| us as f64 / 1e6),
            "st" => sample.steppps_s = number.map(|us| us as f64 / 1e6),
            "used" => sample.used_kib = number,
            "rss" => sample.daemons_rss_kib = value.parse().ok(),
            "anon" => sample.daemons_anon_kib = value.parse().ok(),
            "pss" => sample.daemons_pss_kib = value.parse().ok(),
            "cpu" => sample.daemons_cpu_s = number.map(|us| us as f64 / 1e6),
            "syscpu" => sample.system_cpu_s = number.map(|us| us as f64 / 1e6),
            _ => {}
        }
    }
    true
}

/// Boots `vm` once and measures.
pub fn measure(vm: &Vm, log: &Path, timeout: Duration) -> Result<Sample> {
    let mut console = Console::start(vm, log)?;
    let deadline = Instant::now() + timeout;
    let mut sample = Sample::default();
    let mut sent = false;
    let mut done = false;
    while let Some(line) = console.next_line(deadline) {
        let at = line.at.as_secs_f64();
        if line.text.contains("Reached target multi-user.target") {
            sample.console_multi_user_s.get_or_insert(at);
        }
        if line.text.contains("Reached target steppps.target") {
            sample.console_steppps_s.get_or_insert(at);
        }
        if !sent && line.text.contains("(automatic login)") {
            // Let the shell start before typing.
            std::thread::sleep(Duration::from_secs(2));
            console.send(PROBE)?;
            sent = true;
        }
        if parse_result(&line.text, &mut sample) {
            done = true;
            break;
        }
    }
    console.stop();
    if !done {
        bail!(
            "no benchmark result from {} within {} s (console: {})",
            vm.iso.display(),
            timeout.as_secs(),
            log.display()
        );
    }
    Ok(sample)
}

/// The fastest, the median and the slowest of one image's boots, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// Boots of one image that differ by more than this fraction of their median make the
/// ratio's pass or fail against 1.10 a matter of luck.
pub const NOISY_SPREAD: f64 = 0.10;

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let v: Vec<f64> = values.into_iter().collect();
        Some(Spread {
            min: v.iter().copied().reduce(f64::min)?,
            median: median(v.iter().copied())?,
            max: v.iter().copied().reduce(f64::max)?,
        })
    }

    /// (slowest − fastest) / median.
    pub fn relative(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub runs: usize,
    pub live: Vec<Sample>,
    pub baseline: Vec<Sample>,
    /// Seconds from kernel start to ready (live) and to multi-user.target (baseline).
    pub live_ready: Option<Spread>,
    pub baseline_ready: Option<Spread>,
    pub boot_ratio: Option<f64>,
    pub console_boot_ratio: Option<f64>,
    /// Median daemons' RSS / median used memory (the goal: ≤ 0.10).
    pub daemons_share_of_used: Option<f64>,
    /// The same with PSS and with anonymous memory in place of RSS.
    pub daemons_pss_share_of_used: Option<f64>,
    pub daemons_anon_share_of_used: Option<f64>,
    /// Medians: the daemons' CPU seconds, and the system's (live / baseline).
    pub daemons_cpu_s: Option<f64>,
    pub system_cpu_ratio: Option<f64>,
}

pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

pub fn report(live: Vec<Sample>, baseline: Vec<Sample>) -> Report {
    let live_ready = Spread::of(live.iter().filter_map(Sample::ready_s));
    let baseline_ready = Spread::of(baseline.iter().filter_map(Sample::ready_s));
    let console_live = median(live.iter().filter_map(Sample::console_ready_s));
    let console_base = median(baseline.iter().filter_map(|s| s.console_multi_user_s));
    let live_median = |field: fn(&Sample) -> Option<u64>| {
        median(live.iter().filter_map(|s| field(s).map(|v| v as f64)))
    };
    let rss = live_median(|s| s.daemons_rss_kib);
    // A guest whose sudo refused reports PSS 0: no figure rather than a wrong one.
    let pss = live_median(|s| s.daemons_pss_kib.filter(|v| *v > 0));
    let anon = live_median(|s| s.daemons_anon_kib);
    let used = live_median(|s| s.used_kib);
    let system_cpu = |samples: &[Sample]| median(samples.iter().filter_map(|s| s.system_cpu_s));
    Report {
        runs: live.len(),
        boot_ratio: ratio(
            live_ready.map(|s| s.median),
            baseline_ready.map(|s| s.median),
        ),
        live_ready,
        baseline_ready,
        console_boot_ratio: ratio(console_live, console_base),
        daemons_share_of_used: ratio(rss, used),
        daemons_pss_share_of_used: ratio(pss, used),
        daemons_anon_share_of_used: ratio(anon, used),
        daemons_cpu_s: median(live.iter().filter_map(|s| s.daemons_cpu_s)),
        system_cpu_ratio: ratio(system_cpu(&live), system_cpu(&baseline)),
        live,
        baseline,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub fn print(report: &Report) {
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let kib = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{:.1}", v as f64 / 1024.0));
    println!(
        "{:<9} {:>3} {:>12} {:>12} {:>12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "image",
        "run",
        "console m-u",
        "console st",
        "m-u (s)",
        "steppps (s)",
        "used MiB",
        "RSS MiB",
        "PSS MiB",
        "anon MiB",
        "CPU s",
        "sys CPU s"
    );
    for (name, samples) in [("live", &report.live), ("baseline", &report.baseline)] {
        for (i, s) in samples.iter().enumerate() {
            println!(
                "{:<9} {:>3} {:>12} {:>12} {:>12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                i + 1,
                show(s.console_multi_user_s),
                show(s.console_steppps_s),
                show(s.multi_user_s),
                show(s.steppps_s),
                kib(s.used_kib),
                kib(s.daemons_rss_kib),
                kib(s.daemons_pss_kib),
                kib(s.daemons_anon_kib),
                show(s.daemons_cpu_s),
                show(s.system_cpu_s)
            );
        }
    }
    let r = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "boot ratio (live steppps.target / baseline multi-user.target, from kernel start, medians): {} (goal ≤ 1.10)",
        r(report.boot_ratio)
    );
    println!(
        "boot ratio (same, on the console from qemu start, firmware included): {}",
        r(report.console_boot_ratio)
    );
    let range = |s: Option<Spread>| {
        s.map_or("-".to_string(), |s| {
            format!("{:.1} s ({:.1}–{:.1})", s.median, s.min, s.max)
        })
    };
    println!(
        "ready from kernel start, median (fastest–slowest): live {}, baseline {}",
        range(report.live_ready),
        range(report.baseline_ready)
    );
    if let Some(warning) = noise_warning(report) {
        println!("{warning}");
    }
    println!(
        "daemons' RSS / used memory (live, medians): {} (goal ≤ 0.10)",
        r(report.daemons_share_of_used)
    );
    println!(
        "daemons' PSS / used memory: {}; anonymous memory / used memory: {}",
        r(report.daemons_pss_share_of_used),
        r(report.daemons_anon_share_of_used)
    );
    println!(
        "CPU to the probe (medians): the daemons' units {} s; the whole system, live / baseline {}",
        show(report.daemons_cpu_s),
        r(report.system_cpu_ratio)
    );
}

/// A warning when one image's boots differ so much that the boot ratio says little.
pub fn noise_warning(report: &Report) -> Option<String> {
    let widest = [report.live_ready, report.baseline_ready]
        .into_iter()
        .flatten()
        .map(|s| s.relative())
        .reduce(f64::max)?;
    (widest > NOISY_SPREAD).then(|| {
        format!(
            "warning: one image's boots differ by {:.0} % of their median (more than {:.0} %): \
             the host was busy or the guest's timing varied, so the boot ratio is uncertain; \
             boot again on an idle host or with more runs (RUNS={})",
            widest * 100.0,
            NOISY_SPREAD * 100.0,
            (report.runs * 2).max(5)
        )
    })
}

pub fn write_json(report: &Report, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_line_parses() {
        let mut s = Sample::default();
        assert!(parse_result(
            "quantum@quantumos:~$ QOS-BENCH-RESULT mu=41000000 st=42500000 used=180000 rss=9000 anon=1000 pss=6000 cpu=8250000 syscpu=80000000",
            &mut s
        ));
        assert_eq!(s.daemons_cpu_s, Some(8.25));
        assert_eq!(s.system_cpu_s, Some(80.0));
        assert_eq!(s.multi_user_s, Some(41.0));
        assert_eq!(s.ready_s(), Some(42.5));
        assert_eq!(s.daemons_rss_kib, Some(9000));
        assert_eq!(s.daemons_anon_kib, Some(1000));
        assert_eq!(s.daemons_pss_kib, Some(6000));
        let r = report(vec![s.clone(), s], vec![]);
        assert_eq!(r.daemons_share_of_used, Some(0.05));
        assert_eq!(r.daemons_pss_share_of_used, Some(6000.0 / 180000.0));
        assert_eq!(r.daemons_anon_share_of_used, Some(1000.0 / 180000.0));
        assert_eq!(r.daemons_cpu_s, Some(8.25));
        // No baseline boots: no system CPU ratio.
        assert_eq!(r.system_cpu_ratio, None);
    }

    #[test]
    fn system_cpu_is_compared_with_the_baseline() {
        let boot = |line: &str| {
            let mut s = Sample::default();
            assert!(parse_result(line, &mut s));
            s
        };
        let live = boot(
            "QOS-BENCH-RESULT mu=1 st=2 used=3 rss=4 anon=5 pss=6 cpu=9000000 syscpu=88000000",
        );
        // The baseline has no daemons: no steppps.target, no cgroups to add up.
        let baseline =
            boot("QOS-BENCH-RESULT mu=1 st= used=3 rss=0 anon=0 pss=0 cpu=0 syscpu=80000000");
        assert_eq!(baseline.daemons_cpu_s, None);
        let r = report(vec![live], vec![baseline]);
        assert_eq!(r.system_cpu_ratio, Some(1.1));
    }

    #[test]
    fn the_typed_command_is_not_a_result() {
        let mut s = Sample::default();
        assert!(!parse_result("echo QOS-BENCH\"-\"RESULT mu=$(…)", &mut s));
    }

    #[test]
    fn baseline_without_steppps_counts_multi_user() {
        let mut s = Sample::default();
        parse_result("QOS-BENCH-RESULT mu=30000000 st=0 used=1 rss=0", &mut s);
        assert_eq!(s.ready_s(), Some(30.0));
        let r = report(
            vec![Sample {
                multi_user_s: Some(30.0),
                steppps_s: Some(33.0),
                ..Default::default()
            }],
            vec![s],
        );
        assert!((r.boot_ratio.unwrap_or(0.0) - 1.1).abs() < 1e-9);
    }

    #[test]
    fn console_readiness_waits_for_both_targets() {
        let s = Sample {
            console_multi_user_s: Some(396.2),
            console_steppps_s: Some(375.7),
            ..Default::default()
        };
        assert_eq!(s.console_ready_s(), Some(396.2));
    }

    #[test]
    fn boots_that_differ_widely_are_flagged_as_noise() {
        let boot = |ready: f64| Sample {
            multi_user_s: Some(ready),
            ..Default::default()
        };
        // The 02:20 UTC run in docs/benchmarks.md: the live boots spread over 28 % of their median.
        let noisy = report(
            vec![boot(43.6), boot(48.9), boot(36.5)],
            vec![boot(34.0), boot(36.0), boot(37.4)],
        );
        assert_eq!(
            noisy.live_ready,
            Some(Spread {
                min: 36.5,
                median: 43.6,
                max: 48.9
            })
        );
        assert!((noisy.boot_ratio.unwrap_or(0.0) - 43.6 / 36.0).abs() < 1e-9);
        let warning = noise_warning(&noisy).unwrap_or_default();
        assert!(warning.contains("differ by 28 %"), "{warning}");
        assert!(warning.contains("(RUNS=6)"), "{warning}");
        // Boots within a few percent of each other give a ratio worth reading.
        let steady = report(
            vec![boot(36.3), boot(36.4), boot(34.9)],
            vec![boot(28.3), boot(29.0), boot(28.0)],
        );
        assert_eq!(noise_warning(&steady), None);
        assert_eq!(noise_warning(&report(vec![], vec![])), None);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0]), Some(2.5));
        assert_eq!(median([]), None);
    }
}
