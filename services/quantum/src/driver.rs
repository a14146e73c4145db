//! Devices behind one interface: a [`QDriver`] lists its devices, runs compiled circuits on
//! them and reports their status. The built-in [`SimulatorDriver`] serves `sim-statevector`
//! (ideal, all gates, all-to-all) and `sim-noisy` (depolarizing and readout errors by
//! trajectories, `{u3, cx}` on a line of 16 qubits), so device selection changes results.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use qsim::{Circuit, NoiseModel, PauliSum, Simulator};
use serde_json::json;
use steppps::api::quantum::DeviceInfo;

use crate::compiler::Target;

/// What a driver is asked to run.
#[derive(Debug, Clone)]
pub struct Execution {
    pub circuit: Circuit,
    pub shots: u64,
    pub seed: u64,
    pub statevector: bool,
    pub expectations: BTreeMap<String, PauliSum>,
}

/// What comes back: counts plus metadata, normalized across devices.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionResult {
    pub counts: BTreeMap<String, u64>,
    pub duration_seconds: f64,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("unknown device `{0}`")]
    UnknownDevice(String),
    #[error("{0}")]
    Failed(String),
    #[error("cancelled")]
    Cancelled,
}

/// A backend of quantum devices.
pub trait QDriver: Send + Sync + std::fmt::Debug {
    /// Prepares the backend (connect, load calibration).
    fn initialize(&self) -> Result<(), DriverError>;
    fn devices(&self) -> Vec<DeviceInfo>;
    /// Runs a circuit already compiled for `device`; `cancel` may be set at any time.
    fn execute(
        &self,
        device: &str,
        job: &Execution,
        cancel: &AtomicBool,
    ) -> Result<ExecutionResult, DriverError>;
    /// `online`, `offline`, …
    fn device_status(&self, device: &str) -> Result<String, DriverError>;
    /// Measures (here: reports) the device's error rates.
    fn calibrate(&self, device: &str) -> Result<HashMap<String, f64>, DriverError>;
}

pub const IDEAL: &str = "sim-statevector";
pub const NOISY: &str = "sim-noisy";

/// The built-in simulator devices.
#[derive(Debug, Clone)]
pub struct SimulatorDriver {
    pub threads: usize,
    pub max_qubits: u32,
    pub noise: NoiseModel,
    pub noisy_qubits: u32,
}

impl Default for SimulatorDriver {
    fn default() -> Self {
        SimulatorDriver {
            threads: 0,
            max_qubits: 28,
            noise: NoiseModel {
                depolarizing_1q: 0.001,
                depolarizing_2q: 0.01,
                readout_error: 0.02,
            },
            noisy_qubits: 16,
        }
    }
}

impl SimulatorDriver {
    fn noise_map(&self) -> HashMap<String, f64> {
        HashMap::from([
            ("depolarizing_1q".to_string(), self.noise.depolarizing_1q),
            ("depolarizing_2q".to_string(), self.noise.depolarizing_2q),
            ("readout_error".to_string(), self.noise.readout_error),
        ])
    }
}

/// The compiler target of a device.
pub fn target_of(d: &DeviceInfo) -> Target {
    Target {
        native_gates: d.native_gates.clone(),
        coupling_map: d.coupling_map.clone(),
        num_qubits: d.max_qubits as usize,
    }
}

impl QDriver for SimulatorDriver {
    fn initialize(&self) -> Result<(), DriverError> {
        Ok(())
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        vec![
            DeviceInfo {
                name: IDEAL.into(),
                kind: "simulator".into(),
                description: "ideal state-vector simulator (qsim): every gate, all-to-all, exact".into(),
                status: "online".into(),
                max_qubits: self.max_qubits,
                native_gates: Vec::new(),
                coupling_map: Vec::new(),
                noise: HashMap::new(),
            },
            DeviceInfo {
                name: NOISY.into(),
                kind: "noisy-simulator".into(),
                description: "trajectory simulator with depolarizing and readout errors; native {u3, cx} on a line".into(),
                status: "online".into(),
                max_qubits: self.noisy_qubits,
                native_gates: vec!["u3".into(), "cx".into()],
                coupling_map: (0..self.noisy_qubits.saturating_sub(1)).map(|i| (i, i + 1)).collect(),
                noise: self.noise_map(),
            },
        ]
    }

    fn execute(
        &self,
        device: &str,
        job: &Execution,
        cancel: &AtomicBool,
    ) -> Result<ExecutionResult, DriverError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(DriverError::Cancelled);
        }
        let sim = Simulator {
            threads: self.threads,
            seed: job.seed,
            ..Simulator::default()
        };
        let start = Instant::now();
        let fail = |e: qsim::SimError| DriverError::Failed(e.to_string());
        let mut metadata = serde_json::Map::new();
        let counts = match device {
            IDEAL => {
                let r = sim.run(&job.circuit, job.shots).map_err(fail)?;
                if let Some(state) = &r.state {
                    if job.statevector {
                        if job.circuit.num_qubits > 16 {
                            return Err(DriverError::Failed(format!(
                                "outputs.statevector is limited to 16 qubits (the circuit has {})",
                                job.circuit.num_qubits
                            )));
                        }
                        let amps: Vec<[f64; 2]> =
                            state.amplitudes().iter().map(|a| [a.re, a.im]).collect();
                        metadata.insert("statevector".into(), json!(amps));
                    }
                    let mut exp = serde_json::Map::new();
                    for (name, obs) in &job.expectations {
                        exp.insert(name.clone(), json!(obs.expectation(state)));
                    }
                    if !exp.is_empty() {
                        metadata.insert("expectations".into(), serde_json::Value::Object(exp));
                    }
                } else if job.statevector || !job.expectations.is_empty() {
                    metadata.insert("note".into(), json!("statevector and expectations need a circuit whose measurements are all at the end"));
                }
                r.counts
            }
            NOISY => {
                let r = sim
                    .run_noisy(&job.circuit, job.shots, &self.noise)
                    .map_err(fail)?;
                metadata.insert("noise".into(), json!(self.noise_map()));
                r.counts
            }
            other => return Err(DriverError::UnknownDevice(other.to_string())),
        };
        if cancel.load(Ordering::Relaxed) {
            return Err(DriverError::Cancelled);
        }
        metadata.insert("device".into(), json!(device));
        metadata.insert("seed".into(), json!(job.seed));
        Ok(ExecutionResult {
            counts,
            duration_seconds: start.elapsed().as_secs_f64(),
            metadata: serde_json::Value::Object(metadata),
        })
    }

    fn device_status(&self, device: &str) -> Result<String, DriverError> {
        match device {
            IDEAL | NOISY => Ok("online".into()),
            other => Err(DriverError::UnknownDevice(other.to_string())),
        }
    }

    fn calibrate(&self, device: &str) -> Result<HashMap<String, f64>, DriverError> {
        match device {
            IDEAL => Ok(HashMap::new()),
            NOISY => Ok(self.noise_map()),
            other => Err(DriverError::UnknownDevice(other.to_string())),
        }
    }
}
