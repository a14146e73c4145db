//! Running circuits: fusion, the thread pool, measurement and shot sampling.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::circuit::{Circuit, CircuitError, Op};
use crate::fusion::{Step, fuse};
use crate::gate::Gate;
use crate::memory::{self, MemoryError};
use crate::noise::NoiseModel;
use crate::pauli::PauliSum;
use crate::rng::Rng;
use crate::state::StateVector;

/// Why a circuit could not be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("cannot start {threads} simulation threads: {message}")]
    Threads { threads: usize, message: String },
    #[error("the observable acts on qubit {qubit}, but the circuit has {num_qubits}")]
    Observable { qubit: usize, num_qubits: usize },
    #[error("cancelled")]
    Cancelled,
}

/// Simulation options.
#[derive(Debug, Clone)]
pub struct Simulator {
    /// Worker threads (0: rayon's default, one per CPU).
    pub threads: usize,
    /// Seed of the measurement and sampling generator.
    pub seed: u64,
    /// Gate fusion (on by default; off is for comparisons).
    pub fusion: bool,
    /// Largest state in bytes; `None` means the machine's available memory.
    pub memory_limit: Option<u64>,
}

impl Default for Simulator {
    fn default() -> Self {
        Simulator {
            threads: 0,
            seed: 0,
            fusion: true,
            memory_limit: None,
        }
    }
}

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Outcome → number of shots. Keys are the classical bits, highest index first (as
    /// Qiskit prints them); empty when the circuit measures nothing.
    pub counts: BTreeMap<String, u64>,
    pub shots: u64,
    /// The final state of a circuit whose measurements are all terminal (before them).
    pub state: Option<StateVector>,
}

impl Simulator {
    pub fn with_seed(seed: u64) -> Simulator {
        Simulator {
            seed,
            ..Simulator::default()
        }
    }

    fn pool<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, SimError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| SimError::Threads {
                threads: self.threads,
                message: e.to_string(),
            })?;
        Ok(pool.install(f))
    }

    fn check(&self, circuit: &Circuit) -> Result<(), SimError> {
        self.check_states(circuit, 1)
    }

    /// Validates the circuit and checks that `states` state vectors of its size fit.
    fn check_states(&self, circuit: &Circuit, states: u32) -> Result<(), SimError> {
        circuit.validate()?;
        memory::check_states(circuit.num_qubits, states, self.memory_limit)?;
        Ok(())
    }

    /// The state after every operation (measurements collapse it with the seeded generator).
    pub fn statevector(&self, circuit: &Circuit) -> Result<StateVector, SimError> {
        self.check(circuit)?;
        self.pool(|| {
            let mut state = StateVector::try_zero(circuit.num_qubits)?;
            let mut bits = vec![false; circuit.num_clbits];
            let mut rng = Rng::new(self.seed);
            let steps = fuse(&circuit.ops, circuit.num_qubits, self.fusion);
            run_steps(&mut state, &steps, &mut bits, &mut rng);
            Ok(state)
        })?
    }

    /// Runs `shots` shots. A circuit whose measurements are all at the end is simulated once
    /// and sampled; otherwise the part before the first measurement, reset or condition is
    /// simulated once and the rest once per shot.
    pub fn run(&self, circuit: &Circuit, shots: u64) -> Result<RunResult, SimError> {
        let terminal = circuit.measurements_are_terminal();
        // Shots of a dynamic circuit each start from a copy of the state before its first
        // measurement: two state vectors at once.
        self.check_states(circuit, if terminal || shots == 0 { 1 } else { 2 })?;
        self.pool(|| {
            let mut rng = Rng::new(self.seed);
            if terminal {
                let (unitary, measures): (Vec<Op>, Vec<Op>) = circuit
                    .ops
                    .iter()
                    .cloned()
                    .partition(|op| !matches!(op, Op::Measure { .. }));
                let mut state = StateVector::try_zero(circuit.num_qubits)?;
                let steps = fuse(&unitary, circuit.num_qubits, self.fusion);
                run_steps(&mut state, &steps, &mut [], &mut rng);
                let map: Vec<(usize, usize)> = measures
                    .iter()
                    .filter_map(|op| match op {
                        Op::Measure { qubit, clbit } => Some((*qubit, *clbit)),
                        _ => None,
                    })
                    .collect();
                let counts = if map.is_empty() || shots == 0 {
                    BTreeMap::new()
                } else {
                    sample_counts(&state, &map, circuit.num_clbits, shots, &mut rng)
                };
                return Ok(RunResult {
                    counts,
                    shots,
                    state: Some(state),
                });
            }
            let first_dynamic = circuit
                .ops
                .iter()
                .position(|op| {
                    matches!(
                        op,
                        Op::Measure { .. }
                            | Op::Reset { .. }
                            | Op::Gate {
                                condition: Some(_),
                                ..
                            }
                    )
                })
                .unwrap_or(circuit.ops.len());
            let (prefix, rest) = circuit.ops.split_at(first_dynamic);
            let mut base = StateVector::try_zero(circuit.num_qubits)?;
            let steps = fuse(prefix, circuit.num_qubits, self.fusion);
            run_steps(&mut base, &steps, &mut [], &mut rng);
            let rest_steps = fuse(rest, circuit.num_qubits, self.fusion);
            let mut counts = BTreeMap::new();
            if shots > 0 {
                let mut state = base.try_clone()?;
                for _ in 0..shots {
                    state.clone_from(&base);
                    let mut bits = vec![false; circuit.num_clbits];
                    run_steps(&mut state, &rest_steps, &mut bits, &mut rng);
                    *counts.entry(bit_string(&bits)).or_insert(0) += 1;
                }
            }
            Ok(RunResult {
                counts,
                shots,
                state: None,
            })
        })?
    }

    /// Runs `shots` trajectories of `circuit` under `noise` (depolarizing errors after gates,
    /// readout flips): the counts a noisy device would give.
    pub fn run_noisy(
        &self,
        circuit: &Circuit,
        shots: u64,
        noise: &NoiseModel,
    ) -> Result<RunResult, SimError> {
        self.check(circuit)?;
        self.pool(|| {
            let mut rng = Rng::new(self.seed);
            let mut counts = BTreeMap::new();
            let mut state = StateVector::try_zero(circuit.num_qubits)?;
            for _ in 0..shots {
                state.set_zero();
                let mut bits = vec![false; circuit.num_clbits];
                for op in &circuit.ops {
                    match op {
                        Op::Measure { qubit, clbit } => {
                            let mut v = state.measure(*qubit, &mut rng);
                            if rng.uniform() < noise.readout_error {
                                v = !v;
                            }
                            bits[*clbit] = v;
                        }
                        _ => {
                            run_op(&mut state, op, &mut bits, &mut rng);
                            if let Op::Gate { qubits, .. } = op {
                                noise.apply_after_gate(&mut state, qubits, &mut rng);
                            }
                        }
                    }
                }
                *counts.entry(bit_string(&bits)).or_insert(0) += 1;
            }
            Ok(RunResult {
                counts,
                shots,
                state: None,
            })
        })?
    }

    /// `<ψ|H|ψ>` of the circuit's final state (measurements ignored).
    pub fn expectation(&self, circuit: &Circuit, observable: &PauliSum) -> Result<f64, SimError> {
        if let Some(q) = observable.max_qubit().filter(|&q| q >= circuit.num_qubits) {
            return Err(SimError::Observable {
                qubit: q,
                num_qubits: circuit.num_qubits,
            });
        }
        let mut unitary = circuit.clone();
        unitary.ops.retain(|op| !matches!(op, Op::Measure { .. }));
        let state = self.statevector(&unitary)?;
        self.pool(|| observable.expectation(&state))
    }
}

