//! The part of systemd-logind (`org.freedesktop.login1`) the pixel dimension uses: finding a
//! session, changing backlight brightness through it (logind writes sysfs on the session's
//! behalf, so the daemon needs no write access to /sys), and the idle hint.

use zbus::{OwnedObjectPath, proxy};

#[proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
pub trait Login1Manager {
    /// `(id, uid, user, seat, object path)` of every session.
    fn list_sessions(&self) -> zbus::Result<Vec<(String, u32, String, String, OwnedObjectPath)>>;
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    /// True when every session is idle (no input) — see `IdleSinceHint`.
    #[zbus(property)]
    fn idle_hint(&self) -> zbus::Result<bool>;
    /// When the system became idle, µs since the epoch (CLOCK_REALTIME).
    #[zbus(property)]
    fn idle_since_hint(&self) -> zbus::Result<u64>;
}

#[proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
pub trait Login1Session {
    /// `subsystem` is `backlight` or `leds`; `name` the device; `brightness` the raw value.
    /// Allowed to the session's owner and to root.
    fn set_brightness(&self, subsystem: &str, name: &str, brightness: u32) -> zbus::Result<()>;
    #[zbus(property)]
    fn active(&self) -> zbus::Result<bool>;
}
