//! The TIME dimension: timers with systemd's calendar and time span syntax that call the
//! other dimensions ([`timers`], [`calendar`], [`timespan`]); the AQUA process classes,
//! applied as cgroup weights through systemd ([`classes`]); and the CQEA decision between
//! classical and quantum execution ([`cqea`]). [`Time`] holds the daemon's state; `bus.rs`
//! serves it as `org.quantumos.Time1`.

pub mod bus;
pub mod calendar;
pub mod classes;
pub mod cqea;
mod entry;
pub mod timers;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;
/// systemd time spans, shared with qos-ctl (`--since 1h`).
pub use steppps::timespan;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use steppps::Error;
use steppps::api::quantum::DeviceInfo;
use steppps::api::time::{ClassInfo, QuantumDecision, TimerInfo};
use steppps::daemon::Vitals;

use crate::classes::{CLASSES, ProcessClass, Rule, RuleConfig, UnitClasses, Weights};
use crate::cqea::{Device, DeviceKind, Machine, Problem};
use crate::timers::{TimerError, TimerRecord, TimerStore};

/// `/etc/quantumos/time.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seconds between scans of /proc for processes that `rules` classify, when no exec
    /// notifications can be read (neither the steppps module nor the proc connector).
    pub scan_interval_sec: f64,
    /// Weights per class, overriding the shipped ones: `[classes.quantum] cpu_weight = 800`.
    pub classes: BTreeMap<String, Weights>,
    /// `[[rules]] exe = "/usr/bin/python3*"  class = "hybrid"`, or `unit = "…"`.
    pub rules: Vec<RuleConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scan_interval_sec: 5.0,
            classes: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

