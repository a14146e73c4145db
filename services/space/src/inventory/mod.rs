//! The machine's inventory, one topic per module. Each module parses what the kernel exposes
//! (text from /proc, attribute files and directories under /sys, /etc/os-release) with pure
//! functions that tests run on real-shaped text and fixture trees; [`Collector`] wires them to
//! the live machine and to `sysinfo` for the facts sysinfo already knows (CPU brand, memory,
//! load average, boot time). Nothing here panics on a missing or
//! malformed file: every value falls back to the "unknown" value its wire type documents.

pub mod cpu;
pub mod devices;
pub mod memory;
pub mod network;
pub mod os;
pub mod power;
pub mod pressure;
pub mod storage;
pub mod thermal;

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use steppps::api::space::{
    Cpu, Devices, Inventory, Memory, NetInterface, OsInfo, PowerSupply, Pressure, Storage,
    ThermalZone,
};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};

/// Gathers the inventory from one root of sysfs, procfs and /etc. Holds the `sysinfo` state
/// between calls so repeated queries refresh instead of rebuilding it.
pub struct Collector {
    sys_root: PathBuf,
    proc_root: PathBuf,
    etc_root: PathBuf,
    /// The directory `/usr` hangs off: the parent of `etc_root`. The os-release fallback and
    /// the pci.ids database live under it.
    fs_root: PathBuf,
    /// `None` when sysinfo cannot initialise (it never fails on Linux today, but its API says
    /// it may); the values it would give are then "unknown".
    system: Option<System>,
}

impl std::fmt::Debug for Collector {
    // sysinfo's own Debug output lists every process and disk; the roots are what matter here.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("sys_root", &self.sys_root)
            .field("proc_root", &self.proc_root)
            .field("etc_root", &self.etc_root)
            .finish_non_exhaustive()
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    /// A collector for the running machine: `/sys`, `/proc` and `/etc`.
    pub fn new() -> Collector {
        Collector::with_roots("/sys".into(), "/proc".into(), "/etc".into())
    }

    /// A collector reading sysfs, procfs and /etc from other directories (fixture trees in
    /// tests). Facts that come from `sysinfo` or `uname` still describe the running machine.
    pub fn with_roots(sys: PathBuf, proc_: PathBuf, etc: PathBuf) -> Collector {
        let fs_root = etc
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        Collector {
            sys_root: sys,
            proc_root: proc_,
            etc_root: etc,
            fs_root,
            system: System::new().ok(),
        }
    }

    pub fn os(&mut self) -> OsInfo {
        let release_files = [
            self.etc_root.join("os-release"),
            self.fs_root.join("usr/lib/os-release"),
        ];
        // os-release(5): /etc/os-release takes precedence; /usr/lib/os-release is the fallback.
        let release_text = release_files
            .iter()
            .find_map(|path| fs::read_to_string(path).ok())
            .unwrap_or_default();
        let kernel = os::Uname::current();
        os::os_info(
            &os::OsRelease::parse(&release_text),
            &kernel,
            os::hostname().unwrap_or_else(|| kernel.nodename.clone()),
            System::boot_time().unwrap_or(0),
            System::uptime().unwrap_or(0),
        )
    }

