//! The SPACE dimension: a real inventory of the machine (OS, CPU, memory, storage, network,
//! PCI/USB devices, thermal zones, power supplies, pressure stall information) and hotplug
//! notifications from the kernel. No D-Bus types here beyond the wire structs of
//! [`steppps::api::space`]; `bus.rs` serves them as `org.quantumos.Space1`.

pub mod hotplug;
pub mod inventory;
