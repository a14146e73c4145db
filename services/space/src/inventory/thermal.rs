//! Temperatures from the kernel's thermal zones (/sys/class/thermal/thermal_zone*), which
//! cover most laptops and ARM boards. Desktops and servers often have no zone but hwmon
//! sensors (k10temp, coretemp, nvme…); their `temp*_input` files are read instead when no
//! thermal zone exists. Both report millidegrees Celsius.

use std::path::Path;

use steppps::api::space::ThermalZone;

use super::{dir_entries, read_attr, read_parsed};

/// Thermal zones under `thermal_dir` (`/sys/class/thermal`), or, when there are none, hwmon
/// temperature sensors under `hwmon_dir` (`/sys/class/hwmon`). A sensor whose temperature
/// cannot be read (zones of a powered-down device return an error) is left out rather than
/// reported as 0 °C.
pub fn thermal(thermal_dir: &Path, hwmon_dir: &Path) -> Vec<ThermalZone> {
    let zones = thermal_zones(thermal_dir);
    if zones.is_empty() {
        hwmon_sensors(hwmon_dir)
    } else {
        zones
    }
}

fn thermal_zones(thermal_dir: &Path) -> Vec<ThermalZone> {
    dir_entries(thermal_dir)
        .into_iter()
        // The same directory holds cooling_device* entries.
        .filter(|(name, _)| name.starts_with("thermal_zone"))
        .filter_map(|(name, dir)| {
            Some(ThermalZone {
                temperature_celsius: millidegrees(read_parsed(&dir, "temp")?),
                kind: read_attr(&dir, "type").unwrap_or_default(),
                name,
            })
        })
        .collect()
}

fn hwmon_sensors(hwmon_dir: &Path) -> Vec<ThermalZone> {
    let mut sensors = Vec::new();
    for (_, chip_dir) in dir_entries(hwmon_dir) {
        let chip = read_attr(&chip_dir, "name").unwrap_or_default();
        for (file, _) in dir_entries(&chip_dir) {
            let Some(channel) = file
                .strip_prefix("temp")
                .and_then(|rest| rest.strip_suffix("_input"))
            else {
                continue;
            };
            let Some(value) = read_parsed(&chip_dir, &file) else {
                continue;
            };
            let label = read_attr(&chip_dir, &format!("temp{channel}_label"))
                .unwrap_or_else(|| format!("{chip} temp{channel}"));
            sensors.push(ThermalZone {
                name: label,
                kind: chip.clone(),
                temperature_celsius: millidegrees(value),
            });
        }
    }
    sensors
}

fn millidegrees(value: i64) -> f64 {
    value as f64 / 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{text}\n")).unwrap();
    }

    #[test]
    fn thermal_zones_from_fixture_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let thermal_dir = root.path().join("class/thermal");
        write(&thermal_dir.join("thermal_zone0/type"), "acpitz");
        write(&thermal_dir.join("thermal_zone0/temp"), "27800");
        write(&thermal_dir.join("thermal_zone1/type"), "x86_pkg_temp");
        write(&thermal_dir.join("thermal_zone1/temp"), "-5500");
        write(&thermal_dir.join("thermal_zone2/type"), "iwlwifi_1");
        // thermal_zone2 has no readable temp: the radio is off.
        write(&thermal_dir.join("cooling_device0/type"), "Processor");
        let hwmon_dir = root.path().join("class/hwmon");
        write(&hwmon_dir.join("hwmon0/name"), "k10temp");
        write(&hwmon_dir.join("hwmon0/temp1_input"), "45000");

        let zones = thermal(&thermal_dir, &hwmon_dir);
        assert_eq!(
            zones,
            [
                ThermalZone {
                    name: "thermal_zone0".into(),
                    kind: "acpitz".into(),
                    temperature_celsius: 27.8,
                },
                ThermalZone {
                    name: "thermal_zone1".into(),
                    kind: "x86_pkg_temp".into(),
                    temperature_celsius: -5.5,
                },
            ]
        );
    }

    #[test]
    fn hwmon_sensors_when_there_is_no_thermal_zone() {
        let root = tempfile::tempdir().unwrap();
        let hwmon_dir = root.path().join("class/hwmon");
        write(&hwmon_dir.join("hwmon0/name"), "k10temp");
        write(&hwmon_dir.join("hwmon0/temp1_input"), "45125");
        write(&hwmon_dir.join("hwmon0/temp1_label"), "Tctl");
        write(&hwmon_dir.join("hwmon0/temp3_input"), "41000");
        write(&hwmon_dir.join("hwmon0/temp3_max"), "70000");
        write(&hwmon_dir.join("hwmon1/name"), "nvme");
        write(&hwmon_dir.join("hwmon1/temp1_input"), "garbage");

        let sensors = thermal(&root.path().join("class/thermal"), &hwmon_dir);
        assert_eq!(
            sensors,
            [
                ThermalZone {
                    name: "Tctl".into(),
                    kind: "k10temp".into(),
                    temperature_celsius: 45.125,
                },
                ThermalZone {
                    name: "k10temp temp3".into(),
                    kind: "k10temp".into(),
                    temperature_celsius: 41.0,
                },
            ]
        );
    }

    #[test]
    fn live_thermal_zones_match_sysfs() {
        let zones = crate::inventory::Collector::new().thermal();
        let sysfs_zones = dir_entries(Path::new("/sys/class/thermal"))
            .into_iter()
            .filter(|(name, dir)| name.starts_with("thermal_zone") && dir.join("temp").exists())
            .count();
        if sysfs_zones > 0 {
            assert!(zones.iter().all(|z| z.name.starts_with("thermal_zone")));
            assert!(zones.len() <= sysfs_zones);
        }
        assert!(
            zones
                .iter()
                .all(|z| (-100.0..200.0).contains(&z.temperature_celsius))
        );
    }
}
