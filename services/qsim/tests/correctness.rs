//! The simulator against independent references: every gate against its matrix applied
//! naively, analytic states (GHZ, QFT of basis states, Grover, rotation identities), QASM vs
//! AQO, seeded sampling, mid-circuit measurement, expectation values.

#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::f64::consts::PI;

use qsim::circuit::Circuit;
use qsim::complex::C64;
use qsim::gate::{GATE_NAMES, Gate};
use qsim::rng::Rng;
use qsim::{Pauli, PauliSum, Simulator, StateVector, aqo, qasm};

/// Applies a k-qubit matrix (basis `Σ bit(q_j)·2^j`) to a state by brute force.
fn naive_apply(state: &[C64], matrix: &[C64], qubits: &[usize]) -> Vec<C64> {
    let k = qubits.len();
    let dim = 1 << k;
    let mut out = vec![C64::ZERO; state.len()];
    for (i, amp) in state.iter().enumerate() {
        let col: usize = qubits
            .iter()
            .enumerate()
            .map(|(j, &q)| ((i >> q) & 1) << j)
            .sum();
        for row in 0..dim {
            let mut target = i;
            for (j, &q) in qubits.iter().enumerate() {
                target = (target & !(1 << q)) | (((row >> j) & 1) << q);
            }
            out[target] += matrix[row * dim + col] * *amp;
        }
    }
    out
}

fn matrix_of(g: &Gate) -> Vec<C64> {
    match g.num_qubits() {
        1 => g.matrix2().to_vec(),
        2 => g.matrix4().to_vec(),
        _ => g.matrix8().to_vec(),
    }
}

fn random_state(n: usize, seed: u64) -> Vec<C64> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<C64> = (0..1 << n)
        .map(|_| C64::new(rng.uniform() - 0.5, rng.uniform() - 0.5))
        .collect();
    let norm: f64 = v.iter().map(|a| a.norm_sqr()).sum::<f64>().sqrt();
    for a in &mut v {
        *a = a.scale(1.0 / norm);
    }
    v
}

fn assert_close(a: &[C64], b: &[C64], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.approx_eq(*y, 1e-10),
            "{what}: amplitude {i}: {x:?} != {y:?}"
        );
    }
}

fn all_gates() -> Vec<Gate> {
    let mut gates: Vec<Gate> = GATE_NAMES
        .iter()
        .map(|(name, _, np)| {
            let params: Vec<f64> = (0..*np).map(|k| 0.3 + 0.7 * k as f64).collect();
            Gate::from_name(name, &params).unwrap()
        })
        .collect();
    let u = qsim::gate::u3(0.4, 1.1, -0.7);
    gates.push(Gate::Unitary1(Box::new(u)));
    gates.push(Gate::Unitary2(Box::new(Gate::ISwap.matrix4())));
    gates
}

#[test]
fn every_gate_matches_its_matrix_on_every_qubit_placement() {
    let n = 4;
    let start = random_state(n, 1);
    for gate in all_gates() {
        let k = gate.num_qubits();
        let placements: Vec<Vec<usize>> = match k {
            1 => (0..n).map(|q| vec![q]).collect(),
            2 => vec![vec![0, 1], vec![1, 0], vec![0, 3], vec![3, 1], vec![2, 3]],
            _ => vec![vec![0, 1, 2], vec![3, 0, 2], vec![1, 3, 0]],
        };
        for qubits in placements {
            let want = naive_apply(&start, &matrix_of(&gate), &qubits);
            for fusion in [true, false] {
                let mut state = StateVector::from_amplitudes(start.clone()).unwrap();
                let mut c = Circuit::new(n, 0);
                c.gate(gate.clone(), &qubits);
                let steps = qsim::fusion::fuse(&c.ops, n, fusion);
                qsim::simulator::run_steps(&mut state, &steps, &mut [], &mut Rng::new(0));
                assert_close(
                    state.amplitudes(),
                    &want,
                    &format!("{} on {qubits:?}", gate.name()),
                );
            }
        }
    }
}

