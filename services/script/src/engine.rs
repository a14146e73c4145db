//! The token engine: deployed definitions, running instances, tasks, timers, messages and
//! incidents, all in memory, with every change of one step handed to the [`Store`] in one
//! transaction before the step is acknowledged.
//!
//! A *step* is what one outside event causes — a start, a completed task, a fired timer, a
//! correlated message — carried on until every token of every touched instance waits again.
//! A SIGKILL before the step's commit loses the step and nothing else: its caller got no
//! answer, and the instance resumes from the previous commit. A SIGKILL after it loses
//! nothing. So a completed step never runs twice.
//!
//! Time comes in as an argument (`now_ms`, Unix milliseconds) so tests can drive it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use steppps::error::cut_text;

use crate::expr;
use crate::model::{self, MessageRef, Node, NodeKind, Process, TaskBinding, TimerDef};
use crate::store::{Store, StoreError};
use crate::timer::{self, Schedule};

pub type Vars = Map<String, Value>;

/// What a caller did wrong, or what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot persist the step, nothing was acknowledged: {0}")]
    Store(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e.to_string())
    }
}

impl From<model::ModelError> for EngineError {
    fn from(e: model::ModelError) -> Self {
        EngineError::Invalid(e.to_string())
    }
}

type Result<T> = std::result::Result<T, EngineError>;

/// The length of `value` as JSON, without building the text.
fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and JSON values always serialize.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Deepest chain of call activities: deeper is taken for a process calling itself.
pub const MAX_CALL_DEPTH: usize = 32;
/// The most variables one call may set (`StartInstance`, `Complete`, …), and the largest
/// result a service task may store, as JSON. Tasks carry their instance's variables in
/// every reply; keeping each far below the bus's 32 MiB message limit keeps them sendable.
pub const MAX_VARIABLES_BYTES: usize = 4 << 20;
/// How much of a failure's message (a worker's, a callee's error) a task, an incident and
/// the history keep: enough for a person, not a whole stack trace of megabytes.
pub const MAX_FAILURE_BYTES: usize = 4 << 10;

