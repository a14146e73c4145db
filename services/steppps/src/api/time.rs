//! `org.quantumos.Time1`: timers, process classes, and the classical-or-quantum decision.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// A timer as `ListTimers` and `AddTimer` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct TimerInfo {
    pub name: String,
    /// The specification as given: `Mon..Fri 9:00`, `every 10min`, `5min`.
    pub spec: String,
    /// systemd's normalized form, or how a span is understood.
    pub normalized: String,
    /// `call <target> <Interface.Method> [ARG…]` or `workflow <process>`.
    pub action: String,
    /// Microseconds since the Unix epoch; 0 when it will not fire again.
    pub next_elapse_usec: u64,
    /// 0 when it has not fired yet.
    pub last_fired_usec: u64,
    /// `ok`, `running`, or why the last firing failed.
    pub last_result: String,
    pub fire_count: u64,
}

/// One process class (`ListClasses`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct ClassInfo {
    /// `classical`, `quantum`, `hybrid`, `framework`.
    pub name: String,
    /// `quantumos-<name>.slice`.
    pub slice: String,
    pub cpu_weight: u64,
    pub io_weight: u64,
    pub memory_low: u64,
    /// Processes in the slice now.
    pub pids: Vec<u32>,
    /// Scopes in the slice and units given this class's weights.
    pub members: Vec<String>,
    /// CPU time used by the slice, microseconds.
    pub cpu_usage_usec: u64,
    pub memory_bytes: u64,
}

/// The answer of `ShouldUseQuantum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct QuantumDecision {
    pub use_quantum: bool,
    pub reason: String,
    /// Estimated seconds; infinite when it cannot run at all.
    pub classical_seconds: f64,
    pub quantum_seconds: f64,
    /// The device the quantum estimate is for.
    pub device: String,
}

#[proxy(
    interface = "org.quantumos.Time1",
    default_service = "org.quantumos.Time1",
    default_path = "/org/quantumos/Time1"
)]
pub trait Time1 {
    /// Needs `org.quantumos.time.manage-timers`.
    fn add_timer(&self, name: &str, spec: &str, action: &str) -> zbus::Result<TimerInfo>;
    /// Needs `org.quantumos.time.manage-timers`.
    fn remove_timer(&self, name: &str) -> zbus::Result<()>;
    fn list_timers(&self) -> zbus::Result<Vec<TimerInfo>>;

    /// Moves a process into its class's slice. Needs `org.quantumos.time.classify`.
    fn classify_process(&self, pid: u32, class: &str) -> zbus::Result<()>;
    /// Gives a unit its class's weights. Needs `org.quantumos.time.classify`.
    fn classify_unit(&self, unit: &str, class: &str) -> zbus::Result<()>;
    fn list_classes(&self) -> zbus::Result<Vec<ClassInfo>>;

    /// `problem`: `search`, `optimization` or `simulation`; `size`: bits, variables or qubits.
    fn should_use_quantum(
        &self,
        problem: &str,
        size: u32,
        budget_seconds: f64,
    ) -> zbus::Result<QuantumDecision>;

    /// A timer fired; `result` is `ok` or why its action failed.
    #[zbus(signal)]
    fn timer_fired(&self, name: &str, result: &str) -> zbus::Result<()>;
}