    pub fn cpu(&mut self) -> Cpu {
        let cpuinfo = read_text(&self.proc_root.join("cpuinfo")).unwrap_or_default();
        let cpu_dir = self.sys_root.join("devices/system/cpu");
        let online = read_text(&cpu_dir.join("online"))
            .and_then(|list| cpu::parse_cpu_list(&list))
            .unwrap_or_default();

        let mut from_sysinfo = cpu::SysinfoCpu::default();
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_frequency());
            if let Some(first) = system.cpus().first() {
                from_sysinfo = cpu::SysinfoCpu {
                    brand: first.brand().trim().to_owned(),
                    vendor: first.vendor_id().trim().to_owned(),
                    frequency_mhz: first.frequency(),
                    count: system.cpus().len(),
                };
            }
        }
        let load = System::load_average().ok();
        cpu::cpu(
            &cpuinfo,
            &online,
            cpu::physical_cores(&cpu_dir, &online),
            &from_sysinfo,
            load.map_or((0.0, 0.0, 0.0), |l| (l.one, l.five, l.fifteen)),
        )
    }

    pub fn memory(&mut self) -> Memory {
        let Some(system) = self.system.as_mut() else {
            return Memory::default();
        };
        system.refresh_memory_specifics(MemoryRefreshKind::everything());
        memory::memory(&memory::MemoryCounters {
            total: system.total_memory(),
            available: system.available_memory(),
            free: system.free_memory(),
            swap_total: system.total_swap(),
            swap_free: system.free_swap(),
        })
    }

    pub fn storage(&mut self) -> Storage {
        let mountinfo = read_text(&self.proc_root.join("self/mountinfo")).unwrap_or_default();
        Storage {
            filesystems: storage::filesystems(
                &storage::parse_mountinfo(&mountinfo),
                storage::measure,
            ),
            block_devices: storage::block_devices(&self.sys_root.join("class/block")),
        }
    }

    pub fn network(&mut self) -> Vec<NetInterface> {
        let addresses = network::interface_addresses();
        network::interfaces(&self.sys_root.join("class/net"), &addresses)
    }

    pub fn devices(&mut self) -> Devices {
        let pci_ids = [
            self.fs_root.join("usr/share/misc/pci.ids"),
            self.fs_root.join("usr/share/hwdata/pci.ids"),
        ];
        let database = pci_ids
            .iter()
            .find(|path| path.is_file())
            .map(PathBuf::as_path);
        Devices {
            pci: devices::pci_devices(&self.sys_root.join("bus/pci/devices"), database),
            usb: devices::usb_devices(&self.sys_root.join("bus/usb/devices")),
        }
    }

    pub fn thermal(&mut self) -> Vec<ThermalZone> {
        thermal::thermal(
            &self.sys_root.join("class/thermal"),
            &self.sys_root.join("class/hwmon"),
        )
    }

    pub fn power(&mut self) -> Vec<PowerSupply> {
        power::power_supplies(&self.sys_root.join("class/power_supply"))
    }

    pub fn pressure(&mut self) -> Pressure {
        pressure::pressure(&self.proc_root.join("pressure"))
    }

    pub fn inventory(&mut self) -> Inventory {
        Inventory {
            os: self.os(),
            cpu: self.cpu(),
            memory: self.memory(),
            storage: self.storage(),
            network: self.network(),
            devices: self.devices(),
            thermal: self.thermal(),
            power: self.power(),
            pressure: self.pressure(),
        }
    }
}

/// A whole text file, `None` when it is missing or unreadable. sysfs attributes can fail to
/// read even when they exist (`speed` of a down link gives EINVAL), so errors are not worth
/// distinguishing here.
pub(crate) fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// A sysfs attribute without its trailing newline; `None` when missing, unreadable or empty.
pub(crate) fn read_attr(dir: &Path, name: &str) -> Option<String> {
    let text = read_text(&dir.join(name))?;
    let value = text.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A sysfs attribute parsed as a decimal value.
pub(crate) fn read_parsed<T: FromStr>(dir: &Path, name: &str) -> Option<T> {
    read_attr(dir, name)?.parse().ok()
}

/// A sysfs attribute holding a hexadecimal number, with or without `0x` (`0x8086`, `046d`).
pub(crate) fn read_hex(dir: &Path, name: &str) -> Option<u32> {
    parse_hex(&read_attr(dir, name)?)
}

pub(crate) fn parse_hex(text: &str) -> Option<u32> {
    let digits = text
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X");
    u32::from_str_radix(digits, 16).ok()
}

/// `1` in a boolean sysfs attribute (`removable`, `ro`, `online`).
pub(crate) fn read_flag(dir: &Path, name: &str) -> bool {
    read_attr(dir, name).as_deref() == Some("1")
}

/// The entries of a sysfs class or bus directory, sorted by name so the inventory is stable
/// from one call to the next. A missing directory (no such bus on this machine) is empty.
pub(crate) fn dir_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(read_dir) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(String, PathBuf)> = read_dir
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .collect();
    entries.sort();
    entries
}

/// The name of the target of a symlink such as a device's `driver`.
pub(crate) fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_attributes_parse_with_and_without_prefix() {
        assert_eq!(parse_hex("0x8086\n"), Some(0x8086));
        assert_eq!(parse_hex("046d"), Some(0x046d));
        assert_eq!(parse_hex("0x030000"), Some(0x03_0000));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn attributes_read_trimmed_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mtu"), "1500\n").unwrap();
        fs::write(dir.path().join("empty"), "\n").unwrap();
        assert_eq!(read_attr(dir.path(), "mtu").as_deref(), Some("1500"));
        assert_eq!(read_parsed::<u32>(dir.path(), "mtu"), Some(1500));
        assert_eq!(read_attr(dir.path(), "empty"), None);
        assert_eq!(read_attr(dir.path(), "missing"), None);
        assert!(dir_entries(&dir.path().join("missing")).is_empty());
    }

    /// The whole inventory of the live machine holds together: every topic answers and
    /// `inventory()` agrees with the per-topic calls on the values that do not move.
    #[test]
    fn live_inventory_is_consistent_with_topics() {
        let mut collector = Collector::new();
        let inventory = collector.inventory();
        assert_eq!(inventory.cpu.logical_cpus, collector.cpu().logical_cpus);
        assert_eq!(inventory.memory.total_bytes, collector.memory().total_bytes);
        assert_eq!(inventory.os.kernel_release, collector.os().kernel_release);
        assert!(!inventory.os.kernel_release.is_empty());
        assert!(inventory.network.iter().any(|link| link.name == "lo"));
    }
}