#[test]
fn gate_matrices_are_unitary_and_inverses_invert() {
    for gate in all_gates() {
        let m = matrix_of(&gate);
        let inv = matrix_of(&gate.inverse());
        let d = 1 << gate.num_qubits();
        for r in 0..d {
            for c in 0..d {
                let mut acc = C64::ZERO;
                for k in 0..d {
                    acc += inv[r * d + k] * m[k * d + c];
                }
                let want = if r == c { C64::ONE } else { C64::ZERO };
                assert!(
                    acc.approx_eq(want, 1e-12),
                    "{}: inverse·gate not identity",
                    gate.name()
                );
            }
        }
    }
}

/// A random circuit over the whole gate set, fused and unfused, must give the same state as
/// gate-by-gate naive application.
#[test]
fn fusion_preserves_random_circuits() {
    let n = 5;
    let gates = all_gates();
    let mut rng = Rng::new(9);
    for trial in 0..20 {
        let mut c = Circuit::new(n, 0);
        for _ in 0..60 {
            let g = gates[rng.below(gates.len() as u64) as usize].clone();
            let mut qs: Vec<usize> = Vec::new();
            while qs.len() < g.num_qubits() {
                let q = rng.below(n as u64) as usize;
                if !qs.contains(&q) {
                    qs.push(q);
                }
            }
            c.gate(g, &qs);
        }
        let mut want = StateVector::zero(n).amplitudes().to_vec();
        for op in &c.ops {
            if let qsim::Op::Gate { gate, qubits, .. } = op {
                want = naive_apply(&want, &matrix_of(gate), qubits);
            }
        }
        let fused = Simulator::default().statevector(&c).unwrap();
        assert_close(fused.amplitudes(), &want, &format!("trial {trial}"));
        let steps = qsim::fusion::fuse(&c.ops, n, true);
        assert!(steps.len() < c.ops.len(), "fusion removed no pass");
    }
}

/// The threaded kernels (states ≥ 2^15, targets above and below the task size) agree with
/// the single-threaded ones.
#[test]
fn threads_agree_with_one_thread() {
    let n = 15;
    let mut c = Circuit::new(n, 0);
    for layer in 0..2 {
        for q in 0..n {
            c.gate(Gate::RY(0.1 + q as f64 * 0.2 + layer as f64), &[q]);
        }
        for q in (layer % 2..n - 1).step_by(2) {
            c.gate(Gate::CX, &[q, q + 1]);
        }
        c.gate(Gate::CP(0.7), &[0, 14])
            .gate(Gate::CRX(0.3), &[14, 3])
            .gate(Gate::H, &[14]);
    }
    let mut one = Simulator::default();
    one.threads = 1;
    let mut two = Simulator::default();
    two.threads = 2;
    let a = one.statevector(&c).unwrap();
    let b = two.statevector(&c).unwrap();
    assert_close(a.amplitudes(), b.amplitudes(), "1 vs 2 threads");
    one.fusion = false;
    let u = one.statevector(&c).unwrap();
    assert_close(a.amplitudes(), u.amplitudes(), "fused vs unfused");
}

#[test]
fn ghz_state_is_analytic() {
    for n in [2, 5, 9] {
        let mut c = Circuit::new(n, 0);
        c.gate(Gate::H, &[0]);
        for q in 1..n {
            c.gate(Gate::CX, &[q - 1, q]);
        }
        let s = Simulator::default().statevector(&c).unwrap();
        let r = std::f64::consts::FRAC_1_SQRT_2;
        for (i, a) in s.amplitudes().iter().enumerate() {
            let want = if i == 0 || i == (1 << n) - 1 { r } else { 0.0 };
            assert!(
                a.approx_eq(C64::new(want, 0.0), 1e-12),
                "GHZ{n} amplitude {i}: {a:?}"
            );
        }
    }
}

fn qft(n: usize) -> Circuit {
    let mut c = Circuit::new(n, 0);
    for j in (0..n).rev() {
        c.gate(Gate::H, &[j]);
        for k in (0..j).rev() {
            c.gate(Gate::CP(PI / (1 << (j - k)) as f64), &[k, j]);
        }
    }
    for q in 0..n / 2 {
        c.gate(Gate::Swap, &[q, n - 1 - q]);
    }
    c
}

