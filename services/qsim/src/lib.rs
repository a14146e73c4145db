//! qsim: a fast state-vector simulator of quantum circuits, in safe Rust.
//! Complex128 amplitudes, gate fusion, rayon threads; OpenQASM 2/3 and AQO JSON front ends.
//!
//! ```
//! use qsim::{Circuit, Gate, Simulator};
//!
//! let mut bell = Circuit::new(2, 2);
//! bell.gate(Gate::H, &[0]).gate(Gate::CX, &[0, 1]).measure_all();
//! let result = Simulator::with_seed(7).run(&bell, 1000).unwrap();
//! assert_eq!(result.counts.keys().collect::<Vec<_>>(), ["00", "11"]);
//! assert_eq!(result.counts.values().sum::<u64>(), 1000);
//! ```
//!
//! From OpenQASM, with an observable:
//!
//! ```
//! let c = qsim::qasm::parse("OPENQASM 2.0; include \"qelib1.inc\"; qreg q[1]; ry(pi/3) q[0];").unwrap();
//! let z = qsim::PauliSum::ising(1, 0.0, 0.0, false).add(1.0, &[(0, qsim::Pauli::Z)]).clone();
//! let e = qsim::Simulator::default().expectation(&c, &z).unwrap();
//! assert!((e - 0.5).abs() < 1e-12); // cos(π/3)
//! ```

pub mod aqo;
pub mod circuit;
pub mod complex;
pub mod expr;
pub mod fusion;
pub mod gate;
pub mod memory;
pub mod noise;
pub mod pauli;
pub mod qasm;
pub mod rng;
pub mod simulator;
pub mod state;

pub use circuit::{Circuit, Condition, Op};
pub use complex::C64;
pub use gate::Gate;
pub use noise::NoiseModel;
pub use pauli::{Pauli, PauliSum, PauliTerm};
pub use simulator::{RunResult, SimError, Simulator};
pub use state::StateVector;
