//! Power supplies from /sys/class/power_supply: batteries (status, charge percentage) and
//! mains or USB sources (whether plugged in). Desktops and virtual machines usually have none.

use std::path::Path;

use steppps::api::space::PowerSupply;

use super::{dir_entries, read_attr, read_flag, read_parsed};

/// Supplies under `class_dir` (`/sys/class/power_supply`), sorted by name.
pub fn power_supplies(class_dir: &Path) -> Vec<PowerSupply> {
    dir_entries(class_dir)
        .into_iter()
        .map(|(name, dir)| {
            let kind = read_attr(&dir, "type").unwrap_or_default();
            let is_battery = kind == "Battery";
            PowerSupply {
                online: !is_battery && read_flag(&dir, "online"),
                status: if is_battery {
                    read_attr(&dir, "status").unwrap_or_default()
                } else {
                    String::new()
                },
                capacity_percent: if is_battery {
                    read_parsed::<u32>(&dir, "capacity").map_or(0, |percent| percent.min(100))
                } else {
                    0
                },
                kind,
                name,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;

    fn supply(class_dir: &Path, name: &str, attrs: &[(&str, &str)]) {
        let dir = class_dir.join(name);
        fs::create_dir_all(&dir).unwrap();
        for (attr, value) in attrs {
            fs::write(dir.join(attr), format!("{value}\n")).unwrap();
        }
    }

    #[test]
    fn batteries_and_mains_from_fixture_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let class_dir = root.path().join("class/power_supply");
        supply(&class_dir, "AC", &[("type", "Mains"), ("online", "1")]);
        supply(
            &class_dir,
            "BAT0",
            &[
                ("type", "Battery"),
                ("status", "Discharging"),
                ("capacity", "87"),
                ("online", "1"),
                ("manufacturer", "SMP"),
            ],
        );
        supply(
            &class_dir,
            "ucsi-source-psy-USBC000:001",
            &[("type", "USB"), ("online", "0")],
        );
        supply(
            &class_dir,
            "hidpp_battery_0",
            &[("type", "Battery"), ("capacity", "x")],
        );

        let supplies = power_supplies(&class_dir);
        assert_eq!(
            supplies,
            [
                PowerSupply {
                    name: "AC".into(),
                    kind: "Mains".into(),
                    online: true,
                    status: String::new(),
                    capacity_percent: 0,
                },
                PowerSupply {
                    name: "BAT0".into(),
                    kind: "Battery".into(),
                    online: false,
                    status: "Discharging".into(),
                    capacity_percent: 87,
                },
                PowerSupply {
                    name: "hidpp_battery_0".into(),
                    kind: "Battery".into(),
                    online: false,
                    status: String::new(),
                    capacity_percent: 0,
                },
                PowerSupply {
                    name: "ucsi-source-psy-USBC000:001".into(),
                    kind: "USB".into(),
                    online: false,
                    status: String::new(),
                    capacity_percent: 0,
                },
            ]
        );
        assert!(power_supplies(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn live_power_supplies_match_sysfs() {
        let supplies = crate::inventory::Collector::new().power();
        let names: Vec<String> = dir_entries(Path::new("/sys/class/power_supply"))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let reported: Vec<&String> = supplies.iter().map(|s| &s.name).collect();
        assert_eq!(reported, names.iter().collect::<Vec<_>>());
    }
}