#[test]
fn qft_of_basis_states_is_a_fourier_vector() {
    let n = 6;
    let dim = 1 << n;
    for x in [0usize, 1, 5, 42, 63] {
        let mut c = Circuit::new(n, 0);
        for q in 0..n {
            if x >> q & 1 == 1 {
                c.gate(Gate::X, &[q]);
            }
        }
        c.ops.extend(qft(n).ops);
        for fusion in [true, false] {
            let mut sim = Simulator::default();
            sim.fusion = fusion;
            let s = sim.statevector(&c).unwrap();
            for (k, a) in s.amplitudes().iter().enumerate() {
                let want = C64::cis(2.0 * PI * (x * k) as f64 / dim as f64)
                    .scale(1.0 / (dim as f64).sqrt());
                assert!(
                    a.approx_eq(want, 1e-10),
                    "QFT|{x}> amplitude {k}: {a:?} != {want:?} (fusion {fusion})"
                );
            }
        }
    }
}

#[test]
fn grover_amplitudes_follow_the_rotation_formula() {
    let n = 4;
    let marked = 0b1011usize;
    let mut c = Circuit::new(n, 0);
    for q in 0..n {
        c.gate(Gate::H, &[q]);
    }
    let theta = (1.0 / ((1 << n) as f64).sqrt()).asin();
    for iteration in 1..=3 {
        // Oracle: phase flip on |marked> (X on zero bits, multi-controlled Z by CP chain).
        let phase_flip = |c: &mut Circuit, target: usize| {
            for q in 0..n {
                if target >> q & 1 == 0 {
                    c.gate(Gate::X, &[q]);
                }
            }
            mcz(c, n);
            for q in 0..n {
                if target >> q & 1 == 0 {
                    c.gate(Gate::X, &[q]);
                }
            }
        };
        phase_flip(&mut c, marked);
        for q in 0..n {
            c.gate(Gate::H, &[q]);
        }
        phase_flip(&mut c, 0);
        for q in 0..n {
            c.gate(Gate::H, &[q]);
        }
        let s = Simulator::default().statevector(&c).unwrap();
        let p = s.amplitude(marked).norm_sqr();
        let want = ((2 * iteration + 1) as f64 * theta).sin().powi(2);
        assert!(
            (p - want).abs() < 1e-10,
            "iteration {iteration}: {p} vs {want}"
        );
    }
}

/// Multi-controlled Z on all `n` qubits from a unitary on a 4-qubit register built by
/// controlled phases (exact for n = 4 via the CP decomposition of C³Z).
fn mcz(c: &mut Circuit, n: usize) {
    assert_eq!(n, 4);
    // C³Z = product of phases e^{iπ/4·(...)} : use the standard Gray-code CP construction.
    let l = PI / 4.0;
    c.gate(Gate::CP(l), &[0, 3]);
    c.gate(Gate::CX, &[0, 1]);
    c.gate(Gate::CP(-l), &[1, 3]);
    c.gate(Gate::CX, &[0, 1]);
    c.gate(Gate::CP(l), &[1, 3]);
    c.gate(Gate::CX, &[1, 2]);
    c.gate(Gate::CP(-l), &[2, 3]);
    c.gate(Gate::CX, &[0, 2]);
    c.gate(Gate::CP(l), &[2, 3]);
    c.gate(Gate::CX, &[1, 2]);
    c.gate(Gate::CP(-l), &[2, 3]);
    c.gate(Gate::CX, &[0, 2]);
    c.gate(Gate::CP(l), &[2, 3]);
}

