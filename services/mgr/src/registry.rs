//! What the manager knows about each dimension, and how observations change it.
//!
//! The registry is plain data: the monitor feeds it observations from the bus (a name
//! appeared or vanished, a health probe answered or timed out) and publishes the rows that
//! changed. Keeping it free of D-Bus makes the state rules testable on their own.

use std::path::Path;

use steppps::api::DimensionId;
use steppps::api::dimension::DaemonState;
use steppps::api::manager::{DimensionStatus, SystemStatus};

/// Something the monitor saw about one dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The bus name got an owner.
    Appeared { owner: String, pid: u32 },
    /// The bus name lost its owner (the process exited, crashed or was killed).
    Vanished,
    /// A health probe answered.
    Probed {
        state: String,
        version: String,
        healthy: bool,
        detail: String,
    },
    /// A health probe failed or did not answer in time.
    ProbeFailed { detail: String },
}

/// Why a dimension is expected to run on this system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Expectation {
    unit_installed: bool,
    configured: bool,
    /// Seen on the bus since the manager started: its absence afterwards is a failure.
    seen: bool,
}

impl Expectation {
    fn any(self) -> bool {
        self.unit_installed || self.configured || self.seen
    }
}

#[derive(Debug, Clone)]
struct Row {
    id: &'static DimensionId,
    expectation: Expectation,
    owner: Option<String>,
    pid: u32,
    /// The `State` property from the last probe; `None` until the first probe after appearing.
    state: Option<String>,
    healthy: bool,
    detail: String,
    version: String,
    checked_usec: u64,
}

impl Row {
    fn status(&self) -> DimensionStatus {
        let present = self.owner.is_some();
        let state = match (&self.owner, &self.state) {
            (Some(_), Some(state)) => state.clone(),
            (Some(_), None) => DaemonState::Starting.as_str().to_string(),
            (None, _) if self.expectation.any() => "absent".to_string(),
            (None, _) => "not-installed".to_string(),
        };
        DimensionStatus {
            name: self.id.name.to_string(),
            bus_name: self.id.bus_name.to_string(),
            unit: self.id.unit.to_string(),
            expected: self.expectation.any(),
            present,
            state,
            healthy: present && self.healthy,
            detail: self.detail.clone(),
            version: self.version.clone(),
            pid: self.pid,
            checked_usec: self.checked_usec,
        }
    }
}

/// The manager's table: one row per dimension, in [`steppps::api::DIMENSIONS`] order.
#[derive(Debug, Clone)]
pub struct Registry {
    rows: Vec<Row>,
}

impl Registry {
    /// `configured` lists dimensions the configuration says must run; `unit_dirs` are
    /// searched for each dimension's unit file.
    pub fn new(
        dimensions: &'static [DimensionId],
        configured: &[String],
        unit_dirs: &[impl AsRef<Path>],
    ) -> Self {
        let rows = dimensions
            .iter()
            .map(|id| Row {
                id,
                expectation: Expectation {
                    unit_installed: unit_dirs.iter().any(|d| d.as_ref().join(id.unit).exists()),
                    configured: configured.iter().any(|c| c == id.name),
                    seen: false,
                },
                owner: None,
                pid: 0,
                state: None,
                healthy: false,
                detail: String::new(),
                version: String::new(),
                checked_usec: 0,
            })
            .collect::<Vec<_>>();
        let mut registry = Registry { rows };
        for row in &mut registry.rows {
            row.detail = if row.expectation.any() {
                "not on the bus"
            } else {
                "not installed"
            }
            .into();
        }
        registry
    }

    /// Applies an observation about the dimension with bus name `bus_name`. Returns its new
    /// status when something a client can see changed.
    pub fn observe(
        &mut self,
        bus_name: &str,
        observation: Observation,
        now_usec: u64,
    ) -> Option<DimensionStatus> {
        let row = self.rows.iter_mut().find(|r| r.id.bus_name == bus_name)?;
        // A probe's answer from a process that has gone since says nothing about now.
        let is_probe = matches!(
            observation,
            Observation::Probed { .. } | Observation::ProbeFailed { .. }
        );
        if is_probe && row.owner.is_none() {
            return None;
        }
        let before = row.status();
        row.checked_usec = now_usec;
        match observation {
            Observation::Appeared { owner, pid } => {
                row.expectation.seen = true;
                row.owner = Some(owner);
                row.pid = pid;
                row.state = None;
                row.healthy = false;
                row.detail = "appeared on the bus; waiting for its first health check".into();
            }
            Observation::Vanished => {
                let was = row.owner.take();
                row.pid = 0;
                row.state = None;
                row.healthy = false;
                row.detail = match was {
                    Some(owner) => format!("left the bus (was {owner})"),
                    None => "not on the bus".into(),
                };
            }
            Observation::Probed {
                state,
                version,
                healthy,
                detail,
            } => {
                row.state = Some(state);
                row.version = version;
                row.healthy = healthy;
                row.detail = detail;
            }
            Observation::ProbeFailed { detail } => {
                row.healthy = false;
                row.detail = detail;
            }
        }
        let after = row.status();
        let changed = DimensionStatus {
            checked_usec: 0,
            ..after.clone()
        } != DimensionStatus {
            checked_usec: 0,
            ..before
        };
        changed.then_some(after)
    }

