//! quantumd: the QuantumOS quantum backend. Users submit JobSpec YAML; the [`scheduler`]
//! compiles ([`compiler`]) and persists ([`store`]) jobs, runs them in dependency and priority
//! order on a device of a [`driver::QDriver`] (the built-in `qsim` simulators), and keeps
//! their artifacts. [`variational`] runs declarative VQE loops. `bus.rs` is the D-Bus view
//! (`org.quantumos.Quantum1`).

pub mod bus;
pub mod compiler;
pub mod driver;
mod entry;
pub mod jobspec;
pub mod scheduler;
pub mod store;
pub mod variational;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use steppps::api::quantum::CompileResult;
use steppps::daemon::Vitals;

use crate::driver::{SimulatorDriver, target_of};
use crate::scheduler::{JobEvent, SchedError, Scheduler};
use crate::store::Store;

/// `/etc/quantumos/quantum.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Simulation threads (0: one per CPU).
    pub threads: usize,
    /// Largest circuit the ideal simulator accepts.
    pub max_qubits: u32,
    /// Qubits of the noisy device (a line).
    pub noisy_qubits: u32,
    /// Finished jobs (DONE, ERROR, CANCELLED) kept, newest first, with their artifacts; older
    /// ones are forgotten. 0 keeps every job.
    pub keep_finished_jobs: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 0,
            max_qubits: 28,
            noisy_qubits: 16,
            keep_finished_jobs: 10_000,
        }
    }
}

/// The daemon's logic: the scheduler and the compiler entry points.
#[derive(Debug)]
pub struct Quantum {
    pub scheduler: Arc<Scheduler>,
}

/// The largest circuit source CompileCircuit/ValidateCircuit accept.
pub const MAX_SOURCE_BYTES: usize = steppps::api::quantum::MAX_JOBSPEC_BYTES;

impl Quantum {
    /// Opens the job store under `state_dir` and starts the worker. `listener` hears every
    /// job state change.
    pub fn open(
        state_dir: &Path,
        config: &Config,
        listener: impl Fn(&JobEvent) + Send + Sync + 'static,
    ) -> anyhow::Result<Quantum> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", state_dir.display()))?;
        let store = Store::open(&scheduler::database_path(state_dir)).map_err(|e| {
            anyhow::anyhow!("{}: {e}", scheduler::database_path(state_dir).display())
        })?;
        let driver = SimulatorDriver {
            threads: config.threads,
            max_qubits: config.max_qubits,
            noisy_qubits: config.noisy_qubits,
            ..SimulatorDriver::default()
        };
        let mut scheduler = Scheduler::new(
            store,
            Arc::new(driver),
            Some(state_dir.to_path_buf()),
            Box::new(listener),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        scheduler.keep_finished(config.keep_finished_jobs);
        let scheduler = Arc::new(scheduler);
        scheduler.start()?;
        Ok(Quantum { scheduler })
    }

    fn check_size(source: &str) -> Result<(), SchedError> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(SchedError::Invalid(format!(
                "the program is {:.1} MiB; the limit is {} MiB",
                source.len() as f64 / (1 << 20) as f64,
                MAX_SOURCE_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// Compiles for `options["device"]` (default sim-statevector); `options["optimize"]` =
    /// `false` skips the optimizing passes.
    pub fn compile(
        &self,
        source: &str,
        format: &str,
        options: &HashMap<String, String>,
    ) -> Result<CompileResult, SchedError> {
        Self::check_size(source)?;
        let known: HashSet<&str> = ["device", "optimize"].into();
        if let Some(k) = options.keys().find(|k| !known.contains(k.as_str())) {
            return Err(SchedError::Invalid(format!(
                "options: unknown option `{k}` (device, optimize)"
            )));
        }
        let device = self
            .scheduler
            .device(options.get("device").map_or(driver::IDEAL, String::as_str))?;
        let optimize = match options.get("optimize").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(SchedError::Invalid(format!(
                    "options.optimize: `{v}` is not true or false"
                )));
            }
        };
        let circuit = compiler::parse(source, format, &HashMap::new())
            .map_err(|e| SchedError::Invalid(e.0))?;
        let c = compiler::compile(&circuit, &target_of(&device), optimize)
            .map_err(|e| SchedError::Invalid(e.0))?;
        let aqo = qsim::aqo::write(&c.circuit);
        // Decomposition and routing multiply gates: 2 MB of Toffolis for a 16-qubit line are
        // 80 MB of AQO, and a reply that large would get quantumd disconnected from the bus.
        let report_bytes: usize = c.report.iter().map(String::len).sum();
        if aqo.len() + report_bytes > steppps::api::MAX_REPLY_BYTES {
            return Err(SchedError::Invalid(format!(
                "the compiled circuit is {:.1} MiB ({} gates), more than a reply may carry \
                 ({} MiB); compile a smaller part, or submit it as a job (quantumd compiles \
                 jobs itself)",
                aqo.len() as f64 / f64::from(1 << 20),
                c.circuit.gate_count(),
                steppps::api::MAX_REPLY_BYTES >> 20
            )));
        }
        Ok(CompileResult {
            aqo,
            qubits: c.circuit.num_qubits as u32,
            gates_before: c.gates_before as u32,
            gates_after: c.circuit.gate_count() as u32,
            depth: c.circuit.depth() as u32,
            swaps: c.swaps as u32,
            report: c.report,
        })
    }

    /// Optimizes without a device (all gates, all-to-all).
    pub fn optimize(&self, source: &str, format: &str) -> Result<CompileResult, SchedError> {
        self.compile(
            source,
            format,
            &HashMap::from([("device".to_string(), driver::IDEAL.to_string())]),
        )
    }

    /// `(ok, message, qubits, gates)`.
    pub fn validate(
        &self,
        source: &str,
        format: &str,
    ) -> Result<(bool, String, u32, u32), SchedError> {
        Self::check_size(source)?;
        match compiler::parse(source, format, &HashMap::new()) {
            Ok(c) => Ok((
                true,
                format!(
                    "valid: {} qubits, {} gates, depth {}",
                    c.num_qubits,
                    c.gate_count(),
                    c.depth()
                ),
                c.num_qubits as u32,
                c.gate_count() as u32,
            )),
            // A success reply: the message does not pass through the error's own guard.
            Err(e) => Ok((false, steppps::error::message_text(&e.0).into_owned(), 0, 0)),
        }
    }
}

impl Vitals for Quantum {
    fn health(&self) -> (bool, String) {
        let counts = self.scheduler.counts();
        let summary: Vec<String> = counts
            .iter()
            .map(|(k, v)| format!("{v} {}", k.to_lowercase()))
            .collect();
        (
            true,
            if summary.is_empty() {
                "no jobs".into()
            } else {
                format!("jobs: {}", summary.join(", "))
            },
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let mut m: HashMap<String, f64> = self
            .scheduler
            .counts()
            .into_iter()
            .map(|(k, v)| (format!("jobs_{}", k.to_lowercase()), v as f64))
            .collect();
        m.insert(
            "jobs_submitted_total".into(),
            self.scheduler
                .submitted
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        m.insert(
            "jobs_finished_total".into(),
            self.scheduler
                .finished
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        m
    }
}
