//! The job scheduler: a DAG of jobs (`dependsOn`), a priority queue, device reservations, one
//! worker thread that runs jobs through the driver, and the SQLite store underneath.
//!
//! States: `PENDING` (waiting for dependencies) → `QUEUED` → `RUNNING` → `DONE | ERROR |
//! CANCELLED`. Jobs are compiled when submitted, so SubmitJob answers with
//! jobs already QUEUED (or PENDING); a dependency that ends in ERROR or CANCELLED fails the
//! jobs waiting for it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qsim::{Circuit, PauliSum, PauliTerm};
use serde_json::json;
use steppps::api::quantum::{DeviceInfo, DeviceStatus, JobResults, JobStatus};
use tracing::{debug, info, warn};

use crate::compiler;
use crate::driver::{DriverError, Execution, QDriver, target_of};
use crate::jobspec::{self, JobSpec};
use crate::store::{Store, StoredJob};
use crate::variational;

pub const TERMINAL: [&str; 3] = ["DONE", "ERROR", "CANCELLED"];

/// A state change, for the JobUpdated signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    pub id: String,
    pub state: String,
    pub message: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Failed(String),
}

struct Job {
    status: JobStatus,
    spec: JobSpec,
    seq: u64,
    compiled: Option<Circuit>,
}

#[derive(Debug, Clone)]
struct Reservation {
    token: String,
    until_ms: u64,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Job>,
    by_name: HashMap<String, String>,
    /// PENDING and QUEUED jobs: (higher priority first, then submission order).
    queue: BTreeSet<(Reverse<i32>, u64)>,
    seq_to_id: HashMap<u64, String>,
    running: Option<(String, Arc<AtomicBool>)>,
    reservations: HashMap<String, Reservation>,
    next_seq: u64,
    /// Seqs of the DONE, ERROR and CANCELLED jobs in the order they finished: the order in
    /// which [`Scheduler::prune`] forgets them.
    finished: VecDeque<u64>,
}

type Listener = Box<dyn Fn(&JobEvent) + Send + Sync>;

/// The scheduler; share it in an `Arc` and call [`Scheduler::start`] once.
pub struct Scheduler {
    state: Mutex<State>,
    wake: Condvar,
    store: Mutex<Store>,
    driver: Arc<dyn QDriver>,
    devices: Vec<DeviceInfo>,
    artifacts: Option<PathBuf>,
    listener: Listener,
    /// How many finished jobs are kept (0: all); see [`Scheduler::keep_finished`].
    keep_finished: usize,
    pub submitted: AtomicU64,
    pub finished: AtomicU64,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not take every later request down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Scheduler {
    /// Loads the store (RUNNING jobs go back to QUEUED) and prepares the artifacts directory
    /// (`None`: keep no artifacts, for benchmarks).
    pub fn new(
        store: Store,
        driver: Arc<dyn QDriver>,
        artifacts: Option<PathBuf>,
        listener: Listener,
    ) -> Result<Scheduler, SchedError> {
        driver
            .initialize()
            .map_err(|e| SchedError::Failed(format!("driver: {e}")))?;
        let devices = driver.devices();
        let rows = store
            .load()
            .map_err(|e| SchedError::Failed(format!("cannot read the job store: {e}")))?;
        let mut state = State::default();
        let mut finished_at = Vec::new();
        for row in rows {
            state.next_seq = state.next_seq.max(row.seq + 1);
            let mut status = row.status;
            let finished = TERMINAL.contains(&status.state.as_str());
            // A finished job is only its status from now on; its program and circuit stay in
            // the store (and its artifacts directory), not in memory.
            let spec: Result<JobSpec, _> = if finished {
                Ok(JobSpec::default())
            } else {
                serde_json::from_str(&row.spec)
            };
            let compiled = if row.compiled.is_empty() || finished {
                None
            } else {
                qsim::aqo::parse(&row.compiled, &HashMap::new()).ok()
            };
            let Ok(spec) = spec else {
                status.state = "ERROR".into();
                status.message = "the stored JobSpec can no longer be read".into();
                let _ = store.set_state(&status.id, "ERROR", &status.message, now_ms());
                continue;
            };
            if finished {
                finished_at.push((status.updated_ms, row.seq));
            } else {
                state.queue.insert((Reverse(status.priority), row.seq));
            }
            state.seq_to_id.insert(row.seq, status.id.clone());
            state.by_name.insert(status.name.clone(), status.id.clone());
            state.jobs.insert(
                status.id.clone(),
                Job {
                    status,
                    spec,
                    seq: row.seq,
                    compiled,
                },
            );
        }
        // Finished in the order their last change was stored; same instant: submission order.
        finished_at.sort_unstable();
        state.finished = finished_at.into_iter().map(|(_, seq)| seq).collect();
        if !state.queue.is_empty() {
            info!(
                "{} job(s) waiting from before the restart",
                state.queue.len()
            );
        }
        state.next_seq = state.next_seq.max(1);
        if let Some(dir) = &artifacts {
            std::fs::create_dir_all(dir.join("jobs"))
                .map_err(|e| SchedError::Failed(format!("{}: {e}", dir.display())))?;
        }
        Ok(Scheduler {
            state: Mutex::new(state),
            wake: Condvar::new(),
            store: Mutex::new(store),
            driver,
            devices,
            artifacts,
            listener,
            keep_finished: 0,
            submitted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        })
    }

    /// Keeps the newest `count` finished jobs (DONE, ERROR, CANCELLED) and forgets older
    /// ones, their stored rows and artifacts too; 0 keeps them all (the default).
    pub fn keep_finished(&mut self, count: usize) {
        self.keep_finished = count;
    }

    /// Forgets the oldest finished jobs beyond [`Scheduler::keep_finished`]: from memory, the
    /// store and the artifacts directory. A finished job a waiting job depends on stays until
    /// that one has looked at it.
    fn prune(&self) {
        if self.keep_finished == 0 {
            return;
        }
        let forgotten: Vec<String> = {
            let mut state = lock(&self.state);
            let excess = state.finished.len().saturating_sub(self.keep_finished);
            if excess == 0 {
                return;
            }
            let awaited: HashSet<String> = state
                .queue
                .iter()
                .filter_map(|(_, seq)| state.seq_to_id.get(seq))
                .filter_map(|id| state.jobs.get(id))
                .flat_map(|j| j.status.depends_on.iter().cloned())
                .collect();
            let oldest: Vec<(u64, String)> = state
                .finished
                .iter()
                .filter_map(|seq| Some((*seq, state.seq_to_id.get(seq)?.clone())))
                .filter(|(_, id)| !awaited.contains(id))
                .take(excess)
                .collect();
            let seqs: HashSet<u64> = oldest.iter().map(|(seq, _)| *seq).collect();
            state.finished.retain(|seq| !seqs.contains(seq));
            for (seq, id) in &oldest {
                state.seq_to_id.remove(seq);
                if let Some(job) = state.jobs.remove(id)
                    && state.by_name.get(&job.status.name) == Some(id)
                {
                    state.by_name.remove(&job.status.name);
                }
            }
            oldest.into_iter().map(|(_, id)| id).collect()
        };
        if let Err(e) = lock(&self.store).delete(&forgotten) {
            warn!(
                "cannot delete {} finished job(s) from the store: {e}",
                forgotten.len()
            );
        }
        for id in &forgotten {
            if let Some(dir) = self.job_dir(id)
                && let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!("{}: {e}", dir.display());
            }
        }
        debug!(
            "forgot {} finished job(s), the oldest beyond the {} kept (keep_finished_jobs)",
            forgotten.len(),
            self.keep_finished
        );
    }

