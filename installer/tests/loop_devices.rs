//! qos-install against real block devices: loop devices over sparse files. Needs root and
//! loop device support; says `skipped` otherwise. Nothing here writes to a device: these are
//! the refusals and the dry run (the full install runs in qemu, see docs/install.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup")
            .args(["--detach", &self.dev])
            .status();
    }
}

/// A loop device over a sparse file of `size` bytes, or None (and why) when this machine
/// cannot make one.
fn loop_device(size: u64) -> Option<Loop> {
    let uid = std::fs::read_to_string("/proc/self/status").ok()?;
    let root = uid
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        == Some("0");
    if !root {
        eprintln!("skipped: loop devices need root");
        return None;
    }
    let file = tempfile::NamedTempFile::new().ok()?;
    file.as_file().set_len(size).ok()?;
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(file.path())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "skipped: losetup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(Loop {
        dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _file: file,
    })
}

fn qos_install(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qos-install"))
        .env("QOS_INSTALL_ROOT", root)
        // Small loop devices keep the checksums fast; the size rule is the same.
        .env("QOS_INSTALL_MIN_DISK_MIB", MIN_MIB.to_string())
        .args(args)
        .output()
        .expect("qos-install runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sha256(dev: &str) -> String {
    let out = Command::new("sha256sum")
        .arg(dev)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn empty_root() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The smallest disk these tests let qos-install accept, and one just big enough.
const MIN_MIB: u64 = 192;
const BIG_ENOUGH: u64 = MIN_MIB * MIB + MIB;

#[test]
fn dry_run_on_a_disk_with_data_changes_nothing() {
    let Some(disk) = loop_device(BIG_ENOUGH) else {
        return;
    };
    // A partition table and a file system's worth of bytes: a disk with data.
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", &disk.dev])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sfdisk");
    {
        use std::io::Write;
        let mut stdin = sfdisk.stdin.take().expect("stdin");
        writeln!(stdin, "label: gpt\n,100M,L\n").expect("write");
    }
    assert!(sfdisk.wait().expect("sfdisk").success());
    let _ = Command::new("udevadm").args(["settle"]).status();
    let before = sha256(&disk.dev);
    let root = empty_root();

    let refused = qos_install(root.path(), &["--disk", &disk.dev, "--dry-run"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--force"), "{}", text(&refused));

    let planned = qos_install(root.path(), &["--disk", &disk.dev, "--dry-run", "--force"]);
    let out = text(&planned);
    assert_eq!(planned.status.code(), Some(0), "{out}");
    assert!(out.contains("WARNING: everything on"), "{out}");
    assert!(out.contains("systemd-repart"), "{out}");
    assert!(out.contains("Dry run: nothing was changed."), "{out}");

    let json = qos_install(
        root.path(),
        &["--disk", &disk.dev, "--dry-run", "--force", "--json"],
    );
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("the plan as JSON");
    assert_eq!(plan["erases_data"], true);
    assert_eq!(plan["partitions"][0]["format"], "vfat");

    assert_eq!(sha256(&disk.dev), before, "the dry run changed the disk");
}

#[test]
fn wrong_paths_are_refused() {
    let root = empty_root();
    let o = qos_install(
        root.path(),
        &["--disk", "/dev/qos-no-such-disk", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no such device"), "{}", text(&o));
    let file = tempfile::NamedTempFile::new().expect("file");
    let path = file.path().display().to_string();
    let o = qos_install(root.path(), &["--disk", &path, "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a block device"), "{}", text(&o));
    let o = qos_install(root.path(), &["--bogus"]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

#[test]
fn a_disk_too_small_is_refused() {
    let Some(disk) = loop_device(64 * MIB) else {
        return;
    };
    let o = qos_install(
        empty_root().path(),
        &["--disk", &disk.dev, "--dry-run", "--force"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("too small"), "{}", text(&o));
}

#[test]
fn the_live_medium_is_refused_even_with_force() {
    let Some(disk) = loop_device(BIG_ENOUGH) else {
        return;
    };
    // What dracut's dmsquash-live leaves when it booted from this device.
    let root = empty_root();
    let initramfs: PathBuf = root.path().join("run/initramfs");
    std::fs::create_dir_all(&initramfs).expect("mkdir");
    std::os::unix::fs::symlink(&disk.dev, initramfs.join("livedev")).expect("symlink");
    let before = sha256(&disk.dev);
    let o = qos_install(
        root.path(),
        &["--disk", &disk.dev, "--yes", "--force", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("live medium"), "{}", text(&o));
    // Not a dry run either: refused before anything is touched.
    let o = qos_install(root.path(), &["--disk", &disk.dev, "--yes", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("live medium"), "{}", text(&o));
    assert_eq!(sha256(&disk.dev), before);

    // The same device without the marker is accepted (blank, big enough).
    let o = qos_install(empty_root().path(), &["--disk", &disk.dev, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
