//! The host tools a build and a boot need, and installing them on Debian.
//!
//! On Debian 12 (bookworm) mkosi is too old in the main archive: mkosi and qemu come from
//! bookworm-backports (qemu because backports' qemu-utils breaks bookworm's qemu-system).
//! Newer Debian releases have everything in the main archive.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::platform::Arch;
use crate::run;

/// How a requirement is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// An executable in PATH (or sbin).
    Tool(&'static str),
    /// A file.
    File(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub probe: Probe,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// Taken from bookworm-backports on Debian 12.
    pub backports: bool,
    pub why: &'static str,
}

const fn tool(name: &'static str, package: &'static str, why: &'static str) -> Requirement {
    Requirement {
        probe: Probe::Tool(name),
        package,
        backports: false,
        why,
    }
}

/// What building and booting an image for `arch` needs on this host.
pub fn requirements(arch: Arch) -> Vec<Requirement> {
    let mut list = vec![
        Requirement {
            probe: Probe::Tool("mkosi"),
            package: "mkosi",
            backports: true,
            why: "builds the Debian system",
        },
        tool("bwrap", "bubblewrap", "mkosi's sandbox"),
        tool("git", "git", "SOURCE_DATE_EPOCH from the commit"),
        tool(
            "mksquashfs",
            "squashfs-tools",
            "the compressed root file system",
        ),
        tool("mkfs.fat", "dosfstools", "the EFI system partition image"),
        tool("mcopy", "mtools", "copies the UKI into the EFI image"),
        tool("xorriso", "xorriso", "writes the hybrid ISO"),
        tool("zstd", "zstd", "compression"),
        tool("qemu-img", "qemu-utils", "blank disks for boot"),
        Requirement {
            probe: Probe::File("/usr/share/keyrings/debian-archive-keyring.gpg"),
            package: "debian-archive-keyring",
            backports: false,
            why: "verifies Debian's archive",
        },
    ];
    match arch {
        Arch::X86_64 => list.extend([
            Requirement {
                probe: Probe::Tool("qemu-system-x86_64"),
                package: "qemu-system-x86",
                backports: true,
                why: "boots the image",
            },
            Requirement {
                probe: Probe::File("/usr/share/OVMF/OVMF_CODE_4M.fd"),
                package: "ovmf",
                backports: false,
                why: "UEFI firmware for x86_64",
            },
        ]),
        Arch::Arm64 => list.extend([
            Requirement {
                probe: Probe::Tool("qemu-system-aarch64"),
                package: "qemu-system-arm",
                backports: true,
                why: "boots the image",
            },
            Requirement {
                probe: Probe::File("/usr/share/AAVMF/AAVMF_CODE.fd"),
                package: "qemu-efi-aarch64",
                backports: false,
                why: "UEFI firmware for arm64",
            },
            Requirement {
                probe: Probe::Tool("qemu-aarch64-static"),
                package: "qemu-user-static",
                backports: true,
                why: "runs arm64 maintainer scripts during the build",
            },
            tool(
                "aarch64-linux-gnu-gcc",
                "gcc-aarch64-linux-gnu",
                "links the arm64 binaries",
            ),
        ]),
    }
    list
}

pub fn is_present(probe: Probe) -> bool {
    match probe {
        Probe::Tool(name) => run::find_tool(name).is_some(),
        Probe::File(path) => Path::new(path).is_file(),
    }
}

/// mkosi's version as (major, minor), when installed.
pub fn mkosi_version() -> Option<(u32, u32)> {
    let text = run::output(Command::new("mkosi").arg("--version")).ok()?;
    parse_mkosi_version(&text)
}

fn parse_mkosi_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split(['.', '~', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The oldest mkosi the recipes are written for.
pub const MKOSI_MIN: (u32, u32) = (24, 3);

/// Requirements not met on this host (mkosi counts as missing when too old).
pub fn missing(arch: Arch) -> Vec<Requirement> {
    requirements(arch)
        .into_iter()
        .filter(|r| {
            if r.probe == Probe::Tool("mkosi") {
                return mkosi_version().is_none_or(|v| v < MKOSI_MIN);
            }
            !is_present(r.probe)
        })
        .collect()
}

/// Fails with what to do when a build or boot for `arch` cannot run here.
pub fn ensure(arch: Arch, for_boot_only: bool) -> Result<()> {
    let missing: Vec<Requirement> = missing(arch)
        .into_iter()
        .filter(|r| {
            !for_boot_only
                || matches!(
                    r.package,
                    "qemu-system-x86" | "qemu-system-arm" | "ovmf" | "qemu-efi-aarch64"
                )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|r| format!("{} ({}: {})", describe(r.probe), r.package, r.why))
        .collect();
    bail!(
        "missing host tools: {}.\nInstall them with `sudo qos-image deps --arch {arch}` \
         (or `cargo run -p qos-image -- deps --arch {arch}` as root).",
        list.join(", ")
    )
}

pub fn describe(probe: Probe) -> String {
    match probe {
        Probe::Tool(name) => name.to_string(),
        Probe::File(path) => path.to_string(),
    }
}

/// The host's Debian codename (`bookworm`, `trixie`, …), from /etc/os-release.
pub fn debian_codename() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
}

const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

fn has_backports_source() -> bool {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(entries.flatten().map(|e| e.path()));
    }
    files.iter().any(|f| {
        fs::read_to_string(f).is_ok_and(|t| {
            t.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
        })
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Checks the host and installs what is missing, saying what it installs.
pub fn install_missing(arch: Arch, check_only: bool) -> Result<()> {
    for r in requirements(arch) {
        let state = if r.probe == Probe::Tool("mkosi") {
            match mkosi_version() {
                Some(v) if v >= MKOSI_MIN => format!("ok ({}.{})", v.0, v.1),
                Some(v) => format!(
                    "too old ({}.{}, need {}.{})",
                    v.0, v.1, MKOSI_MIN.0, MKOSI_MIN.1
                ),
                None => "missing".into(),
            }
        } else if is_present(r.probe) {
            "ok".into()
        } else {
            "missing".into()
        };
        println!("  {:<48} {:<22} {}", describe(r.probe), r.package, state);
    }
    let missing = missing(arch);
    let rust_target_missing = !rust_target_installed(arch);
    if rust_target_missing {
        println!(
            "  {:<48} {:<22} missing",
            format!("rust target {}", arch.rust_triple()),
            "rustup"
        );
    }
    let binfmt_missing = arch == Arch::Arm64 && !arch.is_host() && !binfmt_registered();
    if binfmt_missing {
        println!(
            "  {:<48} {:<22} not registered",
            "binfmt_misc qemu-aarch64", "-"
        );
    }
    if missing.is_empty() && !rust_target_missing && !binfmt_missing {
        println!("Everything needed for {arch} images is installed.");
        return Ok(());
    }
    if check_only {
        bail!("the host lacks tools for {arch} images: run `qos-image deps --arch {arch}` as root");
    }

    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "installing {} needs root: run `sudo qos-image deps --arch {arch}`",
                package_list(&missing)
            );
        }
        let codename = debian_codename().unwrap_or_default();
        let use_backports = codename == "bookworm";
        if use_backports && !has_backports_source() {
            println!(
                "Adding {BACKPORTS_SOURCES} (mkosi ≥ 24 and qemu come from bookworm-backports)"
            );
            fs::write(
                BACKPORTS_SOURCES,
                "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
                 Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            )
            .with_context(|| format!("writing {BACKPORTS_SOURCES}"))?;
        }
        println!("Running apt-get update");
        run::visible(Command::new("apt-get").args(["update", "-q"]))?;
        let (bp, main): (Vec<Requirement>, Vec<Requirement>) =
            missing.iter().partition(|r| use_backports && r.backports);
        for (group, target) in [(bp, Some("bookworm-backports")), (main, None)] {
            if group.is_empty() {
                continue;
            }
            let packages: Vec<&str> = group.iter().map(|r| r.package).collect();
            println!(
                "Installing {}{}",
                packages.join(" "),
                target.map(|t| format!(" from {t}")).unwrap_or_default()
            );
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "-q"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            if let Some(t) = target {
                cmd.args(["-t", t]);
            }
            run::visible(cmd.args(&packages))?;
        }
        let still = self::missing(arch);
        if !still.is_empty() {
            bail!("still missing after apt-get: {}", package_list(&still));
        }
    }
    if rust_target_missing {
        println!("Adding the Rust target {}", arch.rust_triple());
        run::visible(Command::new("rustup").args(["target", "add", arch.rust_triple()]))
            .context("rustup could not add the target (is Rust installed with rustup?)")?;
    }
    if binfmt_missing {
        register_binfmt_aarch64()?;
    }
    println!("Host ready for {arch} images.");
    Ok(())
}

fn package_list(reqs: &[Requirement]) -> String {
    let mut names: Vec<&str> = reqs.iter().map(|r| r.package).collect();
    names.dedup();
    names.join(" ")
}

fn rust_target_installed(arch: Arch) -> bool {
    if arch.is_host() {
        return true;
    }
    run::output(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == arch.rust_triple()))
}

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

pub fn binfmt_registered() -> bool {
    fs::read_to_string(format!("{BINFMT_DIR}/qemu-aarch64")).is_ok_and(|t| t.contains("enabled"))
}

/// Registers qemu-aarch64 with binfmt_misc so mkosi can run arm64 maintainer scripts.
/// Containers often lack systemd-binfmt, so the line from qemu-user-static's binfmt.d file
/// is written to the kernel directly.
pub fn register_binfmt_aarch64() -> Result<()> {
    if !Path::new(&format!("{BINFMT_DIR}/register")).exists() {
        println!("Mounting binfmt_misc on {BINFMT_DIR}");
        run::visible(Command::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]))?;
    }
    let conf = "/usr/lib/binfmt.d/qemu-aarch64.conf";
    let text = fs::read_to_string(conf)
        .with_context(|| format!("reading {conf} (from qemu-user-static)"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(':'))
        .with_context(|| format!("{conf} has no registration line"))?;
    println!("Registering qemu-aarch64 with binfmt_misc");
    fs::write(format!("{BINFMT_DIR}/register"), line)
        .context("writing the binfmt_misc registration (needs root and a writable binfmt_misc)")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkosi_versions_parse() {
        assert_eq!(parse_mkosi_version("mkosi 24.3\n"), Some((24, 3)));
        assert_eq!(parse_mkosi_version("mkosi 25~devel"), Some((25, 0)));
        assert_eq!(parse_mkosi_version("garbage"), None);
        assert!((14, 0) < MKOSI_MIN);
    }

    #[test]
    fn arm64_needs_a_cross_linker_and_qemu_user() {
        let packages: Vec<_> = requirements(Arch::Arm64)
            .iter()
            .map(|r| r.package)
            .collect();
        assert!(packages.contains(&"gcc-aarch64-linux-gnu"));
        assert!(packages.contains(&"qemu-user-static"));
        assert!(
            !requirements(Arch::X86_64)
                .iter()
                .any(|r| r.package == "gcc-aarch64-linux-gnu")
        );
    }
}
