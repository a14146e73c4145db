//! Prediction latency: a model fed a long real-shaped history answers `predict` and
//! `complete`; prints p50/p99/max over many queries. Run with `cargo bench -p
//! steppps-psychology --bench predict [-- UCI_DIR]`: with a directory of UCI "UNIX User Data"
//! traces it feeds the largest one, otherwise a synthetic history of the same size.

use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use steppps::testing::percentile;
use steppps_psychology::history::parse_uci_trace;
use steppps_psychology::model::{Model, Params, Query};

/// This thread's CPU time: what a query costs without the time the scheduler gave others
/// (the machine the benchmarks run on is shared).
fn cpu_time() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

fn synthetic(n: usize) -> Vec<String> {
    // A deterministic mix: a few habits, many one-off lines (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let habits = [
        "ls",
        "cd <1>",
        "vi <1>",
        "make",
        "git status",
        "ll",
        "cd ..",
        "more <1>",
    ];
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 4 == 0 {
                format!("cmd{} <1> -{}", x % 5000, x % 7)
            } else {
                habits[(x % habits.len() as u64) as usize].to_string()
            }
        })
        .collect()
}

fn main() {
    let dir = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let lines: Vec<String> = match dir.as_deref().map(std::path::Path::new) {
        Some(d) if d.is_dir() => {
            let mut best = Vec::new();
            for entry in std::fs::read_dir(d)
                .expect("read the trace directory")
                .flatten()
            {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let all: Vec<String> = parse_uci_trace(&text).into_iter().flatten().collect();
                if all.len() > best.len() {
                    best = all;
                }
            }
            println!("history: the largest UCI trace in {}", d.display());
            best
        }
        _ => {
            println!("history: synthetic (pass a UCI trace directory for a real one)");
            synthetic(60_000)
        }
    };
    let mut model = Model::new(Params::default());
    let fed = Instant::now();
    for line in &lines {
        model.observe(line, "/home/user", true);
    }
    println!(
        "{} commands, {} distinct, fed in {:.1} ms",
        lines.len(),
        model.distinct(),
        fed.elapsed().as_secs_f64() * 1000.0
    );
    let prefixes = ["c", "l", "v", "m", "g", "ma", "cd", "x"];
    for (what, k) in [
        ("predict k=3", 3usize),
        ("predict k=10", 10),
        ("complete k=3", 3),
    ] {
        let mut times = Vec::with_capacity(20_000);
        let mut cpu = Vec::with_capacity(20_000);
        for i in 0..20_000usize {
            let prev = [lines[i % lines.len()].clone()];
            let start = Instant::now();
            let cpu_start = cpu_time();
            let out = if what.starts_with("complete") {
                model.complete(prefixes[i % prefixes.len()], Query::default(), k)
            } else {
                model.predict(
                    Query {
                        cwd: "/home/user",
                        previous: &prev,
                    },
                    k,
                )
            };
            times.push(start.elapsed());
            cpu.push(cpu_time().saturating_sub(cpu_start));
            std::hint::black_box(out);
        }
        times.sort_unstable();
        cpu.sort_unstable();
        println!(
            "{what:<14} wall p50 {:>6.1} µs  p99 {:>7.1} µs  max {:>8.1} µs | CPU p50 {:>6.1} µs  p99 {:>6.1} µs",
            percentile(&times, 0.50).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
            percentile(&times, 1.0).as_secs_f64() * 1e6,
            percentile(&cpu, 0.50).as_secs_f64() * 1e6,
            percentile(&cpu, 0.99).as_secs_f64() * 1e6,
        );
    }
}
