//! CQEA decisions per second in-process (target ≥ 100,000/s), over a mix of problem kinds and
//! sizes, against the same machine model and device list the daemon uses.

use std::hint::black_box;
use std::time::{Duration, Instant};

use steppps_time::cqea::{Device, Machine, Problem, decide};

fn main() {
    let machine = Machine::measure();
    let devices = [Device::local_simulator(&machine)];
    let problems = [Problem::Search, Problem::Optimization, Problem::Simulation];
    println!(
        "machine: {:.2e} evaluations/s, {:.1} GB/s copy bandwidth, {} qubits fit in memory",
        machine.evaluations_per_sec,
        machine.bandwidth_bytes_per_sec / 1e9,
        machine.max_simulated_qubits()
    );
    // Warm up, then three timed rounds of one second; report the median.
    let mut rates = Vec::new();
    for round in 0..4 {
        let start = Instant::now();
        let mut n: u64 = 0;
        while start.elapsed() < Duration::from_secs(1) {
            for _ in 0..1000 {
                let problem = problems[(n % 3) as usize];
                let size = 4 + (n % 40) as u32;
                let d = decide(problem, size, black_box(10.0), &machine, &devices);
                black_box(&d);
                n += 1;
            }
        }
        if round > 0 {
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "| CQEA decisions in-process | {:.0}/s | {:.2} µs each | target ≥ 100000/s: {} |",
        median,
        1e6 / median,
        if median >= 100_000.0 { "met" } else { "MISSED" }
    );
}
