//! `org.quantumos.Space1`: the machine's hardware and resource inventory.
//!
//! Every result is a typed structure. Values the hardware does not report are zero or empty
//! (D-Bus has no "null"); each field's doc says which value means "unknown".

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// Everything `GetInventory` returns at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Inventory {
    pub os: OsInfo,
    pub cpu: Cpu,
    pub memory: Memory,
    pub storage: Storage,
    pub network: Vec<NetInterface>,
    pub devices: Devices,
    pub thermal: Vec<ThermalZone>,
    pub power: Vec<PowerSupply>,
    pub pressure: Pressure,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct OsInfo {
    pub hostname: String,
    /// `PRETTY_NAME` from os-release.
    pub os_name: String,
    /// `ID` from os-release (`debian`, `quantumos`).
    pub os_id: String,
    /// `VERSION_ID` from os-release; empty for rolling releases.
    pub os_version: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m`: `x86_64`, `aarch64`.
    pub architecture: String,
    /// Seconds since the Unix epoch.
    pub boot_time: u64,
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Cpu {
    /// `model name` (x86) or the implementer/part description (ARM).
    pub model: String,
    /// `GenuineIntel`, `AuthenticAMD`, `ARM`…; empty when unknown.
    pub vendor: String,
    /// 0 when the kernel does not expose the topology.
    pub physical_cores: u32,
    /// Online logical CPUs: what `nproc` prints without affinity limits.
    pub logical_cpus: u32,
    /// Current frequency of the first CPU in MHz; 0 when unknown.
    pub frequency_mhz: u64,
    /// Feature flags as the kernel names them (`avx2`, `sse4_2`, `asimd`…), sorted.
    pub flags: Vec<String>,
    /// 1, 5 and 15 minute load averages.
    pub load_average: (f64, f64, f64),
}

impl Cpu {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags
            .binary_search_by(|f| f.as_str().cmp(flag))
            .is_ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Memory {
    pub total_bytes: u64,
    /// `MemAvailable`: what can be allocated without swapping.
    pub available_bytes: u64,
    /// total - available.
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Storage {
    pub filesystems: Vec<Filesystem>,
    pub block_devices: Vec<BlockDevice>,
}

/// A mounted file system backed by storage (pseudo file systems such as proc, sysfs and
/// cgroup are left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Filesystem {
    pub mount_point: String,
    /// The mounted source: `/dev/vda1`, `overlay`, `tmpfs`.
    pub device: String,
    pub fs_type: String,
    /// Size and space left for unprivileged users, from statvfs(3) as df(1) shows them.
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// The file system itself is read-only (a CD, a read-only image, `mount -o ro`); a
    /// read-only bind mount of a writable one is not told apart (the daemon's sandbox makes
    /// every mount read-only for itself).
    pub read_only: bool,
}

/// A block device from `/sys/class/block`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct BlockDevice {
    /// Kernel name: `nvme0n1`, `sda2`, `loop0`.
    pub name: String,
    /// `disk`, `partition`, `loop`, `rom`, `virtual`.
    pub kind: String,
    pub size_bytes: u64,
    /// Empty when the device reports none.
    pub model: String,
    pub serial: String,
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    /// For a partition, the disk it belongs to; empty otherwise.
    pub parent: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct NetInterface {
    pub name: String,
    /// `loopback`, `ether`, `wireless`, `bridge`, `virtual`, …
    pub kind: String,
    /// Link-layer address; empty when none.
    pub mac: String,
    /// The kernel's operstate: `up`, `down`, `dormant`, `unknown`, …
    pub operstate: String,
    pub mtu: u32,
    /// Negotiated speed in Mbit/s; 0 when unknown (virtual links, link down).
    pub speed_mbps: u32,
    /// Addresses in CIDR notation: `192.168.1.5/24`, `fe80::1/64`.
    pub addresses: Vec<String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Devices {
    pub pci: Vec<PciDevice>,
    pub usb: Vec<UsbDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct PciDevice {
    /// `0000:00:02.0`.
    pub slot: String,
    /// 24-bit class code: `0x030000` is a VGA controller.
    pub class_code: u32,
    /// Human name of the class: `VGA compatible controller`.
    pub class_name: String,
    pub vendor_id: u16,
    pub device_id: u16,
    /// From the pci.ids database when it is installed; empty otherwise.
    pub vendor_name: String,
    pub device_name: String,
    /// Bound kernel driver; empty when none.
    pub driver: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct UsbDevice {
    /// sysfs name: `1-1.2`, `usb1` for a root hub.
    pub sysname: String,
    pub bus: u32,
    pub device_number: u32,
    pub vendor_id: u16,
    pub product_id: u16,
    /// Strings the device reports; empty when it reports none.
    pub manufacturer: String,
    pub product: String,
    /// Mbit/s as the kernel reports it (1.5, 12, 480, 5000…).
    pub speed_mbps: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct ThermalZone {
    /// `thermal_zone0`, or a hwmon sensor label.
    pub name: String,
    /// The zone's type: `x86_pkg_temp`, `acpitz`, `cpu-thermal`.
    pub kind: String,
    pub temperature_celsius: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct PowerSupply {
    /// `BAT0`, `AC`, `ucsi-source-psy-…`.
    pub name: String,
    /// `Battery`, `Mains`, `USB`.
    pub kind: String,
    /// Mains/USB: whether it is plugged in. Batteries: always false.
    pub online: bool,
    /// Batteries: `Charging`, `Discharging`, `Full`, `Not charging`; empty otherwise.
    pub status: String,
    /// Batteries: 0–100; 0 when unknown.
    pub capacity_percent: u32,
}

/// Pressure stall information from `/proc/pressure` (kernel ≥ 4.20 with `CONFIG_PSI`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Pressure {
    /// False when the kernel has no PSI (or it is disabled with `psi=0`): all values are 0.
    pub available: bool,
    pub cpu: PressureResource,
    pub memory: PressureResource,
    pub io: PressureResource,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct PressureResource {
    /// Share of time (percent) some task stalled, over 10 s, 60 s, 300 s.
    pub some: PressureAverages,
    /// Share of time all non-idle tasks stalled. The kernel reports no `full` line for the
    /// CPU at the system level before 5.13; then it is zero.
    pub full: PressureAverages,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct PressureAverages {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_usec: u64,
}

/// The proxy for `org.quantumos.Space1`.
#[proxy(
    interface = "org.quantumos.Space1",
    default_service = "org.quantumos.Space1",
    default_path = "/org/quantumos/Space1"
)]
pub trait Space1 {
    fn get_inventory(&self) -> zbus::Result<Inventory>;
    fn get_os(&self) -> zbus::Result<OsInfo>;
    fn get_cpu(&self) -> zbus::Result<Cpu>;
    fn get_memory(&self) -> zbus::Result<Memory>;
    fn get_storage(&self) -> zbus::Result<Storage>;
    fn get_network(&self) -> zbus::Result<Vec<NetInterface>>;
    fn get_devices(&self) -> zbus::Result<Devices>;
    fn get_thermal(&self) -> zbus::Result<Vec<ThermalZone>>;
    fn get_power(&self) -> zbus::Result<Vec<PowerSupply>>;
    fn get_pressure(&self) -> zbus::Result<Pressure>;

    #[zbus(property)]
    fn hostname(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn cpu_count(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn memory_total(&self) -> zbus::Result<u64>;

    /// A network link appeared (`ip link add`, a USB NIC plugged in).
    #[zbus(signal)]
    fn link_added(&self, name: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn link_removed(&self, name: &str) -> zbus::Result<()>;
    /// A device appeared: the kernel subsystem (`usb`, `block`, `pci`…), its name and devpath.
    #[zbus(signal)]
    fn device_added(&self, subsystem: &str, name: &str, devpath: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn device_removed(&self, subsystem: &str, name: &str, devpath: &str) -> zbus::Result<()>;
}