#[test]
fn rotation_identities_hold() {
    let s = |c: &Circuit| Simulator::default().statevector(c).unwrap();
    // H Z H = X; RX(π) = -iX; RZ(a)RZ(b) = RZ(a+b); S·S = Z; SX·SX = X; HXH = Z.
    let mut a = Circuit::new(1, 0);
    a.gate(Gate::H, &[0])
        .gate(Gate::Z, &[0])
        .gate(Gate::H, &[0]);
    let mut b = Circuit::new(1, 0);
    b.gate(Gate::X, &[0]);
    assert!((s(&a).fidelity(&s(&b)) - 1.0).abs() < 1e-12);
    let mut a = Circuit::new(1, 0);
    a.gate(Gate::H, &[0])
        .gate(Gate::RZ(0.3), &[0])
        .gate(Gate::RZ(0.4), &[0]);
    let mut b = Circuit::new(1, 0);
    b.gate(Gate::H, &[0]).gate(Gate::RZ(0.7), &[0]);
    assert_close(s(&a).amplitudes(), s(&b).amplitudes(), "RZ merge");
    let mut a = Circuit::new(1, 0);
    a.gate(Gate::H, &[0])
        .gate(Gate::SX, &[0])
        .gate(Gate::SX, &[0]);
    let mut b = Circuit::new(1, 0);
    b.gate(Gate::H, &[0]).gate(Gate::X, &[0]);
    assert_close(s(&a).amplitudes(), s(&b).amplitudes(), "SX² = X");
    let mut a = Circuit::new(1, 0);
    a.gate(Gate::RY(0.8), &[0]);
    let st = s(&a);
    assert!((st.amplitude(1).norm_sqr() - (0.4f64).sin().powi(2)).abs() < 1e-12);
}

#[test]
fn seeded_sampling_is_reproducible_and_plausible() {
    let mut c = Circuit::new(3, 3);
    c.gate(Gate::H, &[0])
        .gate(Gate::RY(1.0), &[1])
        .gate(Gate::CX, &[0, 2])
        .measure_all();
    let a = Simulator::with_seed(5).run(&c, 4000).unwrap();
    let b = Simulator::with_seed(5).run(&c, 4000).unwrap();
    let other = Simulator::with_seed(6).run(&c, 4000).unwrap();
    assert_eq!(a.counts, b.counts);
    assert_ne!(a.counts, other.counts);
    assert_eq!(a.counts.values().sum::<u64>(), 4000);
    // P(q1 = 1) = sin²(0.5) ≈ 0.2298; q0 and q2 always agree.
    let ones: u64 = a
        .counts
        .iter()
        .filter(|(k, _)| k.as_bytes()[1] == b'1')
        .map(|(_, v)| v)
        .sum();
    assert!((ones as f64 / 4000.0 - 0.2298).abs() < 0.03, "{ones}");
    assert!(a.counts.keys().all(|k| k.as_bytes()[0] == k.as_bytes()[2]));
}

#[test]
fn teleportation_uses_mid_circuit_measurement_and_conditions() {
    let src = r#"OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
creg a[1];
creg b[1];
creg out[1];
ry(1.2) q[0];
h q[1];
cx q[1],q[2];
cx q[0],q[1];
h q[0];
measure q[0] -> a[0];
measure q[1] -> b[0];
if (b==1) x q[2];
if (a==1) z q[2];
measure q[2] -> out[0];
"#;
    let c = qasm::parse(src).unwrap();
    assert!(!c.measurements_are_terminal());
    let r = Simulator::with_seed(3).run(&c, 2000).unwrap();
    let ones: u64 = r
        .counts
        .iter()
        .filter(|(k, _)| k.starts_with('1'))
        .map(|(_, v)| v)
        .sum();
    let want = (0.6f64).sin().powi(2);
    assert!(
        (ones as f64 / 2000.0 - want).abs() < 0.04,
        "{ones} vs {want}"
    );
    let again = Simulator::with_seed(3).run(&c, 2000).unwrap();
    assert_eq!(r.counts, again.counts);
}

#[test]
fn reset_returns_a_qubit_to_zero() {
    let mut c = Circuit::new(1, 1);
    c.gate(Gate::H, &[0]);
    c.ops.push(qsim::Op::Reset { qubit: 0 });
    c.measure(0, 0);
    let r = Simulator::with_seed(1).run(&c, 100).unwrap();
    assert_eq!(r.counts.get("0"), Some(&100));
}