    /// Starts the worker thread.
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        // A lowered keep_finished_jobs applies from the start.
        self.prune();
        let me = self.clone();
        std::thread::Builder::new()
            .name("quantum-worker".into())
            .spawn(move || me.work())?;
        Ok(())
    }

    pub fn devices(&self) -> Vec<DeviceInfo> {
        let state = lock(&self.state);
        self.devices
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.status = Self::device_state(&state, &d.name, &self.driver);
                d
            })
            .collect()
    }

    fn device_state(state: &State, name: &str, driver: &Arc<dyn QDriver>) -> String {
        let base = driver
            .device_status(name)
            .unwrap_or_else(|_| "offline".into());
        if base != "online" {
            return base;
        }
        if state
            .reservations
            .get(name)
            .is_some_and(|r| r.until_ms > now_ms())
        {
            return "reserved".into();
        }
        let busy = state
            .running
            .as_ref()
            .is_some_and(|(id, _)| state.jobs.get(id).is_some_and(|j| j.status.device == name));
        if busy { "busy".into() } else { "online".into() }
    }

    pub fn device(&self, name: &str) -> Result<DeviceInfo, SchedError> {
        self.devices()
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                SchedError::NotFound(format!(
                    "no device `{name}`; devices: {}",
                    self.device_names()
                ))
            })
    }

    fn device_names(&self) -> String {
        self.devices
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn device_status(&self, name: &str) -> Result<DeviceStatus, SchedError> {
        let d = self.device(name)?;
        let state = lock(&self.state);
        let queued = state
            .queue
            .iter()
            .filter_map(|(_, seq)| state.seq_to_id.get(seq).and_then(|id| state.jobs.get(id)))
            .filter(|j| j.status.device == name)
            .count() as u32;
        let running_job = state
            .running
            .as_ref()
            .filter(|(id, _)| state.jobs.get(id).is_some_and(|j| j.status.device == name))
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let r = state
            .reservations
            .get(name)
            .filter(|r| r.until_ms > now_ms());
        Ok(DeviceStatus {
            name: d.name,
            status: d.status,
            queued_jobs: queued,
            running_job,
            reserved_by: r
                .map(|r| r.token.chars().take(8).collect())
                .unwrap_or_default(),
            reserved_until_ms: r.map_or(0, |r| r.until_ms),
        })
    }

    /// Reserves `device` for `seconds`: only jobs naming the returned token run on it until then.
    pub fn reserve(&self, device: &str, seconds: u32) -> Result<String, SchedError> {
        self.device(device)?;
        if seconds == 0 || seconds > 7 * 24 * 3600 {
            return Err(SchedError::Invalid(format!(
                "seconds: {seconds} is out of range (1 to 604800)"
            )));
        }
        let mut state = lock(&self.state);
        if let Some(r) = state
            .reservations
            .get(device)
            .filter(|r| r.until_ms > now_ms())
        {
            return Err(SchedError::Busy(format!(
                "{device} is reserved for {} more second(s)",
                (r.until_ms - now_ms()) / 1000
            )));
        }
        let token = format!("rsv-{}", random_hex());
        state.reservations.insert(
            device.to_string(),
            Reservation {
                token: token.clone(),
                until_ms: now_ms() + seconds as u64 * 1000,
            },
        );
        Ok(token)
    }

    fn pick_device(&self, spec: &JobSpec) -> Result<DeviceInfo, SchedError> {
        let t = &spec.spec.target;
        if let Some(name) = &t.device {
            return self
                .devices
                .iter()
                .find(|d| &d.name == name)
                .cloned()
                .ok_or_else(|| {
                    SchedError::Invalid(format!(
                        "spec.target.device: no device `{name}`; devices: {}",
                        self.device_names()
                    ))
                });
        }
        let sel = t.selector.clone().unwrap_or_default();
        self.devices
            .iter()
            .find(|d| {
                sel.min_qubits.is_none_or(|m| d.max_qubits >= m)
                    && sel.kind.as_ref().is_none_or(|k| &d.kind == k)
                    && sel.noisy.is_none_or(|n| n != d.noise.is_empty())
            })
            .cloned()
            .ok_or_else(|| SchedError::Invalid("spec.target.selector: no device matches".into()))
    }

    /// Accepts one or more JobSpec documents: validates, resolves dependencies (names in the
    /// same submission or earlier jobs' names or ids), refuses cycles, compiles, persists,
    /// queues. Returns the new ids.
    pub fn submit(&self, text: &str) -> Result<Vec<String>, SchedError> {
        let specs = jobspec::parse_documents(text).map_err(|e| SchedError::Invalid(e.0))?;
        let mut names = HashSet::new();
        for s in &specs {
            if !names.insert(s.metadata.name.clone()) {
                return Err(SchedError::Invalid(format!(
                    "metadata.name: `{}` appears twice in this submission",
                    s.metadata.name
                )));
            }
        }
        check_cycles(&specs)?;
        // Compile outside the lock.
        let mut prepared = Vec::new();
        for s in &specs {
            let device = self.pick_device(s)?;
            let compiled = match &s.spec.program {
                Some(p) => {
                    let bindings: HashMap<String, f64> = s
                        .spec
                        .parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .collect();
                    let source = p.source.as_deref().unwrap_or_default();
                    let circuit = compiler::parse(source, &p.format, &bindings)
                        .map_err(|e| SchedError::Invalid(format!("spec.program.source: {e}")))?;
                    if device.max_qubits > 0 && circuit.num_qubits > device.max_qubits as usize {
                        return Err(SchedError::Invalid(format!(
                            "spec.program: the circuit has {} qubits; {} simulates at most {}{}",
                            circuit.num_qubits,
                            device.name,
                            device.max_qubits,
                            qsim::memory::state_bytes(circuit.num_qubits)
                                .map(|b| format!(
                                    " (its state vector would need {})",
                                    qsim::memory::human_bytes(b)
                                ))
                                .unwrap_or_default()
                        )));
                    }
                    for (k, text) in &s.spec.outputs.expectations {
                        parse_observable(text, circuit.num_qubits).map_err(|e| {
                            SchedError::Invalid(format!("spec.outputs.expectations.{k}: {e}"))
                        })?;
                    }
                    let c =
                        compiler::compile(&circuit, &target_of(&device), s.spec.compiler.optimize)
                            .map_err(|e| SchedError::Invalid(format!("spec.program: {e}")))?;
                    Some((c.circuit, source.to_string(), p.format.clone()))
                }
                None => {
                    let a = s.spec.ansatz.as_ref().map_or(0, |a| a.qubits);
                    if a > device.max_qubits {
                        return Err(SchedError::Invalid(format!(
                            "spec.ansatz.qubits: {a} is more than {} has ({})",
                            device.name, device.max_qubits
                        )));
                    }
                    if !device.native_gates.is_empty() {
                        return Err(SchedError::Invalid(format!(
                            "spec.target: variational jobs run on exact state vectors; {} is a noisy device, use sim-statevector",
                            device.name
                        )));
                    }
                    None
                }
            };
            prepared.push((s.clone(), device, compiled));
        }
        let mut state = lock(&self.state);
        let now = now_ms();
        let mut rows = Vec::new();
        let mut new_ids: HashMap<String, String> = HashMap::new();
        for (offset, (s, _, _)) in prepared.iter().enumerate() {
            new_ids.insert(
                s.metadata.name.clone(),
                format!("job-{}", state.next_seq + offset as u64),
            );
        }
        for (offset, (s, device, compiled)) in prepared.iter().enumerate() {
            let seq = state.next_seq + offset as u64;
            let id = format!("job-{seq}");
            let mut deps = Vec::new();
            for d in &s.spec.depends_on {
                let dep = new_ids
                    .get(d)
                    .cloned()
                    .or_else(|| state.jobs.contains_key(d).then(|| d.clone()))
                    .or_else(|| state.by_name.get(d).cloned())
                    .ok_or_else(|| SchedError::Invalid(format!("spec.dependsOn: no job named `{d}` (give a job id or the name of an earlier or same-submission job)")))?;
                if dep == id {
                    return Err(SchedError::Invalid(format!(
                        "spec.dependsOn: `{d}` is the job itself: a cycle"
                    )));
                }
                // `[a, a]` waits for `a` once.
                if !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
            let waiting = deps
                .iter()
                .any(|d| state.jobs.get(d).is_none_or(|j| j.status.state != "DONE"));
            let status = JobStatus {
                id: id.clone(),
                name: s.metadata.name.clone(),
                kind: s.kind.clone(),
                state: if waiting { "PENDING" } else { "QUEUED" }.into(),
                priority: s.spec.priority,
                device: device.name.clone(),
                submitted_ms: now,
                updated_ms: now,
                message: String::new(),
                depends_on: deps,
            };
            let spec_json =
                serde_json::to_string(s).map_err(|e| SchedError::Failed(e.to_string()))?;
            let aqo = compiled
                .as_ref()
                .map(|(c, _, _)| qsim::aqo::write(c))
                .unwrap_or_default();
            rows.push(StoredJob {
                seq,
                status,
                spec: spec_json,
                compiled: aqo,
            });
        }
        lock(&self.store)
            .insert(&rows)
            .map_err(|e| SchedError::Failed(format!("cannot store the job: {e}")))?;
        let mut ids = Vec::new();
        let mut events = Vec::new();
        for (row, (spec, _, compiled)) in rows.into_iter().zip(prepared) {
            let id = row.status.id.clone();
            self.write_artifacts(
                &id,
                &spec,
                compiled
                    .as_ref()
                    .map(|(c, src, fmt)| (c, src.as_str(), fmt.as_str())),
                &row.compiled,
            );
            state.queue.insert((Reverse(row.status.priority), row.seq));
            state.seq_to_id.insert(row.seq, id.clone());
            state.by_name.insert(row.status.name.clone(), id.clone());
            events.push(JobEvent {
                id: id.clone(),
                state: row.status.state.clone(),
                message: String::new(),
            });
            state.jobs.insert(
                id.clone(),
                Job {
                    status: row.status,
                    spec,
                    seq: row.seq,
                    compiled: compiled.map(|(c, _, _)| c),
                },
            );
            ids.push(id);
        }
        state.next_seq += ids.len() as u64;
        drop(state);
        self.submitted
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.wake.notify_all();
        for e in &events {
            self.log(&e.id, &format!("submitted, {}", e.state));
            (self.listener)(e);
        }
        Ok(ids)
    }

    fn job_dir(&self, id: &str) -> Option<PathBuf> {
        self.artifacts.as_ref().map(|d| d.join("jobs").join(id))
    }

    fn write_artifacts(
        &self,
        id: &str,
        spec: &JobSpec,
        program: Option<(&Circuit, &str, &str)>,
        aqo: &str,
    ) {
        let Some(dir) = self.job_dir(id) else { return };
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let spec_json = serde_json::to_string_pretty(spec).unwrap_or_default();
            write_replace(&dir.join("spec.json"), spec_json.as_bytes())?;
            if let Some((_, source, format)) = program {
                let ext = if format == "aqo" { "aqo.json" } else { "qasm" };
                write_replace(&dir.join(format!("source.{ext}")), source.as_bytes())?;
                write_replace(&dir.join("compiled.aqo.json"), aqo.as_bytes())?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            warn!("{id}: cannot write artifacts in {}: {e}", dir.display());
        }
    }

    fn log(&self, id: &str, line: &str) {
        let Some(dir) = self.job_dir(id) else { return };
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log.txt"))
        {
            let _ = writeln!(f, "{} {line}", now_ms());
        }
    }

    pub fn status(&self, id: &str) -> Result<JobStatus, SchedError> {
        let state = lock(&self.state);
        let id = resolve(&state, id)?;
        Ok(state.jobs[&id].status.clone())
    }

    /// Jobs in state `filter` (any when empty), newest first: at most `limit` (0: no limit),
    /// and never more than one reply carries ([`steppps::api::MAX_REPLY_BYTES`]).
    pub fn list(&self, filter: &str, limit: u32) -> Vec<JobStatus> {
        self.list_within(filter, limit, steppps::api::MAX_REPLY_BYTES)
    }

    fn list_within(&self, filter: &str, limit: u32, budget: usize) -> Vec<JobStatus> {
        let state = lock(&self.state);
        let mut jobs: Vec<&Job> = state
            .jobs
            .values()
            .filter(|j| filter.is_empty() || j.status.state.eq_ignore_ascii_case(filter))
            .collect();
        jobs.sort_by_key(|j| Reverse(j.seq));
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        // Up to keep_finished_jobs and every waiting one: "all of them" must still fit in one
        // reply.
        let shown = jobs.into_iter().take(limit).map(|j| &j.status);
        steppps::api::fit_in(shown, budget, |s| wire_size(s))
            .into_iter()
            .cloned()
            .collect()
    }

    pub fn counts(&self) -> BTreeMap<String, usize> {
        let state = lock(&self.state);
        let mut m = BTreeMap::new();
        for j in state.jobs.values() {
            *m.entry(j.status.state.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Cancels a waiting job at once, or asks a running one to stop.
    pub fn cancel(&self, id: &str) -> Result<JobStatus, SchedError> {
        let mut state = lock(&self.state);
        let id = resolve(&state, id)?;
        let job = &state.jobs[&id];
        let s = job.status.state.clone();
        if TERMINAL.contains(&s.as_str()) {
            return Err(SchedError::Busy(format!(
                "{id} already ended ({s}); nothing to cancel"
            )));
        }
        if let Some((rid, flag)) = &state.running {
            if *rid == id {
                flag.store(true, Ordering::Relaxed);
                return Ok(job.status.clone());
            }
        }
        let key = (Reverse(job.status.priority), job.seq);
        state.queue.remove(&key);
        drop(state);
        self.transition(&id, "CANCELLED", "cancelled by request");
        self.status(&id)
    }

    /// Records and announces a state change.
    fn transition(&self, id: &str, new_state: &str, message: &str) {
        let now = now_ms();
        if let Err(e) = lock(&self.store).set_state(id, new_state, message, now) {
            warn!("{id}: cannot store state {new_state}: {e}");
        }
        {
            let mut state = lock(&self.state);
            if let Some(j) = state.jobs.get_mut(id) {
                j.status.state = new_state.to_string();
                j.status.message = message.to_string();
                j.status.updated_ms = now;
                // A finished job lets go of its program (up to 8 MiB) and compiled circuit,
                // which only a run needs. The store keeps both.
                if TERMINAL.contains(&new_state) {
                    j.spec = JobSpec::default();
                    j.compiled = None;
                    let seq = j.seq;
                    state.finished.push_back(seq);
                }
            }
        }
        if TERMINAL.contains(&new_state) {
            self.prune();
        }
        self.log(id, &format!("{new_state} {message}"));
        (self.listener)(&JobEvent {
            id: id.to_string(),
            state: new_state.to_string(),
            message: message.to_string(),
        });
    }

    pub fn results(&self, id: &str) -> Result<JobResults, SchedError> {
        let status = self.status(id)?;
        match status.state.as_str() {
            "DONE" => {}
            "ERROR" => {
                return Err(SchedError::Failed(format!(
                    "{} failed: {}",
                    status.id, status.message
                )));
            }
            "CANCELLED" => {
                return Err(SchedError::NotFound(format!(
                    "{} was cancelled; it has no results",
                    status.id
                )));
            }
            s => {
                return Err(SchedError::Busy(format!(
                    "{} is {s}; results come when it is DONE",
                    status.id
                )));
            }
        }
        let dir = self
            .job_dir(&status.id)
            .ok_or_else(|| SchedError::NotFound("this scheduler keeps no artifacts".into()))?;
        let text = std::fs::read_to_string(dir.join("results.json")).map_err(|e| {
            SchedError::Failed(format!("{}: {e}", dir.join("results.json").display()))
        })?;
        let mut doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SchedError::Failed(format!("results.json: {e}")))?;
        let mut counts: HashMap<String, u64> = doc
            .get("counts")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let outcomes = counts.len() as u64;
        let counts_size: usize = counts.keys().map(|k| k.len() + COUNT_WIRE_BYTES).sum();
        let document = if text.len() + counts_size <= steppps::api::MAX_REPLY_BYTES {
            text
        } else {
            // Too much for one message: the most frequent outcomes that fit, and the document
            // without its counts (the whole of it stays in the job's artifacts).
            counts = most_frequent(counts, steppps::api::MAX_REPLY_BYTES / 2);
            if let Some(d) = doc.as_object_mut() {
                d.remove("counts");
            }
            doc.to_string()
        };
        let f = |k: &str| {
            doc.get(k)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(f64::NAN)
        };
        Ok(JobResults {
            id: status.id.clone(),
            state: status.state,
            device: status.device,
            shots: doc
                .get("shots")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            counts,
            outcomes,
            duration_seconds: f("duration_seconds"),
            energy: f("energy"),
            exact_energy: f("exact_energy"),
            parameters: doc
                .get("parameters")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
                .unwrap_or_default(),
            iterations: doc
                .get("iterations")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0) as u32,
            document,
        })
    }

    /// The next runnable job, marked RUNNING; jobs whose dependencies failed are failed here.
    fn next_job(&self) -> Option<(String, Arc<AtomicBool>)> {
        let mut failed = Vec::new();
        let mut promoted = Vec::new();
        let picked = {
            let mut state = lock(&self.state);
            if state.running.is_some() {
                return None;
            }
            let now = now_ms();
            state.reservations.retain(|_, r| r.until_ms > now);
            let mut chosen = None;
            for key in state.queue.iter() {
                let Some(id) = state.seq_to_id.get(&key.1) else {
                    continue;
                };
                let job = &state.jobs[id];
                let mut blocked = false;
                let mut dead = None;
                for d in &job.status.depends_on {
                    match state.jobs.get(d).map(|j| j.status.state.as_str()) {
                        Some("DONE") => {}
                        Some(s @ ("ERROR" | "CANCELLED")) => {
                            dead = Some(format!("dependency {d} ended {s}"))
                        }
                        None => dead = Some(format!("dependency {d} is unknown")),
                        _ => blocked = true,
                    }
                }
                if let Some(reason) = dead {
                    failed.push((*key, id.clone(), reason));
                    continue;
                }
                if blocked {
                    continue;
                }
                if let Some(r) = state.reservations.get(&job.status.device) {
                    if job.spec.spec.target.reservation.as_deref() != Some(r.token.as_str()) {
                        continue;
                    }
                }
                if job.status.state == "PENDING" {
                    promoted.push(id.clone());
                }
                chosen = Some((*key, id.clone()));
                break;
            }
            for (key, _, _) in &failed {
                state.queue.remove(key);
            }
            chosen.map(|(key, id)| {
                state.queue.remove(&key);
                let flag = Arc::new(AtomicBool::new(false));
                state.running = Some((id.clone(), flag.clone()));
                (id, flag)
            })
        };
        for (_, id, reason) in failed {
            self.transition(&id, "ERROR", &reason);
        }
        for id in promoted {
            self.transition(&id, "QUEUED", "dependencies done");
        }
        if let Some((id, _)) = &picked {
            self.transition(id, "RUNNING", "");
        }
        picked
    }

    fn work(self: Arc<Self>) {
        loop {
            let Some((id, cancel)) = self.next_job() else {
                let state = lock(&self.state);
                let _ = self.wake.wait_timeout(state, Duration::from_millis(500));
                continue;
            };
            let started = Instant::now();
            // A panic in a run fails that job, not the daemon.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.execute(&id, &cancel)
            }))
            .unwrap_or_else(|_| {
                Err(DriverError::Failed(
                    "internal error while running the job".into(),
                ))
            });
            let (new_state, message) = match outcome {
                Ok(doc) => match self.store_results(&id, &doc) {
                    Ok(()) => (
                        "DONE",
                        format!("finished in {:.3} s", started.elapsed().as_secs_f64()),
                    ),
                    Err(e) => ("ERROR", format!("cannot store results: {e}")),
                },
                Err(DriverError::Cancelled) => ("CANCELLED", "cancelled while running".to_string()),
                Err(e) => ("ERROR", e.to_string()),
            };
            lock(&self.state).running = None;
            self.transition(&id, new_state, &message);
            self.finished.fetch_add(1, Ordering::Relaxed);
            // Jobs waiting on this one may now run.
            self.wake.notify_all();
        }
    }

    fn store_results(&self, id: &str, doc: &serde_json::Value) -> std::io::Result<()> {
        let Some(dir) = self.job_dir(id) else {
            return Ok(());
        };
        std::fs::create_dir_all(&dir)?;
        let text = serde_json::to_string_pretty(doc).unwrap_or_default();
        steppps::state::write_atomic(&dir.join("results.json"), text.as_bytes())
    }

    fn execute(&self, id: &str, cancel: &AtomicBool) -> Result<serde_json::Value, DriverError> {
        let (spec, compiled, device, name) = {
            let state = lock(&self.state);
            let j = &state.jobs[id];
            (
                j.spec.clone(),
                j.compiled.clone(),
                j.status.device.clone(),
                j.status.name.clone(),
            )
        };
        let start = Instant::now();
        if spec.kind == "VariationalJob" {
            let (Some(a), Some(h)) = (&spec.spec.ansatz, &spec.spec.hamiltonian) else {
                return Err(DriverError::Failed(
                    "the variational job lost its ansatz or hamiltonian".into(),
                ));
            };
            let opt = spec.spec.optimizer.clone().unwrap_or_default();
            let mut last = Instant::now();
            let r = variational::run(a, h, &opt, cancel, |it, e| {
                if last.elapsed() > Duration::from_millis(500) {
                    last = Instant::now();
                    (self.listener)(&JobEvent {
                        id: id.to_string(),
                        state: "RUNNING".into(),
                        message: format!("iteration {it}, energy {e:.6}"),
                    });
                }
            })
            .map_err(|e| {
                if e == "cancelled" {
                    DriverError::Cancelled
                } else {
                    DriverError::Failed(e)
                }
            })?;
            return Ok(json!({
                "id": id, "name": name, "kind": spec.kind, "device": device,
                "energy": r.energy, "exact_energy": r.exact_energy,
                "error_vs_exact": r.exact_energy.map(|e| r.energy - e),
                "parameters": r.parameters, "iterations": r.iterations, "evaluations": r.evaluations,
                "history": r.history, "optimizer": opt.method,
                "duration_seconds": start.elapsed().as_secs_f64(),
            }));
        }
        let circuit = compiled
            .ok_or_else(|| DriverError::Failed("the job has no compiled circuit".into()))?;
        let mut expectations = BTreeMap::new();
        for (k, text) in &spec.spec.outputs.expectations {
            expectations.insert(
                k.clone(),
                parse_observable(text, circuit.num_qubits).map_err(DriverError::Failed)?,
            );
        }
        let exec = Execution {
            circuit,
            shots: spec.shots(),
            seed: spec.spec.seed.unwrap_or(0),
            statevector: spec.spec.outputs.statevector,
            expectations,
        };
        let r = self.driver.execute(&device, &exec, cancel)?;
        Ok(json!({
            "id": id, "name": name, "kind": spec.kind, "device": device,
            "shots": exec.shots, "counts": r.counts, "metadata": r.metadata,
            "duration_seconds": r.duration_seconds,
        }))
    }
}

