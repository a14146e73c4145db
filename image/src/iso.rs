//! Assembling the hybrid UEFI ISO from mkosi's tree and UKI.
//!
//! Layout: `LiveOS/squashfs.img` (the root file system, zstd) in the ISO 9660 tree, found by
//! the initrd through the volume label; a FAT image holding the UKI as
//! `EFI/BOOT/BOOTX64.EFI` (`BOOTAA64.EFI` on arm64), appended as a GPT EFI system partition
//! and used as the El Torito EFI boot image. Firmware boots it as a CD and as a disk.
//! The ISO is written under a temporary name and renamed only when complete.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::platform::Arch;
use crate::run::{self, Step};

/// The GPT type of an EFI system partition.
const ESP_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

#[derive(Debug)]
pub struct IsoInputs<'a> {
    pub tree: &'a Path,
    pub uki: &'a Path,
    pub arch: Arch,
    pub label: &'a str,
    pub source_date_epoch: u64,
    /// Scratch space for the squashfs and FAT images (removed afterwards).
    pub work_dir: &'a Path,
    pub logs: &'a Path,
}

/// Builds the ISO at `dest`; on failure nothing is left at `dest`.
pub fn assemble(inputs: &IsoInputs<'_>, dest: &Path) -> Result<()> {
    let partial = partial_path(dest);
    let result = assemble_to(inputs, &partial);
    let _ = fs::remove_dir_all(inputs.work_dir);
    match result {
        Ok(()) => fs::rename(&partial, dest)
            .with_context(|| format!("renaming {} to {}", partial.display(), dest.display())),
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Sets the modification time of `path` (a file or a directory) to `epoch` seconds.
fn set_mtime(path: &Path, epoch: u64) -> Result<()> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    fs::File::open(path)
        .and_then(|f| f.set_modified(time))
        .with_context(|| format!("setting the time of {}", path.display()))
}

/// `out/.quantumos-….iso.partial`: hidden, and not named like an ISO.
pub fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.partial"))
}

fn assemble_to(inputs: &IsoInputs<'_>, partial: &Path) -> Result<()> {
    if inputs.work_dir.exists() {
        fs::remove_dir_all(inputs.work_dir)?;
    }
    let iso_root = inputs.work_dir.join("iso-root");
    let live_dir = iso_root.join("LiveOS");
    fs::create_dir_all(&live_dir).with_context(|| format!("creating {}", live_dir.display()))?;
    let sde = inputs.source_date_epoch.to_string();

    let step = Step::start("Packing the root file system (squashfs, zstd)");
    run::logged(
        Command::new("mksquashfs")
            .arg(inputs.tree)
            .arg(live_dir.join("squashfs.img"))
            .args(["-comp", "zstd", "-noappend", "-no-progress"])
            // mksquashfs takes every timestamp from SOURCE_DATE_EPOCH.
            .env("SOURCE_DATE_EPOCH", &sde),
        &inputs.logs.join("mksquashfs.log"),
        &step,
    )?;
    step.finish();

    let step = Step::start("Writing the EFI system partition image");
    let efi_img = inputs.work_dir.join("efi.img");
    let uki_size = fs::metadata(inputs.uki)
        .with_context(|| format!("reading {}", inputs.uki.display()))?
        .len();
    let kib = fat_size_kib(uki_size);
    let volume_id = format!("{:08x}", inputs.source_date_epoch & 0xffff_ffff);
    let log = inputs.logs.join("efi-image.log");
    run::logged(
        Command::new("mkfs.fat")
            .args(["-C", "-n", "QOS_EFI", "-i", &volume_id, "--invariant"])
            .arg(&efi_img)
            .arg(kib.to_string()),
        &log,
        &step,
    )?;
    let image = efi_img.to_string_lossy().into_owned();
    run::logged(
        // The directories' times too (mtools reads SOURCE_DATE_EPOCH).
        Command::new("mmd")
            .args(["-i", &image, "::/EFI", "::/EFI/BOOT"])
            .env("SOURCE_DATE_EPOCH", &sde),
        &log,
        &step,
    )?;
    run::logged(
        Command::new("mcopy")
            // No -m: the file's time is then SOURCE_DATE_EPOCH, not the UKI's build time.
            .args(["-i", &image])
            .arg(inputs.uki)
            .arg(format!("::/EFI/BOOT/{}", inputs.arch.efi_boot_file()))
            .env("SOURCE_DATE_EPOCH", &sde),
        &log,
        &step,
    )?;
    step.finish();

    // xorriso takes each file's time from the file system: the directories and the
    // squashfs image made just now would carry the time of the build.
    for path in [&iso_root, &live_dir, &live_dir.join("squashfs.img")] {
        set_mtime(path, inputs.source_date_epoch)?;
    }

    let step = Step::start("Writing the hybrid ISO (xorriso)");
    run::logged(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-o"])
            .arg(partial)
            .args(["-V", inputs.label, "-iso-level", "3", "-R", "-J"])
            .args(["-partition_offset", "16"])
            .args(["-append_partition", "2", ESP_GUID, &image])
            .arg("-appended_part_as_gpt")
            .args([
                "-e",
                "--interval:appended_partition_2:all::",
                "-no-emul-boot",
            ])
            .arg(&iso_root)
            .env("SOURCE_DATE_EPOCH", &sde),
        &inputs.logs.join("xorriso.log"),
        &step,
    )?;
    step.finish();
    if !partial.is_file() {
        bail!(
            "xorriso reported success but wrote no {}",
            partial.display()
        );
    }
    Ok(())
}

/// Room for the UKI plus FAT overhead, in KiB, rounded up to whole MiB.
fn fat_size_kib(uki_bytes: u64) -> u64 {
    let mib = uki_bytes.div_ceil(1024 * 1024);
    (mib + mib / 20 + 2) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_iso_is_hidden_and_not_an_iso() {
        let p = partial_path(Path::new("/x/out/quantumos-0.1.0-x86_64.iso"));
        assert_eq!(p, Path::new("/x/out/.quantumos-0.1.0-x86_64.iso.partial"));
    }

    #[test]
    fn the_fat_image_fits_the_uki() {
        let uki = 42 * 1024 * 1024 + 5;
        assert!(fat_size_kib(uki) * 1024 > uki + 1024 * 1024);
    }
}