#[test]
fn expectation_values_and_exact_ground_energy() {
    // <+|X|+> = 1, <0|Z|0> = 1, Bell: <ZZ> = 1, <XX> = 1, <YY> = -1.
    let mut bell = Circuit::new(2, 0);
    bell.gate(Gate::H, &[0]).gate(Gate::CX, &[0, 1]);
    let sim = Simulator::default();
    let mut zz = PauliSum::new();
    zz.add(1.0, &[(0, Pauli::Z), (1, Pauli::Z)]);
    let mut xx = PauliSum::new();
    xx.add(1.0, &[(0, Pauli::X), (1, Pauli::X)]);
    let mut yy = PauliSum::new();
    yy.add(0.5, &[(0, Pauli::Y), (1, Pauli::Y)]);
    assert!((sim.expectation(&bell, &zz).unwrap() - 1.0).abs() < 1e-12);
    assert!((sim.expectation(&bell, &xx).unwrap() - 1.0).abs() < 1e-12);
    assert!((sim.expectation(&bell, &yy).unwrap() + 0.5).abs() < 1e-12);
    // Two-spin TFIM: H = J Z0Z1 + h(X0 + X1); ground energy -sqrt(J² + 4h²).
    let h = PauliSum::ising(2, 1.0, 0.5, false);
    assert!((h.ground_energy(2) + (1.0f64 + 1.0).sqrt()).abs() < 1e-9);
    // Open chain of 4, J = -1, h = 0: -3.
    assert!((PauliSum::ising(4, -1.0, 0.0, false).ground_energy(4) + 3.0).abs() < 1e-9);
}

#[test]
fn qasm_and_aqo_give_the_same_circuit_and_state() {
    let qasm_src = r#"OPENQASM 2.0;
include "qelib1.inc";
gate mygate(theta) a, b { ry(theta/2) a; cx a, b; u3(theta, pi/4, -pi/8) b; }
qreg q[3];
creg c[3];
h q;
mygate(0.8) q[0], q[2];
cp(pi/3) q[1], q[2];
rzz(0.25) q[0], q[1];
measure q -> c;
"#;
    let aqo_src = r#"{"format":"aqo","version":1,"qubits":3,"clbits":3,"parameters":["theta"],
"ops":[{"op":"H","qubits":[0]},{"op":"H","qubits":[1]},{"op":"H","qubits":[2]},
{"op":"RY","qubits":[0],"params":["theta/2"]},{"op":"CX","qubits":[0,2]},
{"op":"U3","qubits":[2],"params":["theta","pi/4","-pi/8"]},
{"op":"CP","qubits":[1,2],"params":["pi/3"]},{"op":"RZZ","qubits":[0,1],"params":[0.25]},
{"op":"MEASURE","qubits":[0,1,2],"clbits":[0,1,2]}]}"#;
    let a = qasm::parse(qasm_src).unwrap();
    let b = aqo::parse(aqo_src, &HashMap::from([("theta".to_string(), 0.8)])).unwrap();
    assert_eq!(a.ops, b.ops);
    let sa = Simulator::with_seed(2).run(&a, 500).unwrap();
    let sb = Simulator::with_seed(2).run(&b, 500).unwrap();
    assert_eq!(sa.counts, sb.counts);
    // AQO round trip is exact and byte-stable.
    let text = aqo::write(&a);
    let back = aqo::parse(&text, &HashMap::new()).unwrap();
    assert_eq!(back.ops, a.ops);
    assert_eq!(aqo::write(&back), text);
}

#[test]
fn qasm3_subset_with_modifiers() {
    let src = r#"OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
ctrl @ x q[0], q[1];
inv @ s q[2];
ctrl @ ry(0.5) q[1], q[2];
gphase(0.1);
c = measure q;
"#;
    let c3 = qasm::parse(src).unwrap();
    let mut want = Circuit::new(3, 3);
    want.gate(Gate::H, &[0])
        .gate(Gate::CX, &[0, 1])
        .gate(Gate::Sdg, &[2])
        .gate(Gate::CRY(0.5), &[1, 2]);
    want.measure_all();
    assert_eq!(c3.ops, want.ops);
    let inv = qasm::parse("OPENQASM 3; qubit[2] q; gate g(a) x, y { h x; cx x, y; rz(a) y; } inv @ g(0.3) q[0], q[1];").unwrap();
    let names: Vec<String> = inv
        .ops
        .iter()
        .map(|o| match o {
            qsim::Op::Gate { gate, .. } => format!("{gate:?}"),
            _ => String::new(),
        })
        .collect();
    assert_eq!(names, ["RZ(-0.3)", "CX", "H"]);
}

