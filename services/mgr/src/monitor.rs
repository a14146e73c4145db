//! Watches the bus for the dimensions: their names coming and going, and their health.
//!
//! Name changes arrive as `NameOwnerChanged` signals (matched on the `org.quantumos`
//! namespace only, so the churn of ordinary clients on the system bus costs nothing); a
//! killed daemon's name is released by the bus at once, so its absence shows within
//! milliseconds. Health is probed on appearance and then every `health_interval_sec`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::StreamExt;
use steppps::api::dimension::Dimension1Proxy;
use steppps::api::{DIMENSIONS, DimensionId, MANAGER};
use tracing::{debug, info, warn};
use zbus::fdo::DBusProxy;
use zbus::message::Type as MessageType;
use zbus::names::{BusName, UniqueName};
use zbus::object_server::SignalEmitter;
use zbus::proxy::CacheProperties;
use zbus::{Connection, MatchRule, MessageStream, Optional};

use crate::Manager;
use crate::bus::ManagerInterface;
use crate::registry::Observation;

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Follows the dimensions until the connection closes.
pub async fn run(manager: Arc<Manager>, connection: Connection) -> anyhow::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .arg0ns("org.quantumos")
        .build()?;
    // Subscribe before looking at the current owners, so nothing falls between the two.
    let mut changes = MessageStream::for_match_rule(rule, &connection, None)
        .await
        .context("cannot subscribe to NameOwnerChanged")?;
    let dbus = DBusProxy::new(&connection).await?;

    for id in &DIMENSIONS {
        let name = BusName::try_from(id.bus_name)?;
        if let Ok(owner) = dbus.get_name_owner(name).await {
            appeared(&manager, &connection, &dbus, id, owner.into_inner()).await;
        }
    }

    let mut tick = tokio::time::interval(manager.config.health_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = changes.next() => {
                let Some(message) = message else { break };
                let Ok(message) = message else { continue };
                let body = message.body();
                let Ok((name, _old, new)) =
                    body.deserialize::<(BusName<'_>, Optional<UniqueName<'_>>, Optional<UniqueName<'_>>)>()
                else {
                    continue;
                };
                let Some(id) = DIMENSIONS.iter().find(|d| d.bus_name == name.as_str()) else { continue };
                let new: Option<UniqueName<'_>> = new.into();
                match new {
                    Some(owner) => appeared(&manager, &connection, &dbus, id, owner.to_owned()).await,
                    None => {
                        info!("{} left the bus", id.name);
                        publish(&manager, &connection, id, Observation::Vanished).await;
                    }
                }
            }
            _ = tick.tick() => {
                let present = manager.registry().present();
                for id in present {
                    spawn_probe(manager.clone(), connection.clone(), id);
                }
            }
        }
    }
    Ok(())
}

async fn appeared(
    manager: &Arc<Manager>,
    connection: &Connection,
    dbus: &DBusProxy<'_>,
    id: &'static DimensionId,
    owner: UniqueName<'static>,
) {
    let pid = dbus
        .get_connection_unix_process_id(BusName::Unique(owner.clone()))
        .await
        .unwrap_or(0);
    info!("{} appeared on the bus as {owner} (pid {pid})", id.name);
    publish(
        manager,
        connection,
        id,
        Observation::Appeared {
            owner: owner.to_string(),
            pid,
        },
    )
    .await;
    spawn_probe(manager.clone(), connection.clone(), id);
}

/// Probes one dimension in the background, so a hung daemon delays nobody else.
fn spawn_probe(manager: Arc<Manager>, connection: Connection, id: &'static DimensionId) {
    tokio::spawn(async move {
        let timeout = manager.config.health_timeout();
        let observation = match tokio::time::timeout(timeout, probe(&connection, id)).await {
            Ok(Ok(observation)) => observation,
            Ok(Err(e)) => Observation::ProbeFailed {
                detail: format!("health check failed: {e}"),
            },
            Err(_) => Observation::ProbeFailed {
                detail: format!("no answer to Health() within {timeout:?}"),
            },
        };
        publish(&manager, &connection, id, observation).await;
    });
}

async fn probe(connection: &Connection, id: &DimensionId) -> zbus::Result<Observation> {
    let proxy = Dimension1Proxy::builder(connection)
        .destination(id.bus_name)
        .path(id.path)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let (healthy, detail) = proxy.health().await?;
    let state = proxy.state().await?;
    let version = proxy.version().await?;
    Ok(Observation::Probed {
        state,
        version,
        healthy,
        detail,
    })
}

/// Records an observation and, when it changed what clients see, emits `DimensionChanged`.
async fn publish(
    manager: &Manager,
    connection: &Connection,
    id: &DimensionId,
    observation: Observation,
) {
    let changed = manager
        .registry()
        .observe(id.bus_name, observation, now_usec());
    let Some(status) = changed else { return };
    debug!(dimension = id.name, state = %status.state, healthy = status.healthy, "dimension changed");
    match SignalEmitter::new(connection, MANAGER.path) {
        Ok(emitter) => {
            if let Err(e) = ManagerInterface::dimension_changed(&emitter, status).await {
                warn!("cannot emit DimensionChanged: {e}");
            }
        }
        Err(e) => warn!("cannot emit DimensionChanged: {e}"),
    }
}
