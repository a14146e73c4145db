//! The STEPPPS daemons on the bus: `dimension.appeared` when an `org.quantumos.*` name gets
//! an owner, `dimension.vanished` when it loses it, with `clean = yes` if the daemon announced
//! `State = stopping` first (a SIGTERM) and `clean = no` otherwise (a crash, SIGKILL, OOM).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use futures_util::StreamExt;
use steppps::api::{DIMENSION_INTERFACE, EVENT, find_dimension};
use zbus::OwnedVariant as OwnedValue;
use zbus::{Connection, MatchRule, MessageStream};

use crate::chain::{Entry, now_usec};
use crate::{EventLog, Pending};

pub const SOURCE: &str = "bus";
const PREFIX: &str = "org.quantumos.";

/// The event for `name` changing owner, if it is a QuantumOS daemon other than this one.
pub fn owner_change(name: &str, old: &str, new: &str, announced_stopping: bool) -> Option<Entry> {
    if !name.starts_with(PREFIX) || name == EVENT.bus_name {
        return None;
    }
    let mut fields = vec![("name".to_string(), name.to_string())];
    if let Some(d) = find_dimension(name) {
        fields.push(("dimension".into(), d.name.into()));
    }
    let (kind, severity) = if new.is_empty() && !old.is_empty() {
        let clean = if announced_stopping { "yes" } else { "no" };
        fields.push(("clean".into(), clean.into()));
        ("dimension.vanished", if announced_stopping { 5 } else { 4 })
    } else if old.is_empty() && !new.is_empty() {
        ("dimension.appeared", 6)
    } else {
        return None;
    };
    fields.sort();
    Some(Entry {
        time_usec: now_usec(),
        severity,
        source: SOURCE.into(),
        kind: kind.into(),
        fields,
    })
}

/// Follows the daemons' names and `State` changes.
pub async fn follow(log: Arc<EventLog>, connection: Connection) {
    if let Err(e) = run(&log, &connection).await {
        log.set_source_state(SOURCE, format!("unavailable: {e}"));
    }
}

async fn run(log: &EventLog, connection: &Connection) -> zbus::Result<()> {
    let states = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.freedesktop.DBus.Properties")
        .member("PropertiesChanged")
        .path_namespace("/org/quantumos")
        .arg(0, DIMENSION_INTERFACE)
        .build()?;
    let mut states =
        MessageStream::for_match_rule(states, connection, NonZeroUsize::new(256)).await?;
    let dbus = zbus::fdo::DBusProxy::new(connection).await?;
    let mut owners = dbus.receive_name_owner_changed().await?;
    log.set_source_state(SOURCE, "on");
    // Unique names that announced `stopping`.
    let mut stopping: HashMap<String, bool> = HashMap::new();
    loop {
        tokio::select! {
            // A daemon's `stopping` is sent before its name goes: look at states first.
            biased;
            Some(message) = states.next() => {
                let Ok(message) = message else { continue };
                let Some(sender) = message.header().sender().map(|s| s.to_string()) else {
                    continue;
                };
                if let Ok((_, changed, _)) = message
                    .body()
                    .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                    && let Some(state) = changed.get("State").and_then(|v| String::try_from(v.clone()).ok())
                {
                    stopping.insert(sender, state == "stopping");
                }
            }
            Some(signal) = owners.next() => {
                let Ok(args) = signal.args() else { continue };
                let old = args.old_owner().as_ref().map(|o| o.to_string()).unwrap_or_default();
                let new = args.new_owner().as_ref().map(|o| o.to_string()).unwrap_or_default();
                let announced = stopping.remove(&old).unwrap_or(false);
                if let Some(entry) = owner_change(args.name(), &old, &new, announced) {
                    log.offer(Pending::new(entry));
                }
            }
            else => return Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vanishing_says_whether_it_was_clean() {
        let e = owner_change("org.quantumos.Space1", ":1.5", "", false).unwrap();
        assert_eq!(e.kind, "dimension.vanished");
        assert!(e.fields.contains(&("clean".into(), "no".into())));
        assert!(e.fields.contains(&("dimension".into(), "space".into())));
        let e = owner_change("org.quantumos.Manager1", "", ":1.7", false).unwrap();
        assert_eq!(e.kind, "dimension.appeared");
        assert!(!e.fields.iter().any(|(k, _)| k == "dimension"));
        assert!(owner_change("org.quantumos.Event1", ":1.1", "", false).is_none());
        assert!(owner_change("org.freedesktop.systemd1", ":1.1", "", false).is_none());
    }
}
