//! The compiler on a 1000-qubit, 100,000-gate random circuit: optimize only (all-to-all, every
//! gate native), and the full pipeline for a 1000-qubit line with native {u3, cx} (translate +
//! route + final optimize). Target: < 1 s. `cargo bench -p quantumd --bench compiler`.

use std::time::Instant;

use qsim::rng::Rng;
use qsim::{Circuit, Gate};
use quantumd::compiler::{Target, compile};

fn random_circuit(n: usize, gates: usize, seed: u64, far: u64) -> Circuit {
    let mut rng = Rng::new(seed);
    let mut c = Circuit::new(n, n);
    for _ in 0..gates {
        let q = rng.below(n as u64) as usize;
        match rng.below(6) {
            0 => c.gate(Gate::H, &[q]),
            1 => c.gate(Gate::RZ(rng.uniform()), &[q]),
            2 => c.gate(Gate::RY(rng.uniform()), &[q]),
            3 => c.gate(Gate::T, &[q]),
            _ => {
                // Mostly near neighbours, sometimes far (what routing has to fix).
                let d = if far > 0 && rng.below(100) < far {
                    1 + rng.below(50) as usize
                } else {
                    1
                };
                let p = (q + d) % n;
                c.gate(Gate::CX, &[q, p])
            }
        };
    }
    c.measure_all();
    c
}

fn main() {
    let n = 1000;
    let local = random_circuit(n, 100_000, 1, 0);
    let c = random_circuit(n, 100_000, 1, 10);
    let all = Target::default();
    let line = Target {
        native_gates: vec!["u3".into(), "cx".into()],
        coupling_map: (0..n as u32 - 1).map(|i| (i, i + 1)).collect(),
        num_qubits: n,
    };
    println!("| compile 1000 qubits, 100k gates | seconds | gates after | swaps |");
    println!("|---|---:|---:|---:|");
    for (name, circuit, target) in [
        ("optimize only (all-to-all)", &c, &all),
        (
            "translate + route on a line + optimize, neighbour CX only",
            &local,
            &line,
        ),
        (
            "translate + route on a line + optimize, 10 % long-range CX",
            &c,
            &line,
        ),
    ] {
        let mut best = f64::INFINITY;
        let mut out = None;
        for _ in 0..3 {
            let t = Instant::now();
            let r = compile(circuit, target, true).expect("compiles");
            best = best.min(t.elapsed().as_secs_f64());
            out = Some(r);
        }
        if let Some(r) = out {
            println!(
                "| {name} | {best:.3} | {} | {} |",
                r.circuit.gate_count(),
                r.swaps
            );
        }
    }
    let t = Instant::now();
    let text = qsim::aqo::write(&c);
    println!(
        "AQO write of the input: {:.3} s, {} MiB",
        t.elapsed().as_secs_f64(),
        text.len() >> 20
    );
}
