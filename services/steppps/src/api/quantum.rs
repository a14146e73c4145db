//! `org.quantumos.Quantum1`: quantum jobs (JobSpec YAML in, counts and energies out), devices,
//! and the circuit compiler.
//!
//! Job states: `PENDING → QUEUED → RUNNING → DONE | ERROR | CANCELLED`. Times are
//! milliseconds since the Unix epoch.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// The largest JobSpec `SubmitJob` accepts, and the largest program source `CompileCircuit`,
/// `ValidateCircuit` and `OptimizeCircuit` accept, in bytes (8 MiB; programs inlined by
/// qos-ctl count). Clients check it before sending: the system bus drops a message over
/// 32 MiB (dbus-daemon's default `max_message_size`) and disconnects its sender, so the
/// daemon could not even answer.
pub const MAX_JOBSPEC_BYTES: usize = 8 << 20;

/// One job as the scheduler sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct JobStatus {
    /// `job-42`.
    pub id: String,
    /// `metadata.name` of the JobSpec.
    pub name: String,
    /// `QuantumJob` or `VariationalJob`.
    pub kind: String,
    pub state: String,
    pub priority: i32,
    /// The device it runs (or ran) on.
    pub device: String,
    pub submitted_ms: u64,
    pub updated_ms: u64,
    /// Why it failed, or what it is doing; empty otherwise.
    pub message: String,
    /// Ids of the jobs it waits for.
    pub depends_on: Vec<String>,
}

/// What a finished job produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct JobResults {
    pub id: String,
    pub state: String,
    pub device: String,
    pub shots: u64,
    /// Outcome bit string (highest bit first) → shots. Only the most frequent ones when all
    /// of them would pass 16 MiB (see `outcomes`).
    pub counts: HashMap<String, u64>,
    /// How many distinct outcomes the run had: more than `counts` holds when the reply had to
    /// leave the rarest out (a message over the bus's 32 MiB would make dbus-daemon disconnect
    /// quantumd; 20 qubits and a million shots are 40 MB of counts).
    pub outcomes: u64,
    pub duration_seconds: f64,
    /// Variational jobs: the optimal energy found (NaN otherwise).
    pub energy: f64,
    /// Variational jobs: the exact ground energy for comparison (NaN when not computed).
    pub exact_energy: f64,
    pub parameters: Vec<f64>,
    pub iterations: u32,
    /// The result document (JSON), as stored in the job's artifacts; without its `counts`
    /// when they were cut.
    pub document: String,
}

/// A device a job can run on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct DeviceInfo {
    /// `sim-statevector`, `sim-noisy`.
    pub name: String,
    /// `simulator` or `noisy-simulator`.
    pub kind: String,
    pub description: String,
    /// `online`, `reserved`, `busy`.
    pub status: String,
    pub max_qubits: u32,
    /// Native gate names; empty means every gate.
    pub native_gates: Vec<String>,
    /// Pairs of physical qubits a two-qubit gate may act on; empty means all-to-all.
    pub coupling_map: Vec<(u32, u32)>,
    /// Error rates: `depolarizing_1q`, `depolarizing_2q`, `readout_error`.
    pub noise: HashMap<String, f64>,
}

/// A device's current use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct DeviceStatus {
    pub name: String,
    pub status: String,
    pub queued_jobs: u32,
    pub running_job: String,
    /// Reservation holder's token prefix (empty when not reserved).
    pub reserved_by: String,
    pub reserved_until_ms: u64,
}

/// The compiler's output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct CompileResult {
    /// The compiled circuit as AQO JSON (byte-identical for the same input and options).
    pub aqo: String,
    pub qubits: u32,
    pub gates_before: u32,
    pub gates_after: u32,
    pub depth: u32,
    pub swaps: u32,
    /// One line per pass: what it did.
    pub report: Vec<String>,
}

#[proxy(
    interface = "org.quantumos.Quantum1",
    default_service = "org.quantumos.Quantum1",
    default_path = "/org/quantumos/Quantum1"
)]
pub trait Quantum1 {
    /// Submits one JobSpec document (or several, separated by `---`); returns their ids.
    fn submit_job(&self, spec: &str) -> zbus::Result<Vec<String>>;
    fn get_job_status(&self, id: &str) -> zbus::Result<JobStatus>;
    fn cancel_job(&self, id: &str) -> zbus::Result<()>;
    fn get_job_results(&self, id: &str) -> zbus::Result<JobResults>;
    /// Jobs in `state` (empty: all), newest first, at most `limit` (0: no limit).
    fn list_jobs(&self, state: &str, limit: u32) -> zbus::Result<Vec<JobStatus>>;

    fn list_devices(&self) -> zbus::Result<Vec<DeviceInfo>>;
    fn get_device_details(&self, name: &str) -> zbus::Result<DeviceInfo>;
    fn get_device_status(&self, name: &str) -> zbus::Result<DeviceStatus>;
    /// Reserves a device for `seconds`; returns the token jobs name in `spec.target.reservation`.
    fn reserve_device(&self, name: &str, seconds: u32) -> zbus::Result<String>;

    /// Compiles for `options["device"]` (default `sim-statevector`): validate, optimize,
    /// translate to native gates, route. `format`: `qasm2`, `qasm3`, `aqo`.
    fn compile_circuit(
        &self,
        source: &str,
        format: &str,
        options: HashMap<String, String>,
    ) -> zbus::Result<CompileResult>;
    /// `(ok, message, qubits, gates)`; a parse error is `ok == false` with line and column.
    fn validate_circuit(
        &self,
        source: &str,
        format: &str,
    ) -> zbus::Result<(bool, String, u32, u32)>;
    /// Optimizes without mapping to a device.
    fn optimize_circuit(&self, source: &str, format: &str) -> zbus::Result<CompileResult>;

    /// A job changed state (`message` says why, for errors).
    #[zbus(signal)]
    fn job_updated(&self, id: &str, state: &str, message: &str) -> zbus::Result<()>;
}
