//! `org.quantumos.Dimension1`: the interface every QuantumOS daemon serves on its object,
//! next to its own. The manager reads it to know each daemon's state and health.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use zbus::proxy;

/// A daemon's life cycle, as the `State` property reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    /// Connected, setting up; not yet serving requests.
    Starting,
    /// Serving.
    Ready,
    /// Serving, but something it depends on is missing or failing (Health says what).
    Degraded,
    /// Shutting down.
    Stopping,
}

impl DaemonState {
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Starting => "starting",
            DaemonState::Ready => "ready",
            DaemonState::Degraded => "degraded",
            DaemonState::Stopping => "stopping",
        }
    }
}

impl fmt::Display for DaemonState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DaemonState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starting" => Ok(DaemonState::Starting),
            "ready" => Ok(DaemonState::Ready),
            "degraded" => Ok(DaemonState::Degraded),
            "stopping" => Ok(DaemonState::Stopping),
            other => Err(format!("unknown daemon state `{other}`")),
        }
    }
}

/// The proxy for `org.quantumos.Dimension1`. It has no default destination: build it with
/// `.destination(dim.bus_name)` and `.path(dim.path)`, or with [`dimension_proxy`].
#[proxy(interface = "org.quantumos.Dimension1")]
pub trait Dimension1 {
    /// `(ok, detail)`: whether the daemon can do its job, and in words why not.
    fn health(&self) -> zbus::Result<(bool, String)>;
    /// Counters and gauges: `uptime_seconds`, `rss_bytes`, and the dimension's own.
    fn metrics(&self) -> zbus::Result<HashMap<String, f64>>;

    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// One of `starting`, `ready`, `degraded`, `stopping`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
}

/// The `Dimension1` interface of the daemon `id` names.
pub async fn dimension_proxy(
    connection: &zbus::Connection,
    id: &super::DimensionId,
) -> zbus::Result<Dimension1Proxy<'static>> {
    Dimension1Proxy::builder(connection)
        .destination(id.bus_name)
        .path(id.path)
        .build()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_wire_name() {
        for s in [
            DaemonState::Starting,
            DaemonState::Ready,
            DaemonState::Degraded,
            DaemonState::Stopping,
        ] {
            assert_eq!(s.as_str().parse::<DaemonState>(), Ok(s));
        }
        assert!("running".parse::<DaemonState>().is_err());
    }
}
