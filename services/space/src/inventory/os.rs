//! The operating system: distribution identity from os-release(5) (`/etc/os-release`, else
//! `/usr/lib/os-release`), kernel release and machine from uname(2), hostname, boot time and
//! uptime. os-release is shell-like `KEY=value` text, so it gets its own small parser that
//! honours quoting instead of a naive split.

use std::collections::BTreeMap;

use nix::sys::utsname::uname;
use steppps::api::space::OsInfo;
use sysinfo::System;

/// The keys of an os-release file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Parses os-release text. Lines that are not `KEY=value` (comments, blank lines, garbage)
    /// are ignored, as os-release(5) asks of readers.
    pub fn parse(text: &str) -> OsRelease {
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (key, raw_value) = line.split_once('=')?;
                let key = key.trim();
                let is_variable_name =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                is_variable_name.then(|| (key.to_owned(), unquote(raw_value.trim())))
            })
            .collect();
        OsRelease { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// Removes shell quoting from a value: `"Debian GNU/Linux 13 (trixie)"`, `'x'`, or bare.
/// Inside double quotes a backslash escapes `"`, `\`, `$` and `` ` ``, as in the shell.
fn unquote(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some('\'') => raw[1..].strip_suffix('\'').unwrap_or(&raw[1..]).to_owned(),
        Some('"') => {
            let mut value = String::new();
            let mut escaped = false;
            for c in chars {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (true, '"' | '\\' | '$' | '`') => {
                        value.push(c);
                        escaped = false;
                    }
                    (true, other) => {
                        value.push('\\');
                        value.push(other);
                        escaped = false;
                    }
                    (false, other) => value.push(other),
                }
            }
            value
        }
        _ => raw.to_owned(),
    }
}

/// What uname(2) says about the running kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uname {
    pub nodename: String,
    pub release: String,
    pub machine: String,
}

impl Uname {
    /// The running kernel; empty fields if uname fails (it cannot on Linux, but it returns a
    /// `Result`).
    pub fn current() -> Uname {
        match uname() {
            Ok(info) => Uname {
                nodename: info.nodename().to_string_lossy().into_owned(),
                release: info.release().to_string_lossy().into_owned(),
                machine: info.machine().to_string_lossy().into_owned(),
            },
            Err(error) => {
                tracing::warn!(%error, "uname failed; kernel release and architecture unknown");
                Uname::default()
            }
        }
    }
}

/// The hostname as the kernel knows it.
pub fn hostname() -> Option<String> {
    System::host_name().ok().filter(|name| !name.is_empty())
}

/// Assembles [`OsInfo`]. Missing os-release keys take the defaults os-release(5) defines
/// (`PRETTY_NAME="Linux"`, `ID=linux`); `VERSION_ID` stays empty, as for rolling releases.
pub fn os_info(
    release: &OsRelease,
    kernel: &Uname,
    hostname: String,
    boot_time: u64,
    uptime_seconds: u64,
) -> OsInfo {
    OsInfo {
        hostname,
        os_name: release
            .get("PRETTY_NAME")
            .or_else(|| release.get("NAME"))
            .unwrap_or("Linux")
            .to_owned(),
        os_id: release.get("ID").unwrap_or("linux").to_owned(),
        os_version: release.get("VERSION_ID").unwrap_or_default().to_owned(),
        kernel_release: kernel.release.clone(),
        architecture: kernel.machine.clone(),
        boot_time,
        uptime_seconds,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Debian trixie's /usr/lib/os-release, plus the quoting cases the format allows.
    const TRIXIE: &str = r#"PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.1
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
# a comment
not a key value line
ANSI_COLOR='0;31'
QUOTED="say \"hi\" for \$5"
"#;

    #[test]
    fn os_release_fields_are_unquoted() {
        let release = OsRelease::parse(TRIXIE);
        assert_eq!(
            release.get("PRETTY_NAME"),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(release.get("ID"), Some("debian"));
        assert_eq!(release.get("VERSION_ID"), Some("13"));
        assert_eq!(release.get("VERSION_CODENAME"), Some("trixie"));
        assert_eq!(release.get("ANSI_COLOR"), Some("0;31"));
        assert_eq!(release.get("QUOTED"), Some(r#"say "hi" for $5"#));
        assert_eq!(release.get("not a key value line"), None);
    }

    #[test]
    fn os_info_uses_release_and_uname() {
        let kernel = Uname {
            nodename: "node".into(),
            release: "6.12.48+deb13-amd64".into(),
            machine: "x86_64".into(),
        };
        let info = os_info(
            &OsRelease::parse(TRIXIE),
            &kernel,
            "qos".into(),
            1_700_000_000,
            42,
        );
        assert_eq!(info.os_name, "Debian GNU/Linux 13 (trixie)");
        assert_eq!(info.os_id, "debian");
        assert_eq!(info.os_version, "13");
        assert_eq!(info.kernel_release, "6.12.48+deb13-amd64");
        assert_eq!(info.architecture, "x86_64");
        assert_eq!(info.hostname, "qos");
        assert_eq!(info.boot_time, 1_700_000_000);
        assert_eq!(info.uptime_seconds, 42);
    }

    #[test]
    fn missing_os_release_takes_the_documented_defaults() {
        let info = os_info(
            &OsRelease::parse(""),
            &Uname::default(),
            String::new(),
            0,
            0,
        );
        assert_eq!(info.os_name, "Linux");
        assert_eq!(info.os_id, "linux");
        assert_eq!(info.os_version, "");
        let rolling = OsRelease::parse("NAME=Arch\nID=arch\n\"broken");
        let info = os_info(&rolling, &Uname::default(), String::new(), 0, 0);
        assert_eq!(info.os_name, "Arch");
        assert_eq!(info.os_version, "");
    }

    #[test]
    fn live_os_matches_uname_and_etc_os_release() {
        let info = crate::inventory::Collector::new().os();
        let uname_r = std::process::Command::new("uname")
            .arg("-r")
            .output()
            .unwrap();
        assert_eq!(
            info.kernel_release,
            String::from_utf8_lossy(&uname_r.stdout).trim()
        );
        assert_eq!(info.architecture, std::env::consts::ARCH);
        if let Ok(text) = std::fs::read_to_string("/etc/os-release") {
            assert_eq!(Some(info.os_id.as_str()), OsRelease::parse(&text).get("ID"));
        }
        assert!(
            info.boot_time > 1_500_000_000,
            "boot time {}",
            info.boot_time
        );
        assert!(!info.hostname.is_empty());
    }
}
