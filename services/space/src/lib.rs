//! The SPACE dimension: a real inventory of the machine (OS, CPU, memory, storage, network,
//! PCI/USB devices, thermal zones, power supplies, pressure stall information) and hotplug
//! notifications from the kernel. No D-Bus types here beyond the wire structs of
//! [`steppps::api::space`]; [`bus`] serves them as `org.quantumos.Space1`.

pub mod bus;
mod entry;
pub mod hotplug;
pub mod inventory;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use steppps::daemon::Vitals;

use crate::hotplug::{Uevent, UeventAction};
use crate::inventory::Collector;

/// `/etc/quantumos/space.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Follow the kernel's device events and announce links and devices coming and going.
    pub hotplug: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { hotplug: true }
    }
}

/// Facts that properties serve: read once, refreshed when the hardware changes, so a property
/// read costs no file system access. (The hostname changes without a device event: it is
/// read on each request, see [`Space::hostname`].)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub cpu_count: u32,
    pub memory_total: u64,
}

/// Whether the kernel's device events reach us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotplugState {
    Disabled,
    Listening,
    Unavailable(String),
}

/// What a device event means to Space1's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    LinkAdded(String),
    LinkRemoved(String),
    DeviceAdded {
        subsystem: String,
        name: String,
        devpath: String,
    },
    DeviceRemoved {
        subsystem: String,
        name: String,
        devpath: String,
    },
}

impl Change {
    /// Only appearances and disappearances are announced; `change`, `bind` and the like are
    /// frequent and say nothing about the inventory's shape.
    pub fn from_uevent(event: &Uevent) -> Option<Change> {
        let added = match event.action {
            UeventAction::Add => true,
            UeventAction::Remove => false,
            _ => return None,
        };
        if event.subsystem == "net" {
            let name = event.name.clone();
            return Some(if added {
                Change::LinkAdded(name)
            } else {
                Change::LinkRemoved(name)
            });
        }
        let (subsystem, name, devpath) = (
            event.subsystem.clone(),
            event.name.clone(),
            event.devpath.clone(),
        );
        Some(if added {
            Change::DeviceAdded {
                subsystem,
                name,
                devpath,
            }
        } else {
            Change::DeviceRemoved {
                subsystem,
                name,
                devpath,
            }
        })
    }

    /// Whether the cached [`Facts`] may be stale after this change.
    fn touches_facts(&self) -> bool {
        matches!(self, Change::DeviceAdded { subsystem, .. } | Change::DeviceRemoved { subsystem, .. }
            if subsystem == "cpu" || subsystem == "memory")
    }
}

/// The space dimension's state: the collector and what is cached from it.
#[derive(Debug)]
pub struct Space {
    collector: Mutex<Collector>,
    facts: Mutex<Facts>,
    hotplug: Mutex<HotplugState>,
    inventory_requests: AtomicU64,
    changes_seen: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Space {
    pub fn new(collector: Collector) -> Space {
        let space = Space {
            collector: Mutex::new(collector),
            facts: Mutex::new(Facts::default()),
            hotplug: Mutex::new(HotplugState::Disabled),
            inventory_requests: AtomicU64::new(0),
            changes_seen: AtomicU64::new(0),
        };
        space.refresh_facts();
        space
    }

    /// Runs `f` with the collector (one query at a time: sysinfo's state is not shared).
    pub fn collect<T>(&self, f: impl FnOnce(&mut Collector) -> T) -> T {
        self.inventory_requests.fetch_add(1, Ordering::Relaxed);
        f(&mut lock(&self.collector))
    }

    pub fn facts(&self) -> Facts {
        lock(&self.facts).clone()
    }

    /// The hostname now: one uname(2), so a change (`hostnamectl hostname`) shows at once.
    pub fn hostname(&self) -> String {
        inventory::os::hostname().unwrap_or_else(|| inventory::os::Uname::current().nodename)
    }

    fn refresh_facts(&self) {
        let facts = {
            let mut c = lock(&self.collector);
            Facts {
                cpu_count: c.cpu().logical_cpus,
                memory_total: c.memory().total_bytes,
            }
        };
        *lock(&self.facts) = facts;
    }

    pub fn set_hotplug(&self, state: HotplugState) {
        *lock(&self.hotplug) = state;
    }

    pub fn hotplug(&self) -> HotplugState {
        lock(&self.hotplug).clone()
    }

    /// Records a device event; refreshes the cached facts when it may have changed them.
    pub fn record(&self, change: &Change) {
        self.changes_seen.fetch_add(1, Ordering::Relaxed);
        if change.touches_facts() {
            self.refresh_facts();
        }
    }
}

impl Vitals for Space {
    fn health(&self) -> (bool, String) {
        let facts = self.facts();
        if facts.cpu_count == 0 || facts.memory_total == 0 {
            return (
                false,
                "cannot read the CPU and memory inventory from /proc and /sys".into(),
            );
        }
        let hotplug = match self.hotplug() {
            HotplugState::Listening => "following device events".to_string(),
            HotplugState::Disabled => "device events disabled in space.toml".to_string(),
            HotplugState::Unavailable(why) => format!("no device events: {why}"),
        };
        let gib = facts.memory_total as f64 / f64::from(1u32 << 30);
        (
            true,
            format!(
                "{} CPUs, {gib:.1} GiB of memory; {hotplug}",
                facts.cpu_count
            ),
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        HashMap::from([
            (
                "inventory_requests".into(),
                self.inventory_requests.load(Ordering::Relaxed) as f64,
            ),
            (
                "device_changes".into(),
                self.changes_seen.load(Ordering::Relaxed) as f64,
            ),
        ])
    }
}
