//! The circuit IR every front end produces and the simulator consumes: qubits and classical
//! bits numbered from 0, and an ordered list of operations.

use crate::gate::Gate;

/// `if (creg == value)`: the bits of the register (least significant first) must read `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub clbits: Vec<usize>,
    pub value: u64,
}

impl Condition {
    /// Whether the classical bits `bits` satisfy the condition.
    pub fn holds(&self, bits: &[bool]) -> bool {
        self.clbits.iter().enumerate().all(|(k, &c)| {
            let want = k < 64 && (self.value >> k) & 1 == 1;
            bits.get(c).copied().unwrap_or(false) == want
        }) && (self.clbits.len() >= 64 || self.value >> self.clbits.len() == 0)
    }
}

/// One operation of a circuit.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Gate {
        gate: Gate,
        qubits: Vec<usize>,
        condition: Option<Condition>,
    },
    /// Measures `qubit` in the computational basis (collapsing it) into `clbit`.
    Measure { qubit: usize, clbit: usize },
    /// Puts `qubit` back into |0>.
    Reset { qubit: usize },
    /// An optimization fence; the simulator ignores it.
    Barrier { qubits: Vec<usize> },
}

impl Op {
    /// The qubits the operation touches.
    pub fn qubits(&self) -> &[usize] {
        match self {
            Op::Gate { qubits, .. } | Op::Barrier { qubits } => qubits,
            Op::Measure { qubit, .. } | Op::Reset { qubit } => std::slice::from_ref(qubit),
        }
    }
}

/// A named register as written in the source (`qreg q[3]`): where its bits start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub name: String,
    pub start: usize,
    pub size: usize,
}

/// A circuit on `num_qubits` qubits and `num_clbits` classical bits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Circuit {
    pub num_qubits: usize,
    pub num_clbits: usize,
    pub ops: Vec<Op>,
    pub qregs: Vec<Register>,
    pub cregs: Vec<Register>,
}

/// A circuit that refers to a qubit or bit it does not have, or applies a gate to the wrong
/// number of (or repeated) qubits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {index} ({name}): {message}")]
pub struct CircuitError {
    pub index: usize,
    pub name: String,
    pub message: String,
}

impl Circuit {
    /// An empty circuit.
    pub fn new(num_qubits: usize, num_clbits: usize) -> Circuit {
        Circuit {
            num_qubits,
            num_clbits,
            ..Circuit::default()
        }
    }

    /// Appends a gate; see [`Circuit::validate`] for the checks.
    pub fn gate(&mut self, gate: Gate, qubits: &[usize]) -> &mut Self {
        self.ops.push(Op::Gate {
            gate,
            qubits: qubits.to_vec(),
            condition: None,
        });
        self
    }

    pub fn measure(&mut self, qubit: usize, clbit: usize) -> &mut Self {
        self.ops.push(Op::Measure { qubit, clbit });
        self
    }

    /// Measures every qubit `i` into bit `i` (adding bits when there are too few).
    pub fn measure_all(&mut self) -> &mut Self {
        self.num_clbits = self.num_clbits.max(self.num_qubits);
        for q in 0..self.num_qubits {
            self.ops.push(Op::Measure { qubit: q, clbit: q });
        }
        self
    }

    /// Number of gates (not measurements, resets or barriers).
    pub fn gate_count(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Gate { .. }))
            .count()
    }

    /// Longest chain of operations that share a qubit.
    pub fn depth(&self) -> usize {
        let mut level = vec![0usize; self.num_qubits];
        let mut depth = 0;
        for op in &self.ops {
            if matches!(op, Op::Barrier { .. }) {
                continue;
            }
            let qs = op.qubits();
            let l = qs
                .iter()
                .filter_map(|&q| level.get(q))
                .max()
                .copied()
                .unwrap_or(0)
                + 1;
            for &q in qs {
                if let Some(slot) = level.get_mut(q) {
                    *slot = l;
                }
            }
            depth = depth.max(l);
        }
        depth
    }

    /// Checks every qubit and bit index, gate arity and distinct operands.
    pub fn validate(&self) -> Result<(), CircuitError> {
        for (index, op) in self.ops.iter().enumerate() {
            let err = |name: &str, message: String| CircuitError {
                index,
                name: name.to_string(),
                message,
            };
            match op {
                Op::Gate {
                    gate,
                    qubits,
                    condition,
                } => {
                    if qubits.len() != gate.num_qubits() {
                        return Err(err(
                            gate.name(),
                            format!(
                                "takes {} qubit(s), given {}",
                                gate.num_qubits(),
                                qubits.len()
                            ),
                        ));
                    }
                    for (k, &q) in qubits.iter().enumerate() {
                        if q >= self.num_qubits {
                            return Err(err(
                                gate.name(),
                                format!("qubit {q} out of range (circuit has {})", self.num_qubits),
                            ));
                        }
                        if qubits[..k].contains(&q) {
                            return Err(err(gate.name(), format!("qubit {q} used twice")));
                        }
                    }
                    if let Some(c) = condition {
                        if let Some(&b) = c.clbits.iter().find(|&&b| b >= self.num_clbits) {
                            return Err(err(
                                gate.name(),
                                format!(
                                    "condition bit {b} out of range (circuit has {})",
                                    self.num_clbits
                                ),
                            ));
                        }
                    }
                    for p in gate.params() {
                        if !p.is_finite() {
                            return Err(err(gate.name(), format!("angle {p} is not finite")));
                        }
                    }
                }
                Op::Measure { qubit, clbit } => {
                    if *qubit >= self.num_qubits {
                        return Err(err(
                            "measure",
                            format!(
                                "qubit {qubit} out of range (circuit has {})",
                                self.num_qubits
                            ),
                        ));
                    }
                    if *clbit >= self.num_clbits {
                        return Err(err(
                            "measure",
                            format!("bit {clbit} out of range (circuit has {})", self.num_clbits),
                        ));
                    }
                }
                Op::Reset { qubit } => {
                    if *qubit >= self.num_qubits {
                        return Err(err(
                            "reset",
                            format!(
                                "qubit {qubit} out of range (circuit has {})",
                                self.num_qubits
                            ),
                        ));
                    }
                }
                Op::Barrier { qubits } => {
                    if let Some(q) = qubits.iter().find(|&&q| q >= self.num_qubits) {
                        return Err(err(
                            "barrier",
                            format!("qubit {q} out of range (circuit has {})", self.num_qubits),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every measurement comes after the last gate on its qubit and nothing depends on
    /// a measured value: then one simulation serves every shot.
    pub fn measurements_are_terminal(&self) -> bool {
        let mut measured = vec![false; self.num_qubits];
        for op in &self.ops {
            match op {
                Op::Measure { qubit, .. } => {
                    if let Some(m) = measured.get_mut(*qubit) {
                        *m = true;
                    }
                }
                Op::Reset { .. } => return false,
                Op::Gate {
                    qubits, condition, ..
                } => {
                    if condition.is_some()
                        || qubits
                            .iter()
                            .any(|&q| measured.get(q).copied().unwrap_or(false))
                    {
                        return false;
                    }
                }
                Op::Barrier { .. } => {}
            }
        }
        true
    }
}
