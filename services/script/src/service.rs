//! The daemon's state: the engine behind one mutex, its configuration, and what happens at
//! boot (deploy the shipped workflows, start the root orchestrator unless it still runs).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use serde::Deserialize;
use steppps::daemon::Vitals;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::engine::{Engine, EngineConfig};
use crate::now_ms;
use crate::store::{Durability, Store};

/// `/etc/quantumos/script.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directories whose `*.bpmn` files are deployed at start (unchanged ones keep their
    /// version).
    pub workflow_dirs: Vec<PathBuf>,
    /// The process started at boot unless an instance of it is still active; empty: none.
    pub root_process: String,
    /// Tries a task gets before it becomes an incident.
    pub default_retries: i32,
    /// First back-off after a failed try; doubles with each further failure.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// How long a service task's D-Bus call may take.
    pub call_timeout_ms: u64,
    /// `process`: a committed step survives the daemon being killed; `power`: a power cut too
    /// (an fsync per step).
    pub durability: String,
    /// Elements one step may run before it counts as an endless loop.
    pub max_steps: usize,
    /// Days a finished instance and its history are kept (0: for good).
    pub history_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workflow_dirs: vec![
                PathBuf::from("/usr/share/quantumos/workflows"),
                PathBuf::from("/etc/quantumos/workflows"),
            ],
            root_process: "quantumos-root".into(),
            default_retries: 3,
            retry_backoff_ms: 1000,
            retry_backoff_max_ms: 300_000,
            call_timeout_ms: 30_000,
            durability: "process".into(),
            max_steps: 10_000,
            history_days: 30,
        }
    }
}

impl Config {
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            default_retries: self.default_retries.max(1),
            backoff_base_ms: self.retry_backoff_ms as i64,
            backoff_max_ms: self.retry_backoff_max_ms as i64,
            max_steps: self.max_steps.max(100),
            history_ttl_ms: i64::from(self.history_days) * 24 * 3600 * 1000,
            ..EngineConfig::default()
        }
    }
}

/// The script dimension: an engine shared by the bus interface and the timer/call driver.
#[derive(Debug)]
pub struct Script {
    engine: Mutex<Engine>,
    /// Woken when the engine may have new calls to make or an earlier timer.
    pub wake: Notify,
    pub config: Config,
    /// Why the last step could not be stored, for Health.
    failure: Mutex<Option<String>>,
}

impl Script {
    /// Opens the store in `state_dir` and loads what it holds.
    pub fn open(state_dir: &Path, config: Config) -> anyhow::Result<Script> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let path = state_dir.join("workflows.sqlite");
        let durability = match config.durability.as_str() {
            "process" => Durability::Process,
            "power" => Durability::Power,
            other => anyhow::bail!("script.toml: durability = `{other}`: use `process` or `power`"),
        };
        let store = Store::open(&path, durability)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let engine = Engine::open(config.engine_config(), store, now_ms())
            .with_context(|| format!("cannot load {}", path.display()))?;
        Ok(Script {
            engine: Mutex::new(engine),
            wake: Notify::new(),
            config,
            failure: Mutex::new(None),
        })
    }

    /// The engine, locked. Callers keep the lock short (no awaits while holding it).
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the engine and wakes the driver (new calls, new timers).
    pub fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let r = f(&mut self.engine());
        self.wake.notify_one();
        r
    }

    pub fn note_store_failure(&self, message: Option<String>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }

    /// Deploys the `*.bpmn` files of the configured directories. A file whose call
    /// activities name a process deployed by a later file is tried again after the others;
    /// a file that does not deploy is logged and skipped: the others still run.
    pub fn deploy_workflow_dirs(&self) -> Vec<String> {
        let mut pending: Vec<PathBuf> = Vec::new();
        for dir in &self.config.workflow_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "bpmn"))
                .collect();
            files.sort();
            pending.extend(files);
        }
        loop {
            let mut failed = Vec::new();
            let before = pending.len();
            for file in std::mem::take(&mut pending) {
                let result = std::fs::read_to_string(&file)
                    .map_err(|e| e.to_string())
                    .and_then(|xml| {
                        self.with(|e| e.deploy(&xml, now_ms()))
                            .map_err(|e| e.to_string())
                    });
                match result {
                    Ok(deployed) => {
                        for (key, version) in deployed {
                            info!("deployed {key} v{version} from {}", file.display());
                        }
                    }
                    Err(e) => failed.push((file, e)),
                }
            }
            if failed.is_empty() || failed.len() == before {
                return failed
                    .into_iter()
                    .map(|(file, e)| {
                        let message = format!("{}: {e}", file.display());
                        warn!("{message}");
                        message
                    })
                    .collect();
            }
            pending = failed.into_iter().map(|(f, _)| f).collect();
        }
    }

    /// Starts the root orchestrator unless an instance of it is active (after a restart the
    /// persisted one goes on).
    pub fn start_root(&self) -> anyhow::Result<Option<u64>> {
        let key = self.config.root_process.clone();
        if key.is_empty() {
            return Ok(None);
        }
        let mut engine = self.engine();
        if engine.active_instances_of(&key) > 0 {
            info!("root process {key} is already running");
            return Ok(None);
        }
        let id = engine
            .start_instance(&key, Default::default(), now_ms())
            .with_context(|| format!("cannot start the root process `{key}`"))?;
        drop(engine);
        self.wake.notify_one();
        info!("started root process {key}: instance {id}");
        Ok(Some(id))
    }
}

impl Vitals for Script {
    fn health(&self) -> (bool, String) {
        if let Some(f) = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return (false, f);
        }
        let m = self.engine().metrics();
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0) as u64;
        (
            true,
            format!(
                "{} definitions, {} active instances, {} open tasks, {} incidents",
                get("definitions"),
                get("instances_active"),
                get("tasks_open"),
                get("incidents_open")
            ),
        )
    }

    fn metrics(&self) -> std::collections::HashMap<String, f64> {
        self.engine().metrics()
    }
}
