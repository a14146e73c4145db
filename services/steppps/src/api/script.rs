//! `org.quantumos.Script1`: the BPMN workflow engine. Definitions are BPMN 2.0 XML; process
//! variables travel as JSON objects (`variables_json`), since they are documents by nature.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// A deployed process (its latest version) as `ListDefinitions` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct DefinitionInfo {
    /// The process id: what `StartInstance` takes.
    pub key: String,
    pub name: String,
    pub version: u32,
    /// How many versions are deployed.
    pub versions: u32,
    pub deployed_usec: u64,
    pub active_instances: u32,
    /// How it starts: `none`, `message NAME`, `timer R/PT5M`, comma-separated.
    pub starts: String,
}

/// One instance, as `ListInstances` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct InstanceInfo {
    pub id: u64,
    pub definition: String,
    pub version: u32,
    /// `active`, `completed`, `terminated`, `cancelled`.
    pub state: String,
    pub started_usec: u64,
    /// 0 while active.
    pub ended_usec: u64,
    /// Element ids where its tokens are.
    pub positions: Vec<String>,
    pub incidents: u32,
    /// The instance whose call activity started this one; 0 for none.
    pub parent: u64,
}

/// A token of an instance: where it is and what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct TokenInfo {
    pub id: u64,
    pub activity_id: String,
    pub activity_name: String,
    pub waiting_for: String,
}

/// One line of an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct HistoryItem {
    pub seq: u64,
    pub time_usec: u64,
    pub activity_id: String,
    pub activity_name: String,
    /// `started`, `waiting`, `completed`, `failed`, `error caught`, `compensating`, …
    pub event: String,
    pub detail: String,
}

/// `GetInstance`: the instance, its variables, tokens and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct InstanceDetail {
    pub info: InstanceInfo,
    /// The process variables, a JSON object.
    pub variables_json: String,
    pub tokens: Vec<TokenInfo>,
    pub history: Vec<HistoryItem>,
}

/// An open task: an external task, a user task, or a D-Bus call the engine is making.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct TaskInfo {
    pub id: u64,
    /// `external`, `user` or `dbus`.
    pub kind: String,
    /// The topic of an external task, the assignee of a user task, the method of a D-Bus call.
    pub topic: String,
    pub instance: u64,
    pub definition: String,
    pub activity_id: String,
    pub activity_name: String,
    /// Tries left before an incident.
    pub retries: i32,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Process variables and the task's input mappings, a JSON object.
    pub variables_json: String,
    /// The last failure's message.
    pub error_message: String,
    /// Who holds the lock; empty when not locked.
    pub worker: String,
    pub lock_expires_usec: u64,
}

/// An incident: a task out of retries, or a token that cannot go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct IncidentInfo {
    pub id: u64,
    pub instance: u64,
    pub definition: String,
    pub activity_id: String,
    /// The failed task; 0 when the incident is the token's.
    pub task: u64,
    pub message: String,
    pub created_usec: u64,
}

#[proxy(
    interface = "org.quantumos.Script1",
    default_service = "org.quantumos.Script1",
    default_path = "/org/quantumos/Script1"
)]
pub trait Script1 {
    /// Deploys every executable process of a BPMN file; returns the first one's key and
    /// version (unchanged text keeps its version). Needs `org.quantumos.script.deploy`.
    fn deploy(&self, xml: &str) -> zbus::Result<(String, u32)>;
    fn list_definitions(&self) -> zbus::Result<Vec<DefinitionInfo>>;
    /// `definition` is `key` (latest version) or `key:version`. Needs `org.quantumos.script.run`.
    fn start_instance(&self, definition: &str, variables_json: &str) -> zbus::Result<u64>;
    /// Empty strings match everything.
    fn list_instances(&self, definition: &str, state: &str) -> zbus::Result<Vec<InstanceInfo>>;
    fn get_instance(&self, id: u64) -> zbus::Result<InstanceDetail>;
    /// Needs `org.quantumos.script.run`.
    fn cancel(&self, id: u64) -> zbus::Result<()>;
    /// Sets variables of a running instance. Needs `org.quantumos.script.run`.
    fn set_variables(&self, id: u64, variables_json: &str) -> zbus::Result<()>;
    /// Delivers a message to the instance waiting for `name` (and `key`), or starts a process
    /// with that message start event; returns the instance. Needs `org.quantumos.script.run`.
    fn correlate_message(&self, name: &str, key: &str, variables_json: &str) -> zbus::Result<u64>;

    /// Locks up to `max` external tasks of `topics` for `lock_ms`. Needs
    /// `org.quantumos.script.work`.
    fn fetch_and_lock(
        &self,
        worker: &str,
        topics: &[&str],
        max: u32,
        lock_ms: u64,
    ) -> zbus::Result<Vec<TaskInfo>>;
    /// Completes a locked external task (`org.quantumos.script.work`) or a user task
    /// (`org.quantumos.script.run`).
    fn complete(&self, task: u64, variables_json: &str) -> zbus::Result<()>;
    /// Reports a failure. `retries` < 0 applies the engine's policy (3 tries, exponential
    /// back-off); otherwise `retries` and `retry_timeout_ms` are used as given.
    fn handle_failure(
        &self,
        task: u64,
        message: &str,
        retries: i32,
        retry_timeout_ms: u64,
    ) -> zbus::Result<()>;
    /// Throws a BPMN error with `code` from the task (caught by an error boundary event).
    fn handle_bpmn_error(
        &self,
        task: u64,
        code: &str,
        message: &str,
        variables_json: &str,
    ) -> zbus::Result<()>;
    fn extend_lock(&self, task: u64, worker: &str, lock_ms: u64) -> zbus::Result<()>;
    /// `kind`: `external`, `user`, `dbus`, or empty for all.
    fn list_tasks(&self, kind: &str) -> zbus::Result<Vec<TaskInfo>>;

    fn list_incidents(&self) -> zbus::Result<Vec<IncidentInfo>>;
    /// Gives a failed task `retries` more tries, or runs a stuck token's element again.
    /// Needs `org.quantumos.script.run`.
    fn resolve_incident(&self, id: u64, retries: i32) -> zbus::Result<()>;

    /// An instance started, moved on, or ended (`state`).
    #[zbus(signal)]
    fn instance_changed(&self, id: u64, definition: &str, state: &str) -> zbus::Result<()>;
    /// A task ran out of retries or a token cannot go on.
    #[zbus(signal)]
    fn incident_raised(&self, id: u64, instance: u64, message: &str) -> zbus::Result<()>;
}
