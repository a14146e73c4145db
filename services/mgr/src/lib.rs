//! steppps-mgr: the one place that knows every STEPPPS dimension and quantumd.
//!
//! It tracks each dimension's presence on the bus (`NameOwnerChanged`) and health (a periodic
//! `org.quantumos.Dimension1.Health()` call with a timeout) in a [`registry::Registry`],
//! answers `GetStatus` for `qos-ctl status`, announces changes with `DimensionChanged`, and
//! restarts a dimension through systemd's own D-Bus API.

pub mod bus;
mod entry;
pub mod monitor;
pub mod registry;
pub mod restart;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use steppps::api::DIMENSIONS;
use steppps::daemon::Vitals;

use crate::registry::Registry;

/// `/etc/quantumos/manager.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seconds between health checks of every present dimension.
    pub health_interval_sec: f64,
    /// How long a dimension may take to answer `Health()` before it counts as unhealthy.
    pub health_timeout_ms: u64,
    /// Dimensions that must run on this system even when their unit file is not installed.
    pub expected: Vec<String>,
    /// Where to look for the dimensions' unit files: an installed unit makes a dimension
    /// expected.
    pub unit_dirs: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            health_interval_sec: 5.0,
            health_timeout_ms: 2000,
            expected: Vec::new(),
            unit_dirs: vec![
                "/usr/lib/systemd/system".into(),
                "/etc/systemd/system".into(),
            ],
        }
    }
}

impl Config {
    /// Checks what serde cannot: names and ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        for name in &self.expected {
            if steppps::api::find_dimension(name).is_none() {
                anyhow::bail!(
                    "manager.toml: `expected` names an unknown dimension `{name}`; known: {}",
                    steppps::api::dimension_names().join(", ")
                );
            }
        }
        if !(0.1..=3600.0).contains(&self.health_interval_sec) {
            anyhow::bail!("manager.toml: `health_interval_sec` must be between 0.1 and 3600");
        }
        if !(10..=60_000).contains(&self.health_timeout_ms) {
            anyhow::bail!("manager.toml: `health_timeout_ms` must be between 10 and 60000");
        }
        Ok(())
    }

    pub fn health_interval(&self) -> Duration {
        Duration::from_secs_f64(self.health_interval_sec)
    }

    pub fn health_timeout(&self) -> Duration {
        Duration::from_millis(self.health_timeout_ms)
    }
}

/// The manager's shared state.
#[derive(Debug)]
pub struct Manager {
    pub config: Config,
    registry: Mutex<Registry>,
}

impl Manager {
    pub fn new(config: Config) -> Arc<Self> {
        let registry = Registry::new(&DIMENSIONS, &config.expected, &config.unit_dirs);
        Arc::new(Manager {
            config,
            registry: Mutex::new(registry),
        })
    }

    /// The registry; a panic elsewhere while it was held cannot make it unusable.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Vitals for Manager {
    fn health(&self) -> (bool, String) {
        let (ready, expected) = self.registry().counts();
        (
            true,
            format!("{ready} of {expected} expected dimensions ready"),
        )
    }

    fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let (ready, expected) = self.registry().counts();
        [
            ("dimensions_ready".to_string(), ready as f64),
            ("dimensions_expected".to_string(), expected as f64),
        ]
        .into_iter()
        .collect()
    }
}
