//! PCI and USB devices. PCI functions come from /sys/bus/pci/devices (class, vendor and device
//! ids, bound driver) and are named from the pci.ids database when one is installed, reading
//! only as far into it as the devices present require; class names come from a table of the
//! PCI-SIG base and sub classes kept here, so they are there even without pci.ids. USB devices
//! come from /sys/bus/usb/devices, where only entries with an `idVendor` are devices (the
//! others, such as `1-1:1.0`, are their interfaces).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use steppps::api::space::{PciDevice, UsbDevice};

use super::{dir_entries, link_name, read_attr, read_hex, read_parsed};

/// PCI functions under `devices_dir` (`/sys/bus/pci/devices`), sorted by slot, named from the
/// pci.ids file at `pci_ids` when given.
pub fn pci_devices(devices_dir: &Path, pci_ids: Option<&Path>) -> Vec<PciDevice> {
    let mut devices: Vec<PciDevice> = dir_entries(devices_dir)
        .into_iter()
        .map(|(slot, dir)| {
            let class_code = read_hex(&dir, "class").unwrap_or(0) & 0x00ff_ffff;
            PciDevice {
                class_name: pci_class_name(class_code).to_owned(),
                class_code,
                vendor_id: read_hex(&dir, "vendor")
                    .and_then(|id| id.try_into().ok())
                    .unwrap_or(0),
                device_id: read_hex(&dir, "device")
                    .and_then(|id| id.try_into().ok())
                    .unwrap_or(0),
                vendor_name: String::new(),
                device_name: String::new(),
                driver: link_name(&dir.join("driver")).unwrap_or_default(),
                slot,
            }
        })
        .collect();

    if let Some(path) = pci_ids.filter(|_| !devices.is_empty()) {
        let wanted: BTreeSet<(u16, u16)> =
            devices.iter().map(|d| (d.vendor_id, d.device_id)).collect();
        match File::open(path) {
            Ok(file) => {
                let names = PciNames::lookup(BufReader::new(file), &wanted);
                for device in &mut devices {
                    if let Some(vendor) = names.vendors.get(&device.vendor_id) {
                        vendor.clone_into(&mut device.vendor_name);
                    }
                    if let Some(name) = names.devices.get(&(device.vendor_id, device.device_id)) {
                        name.clone_into(&mut device.device_name);
                    }
                }
            }
            Err(error) => tracing::warn!(path = %path.display(), %error, "cannot read pci.ids"),
        }
    }
    devices
}

/// Names found in pci.ids for a set of (vendor, device) ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciNames {
    pub vendors: BTreeMap<u16, String>,
    pub devices: BTreeMap<(u16, u16), String>,
}

impl PciNames {
    /// Scans pci.ids text for the `wanted` ids and keeps only their names. The file is about
    /// 1.5 MB; the scan stops at the class section (`C …`), which follows all vendors, or as
    /// soon as every wanted vendor's block has been passed. Lines that do not parse are skipped.
    pub fn lookup(reader: impl BufRead, wanted: &BTreeSet<(u16, u16)>) -> PciNames {
        let wanted_vendors: BTreeSet<u16> = wanted.iter().map(|(vendor, _)| *vendor).collect();
        let mut names = PciNames::default();
        // The vendor whose block the scan is in, when it is a wanted one.
        let mut current_vendor: Option<u16> = None;
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with("C ") {
                break;
            }
            if let Some(device_line) = line.strip_prefix('\t') {
                // `\t\t` lines are subsystems, which the inventory does not report.
                if let (Some(vendor), false) = (current_vendor, device_line.starts_with('\t'))
                    && let Some((device, name)) = id_and_name(device_line)
                    && wanted.contains(&(vendor, device))
                {
                    names.devices.insert((vendor, device), name.to_owned());
                }
                continue;
            }
            let Some((vendor, name)) = id_and_name(&line) else {
                current_vendor = None;
                continue;
            };
            if names.vendors.len() == wanted_vendors.len() && !wanted_vendors.contains(&vendor) {
                // Every wanted vendor's block is behind us (the file is sorted by vendor id
                // in practice, but this does not rely on it: it only stops once all are found).
                break;
            }
            current_vendor = wanted_vendors.contains(&vendor).then_some(vendor);
            if current_vendor.is_some() {
                names.vendors.insert(vendor, name.to_owned());
            }
        }
        names
    }
}

/// `8086  Intel Corporation` → (0x8086, "Intel Corporation").
fn id_and_name(line: &str) -> Option<(u16, &str)> {
    let (id, name) = line.split_once(char::is_whitespace)?;
    if id.len() != 4 {
        return None;
    }
    Some((u16::from_str_radix(id, 16).ok()?, name.trim()))
}

