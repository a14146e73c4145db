//! `org.quantumos.Manager1`: steppps-mgr, the one place that knows every dimension.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// A row of `ListDimensions`: where a dimension lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct DimensionEntry {
    pub name: String,
    pub bus_name: String,
    pub object_path: String,
    pub unit: String,
}

/// What the manager knows about one dimension right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct DimensionStatus {
    pub name: String,
    pub bus_name: String,
    pub unit: String,
    /// Whether this system is meant to run it: its unit is installed, it is listed in
    /// `/etc/quantumos/manager.toml`, or it has been seen on the bus since the manager started.
    pub expected: bool,
    /// Whether its bus name has an owner now.
    pub present: bool,
    /// `ready`, `starting`, `degraded`, `stopping` while present; `absent` when expected but
    /// gone; `not-installed` otherwise.
    pub state: String,
    /// The last `Health()` answer; false when it did not answer in time.
    pub healthy: bool,
    pub detail: String,
    pub version: String,
    /// Process id of the name's owner; 0 when absent.
    pub pid: u32,
    /// When the state or health was last checked, microseconds since the Unix epoch.
    pub checked_usec: u64,
}

impl DimensionStatus {
    /// A dimension that is expected and not ready and healthy makes the system degraded.
    pub fn is_ok(&self) -> bool {
        !self.expected || (self.present && self.state == "ready" && self.healthy)
    }
}

/// `GetStatus`: the aggregate and one row per dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct SystemStatus {
    /// `ok` when every expected dimension is ready and healthy, `degraded` otherwise.
    pub overall: String,
    pub dimensions: Vec<DimensionStatus>,
}

impl SystemStatus {
    /// `(ready, expected)`: how many expected dimensions are ready and healthy, of how many.
    pub fn counts(&self) -> (usize, usize) {
        let expected = self.dimensions.iter().filter(|d| d.expected);
        let ready = expected.clone().filter(|d| d.is_ok()).count();
        (ready, expected.count())
    }
}

#[proxy(
    interface = "org.quantumos.Manager1",
    default_service = "org.quantumos.Manager1",
    default_path = "/org/quantumos/Manager1"
)]
pub trait Manager1 {
    fn list_dimensions(&self) -> zbus::Result<Vec<DimensionEntry>>;
    fn get_status(&self) -> zbus::Result<SystemStatus>;
    /// Restarts a dimension's unit through systemd. Needs `org.quantumos.manager.restart`.
    fn restart(&self, name: &str) -> zbus::Result<()>;

    /// A dimension appeared, went away, or changed state or health.
    #[zbus(signal)]
    fn dimension_changed(&self, status: DimensionStatus) -> zbus::Result<()>;
}
