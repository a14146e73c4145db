//! Storage: mounted file systems from /proc/self/mountinfo (which mounts exist, their source,
//! type and read-only state) with sizes from statvfs(3), and block devices from
//! /sys/class/block (kind, size, model, serial, rotational, removable, parent). Pseudo file
//! systems (proc, sysfs, cgroup, …) are not storage and are left out.
//!
//! The daemon sees the mounts through its unit's sandbox, which adds mounts of its own and
//! makes every mount read-only (`ProtectSystem=strict`). So the read-only state is the file
//! system's (its superblock options), not the mount's, and the sandbox's placeholders are
//! left out; see [`MountEntry::read_only`] and [`is_storage`].

use std::fs;
use std::path::Path;

use steppps::api::space::{BlockDevice, Filesystem};

use super::{dir_entries, read_attr, read_flag, read_parsed};

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    /// `major:minor` of the file system: the same for every mount of one file system.
    pub device_number: String,
    /// The directory of that file system seen at the mount point: `/` for an ordinary
    /// mount, a sub-directory for a bind mount or a btrfs subvolume (`/@home`).
    pub root: String,
    pub source: String,
    pub fs_type: String,
    /// The file system is read-only: `ro` in its superblock options (a CD, a read-only
    /// image, a disk mounted `-o ro`). The per-mount flag is not used: under the daemon's
    /// sandbox every mount carries it. The price: a read-only bind mount of a writable file
    /// system shows as writable.
    pub read_only: bool,
}

/// Parses /proc/self/mountinfo (proc(5)): `id parent major:minor root mount-point options
/// [optional fields…] - fstype source super-options`. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let mut before = before.split(' ');
    let device_number = before.nth(2)?;
    let root = before.next()?;
    let mount_point = before.next()?;
    // The per-mount options: present, but see `read_only`.
    before.next()?;
    let mut after = after.split(' ');
    let fs_type = after.next()?;
    let source = after.next()?;
    let super_options = after.next().unwrap_or_default();
    Some(MountEntry {
        mount_point: unescape_octal(mount_point),
        device_number: device_number.to_owned(),
        root: unescape_octal(root),
        source: unescape_octal(source),
        fs_type: fs_type.to_owned(),
        read_only: super_options.split(',').any(|option| option == "ro"),
    })
}

/// The kernel writes space, tab, newline and backslash in mount paths as `\040`, `\011`,
/// `\012` and `\134`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes.get(index + 1..index + 4).filter(|digits| {
            bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// File system types that describe kernel state, not stored data.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
    // Read-only images mounted by snapd by the dozen; listing them drowns the real disks.
    "squashfs",
];

/// Where systemd keeps the empty directory and file it mounts over what a sandbox hides
/// (`ProtectHome=yes` over /home, `ProtectKernelModules=` over /usr/lib/modules): as a
/// mount's root, relative to /run.
const SANDBOX_PLACEHOLDERS: &str = "/systemd/inaccessible/";

/// Whether a mount holds stored data worth listing. tmpfs counts (a live image's root and
/// /tmp are tmpfs) except the runtime ones under /dev and /run that every system has. A
/// sandbox's placeholder hides a directory; it holds nothing.
pub fn is_storage(mount: &MountEntry) -> bool {
    let under = |prefix: &str| {
        mount.mount_point == prefix || mount.mount_point.starts_with(&format!("{prefix}/"))
    };
    if PSEUDO_FILESYSTEMS.contains(&mount.fs_type.as_str()) || mount.fs_type.starts_with("fuse.") {
        return false;
    }
    if under("/proc") || under("/sys") || mount.root.starts_with(SANDBOX_PLACEHOLDERS) {
        return false;
    }
    !(mount.fs_type == "tmpfs" && (under("/dev") || under("/run")))
}

/// Space on a mounted file system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountSize {
    pub total_bytes: u64,
    /// What an unprivileged user can still write (df's "Avail").
    pub available_bytes: u64,
}

/// statvfs(3) of a mount point, as df(1) counts it; `None` when it fails.
pub fn measure(mount_point: &str) -> Option<MountSize> {
    let stat = nix::sys::statvfs::statvfs(mount_point).ok()?;
    let fragment = stat.fragment_size();
    Some(MountSize {
        total_bytes: stat.blocks().saturating_mul(fragment),
        available_bytes: stat.blocks_available().saturating_mul(fragment),
    })
}

