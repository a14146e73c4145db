//! A simple noise model for trajectory simulation: depolarizing errors after gates and
//! classical readout flips.

use crate::gate::Gate;
use crate::rng::Rng;
use crate::state::StateVector;

/// Error probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseModel {
    /// Probability of a random X, Y or Z after a one-qubit gate.
    pub depolarizing_1q: f64,
    /// Probability of a random non-identity two-qubit Pauli after a multi-qubit gate.
    pub depolarizing_2q: f64,
    /// Probability that a measured bit is read wrong.
    pub readout_error: f64,
}

impl NoiseModel {
    pub fn ideal() -> NoiseModel {
        NoiseModel {
            depolarizing_1q: 0.0,
            depolarizing_2q: 0.0,
            readout_error: 0.0,
        }
    }

    pub(crate) fn apply_after_gate(
        &self,
        state: &mut StateVector,
        qubits: &[usize],
        rng: &mut Rng,
    ) {
        let paulis = [Gate::X, Gate::Y, Gate::Z];
        if qubits.len() == 1 {
            if rng.uniform() < self.depolarizing_1q {
                let p = &paulis[rng.below(3) as usize];
                state.apply_mat1(qubits[0], &p.matrix2());
            }
        } else if rng.uniform() < self.depolarizing_2q {
            // One of the 15 non-identity Paulis on the first two qubits.
            let k = 1 + rng.below(15) as usize;
            for (j, &q) in qubits.iter().take(2).enumerate() {
                let which = (k >> (2 * j)) & 3;
                if which > 0 {
                    state.apply_mat1(q, &paulis[which - 1].matrix2());
                }
            }
        }
    }
}
