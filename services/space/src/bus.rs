//! `org.quantumos.Space1`: converts calls into [`Space`] queries, and kernel device events into
//! signals. Nothing else.

use std::sync::Arc;

use steppps::api::SPACE;
use steppps::api::dimension::DaemonState;
use steppps::api::space::{
    Cpu, Devices, Inventory, Memory, NetInterface, OsInfo, PowerSupply, Pressure, Storage,
    ThermalZone,
};
use steppps::daemon::Daemon;
use tracing::{debug, warn};
use zbus::interface;
use zbus::object_server::SignalEmitter;

use crate::hotplug::UeventSocket;
use crate::{Change, HotplugState, Space};

#[derive(Debug)]
pub struct SpaceInterface {
    space: Arc<Space>,
}

impl SpaceInterface {
    pub fn new(space: Arc<Space>) -> Self {
        SpaceInterface { space }
    }
}

#[interface(name = "org.quantumos.Space1")]
impl SpaceInterface {
    fn get_inventory(&self) -> Inventory {
        self.space.collect(|c| c.inventory())
    }
    fn get_os(&self) -> OsInfo {
        self.space.collect(|c| c.os())
    }
    fn get_cpu(&self) -> Cpu {
        self.space.collect(|c| c.cpu())
    }
    fn get_memory(&self) -> Memory {
        self.space.collect(|c| c.memory())
    }
    fn get_storage(&self) -> Storage {
        self.space.collect(|c| c.storage())
    }
    fn get_network(&self) -> Vec<NetInterface> {
        self.space.collect(|c| c.network())
    }
    fn get_devices(&self) -> Devices {
        self.space.collect(|c| c.devices())
    }
    fn get_thermal(&self) -> Vec<ThermalZone> {
        self.space.collect(|c| c.thermal())
    }
    fn get_power(&self) -> Vec<PowerSupply> {
        self.space.collect(|c| c.power())
    }
    fn get_pressure(&self) -> Pressure {
        self.space.collect(|c| c.pressure())
    }

    #[zbus(property(emits_changed_signal = "false"))]
    fn hostname(&self) -> String {
        self.space.hostname()
    }
    #[zbus(property(emits_changed_signal = "false"))]
    fn cpu_count(&self) -> u32 {
        self.space.facts().cpu_count
    }
    #[zbus(property(emits_changed_signal = "false"))]
    fn memory_total(&self) -> u64 {
        self.space.facts().memory_total
    }

    #[zbus(signal)]
    async fn link_added(emitter: &SignalEmitter<'_>, name: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn link_removed(emitter: &SignalEmitter<'_>, name: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn device_added(
        emitter: &SignalEmitter<'_>,
        subsystem: &str,
        name: &str,
        devpath: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn device_removed(
        emitter: &SignalEmitter<'_>,
        subsystem: &str,
        name: &str,
        devpath: &str,
    ) -> zbus::Result<()>;
}

/// Follows the kernel's device events and turns appearances and removals into signals. When
/// the events cannot be followed, the daemon keeps serving the inventory and says so in its
/// state (`degraded`) and health detail.
pub async fn follow_hotplug(space: Arc<Space>, daemon: Daemon) {
    let mut socket = match UeventSocket::open() {
        Ok(socket) => socket,
        Err(e) => {
            warn!("cannot follow kernel device events: {e}");
            space.set_hotplug(HotplugState::Unavailable(e.to_string()));
            let _ = daemon.set_state(DaemonState::Degraded).await;
            return;
        }
    };
    space.set_hotplug(HotplugState::Listening);
    let emitter = match SignalEmitter::new(daemon.connection(), SPACE.path) {
        Ok(e) => e,
        Err(e) => {
            warn!("cannot emit signals: {e}");
            return;
        }
    };
    loop {
        let event = match socket.next().await {
            Ok(event) => event,
            Err(e) => {
                warn!("device events stopped: {e}");
                space.set_hotplug(HotplugState::Unavailable(e.to_string()));
                let _ = daemon.set_state(DaemonState::Degraded).await;
                return;
            }
        };
        let Some(change) = Change::from_uevent(&event) else {
            continue;
        };
        debug!(?change, "device change");
        space.record(&change);
        let sent = match &change {
            Change::LinkAdded(name) => SpaceInterface::link_added(&emitter, name).await,
            Change::LinkRemoved(name) => SpaceInterface::link_removed(&emitter, name).await,
            Change::DeviceAdded {
                subsystem,
                name,
                devpath,
            } => SpaceInterface::device_added(&emitter, subsystem, name, devpath).await,
            Change::DeviceRemoved {
                subsystem,
                name,
                devpath,
            } => SpaceInterface::device_removed(&emitter, subsystem, name, devpath).await,
        };
        if let Err(e) = sent {
            warn!("cannot emit {change:?}: {e}");
        }
    }
}