/// The human name of a 24-bit PCI class code, from its base class and subclass (the
/// programming interface byte is ignored). Empty for classes the table does not know.
pub fn pci_class_name(class_code: u32) -> &'static str {
    let base = (class_code >> 16) & 0xff;
    let sub = (class_code >> 8) & 0xff;
    let specific = match (base, sub) {
        (0x00, 0x01) => "VGA compatible unclassified device",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x02) => "Floppy disk controller",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "Serial Attached SCSI controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x01, 0x09) => "Universal Flash Storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, 0x07) => "InfiniBand controller",
        (0x02, 0x08) => "Fabric controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x01) => "XGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x04, 0x00) => "Multimedia video controller",
        (0x04, 0x01) => "Multimedia audio controller",
        (0x04, 0x03) => "Audio device",
        (0x05, 0x00) => "RAM memory",
        (0x05, 0x01) => "FLASH memory",
        (0x05, 0x02) => "CXL memory device",
        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x06, 0x09) => "Semi-transparent PCI-to-PCI bridge",
        (0x07, 0x00) => "Serial controller",
        (0x07, 0x01) => "Parallel controller",
        (0x07, 0x03) => "Modem",
        (0x08, 0x00) => "PIC",
        (0x08, 0x01) => "DMA controller",
        (0x08, 0x02) => "Timer",
        (0x08, 0x03) => "RTC",
        (0x08, 0x05) => "SD Host controller",
        (0x08, 0x06) => "IOMMU",
        (0x0c, 0x00) => "FireWire (IEEE 1394)",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x07) => "IPMI interface",
        (0x0c, 0x09) => "CANBUS",
        (0x0d, 0x11) => "Bluetooth",
        (0x12, 0x00) => "Processing accelerators",
        _ => "",
    };
    if !specific.is_empty() {
        return specific;
    }
    match base {
        0x00 => "Unclassified device",
        0x01 => "Mass storage controller",
        0x02 => "Network controller",
        0x03 => "Display controller",
        0x04 => "Multimedia controller",
        0x05 => "Memory controller",
        0x06 => "Bridge",
        0x07 => "Communication controller",
        0x08 => "Generic system peripheral",
        0x09 => "Input device controller",
        0x0a => "Docking station",
        0x0b => "Processor",
        0x0c => "Serial bus controller",
        0x0d => "Wireless controller",
        0x0e => "Intelligent controller",
        0x0f => "Satellite communications controller",
        0x10 => "Encryption controller",
        0x11 => "Signal processing controller",
        0x12 => "Processing accelerators",
        0x13 => "Non-Essential Instrumentation",
        0x40 => "Coprocessor",
        0xff => "Unassigned class",
        _ => "",
    }
}

