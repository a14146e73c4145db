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
    /// `mode` as for `restart_unit`; returns the job's object path.
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    /// Asks systemd to send unit and job signals (`PropertiesChanged` on unit objects,
    /// `JobRemoved`) to this connection.
    fn subscribe(&self) -> zbus::Result<()>;
}

/// The object path prefix of units: `/org/freedesktop/systemd1/unit/<escaped name>`.
pub const UNIT_PATH_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// The unit name in a unit object path (`.../unit/foo_2dbar_2eservice` → `foo-bar.service`),
/// undoing systemd's bus path escaping (`_xx` is the byte 0xxx).
pub fn unit_name_from_path(path: &str) -> Option<String> {
    let escaped = path.strip_prefix(UNIT_PATH_PREFIX)?;
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether systemd is this system's init, the same test as `sd_booted()`.
pub fn systemd_booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_unescaped() {
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/steppps_2dspace_2eservice")
                .as_deref(),
            Some("steppps-space.service")
        );
        assert_eq!(
            unit_name_from_path("/org/freedesktop/systemd1/unit/bad_2"),
            None
        );
        assert_eq!(unit_name_from_path("/elsewhere"), None);
    }
}
