//! What an ISO contains, written next to it: the Debian packages (from the image's dpkg
//! status) and our binaries with their sha256, plus `SHA256SUMS` for the ISOs in `out/`.
//! Two builds from one commit give the same package list and binary hashes unless the
//! Debian archive moved in between.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::stage::StagedFile;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub name: &'static str,
    pub version: String,
    pub architecture: String,
    pub profile: String,
    pub commit: Option<String>,
    pub source_date_epoch: u64,
    pub iso: IsoEntry,
    pub binaries: Vec<StagedFile>,
    pub packages: Vec<Package>,
}

#[derive(Debug, Serialize)]
pub struct IsoEntry {
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

/// The installed packages listed in a dpkg `status` file, sorted by name.
pub fn dpkg_packages(status: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for stanza in status.split("\n\n") {
        let mut fields = BTreeMap::new();
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                fields.insert(key.trim(), value.trim());
            }
        }
        let installed = fields
            .get("Status")
            .is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(name), Some(version)) =
            (installed, fields.get("Package"), fields.get("Version"))
        {
            packages.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                architecture: fields.get("Architecture").unwrap_or(&"").to_string(),
            });
        }
    }
    packages.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    packages
}

pub fn read_dpkg_packages(tree: &Path) -> Result<Vec<Package>> {
    let path = tree.join("var/lib/dpkg/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(dpkg_packages(&text))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub fn write_manifest(path: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_string_pretty(manifest)?;
    write_atomically(path, format!("{text}\n").as_bytes())
}

/// Sets `file`'s line in `dir/SHA256SUMS` (sha256sum format) and drops lines of files that
/// no longer exist.
pub fn update_sha256sums(dir: &Path, file: &str, digest: Option<&str>) -> Result<()> {
    let path = dir.join("SHA256SUMS");
    let old = fs::read_to_string(&path).unwrap_or_default();
    let text = sha256sums_with(&old, file, digest, |name| dir.join(name).is_file());
    write_atomically(&path, text.as_bytes())
}

fn sha256sums_with(
    old: &str,
    file: &str,
    digest: Option<&str>,
    exists: impl Fn(&str) -> bool,
) -> String {
    let mut entries: BTreeMap<String, String> = old
        .lines()
        .filter_map(|l| l.split_once("  "))
        .filter(|(_, name)| *name != file && exists(name))
        .map(|(d, name)| (name.to_string(), d.to_string()))
        .collect();
    if let Some(digest) = digest {
        entries.insert(file.to_string(), digest.to_string());
    }
    entries
        .iter()
        .map(|(name, d)| format!("{d}  {name}\n"))
        .collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: systemd\nStatus: install ok installed\nPriority: important\n\
Architecture: amd64\nVersion: 257.9-1~deb13u1\nDescription: system and service manager\n \
systemd is a replacement for sysvinit.\n\nPackage: removed-thing\nStatus: deinstall ok config-files\n\
Architecture: amd64\nVersion: 1.0\n\nPackage: base-files\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 13.8+deb13u1\n";

    #[test]
    fn only_installed_packages_are_listed_sorted() {
        let packages = dpkg_packages(STATUS);
        let names: Vec<_> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "systemd"]);
        assert_eq!(packages[1].version, "257.9-1~deb13u1");
    }

    #[test]
    fn sha256sums_replaces_and_prunes() {
        let old = "aa  gone.iso\nbb  kept.iso\ncc  new.iso\n";
        let text = sha256sums_with(old, "new.iso", Some("dd"), |n| n != "gone.iso");
        assert_eq!(text, "bb  kept.iso\ndd  new.iso\n");
    }

    #[test]
    fn sha256_of_a_known_input() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("abc");
        fs::write(&path, "abc")?;
        assert_eq!(
            sha256_file(&path)?,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        Ok(())
    }
}
