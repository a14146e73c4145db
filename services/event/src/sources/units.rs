//! Unit state changes from systemd's own D-Bus API: after `Subscribe()`, systemd sends
//! `PropertiesChanged` for `org.freedesktop.systemd1.Unit` on each unit object; an
//! `ActiveState` change becomes `unit.started` (→ active), `unit.stopped` (→ inactive) or
//! `unit.failed` (→ failed).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use futures_util::StreamExt;
use steppps::api::systemd::{Systemd1ManagerProxy, UNIT_PATH_PREFIX, unit_name_from_path};
use zbus::OwnedVariant as OwnedValue;
use zbus::{Connection, MatchRule, MessageStream};

use crate::chain::{Entry, now_usec};
use crate::{EventLog, Pending};

pub const SOURCE: &str = "units";
const SYSTEMD: &str = "org.freedesktop.systemd1";
/// The source's state until systemd owns its bus name.
pub const WAITING: &str = "waiting for systemd to join the bus";

/// The event for a unit going from `previous` to `state`, if it is one we record.
pub fn transition(unit: &str, previous: Option<&str>, state: &str) -> Option<Entry> {
    let (kind, severity) = match state {
        "active" if previous != Some("active") => ("unit.started", 6),
        "inactive" if matches!(previous, Some("active" | "deactivating")) => ("unit.stopped", 6),
        "failed" if previous != Some("failed") => ("unit.failed", 3),
        _ => return None,
    };
    Some(Entry {
        time_usec: now_usec(),
        severity,
        source: SOURCE.into(),
        kind: kind.into(),
        fields: vec![
            ("previous".into(), previous.unwrap_or("unknown").to_string()),
            ("state".into(), state.to_string()),
            ("unit".into(), unit.to_string()),
        ],
    })
}

/// Follows unit state changes while systemd is on the bus.
pub async fn follow(log: Arc<EventLog>, connection: Connection) {
    if let Err(why) = run(&log, &connection).await {
        log.set_source_state(SOURCE, why);
    }
}

async fn run(log: &EventLog, connection: &Connection) -> Result<(), String> {
    wait_for_systemd(log, connection).await?;
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(SYSTEMD)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path_namespace(UNIT_PATH_PREFIX.trim_end_matches('/'))
        .arg(0, "org.freedesktop.systemd1.Unit")
        .build()
        .map_err(|e| e.to_string())?;
    let mut stream = MessageStream::for_match_rule(rule, connection, NonZeroUsize::new(1024))
        .await
        .map_err(|e| format!("unavailable: {e}"))?;
    let systemd = Systemd1ManagerProxy::new(connection)
        .await
        .map_err(|e| format!("unavailable: {e}"))?;
    systemd
        .subscribe()
        .await
        .map_err(|e| format!("unavailable: Subscribe failed: {e}"))?;
    log.set_source_state(SOURCE, "on");
    let mut last: HashMap<String, String> = HashMap::new();
    while let Some(message) = stream.next().await {
        let Ok(message) = message else { continue };
        let header = message.header();
        let Some(unit) = header.path().and_then(|p| unit_name_from_path(p.as_str())) else {
            continue;
        };
        let Ok((_, changed, _)) = message
            .body()
            .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
        else {
            continue;
        };
        let Some(state) = changed
            .get("ActiveState")
            .and_then(|v| String::try_from(v.clone()).ok())
        else {
            continue;
        };
        let previous = last.insert(unit.clone(), state.clone());
        if let Some(entry) = transition(&unit, previous.as_deref(), &state) {
            log.offer(Pending::new(entry));
        }
    }
    Err("stopped: the bus connection closed".into())
}

/// Returns once systemd owns its name on the bus. At boot this daemon can start before PID 1
/// has connected to the freshly started dbus-daemon; giving up then would lose every unit
/// change of the boot, so the source waits (its state says so) for systemd to join.
async fn wait_for_systemd(log: &EventLog, connection: &Connection) -> Result<(), String> {
    steppps::daemon::wait_for_names_reporting(connection, &[SYSTEMD], None, |_| {
        log.set_source_state(SOURCE, WAITING)
    })
    .await
    .map_err(|_| "unavailable: the bus stopped answering while waiting for systemd".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_transitions_are_events() {
        let kind =
            |prev: Option<&str>, state: &str| transition("a.service", prev, state).map(|e| e.kind);
        assert_eq!(
            kind(Some("activating"), "active").as_deref(),
            Some("unit.started")
        );
        assert_eq!(kind(Some("active"), "active"), None);
        assert_eq!(
            kind(Some("deactivating"), "inactive").as_deref(),
            Some("unit.stopped")
        );
        assert_eq!(kind(Some("activating"), "inactive"), None);
        assert_eq!(kind(None, "failed").as_deref(), Some("unit.failed"));
        assert_eq!(kind(Some("active"), "activating"), None);
    }
}
