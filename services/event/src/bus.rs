//! `org.quantumos.Event1`: converts calls into [`EventLog`] operations, committed records
//! into `Captured` signals for the clients that subscribed, and alerts into `Alert` signals.
//! Nothing else.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use steppps::Error;
use steppps::api::event::{EventFilter, EventPage, EventRecord, EventStats, VerifyResult};
use steppps::auth::authorize;
use tokio::sync::mpsc;
use tracing::warn;
use zbus::fdo::DBusProxy;
use zbus::message::Header;
use zbus::names::UniqueName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::chain::Record;
use crate::{EventLog, to_wire};

/// polkit action for `Emit` (uid 0 needs none).
pub const EMIT_ACTION: &str = "org.quantumos.event.emit";
/// polkit action for `ReloadRules`.
pub const RELOAD_ACTION: &str = "org.quantumos.event.reload";

#[derive(Debug)]
pub struct EventInterface {
    log: Arc<EventLog>,
}

impl EventInterface {
    pub fn new(log: Arc<EventLog>) -> Self {
        EventInterface { log }
    }
}

#[interface(name = "org.quantumos.Event1")]
impl EventInterface {
    async fn emit(
        &self,
        source: &str,
        kind: &str,
        severity: &str,
        fields: HashMap<String, String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u64, Error> {
        let entry = self
            .log
            .entry_from_emit(source, kind, severity, fields)
            .map_err(Error::invalid_argument)?;
        authorize(connection, &header, EMIT_ACTION).await?;
        self.log.submit(entry).await.map_err(Error::failed)
    }

    async fn query(&self, filter: EventFilter) -> Result<EventPage, Error> {
        let log = self.log.clone();
        run_blocking(move || log.query(&filter))
            .await
            .map_err(Error::invalid_argument)
    }

    async fn verify(&self) -> Result<VerifyResult, Error> {
        let log = self.log.clone();
        run_blocking(move || log.verify())
            .await
            .map_err(Error::failed)
    }

    fn stats(&self) -> EventStats {
        self.log.stats()
    }

    async fn reload_rules(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u32, Error> {
        authorize(connection, &header, RELOAD_ACTION).await?;
        self.log
            .reload_rules()
            .map(|n| n as u32)
            .map_err(|e| Error::invalid_argument(format!("{e}; the previous rules stay in force")))
    }

    /// Starts sending `Captured` (to everyone: it is a broadcast) until the caller calls
    /// `Unsubscribe` or leaves the bus. Subscribing twice counts once.
    async fn subscribe(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let sender = caller(&header)?;
        let name = sender.to_string();
        let failed = |e: &dyn std::fmt::Display| Error::failed(format!("cannot watch {name}: {e}"));
        // Watch for the caller leaving first, then check it is still there: a client that
        // left in between is not kept as a subscriber forever.
        let dbus = DBusProxy::new(connection).await.map_err(|e| failed(&e))?;
        let mut left = dbus
            .receive_name_owner_changed_with_args(&[(0, name.as_str()), (2, "")])
            .await
            .map_err(|e| failed(&e))?;
        let still_there = dbus
            .name_has_owner(sender.into())
            .await
            .map_err(|e| failed(&e))?;
        if !still_there {
            return Ok(());
        }
        let log = self.log.clone();
        let watched = name.clone();
        let watcher = tokio::spawn(async move {
            left.next().await;
            log.subscribers.remove(&watched);
        });
        self.log.subscribers.add(&name, watcher.abort_handle());
        Ok(())
    }

    /// Stops what `Subscribe` started (`Captured` stops when no subscriber is left).
    fn unsubscribe(&self, #[zbus(header)] header: Header<'_>) -> Result<(), Error> {
        let name = caller(&header)?;
        if self.log.subscribers.remove(name.as_str()) {
            Ok(())
        } else {
            Err(Error::not_found(format!("{name} has not subscribed")))
        }
    }

    #[zbus(signal)]
    pub async fn captured(emitter: &SignalEmitter<'_>, record: EventRecord) -> zbus::Result<()>;

    #[zbus(signal)]
    pub async fn alert(
        emitter: &SignalEmitter<'_>,
        rule: &str,
        message: &str,
        seq: u64,
    ) -> zbus::Result<()>;
}

/// Reading segment files can take a while: off the bus's thread.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

/// The unique bus name of a method's caller.
fn caller(header: &Header<'_>) -> Result<UniqueName<'static>, Error> {
    header
        .sender()
        .map(|s| s.to_owned())
        .ok_or_else(|| Error::invalid_argument("a call without a sender"))
}

/// Sends `Captured` for the records the writer committed while someone had subscribed.
pub async fn publish_captured(
    connection: Connection,
    log: Arc<EventLog>,
    mut committed: mpsc::Receiver<Vec<Record>>,
) {
    let emitter = match SignalEmitter::new(&connection, steppps::api::EVENT.path) {
        Ok(e) => e,
        Err(e) => {
            warn!("cannot emit Captured: {e}");
            return;
        }
    };
    while let Some(records) = committed.recv().await {
        for r in &records {
            log.subscribers.count_sent();
            if let Err(e) = EventInterface::captured(&emitter, to_wire(r)).await {
                warn!("cannot emit Captured: {e}");
            }
        }
    }
}

/// Sends `Alert`.
pub async fn send_alert(connection: &Connection, rule: &str, message: &str, seq: u64) {
    match SignalEmitter::new(connection, steppps::api::EVENT.path) {
        Ok(emitter) => {
            if let Err(e) = EventInterface::alert(&emitter, rule, message, seq).await {
                warn!("cannot emit Alert: {e}");
            }
        }
        Err(e) => warn!("cannot emit Alert: {e}"),
    }
}