#[test]
fn parse_errors_name_line_and_column() {
    let e =
        qasm::parse("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\nfoo q[0];\n").unwrap_err();
    assert_eq!((e.line, e.column), (4, 1), "{e}");
    assert!(e.message.contains("unknown gate `foo`"), "{e}");
    let e = qasm::parse("OPENQASM 2.0;\nqreg q[2];\ncx q[0], q[5];").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("out of range"), "{e}");
    let e = qasm::parse("OPENQASM 2.0;\nqreg q[2]\nh q[0];").unwrap_err();
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    let e = qasm::parse("OPENQASM 2.0;\nqreg q[2];\nh q[0];\n  rx(1 +) q[1];").unwrap_err();
    assert_eq!((e.line, e.column), (4, 9), "{e}");
    let e = aqo::parse("{\"qubits\": 2,\n \"ops\": [}", &HashMap::new()).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let e = aqo::parse(
        r#"{"qubits": 2, "ops": [{"op": "FOO", "qubits": [0]}]}"#,
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("ops[0].op: unknown operation `FOO`"),
        "{e}"
    );
    let e = aqo::parse(
        r#"{"qubits": 2, "ops": [{"op": "CX", "qubits": [0, 2]}]}"#,
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn sixty_qubits_are_refused_with_the_size() {
    let mut c = Circuit::new(60, 0);
    c.gate(Gate::H, &[0]);
    let e = Simulator::default().run(&c, 1).unwrap_err();
    assert!(e.to_string().contains("16.0 EiB"), "{e}");
}

#[test]
fn a_circuit_measured_midway_needs_room_for_two_states() {
    // 16 qubits: 1 MiB per state vector. The shots of a dynamic circuit start from a copy of
    // the state before its first measurement, so the run holds two.
    let mut dynamic = Circuit::new(16, 2);
    dynamic.gate(Gate::H, &[0]);
    dynamic.measure(0, 0);
    dynamic.gate(Gate::CX, &[0, 1]);
    dynamic.measure(1, 1);
    assert!(!dynamic.measurements_are_terminal());
    let mib = 1u64 << 20;
    let tight = Simulator {
        memory_limit: Some(3 * mib / 2),
        ..Simulator::with_seed(5)
    };
    let e = tight.run(&dynamic, 10).unwrap_err();
    assert!(
        e.to_string().contains("keeps 2 of them (2.0 MiB in all)"),
        "{e}"
    );
    // One state is enough for the same gates measured at the end, or for no shots at all.
    let mut terminal = Circuit::new(16, 2);
    terminal.gate(Gate::H, &[0]);
    terminal.gate(Gate::CX, &[0, 1]);
    terminal.measure(0, 0);
    terminal.measure(1, 1);
    assert_eq!(tight.run(&terminal, 10).unwrap().shots, 10);
    assert!(tight.run(&dynamic, 0).unwrap().counts.is_empty());
    // With room for both, every shot starts again from the state before the measurement:
    // the two bits always agree and both values occur.
    let roomy = Simulator {
        memory_limit: Some(2 * mib),
        ..Simulator::with_seed(5)
    };
    let r = roomy.run(&dynamic, 200).unwrap();
    assert_eq!(r.counts.keys().collect::<Vec<_>>(), ["00", "11"]);
}

#[test]
fn a_state_the_system_cannot_allocate_is_an_error_not_an_abort() {
    // 2^60 amplitudes are 2^64 bytes: more than any allocation can be.
    let e = StateVector::try_zero(60).unwrap_err();
    assert!(e.message.contains("refused the 16.0 EiB"), "{}", e.message);
    assert!(StateVector::try_zero(64).is_err());
    assert!(StateVector::try_zero(usize::MAX).is_err());
    // 16 TiB: more than RAM and swap, which Linux refuses unless overcommit is "always" (1).
    let overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if overcommit.trim() != "1" {
        assert!(StateVector::try_zero(40).is_err());
    }
    let small = StateVector::try_zero(3).unwrap();
    assert_eq!(small, StateVector::zero(3));
    assert_eq!(small.try_clone().unwrap(), small);
}
