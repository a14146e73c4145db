//! Displays, backlights and light sensors as the kernel shows them under `/sys`, read from a
//! root directory (`/` on a machine, a fixture tree in tests):
//!
//! - `sys/class/drm/card*-*/{status,enabled,modes,edid}`: DRM connectors;
//! - `sys/class/backlight/*/{brightness,max_brightness,type}`;
//! - `sys/bus/iio/devices/iio:device*/in_illuminance_{input,raw,scale,offset}`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use steppps::api::pixel::{Backlight, Output};

use crate::edid;

/// A view of `/sys` under `root`.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u32(path: &Path) -> Option<u32> {
    read_trimmed(path)?.parse().ok()
}

fn read_f64(path: &Path) -> Option<f64> {
    read_trimmed(path)?.parse().ok()
}

/// Entries of a directory, sorted by name; none when it does not exist.
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Built-in panels: embedded DisplayPort, LVDS, MIPI DSI.
fn is_internal(connector: &str) -> bool {
    ["eDP", "LVDS", "DSI"]
        .iter()
        .any(|p| connector.starts_with(p))
}

/// The kernel's preference among backlight kinds: firmware, then platform, then raw.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "firmware" => 0,
        "platform" => 1,
        "raw" => 2,
        _ => 3,
    }
}

/// `raw` from `percent` of `max`: rounded, and never 0 for a non-zero percent (0 turns some
/// panels off).
pub fn raw_from_percent(percent: u32, max: u32) -> u32 {
    let raw = (u64::from(percent) * u64::from(max) + 50) / 100;
    let raw = u32::try_from(raw).unwrap_or(max);
    if percent > 0 && raw == 0 {
        1
    } else {
        raw.min(max)
    }
}

pub fn percent_from_raw(raw: u32, max: u32) -> u32 {
    if max == 0 {
        return 0;
    }
    u32::try_from((u64::from(raw.min(max)) * 100 + u64::from(max) / 2) / u64::from(max))
        .unwrap_or(100)
}

/// A backlight device name must be one directory entry, nothing that walks the tree.
pub fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn class(&self, class: &str) -> PathBuf {
        self.root.join("sys/class").join(class)
    }

    /// Every DRM connector, with its EDID read.
    pub fn outputs(&self) -> Vec<Output> {
        entries(&self.class("drm"))
            .into_iter()
            .filter_map(|(entry, path)| {
                // `card0-HDMI-A-1`; `card0` itself and `renderD128` are not connectors.
                let (card, name) = entry.split_once('-')?;
                if !card.starts_with("card") {
                    return None;
                }
                Some(self.output(card, name, &path))
            })
            .collect()
    }

    fn output(&self, card: &str, name: &str, dir: &Path) -> Output {
        let internal = is_internal(name);
        let mut out = Output {
            name: name.to_string(),
            card: card.to_string(),
            status: read_trimmed(&dir.join("status")).unwrap_or_else(|| "unknown".into()),
            enabled: read_trimmed(&dir.join("enabled")).as_deref() == Some("enabled"),
            internal,
            modes: read_trimmed(&dir.join("modes"))
                .map(|m| m.lines().map(str::to_string).collect())
                .unwrap_or_default(),
            scale: 1.0,
            ..Output::default()
        };
        let bytes = match fs::read(dir.join("edid")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                out.edid_error = format!("cannot read the EDID: {e}");
                Vec::new()
            }
        };
        match edid::parse(&bytes) {
            Ok(Some(e)) => {
                if let Some(t) = e.preferred {
                    out.width_px = t.width;
                    out.height_px = t.height;
                    out.refresh_hz = (t.refresh_hz * 100.0).round() / 100.0;
                } else if let Some((w, h)) = out.modes.first().and_then(|m| m.split_once('x')) {
                    out.width_px = w.parse().unwrap_or(0);
                    out.height_px = h
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .unwrap_or(0);
                }
                out.manufacturer = e.manufacturer;
                out.product_code = e.product_code;
                out.serial = e.serial;
                out.serial_text = e.serial_text;
                out.model = e.model;
                out.year = e.year;
                out.width_mm = e.width_mm;
                out.height_mm = e.height_mm;
                out.dpi = (edid::dpi(out.width_px, out.width_mm) * 10.0).round() / 10.0;
                out.scale = edid::recommended_scale(out.dpi, internal);
            }
            Ok(None) => {}
            Err(e) => out.edid_error = e.to_string(),
        }
        out
    }

    /// Every backlight device, the preferred one first.
    pub fn backlights(&self) -> Vec<Backlight> {
        let mut all: Vec<Backlight> = entries(&self.class("backlight"))
            .into_iter()
            .filter_map(|(name, path)| self.backlight_at(&name, &path).ok())
            .collect();
        all.sort_by(|a, b| {
            kind_rank(&a.kind)
                .cmp(&kind_rank(&b.kind))
                .then(a.name.cmp(&b.name))
        });
        all
    }

    fn backlight_at(&self, name: &str, dir: &Path) -> io::Result<Backlight> {
        let max = read_u32(&dir.join("max_brightness"))
            .ok_or_else(|| io::Error::other(format!("{name}: no max_brightness")))?;
        let brightness = read_u32(&dir.join("brightness"))
            .ok_or_else(|| io::Error::other(format!("{name}: no brightness")))?;
        Ok(Backlight {
            name: name.to_string(),
            kind: read_trimmed(&dir.join("type")).unwrap_or_else(|| "raw".into()),
            brightness,
            max_brightness: max,
            percent: percent_from_raw(brightness, max),
        })
    }

    /// One backlight by name; `None` when there is no such device.
    pub fn backlight(&self, name: &str) -> Option<Backlight> {
        if !valid_device_name(name) {
            return None;
        }
        self.backlight_at(name, &self.class("backlight").join(name))
            .ok()
    }

    /// Writes a raw brightness value (needs write access to the attribute).
    pub fn write_brightness(&self, name: &str, raw: u32) -> io::Result<()> {
        if !valid_device_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad device name",
            ));
        }
        fs::write(
            self.class("backlight").join(name).join("brightness"),
            format!("{raw}\n"),
        )
    }

    /// The first ambient light sensor and its reading in lux.
    pub fn ambient(&self) -> Option<(String, f64)> {
        let dir = self.root.join("sys/bus/iio/devices");
        entries(&dir).into_iter().find_map(|(name, path)| {
            let lux = read_f64(&path.join("in_illuminance_input")).or_else(|| {
                let raw = read_f64(&path.join("in_illuminance_raw"))?;
                let scale = read_f64(&path.join("in_illuminance_scale")).unwrap_or(1.0);
                let offset = read_f64(&path.join("in_illuminance_offset")).unwrap_or(0.0);
                Some((raw + offset) * scale)
            })?;
            Some((name, lux.max(0.0)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_raw_round_trip() {
        assert_eq!(raw_from_percent(50, 24000), 12000);
        assert_eq!(raw_from_percent(1, 15), 1, "never 0 for a non-zero percent");
        assert_eq!(raw_from_percent(0, 15), 0);
        assert_eq!(raw_from_percent(100, 255), 255);
        assert_eq!(percent_from_raw(12000, 24000), 50);
        assert_eq!(percent_from_raw(7, 0), 0);
        assert_eq!(percent_from_raw(999, 255), 100);
    }

    #[test]
    fn device_names_cannot_walk_the_tree() {
        assert!(valid_device_name("intel_backlight"));
        assert!(valid_device_name("acpi_video0"));
        for bad in ["", "..", "../../etc", "a/b", "."] {
            assert!(!valid_device_name(bad), "{bad}");
        }
    }
}
