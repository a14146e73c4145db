//! `qos-image test` and `qos-image boot --until`: boot an ISO headless, follow its serial
//! console, and decide.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::qemu::{Console, ConsoleLine, Vm};
use crate::selftest::{self, JOURNAL_MARKER};

/// Lines that mean the boot will not get anywhere: stop waiting at once.
const FATAL: &[&str] = &[
    "Kernel panic",
    "You are in emergency mode",
    "Entering emergency mode",
    "dracut Warning: Could not boot",
    "Cannot open access to console, the root account is locked",
];

fn fatal(line: &ConsoleLine) -> Option<&'static str> {
    FATAL.iter().copied().find(|f| line.text.contains(f))
}

fn print_tail(console_log: &Path, n: usize) {
    eprintln!(
        "---- last {n} lines of the serial console ({})",
        console_log.display()
    );
    for line in crate::run::tail_lines(console_log, n).unwrap_or_default() {
        eprintln!("    {line}");
    }
    eprintln!("----");
}

/// Boots and waits until a console line contains `text`; prints when it came.
pub fn boot_until(vm: &Vm, text: &str, timeout: Duration, log: &Path) -> Result<Duration> {
    eprintln!(
        "Booting {} headless ({:?}, {:?}); waiting up to {} s for {text:?} (console: {})",
        vm.iso.display(),
        vm.media,
        vm.accel,
        timeout.as_secs(),
        log.display()
    );
    let mut console = Console::start(vm, log)?;
    let deadline = Instant::now() + timeout;
    let mut fatal_seen = None;
    let found = console.wait_for(deadline, |line| {
        fatal_seen = fatal(line);
        fatal_seen.is_some() || line.text.contains(text)
    });
    let elapsed = console.elapsed();
    console.stop();
    match (found, fatal_seen) {
        (Some(line), None) => {
            eprintln!(
                "Reached {text:?} {:.1} s after qemu started",
                line.at.as_secs_f64()
            );
            Ok(line.at)
        }
        (_, Some(what)) => {
            print_tail(log, 40);
            bail!("the boot failed: the console says {what:?}")
        }
        (None, None) => {
            print_tail(log, 40);
            bail!(
                "{text:?} did not appear within {:.0} s (the VM ran {:.0} s)",
                timeout.as_secs_f64(),
                elapsed.as_secs_f64()
            )
        }
    }
}

/// The boot test: waits for the test profile's result line and asserts on it.
pub fn run(vm: &Vm, timeout: Duration, log: &Path) -> Result<()> {
    eprintln!(
        "Boot test: {} as {:?} under {:?}, timeout {} s (console: {})",
        vm.iso.display(),
        vm.media,
        vm.accel,
        timeout.as_secs(),
        log.display()
    );
    let mut console = Console::start(vm, log)?;
    let deadline = Instant::now() + timeout;
    let mut journal = Vec::new();
    let mut milestones = Vec::new();
    let mut result = None;
    let mut fatal_seen = None;
    while let Some(line) = console.next_line(deadline) {
        if let Some(json) = selftest::result_json(&line.text) {
            result = Some((line.at, json.to_string()));
            break;
        }
        if let Some(i) = line.text.find(JOURNAL_MARKER) {
            journal.push(line.text[i + JOURNAL_MARKER.len()..].to_string());
        }
        for target in ["multi-user.target", "steppps.target"] {
            if line.text.contains(&format!("Reached target {target}")) {
                milestones.push((target, line.at));
            }
        }
        if let Some(what) = fatal(&line) {
            fatal_seen = Some(what);
            break;
        }
    }
    let ran = console.elapsed();
    console.stop();

    for (target, at) in &milestones {
        eprintln!(
            "  {target} reached {:.1} s after qemu started",
            at.as_secs_f64()
        );
    }
    let Some((at, json)) = result else {
        print_tail(log, 60);
        match fatal_seen {
            Some(what) => bail!("boot test failed: the console says {what:?}"),
            None => bail!(
                "boot test failed: no QOS-TEST-RESULT line within {:.0} s (the VM ran {:.0} s)",
                timeout.as_secs_f64(),
                ran.as_secs_f64()
            ),
        }
    };
    eprintln!("  result line after {:.1} s", at.as_secs_f64());
    let verdict = selftest::evaluate(&json)?;

    println!("Boot test checks:");
    for check in &verdict.checks {
        println!(
            "  [{}] {}: {}",
            if check.ok { " ok " } else { "FAIL" },
            check.name,
            check.detail
        );
    }
    println!("systemd-analyze security (exposure, lower is better):");
    for (unit, exposure, rating) in &verdict.security {
        println!("  {unit:<32} {exposure:>5} {rating}");
    }
    if !verdict.times.is_empty() {
        println!("In-guest timings:");
        for (name, value) in &verdict.times {
            println!("  {name:<24} {value}");
        }
    }
    if let Some(status) = verdict.result["qos_ctl"]["output"].as_object() {
        println!(
            "qos-ctl status --json (in the guest): {}",
            serde_json::to_string(status).unwrap_or_default()
        );
    }
    if verdict.passed() {
        println!("Boot test passed.");
        return Ok(());
    }
    print_tail(log, 60);
    let bad = verdict.bad_units();
    if !journal.is_empty() {
        eprintln!(
            "---- journal of units that are not running ({})",
            bad.join(", ")
        );
        for line in &journal {
            eprintln!("    {line}");
        }
        eprintln!("----");
    }
    bail!(
        "boot test failed: {}",
        verdict
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    )
}