/// Tunables, with the defaults of `/etc/quantumos/script.toml`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Retries a task gets before it becomes an incident (the default policy).
    pub default_retries: i32,
    /// First back-off after a failure; it doubles with each further failure.
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// Elements one step may execute before the engine calls it an endless loop.
    pub max_steps: usize,
    /// Finished instances kept in memory for `ListInstances` (the rest stay in the store).
    pub keep_finished: usize,
    /// History entries kept in memory per instance.
    pub history_in_memory: usize,
    /// How long a finished instance and its history are kept, memory and store (0: for good).
    pub history_ttl_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_retries: 3,
            backoff_base_ms: 1000,
            backoff_max_ms: 5 * 60 * 1000,
            max_steps: 10_000,
            keep_finished: 1000,
            history_in_memory: 200,
            history_ttl_ms: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Persistent state of an instance (serialized as one document per instance)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Active,
    Completed,
    Terminated,
    Cancelled,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Active => "active",
            InstanceState::Completed => "completed",
            InstanceState::Terminated => "terminated",
            InstanceState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Wait {
    Ready,
    Task(u64),
    Timer(u64),
    Message(u64),
    EventGateway,
    Join,
    SubProcess(u64),
    /// Waiting for a called instance (0 until it exists, within the same step).
    Call(u64),
    /// Running compensation handlers, newest first; the current one is running.
    Compensating(Vec<u64>),
    Incident(u64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    id: u64,
    node: usize,
    scope: u64,
    wait: Wait,
    /// The flow it arrived by (for joins).
    via: Option<usize>,
    /// For a token running a compensation handler: the token that threw the compensation.
    comp_of: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScopeRec {
    node: usize,
    token: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Compensable {
    seq: u64,
    node: usize,
    scope: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    External { topic: String },
    Dbus,
    User { assignee: Option<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lock {
    worker: String,
    until_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Task {
    id: u64,
    token: u64,
    node: usize,
    kind: TaskKind,
    retries: i32,
    attempts: u32,
    lock: Option<Lock>,
    /// Not fetchable before this (back-off).
    due_ms: i64,
    error: String,
    incident: Option<u64>,
    /// Values of the input mappings.
    local: Vars,
    created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ArmedTimer {
    token: u64,
    node: usize,
    due_ms: i64,
    count: u32,
    schedule: Schedule,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sub {
    token: u64,
    node: usize,
    name: String,
    key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IncidentRec {
    id: u64,
    token: u64,
    task: Option<u64>,
    node: usize,
    message: String,
    created_ms: i64,
}

/// One line of an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub time_ms: i64,
    pub activity_id: String,
    pub activity_name: String,
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Instance {
    id: u64,
    key: String,
    version: u32,
    state: InstanceState,
    vars: Vars,
    tokens: BTreeMap<u64, Token>,
    scopes: BTreeMap<u64, ScopeRec>,
    compensable: Vec<Compensable>,
    tasks: BTreeMap<u64, Task>,
    timers: BTreeMap<u64, ArmedTimer>,
    subs: BTreeMap<u64, Sub>,
    incidents: BTreeMap<u64, IncidentRec>,
    parent: Option<(u64, u64)>,
    started_ms: i64,
    ended_ms: i64,
    next_token: u64,
    history_seq: u64,
    #[serde(skip)]
    history: VecDeque<HistoryEntry>,
}

impl Instance {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    pub(crate) fn state_str(&self) -> &'static str {
        self.state.as_str()
    }
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
    pub(crate) fn version(&self) -> u32 {
        self.version
    }
    pub(crate) fn ended_ms(&self) -> i64 {
        self.ended_ms
    }
}

// ---------------------------------------------------------------------------------------
// Views returned to callers

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefinitionView {
    pub key: String,
    pub name: String,
    pub version: u32,
    pub versions: u32,
    pub deployed_ms: i64,
    pub active_instances: u32,
    /// How it starts: `none`, `message NAME`, `timer R/PT5M`, comma-separated.
    pub starts: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    pub id: u64,
    pub key: String,
    pub version: u32,
    pub state: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    /// Activity ids where tokens are now.
    pub positions: Vec<String>,
    pub incidents: u32,
    pub parent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenView {
    pub id: u64,
    pub activity_id: String,
    pub activity_name: String,
    /// What it waits for: `task 42`, `timer 2026-…`, `message NAME`, `join`, …
    pub waiting_for: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceDetail {
    pub info: InstanceView,
    pub variables: Vars,
    pub tokens: Vec<TokenView>,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub id: u64,
    /// `external`, `user` or `dbus`.
    pub kind: String,
    /// The topic of an external task; the method of a D-Bus call; the assignee of a user task.
    pub topic: String,
    pub instance: u64,
    pub key: String,
    pub activity_id: String,
    pub activity_name: String,
    pub retries: i32,
    pub attempts: u32,
    pub variables: Vars,
    pub error_message: String,
    pub worker: String,
    pub lock_expires_ms: i64,
    pub due_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentView {
    pub id: u64,
    pub instance: u64,
    pub key: String,
    pub activity_id: String,
    pub task: u64,
    pub message: String,
    pub created_ms: i64,
}

/// A D-Bus call the daemon must make for a service task.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    pub task: u64,
    pub destination: String,
    pub path: String,
    pub interface: String,
    pub method: String,
    pub signature: Option<String>,
    pub args: Vec<Value>,
}

/// Something worth a D-Bus signal.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    InstanceChanged {
        id: u64,
        key: String,
        state: String,
    },
    IncidentRaised {
        id: u64,
        instance: u64,
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// Definitions

/// A deployed version of a process.
#[derive(Debug)]
pub struct Deployed {
    pub key: String,
    pub version: u32,
    pub hash: String,
    pub deployed_ms: i64,
    pub process: Arc<Process>,
}

// ---------------------------------------------------------------------------------------
// Indexes over all instances (rebuilt from the instances at start; never persisted)

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerOwner {
    /// A timer event of an instance (catch, boundary, gateway).
    Instance(u64),
    /// A task's back-off ends.
    TaskDue(u64),
    /// A task's lock expires.
    TaskLock(u64),
    /// A timer start event.
    Start,
}

#[derive(Debug, Default)]
struct Index {
    task_owner: HashMap<u64, u64>,
    available: HashMap<String, BTreeSet<u64>>,
    dbus_ready: BTreeSet<u64>,
    timers: BTreeSet<(i64, u64)>,
    timer_owner: HashMap<u64, TimerOwner>,
    subs: HashMap<String, BTreeSet<(u64, u64)>>,
    incident_owner: BTreeMap<u64, u64>,
}

impl Index {
    fn add_timer(&mut self, id: u64, due: i64, owner: TimerOwner) {
        self.timers.insert((due, id));
        self.timer_owner.insert(id, owner);
    }

    fn remove_timer(&mut self, id: u64, due: i64) {
        self.timers.remove(&(due, id));
        self.timer_owner.remove(&id);
    }
}

/// A timer start event's schedule, persisted with the engine's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StartTimer {
    key: String,
    version: u32,
    node: usize,
    due_ms: i64,
    count: u32,
    schedule: Schedule,
}

/// What one step changed.
#[derive(Debug, Default)]
pub(crate) struct Step {
    pub(crate) now: i64,
    pub(crate) dirty: BTreeSet<u64>,
    pub(crate) history: Vec<(u64, HistoryEntry)>,
    changed: BTreeSet<u64>,
    effects: VecDeque<Effect>,
    count: usize,
    pub(crate) start_timers_changed: bool,
}

#[derive(Debug)]
enum Effect {
    StartChild {
        parent: u64,
        token: u64,
        key: String,
        vars: Vars,
    },
    ChildDone {
        parent: u64,
        token: u64,
        vars: Vars,
    },
    ChildError {
        parent: u64,
        token: u64,
        code: String,
        message: String,
    },
    CancelInstance(u64),
    Correlate {
        name: String,
        key: String,
        vars: Vars,
    },
}

/// The engine. Not thread-safe by itself: the daemon keeps it behind one mutex, and every
/// operation is short (no I/O but the store's commit).
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    definitions: BTreeMap<String, Vec<Arc<Deployed>>>,
    instances: HashMap<u64, Instance>,
    finished: VecDeque<u64>,
    idx: Index,
    start_timers: BTreeMap<u64, StartTimer>,
    next_id: u64,
    store: Option<Store>,
    events: Vec<EngineEvent>,
}

fn deploy_hash(xml: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(xml.as_bytes());
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Engine {
    /// An engine that keeps everything in memory (tests, benchmarks).
    pub fn in_memory(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            definitions: BTreeMap::new(),
            instances: HashMap::new(),
            finished: VecDeque::new(),
            idx: Index::default(),
            start_timers: BTreeMap::new(),
            next_id: 1,
            store: None,
            events: Vec::new(),
        }
    }

    /// An engine backed by `store`, with everything the store holds loaded: definitions,
    /// active instances and the most recent finished ones.
    pub fn open(cfg: EngineConfig, store: Store, now_ms: i64) -> Result<Engine> {
        let mut engine = Engine::in_memory(cfg);
        let loaded = store.load(engine.cfg.keep_finished)?;
        for (key, version, xml, deployed_ms) in loaded.definitions {
            let processes = model::parse(&xml).map_err(|e| {
                EngineError::Store(format!(
                    "stored definition {key} v{version} no longer parses: {e}"
                ))
            })?;
            let Some(process) = processes.into_iter().find(|p| p.key == key) else {
                continue;
            };
            let hash = deploy_hash(&xml, &key);
            let versions = engine.definitions.entry(key.clone()).or_default();
            versions.push(Arc::new(Deployed {
                key,
                version,
                hash,
                deployed_ms,
                process: Arc::new(process),
            }));
        }
        for versions in engine.definitions.values_mut() {
            versions.sort_by_key(|d| d.version);
        }
        engine.next_id = loaded.next_id.max(1);
        if let Some(json) = loaded.start_timers {
            engine.start_timers = serde_json::from_str(&json).unwrap_or_default();
        }
        for (id, t) in &engine.start_timers {
            engine.idx.add_timer(*id, t.due_ms, TimerOwner::Start);
        }
        for mut inst in loaded.instances {
            engine.next_id = engine.next_id.max(inst.id + 1);
            if inst.state == InstanceState::Active {
                engine.index_instance(&mut inst, now_ms);
            } else {
                engine.finished.push_back(inst.id);
            }
            engine.instances.insert(inst.id, inst);
        }
        engine.store = Some(store);
        Ok(engine)
    }

    /// Rebuilds the indexes for a loaded instance. Locks of D-Bus calls die with the process
    /// that made them: those calls are made again.
    fn index_instance(&mut self, inst: &mut Instance, now: i64) {
        for task in inst.tasks.values_mut() {
            self.next_id = self.next_id.max(task.id + 1);
            self.idx.task_owner.insert(task.id, inst.id);
            if task.incident.is_some() {
                continue;
            }
            if task.kind == TaskKind::Dbus {
                task.lock = None;
            }
            match (&task.kind, &task.lock) {
                (TaskKind::User { .. }, _) => {}
                (_, Some(lock)) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.idx
                        .add_timer(id, lock.until_ms, TimerOwner::TaskLock(task.id));
                }
                (_, None) if task.due_ms > now => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.idx
                        .add_timer(id, task.due_ms, TimerOwner::TaskDue(task.id));
                }
                (TaskKind::External { topic }, None) => {
                    self.idx
                        .available
                        .entry(topic.clone())
                        .or_default()
                        .insert(task.id);
                }
                (TaskKind::Dbus, None) => {
                    self.idx.dbus_ready.insert(task.id);
                }
            }
        }
        for (id, t) in &inst.timers {
            self.idx
                .add_timer(*id, t.due_ms, TimerOwner::Instance(inst.id));
        }
        for (id, s) in &inst.subs {
            self.idx
                .subs
                .entry(s.name.clone())
                .or_default()
                .insert((inst.id, *id));
        }
        for id in inst.incidents.keys() {
            self.idx.incident_owner.insert(*id, inst.id);
        }
        let top = [
            inst.timers.keys().max(),
            inst.subs.keys().max(),
            inst.incidents.keys().max(),
            inst.scopes.keys().max(),
        ];
        for id in top.into_iter().flatten() {
            self.next_id = self.next_id.max(id + 1);
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn is_persistent(&self) -> bool {
        self.store.is_some()
    }

    /// Signals to send for what happened since the last call.
    pub fn drain_events(&mut self) -> Vec<EngineEvent> {
        std::mem::take(&mut self.events)
    }

    fn fresh_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    // -----------------------------------------------------------------------------------
    // Deploy

    /// Deploys every executable process of a BPMN file. A process whose text is unchanged
    /// keeps its version; a changed one gets the next version (running instances keep
    /// theirs). Returns `(key, version)` of each process, in file order.
    pub fn deploy(&mut self, xml: &str, now_ms: i64) -> Result<Vec<(String, u32)>> {
        let processes = model::parse(xml)?;
        for p in &processes {
            for n in &p.nodes {
                if let NodeKind::CallActivity { called } = &n.kind
                    && !self.definitions.contains_key(called)
                    && !processes.iter().any(|q| &q.key == called)
                {
                    return Err(EngineError::Invalid(format!(
                        "{} calls process `{called}`, which is not deployed (deploy it first, or in the same file)",
                        n.describe()
                    )));
                }
            }
        }
        let mut out = Vec::new();
        let mut new = Vec::new();
        for p in processes {
            let hash = deploy_hash(xml, &p.key);
            let latest = self.definitions.get(&p.key).and_then(|v| v.last());
            if let Some(d) = latest
                && d.hash == hash
            {
                out.push((p.key.clone(), d.version));
                continue;
            }
            let version = latest.map_or(1, |d| d.version + 1);
            out.push((p.key.clone(), version));
            new.push(Deployed {
                key: p.key.clone(),
                version,
                hash,
                deployed_ms: now_ms,
                process: Arc::new(p),
            });
        }
        if new.is_empty() {
            return Ok(out);
        }
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        let rows: Vec<(String, u32, String)> = new
            .iter()
            .map(|d| (d.key.clone(), d.version, d.process.name.clone()))
            .collect();
        for d in new {
            // Timer start events belong to the latest version only.
            let old: Vec<u64> = self
                .start_timers
                .iter()
                .filter(|(_, t)| t.key == d.key)
                .map(|(id, _)| *id)
                .collect();
            for id in old {
                if let Some(t) = self.start_timers.remove(&id) {
                    self.idx.remove_timer(id, t.due_ms);
                }
                step.start_timers_changed = true;
            }
            for &s in &d.process.event_starts {
                if let NodeKind::StartTimer(def) = &d.process.nodes[s].kind {
                    let schedule = match resolve_timer(def, &Value::Object(Vars::new())) {
                        Ok(s) => s,
                        Err(e) => {
                            return Err(EngineError::Invalid(format!(
                                "{}: {e}",
                                d.process.nodes[s].describe()
                            )));
                        }
                    };
                    let id = self.fresh_id();
                    let due = schedule.first(now_ms);
                    self.start_timers.insert(
                        id,
                        StartTimer {
                            key: d.key.clone(),
                            version: d.version,
                            node: s,
                            due_ms: due,
                            count: 0,
                            schedule,
                        },
                    );
                    self.idx.add_timer(id, due, TimerOwner::Start);
                    step.start_timers_changed = true;
                }
            }
            self.definitions
                .entry(d.key.clone())
                .or_default()
                .push(Arc::new(d));
        }
        if let Some(store) = &mut self.store {
            store.save_definitions(xml, &rows, now_ms)?;
        }
        self.commit(step)?;
        Ok(out)
    }

    fn definition(&self, spec: &str) -> Result<Arc<Deployed>> {
        let (key, version) = match spec.rsplit_once(':') {
            Some((k, v)) if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() => {
                (k, v.parse::<u32>().ok())
            }
            _ => (spec, None),
        };
        let versions = self.definitions.get(key).ok_or_else(|| {
            EngineError::NotFound(format!(
                "no process `{key}` is deployed{}",
                if self.definitions.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; deployed: {}",
                        self.definitions
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ))
        })?;
        match version {
            None => versions.last().cloned(),
            Some(v) => versions.iter().find(|d| d.version == v).cloned(),
        }
        .ok_or_else(|| EngineError::NotFound(format!("process `{key}` has no version {spec}")))
    }

    fn process_of(&self, key: &str, version: u32) -> Option<Arc<Process>> {
        self.definitions
            .get(key)?
            .iter()
            .find(|d| d.version == version)
            .map(|d| d.process.clone())
    }

    pub fn list_definitions(&self) -> Vec<DefinitionView> {
        let mut active: HashMap<&str, u32> = HashMap::new();
        for i in self.instances.values() {
            if i.state == InstanceState::Active {
                *active.entry(i.key.as_str()).or_default() += 1;
            }
        }
        self.definitions
            .values()
            .filter_map(|versions| versions.last())
            .map(|d| {
                let p = &d.process;
                let mut starts = Vec::new();
                if p.start.is_some() {
                    starts.push("none".to_string());
                }
                for &s in &p.event_starts {
                    match &p.nodes[s].kind {
                        NodeKind::StartMessage(m) => starts.push(format!("message {}", m.name)),
                        NodeKind::StartTimer(t) => starts.push(format!("timer {}", t.text)),
                        _ => {}
                    }
                }
                DefinitionView {
                    key: d.key.clone(),
                    name: p.name.clone(),
                    version: d.version,
                    versions: self.definitions.get(&d.key).map_or(0, |v| v.len() as u32),
                    deployed_ms: d.deployed_ms,
                    active_instances: active.get(d.key.as_str()).copied().unwrap_or(0),
                    starts: starts.join(", "),
                }
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------
    // Instances

    /// Starts an instance at the process's none start event. `spec` is `key` (latest
    /// version) or `key:version`.
    pub fn start_instance(&mut self, spec: &str, vars: Vars, now_ms: i64) -> Result<u64> {
        let d = self.definition(spec)?;
        let start = d.process.start.ok_or_else(|| {
            EngineError::Invalid(format!(
                "process `{}` has no none start event: it starts on a message or a timer",
                d.key
            ))
        })?;
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        let id = self.create_instance(&d, start, vars, None, &mut step);
        self.finish_step(step)?;
        Ok(id)
    }

    fn create_instance(
        &mut self,
        d: &Deployed,
        start: usize,
        vars: Vars,
        parent: Option<(u64, u64)>,
        step: &mut Step,
    ) -> u64 {
        let id = self.fresh_id();
        let mut inst = Instance {
            id,
            key: d.key.clone(),
            version: d.version,
            state: InstanceState::Active,
            vars,
            tokens: BTreeMap::new(),
            scopes: BTreeMap::new(),
            compensable: Vec::new(),
            tasks: BTreeMap::new(),
            timers: BTreeMap::new(),
            subs: BTreeMap::new(),
            incidents: BTreeMap::new(),
            parent,
            started_ms: step.now,
            ended_ms: 0,
            next_token: 1,
            history_seq: 0,
            history: VecDeque::new(),
        };
        inst.tokens.insert(
            0,
            Token {
                id: 0,
                node: start,
                scope: 0,
                wait: Wait::Ready,
                via: None,
                comp_of: None,
            },
        );
        let cap = self.cfg.history_in_memory;
        record(
            &mut inst,
            step,
            cap,
            "",
            &d.process.name,
            "started",
            String::new(),
        );
        self.instances.insert(id, inst);
        step.dirty.insert(id);
        step.changed.insert(id);
        self.run_instance(id, step);
        id
    }

    /// Runs an instance's ready tokens until each waits.
    fn run_instance(&mut self, id: u64, step: &mut Step) {
        self.with_exec(id, step, |exec| exec.run());
    }

    /// Runs `f` on an executor of instance `id` within `step`; `None` when the instance or
    /// its process definition is gone.
    fn with_exec<R>(
        &mut self,
        id: u64,
        step: &mut Step,
        f: impl FnOnce(&mut Exec<'_>) -> R,
    ) -> Option<R> {
        let inst = self.instances.get_mut(&id)?;
        let process = self
            .definitions
            .get(&inst.key)?
            .iter()
            .find(|d| d.version == inst.version)?
            .process
            .clone();
        let mut exec = Exec {
            p: &process,
            inst,
            idx: &mut self.idx,
            step,
            cfg: &self.cfg,
            next_id: &mut self.next_id,
            ready: VecDeque::new(),
            events: &mut self.events,
        };
        Some(f(&mut exec))
    }

    /// Processes cross-instance effects, then commits.
    fn finish_step(&mut self, mut step: Step) -> Result<()> {
        while let Some(effect) = step.effects.pop_front() {
            step.count += 1;
            if step.count > self.cfg.max_steps * 4 {
                break;
            }
            self.apply_effect(effect, &mut step);
        }
        self.commit(step)
    }

    fn apply_effect(&mut self, effect: Effect, step: &mut Step) {
        match effect {
            Effect::StartChild {
                parent,
                token,
                key,
                vars: _,
            } if self.call_depth(parent) >= MAX_CALL_DEPTH => self.token_incident(
                parent,
                token,
                format!(
                    "call activities nested more than {MAX_CALL_DEPTH} deep (does `{key}` call itself?)"
                ),
                step,
            ),
            Effect::StartChild {
                parent,
                token,
                key,
                vars,
            } => match self.definition(&key) {
                Ok(d) => match d.process.start {
                    Some(start) => {
                        let child =
                            self.create_instance(&d, start, vars, Some((parent, token)), step);
                        if let Some(inst) = self.instances.get_mut(&parent)
                            && let Some(t) = inst.tokens.get_mut(&token)
                            && t.wait == Wait::Call(0)
                        {
                            t.wait = Wait::Call(child);
                        }
                    }
                    None => self.token_incident(
                        parent,
                        token,
                        format!("called process `{key}` has no none start event"),
                        step,
                    ),
                },
                Err(e) => self.token_incident(parent, token, e.to_string(), step),
            },
            Effect::ChildDone {
                parent,
                token,
                vars,
            } => {
                self.with_exec(parent, step, |exec| {
                    let waiting = exec
                        .inst
                        .tokens
                        .get(&token)
                        .is_some_and(|t| matches!(t.wait, Wait::Call(_)));
                    if !waiting || exec.inst.state != InstanceState::Active {
                        return;
                    }
                    let node = exec.inst.tokens.get(&token).map_or(0, |t| t.node);
                    let result = if exec.p.nodes[node].outputs.is_empty() {
                        vars
                    } else {
                        let ctx = Value::Object(vars);
                        match exec.eval_mappings(&exec.p.nodes[node].outputs, &ctx) {
                            Ok(v) => v,
                            Err(e) => {
                                exec.incident(token, None, e);
                                exec.run();
                                return;
                            }
                        }
                    };
                    exec.complete_activity(token, Some(result));
                    exec.run();
                });
            }
            Effect::ChildError {
                parent,
                token,
                code,
                message,
            } => {
                self.with_exec(parent, step, |exec| {
                    if exec.inst.state != InstanceState::Active {
                        return;
                    }
                    if let Some(t) = exec.inst.tokens.get_mut(&token) {
                        // The child is over; nothing to cancel there.
                        t.wait = Wait::Ready;
                        let node = t.node;
                        exec.throw_error(token, Some(node), &code, &message);
                    }
                    exec.run();
                });
            }
            Effect::CancelInstance(id) => {
                let _ = self.cancel_in_step(id, InstanceState::Cancelled, step);
            }
            Effect::Correlate { name, key, vars } => {
                let _ = self.correlate_in_step(&name, &key, vars, step);
            }
        }
    }

    /// How many call activities deep an instance runs.
    fn call_depth(&self, mut id: u64) -> usize {
        let mut depth = 0;
        while let Some((parent, _)) = self.instances.get(&id).and_then(|i| i.parent) {
            depth += 1;
            id = parent;
            if depth > MAX_CALL_DEPTH {
                break;
            }
        }
        depth
    }

    fn token_incident(&mut self, instance: u64, token: u64, message: String, step: &mut Step) {
        self.with_exec(instance, step, |exec| exec.incident(token, None, message));
    }

    fn commit(&mut self, step: Step) -> Result<()> {
        for id in &step.changed {
            if let Some(inst) = self.instances.get(id) {
                self.events.push(EngineEvent::InstanceChanged {
                    id: *id,
                    key: inst.key.clone(),
                    state: inst.state.as_str().to_string(),
                });
            }
        }
        if let Some(store) = &mut self.store {
            let start_timers = if step.start_timers_changed {
                Some(serde_json::to_string(&self.start_timers).unwrap_or_default())
            } else {
                None
            };
            let instances: Vec<&Instance> = step
                .dirty
                .iter()
                .filter_map(|id| self.instances.get(id))
                .collect();
            store.commit_step(
                &instances,
                &step.history,
                self.next_id,
                start_timers.as_deref(),
            )?;
        }
        // Finished instances leave memory once enough newer ones finished.
        for id in &step.dirty {
            if let Some(i) = self.instances.get(id)
                && i.state != InstanceState::Active
                && !self.finished.contains(id)
            {
                self.finished.push_back(*id);
            }
        }
        while self.finished.len() > self.cfg.keep_finished {
            if let Some(old) = self.finished.pop_front() {
                self.instances.remove(&old);
            }
        }
        Ok(())
    }

    pub fn cancel(&mut self, id: u64, now_ms: i64) -> Result<()> {
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        self.cancel_in_step(id, InstanceState::Cancelled, &mut step)?;
        self.finish_step(step)
    }

    fn cancel_in_step(&mut self, id: u64, state: InstanceState, step: &mut Step) -> Result<()> {
        let inst = self
            .instances
            .get(&id)
            .ok_or_else(|| EngineError::NotFound(format!("no instance {id}")))?;
        if inst.state != InstanceState::Active {
            return Err(EngineError::Conflict(format!(
                "instance {id} is already {}",
                inst.state.as_str()
            )));
        }
        self.with_exec(id, step, |exec| exec.end_instance(state, "cancelled"))
            .ok_or_else(|| {
                EngineError::NotFound(format!("the definition of instance {id} is gone"))
            })
    }

    pub fn list_instances(&self, key: &str, state: &str) -> Vec<InstanceView> {
        let mut out: Vec<InstanceView> = self
            .instances
            .values()
            .filter(|i| key.is_empty() || i.key == key)
            .filter(|i| state.is_empty() || i.state.as_str() == state)
            .map(|i| self.view(i))
            .collect();
        out.sort_by_key(|v| v.id);
        out
    }

    fn view(&self, i: &Instance) -> InstanceView {
        let p = self.process_of(&i.key, i.version);
        InstanceView {
            id: i.id,
            key: i.key.clone(),
            version: i.version,
            state: i.state.as_str().to_string(),
            started_ms: i.started_ms,
            ended_ms: i.ended_ms,
            positions: i
                .tokens
                .values()
                .map(|t| {
                    p.as_ref()
                        .map_or(String::new(), |p| p.nodes[t.node].id.clone())
                })
                .collect(),
            incidents: i.incidents.len() as u32,
            parent: i.parent.map_or(0, |p| p.0),
        }
    }

    pub fn get_instance(&self, id: u64) -> Result<InstanceDetail> {
        let loaded;
        let i = match self.instances.get(&id) {
            Some(i) => i,
            None => {
                loaded = self
                    .store
                    .as_ref()
                    .and_then(|s| s.load_instance(id).ok().flatten())
                    .ok_or_else(|| EngineError::NotFound(format!("no instance {id}")))?;
                &loaded
            }
        };
        let p = self.process_of(&i.key, i.version);
        let tokens = i
            .tokens
            .values()
            .map(|t| {
                let node = p.as_ref().map(|p| &p.nodes[t.node]);
                TokenView {
                    id: t.id,
                    activity_id: node.map_or(String::new(), |n| n.id.clone()),
                    activity_name: node.map_or(String::new(), |n| n.name.clone()),
                    waiting_for: describe_wait(i, t),
                }
            })
            .collect();
        let history = match &self.store {
            Some(s) => s
                .history(id, 1000)
                .unwrap_or_else(|_| i.history.iter().cloned().collect()),
            None => i.history.iter().cloned().collect(),
        };
        Ok(InstanceDetail {
            info: self.view(i),
            variables: i.vars.clone(),
            tokens,
            history,
        })
    }

    // -----------------------------------------------------------------------------------
    // Tasks

    fn task_location(&self, task: u64) -> Result<(u64, Arc<Process>)> {
        let inst = *self.idx.task_owner.get(&task).ok_or_else(|| {
            EngineError::NotFound(format!(
                "no task {task} (it may have been completed or cancelled)"
            ))
        })?;
        let i = self
            .instances
            .get(&inst)
            .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))?;
        let p = self.process_of(&i.key, i.version).ok_or_else(|| {
            EngineError::NotFound(format!("the definition of task {task} is gone"))
        })?;
        Ok((inst, p))
    }

    fn task_view(&self, inst: &Instance, t: &Task, p: &Process) -> TaskView {
        let node = &p.nodes[t.node];
        let mut variables = inst.vars.clone();
        variables.extend(t.local.clone());
        let (kind, topic) = match &t.kind {
            TaskKind::External { topic } => ("external", topic.clone()),
            TaskKind::User { assignee } => ("user", assignee.clone().unwrap_or_default()),
            TaskKind::Dbus => (
                "dbus",
                match &node.kind {
                    NodeKind::ServiceTask(TaskBinding::Dbus(c))
                    | NodeKind::SendTask(TaskBinding::Dbus(c)) => {
                        format!("{}.{}", c.interface, c.method)
                    }
                    _ => String::new(),
                },
            ),
        };
        TaskView {
            id: t.id,
            kind: kind.into(),
            topic,
            instance: inst.id,
            key: inst.key.clone(),
            activity_id: node.id.clone(),
            activity_name: node.name.clone(),
            retries: t.retries,
            attempts: t.attempts,
            variables,
            error_message: t.error.clone(),
            worker: t.lock.as_ref().map_or(String::new(), |l| l.worker.clone()),
            lock_expires_ms: t.lock.as_ref().map_or(0, |l| l.until_ms),
            due_ms: t.due_ms,
        }
    }

    /// About what task `task` takes in a reply: its instance's variables and its own, as
    /// JSON, and its names.
    fn task_size(&self, task: u64) -> usize {
        let Some(inst) = self
            .idx
            .task_owner
            .get(&task)
            .and_then(|i| self.instances.get(i))
        else {
            return 0;
        };
        let local = inst
            .tasks
            .get(&task)
            .map_or(0, |t| json_len(&t.local) + t.error.len());
        json_len(&inst.vars) + local + inst.key.len() + 512
    }

    /// Every open task, oldest first, as many as one reply carries; `kind` filters
    /// (`external`, `user`, `dbus`; empty: all).
    pub fn list_tasks(&self, kind: &str) -> Vec<TaskView> {
        let mut out = Vec::new();
        for (task, inst) in &self.idx.task_owner {
            let Some(i) = self.instances.get(inst) else {
                continue;
            };
            let Some(t) = i.tasks.get(task) else { continue };
            let Some(p) = self.process_of(&i.key, i.version) else {
                continue;
            };
            let v = self.task_view(i, t, &p);
            if kind.is_empty() || v.kind == kind {
                out.push(v);
            }
        }
        out.sort_by_key(|t| t.id);
        steppps::api::fit_in(out, steppps::api::MAX_REPLY_BYTES, |t| self.task_size(t.id))
    }

    /// Locks up to `max` available external tasks of `topics` for `worker`, for `lock_ms`.
    pub fn fetch_and_lock(
        &mut self,
        worker: &str,
        topics: &[String],
        max: usize,
        lock_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<TaskView>> {
        if worker.is_empty() {
            return Err(EngineError::Invalid("a worker id is required".into()));
        }
        if lock_ms <= 0 {
            return Err(EngineError::Invalid(
                "the lock duration must be positive".into(),
            ));
        }
        self.tick_timers(now_ms)?;
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        let mut taken = Vec::new();
        for topic in topics {
            if taken.len() >= max {
                break;
            }
            let Some(set) = self.idx.available.get_mut(topic) else {
                continue;
            };
            while taken.len() < max {
                let Some(task) = set.pop_first() else { break };
                taken.push((topic, task));
            }
        }
        let until = now_ms.saturating_add(lock_ms);
        let mut out = Vec::with_capacity(taken.len());
        // The tasks go back in one reply: stop locking before it would be too large to send,
        // and leave the rest available.
        let mut reply_bytes = 0;
        let mut taken = taken.into_iter();
        while let Some((topic, task)) = taken.next() {
            let size = self.task_size(task);
            reply_bytes += size;
            if reply_bytes > steppps::api::MAX_REPLY_BYTES && !out.is_empty() {
                for (topic, task) in std::iter::once((topic, task)).chain(taken) {
                    self.idx
                        .available
                        .entry(topic.clone())
                        .or_default()
                        .insert(task);
                }
                break;
            }
            let Some(&inst_id) = self.idx.task_owner.get(&task) else {
                continue;
            };
            let timer_id = self.next_id;
            self.next_id += 1;
            let Some(inst) = self.instances.get_mut(&inst_id) else {
                continue;
            };
            let Some(t) = inst.tasks.get_mut(&task) else {
                continue;
            };
            t.lock = Some(Lock {
                worker: worker.to_string(),
                until_ms: until,
            });
            self.idx
                .add_timer(timer_id, until, TimerOwner::TaskLock(task));
            step.dirty.insert(inst_id);
            let inst = &self.instances[&inst_id];
            if let (Some(t), Some(p)) = (
                inst.tasks.get(&task),
                self.process_of(&inst.key, inst.version),
            ) {
                out.push(self.task_view(inst, t, &p));
            }
        }
        self.commit(step)?;
        Ok(out)
    }

    /// Moves the lock of a task its worker holds.
    pub fn extend_lock(
        &mut self,
        task: u64,
        worker: &str,
        lock_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        let (inst_id, _) = self.task_location(task)?;
        let inst = self
            .instances
            .get_mut(&inst_id)
            .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))?;
        let t = inst
            .tasks
            .get_mut(&task)
            .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))?;
        match &mut t.lock {
            Some(l) if l.worker == worker => {
                l.until_ms = now_ms.saturating_add(lock_ms.max(1));
                let until = l.until_ms;
                let timer_id = self.next_id;
                self.next_id += 1;
                // The old expiry timer finds a later lock and is ignored.
                self.idx
                    .add_timer(timer_id, until, TimerOwner::TaskLock(task));
            }
            Some(l) => {
                return Err(EngineError::Conflict(format!(
                    "task {task} is locked by `{}`, not `{worker}`",
                    l.worker
                )));
            }
            None => {
                return Err(EngineError::Conflict(format!(
                    "task {task} is not locked (its lock expired?); fetch it again"
                )));
            }
        }
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        step.dirty.insert(inst_id);
        self.commit(step)
    }

    /// The kind of a task, for authorization (user tasks and worker tasks differ).
    pub fn task_kind(&self, task: u64) -> Result<TaskKind> {
        let (inst, _) = self.task_location(task)?;
        self.instances
            .get(&inst)
            .and_then(|i| i.tasks.get(&task))
            .map(|t| t.kind.clone())
            .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))
    }

    /// Completes an external task (it must be locked) or a user task, setting `vars`.
    pub fn complete(&mut self, task: u64, vars: Vars, now_ms: i64) -> Result<()> {
        self.with_task(task, now_ms, true, |exec, tid, _| {
            exec.finish_task(tid, Some(vars));
            Ok(())
        })
    }

    /// A worker failed a task. `retries < 0` applies the engine's policy (one retry less,
    /// exponential back-off); otherwise `retries` and `retry_timeout_ms` are taken as given,
    /// as in Camunda. At zero retries the task becomes an incident.
    pub fn handle_failure(
        &mut self,
        task: u64,
        message: &str,
        retries: i32,
        retry_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        let message = cut_text(message, MAX_FAILURE_BYTES).into_owned();
        self.with_task(task, now_ms, true, move |exec, tid, task| {
            exec.fail_task(task, tid, &message, Some((retries, retry_timeout_ms)));
            Ok(())
        })
    }

    /// A worker reports a business error: it is thrown as a BPMN error from the task.
    pub fn handle_bpmn_error(
        &mut self,
        task: u64,
        code: &str,
        message: &str,
        vars: Vars,
        now_ms: i64,
    ) -> Result<()> {
        if code.is_empty() {
            return Err(EngineError::Invalid("an error code is required".into()));
        }
        let (code, message) = (
            code.to_string(),
            cut_text(message, MAX_FAILURE_BYTES).into_owned(),
        );
        self.with_task(task, now_ms, true, move |exec, tid, task| {
            exec.inst.vars.extend(vars);
            exec.remove_task(task);
            let node = exec.inst.tokens.get(&tid).map_or(0, |t| t.node);
            exec.throw_error(tid, Some(node), &code, &message);
            Ok(())
        })
    }

    fn with_task(
        &mut self,
        task: u64,
        now_ms: i64,
        need_lock: bool,
        f: impl FnOnce(&mut Exec<'_>, u64, u64) -> Result<()>,
    ) -> Result<()> {
        let (inst_id, _) = self.task_location(task)?;
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        {
            let inst = self
                .instances
                .get(&inst_id)
                .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))?;
            let t = inst
                .tasks
                .get(&task)
                .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))?;
            if t.incident.is_some() {
                return Err(EngineError::Conflict(format!(
                    "task {task} has an open incident; resolve it first"
                )));
            }
            if need_lock
                && matches!(t.kind, TaskKind::External { .. } | TaskKind::Dbus)
                && t.lock.is_none()
            {
                return Err(EngineError::Conflict(format!(
                    "task {task} is not locked (never fetched, or its lock expired); fetch it first"
                )));
            }
            let tid = t.token;
            self.with_exec(inst_id, &mut step, |exec| -> Result<()> {
                f(exec, tid, task)?;
                exec.run();
                Ok(())
            })
            .ok_or_else(|| EngineError::NotFound(format!("no task {task}")))??;
        }
        self.finish_step(step)
    }

    // -----------------------------------------------------------------------------------
    // D-Bus service calls

    /// The D-Bus calls to make now; they count as locked until reported back.
    pub fn take_calls(&mut self, now_ms: i64) -> Vec<CallRequest> {
        let ready = std::mem::take(&mut self.idx.dbus_ready);
        let mut out = Vec::new();
        let mut failed = Vec::new();
        for task in ready {
            let Ok((inst_id, p)) = self.task_location(task) else {
                continue;
            };
            let Some(inst) = self.instances.get_mut(&inst_id) else {
                continue;
            };
            let Some(t) = inst.tasks.get_mut(&task) else {
                continue;
            };
            let node = &p.nodes[t.node];
            let call = match &node.kind {
                NodeKind::ServiceTask(TaskBinding::Dbus(c))
                | NodeKind::SendTask(TaskBinding::Dbus(c)) => c,
                _ => continue,
            };
            let mut ctx = inst.vars.clone();
            ctx.extend(t.local.clone());
            let ctx = Value::Object(ctx);
            let args = match &call.args {
                None => Ok(Vec::new()),
                Some(e) => match e.eval(&ctx) {
                    Ok(Value::Array(a)) => Ok(a),
                    Ok(Value::Null) => Ok(Vec::new()),
                    Ok(other) => Ok(vec![other]),
                    Err(e) => Err(format!(
                        "quantumos:args `{}`: {e}",
                        call.args.as_ref().map_or("", |a| a.source())
                    )),
                },
            };
            match args {
                Ok(args) => {
                    t.lock = Some(Lock {
                        worker: "steppps-scriptd".into(),
                        until_ms: i64::MAX,
                    });
                    out.push(CallRequest {
                        task,
                        destination: call.destination.clone(),
                        path: call.path.clone(),
                        interface: call.interface.clone(),
                        method: call.method.clone(),
                        signature: call.signature.clone(),
                        args,
                    });
                }
                Err(e) => failed.push((task, e)),
            }
        }
        for (task, message) in failed {
            // A bad argument expression will not get better by retrying.
            let _ = self.call_failed(
                task,
                "org.quantumos.Error.InvalidArgument",
                &message,
                Some(0),
                now_ms,
            );
        }
        out
    }

    /// A D-Bus call succeeded: `result` is its reply (one value, a list for several, null
    /// for none). It is available to output mappings as `result`.
    pub fn call_succeeded(&mut self, task: u64, result: Value, now_ms: i64) -> Result<()> {
        let size = json_len(&result);
        if size > MAX_VARIABLES_BYTES {
            // Stored, the result would make every reply about the instance too large to send.
            let message = format!(
                "the result is {:.1} MiB, more than a variable may hold ({} MiB)",
                size as f64 / f64::from(1 << 20),
                MAX_VARIABLES_BYTES >> 20
            );
            return self.with_task(task, now_ms, true, move |exec, tid, task| {
                exec.fail_task(task, tid, &message, Some((0, 0)));
                Ok(())
            });
        }
        self.with_task(task, now_ms, true, |exec, tid, _| {
            let node = exec.inst.tokens.get(&tid).map_or(0, |t| t.node);
            let mut vars = Vars::new();
            if let Some(name) = &exec.p.nodes[node].result_variable {
                vars.insert(name.clone(), result.clone());
            }
            if !exec.p.nodes[node].outputs.is_empty() {
                vars.insert("result".into(), result);
            }
            exec.finish_task(tid, Some(vars));
            Ok(())
        })
    }

    /// A D-Bus call failed with the D-Bus error `name`. An error boundary event whose code is
    /// that name (or that catches everything) takes it; otherwise the retry policy does.
    /// `retries` overrides the policy (0: an incident at once).
    pub fn call_failed(
        &mut self,
        task: u64,
        name: &str,
        message: &str,
        retries: Option<i32>,
        now_ms: i64,
    ) -> Result<()> {
        let (name, message) = (
            name.to_string(),
            cut_text(message, MAX_FAILURE_BYTES).into_owned(),
        );
        self.with_task(task, now_ms, true, move |exec, tid, task| {
            let node = exec.inst.tokens.get(&tid).map_or(0, |t| t.node);
            if exec.catching_boundary(node, &name).is_some() {
                exec.remove_task(task);
                exec.throw_error(tid, Some(node), &name, &message);
            } else {
                let text = format!("{message} ({name})");
                exec.fail_task(task, tid, &text, retries.map(|r| (r, 0)));
            }
            Ok(())
        })
    }

    // -----------------------------------------------------------------------------------
    // Messages

    /// Delivers a message to the oldest instance waiting for it (name, and key when the
    /// subscription has one), or starts an instance of a process with that message start
    /// event. Returns the instance.
    pub fn correlate(&mut self, name: &str, key: &str, vars: Vars, now_ms: i64) -> Result<u64> {
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        let id = self.correlate_in_step(name, key, vars, &mut step)?;
        self.finish_step(step)?;
        Ok(id)
    }

    fn correlate_in_step(
        &mut self,
        name: &str,
        key: &str,
        vars: Vars,
        step: &mut Step,
    ) -> Result<u64> {
        let found = self.idx.subs.get(name).and_then(|set| {
            set.iter().copied().find(|(inst, sub)| {
                self.instances
                    .get(inst)
                    .and_then(|i| i.subs.get(sub))
                    .is_some_and(|s| s.key.as_deref().is_none_or(|k| k == key))
            })
        });
        // (An instance whose definition is gone cannot take it: the message may start one.)
        if let Some((inst_id, sub)) = found
            && let Some(i) = self.instances.get(&inst_id)
            && self.process_of(&i.key, i.version).is_some()
        {
            self.with_exec(inst_id, step, |exec| {
                exec.inst.vars.extend(vars);
                exec.message_arrived(sub);
                exec.run();
            });
            return Ok(inst_id);
        }
        // No one waits: a process with this message start event starts.
        let starter = self
            .definitions
            .values()
            .filter_map(|v| v.last())
            .find_map(|d| {
                d.process
                    .start_messages()
                    .find(|(_, m)| *m == name)
                    .map(|(node, _)| (d.clone(), node))
            });
        match starter {
            Some((d, node)) => Ok(self.create_instance(&d, node, vars, None, step)),
            None => Err(EngineError::NotFound(format!(
                "no instance waits for message `{name}`{} and no process starts with it",
                if key.is_empty() {
                    String::new()
                } else {
                    format!(" with key `{key}`")
                }
            ))),
        }
    }

    // -----------------------------------------------------------------------------------
    // Timers

    /// When the next timer (or back-off, or lock expiry) is due.
    pub fn next_due(&self) -> Option<i64> {
        self.idx.timers.first().map(|(due, _)| *due)
    }

    /// Fires every timer due at `now_ms`, each as its own step.
    pub fn tick_timers(&mut self, now_ms: i64) -> Result<usize> {
        let mut fired = 0;
        while let Some(&(due, id)) = self.idx.timers.first() {
            if due > now_ms {
                break;
            }
            self.idx.timers.pop_first();
            let Some(owner) = self.idx.timer_owner.remove(&id) else {
                continue;
            };
            fired += 1;
            match owner {
                TimerOwner::TaskDue(task) => self.task_due(task),
                TimerOwner::TaskLock(task) => self.lock_expired(task, now_ms, due)?,
                TimerOwner::Instance(inst) => {
                    let mut step = Step {
                        now: now_ms,
                        ..Step::default()
                    };
                    self.with_exec(inst, &mut step, |exec| {
                        exec.timer_fired(id);
                        exec.run();
                    });
                    self.finish_step(step)?;
                }
                TimerOwner::Start => {
                    let mut step = Step {
                        now: now_ms,
                        ..Step::default()
                    };
                    step.start_timers_changed = true;
                    if let Some(mut t) = self.start_timers.remove(&id) {
                        t.count += 1;
                        if let Some(d) = self
                            .definitions
                            .get(&t.key)
                            .and_then(|v| v.iter().find(|d| d.version == t.version))
                            .cloned()
                        {
                            self.create_instance(&d, t.node, Vars::new(), None, &mut step);
                        }
                        if let Some(next) = t.schedule.next(t.due_ms, t.count) {
                            // A daemon that was down does not fire every missed period.
                            let next = next.max(now_ms);
                            let nid = self.fresh_id();
                            t.due_ms = next;
                            self.idx.add_timer(nid, next, TimerOwner::Start);
                            self.start_timers.insert(nid, t);
                        }
                    }
                    self.finish_step(step)?;
                }
            }
        }
        Ok(fired)
    }

    fn task_due(&mut self, task: u64) {
        let Some(&inst) = self.idx.task_owner.get(&task) else {
            return;
        };
        let Some(t) = self.instances.get(&inst).and_then(|i| i.tasks.get(&task)) else {
            return;
        };
        if t.incident.is_some() || t.lock.is_some() {
            return;
        }
        match &t.kind {
            TaskKind::External { topic } => {
                self.idx
                    .available
                    .entry(topic.clone())
                    .or_default()
                    .insert(task);
            }
            TaskKind::Dbus => {
                self.idx.dbus_ready.insert(task);
            }
            TaskKind::User { .. } => {}
        }
    }

    fn lock_expired(&mut self, task: u64, now_ms: i64, due: i64) -> Result<()> {
        let Some(&inst_id) = self.idx.task_owner.get(&task) else {
            return Ok(());
        };
        let Some(inst) = self.instances.get_mut(&inst_id) else {
            return Ok(());
        };
        let Some(t) = inst.tasks.get_mut(&task) else {
            return Ok(());
        };
        // Only the timer of the current lock counts (ExtendLock leaves the old one behind).
        if !t
            .lock
            .as_ref()
            .is_some_and(|l| l.until_ms <= now_ms && l.until_ms == due)
        {
            return Ok(());
        }
        t.lock = None;
        if let TaskKind::External { topic } = &t.kind {
            self.idx
                .available
                .entry(topic.clone())
                .or_default()
                .insert(task);
        }
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        step.dirty.insert(inst_id);
        self.commit(step)
    }

    // -----------------------------------------------------------------------------------
    // Incidents

    pub fn list_incidents(&self) -> Vec<IncidentView> {
        let mut out = Vec::new();
        for (id, inst) in &self.idx.incident_owner {
            let Some(i) = self.instances.get(inst) else {
                continue;
            };
            let Some(r) = i.incidents.get(id) else {
                continue;
            };
            let p = self.process_of(&i.key, i.version);
            out.push(IncidentView {
                id: *id,
                instance: *inst,
                key: i.key.clone(),
                activity_id: p.map_or(String::new(), |p| p.nodes[r.node].id.clone()),
                task: r.task.unwrap_or(0),
                message: r.message.clone(),
                created_ms: r.created_ms,
            });
        }
        out
    }

    /// Resolves an incident: a failed task gets `retries` more tries (at least one) and is
    /// queued again; a stuck token runs its element again (after the variables it needed
    /// were fixed, for example).
    pub fn resolve_incident(&mut self, id: u64, retries: i32, now_ms: i64) -> Result<()> {
        let inst_id = *self
            .idx
            .incident_owner
            .get(&id)
            .ok_or_else(|| EngineError::NotFound(format!("no open incident {id}")))?;
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        self.with_exec(inst_id, &mut step, |exec| {
            exec.resolve(id, retries.max(1));
            exec.run();
        })
        .ok_or_else(|| EngineError::NotFound(format!("no open incident {id}")))?;
        self.finish_step(step)
    }

    /// Sets process variables of a running instance (to fix what an incident needs).
    pub fn set_variables(&mut self, id: u64, vars: Vars, now_ms: i64) -> Result<()> {
        let inst = self
            .instances
            .get_mut(&id)
            .filter(|i| i.state == InstanceState::Active)
            .ok_or_else(|| EngineError::NotFound(format!("no running instance {id}")))?;
        inst.vars.extend(vars);
        let mut step = Step {
            now: now_ms,
            ..Step::default()
        };
        step.dirty.insert(id);
        self.commit(step)
    }

    /// Forgets the instances that finished more than `history_ttl_ms` before `now_ms`, with
    /// their history, in memory and in the store; returns how many left the store (in memory
    /// only, without one).
    pub fn forget_old_history(&mut self, now_ms: i64) -> Result<usize> {
        if self.cfg.history_ttl_ms <= 0 {
            return Ok(0);
        }
        let cutoff = now_ms.saturating_sub(self.cfg.history_ttl_ms);
        let old: std::collections::HashSet<u64> = self
            .instances
            .values()
            .filter(|i| i.state != InstanceState::Active && i.ended_ms() < cutoff)
            .map(Instance::id)
            .collect();
        for id in &old {
            self.instances.remove(id);
        }
        self.finished.retain(|id| !old.contains(id));
        match &mut self.store {
            Some(store) => Ok(store.delete_ended_before(cutoff)?),
            None => Ok(old.len()),
        }
    }

    /// Counters for `Metrics()`.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let active = self
            .instances
            .values()
            .filter(|i| i.state == InstanceState::Active)
            .count();
        HashMap::from([
            ("definitions".to_string(), self.definitions.len() as f64),
            ("instances_active".to_string(), active as f64),
            ("tasks_open".to_string(), self.idx.task_owner.len() as f64),
            (
                "incidents_open".to_string(),
                self.idx.incident_owner.len() as f64,
            ),
            ("timers_armed".to_string(), self.idx.timers.len() as f64),
        ])
    }

    /// The bus names the newest version of process `key` calls itself (its service and send
    /// tasks bound to D-Bus; not those of processes it calls), sorted; none when `key` is not
    /// deployed.
    pub fn call_destinations(&self, key: &str) -> Vec<String> {
        let Ok(d) = self.definition(key) else {
            return Vec::new();
        };
        let names: BTreeSet<&str> = d
            .process
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::ServiceTask(TaskBinding::Dbus(call))
                | NodeKind::SendTask(TaskBinding::Dbus(call)) => Some(call.destination.as_str()),
                _ => None,
            })
            .collect();
        names.into_iter().map(str::to_string).collect()
    }

    /// Active instances of a process (for "is the root orchestrator running?").
    pub fn active_instances_of(&self, key: &str) -> usize {
        self.instances
            .values()
            .filter(|i| i.key == key && i.state == InstanceState::Active)
            .count()
    }
}

