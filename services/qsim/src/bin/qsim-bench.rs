//! qsim-bench: times the simulator on the benchmark circuits, and measures the machine's copy
//! bandwidth, for `ci/bench-qsim` (which runs qulacs on the same circuits).
//!
//! ```text
//! qsim-bench circuit random 24 [--layers 10] [--seed 1]   print the circuit as text lines
//! qsim-bench run random 24 --threads 1 [--no-fusion]      time it; one JSON line
//! qsim-bench bandwidth --threads 2                        copy bandwidth (read + write), GB/s
//! ```

use std::f64::consts::PI;
use std::process::ExitCode;
use std::time::Instant;

use qsim::rng::Rng;
use qsim::{Circuit, Gate, Op, StateVector};
use rayon::prelude::*;

/// QFT as the benchmarks write it: H then controlled phases, then the reversing swaps.
fn qft(n: usize) -> Circuit {
    let mut c = Circuit::new(n, 0);
    for j in (0..n).rev() {
        c.gate(Gate::H, &[j]);
        for k in (0..j).rev() {
            c.gate(Gate::CP(PI / (1u64 << (j - k)) as f64), &[k, j]);
        }
    }
    for q in 0..n / 2 {
        c.gate(Gate::Swap, &[q, n - 1 - q]);
    }
    c
}

/// Layers of RX, RY, RZ on every qubit, then CX on alternating neighbour pairs.
fn random(n: usize, layers: usize, seed: u64) -> Circuit {
    let mut rng = Rng::new(seed);
    let mut c = Circuit::new(n, 0);
    for layer in 0..layers {
        for q in 0..n {
            c.gate(Gate::RX(rng.uniform() * 2.0 * PI), &[q]);
            c.gate(Gate::RY(rng.uniform() * 2.0 * PI), &[q]);
            c.gate(Gate::RZ(rng.uniform() * 2.0 * PI), &[q]);
        }
        for q in (layer % 2..n.saturating_sub(1)).step_by(2) {
            c.gate(Gate::CX, &[q, q + 1]);
        }
    }
    c
}

fn text(c: &Circuit) -> String {
    let mut out = format!("qubits {}\n", c.num_qubits);
    for op in &c.ops {
        if let Op::Gate { gate, qubits, .. } = op {
            let q: Vec<String> = qubits.iter().map(|q| q.to_string()).collect();
            let p: Vec<String> = gate.params().iter().map(|p| format!("{p:.17}")).collect();
            out.push_str(
                &format!("{} {} {}\n", gate.name(), q.join(" "), p.join(" ")).replace("  ", " "),
            );
        }
    }
    out
}

fn bandwidth(threads: usize) -> Result<f64, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let len = 64usize << 20; // 512 MiB of f64 each way
    pool.install(|| {
        let src: Vec<f64> = (0..len).into_par_iter().map(|i| i as f64).collect();
        let mut dst = vec![0.0f64; len];
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            dst.par_chunks_mut(1 << 16)
                .zip(src.par_chunks(1 << 16))
                .for_each(|(d, s)| d.copy_from_slice(s));
            best = best.min(t.elapsed().as_secs_f64());
        }
        std::hint::black_box(&dst);
        Ok((2 * len * 8) as f64 / best / 1e9)
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let threads = flag("--threads").unwrap_or(1);
    let build = |kind: &str, n: usize| match kind {
        "qft" => Some(qft(n)),
        "random" => Some(random(
            n,
            flag("--layers").unwrap_or(10),
            flag("--seed").unwrap_or(1) as u64,
        )),
        _ => None,
    };
    match args.first().map(String::as_str) {
        Some("bandwidth") => match bandwidth(threads) {
            Ok(gbs) => {
                println!("{{\"threads\":{threads},\"copy_gb_per_s\":{gbs:.2}}}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("qsim-bench: {e}");
                ExitCode::FAILURE
            }
        },
        Some(cmd @ ("circuit" | "run")) => {
            let (Some(kind), Some(n)) = (
                args.get(1),
                args.get(2).and_then(|v| v.parse::<usize>().ok()),
            ) else {
                eprintln!(
                    "usage: qsim-bench {cmd} qft|random QUBITS [--threads T] [--layers L] [--seed S]"
                );
                return ExitCode::from(64);
            };
            let Some(c) = build(kind, n) else {
                eprintln!("qsim-bench: unknown circuit `{kind}` (qft, random)");
                return ExitCode::from(64);
            };
            if cmd == "circuit" {
                print!("{}", text(&c));
                return ExitCode::SUCCESS;
            }
            if let Err(e) = qsim::memory::check(n, None) {
                eprintln!("qsim-bench: {e}");
                return ExitCode::FAILURE;
            }
            let fusion = !args.iter().any(|a| a == "--no-fusion");
            let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("qsim-bench: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let (seconds, passes, norm) = pool.install(|| {
                let mut state = StateVector::zero(n);
                let t = Instant::now();
                let steps = qsim::fusion::fuse(&c.ops, n, fusion);
                qsim::simulator::run_steps(&mut state, &steps, &mut [], &mut Rng::new(0));
                (t.elapsed().as_secs_f64(), steps.len(), state.norm_sqr())
            });
            println!(
                "{{\"circuit\":\"{kind}\",\"qubits\":{n},\"threads\":{threads},\"gates\":{},\"passes\":{passes},\"seconds\":{seconds:.4},\"norm\":{norm:.12}}}",
                c.gate_count()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: qsim-bench run|circuit|bandwidth … (see the source's doc)");
            ExitCode::from(64)
        }
    }
}