/// A job by id, or by name (the latest job of that name).
fn resolve(state: &State, id: &str) -> Result<String, SchedError> {
    if state.jobs.contains_key(id) {
        return Ok(id.to_string());
    }
    state
        .by_name
        .get(id)
        .cloned()
        .ok_or_else(|| SchedError::NotFound(format!("no job `{id}` (qos-ctl job list shows them)")))
}

/// `"Z0 Z1 + 0.5*X0"` (terms separated by `+`, optional `coefficient*`).
pub fn parse_observable(text: &str, num_qubits: usize) -> Result<PauliSum, String> {
    let mut sum = PauliSum::new();
    for part in text.split('+').map(str::trim).filter(|p| !p.is_empty()) {
        let (coef, rest) = match part.split_once('*') {
            Some((c, r)) if c.trim().parse::<f64>().is_ok() => {
                (c.trim().parse::<f64>().unwrap_or(1.0), r)
            }
            _ => (1.0, part),
        };
        let t = PauliTerm::parse(coef, rest).map_err(|e| e.to_string())?;
        if let Some((q, _)) = t.factors.iter().find(|(q, _)| *q >= num_qubits) {
            return Err(format!("qubit {q} is outside the circuit's {num_qubits}"));
        }
        sum.terms.push(t);
    }
    if sum.terms.is_empty() {
        return Err("empty observable".into());
    }
    Ok(sum)
}