fn bit_string(bits: &[bool]) -> String {
    bits.iter()
        .rev()
        .map(|&b| if b { '1' } else { '0' })
        .collect()
}

/// Executes fused steps.
pub fn run_steps(state: &mut StateVector, steps: &[Step], bits: &mut [bool], rng: &mut Rng) {
    for step in steps {
        match step {
            Step::Mat1 { q, m } => state.apply_mat1(*q, m),
            Step::Mat2 { q0, q1, m } => state.apply_mat2(*q0, *q1, m),
            Step::Diagonal(run) => state.apply_diagonal(run),
            Step::Op(op) => run_op(state, op, bits, rng),
        }
    }
}

/// Executes one operation as written.
pub fn run_op(state: &mut StateVector, op: &Op, bits: &mut [bool], rng: &mut Rng) {
    match op {
        Op::Gate {
            gate,
            qubits,
            condition,
        } => {
            if let Some(c) = condition {
                if !c.holds(bits) {
                    return;
                }
            }
            match (gate, &qubits[..]) {
                (Gate::CCX, &[a, b, t]) => state.apply_ccx(a, b, t),
                (Gate::CSwap, &[c, a, b]) => state.apply_cswap(c, a, b),
                (g, &[q]) => state.apply_mat1(q, &g.matrix2()),
                (g, &[a, b]) => state.apply_mat2(a, b, &g.matrix4()),
                _ => {}
            }
        }
        Op::Measure { qubit, clbit } => {
            let v = state.measure(*qubit, rng);
            if let Some(b) = bits.get_mut(*clbit) {
                *b = v;
            }
        }
        Op::Reset { qubit } => state.reset(*qubit, rng),
        Op::Barrier { .. } => {}
    }
}

/// Draws `shots` basis states from `|ψ|²` and reads the measured qubits into bit strings.
fn sample_counts(
    state: &StateVector,
    map: &[(usize, usize)],
    num_clbits: usize,
    shots: u64,
    rng: &mut Rng,
) -> BTreeMap<String, u64> {
    let mut draws: Vec<f64> = (0..shots).map(|_| rng.uniform()).collect();
    draws.sort_by(f64::total_cmp);
    let probs = state.probabilities();
    let total: f64 = probs.par_iter().sum();
    let mut counts_by_index: BTreeMap<usize, u64> = BTreeMap::new();
    let mut acc = 0.0;
    let mut d = 0;
    let last_nonzero = probs.iter().rposition(|&p| p > 0.0).unwrap_or(0);
    for (i, p) in probs.iter().enumerate() {
        acc += p / total;
        let mut n = 0;
        while d < draws.len() && (draws[d] < acc || i == last_nonzero) {
            n += 1;
            d += 1;
        }
        if n > 0 {
            *counts_by_index.entry(i).or_insert(0) += n;
        }
        if d == draws.len() {
            break;
        }
    }
    let mut counts = BTreeMap::new();
    for (index, n) in counts_by_index {
        let mut bits = vec![false; num_clbits];
        for &(q, c) in map {
            bits[c] = index >> q & 1 == 1;
        }
        *counts.entry(bit_string(&bits)).or_insert(0) += n;
    }
    counts
}
