//! `qos-image build`: stage → mkosi → ISO → manifest and SHA256SUMS, in that order, with a
//! disk-space check first and nothing left at the ISO's path unless the whole build worked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::host;
use crate::iso::{self, IsoInputs};
use crate::manifest::{self, IsoEntry, Manifest};
use crate::mkosi;
use crate::platform::{Arch, Profile};
use crate::run;
use crate::stage;
use crate::workspace::Workspace;

/// Free space a build needs on the file system of `out/` (tools tree, image tree, squashfs,
/// ISO, package cache).
pub const MIN_FREE_BYTES: u64 = 8 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub arch: Arch,
    pub profile: Profile,
    /// Use (and fill) the package cache under /var/cache/quantumos-mkosi.
    pub use_cache: bool,
}

#[derive(Debug)]
pub struct BuildOutput {
    pub iso: PathBuf,
    pub manifest: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// `out/quantumos-<version>-<arch>.iso` for the product, with `-<profile>` for the others.
pub fn iso_name(version: &str, arch: Arch, profile: Profile) -> String {
    match profile {
        Profile::Live => format!("quantumos-{version}-{arch}.iso"),
        other => format!("quantumos-{version}-{arch}-{other}.iso"),
    }
}

pub fn iso_path(ws: &Workspace, arch: Arch, profile: Profile) -> PathBuf {
    ws.out_dir().join(iso_name(&ws.version, arch, profile))
}

pub fn build(ws: &Workspace, opts: &BuildOptions) -> Result<BuildOutput> {
    let started = Instant::now();
    let (arch, profile) = (opts.arch, opts.profile);
    if !host::missing(arch).is_empty() {
        eprintln!("Some host tools are missing; installing them first (qos-image deps):");
        host::install_missing(arch, false)?;
    }
    host::ensure(arch, false)?;
    if profile.has_payload() && !ws.recipes().join("quantumos").is_dir() {
        bail!(
            "the {profile} profile carries recipes/quantumos/ (units, D-Bus and polkit policy), \
             which does not exist in this checkout; build --profile baseline, or add the payload"
        );
    }
    let out = ws.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    check_free_space(&out, MIN_FREE_BYTES)?;

    let iso = iso_path(ws, arch, profile);
    let iso_file = file_name(&iso);
    let manifest_path = iso.with_extension("manifest.json");
    // A failed build must not leave an older ISO looking like its result.
    for stale in [&iso, &manifest_path] {
        if stale.exists() {
            std::fs::remove_file(stale)
                .with_context(|| format!("removing the previous {}", stale.display()))?;
        }
    }
    manifest::update_sha256sums(&out, &iso_file, None)?;

    eprintln!(
        "Building QuantumOS {} ({arch}, {profile}) from {} (SOURCE_DATE_EPOCH={})",
        ws.version,
        ws.commit.as_deref().unwrap_or("an unversioned tree"),
        ws.source_date_epoch
    );
    let staged = stage::stage(ws, arch, profile)?;
    let image = mkosi::build(ws, arch, profile, &staged.root, opts.use_cache)?;

    let logs = out.join("logs");
    let work_dir = out.join("work").join(format!("{arch}-{profile}"));
    iso::assemble(
        &IsoInputs {
            tree: &image.tree,
            uki: &image.uki,
            arch,
            label: &ws.iso_label(),
            source_date_epoch: ws.source_date_epoch,
            work_dir: &work_dir,
            logs: &logs,
        },
        &iso,
    )?;

    let sha256 = manifest::sha256_file(&iso)?;
    let size = std::fs::metadata(&iso)?.len();
    manifest::write_manifest(
        &manifest_path,
        &Manifest {
            name: "QuantumOS",
            version: ws.version.clone(),
            architecture: arch.name().into(),
            profile: profile.name().into(),
            commit: ws.commit.clone(),
            source_date_epoch: ws.source_date_epoch,
            iso: IsoEntry {
                file: iso_file.clone(),
                sha256: sha256.clone(),
                size,
            },
            binaries: staged.binaries,
            packages: manifest::read_dpkg_packages(&image.tree)?,
        },
    )?;
    manifest::update_sha256sums(&out, &iso_file, Some(&sha256))?;
    eprintln!(
        "Built {} ({:.0} MiB) in {:.1} min\n  manifest: {}\n  sha256:   {sha256}",
        iso.display(),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64() / 60.0,
        manifest_path.display()
    );
    Ok(BuildOutput {
        iso,
        manifest: manifest_path,
        sha256,
        size,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Fails with a clear message when the file system of `dir` has less than `need` bytes free.
pub fn check_free_space(dir: &Path, need: u64) -> Result<()> {
    let text = run::output(Command::new("df").args(["--output=avail", "-B1"]).arg(dir))
        .context("checking free disk space with df")?;
    let avail: u64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("df printed {text:?}"))?;
    if avail < need {
        bail!(
            "not enough disk space: {} has {:.1} GiB free, a build needs {:.0} GiB; \
             free some space (`qos-image clean` removes old outputs)",
            dir.display(),
            avail as f64 / 1073741824.0,
            need as f64 / 1073741824.0
        );
    }
    Ok(())
}

/// `qos-image clean`: removes `out/`'s build products; `all` also the package cache.
pub fn clean(ws: &Workspace, all: bool) -> Result<()> {
    let out = ws.out_dir();
    if out.exists() {
        eprintln!("Removing {}", out.display());
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    if all && Path::new(mkosi::PACKAGE_CACHE).exists() {
        eprintln!("Removing {}", mkosi::PACKAGE_CACHE);
        std::fs::remove_dir_all(mkosi::PACKAGE_CACHE)
            .with_context(|| format!("removing {}", mkosi::PACKAGE_CACHE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_iso_has_the_plain_name() {
        assert_eq!(
            iso_name("0.1.0", Arch::X86_64, Profile::Live),
            "quantumos-0.1.0-x86_64.iso"
        );
        assert_eq!(
            iso_name("0.1.0", Arch::Arm64, Profile::Test),
            "quantumos-0.1.0-arm64-test.iso"
        );
    }

    #[test]
    fn impossible_free_space_is_refused_with_advice() {
        let err = check_free_space(Path::new("/"), u64::MAX)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not enough disk space"), "{err}");
    }
}