/// Refuses a submission whose jobs depend on each other in a cycle.
fn check_cycles(specs: &[JobSpec]) -> Result<(), SchedError> {
    let index: HashMap<&str, usize> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.metadata.name.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; specs.len()];
    fn visit(
        i: usize,
        specs: &[JobSpec],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<String>,
    ) -> Result<(), SchedError> {
        if mark[i] == 2 {
            return Ok(());
        }
        path.push(specs[i].metadata.name.clone());
        if mark[i] == 1 {
            return Err(SchedError::Invalid(format!(
                "spec.dependsOn: a cycle: {}",
                path.join(" → ")
            )));
        }
        mark[i] = 1;
        for d in &specs[i].spec.depends_on {
            if let Some(&j) = index.get(d.as_str()) {
                visit(j, specs, index, mark, path)?;
            }
        }
        mark[i] = 2;
        path.pop();
        Ok(())
    }
    for i in 0..specs.len() {
        visit(i, specs, &index, &mut mark, &mut Vec::new())?;
    }
    Ok(())
}

/// Writes a file through a temporary and a rename, without fsync: submit-time artifacts are
/// copies of what the SQLite row already holds, so they need to be whole, not durable (an
/// fsync per file would put tens of milliseconds on every SubmitJob).
fn write_replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if ok.is_err() {
        let t = now_ms().to_le_bytes();
        bytes[..8].copy_from_slice(&t);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the database lives inside the state directory.
pub fn database_path(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs.sqlite")
}

/// What one entry of the counts costs on the wire besides its key: the count, the key's
/// length and terminator, and the dictionary entry's alignment.
const COUNT_WIRE_BYTES: usize = 24;

/// About what `status` takes in a `ListJobs` reply: its strings and D-Bus's lengths,
/// terminators and padding (generously, 16 bytes a string), and its numbers.
fn wire_size(status: &JobStatus) -> usize {
    use steppps::api::wire_len;
    let strings = [
        &status.id,
        &status.name,
        &status.kind,
        &status.state,
        &status.device,
        &status.message,
    ];
    let text: usize = strings.iter().map(|s| wire_len(s)).sum();
    let deps: usize = status.depends_on.iter().map(|d| wire_len(d)).sum();
    text + deps + 64
}

/// The most frequent outcomes (ties by outcome) whose entries fit in `budget` bytes.
fn most_frequent(counts: HashMap<String, u64>, budget: usize) -> HashMap<String, u64> {
    let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut used = 0;
    sorted
        .into_iter()
        .take_while(|(k, _)| {
            used += k.len() + COUNT_WIRE_BYTES;
            used <= budget
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler on the store in `dir`, not started (jobs wait until [`Scheduler::start`];
    /// cancelling finishes them), keeping artifacts in `dir` when asked and `keep` finished
    /// jobs (0: all).
    fn scheduler_in(dir: &Path, artifacts: bool, keep: usize) -> Arc<Scheduler> {
        let store = Store::open(&database_path(dir)).expect("a store");
        let mut scheduler = Scheduler::new(
            store,
            Arc::new(crate::driver::SimulatorDriver::default()),
            artifacts.then(|| dir.to_path_buf()),
            Box::new(|_| {}),
        )
        .expect("a scheduler");
        scheduler.keep_finished(keep);
        Arc::new(scheduler)
    }

    fn bell(name: &str, depends_on: &[&str]) -> String {
        format!(
            "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {{name: {name}}}\n\
             spec:\n  program:\n    format: qasm2\n    source: |\n      OPENQASM 2.0;\n      \
             include \"qelib1.inc\";\n      qreg q[2];\n      h q[0];\n  dependsOn: {depends_on:?}\n"
        )
    }

    #[test]
    fn a_finished_job_keeps_only_its_status_in_memory() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let open = || scheduler_in(dir.path(), true, 0);
        let scheduler = open();
        scheduler.start().expect("a worker");
        let id = scheduler.submit(&bell("bell", &[])).expect("submitted")[0].clone();
        let held = |s: &Scheduler| {
            let state = lock(&s.state);
            let job = &state.jobs[&id];
            (job.spec.spec.program.is_some(), job.compiled.is_some())
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while scheduler.status(&id).expect("a status").state != "DONE" {
            assert!(Instant::now() < deadline, "the job never finished");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(held(&scheduler), (false, false));
        // After a restart too, and its results and status are all still there.
        drop(scheduler);
        let scheduler = open();
        assert_eq!(held(&scheduler), (false, false));
        assert_eq!(scheduler.status(&id).expect("a status").name, "bell");
        // No `shots` in the JobSpec: the default.
        assert_eq!(scheduler.results(&id).expect("results").shots, 1024);
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept_with_their_artifacts() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let open = |keep: usize| scheduler_in(dir.path(), true, keep);
        // Not started: jobs wait, and cancelling finishes them.
        let scheduler = open(3);
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.extend(
                scheduler
                    .submit(&bell(&format!("j{i}"), &[]))
                    .expect("submitted"),
            );
        }
        // j5 waits for j4; j4 is finished first and must stay while j5 waits for it.
        let waiting = scheduler.submit(&bell("late", &["j4"])).expect("submitted");
        for id in [&ids[4], &ids[0], &ids[1], &ids[2], &ids[3]] {
            scheduler.cancel(id).expect("cancelled");
            std::fs::create_dir_all(scheduler.job_dir(id).expect("a dir")).expect("a dir");
        }
        let kept: Vec<String> = scheduler.list("", 0).into_iter().map(|j| j.id).collect();
        // Five finished, three kept: j0 and j1 (the oldest, nothing waits for them) are gone;
        // j4 stays although it is the oldest-but-awaited by `late`.
        assert!(
            kept.contains(&ids[4]) && kept.contains(&waiting[0]),
            "{kept:?}"
        );
        for gone in &ids[..2] {
            assert!(!kept.contains(gone), "{gone} kept: {kept:?}");
            assert!(matches!(
                scheduler.status(gone),
                Err(SchedError::NotFound(_))
            ));
            assert!(!scheduler.job_dir(gone).expect("a dir").exists());
        }
        // What was forgotten stays forgotten after a restart; a lower limit applies at start.
        drop(scheduler);
        let scheduler = open(1);
        scheduler.start().expect("a worker");
        let finished = scheduler
            .list("", 0)
            .into_iter()
            .filter(|j| TERMINAL.contains(&j.state.as_str()))
            .count();
        assert!(
            finished <= 2,
            "{finished} finished jobs after restarting with 1 kept"
        );
        assert!(matches!(
            scheduler.status(&ids[1]),
            Err(SchedError::NotFound(_))
        ));
    }

    #[test]
    fn the_job_forgotten_first_is_the_one_that_finished_first() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let scheduler = scheduler_in(dir.path(), false, 1);
        // Not started: both wait. The one submitted first is cancelled last, in the same
        // millisecond quite likely: it is the newest finished job, and stays.
        let early = scheduler.submit(&bell("early", &[])).expect("submitted");
        let later = scheduler.submit(&bell("later", &[])).expect("submitted");
        scheduler.cancel(&later[0]).expect("cancelled");
        let status = scheduler
            .cancel(&early[0])
            .expect("cancelled, and still known");
        assert_eq!(status.state, "CANCELLED");
        assert!(matches!(
            scheduler.status(&later[0]),
            Err(SchedError::NotFound(_))
        ));
    }

    #[test]
    fn a_job_list_stops_before_the_reply_would_be_too_large() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let scheduler = scheduler_in(dir.path(), false, 0);
        for i in 0..30 {
            scheduler
                .submit(&bell(&format!("job{i:02}"), &[]))
                .expect("submitted");
        }
        let all = scheduler.list("", 0);
        assert_eq!(all.len(), 30);
        let one = wire_size(&all[0]);
        // A budget for ten: the ten newest, as with a limit of ten.
        let cut = scheduler.list_within("", 0, 10 * one + one / 2);
        assert_eq!(cut, scheduler.list("", 10));
        assert_eq!(cut[0].name, "job29");
        // The limit still applies below the budget.
        assert_eq!(scheduler.list_within("", 3, 10 * one).len(), 3);
    }

    #[test]
    fn a_job_waits_for_each_dependency_once_and_for_few_enough() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let scheduler = scheduler_in(dir.path(), false, 0);
        let first = scheduler.submit(&bell("first", &[])).expect("submitted");
        // By name twice and by id: one job.
        let ids = scheduler
            .submit(&bell("second", &["first", "first", &first[0]]))
            .expect("submitted");
        let status = scheduler.status(&ids[0]).expect("a status");
        assert_eq!(status.depends_on, first);
        let many: Vec<&str> = vec!["first"; jobspec::MAX_DEPENDENCIES + 1];
        let err = scheduler
            .submit(&bell("third", &many))
            .expect_err("too many dependencies");
        assert!(err.to_string().contains("at most 256"), "{err}");
    }

    #[test]
    fn cut_counts_keep_the_most_frequent_outcomes() {
        let counts: HashMap<String, u64> = [("00", 5), ("01", 9), ("10", 1), ("11", 9)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let entry = 2 + COUNT_WIRE_BYTES;
        let kept = most_frequent(counts.clone(), 3 * entry);
        let mut keys: Vec<&str> = kept.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["00", "01", "11"]);
        assert_eq!(kept["01"], 9);
        // Ties go by outcome; a budget for everything keeps everything.
        let kept = most_frequent(counts.clone(), entry);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["01"]);
        assert_eq!(most_frequent(counts.clone(), 100 * entry), counts);
    }
}