    /// Dimensions whose name has an owner now: the ones to probe.
    pub fn present(&self) -> Vec<&'static DimensionId> {
        self.rows
            .iter()
            .filter(|r| r.owner.is_some())
            .map(|r| r.id)
            .collect()
    }

    pub fn status(&self) -> SystemStatus {
        let dimensions: Vec<DimensionStatus> = self.rows.iter().map(Row::status).collect();
        let overall = if dimensions.iter().all(DimensionStatus::is_ok) {
            "ok"
        } else {
            "degraded"
        };
        SystemStatus {
            overall: overall.to_string(),
            dimensions,
        }
    }

    /// `(ready, expected)` counts, for the manager's own health and metrics.
    pub fn counts(&self) -> (usize, usize) {
        self.status().counts()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use steppps::api::{DIMENSIONS, SPACE, TIME};

    fn registry(configured: &[&str]) -> Registry {
        let configured: Vec<String> = configured.iter().map(|s| s.to_string()).collect();
        Registry::new(&DIMENSIONS, &configured, &[] as &[&Path])
    }

    fn probed(state: &str, healthy: bool) -> Observation {
        Observation::Probed {
            state: state.into(),
            version: "0.1.0".into(),
            healthy,
            detail: "fine".into(),
        }
    }

    fn row<'a>(status: &'a SystemStatus, name: &str) -> &'a DimensionStatus {
        status.dimensions.iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn nothing_installed_is_ok_and_not_installed() {
        let status = registry(&[]).status();
        assert_eq!(status.overall, "ok");
        assert_eq!(status.dimensions.len(), DIMENSIONS.len());
        assert!(
            status
                .dimensions
                .iter()
                .all(|d| d.state == "not-installed" && !d.expected)
        );
    }

    #[test]
    fn configured_but_absent_is_degraded() {
        let status = registry(&["time"]).status();
        assert_eq!(status.overall, "degraded");
        assert_eq!(row(&status, "time").state, "absent");
    }

    #[test]
    fn appear_probe_vanish() {
        let mut reg = registry(&[]);
        let s = reg
            .observe(
                SPACE.bus_name,
                Observation::Appeared {
                    owner: ":1.7".into(),
                    pid: 42,
                },
                1,
            )
            .unwrap();
        assert_eq!(
            (s.state.as_str(), s.present, s.expected, s.pid),
            ("starting", true, true, 42)
        );
        assert_eq!(
            reg.status().overall,
            "degraded",
            "starting is not ready yet"
        );

        let s = reg
            .observe(SPACE.bus_name, probed("ready", true), 2)
            .unwrap();
        assert!(s.is_ok());
        assert_eq!(reg.status().overall, "ok");
        assert_eq!(reg.counts(), (1, 1));

        // The same answer again is not a change worth a signal.
        assert_eq!(reg.observe(SPACE.bus_name, probed("ready", true), 3), None);

        let s = reg
            .observe(SPACE.bus_name, Observation::Vanished, 4)
            .unwrap();
        assert_eq!(
            (s.state.as_str(), s.present, s.expected, s.pid, s.healthy),
            ("absent", false, true, 0, false)
        );
        assert!(s.detail.contains(":1.7"), "{}", s.detail);
        assert_eq!(
            reg.status().overall,
            "degraded",
            "a dimension seen before must come back"
        );
    }

    #[test]
    fn unhealthy_or_degraded_or_silent_dimension_degrades_the_system() {
        let mut reg = registry(&[]);
        reg.observe(
            TIME.bus_name,
            Observation::Appeared {
                owner: ":1.9".into(),
                pid: 7,
            },
            1,
        );
        reg.observe(TIME.bus_name, probed("degraded", true), 2);
        assert_eq!(reg.status().overall, "degraded");
        reg.observe(TIME.bus_name, probed("ready", false), 3);
        assert_eq!(reg.status().overall, "degraded");
        reg.observe(TIME.bus_name, probed("ready", true), 4);
        assert_eq!(reg.status().overall, "ok");
        let s = reg
            .observe(
                TIME.bus_name,
                Observation::ProbeFailed {
                    detail: "no answer within 2s".into(),
                },
                5,
            )
            .unwrap();
        assert!(!s.healthy);
        assert_eq!(reg.status().overall, "degraded");
    }

    #[test]
    fn late_probe_of_a_vanished_dimension_is_ignored() {
        let mut reg = registry(&[]);
        reg.observe(
            SPACE.bus_name,
            Observation::Appeared {
                owner: ":1.7".into(),
                pid: 42,
            },
            1,
        );
        reg.observe(SPACE.bus_name, Observation::Vanished, 2);
        assert_eq!(reg.observe(SPACE.bus_name, probed("ready", true), 3), None);
        assert_eq!(row(&reg.status(), "space").state, "absent");
    }

    #[test]
    fn installed_unit_makes_a_dimension_expected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPACE.unit), "[Service]\n").unwrap();
        let reg = Registry::new(&DIMENSIONS, &[], &[dir.path()]);
        let status = reg.status();
        assert!(row(&status, "space").expected);
        assert!(!row(&status, "time").expected);
        assert_eq!(status.overall, "degraded");
    }

    #[test]
    fn unknown_bus_names_are_ignored() {
        let mut reg = registry(&[]);
        assert_eq!(
            reg.observe("org.quantumos.Nope1", Observation::Vanished, 1),
            None
        );
    }
}
