//! Running mkosi on `recipes/`: one output directory (`out/mkosi/`) shared by all builds so
//! the tools tree is built once, one output name per architecture and profile, package
//! downloads cached outside the clone when possible.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::platform::{Arch, Profile};
use crate::run::{self, Step};
use crate::workspace::Workspace;

/// Where mkosi's package downloads are kept between builds. A cache only: a build never
/// needs it to exist.
pub const PACKAGE_CACHE: &str = "/var/cache/quantumos-mkosi";

/// What mkosi produced for one architecture and profile.
#[derive(Debug)]
pub struct MkosiOutput {
    /// The image's root file system, as a directory.
    pub tree: PathBuf,
    /// The unified kernel image (kernel, live initrd, command line), from mkosi.finalize.
    pub uki: PathBuf,
    pub log: PathBuf,
}

pub fn output_name(arch: Arch, profile: Profile) -> String {
    format!("quantumos_{}_{}", arch.mkosi(), profile.name())
}

/// Builds the image tree and its UKI.
pub fn build(
    ws: &Workspace,
    arch: Arch,
    profile: Profile,
    extra_tree: &Path,
    use_cache: bool,
) -> Result<MkosiOutput> {
    let out = ws.out_dir().join("mkosi");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let name = output_name(arch, profile);
    let uki = out.join(format!("{name}.efi"));
    if uki.exists() {
        std::fs::remove_file(&uki)?;
    }
    let log =
        ws.out_dir()
            .join("logs")
            .join(format!("mkosi-{}-{}.log", arch.name(), profile.name()));

    let mut cmd = Command::new("mkosi");
    cmd.current_dir(ws.recipes())
        .arg(format!("--profile={}", profile.name()))
        .arg(format!("--architecture={}", arch.mkosi()))
        .arg(format!("--output-dir={}", out.display()))
        .arg(format!("--output={name}"))
        .arg(format!("--extra-tree={}", extra_tree.display()))
        .arg(format!("--source-date-epoch={}", ws.source_date_epoch))
        .arg(format!("--environment=QOS_ISO_LABEL={}", ws.iso_label()))
        .arg(format!("--environment=QOS_OUTPUT={name}"))
        .arg("--force");
    if use_cache {
        if let Some(cache) = package_cache() {
            // Downloads, and the system after package installation (shared by all
            // profiles: they install the same packages). That system is kept per
            // SOURCE_DATE_EPOCH: its file times are clamped to the epoch of the build that
            // made it, so reusing it for another commit would make that commit's image
            // differ from a build without the cache (ci/check-reproducible).
            let images = image_cache(&cache, ws.source_date_epoch);
            cmd.arg(format!("--package-cache-dir={}", cache.display()))
                .arg(format!("--cache-dir={}", images.display()))
                .arg("--incremental=yes");
        }
    }
    cmd.arg("build");

    let step = Step::start(format!(
        "Building the {} {} system with mkosi (log: {})",
        arch.name(),
        profile.name(),
        log.display()
    ));
    run::logged(&mut cmd, &log, &step).map_err(|e| {
        e.context(format!(
            "mkosi could not build the {profile} image for {arch}: read the log above; \
             a download error usually means deb.debian.org is unreachable, \
             `qos-image deps` checks the host tools"
        ))
    })?;
    step.finish();

    let tree = out.join(&name);
    if !tree.join("usr/lib/os-release").is_file() {
        bail!(
            "mkosi finished but {} does not hold a system (no usr/lib/os-release); see {}",
            tree.display(),
            log.display()
        );
    }
    if !uki.is_file() {
        bail!(
            "mkosi finished but recipes/mkosi.finalize did not write {}; see {}",
            uki.display(),
            log.display()
        );
    }
    Ok(MkosiOutput { tree, uki, log })
}

/// The package cache, created when missing; `None` when it cannot be used (not root, say).
fn package_cache() -> Option<PathBuf> {
    let path = PathBuf::from(PACKAGE_CACHE);
    std::fs::create_dir_all(&path).ok()?;
    std::fs::create_dir_all(path.join("images")).ok()?;
    let probe = path.join(".qos-image-probe");
    std::fs::write(&probe, b"").ok()?;
    std::fs::remove_file(&probe).ok()?;
    Some(path)
}

/// `<cache>/images/<epoch>`, created; the caches of other epochs are removed (each is a
/// whole system, ~800 MB).
fn image_cache(cache: &Path, source_date_epoch: u64) -> PathBuf {
    let images = cache.join("images");
    let current = images.join(source_date_epoch.to_string());
    if let Ok(entries) = std::fs::read_dir(&images) {
        for entry in entries.flatten() {
            if entry.path() != current {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let _ = std::fs::create_dir_all(&current);
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_cache_is_kept_for_one_epoch_only() -> Result<()> {
        let cache = tempfile::tempdir()?;
        let old = image_cache(cache.path(), 100);
        std::fs::write(old.join("image.raw"), b"x")?;
        assert_eq!(image_cache(cache.path(), 100), old);
        assert!(old.join("image.raw").exists(), "same epoch: kept");
        let new = image_cache(cache.path(), 200);
        assert!(new.is_dir());
        assert!(!old.exists(), "another epoch's system is removed");
        Ok(())
    }

    #[test]
    fn output_names_differ_per_arch_and_profile() {
        assert_eq!(
            output_name(Arch::X86_64, Profile::Live),
            "quantumos_x86-64_live"
        );
        assert_ne!(
            output_name(Arch::Arm64, Profile::Test),
            output_name(Arch::X86_64, Profile::Test)
        );
    }
}
