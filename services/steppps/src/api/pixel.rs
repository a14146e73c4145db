//! `org.quantumos.Pixel1`: displays (DRM connectors, modes, EDID, a recommended scale),
//! backlight brightness, the ambient light sensor, and the display power policy.
//!
//! A machine without displays or backlight (a VM, a server) is a normal state: the lists are
//! empty and `Health` says so.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// One DRM connector (`/sys/class/drm/card0-HDMI-A-1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Output {
    /// Connector name without the card: `eDP-1`, `HDMI-A-1`, `DP-2`.
    pub name: String,
    /// `card0`.
    pub card: String,
    /// `connected`, `disconnected` or `unknown`, as the kernel says.
    pub status: String,
    pub enabled: bool,
    /// Built into the machine (eDP, LVDS, DSI): seen closer, scaled differently.
    pub internal: bool,
    /// Modes the connector offers, `WIDTHxHEIGHT`, preferred first.
    pub modes: Vec<String>,
    /// From the EDID; empty/zero when there is none (disconnected, or a VM's virtual output).
    /// Manufacturer PNP id: `DEL`, `BOE`, `SAM`.
    pub manufacturer: String,
    pub product_code: u16,
    /// The numeric serial; 0 when the display gives none.
    pub serial: u32,
    /// The serial number descriptor's text; empty when absent.
    pub serial_text: String,
    /// The display name descriptor: `DELL U2415`.
    pub model: String,
    /// Year of manufacture (or model year); 0 when unknown.
    pub year: u32,
    /// Physical size in millimetres; 0 when unknown (projectors, some TVs).
    pub width_mm: u32,
    pub height_mm: u32,
    /// The preferred mode from the EDID's first detailed timing.
    pub width_px: u32,
    pub height_px: u32,
    pub refresh_hz: f64,
    /// Pixels per inch across; 0 when the size is unknown.
    pub dpi: f64,
    /// Recommended scale factor (1.0, 1.25, … 3.0).
    pub scale: f64,
    /// Why the EDID could not be read (bad header, checksum); empty when it was, or there is none.
    pub edid_error: String,
}

/// A backlight device (`/sys/class/backlight/intel_backlight`) and its brightness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Backlight {
    /// `intel_backlight`, `amdgpu_bl0`, `acpi_video0`.
    pub name: String,
    /// `raw`, `platform` or `firmware` (the kernel's preference order is firmware, platform, raw).
    pub kind: String,
    /// The kernel's value and its maximum.
    pub brightness: u32,
    pub max_brightness: u32,
    /// brightness / max_brightness, 0–100, rounded.
    pub percent: u32,
}

/// An ambient light sensor (industrial I/O).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Ambient {
    /// False when the machine has none: the other fields are then empty.
    pub present: bool,
    /// `iio:device0`.
    pub device: String,
    pub lux: f64,
    /// The brightness the adaptive curve gives for this light (policy min..max).
    pub recommended_percent: u32,
}

/// Display power and brightness policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Policy {
    /// Follow the ambient light sensor (when there is one).
    pub adaptive: bool,
    /// The adaptive curve's range.
    pub min_percent: u32,
    pub max_percent: u32,
    /// Dim after this many idle seconds (0: never), to `dim_percent`.
    pub idle_dim_seconds: u32,
    pub dim_percent: u32,
    /// Turn the display off after this many idle seconds (0: never).
    pub blank_seconds: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            adaptive: false,
            min_percent: 10,
            max_percent: 100,
            idle_dim_seconds: 120,
            dim_percent: 20,
            blank_seconds: 600,
        }
    }
}

/// The proxy for `org.quantumos.Pixel1`.
#[proxy(
    interface = "org.quantumos.Pixel1",
    default_service = "org.quantumos.Pixel1",
    default_path = "/org/quantumos/Pixel1"
)]
pub trait Pixel1 {
    fn list_outputs(&self) -> zbus::Result<Vec<Output>>;
    fn list_backlights(&self) -> zbus::Result<Vec<Backlight>>;
    /// `device` empty: the preferred backlight (firmware, then platform, then raw).
    fn get_brightness(&self, device: &str) -> zbus::Result<Backlight>;
    /// Sets brightness in percent (0–100), through logind when a session exists, else sysfs.
    /// Needs root or the polkit action `org.quantumos.pixel.set-brightness`.
    fn set_brightness(&self, device: &str, percent: u32) -> zbus::Result<Backlight>;
    fn get_ambient(&self) -> zbus::Result<Ambient>;
    fn get_policy(&self) -> zbus::Result<Policy>;
    /// Needs root or the polkit action `org.quantumos.pixel.set-policy`.
    fn set_policy(&self, policy: &Policy) -> zbus::Result<Policy>;

    /// A connector's status changed (a display plugged in or out).
    #[zbus(signal)]
    fn output_changed(&self, name: &str, status: &str) -> zbus::Result<()>;
    /// A backlight's brightness changed (through this daemon, a key, or another tool).
    #[zbus(signal)]
    fn brightness_changed(&self, device: &str, percent: u32) -> zbus::Result<()>;
}
