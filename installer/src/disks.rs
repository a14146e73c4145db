//! The disks an installation could go to: what `lsblk --json` says about each (size, model,
//! partitions, file systems, mounts), whether it holds data, and whether it holds the live
//! medium we are running from (never offered, never accepted).
//!
//! Everything here reads through a [`SystemView`], so tests can point the live-medium
//! detection at a directory of their own instead of `/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Where the system's files are read: `/` normally, a test's directory otherwise. Only the
/// live-medium markers are read through it (`run/initramfs/livedev`, `proc/self/mountinfo`);
/// devices are always the real ones.
#[derive(Debug, Clone)]
pub struct SystemView {
    pub root: PathBuf,
}

impl Default for SystemView {
    fn default() -> Self {
        SystemView {
            root: PathBuf::from("/"),
        }
    }
}

/// One block device as lsblk reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct LsblkDevice {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub pttype: Option<String>,
    #[serde(default)]
    pub rm: bool,
    #[serde(default)]
    pub ro: bool,
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    #[serde(default)]
    pub children: Vec<LsblkDevice>,
}

#[derive(Debug, Deserialize)]
struct Lsblk {
    blockdevices: Vec<LsblkDevice>,
}

/// What an installation needs to know about a disk.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Disk {
    pub path: String,
    pub name: String,
    pub size_bytes: u64,
    pub model: String,
    pub kind: String,
    pub removable: bool,
    pub read_only: bool,
    /// Partition table type (`gpt`, `dos`) when there is one.
    pub partition_table: Option<String>,
    pub partitions: Vec<String>,
    /// File systems on the disk or its partitions (`btrfs`, `vfat`, `iso9660`…).
    pub filesystems: Vec<String>,
    /// Where the disk or its partitions are mounted.
    pub mounted_at: Vec<String>,
    /// Holds the live medium we are running from.
    pub live_medium: bool,
    /// Not blank: a partition table, a file system, or bytes other than zero at its start.
    pub has_data: bool,
}

pub const LSBLK_COLUMNS: &str = "NAME,PATH,SIZE,TYPE,MODEL,FSTYPE,PTTYPE,RM,RO,MOUNTPOINTS";

/// Parses `lsblk --json --bytes --output LSBLK_COLUMNS` (Debian 12's util-linux 2.38 and
/// newer print sizes as numbers and booleans as booleans with `--bytes`).
pub fn parse_lsblk(json: &str) -> Result<Vec<LsblkDevice>> {
    let parsed: Lsblk = serde_json::from_str(json).context("lsblk printed unreadable JSON")?;
    Ok(parsed.blockdevices)
}

fn collect(dev: &LsblkDevice, fs: &mut Vec<String>, mounts: &mut Vec<String>) {
    if let Some(f) = dev.fstype.as_ref().filter(|f| !f.is_empty()) {
        fs.push(f.clone());
    }
    mounts.extend(dev.mountpoints.iter().flatten().cloned());
    for c in &dev.children {
        collect(c, fs, mounts);
    }
}

/// The names (`sr0`, `vda`, `vda1`, `loop3`) of the devices holding the live medium, read
/// from the markers dracut's dmsquash-live leaves: `/run/initramfs/livedev` (a link to the
/// device) and the mount of `/run/initramfs/live`.
pub fn live_devices(view: &SystemView) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |dev: &str| {
        let path = Path::new(dev);
        // The link may be relative (`../../dev/sr0`) or a udev alias: the device's own name
        // is the last component once resolved.
        let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(n) = resolved.file_name().and_then(|n| n.to_str()) {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
    };
    if let Ok(target) = std::fs::read_link(view.root.join("run/initramfs/livedev")) {
        if let Some(t) = target.to_str() {
            add(t);
        }
    }
    if let Ok(mountinfo) = std::fs::read_to_string(view.root.join("proc/self/mountinfo")) {
        for line in mountinfo.lines() {
            // "36 25 11:0 / /run/initramfs/live ro,relatime shared:17 - iso9660 /dev/sr0 ro"
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let mountpoint = fields.get(4).copied().unwrap_or("");
            if mountpoint == "/run/initramfs/live" {
                if let Some(source) = fields.get(sep + 2) {
                    add(source);
                }
            }
        }
    }
    names
}

fn contains_name(dev: &LsblkDevice, name: &str) -> bool {
    dev.name == name || dev.children.iter().any(|c| contains_name(c, name))
}

/// Whether the first MiB of `path` holds anything but zeros (unreadable counts as data:
/// the safe answer).
pub fn has_leading_data(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return true,
        }
    }
    buf[..filled].iter().any(|&b| b != 0)
}

/// A [`Disk`] from lsblk's view of it and the live devices' names.
pub fn disk_from(dev: &LsblkDevice, live: &[String], leading_data: bool) -> Disk {
    let mut filesystems = Vec::new();
    let mut mounted_at = Vec::new();
    collect(dev, &mut filesystems, &mut mounted_at);
    let partition_table = dev.pttype.clone().filter(|p| !p.is_empty());
    let partitions: Vec<String> = dev
        .children
        .iter()
        .filter(|c| c.kind == "part")
        .map(|c| c.path.clone())
        .collect();
    let has_data = partition_table.is_some()
        || !partitions.is_empty()
        || !filesystems.is_empty()
        || leading_data;
    Disk {
        path: dev.path.clone(),
        name: dev.name.clone(),
        size_bytes: dev.size,
        model: dev.model.clone().unwrap_or_default().trim().to_string(),
        kind: dev.kind.clone(),
        removable: dev.rm,
        read_only: dev.ro,
        partition_table,
        partitions,
        filesystems,
        mounted_at,
        live_medium: live.iter().any(|n| contains_name(dev, n)),
        has_data,
    }
}