impl Config {
    /// Checks names, ranges and rules; returns the parsed rules and effective weights.
    pub fn validate(&self) -> anyhow::Result<(Vec<Rule>, BTreeMap<ProcessClass, Weights>)> {
        if !(0.5..=3600.0).contains(&self.scan_interval_sec) {
            anyhow::bail!("time.toml: scan_interval_sec must be between 0.5 and 3600");
        }
        let mut weights: BTreeMap<ProcessClass, Weights> = CLASSES
            .iter()
            .map(|&c| (c, classes::default_weights(c)))
            .collect();
        for (name, w) in &self.classes {
            let class: ProcessClass = name
                .parse()
                .map_err(|e| anyhow::anyhow!("time.toml: [classes.{name}]: {e}"))?;
            w.validate(class).map_err(anyhow::Error::msg)?;
            weights.insert(class, *w);
        }
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::from_config(i, r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok((rules, weights))
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn usec(unix: Option<i64>) -> u64 {
    unix.map_or(0, |s| {
        u64::try_from(s).unwrap_or(0).saturating_mul(1_000_000)
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl From<TimerError> for Error {
    fn from(e: TimerError) -> Self {
        match e {
            TimerError::NotFound(_) => Error::not_found(e.to_string()),
            TimerError::Save { .. } => Error::failed(e.to_string()),
            _ => Error::invalid_argument(e.to_string()),
        }
    }
}

/// The time dimension's state.
#[derive(Debug)]
pub struct Time {
    timers: Mutex<TimerStore>,
    /// Wakes the scheduler when timers change.
    pub timers_changed: tokio::sync::Notify,
    /// Measured the first time a decision needs it, not at start: the measurement copies
    /// 32 MiB five times (about 150 ms here, seconds under an emulator), and at boot every
    /// daemon competes for the CPU.
    machine: OnceLock<Machine>,
    pub rules: Vec<Rule>,
    weights: BTreeMap<ProcessClass, Weights>,
    unit_classes: Mutex<UnitClasses>,
    state_dir: PathBuf,
    pub proc_root: PathBuf,
    cgroup_root: PathBuf,
    /// Set when process classes cannot be applied (no systemd): shown in Health.
    classes_note: Mutex<Option<String>>,
    decisions: AtomicU64,
    fired: AtomicU64,
}

impl Time {
    /// Opens the state under `state_dir`. Returns a warning to log
    /// when the timer file was unreadable and was set aside.
    pub fn open(state_dir: &Path, config: &Config) -> anyhow::Result<(Time, Option<String>)> {
        let (rules, weights) = config.validate()?;
        std::fs::create_dir_all(state_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the state directory {}: {e}",
                state_dir.display()
            )
        })?;
        let (store, warning) = TimerStore::open(state_dir)?;
        let unit_classes = std::fs::read(state_dir.join("unit-classes.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let time = Time {
            timers: Mutex::new(store),
            timers_changed: tokio::sync::Notify::new(),
            machine: OnceLock::new(),
            rules,
            weights,
            unit_classes: Mutex::new(unit_classes),
            state_dir: state_dir.to_path_buf(),
            proc_root: PathBuf::from("/proc"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            classes_note: Mutex::new(None),
            decisions: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        };
        Ok((time, warning))
    }

    fn info(&self, t: &TimerRecord, now: i64) -> TimerInfo {
        TimerInfo {
            name: t.name.clone(),
            spec: t.spec.clone(),
            normalized: t.schedule().map(|s| s.describe()).unwrap_or_default(),
            action: t.action.clone(),
            next_elapse_usec: usec(t.next_elapse(now)),
            last_fired_usec: usec(t.last_fired),
            last_result: t.last_result.clone(),
            fire_count: t.fire_count,
        }
    }

    pub fn add_timer(&self, name: &str, spec: &str, action: &str) -> Result<TimerInfo, Error> {
        let now = unix_now();
        let record = lock(&self.timers).add(name, spec, action, now)?;
        self.timers_changed.notify_one();
        Ok(self.info(&record, now))
    }

    pub fn remove_timer(&self, name: &str) -> Result<(), Error> {
        lock(&self.timers).remove(name)?;
        self.timers_changed.notify_one();
        Ok(())
    }

    pub fn list_timers(&self) -> Vec<TimerInfo> {
        let now = unix_now();
        let store = lock(&self.timers);
        store.list().map(|t| self.info(t, now)).collect()
    }

    /// Timers due now, already marked fired and saved.
    pub fn take_due(&self, now: i64) -> Result<Vec<TimerRecord>, TimerError> {
        let due = lock(&self.timers).take_due(now)?;
        self.fired.fetch_add(due.len() as u64, Ordering::Relaxed);
        Ok(due)
    }

    pub fn next_wakeup(&self, now: i64) -> Option<i64> {
        lock(&self.timers).next_wakeup(now)
    }

    pub fn record_result(&self, name: &str, result: String) -> Result<(), TimerError> {
        lock(&self.timers).set_result(name, result)
    }

    /// Decides against `devices` (quantumd's, as [`Time::devices_from_quantumd`] makes them),
    /// or against the built-in simulator's model of this machine when quantumd is absent.
    pub fn should_use_quantum(
        &self,
        problem: &str,
        size: u32,
        budget_seconds: f64,
        devices: Option<Vec<Device>>,
    ) -> Result<QuantumDecision, Error> {
        let problem: Problem = problem.parse().map_err(Error::invalid_argument)?;
        let devices = devices.unwrap_or_else(|| vec![Device::local_simulator(self.machine())]);
        let d = cqea::decide(problem, size, budget_seconds, self.machine(), &devices)
            .map_err(Error::invalid_argument)?;
        self.decisions.fetch_add(1, Ordering::Relaxed);
        Ok(QuantumDecision {
            use_quantum: d.use_quantum,
            reason: d.reason,
            classical_seconds: d.classical_seconds,
            quantum_seconds: d.quantum_seconds,
            device: d.device,
        })
    }

    /// quantumd's devices as the cost model sees them. Its simulators run on this machine,
    /// so they cannot hold more qubits than its memory, whatever they advertise.
    pub fn devices_from_quantumd(&self, devices: &[DeviceInfo]) -> Vec<Device> {
        let limit = self.machine().max_simulated_qubits();
        devices
            .iter()
            .filter(|d| d.kind.contains("simulator"))
            .map(|d| Device {
                name: d.name.clone(),
                kind: DeviceKind::Simulator,
                max_qubits: d.max_qubits.min(limit),
            })
            .collect()
    }

    /// The machine as decisions see it, measured on first use (this call blocks meanwhile).
    pub fn machine(&self) -> &Machine {
        self.machine.get_or_init(Machine::measure)
    }

    /// The machine if a decision has measured it already.
    pub fn measured_machine(&self) -> Option<&Machine> {
        self.machine.get()
    }

    pub fn weights(&self, class: ProcessClass) -> Weights {
        self.weights.get(&class).copied().unwrap_or_default()
    }

    /// Checks a `ClassifyProcess` request: the class exists and so does the process.
    pub fn check_process(&self, pid: u32, class: &str) -> Result<ProcessClass, Error> {
        let class: ProcessClass = class.parse().map_err(Error::invalid_argument)?;
        if !classes::process_exists(&self.proc_root, pid) {
            return Err(Error::not_found(format!("no process with pid {pid}")));
        }
        Ok(class)
    }

    pub fn parse_class(&self, class: &str) -> Result<ProcessClass, Error> {
        class.parse().map_err(Error::invalid_argument)
    }

    /// Remembers a unit's class so its weights come back after a reboot.
    pub fn remember_unit(&self, unit: &str, class: ProcessClass) -> Result<(), Error> {
        let mut units = lock(&self.unit_classes);
        units.insert(unit.to_string(), class);
        let bytes = serde_json::to_vec_pretty(&*units).map_err(|e| Error::failed(e.to_string()))?;
        steppps::state::write_atomic(&self.state_dir.join("unit-classes.json"), &bytes)
            .map_err(|e| Error::failed(format!("cannot save unit classes: {e}")))
    }

    /// Units to give weights at start: remembered ones and those named by unit rules.
    pub fn units_to_apply(&self) -> Vec<(String, ProcessClass)> {
        let mut units: Vec<(String, ProcessClass)> = lock(&self.unit_classes)
            .iter()
            .map(|(u, c)| (u.clone(), *c))
            .collect();
        units.extend(self.rules.iter().filter_map(|r| match r {
            Rule::Unit(u, c) => Some((u.clone(), *c)),
            Rule::Exe(..) => None,
        }));
        units
    }

    pub fn list_classes(&self) -> Vec<ClassInfo> {
        let units = lock(&self.unit_classes).clone();
        CLASSES
            .iter()
            .map(|&class| {
                let usage = classes::slice_usage(&self.cgroup_root, class);
                let w = self.weights(class);
                let mut members = usage.members;
                members.extend(
                    units
                        .iter()
                        .filter(|(_, c)| **c == class)
                        .map(|(u, _)| u.clone()),
                );
                ClassInfo {
                    name: class.to_string(),
                    slice: class.slice(),
                    cpu_weight: w.cpu_weight,
                    io_weight: w.io_weight,
                    memory_low: w.memory_low,
                    pids: usage.pids,
                    members,
                    cpu_usage_usec: usage.cpu_usage_usec,
                    memory_bytes: usage.memory_bytes,
                }
            })
            .collect()
    }

    pub fn set_classes_note(&self, note: Option<String>) {
        *lock(&self.classes_note) = note;
    }
}

impl Vitals for Time {
    fn health(&self) -> (bool, String) {
        let timers = lock(&self.timers).list().count();
        let classes = lock(&self.classes_note)
            .clone()
            .unwrap_or_else(|| "process classes applied through systemd".into());
        (
            true,
            format!(
                "{timers} timers; {classes}; simulator limit {} qubits on this machine",
                self.measured_machine().map_or_else(
                    || cqea::qubits_fitting(cqea::memory_available()),
                    Machine::max_simulated_qubits
                )
            ),
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let mut metrics = HashMap::from([
            ("timers".into(), lock(&self.timers).list().count() as f64),
            (
                "timers_fired".into(),
                self.fired.load(Ordering::Relaxed) as f64,
            ),
            (
                "cqea_decisions".into(),
                self.decisions.load(Ordering::Relaxed) as f64,
            ),
        ]);
        // Reading metrics does not measure the machine: its figures appear after a decision.
        if let Some(machine) = self.measured_machine() {
            metrics.insert(
                "machine_evaluations_per_sec".into(),
                machine.evaluations_per_sec,
            );
            metrics.insert(
                "machine_bandwidth_bytes_per_sec".into(),
                machine.bandwidth_bytes_per_sec,
            );
        }
        metrics
    }
}
