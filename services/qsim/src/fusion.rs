//! Gate fusion: turns a circuit's operations into fewer passes over the state.
//!
//! - consecutive one-qubit gates on a qubit become one 2x2 matrix;
//! - one-qubit gates next to a two-qubit gate are absorbed into its 4x4 matrix, and later gates
//!   on the same pair are multiplied in (a layer of rotations plus a CX ladder costs one pass
//!   per pair instead of four);
//! - runs of diagonal gates (CP, CZ, RZZ, RZ, …) on any qubits become one diagonal pass.
//!
//! A gate moves only past operations on other qubits, so the result is exact. Measurements,
//! resets and classically conditioned gates are fences: nothing moves across them.

use crate::circuit::Op;
use crate::complex::{Mat2, Mat4, kron2, mul2, mul4, swap_qubits4};
use crate::gate::Gate;
use crate::state::DiagonalRun;

/// One pass over the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Mat1 {
        q: usize,
        m: Mat2,
    },
    Mat2 {
        q0: usize,
        q1: usize,
        m: Mat4,
    },
    Diagonal(DiagonalRun),
    /// An operation executed as written (three-qubit gates, measurement, reset, conditions).
    Op(Op),
}

/// Fuses `ops` on `num_qubits` qubits. With `enabled == false` every gate is its own step.
pub fn fuse(ops: &[Op], num_qubits: usize, enabled: bool) -> Vec<Step> {
    let mut f = Fuser {
        out: Vec::with_capacity(ops.len()),
        last: vec![None; num_qubits],
        open_diag: None,
    };
    for op in ops {
        match op {
            Op::Gate {
                gate,
                qubits,
                condition: None,
            } if enabled && gate.num_qubits() <= 2 => match qubits[..] {
                [q] => f.one(gate, q),
                [a, b] => f.two(gate, a, b),
                _ => f.fence(op.clone(), qubits),
            },
            Op::Gate {
                gate,
                qubits,
                condition: None,
            } => match qubits[..] {
                [q] => {
                    f.push(
                        Step::Mat1 {
                            q,
                            m: gate.matrix2(),
                        },
                        &[q],
                    );
                }
                [a, b] => {
                    f.push(
                        Step::Mat2 {
                            q0: a,
                            q1: b,
                            m: gate.matrix4(),
                        },
                        &[a, b],
                    );
                }
                _ => f.fence(op.clone(), qubits),
            },
            Op::Barrier { .. } => {}
            _ => {
                let all: Vec<usize> = (0..num_qubits).collect();
                f.fence(op.clone(), &all);
                f.open_diag = None;
            }
        }
    }
    f.out.into_iter().flatten().collect()
}

struct Fuser {
    out: Vec<Option<Step>>,
    last: Vec<Option<usize>>,
    open_diag: Option<usize>,
}

impl Fuser {
    fn push(&mut self, step: Step, qubits: &[usize]) -> usize {
        let i = self.out.len();
        self.out.push(Some(step));
        for &q in qubits {
            self.last[q] = Some(i);
        }
        i
    }

    fn fence(&mut self, op: Op, qubits: &[usize]) {
        self.push(Step::Op(op), qubits);
    }

    /// Whether a gate on `qubits` may join the open diagonal run (nothing since touched them).
    fn diag_slot(&self, qubits: &[usize]) -> Option<usize> {
        let r = self.open_diag?;
        qubits
            .iter()
            .all(|&q| self.last[q].is_none_or(|i| i <= r))
            .then_some(r)
    }

    fn one(&mut self, gate: &Gate, q: usize) {
        let g = gate.matrix2();
        if let Some(i) = self.last[q] {
            match &mut self.out[i] {
                Some(Step::Mat1 { m, .. }) => {
                    *m = mul2(&g, m);
                    return;
                }
                Some(Step::Mat2 { q0, q1, m }) if *q0 == q || *q1 == q => {
                    let id = Gate::I.matrix2();
                    let lifted = if *q0 == q {
                        kron2(&id, &g)
                    } else {
                        kron2(&g, &id)
                    };
                    *m = mul4(&lifted, m);
                    return;
                }
                _ => {}
            }
        }
        if gate.is_diagonal() {
            if let Some(r) = self.diag_slot(&[q]) {
                if let Some(Step::Diagonal(run)) = &mut self.out[r] {
                    run.push1(q, g[0], g[3]);
                    self.last[q] = Some(r);
                    return;
                }
            }
        }
        self.push(Step::Mat1 { q, m: g }, &[q]);
    }

    fn two(&mut self, gate: &Gate, a: usize, b: usize) {
        let g = gate.matrix4();
        if let (Some(i), Some(j)) = (self.last[a], self.last[b]) {
            if i == j {
                if let Some(Step::Mat2 { q0, q1, m }) = &mut self.out[i] {
                    let oriented = if (*q0, *q1) == (a, b) {
                        g
                    } else {
                        swap_qubits4(&g)
                    };
                    *m = mul4(&oriented, m);
                    return;
                }
            }
        }
        let mat1_at = |s: &Self, q: usize| -> Option<(usize, Mat2)> {
            let i = s.last[q]?;
            match &s.out[i] {
                Some(Step::Mat1 { m, .. }) => Some((i, *m)),
                _ => None,
            }
        };
        let (pa, pb) = (mat1_at(self, a), mat1_at(self, b));
        if gate.is_diagonal() && (pa.is_none() || pb.is_none()) {
            let d = [g[0], g[5], g[10], g[15]];
            if let Some(r) = self.diag_slot(&[a, b]) {
                if let Some(Step::Diagonal(run)) = &mut self.out[r] {
                    run.push2(a, b, d);
                    self.last[a] = Some(r);
                    self.last[b] = Some(r);
                    return;
                }
            }
            let mut run = DiagonalRun::new();
            run.push2(a, b, d);
            let r = self.push(Step::Diagonal(run), &[a, b]);
            self.open_diag = Some(r);
            return;
        }
        let id = Gate::I.matrix2();
        let mut m = g;
        if let Some((i, ma)) = pa {
            m = mul4(&m, &kron2(&id, &ma));
            self.out[i] = None;
        }
        if let Some((i, mb)) = pb {
            m = mul4(&m, &kron2(&mb, &id));
            self.out[i] = None;
        }
        self.push(Step::Mat2 { q0: a, q1: b, m }, &[a, b]);
    }
}

/// The identity check used by tests: whether a 2x2 matrix is `e^{iφ}·I`.
pub fn is_identity_up_to_phase(m: &Mat2) -> bool {
    m[1].norm_sqr() < 1e-20
        && m[2].norm_sqr() < 1e-20
        && m[0].approx_eq(m[3], 1e-10)
        && (m[0].norm_sqr() - 1.0).abs() < 1e-10
}