/// The storage file systems among `mounts`, in mount order, with their sizes from `measure`
/// (0 where it gives none). When a mount point is mounted over, only the last (visible)
/// mount is kept, and a mount hidden under a sandbox's placeholder is not listed at all. A
/// file system mounted more than once is listed once, like df(1) does: bind mounts of a
/// directory (`ip netns` binds /run/netns) would otherwise count the same disk twice.
pub fn filesystems(
    mounts: &[MountEntry],
    measure: impl Fn(&str) -> Option<MountSize>,
) -> Vec<Filesystem> {
    let storage: Vec<&MountEntry> = mounts
        .iter()
        .enumerate()
        .filter(|(index, mount)| {
            !mounts[index + 1..]
                .iter()
                .any(|later| later.mount_point == mount.mount_point)
        })
        .map(|(_, mount)| mount)
        .filter(|mount| is_storage(mount))
        .collect();
    storage
        .iter()
        .enumerate()
        .filter(|(index, mount)| !shows_part_of_another(&storage, *index, mount))
        .map(|(_, mount)| {
            let size = measure(&mount.mount_point).unwrap_or_default();
            Filesystem {
                mount_point: mount.mount_point.clone(),
                device: mount.source.clone(),
                fs_type: mount.fs_type.clone(),
                total_bytes: size.total_bytes,
                available_bytes: size.available_bytes,
                read_only: mount.read_only,
            }
        })
        .collect()
}

/// Whether `mount` shows the same file system as another listed mount whose root contains
/// its own (a bind of a sub-directory), or the same root mounted earlier. The mount at `/` is
/// always kept: it is the one people look for. btrfs subvolumes (`/@`, `/@home`) do not
/// contain each other and are all kept.
fn shows_part_of_another(storage: &[&MountEntry], index: usize, mount: &MountEntry) -> bool {
    if mount.mount_point == "/" {
        return false;
    }
    storage.iter().enumerate().any(|(other_index, other)| {
        if other_index == index || other.device_number != mount.device_number {
            return false;
        }
        let same_root = other.root == mount.root;
        let other_contains_mine = !same_root
            && (other.root == "/"
                || mount
                    .root
                    .strip_prefix(other.root.as_str())
                    .is_some_and(|rest| rest.starts_with('/')));
        // Of two mounts of the same directory, the one at / or else the earlier one stays.
        let other_is_preferred_twin =
            same_root && (other.mount_point == "/" || other_index < index);
        other_contains_mine || other_is_preferred_twin
    })
}

/// The block size sysfs counts `size` in, whatever the device's logical block size.
const SECTOR_BYTES: u64 = 512;

/// Block devices listed in `class_dir` (`/sys/class/block`), sorted by name. Unattached loop
/// devices (size 0) are left out: they are placeholders the kernel keeps ready, not storage.
pub fn block_devices(class_dir: &Path) -> Vec<BlockDevice> {
    dir_entries(class_dir)
        .into_iter()
        .map(|(name, dir)| block_device(name, &dir))
        .filter(|device| !(device.kind == "loop" && device.size_bytes == 0))
        .collect()
}

