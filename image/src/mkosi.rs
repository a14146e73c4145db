//! Running mkosi on `recipes/`: one output directory (`out/mkosi/`) shared by all builds so
//! the tools tree is built once, one output name per architecture and profile, package
//! downloads cached outside the clone when possible.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

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
    // Held until mkosi is done: a concurrent build of another commit leaves this cache alone.
    let mut _image_cache_lock = None;
    if use_cache {
        if let Some(cache) = package_cache() {
            // Downloads, and the system after package installation (shared by all
            // profiles: they install the same packages). That system is kept per
            // SOURCE_DATE_EPOCH: its file times are clamped to the epoch of the build that
            // made it, so reusing it for another commit would make that commit's image
            // differ from a build without the cache (ci/check-reproducible).
            let images = image_cache(&cache, ws.source_date_epoch)?;
            cmd.arg(format!("--package-cache-dir={}", cache.display()))
                .arg(format!("--cache-dir={}", images.path.display()))
                .arg("--incremental=yes");
            _image_cache_lock = Some(images);
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

/// One epoch's image cache, in use by this build: a shared lock (flock) on its directory,
/// held until the value is dropped.
struct ImageCache {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

/// `<cache>/images/<epoch>`, created and locked; the caches of other epochs are removed (each
/// is a whole system, ~800 MB), except one another build holds: removing it under that build
/// made mkosi fail at its end ("No such file or directory" moving the tree into the cache).
fn image_cache(cache: &Path, source_date_epoch: u64) -> Result<ImageCache> {
    use std::os::unix::fs::MetadataExt;
    let images = cache.join("images");
    let current = images.join(source_date_epoch.to_string());
    if let Ok(entries) = std::fs::read_dir(&images) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path == current {
                continue;
            }
            match std::fs::File::open(&path) {
                Ok(dir) if path.is_dir() => {
                    if let Ok(_held) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
                        let _ = std::fs::remove_dir_all(&path);
                    }
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    // Another build may remove the directory between its creation and our lock: lock, then
    // check that the path still names the directory locked.
    for _ in 0..3 {
        std::fs::create_dir_all(&current)
            .with_context(|| format!("creating {}", current.display()))?;
        let dir = std::fs::File::open(&current)
            .with_context(|| format!("opening {}", current.display()))?;
        let dir = Flock::lock(dir, FlockArg::LockShared)
            .map_err(|(_, errno)| anyhow::anyhow!("locking {}: {errno}", current.display()))?;
        let locked = dir.metadata()?;
        if std::fs::metadata(&current)
            .is_ok_and(|m| m.ino() == locked.ino() && m.dev() == locked.dev())
        {
            return Ok(ImageCache {
                path: current,
                _lock: dir,
            });
        }
    }
    bail!(
        "{} keeps disappearing: is another qos-image removing it?",
        current.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_cache_is_kept_for_one_epoch_only() -> Result<()> {
        let cache = tempfile::tempdir()?;
        let old = image_cache(cache.path(), 100)?.path;
        std::fs::write(old.join("image.raw"), b"x")?;
        assert_eq!(image_cache(cache.path(), 100)?.path, old);
        assert!(old.join("image.raw").exists(), "same epoch: kept");
        let new = image_cache(cache.path(), 200)?;
        assert!(new.path.is_dir());
        assert!(!old.exists(), "another epoch's system is removed");
        Ok(())
    }

    #[test]
    fn a_cache_another_build_holds_is_not_removed() -> Result<()> {
        let cache = tempfile::tempdir()?;
        let building = image_cache(cache.path(), 100)?;
        std::fs::write(building.path.join("image.raw"), b"x")?;
        let other = image_cache(cache.path(), 200)?;
        assert!(
            building.path.join("image.raw").exists(),
            "a build of another commit removed the cache in use"
        );
        drop(building);
        drop(other);
        image_cache(cache.path(), 200)?;
        assert!(!cache.path().join("images/100").exists(), "unused: removed");
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