fn resolve_timer(def: &TimerDef, ctx: &Value) -> std::result::Result<Schedule, String> {
    if let Some(s) = def.literal {
        return Ok(s);
    }
    let e = def
        .expr
        .as_ref()
        .ok_or_else(|| "timer without a value".to_string())?;
    let v = e
        .eval(ctx)
        .map_err(|e| format!("timer `{}`: {e}", def.text))?;
    let text = expr::display(&v);
    timer::parse(def.kind, &text).map_err(|e| e.to_string())
}

fn describe_wait(i: &Instance, t: &Token) -> String {
    match &t.wait {
        Wait::Ready => "running".into(),
        Wait::Task(task) => match i.tasks.get(task).map(|t| &t.kind) {
            Some(TaskKind::External { topic }) => format!("external task {task} (topic {topic})"),
            Some(TaskKind::User { .. }) => format!("user task {task}"),
            Some(TaskKind::Dbus) => format!("D-Bus call (task {task})"),
            None => format!("task {task}"),
        },
        Wait::Timer(id) => i.timers.get(id).map_or("timer".into(), |t| {
            format!("timer due {}", fmt_ms(t.due_ms))
        }),
        Wait::Message(id) => i.subs.get(id).map_or("message".into(), |s| {
            format!(
                "message {}{}",
                s.name,
                s.key
                    .as_ref()
                    .map_or(String::new(), |k| format!(" (key {k})"))
            )
        }),
        Wait::EventGateway => {
            let events: Vec<String> = i
                .subs
                .values()
                .filter(|s| s.token == t.id)
                .map(|s| format!("message {}", s.name))
                .chain(
                    i.timers
                        .values()
                        .filter(|x| x.token == t.id)
                        .map(|x| format!("timer due {}", fmt_ms(x.due_ms))),
                )
                .collect();
            format!("first of: {}", events.join(", "))
        }
        Wait::Join => "other branches (join)".into(),
        Wait::SubProcess(_) => "its sub-process".into(),
        Wait::Call(child) => format!("called instance {child}"),
        Wait::Compensating(_) => "compensation handlers".into(),
        Wait::Incident(id) => format!(
            "incident {id}: {}",
            i.incidents.get(id).map_or("", |r| r.message.as_str())
        ),
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

fn record(
    inst: &mut Instance,
    step: &mut Step,
    cap: usize,
    id: &str,
    name: &str,
    event: &str,
    detail: String,
) {
    inst.history_seq += 1;
    let entry = HistoryEntry {
        seq: inst.history_seq,
        time_ms: step.now,
        activity_id: id.to_string(),
        activity_name: name.to_string(),
        event: event.to_string(),
        detail,
    };
    if inst.history.len() >= cap {
        inst.history.pop_front();
    }
    inst.history.push_back(entry.clone());
    step.history.push((inst.id, entry));
}

// ---------------------------------------------------------------------------------------
// Execution within one instance

struct Exec<'a> {
    p: &'a Process,
    inst: &'a mut Instance,
    idx: &'a mut Index,
    step: &'a mut Step,
    cfg: &'a EngineConfig,
    next_id: &'a mut u64,
    ready: VecDeque<u64>,
    events: &'a mut Vec<EngineEvent>,
}

impl Exec<'_> {
    fn fresh_id(&mut self) -> u64 {
        let id = *self.next_id;
        *self.next_id += 1;
        id
    }

    fn touch(&mut self) {
        self.step.dirty.insert(self.inst.id);
        self.step.changed.insert(self.inst.id);
    }

    fn history(&mut self, node: usize, event: &str, detail: String) {
        let n = &self.p.nodes[node];
        record(
            self.inst,
            self.step,
            self.cfg.history_in_memory,
            &n.id,
            &n.name,
            event,
            detail,
        );
    }

    fn vars_ctx(&self) -> Value {
        Value::Object(self.inst.vars.clone())
    }

    fn run(&mut self) {
        self.touch();
        loop {
            if self.ready.is_empty() {
                self.ready = self
                    .inst
                    .tokens
                    .values()
                    .filter(|t| t.wait == Wait::Ready)
                    .map(|t| t.id)
                    .collect();
                if self.ready.is_empty() && !self.check_inclusive_joins() {
                    return;
                }
            }
            while let Some(tid) = self.ready.pop_front() {
                if self.inst.state != InstanceState::Active {
                    self.ready.clear();
                    return;
                }
                if !self
                    .inst
                    .tokens
                    .get(&tid)
                    .is_some_and(|t| t.wait == Wait::Ready)
                {
                    continue;
                }
                self.step.count += 1;
                if self.step.count > self.cfg.max_steps {
                    let message = format!(
                        "more than {} elements ran in one step without a wait state: an endless loop?",
                        self.cfg.max_steps
                    );
                    let stuck: Vec<u64> = self
                        .inst
                        .tokens
                        .values()
                        .filter(|t| t.wait == Wait::Ready)
                        .map(|t| t.id)
                        .collect();
                    for t in stuck {
                        self.incident(t, None, message.clone());
                    }
                    self.ready.clear();
                    return;
                }
                self.execute(tid);
            }
        }
    }

    fn token(&self, tid: u64) -> Option<&Token> {
        self.inst.tokens.get(&tid)
    }

    fn set_wait(&mut self, tid: u64, wait: Wait) {
        if let Some(t) = self.inst.tokens.get_mut(&tid) {
            t.wait = wait;
        }
    }

    fn new_token(&mut self, node: usize, scope: u64, via: Option<usize>) -> u64 {
        let id = self.inst.next_token;
        self.inst.next_token += 1;
        self.inst.tokens.insert(
            id,
            Token {
                id,
                node,
                scope,
                wait: Wait::Ready,
                via,
                comp_of: None,
            },
        );
        self.ready.push_back(id);
        id
    }

    fn execute(&mut self, tid: u64) {
        let Some(tok) = self.token(tid) else { return };
        let (node_ix, scope) = (tok.node, tok.scope);
        let p = self.p;
        let node = &p.nodes[node_ix];
        match &node.kind {
            NodeKind::StartNone
            | NodeKind::StartTimer(_)
            | NodeKind::StartMessage(_)
            | NodeKind::ThrowNone => {
                if node.kind != NodeKind::StartNone || scope != 0 {
                    self.history(node_ix, "passed", String::new());
                }
                self.leave(tid);
            }
            NodeKind::EndNone => {
                self.history(node_ix, "ended", String::new());
                self.consume(tid);
            }
            NodeKind::EndTerminate => {
                self.history(node_ix, "terminated", String::new());
                self.terminate_scope(scope);
            }
            NodeKind::EndError { code } => {
                let code = code.clone().unwrap_or_default();
                self.history(node_ix, "error thrown", code.clone());
                self.throw_error(tid, None, &code, &format!("error end event {}", node.id));
            }
            NodeKind::EndCompensate { activity } | NodeKind::ThrowCompensate { activity } => {
                self.history(node_ix, "compensation thrown", String::new());
                self.start_compensation(tid, *activity);
            }
            NodeKind::CatchTimer(def) => {
                let ctx = self.vars_ctx();
                match resolve_timer(def, &ctx) {
                    Ok(schedule) => {
                        let id = self.arm_timer(tid, node_ix, schedule);
                        self.set_wait(tid, Wait::Timer(id));
                    }
                    Err(e) => self.incident(tid, None, format!("{}: {e}", node.describe())),
                }
            }
            NodeKind::CatchMessage(m) | NodeKind::ReceiveTask(m) => {
                if node.is_activity() && !self.enter_activity(tid, node_ix) {
                    return;
                }
                match self.subscribe(tid, node_ix, m) {
                    Ok(id) => self.set_wait(tid, Wait::Message(id)),
                    Err(e) => self.incident(tid, None, e),
                }
            }
            NodeKind::ServiceTask(binding) | NodeKind::SendTask(binding) => {
                let kind = match binding {
                    TaskBinding::Dbus(_) => TaskKind::Dbus,
                    TaskBinding::External { topic } => TaskKind::External {
                        topic: topic.clone(),
                    },
                };
                self.create_task(tid, node_ix, kind);
            }
            NodeKind::UserTask { assignee } => {
                self.create_task(
                    tid,
                    node_ix,
                    TaskKind::User {
                        assignee: assignee.clone(),
                    },
                );
            }
            NodeKind::SendMessage(m) => {
                if !self.enter_activity(tid, node_ix) {
                    return;
                }
                let ctx = self.vars_ctx();
                let key = match &m.key {
                    Some(k) => match k.eval(&ctx) {
                        Ok(v) => expr::display(&v),
                        Err(e) => {
                            self.incident(
                                tid,
                                None,
                                format!("{} correlation key: {e}", node.describe()),
                            );
                            return;
                        }
                    },
                    None => String::new(),
                };
                self.step.effects.push_back(Effect::Correlate {
                    name: m.name.clone(),
                    key,
                    vars: Vars::new(),
                });
                self.complete_activity(tid, None);
            }
            NodeKind::CallActivity { called } => {
                if !self.enter_activity(tid, node_ix) {
                    return;
                }
                let mut vars = self.inst.vars.clone();
                let ctx = self.vars_ctx();
                match self.eval_mappings(&node.inputs, &ctx) {
                    Ok(v) => vars.extend(v),
                    Err(e) => {
                        self.incident(tid, None, e);
                        return;
                    }
                }
                self.history(node_ix, "called", called.clone());
                self.set_wait(tid, Wait::Call(0));
                self.step.effects.push_back(Effect::StartChild {
                    parent: self.inst.id,
                    token: tid,
                    key: called.clone(),
                    vars,
                });
            }
            NodeKind::SubProcess { start } => {
                if !self.enter_activity(tid, node_ix) {
                    return;
                }
                let scope = self.fresh_id();
                self.inst.scopes.insert(
                    scope,
                    ScopeRec {
                        node: node_ix,
                        token: tid,
                    },
                );
                self.set_wait(tid, Wait::SubProcess(scope));
                self.history(node_ix, "entered", String::new());
                self.new_token(*start, scope, None);
            }
            NodeKind::Exclusive => self.leave(tid),
            NodeKind::Parallel => {
                if node.incoming.len() > 1 {
                    self.set_wait(tid, Wait::Join);
                    self.try_parallel_join(node_ix, scope);
                } else {
                    self.leave(tid);
                }
            }
            NodeKind::Inclusive => {
                if node.incoming.len() > 1 {
                    self.set_wait(tid, Wait::Join);
                } else {
                    self.leave(tid);
                }
            }
            NodeKind::EventBased => self.enter_event_gateway(tid, node_ix),
            NodeKind::BoundaryError { .. } | NodeKind::BoundaryTimer { .. } => {
                self.history(node_ix, "triggered", String::new());
                self.leave(tid);
            }
            NodeKind::BoundaryCompensate { .. } => self.consume(tid),
        }
    }

    /// Arms an activity's boundary timers; false when that failed (an incident was raised).
    fn enter_activity(&mut self, tid: u64, node_ix: usize) -> bool {
        let p = self.p;
        for &b in &p.nodes[node_ix].boundaries {
            if let NodeKind::BoundaryTimer { timer, .. } = &p.nodes[b].kind {
                let ctx = self.vars_ctx();
                match resolve_timer(timer, &ctx) {
                    Ok(s) => {
                        self.arm_timer(tid, b, s);
                    }
                    Err(e) => {
                        self.incident(tid, None, format!("{}: {e}", p.nodes[b].describe()));
                        return false;
                    }
                }
            }
        }
        true
    }

    fn eval_mappings(
        &self,
        mappings: &[model::Mapping],
        ctx: &Value,
    ) -> std::result::Result<Vars, String> {
        let mut out = Vars::new();
        let mut scope = match ctx {
            Value::Object(m) => m.clone(),
            _ => Vars::new(),
        };
        for m in mappings {
            let v = m
                .source
                .eval(&Value::Object(scope.clone()))
                .map_err(|e| format!("mapping `{}` = `{}`: {e}", m.target, m.source.source()))?;
            scope.insert(m.target.clone(), v.clone());
            out.insert(m.target.clone(), v);
        }
        Ok(out)
    }

    fn create_task(&mut self, tid: u64, node_ix: usize, kind: TaskKind) {
        if !self.enter_activity(tid, node_ix) {
            return;
        }
        let p = self.p;
        let ctx = self.vars_ctx();
        let local = match self.eval_mappings(&p.nodes[node_ix].inputs, &ctx) {
            Ok(l) => l,
            Err(e) => {
                self.cancel_boundary_timers(tid);
                self.incident(tid, None, format!("{}: {e}", p.nodes[node_ix].describe()));
                return;
            }
        };
        let id = self.fresh_id();
        let retries = self.cfg.default_retries;
        match &kind {
            TaskKind::External { topic } => {
                self.idx
                    .available
                    .entry(topic.clone())
                    .or_default()
                    .insert(id);
            }
            TaskKind::Dbus => {
                self.idx.dbus_ready.insert(id);
            }
            TaskKind::User { .. } => {}
        }
        self.idx.task_owner.insert(id, self.inst.id);
        self.inst.tasks.insert(
            id,
            Task {
                id,
                token: tid,
                node: node_ix,
                kind,
                retries,
                attempts: 0,
                lock: None,
                due_ms: 0,
                error: String::new(),
                incident: None,
                local,
                created_ms: self.step.now,
            },
        );
        self.set_wait(tid, Wait::Task(id));
        self.history(node_ix, "waiting", format!("task {id}"));
    }

    fn remove_task(&mut self, task: u64) {
        if let Some(t) = self.inst.tasks.remove(&task) {
            self.idx.task_owner.remove(&task);
            match &t.kind {
                TaskKind::External { topic } => {
                    if let Some(set) = self.idx.available.get_mut(topic) {
                        set.remove(&task);
                    }
                }
                TaskKind::Dbus => {
                    self.idx.dbus_ready.remove(&task);
                }
                TaskKind::User { .. } => {}
            }
            if let Some(i) = t.incident {
                self.inst.incidents.remove(&i);
                self.idx.incident_owner.remove(&i);
            }
        }
    }

    /// A task is done: its outputs are applied and its token moves on.
    fn finish_task(&mut self, tid: u64, vars: Option<Vars>) {
        if let Some(Wait::Task(task)) = self.token(tid).map(|t| t.wait.clone()) {
            let local = self
                .inst
                .tasks
                .get(&task)
                .map(|t| t.local.clone())
                .unwrap_or_default();
            self.remove_task(task);
            let node = self.token(tid).map_or(0, |t| t.node);
            let p = self.p;
            let outputs = &p.nodes[node].outputs;
            let result = if outputs.is_empty() {
                vars
            } else {
                let mut ctx = self.inst.vars.clone();
                ctx.extend(local);
                ctx.extend(vars.unwrap_or_default());
                match self.eval_mappings(outputs, &Value::Object(ctx)) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.incident(tid, None, format!("{}: {e}", p.nodes[node].describe()));
                        return;
                    }
                }
            };
            self.complete_activity(tid, result);
        }
    }

    fn fail_task(&mut self, task: u64, tid: u64, message: &str, explicit: Option<(i32, i64)>) {
        let now = self.step.now;
        let (base, max) = (self.cfg.backoff_base_ms, self.cfg.backoff_max_ms);
        let Some(t) = self.inst.tasks.get_mut(&task) else {
            return;
        };
        t.attempts += 1;
        t.lock = None;
        t.error = message.to_string();
        let (retries, timeout) = match explicit {
            Some((r, timeout)) if r >= 0 => (r, timeout.max(0)),
            _ => {
                let shift = t.attempts.saturating_sub(1).min(30);
                (t.retries - 1, base.saturating_mul(1i64 << shift).min(max))
            }
        };
        t.retries = retries.max(0);
        let node = t.node;
        let kind = t.kind.clone();
        let attempts = t.attempts;
        if retries <= 0 {
            let msg = format!("{message} (after {attempts} attempt(s), no retries left)");
            self.history(node, "failed", msg.clone());
            self.incident(tid, Some(task), msg);
            return;
        }
        t.due_ms = now.saturating_add(timeout);
        let due = t.due_ms;
        self.history(
            node,
            "failed",
            format!("{message}; {retries} retries left, next in {timeout} ms"),
        );
        if timeout == 0 {
            match kind {
                TaskKind::External { topic } => {
                    self.idx.available.entry(topic).or_default().insert(task);
                }
                TaskKind::Dbus => {
                    self.idx.dbus_ready.insert(task);
                }
                TaskKind::User { .. } => {}
            }
        } else {
            let id = self.fresh_id();
            self.idx.add_timer(id, due, TimerOwner::TaskDue(task));
        }
    }

    fn incident(&mut self, tid: u64, task: Option<u64>, message: String) {
        let id = self.fresh_id();
        let node = self.token(tid).map_or(0, |t| t.node);
        self.inst.incidents.insert(
            id,
            IncidentRec {
                id,
                token: tid,
                task,
                node,
                message: message.clone(),
                created_ms: self.step.now,
            },
        );
        self.idx.incident_owner.insert(id, self.inst.id);
        match task {
            Some(task) => {
                if let Some(t) = self.inst.tasks.get_mut(&task) {
                    t.incident = Some(id);
                }
            }
            None => self.set_wait(tid, Wait::Incident(id)),
        }
        self.history(node, "incident", message.clone());
        self.touch();
        self.events.push(EngineEvent::IncidentRaised {
            id,
            instance: self.inst.id,
            message,
        });
    }

    fn resolve(&mut self, id: u64, retries: i32) {
        let Some(rec) = self.inst.incidents.remove(&id) else {
            return;
        };
        self.idx.incident_owner.remove(&id);
        self.history(rec.node, "incident resolved", rec.message.clone());
        match rec.task {
            Some(task) => {
                if let Some(t) = self.inst.tasks.get_mut(&task) {
                    t.incident = None;
                    t.retries = retries;
                    t.due_ms = 0;
                    match &t.kind {
                        TaskKind::External { topic } => {
                            self.idx
                                .available
                                .entry(topic.clone())
                                .or_default()
                                .insert(task);
                        }
                        TaskKind::Dbus => {
                            self.idx.dbus_ready.insert(task);
                        }
                        TaskKind::User { .. } => {}
                    }
                }
            }
            None => self.set_wait(rec.token, Wait::Ready),
        }
    }

    fn arm_timer(&mut self, tid: u64, node: usize, schedule: Schedule) -> u64 {
        let id = self.fresh_id();
        let due = schedule.first(self.step.now);
        self.inst.timers.insert(
            id,
            ArmedTimer {
                token: tid,
                node,
                due_ms: due,
                count: 0,
                schedule,
            },
        );
        self.idx
            .add_timer(id, due, TimerOwner::Instance(self.inst.id));
        id
    }

    fn subscribe(
        &mut self,
        tid: u64,
        node: usize,
        m: &MessageRef,
    ) -> std::result::Result<u64, String> {
        let key = match &m.key {
            Some(k) => {
                let v = k.eval(&self.vars_ctx()).map_err(|e| {
                    format!("{} correlation key: {e}", self.p.nodes[node].describe())
                })?;
                if v.is_null() {
                    return Err(format!(
                        "{}: correlation key `{}` is null (a variable is missing)",
                        self.p.nodes[node].describe(),
                        k.source()
                    ));
                }
                Some(expr::display(&v))
            }
            None => None,
        };
        let id = self.fresh_id();
        self.idx
            .subs
            .entry(m.name.clone())
            .or_default()
            .insert((self.inst.id, id));
        self.inst.subs.insert(
            id,
            Sub {
                token: tid,
                node,
                name: m.name.clone(),
                key,
            },
        );
        Ok(id)
    }

    fn cancel_boundary_timers(&mut self, tid: u64) {
        let ids: Vec<u64> = self
            .inst
            .timers
            .iter()
            .filter(|(_, t)| t.token == tid)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = self.inst.timers.remove(&id) {
                self.idx.remove_timer(id, t.due_ms);
            }
        }
    }

    fn cancel_subs(&mut self, tid: u64) {
        let ids: Vec<u64> = self
            .inst
            .subs
            .iter()
            .filter(|(_, s)| s.token == tid)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(s) = self.inst.subs.remove(&id)
                && let Some(set) = self.idx.subs.get_mut(&s.name)
            {
                set.remove(&(self.inst.id, id));
            }
        }
    }

    /// Stops whatever a token is doing (its task, timers, subscriptions, sub-process or
    /// called instance), leaving the token itself in place.
    fn cancel_activity(&mut self, tid: u64) {
        self.cancel_boundary_timers(tid);
        self.cancel_subs(tid);
        let Some(wait) = self.token(tid).map(|t| t.wait.clone()) else {
            return;
        };
        match wait {
            Wait::Task(task) => self.remove_task(task),
            Wait::SubProcess(scope) => self.kill_scope(scope),
            Wait::Call(child) if child != 0 => {
                self.step.effects.push_back(Effect::CancelInstance(child))
            }
            Wait::Incident(id) => {
                self.inst.incidents.remove(&id);
                self.idx.incident_owner.remove(&id);
            }
            _ => {}
        }
    }

    /// Removes every token of a scope and the scopes inside it.
    fn kill_scope(&mut self, scope: u64) {
        let inner: Vec<u64> = self
            .inst
            .tokens
            .values()
            .filter(|t| t.scope == scope)
            .map(|t| t.id)
            .collect();
        for t in inner {
            self.cancel_activity(t);
            self.inst.tokens.remove(&t);
        }
        self.inst.scopes.remove(&scope);
        self.inst.compensable.retain(|c| c.scope != scope);
    }

    fn consume(&mut self, tid: u64) {
        self.cancel_activity(tid);
        let Some(tok) = self.inst.tokens.remove(&tid) else {
            return;
        };
        if let Some(thrower) = tok.comp_of {
            self.continue_compensation(thrower);
        }
        let scope = tok.scope;
        if !self.inst.tokens.values().any(|t| t.scope == scope) {
            self.complete_scope(scope);
        }
    }

    fn terminate_scope(&mut self, scope: u64) {
        if scope == 0 {
            self.end_instance(InstanceState::Terminated, "terminated");
            return;
        }
        let inner: Vec<u64> = self
            .inst
            .tokens
            .values()
            .filter(|t| t.scope == scope)
            .map(|t| t.id)
            .collect();
        for t in inner {
            self.cancel_activity(t);
            self.inst.tokens.remove(&t);
        }
        self.complete_scope(scope);
    }

    fn complete_scope(&mut self, scope: u64) {
        if scope == 0 {
            self.end_instance(InstanceState::Completed, "completed");
            return;
        }
        let Some(rec) = self.inst.scopes.remove(&scope) else {
            return;
        };
        self.inst.compensable.retain(|c| c.scope != scope);
        self.complete_activity(rec.token, None);
    }

    /// Ends the instance: every token and what it waits for goes; a calling instance hears.
    fn end_instance(&mut self, state: InstanceState, event: &str) {
        let tokens: Vec<u64> = self.inst.tokens.keys().copied().collect();
        for t in tokens {
            self.cancel_activity(t);
        }
        self.inst.tokens.clear();
        self.inst.scopes.clear();
        self.inst.compensable.clear();
        let leftover: Vec<u64> = self.inst.tasks.keys().copied().collect();
        for t in leftover {
            self.remove_task(t);
        }
        for id in std::mem::take(&mut self.inst.incidents).into_keys() {
            self.idx.incident_owner.remove(&id);
        }
        self.inst.state = state;
        self.inst.ended_ms = self.step.now;
        let name = self.p.name.clone();
        record(
            self.inst,
            self.step,
            self.cfg.history_in_memory,
            "",
            &name,
            event,
            String::new(),
        );
        self.touch();
        if let Some((parent, token)) = self.inst.parent {
            match state {
                InstanceState::Completed => self.step.effects.push_back(Effect::ChildDone {
                    parent,
                    token,
                    vars: self.inst.vars.clone(),
                }),
                // A terminated child ends the call activity normally, as in Camunda.
                InstanceState::Terminated => self.step.effects.push_back(Effect::ChildDone {
                    parent,
                    token,
                    vars: self.inst.vars.clone(),
                }),
                _ => {}
            }
        }
    }

    fn complete_activity(&mut self, tid: u64, result: Option<Vars>) {
        self.cancel_boundary_timers(tid);
        self.cancel_subs(tid);
        if let Some(vars) = result {
            self.inst.vars.extend(vars);
        }
        let Some(tok) = self.token(tid) else { return };
        let (node, scope) = (tok.node, tok.scope);
        let p = self.p;
        if p.nodes[node]
            .boundaries
            .iter()
            .any(|&b| matches!(p.nodes[b].kind, NodeKind::BoundaryCompensate { .. }))
        {
            let seq = self.fresh_id();
            self.inst.compensable.push(Compensable { seq, node, scope });
        }
        self.history(node, "completed", String::new());
        self.set_wait(tid, Wait::Ready);
        self.leave(tid);
    }

    /// Takes the outgoing flows: the first whose condition holds at an exclusive gateway;
    /// every one whose condition holds elsewhere; the default flow when none does.
    fn leave(&mut self, tid: u64) {
        let Some(tok) = self.token(tid) else { return };
        let (node_ix, scope) = (tok.node, tok.scope);
        let p = self.p;
        let node = &p.nodes[node_ix];
        if node.outgoing.is_empty() {
            self.consume(tid);
            return;
        }
        let ctx = self.vars_ctx();
        let exclusive = node.kind == NodeKind::Exclusive;
        let mut chosen = Vec::new();
        for &f in &node.outgoing {
            if Some(f) == node.default_flow {
                continue;
            }
            let ok = match &p.flows[f].condition {
                None => true,
                Some(c) => match c.eval_condition(&ctx) {
                    Ok(b) => b,
                    Err(e) => {
                        self.incident(tid, None, format!("sequence flow `{}`: {e}", p.flows[f].id));
                        return;
                    }
                },
            };
            if ok {
                chosen.push(f);
                if exclusive {
                    break;
                }
            }
        }
        if chosen.is_empty() {
            match node.default_flow {
                Some(d) => chosen.push(d),
                None => {
                    self.incident(
                        tid,
                        None,
                        format!(
                            "{}: no outgoing flow's condition is true and there is no default flow",
                            node.describe()
                        ),
                    );
                    return;
                }
            }
        }
        let mut first = true;
        for f in chosen {
            let target = p.flows[f].target;
            if first {
                first = false;
                if let Some(t) = self.inst.tokens.get_mut(&tid) {
                    t.node = target;
                    t.via = Some(f);
                    t.wait = Wait::Ready;
                }
                self.ready.push_back(tid);
            } else {
                self.new_token(target, scope, Some(f));
            }
        }
    }

    fn try_parallel_join(&mut self, node_ix: usize, scope: u64) {
        let p = self.p;
        let incoming = &p.nodes[node_ix].incoming;
        let mut picked = Vec::new();
        for &f in incoming {
            let t = self.inst.tokens.values().find(|t| {
                t.node == node_ix && t.scope == scope && t.wait == Wait::Join && t.via == Some(f)
            });
            match t {
                Some(t) => picked.push(t.id),
                None => return,
            }
        }
        self.history(node_ix, "joined", format!("{} branches", picked.len()));
        let keep = picked[0];
        for t in &picked[1..] {
            self.inst.tokens.remove(t);
        }
        self.set_wait(keep, Wait::Ready);
        self.leave(keep);
    }

    /// Fires inclusive joins no other token can still reach. True when one fired.
    fn check_inclusive_joins(&mut self) -> bool {
        let p = self.p;
        let waiting: Vec<(u64, usize, u64)> = self
            .inst
            .tokens
            .values()
            .filter(|t| t.wait == Wait::Join && p.nodes[t.node].kind == NodeKind::Inclusive)
            .map(|t| (t.id, t.node, t.scope))
            .collect();
        for (tid, node, scope) in waiting {
            if !self.inst.tokens.contains_key(&tid) {
                continue;
            }
            let others: Vec<usize> = self
                .inst
                .tokens
                .values()
                .filter(|t| t.scope == scope && !(t.node == node && t.wait == Wait::Join))
                .map(|t| t.node)
                .collect();
            if others.iter().any(|&n| reaches(p, n, node)) {
                continue;
            }
            let here: Vec<u64> = self
                .inst
                .tokens
                .values()
                .filter(|t| t.node == node && t.scope == scope && t.wait == Wait::Join)
                .map(|t| t.id)
                .collect();
            self.history(node, "joined", format!("{} branches", here.len()));
            for t in &here[1..] {
                self.inst.tokens.remove(t);
            }
            self.set_wait(here[0], Wait::Ready);
            self.leave(here[0]);
            return true;
        }
        false
    }

    fn enter_event_gateway(&mut self, tid: u64, node_ix: usize) {
        let p = self.p;
        for &f in &p.nodes[node_ix].outgoing {
            let target = p.flows[f].target;
            match &p.nodes[target].kind {
                NodeKind::CatchTimer(def) => match resolve_timer(def, &self.vars_ctx()) {
                    Ok(s) => {
                        self.arm_timer(tid, target, s);
                    }
                    Err(e) => {
                        self.cancel_activity(tid);
                        self.incident(tid, None, format!("{}: {e}", p.nodes[target].describe()));
                        return;
                    }
                },
                NodeKind::CatchMessage(m) | NodeKind::ReceiveTask(m) => {
                    if let Err(e) = self.subscribe(tid, target, m) {
                        self.cancel_activity(tid);
                        self.incident(tid, None, e);
                        return;
                    }
                }
                _ => {}
            }
        }
        self.set_wait(tid, Wait::EventGateway);
    }

    fn message_arrived(&mut self, sub: u64) {
        let Some(s) = self.inst.subs.remove(&sub) else {
            return;
        };
        if let Some(set) = self.idx.subs.get_mut(&s.name) {
            set.remove(&(self.inst.id, sub));
        }
        let Some(wait) = self.token(s.token).map(|t| t.wait.clone()) else {
            return;
        };
        self.history(s.node, "message received", s.name.clone());
        match wait {
            Wait::EventGateway => self.event_gateway_choose(s.token, s.node),
            Wait::Message(_) => {
                if self.p.nodes[s.node].is_activity() {
                    self.complete_activity(s.token, None);
                } else {
                    self.set_wait(s.token, Wait::Ready);
                    self.leave(s.token);
                }
            }
            _ => {}
        }
    }

    /// The first event after an event-based gateway happened: the others are withdrawn and
    /// the token passes the event that happened.
    fn event_gateway_choose(&mut self, tid: u64, target: usize) {
        self.cancel_boundary_timers(tid);
        self.cancel_subs(tid);
        if let Some(t) = self.inst.tokens.get_mut(&tid) {
            t.node = target;
            t.wait = Wait::Ready;
        }
        if self.p.nodes[target].is_activity() {
            self.complete_activity(tid, None);
        } else {
            self.leave(tid);
        }
    }

    fn timer_fired(&mut self, id: u64) {
        let Some(t) = self.inst.timers.get(&id).cloned() else {
            return;
        };
        let p = self.p;
        let Some(wait) = self.token(t.token).map(|x| x.wait.clone()) else {
            self.inst.timers.remove(&id);
            return;
        };
        self.touch();
        match &p.nodes[t.node].kind {
            NodeKind::CatchTimer(_) => {
                self.inst.timers.remove(&id);
                self.history(t.node, "timer fired", String::new());
                if wait == Wait::EventGateway {
                    self.event_gateway_choose(t.token, t.node);
                } else {
                    self.set_wait(t.token, Wait::Ready);
                    self.leave(t.token);
                }
            }
            NodeKind::BoundaryTimer { interrupting, .. } => {
                self.history(t.node, "timer fired", String::new());
                if *interrupting {
                    self.cancel_activity(t.token);
                    if let Some(tok) = self.inst.tokens.get_mut(&t.token) {
                        tok.node = t.node;
                        tok.wait = Wait::Ready;
                        tok.via = None;
                    }
                    self.ready.push_back(t.token);
                } else {
                    let mut timer = t.clone();
                    self.inst.timers.remove(&id);
                    timer.count += 1;
                    if let Some(next) = timer.schedule.next(timer.due_ms, timer.count) {
                        let nid = self.fresh_id();
                        timer.due_ms = next;
                        self.idx
                            .add_timer(nid, next, TimerOwner::Instance(self.inst.id));
                        self.inst.timers.insert(nid, timer);
                    }
                    let scope = self.token(t.token).map_or(0, |x| x.scope);
                    self.new_token(t.node, scope, None);
                }
            }
            _ => {
                self.inst.timers.remove(&id);
            }
        }
    }

    /// The boundary error event of `node` that catches `code`, if any.
    fn catching_boundary(&self, node: usize, code: &str) -> Option<usize> {
        let p = self.p;
        let bs = &p.nodes[node].boundaries;
        // An exact code match wins over a catch-all.
        bs.iter()
            .copied()
            .find(|&b| matches!(&p.nodes[b].kind, NodeKind::BoundaryError { code: Some(c), .. } if c == code))
            .or_else(|| {
                bs.iter()
                    .copied()
                    .find(|&b| matches!(&p.nodes[b].kind, NodeKind::BoundaryError { code: None, .. }))
            })
    }

    /// Throws a BPMN error from token `tid`: the nearest error boundary event that catches
    /// it, from the activity (`at`) outwards through the sub-processes, takes it; otherwise
    /// the calling instance's call activity; otherwise it is an incident.
    fn throw_error(&mut self, tid: u64, at: Option<usize>, code: &str, message: &str) {
        let p = self.p;
        let mut candidate: Option<(usize, u64)> = at.map(|n| (n, tid));
        let mut scope = self.token(tid).map_or(0, |t| t.scope);
        loop {
            if let Some((node, holder)) = candidate
                && let Some(b) = self.catching_boundary(node, code)
            {
                if let NodeKind::BoundaryError {
                    code_variable,
                    message_variable,
                    ..
                } = &p.nodes[b].kind
                {
                    if let Some(v) = code_variable {
                        self.inst.vars.insert(v.clone(), Value::from(code));
                    }
                    if let Some(v) = message_variable {
                        self.inst.vars.insert(v.clone(), Value::from(message));
                    }
                }
                if holder != tid {
                    self.inst.tokens.remove(&tid);
                }
                self.cancel_activity(holder);
                self.history(node, "error caught", format!("{code}: {message}"));
                if let Some(t) = self.inst.tokens.get_mut(&holder) {
                    t.node = b;
                    t.wait = Wait::Ready;
                    t.via = None;
                }
                self.ready.push_back(holder);
                return;
            }
            if scope == 0 {
                break;
            }
            let Some(rec) = self.inst.scopes.get(&scope).cloned() else {
                break;
            };
            candidate = Some((rec.node, rec.token));
            scope = self.token(rec.token).map_or(0, |t| t.scope);
        }
        if let Some((parent, token)) = self.inst.parent {
            self.step.effects.push_back(Effect::ChildError {
                parent,
                token,
                code: code.to_string(),
                message: message.to_string(),
            });
            self.inst.parent = None;
            self.end_instance(InstanceState::Terminated, "ended by an error");
            return;
        }
        self.incident(
            tid,
            None,
            format!("unhandled BPMN error `{code}`: {message}"),
        );
    }

    fn start_compensation(&mut self, tid: u64, activity: Option<usize>) {
        let scope = self.token(tid).map_or(0, |t| t.scope);
        let mut queue: Vec<u64> = self
            .inst
            .compensable
            .iter()
            .filter(|c| c.scope == scope && activity.is_none_or(|a| a == c.node))
            .map(|c| c.seq)
            .collect();
        // Newest first: undo in the reverse order of completion.
        queue.sort_unstable();
        self.set_wait(tid, Wait::Compensating(queue));
        self.continue_compensation(tid);
    }

    fn continue_compensation(&mut self, thrower: u64) {
        let Some(Wait::Compensating(mut queue)) = self.token(thrower).map(|t| t.wait.clone())
        else {
            return;
        };
        let p = self.p;
        while let Some(seq) = queue.pop() {
            let Some(pos) = self.inst.compensable.iter().position(|c| c.seq == seq) else {
                continue;
            };
            let rec = self.inst.compensable.remove(pos);
            let handler =
                p.nodes[rec.node]
                    .boundaries
                    .iter()
                    .find_map(|&b| match p.nodes[b].kind {
                        NodeKind::BoundaryCompensate { handler } => handler,
                        _ => None,
                    });
            if let Some(h) = handler {
                self.set_wait(thrower, Wait::Compensating(queue));
                self.history(rec.node, "compensating", p.nodes[h].id.clone());
                let t = self.new_token(h, rec.scope, None);
                if let Some(tok) = self.inst.tokens.get_mut(&t) {
                    tok.comp_of = Some(thrower);
                }
                return;
            }
        }
        // All handlers ran: the throw event is passed (or the end event ends its token).
        self.set_wait(thrower, Wait::Ready);
        let node = self.token(thrower).map_or(0, |t| t.node);
        if matches!(p.nodes[node].kind, NodeKind::EndCompensate { .. }) {
            self.consume(thrower);
        } else {
            self.leave(thrower);
        }
    }
}

/// Whether a token at `from` can still reach `to` (for inclusive joins).
fn reaches(p: &Process, from: usize, to: usize) -> bool {
    let mut seen = vec![false; p.nodes.len()];
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        stack.extend(p.nodes[n].outgoing.iter().map(|&f| p.flows[f].target));
        stack.extend(p.nodes[n].boundaries.iter().copied());
    }
    false
}

/// The default for `Node` lookups in messages.
pub fn node_label(node: &Node) -> &str {
    node.label()
}