/// USB devices under `devices_dir` (`/sys/bus/usb/devices`), sorted by sysfs name.
pub fn usb_devices(devices_dir: &Path) -> Vec<UsbDevice> {
    dir_entries(devices_dir)
        .into_iter()
        .filter_map(|(sysname, dir)| {
            let vendor_id = read_hex(&dir, "idVendor")?;
            Some(UsbDevice {
                bus: read_parsed(&dir, "busnum").unwrap_or(0),
                device_number: read_parsed(&dir, "devnum").unwrap_or(0),
                vendor_id: vendor_id.try_into().unwrap_or(0),
                product_id: read_hex(&dir, "idProduct")
                    .and_then(|id| id.try_into().ok())
                    .unwrap_or(0),
                manufacturer: read_attr(&dir, "manufacturer").unwrap_or_default(),
                product: read_attr(&dir, "product").unwrap_or_default(),
                speed_mbps: read_parsed(&dir, "speed").unwrap_or(0.0),
                sysname,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// The shape of pci.ids: header comments, vendors, devices, subsystems, then classes.
    const PCI_IDS: &str = "\
#\tList of PCI ID's
#
# Version: 2025.06.01
#
0014  Loongson Technology LLC
\t7a00  Hyper Transport Bridge Controller
1af4  Red Hat, Inc.
\t1000  Virtio network device
\t\t1af4 0001  Virtio network device
\t1041  Virtio 1.0 network device
\t1042  Virtio 1.0 block device
\t1050  Virtio 1.0 GPU
8086  Intel Corporation
\t1237  440FX - 82441FX PMC [Natoma]
\t7000  82371SB PIIX3 ISA [Natoma/Triton II]
\t7113  82371AB/EB/MB PIIX4 ACPI
not an entry
C 00  Unclassified device [0000]
\t00  Non-VGA unclassified device
8086  must not be read: classes come after vendors
";

    #[test]
    fn pci_ids_lookup_keeps_only_wanted_names() {
        let wanted = BTreeSet::from([(0x8086, 0x1237), (0x1af4, 0x1041), (0x1af4, 0x9999)]);
        let names = PciNames::lookup(PCI_IDS.as_bytes(), &wanted);
        assert_eq!(names.vendors.len(), 2);
        assert_eq!(names.vendors[&0x8086], "Intel Corporation");
        assert_eq!(names.vendors[&0x1af4], "Red Hat, Inc.");
        assert_eq!(
            names.devices[&(0x8086, 0x1237)],
            "440FX - 82441FX PMC [Natoma]"
        );
        assert_eq!(
            names.devices[&(0x1af4, 0x1041)],
            "Virtio 1.0 network device"
        );
        assert!(!names.devices.contains_key(&(0x1af4, 0x9999)));
        assert_eq!(names.devices.len(), 2);
        assert!(
            PciNames::lookup(&b"\xff\xfe garbage\n\t\tzz"[..], &wanted)
                .vendors
                .is_empty()
        );
    }

    #[test]
    fn class_names_from_base_and_subclass() {
        assert_eq!(pci_class_name(0x03_0000), "VGA compatible controller");
        assert_eq!(pci_class_name(0x01_0802), "Non-Volatile memory controller");
        assert_eq!(pci_class_name(0x0c_0330), "USB controller");
        assert_eq!(pci_class_name(0x02_8000), "Network controller");
        assert_eq!(pci_class_name(0xff_ff00), "Unassigned class");
        assert_eq!(pci_class_name(0xfe_0000), "");
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{text}\n")).unwrap();
    }

    #[test]
    fn pci_devices_from_fixture_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let bus = root.path().join("bus/pci/devices");
        let drivers = root.path().join("bus/pci/drivers");
        for (slot, class, vendor, device, driver) in [
            ("0000:00:00.0", "0x060000", "0x8086", "0x1237", None),
            (
                "0000:00:03.0",
                "0x020000",
                "0x1af4",
                "0x1041",
                Some("virtio-pci"),
            ),
            ("0000:00:05.0", "0xff0000", "0x1b36", "0x0005", None),
        ] {
            let dir = bus.join(slot);
            write(&dir.join("class"), class);
            write(&dir.join("vendor"), vendor);
            write(&dir.join("device"), device);
            if let Some(driver) = driver {
                fs::create_dir_all(drivers.join(driver)).unwrap();
                symlink(drivers.join(driver), dir.join("driver")).unwrap();
            }
        }
        let ids = root.path().join("pci.ids");
        fs::write(&ids, PCI_IDS).unwrap();

        let devices = pci_devices(&bus, Some(&ids));
        assert_eq!(devices.len(), 3);
        assert_eq!(devices[0].slot, "0000:00:00.0");
        assert_eq!(devices[0].class_code, 0x06_0000);
        assert_eq!(devices[0].class_name, "Host bridge");
        assert_eq!(
            (devices[0].vendor_id, devices[0].device_id),
            (0x8086, 0x1237)
        );
        assert_eq!(devices[0].vendor_name, "Intel Corporation");
        assert_eq!(devices[0].device_name, "440FX - 82441FX PMC [Natoma]");
        assert_eq!(devices[0].driver, "");
        assert_eq!(devices[1].driver, "virtio-pci");
        assert_eq!(devices[1].device_name, "Virtio 1.0 network device");
        assert_eq!(devices[2].vendor_name, "", "not in the database");

        let unnamed = pci_devices(&bus, None);
        assert_eq!(unnamed[1].vendor_name, "");
        assert_eq!(unnamed[1].class_name, "Ethernet controller");
        let missing_db = pci_devices(&bus, Some(&root.path().join("nope")));
        assert_eq!(missing_db[0].vendor_name, "");
    }

    #[test]
    fn usb_devices_skip_interfaces() {
        let root = tempfile::tempdir().unwrap();
        let bus = root.path().join("bus/usb/devices");
        let hub = bus.join("usb1");
        for (name, value) in [
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("busnum", "1"),
            ("devnum", "1"),
            ("speed", "480"),
            ("manufacturer", "Linux 6.12.48+deb13-amd64 xhci-hcd"),
            ("product", "xHCI Host Controller"),
        ] {
            write(&hub.join(name), value);
        }
        let mouse = bus.join("1-1.2");
        for (name, value) in [
            ("idVendor", "046d"),
            ("idProduct", "c077"),
            ("busnum", "1"),
            ("devnum", "4"),
            ("speed", "1.5"),
            ("product", "USB Optical Mouse"),
        ] {
            write(&mouse.join(name), value);
        }
        write(&bus.join("1-1.2:1.0/bInterfaceClass"), "03");

        let devices = usb_devices(&bus);
        assert_eq!(devices.len(), 2);
        let mouse = &devices[0];
        assert_eq!(mouse.sysname, "1-1.2");
        assert_eq!((mouse.vendor_id, mouse.product_id), (0x046d, 0xc077));
        assert_eq!((mouse.bus, mouse.device_number), (1, 4));
        assert_eq!(mouse.speed_mbps, 1.5);
        assert_eq!(mouse.manufacturer, "");
        assert_eq!(mouse.product, "USB Optical Mouse");
        assert_eq!(devices[1].sysname, "usb1");
        assert_eq!(devices[1].speed_mbps, 480.0);
        assert_eq!(
            devices[1].manufacturer,
            "Linux 6.12.48+deb13-amd64 xhci-hcd"
        );
    }

    #[test]
    fn live_pci_devices_match_sysfs() {
        let devices = crate::inventory::Collector::new().devices();
        let slots = dir_entries(Path::new("/sys/bus/pci/devices"));
        assert_eq!(devices.pci.len(), slots.len());
        for (device, (slot, _)) in devices.pci.iter().zip(&slots) {
            assert_eq!(&device.slot, slot);
            assert_ne!(device.vendor_id, 0, "{slot}");
        }
    }
}