fn block_device(name: String, dir: &Path) -> BlockDevice {
    // The class entry is a symlink into /sys/devices; its target tells a partition's disk
    // (the directory above it) and whether the device is virtual.
    let real_dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let is_partition = dir.join("partition").exists();
    let parent_dir = real_dir.parent().filter(|_| is_partition);
    let parent = parent_dir
        .and_then(Path::file_name)
        .map(|parent| parent.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Partitions have no queue/ or removable of their own; they share their disk's.
    let disk_dir = parent_dir.unwrap_or(dir);
    let device_dir = disk_dir.join("device");

    let kind = if is_partition {
        "partition"
    } else if name.starts_with("loop") {
        "loop"
    } else if name.starts_with("sr") || read_attr(&device_dir, "type").as_deref() == Some("5") {
        // SCSI peripheral type 5 is a CD/DVD drive.
        "rom"
    } else if real_dir
        .to_string_lossy()
        .contains("/devices/virtual/block/")
    {
        "virtual"
    } else {
        "disk"
    };
    BlockDevice {
        kind: kind.to_owned(),
        size_bytes: read_parsed::<u64>(dir, "size").map_or(0, |sectors| sectors * SECTOR_BYTES),
        model: read_attr(&device_dir, "model")
            .or_else(|| read_attr(disk_dir, "model"))
            .unwrap_or_default(),
        serial: ["serial", "wwid"]
            .iter()
            .find_map(|attr| read_attr(&device_dir, attr).or_else(|| read_attr(disk_dir, attr)))
            .unwrap_or_default(),
        rotational: read_flag(&disk_dir.join("queue"), "rotational"),
        removable: read_flag(disk_dir, "removable"),
        read_only: read_flag(dir, "ro"),
        parent,
        name,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A Debian laptop's mountinfo (trimmed), with an escaped space and a stacked mount.
    const MOUNTINFO: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8040132k,nr_inodes=2010033,mode=755
26 24 0:23 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,inode64
27 28 0:25 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1612184k,mode=755
28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
45 28 259:1 / /boot/efi rw,relatime shared:31 - vfat /dev/nvme0n1p1 rw,fmask=0077,dmask=0077
46 28 0:40 / /tmp rw,nosuid,nodev shared:32 - tmpfs tmpfs rw,nr_inodes=1048576,inode64
50 28 259:3 / /srv/My\\040Data ro,relatime shared:33 - btrfs /dev/nvme0n1p3 rw,ssd,subvol=/
51 28 7:0 / /mnt/image rw,relatime shared:34 - ext4 /dev/loop0 ro
52 28 7:1 / /mnt/image rw,relatime shared:35 - xfs /dev/loop1 rw
53 28 259:2 /srv/exports /export rw,relatime shared:36 - ext4 /dev/nvme0n1p2 rw
54 28 259:2 / /mnt/again rw,relatime shared:37 - ext4 /dev/nvme0n1p2 rw
55 28 0:60 /@ /mnt/pool rw,relatime shared:38 - btrfs /dev/sdb2 rw,subvol=/@
56 28 0:60 /@home /mnt/pool-home rw,relatime shared:39 - btrfs /dev/sdb2 rw,subvol=/@home
57 28 0:60 /@home/alice /mnt/alice rw,relatime shared:40 - btrfs /dev/sdb2 rw,subvol=/@home
60 27 0:50 / /run/user/1000 rw,nosuid,nodev,relatime shared:40 - tmpfs tmpfs rw,size=1612180k,mode=700,uid=1000,gid=1000
61 60 0:51 / /run/user/1000/gvfs rw,nosuid,nodev,relatime shared:41 - fuse.gvfsd-fuse gvfsd-fuse rw,user_id=1000
broken line
";

    #[test]
    fn mountinfo_parses_fields_escapes_and_read_only() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 19);
        let data = mounts
            .iter()
            .find(|m| m.source == "/dev/nvme0n1p3")
            .unwrap();
        assert_eq!(data.mount_point, "/srv/My Data");
        assert_eq!(data.fs_type, "btrfs");
        assert!(
            !data.read_only,
            "ro only in the per-mount options: the sandbox's, as far as the daemon can tell"
        );
        let image = mounts.iter().find(|m| m.source == "/dev/loop0").unwrap();
        assert!(image.read_only, "ro in the superblock options");
        let root = mounts.iter().find(|m| m.mount_point == "/").unwrap();
        assert!(!root.read_only, "errors=remount-ro is not ro");
        assert_eq!(
            (root.device_number.as_str(), root.root.as_str()),
            ("259:2", "/")
        );
    }

    #[test]
    fn filesystems_are_storage_only_and_visible_only() {
        let measure = |mount_point: &str| {
            (mount_point == "/").then_some(MountSize {
                total_bytes: 500_000_000_000,
                available_bytes: 200_000_000_000,
            })
        };
        let filesystems = filesystems(&parse_mountinfo(MOUNTINFO), measure);
        let points: Vec<&str> = filesystems.iter().map(|f| f.mount_point.as_str()).collect();
        // /export and /mnt/again show the root file system again, /mnt/alice a part of the
        // /@home subvolume; the two subvolumes themselves are distinct.
        assert_eq!(
            points,
            [
                "/",
                "/boot/efi",
                "/tmp",
                "/srv/My Data",
                "/mnt/image",
                "/mnt/pool",
                "/mnt/pool-home",
            ]
        );
        assert_eq!(filesystems[0].device, "/dev/nvme0n1p2");
        assert_eq!(filesystems[0].fs_type, "ext4");
        assert_eq!(filesystems[0].total_bytes, 500_000_000_000);
        assert_eq!(filesystems[0].available_bytes, 200_000_000_000);
        assert_eq!(filesystems[1].total_bytes, 0, "not measured");
        // /mnt/image shows the xfs mounted over the ext4.
        assert_eq!(filesystems[4].fs_type, "xfs");
        assert!(!filesystems[4].read_only);
    }

    /// steppps-spaced's own /proc/self/mountinfo in the booted live ISO (trimmed), under its
    /// shipped sandbox: ProtectSystem=strict made every mount `ro`, ProtectHome=yes mounted
    /// systemd's empty directory over /home and /root, PrivateTmp bound a directory of the
    /// host's /tmp and /var/tmp. `qos-ctl space disks` listed / as read-only and a /home that
    /// is not there.
    const SANDBOXED_LIVE_MOUNTINFO: &str = "\
480 289 0:32 / / ro,nosuid,relatime shared:320 master:1 - overlay LiveOS_rootfs rw,lowerdir=/run/rootfsbase,upperdir=/run/overlayfs,workdir=/run/ovlwork,uuid=on
492 480 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:346 master:5 - sysfs sysfs rw
505 480 0:26 / /run rw,nosuid,nodev shared:357 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
506 505 11:0 / /run/initramfs/live ro,nosuid,relatime shared:358 master:14 - iso9660 /dev/sr0 ro,nojoliet,check=s,map=n,blocksize=2048,iocharset=utf8
507 505 7:0 / /run/rootfsbase ro,nosuid,relatime shared:359 master:15 - squashfs /dev/loop0 ro,errors=continue
512 480 0:37 / /tmp rw,nosuid,nodev shared:364 master:21 - tmpfs tmpfs rw,nr_inodes=1048576,inode64
513 480 0:65 / /dev ro,nosuid,noexec shared:366 - tmpfs tmpfs rw,size=4096k,nr_inodes=65536,mode=755,inode64
242 480 0:26 /systemd/inaccessible/dir /home ro,nosuid,nodev,noexec shared:371 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
578 480 0:68 / /proc rw,nosuid,nodev,noexec,relatime shared:372 - proc proc rw,hidepid=invisible
585 578 0:26 /systemd/inaccessible/reg /proc/kallsyms ro,nosuid,nodev,noexec shared:378 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
594 480 0:26 /systemd/inaccessible/dir /root ro,nosuid,nodev,noexec shared:385 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
376 505 0:26 /systemd/inaccessible/dir /run/user ro,nosuid,nodev,noexec shared:363 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
378 512 0:37 /systemd-private-1d9a31af9f9041c7afb1f0c754be4e23-steppps-space.service-rsqrcC/tmp /tmp rw,nosuid,nodev shared:365 master:21 - tmpfs tmpfs rw,nr_inodes=1048576,inode64
379 480 0:26 /systemd/inaccessible/dir /usr/lib/modules ro,nosuid,nodev,noexec shared:386 master:12 - tmpfs tmpfs rw,size=402500k,nr_inodes=819200,mode=755,inode64
380 480 0:32 /var/tmp/systemd-private-1d9a31af9f9041c7afb1f0c754be4e23-steppps-space.service-KlWeBi/tmp /var/tmp rw,nosuid,relatime shared:387 master:1 - overlay LiveOS_rootfs rw,lowerdir=/run/rootfsbase,upperdir=/run/overlayfs,workdir=/run/ovlwork,uuid=on
130 505 0:79 / /run/user/1000 rw,nosuid,nodev,relatime shared:550 master:546 - tmpfs tmpfs rw,size=201248k,mode=700,uid=1000,gid=1000,inode64
";

    /// What the host has, not what the sandbox adds: the writable overlay root, the
    /// read-only CD it came from, /tmp. No /home, /root or /usr/lib/modules, and a
    /// file system hidden under a placeholder (a real /home mount) is not shown either, as
    /// its size could not be measured through the placeholder.
    #[test]
    fn the_sandbox_neither_adds_mounts_nor_makes_them_read_only() {
        let listed = filesystems(&parse_mountinfo(SANDBOXED_LIVE_MOUNTINFO), |_| None);
        let shown: Vec<(&str, &str, bool)> = listed
            .iter()
            .map(|f| (f.mount_point.as_str(), f.fs_type.as_str(), f.read_only))
            .collect();
        assert_eq!(
            shown,
            [
                ("/", "overlay", false),
                ("/run/initramfs/live", "iso9660", true),
                ("/tmp", "tmpfs", false),
            ]
        );

        let with_home = format!(
            "{SANDBOXED_LIVE_MOUNTINFO}\
600 480 0:60 /@home /home rw,relatime shared:40 master:30 - btrfs /dev/vda2 rw,subvol=/@home
601 480 0:26 /systemd/inaccessible/dir /home ro,nosuid,nodev,noexec shared:371 master:12 - tmpfs tmpfs rw,size=402500k
"
        );
        let listed = filesystems(&parse_mountinfo(&with_home), |_| None);
        assert!(
            listed.iter().all(|f| f.mount_point != "/home"),
            "{listed:?}"
        );
    }

    #[test]
    fn measure_reads_the_file_system_of_a_path() {
        let root = measure("/").unwrap();
        assert!(root.total_bytes > 0);
        assert!(root.available_bytes <= root.total_bytes);
        assert_eq!(measure("/no/such/mount/point"), None);
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// /sys/class/block with symlinks into /sys/devices, as the kernel lays it out.
    fn block_fixture(root: &Path) -> std::path::PathBuf {
        let devices = root.join("devices");
        let class = root.join("class/block");
        fs::create_dir_all(&class).unwrap();

        let sda = devices.join("pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda");
        write(&sda.join("size"), "976773168\n");
        write(&sda.join("ro"), "0\n");
        write(&sda.join("removable"), "0\n");
        write(&sda.join("queue/rotational"), "1\n");
        write(&sda.join("device/model"), "WDC WD5000LPCX-2\n");
        write(&sda.join("device/type"), "0\n");
        write(
            &sda.join("device/wwid"),
            "t10.ATA     WDC WD5000LPCX-24VHAT0  WD-WXA1A65K1234\n",
        );
        write(&sda.join("sda1/partition"), "1\n");
        write(&sda.join("sda1/size"), "1048576\n");
        write(&sda.join("sda1/ro"), "0\n");
        symlink(&sda, class.join("sda")).unwrap();
        symlink(sda.join("sda1"), class.join("sda1")).unwrap();

        let nvme = devices.join("pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1");
        write(&nvme.join("size"), "1000215216\n");
        write(&nvme.join("queue/rotational"), "0\n");
        write(&nvme.join("removable"), "0\n");
        write(
            &nvme.join("device/model"),
            "Samsung SSD 980 PRO 1TB                 \n",
        );
        write(&nvme.join("device/serial"), "S5GXNF0R123456A     \n");
        symlink(&nvme, class.join("nvme0n1")).unwrap();

        let sr0 = devices.join("pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sr0");
        write(&sr0.join("size"), "0\n");
        write(&sr0.join("removable"), "1\n");
        write(&sr0.join("ro"), "0\n");
        write(&sr0.join("device/type"), "5\n");
        symlink(&sr0, class.join("sr0")).unwrap();

        let loop0 = devices.join("virtual/block/loop0");
        write(&loop0.join("size"), "131072\n");
        write(&loop0.join("ro"), "1\n");
        symlink(&loop0, class.join("loop0")).unwrap();
        let loop1 = devices.join("virtual/block/loop1");
        write(&loop1.join("size"), "0\n");
        symlink(&loop1, class.join("loop1")).unwrap();

        let zram = devices.join("virtual/block/zram0");
        write(&zram.join("size"), "garbage\n");
        symlink(&zram, class.join("zram0")).unwrap();
        class
    }

    #[test]
    fn block_devices_from_fixture_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let devices = block_devices(&block_fixture(root.path()));
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["loop0", "nvme0n1", "sda", "sda1", "sr0", "zram0"]);

        let sda = &devices[2];
        assert_eq!(sda.kind, "disk");
        assert_eq!(sda.size_bytes, 976_773_168 * 512);
        assert_eq!(sda.model, "WDC WD5000LPCX-2");
        assert_eq!(
            sda.serial,
            "t10.ATA     WDC WD5000LPCX-24VHAT0  WD-WXA1A65K1234"
        );
        assert!(sda.rotational && !sda.removable && !sda.read_only);
        assert_eq!(sda.parent, "");

        let sda1 = &devices[3];
        assert_eq!(sda1.kind, "partition");
        assert_eq!(sda1.parent, "sda");
        assert_eq!(sda1.size_bytes, 512 << 20);
        assert!(sda1.rotational, "a partition shares its disk's queue");
        assert_eq!(sda1.model, "WDC WD5000LPCX-2");

        let nvme = &devices[1];
        assert_eq!(nvme.model, "Samsung SSD 980 PRO 1TB");
        assert_eq!(nvme.serial, "S5GXNF0R123456A");
        assert!(!nvme.rotational);

        assert_eq!(devices[0].kind, "loop");
        assert!(devices[0].read_only);
        assert_eq!(devices[4].kind, "rom");
        assert!(devices[4].removable);
        assert_eq!(devices[5].kind, "virtual");
        assert_eq!(devices[5].size_bytes, 0, "unparsable size is unknown");
    }

    #[test]
    fn live_storage_lists_the_root_file_system() {
        let storage = crate::inventory::Collector::new().storage();
        let root = storage
            .filesystems
            .iter()
            .find(|fs| fs.mount_point == "/")
            .unwrap();
        assert!(root.total_bytes > 0);
        assert!(storage.filesystems.iter().all(|fs| fs.fs_type != "proc"));
        let sysfs_names = dir_entries(Path::new("/sys/class/block"));
        for device in &storage.block_devices {
            assert!(sysfs_names.iter().any(|(name, _)| *name == device.name));
        }
    }
}
