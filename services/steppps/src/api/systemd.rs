//! The part of systemd's `org.freedesktop.systemd1.Manager` the manager uses to restart units.

use zbus::{OwnedObjectPath, proxy};

#[proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Systemd1Manager {
    /// `mode` is `replace`, `fail`, …; returns the job's object path.
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    /// Starts a transient unit (a `.scope` holding existing processes, for example).
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, zbus::Variant<'_>)],
        aux: &[(&str, Vec<(&str, zbus::Variant<'_>)>)],
    ) -> zbus::Result<OwnedObjectPath>;
    /// Changes unit properties such as `CPUWeight`; `runtime` means until the next reboot.
    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, zbus::Variant<'_>)],
    ) -> zbus::Result<()>;
}

/// Whether systemd is this system's init, the same test as `sd_booted()`.
pub fn systemd_booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}