fn run_lsblk(args: &[&str]) -> Result<Vec<LsblkDevice>> {
    let out = Command::new("lsblk")
        .args(["--json", "--bytes", "--output", LSBLK_COLUMNS])
        .args(args)
        .output()
        .context("cannot run lsblk (util-linux)")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_lsblk(&String::from_utf8_lossy(&out.stdout))
}

/// Every whole disk of the machine (not partitions, loop devices, RAM disks or zram).
pub fn list(view: &SystemView) -> Result<Vec<Disk>> {
    let live = live_devices(view);
    Ok(run_lsblk(&[])?
        .iter()
        .filter(|d| d.kind == "disk" && !d.name.starts_with("zram") && d.size > 0)
        .map(|d| disk_from(d, &live, has_leading_data(Path::new(&d.path))))
        .collect())
}

/// The disk at `path`, as the user named it: must exist and be a whole disk (or a loop
/// device, which tests and image files use).
pub fn lookup(view: &SystemView, path: &Path) -> Result<Disk> {
    use std::os::unix::fs::FileTypeExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: no such device", path.display()))?;
    if !meta.file_type().is_block_device() {
        bail!(
            "{}: not a block device (give a whole disk such as /dev/vda; see qos-install --list)",
            path.display()
        );
    }
    let path_str = path.to_str().context("the device path is not UTF-8")?;
    let devs = run_lsblk(&[path_str])?;
    let dev = devs
        .first()
        .with_context(|| format!("{}: lsblk does not know it", path.display()))?;
    match dev.kind.as_str() {
        "disk" | "loop" => {}
        "part" => bail!(
            "{}: is a partition; qos-install takes a whole disk (its partitions are replaced)",
            path.display()
        ),
        other => bail!(
            "{}: is a {other} device, not a disk qos-install can partition",
            path.display()
        ),
    }
    Ok(disk_from(dev, &live_devices(view), has_leading_data(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LSBLK: &str = r#"{"blockdevices": [
      {"name":"sr0","path":"/dev/sr0","size":272629760,"type":"rom","model":"QEMU DVD-ROM","fstype":"iso9660","pttype":"gpt","rm":true,"ro":false,"mountpoints":["/run/initramfs/live"]},
      {"name":"vda","path":"/dev/vda","size":8589934592,"type":"disk","model":null,"fstype":null,"pttype":null,"rm":false,"ro":false,"mountpoints":[null]},
      {"name":"sda","path":"/dev/sda","size":32017047552,"type":"disk","model":"Cruzer Blade    ","fstype":"iso9660","pttype":"gpt","rm":true,"ro":false,"mountpoints":[null],
       "children":[{"name":"sda1","path":"/dev/sda1","size":276824064,"type":"part","model":null,"fstype":"iso9660","pttype":"gpt","rm":true,"ro":false,"mountpoints":["/run/initramfs/live"]},
                   {"name":"sda2","path":"/dev/sda2","size":44040192,"type":"part","model":null,"fstype":"vfat","pttype":"gpt","rm":true,"ro":false,"mountpoints":[null]}]}
    ]}"#;

    #[test]
    fn parses_lsblk_and_marks_data_and_the_live_medium() {
        let devs = parse_lsblk(LSBLK).expect("parses");
        let live = vec!["sda1".to_string()];
        let blank = disk_from(&devs[1], &live, false);
        assert!(!blank.has_data && !blank.live_medium);
        assert_eq!(blank.size_bytes, 8 << 30);
        let stick = disk_from(&devs[2], &live, false);
        assert!(stick.has_data && stick.live_medium);
        assert_eq!(stick.model, "Cruzer Blade");
        assert_eq!(stick.partitions, ["/dev/sda1", "/dev/sda2"]);
        assert_eq!(stick.mounted_at, ["/run/initramfs/live"]);
        assert!(disk_from(&devs[1], &live, true).has_data);
    }

    #[test]
    fn live_medium_from_dracut_markers() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("run/initramfs")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("proc/self")).expect("mkdir");
        std::os::unix::fs::symlink(
            "/dev/nonexistent-sr0",
            root.path().join("run/initramfs/livedev"),
        )
        .expect("symlink");
        std::fs::write(
            root.path().join("proc/self/mountinfo"),
            "22 1 0:21 / / rw - overlay LiveOS_rootfs rw\n\
             36 25 8:1 / /run/initramfs/live ro,relatime shared:17 - iso9660 /dev/nonexistent-sda1 ro\n",
        )
        .expect("write");
        let view = SystemView {
            root: root.path().to_path_buf(),
        };
        assert_eq!(live_devices(&view), ["nonexistent-sr0", "nonexistent-sda1"]);
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(
            live_devices(&SystemView {
                root: empty.path().to_path_buf()
            })
            .is_empty()
        );
    }
}
