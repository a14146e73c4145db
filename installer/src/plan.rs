//! The plan: what an installation will do to which disk, decided before anything is
//! touched, with the refusals that protect data (the live medium, mounted disks, disks with
//! data without `--force`, disks too small).

use serde::Serialize;

use crate::disks::Disk;

/// The smallest disk worth installing on: the ESP, the system (≈ 1.5 GiB copied) and room
/// to live in.
pub const MIN_DISK_BYTES: u64 = 4 << 30;
pub const ESP_MIB: u64 = 512;

/// What the user asked for, beyond the disk.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Settings {
    pub hostname: String,
    pub user: String,
    /// Whether a password will be set (the password itself never goes into a plan).
    pub password_set: bool,
    pub timezone: String,
    pub locale: String,
    pub swap_mib: Option<u64>,
    pub force: bool,
    /// [`MIN_DISK_BYTES`] but for tests, which use small loop devices to stay fast.
    #[serde(skip)]
    pub min_disk_bytes: u64,
}

/// What will happen, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub disk: Disk,
    pub erases_data: bool,
    pub partitions: Vec<PlannedPartition>,
    pub subvolumes: Vec<(String, String)>,
    pub settings: Settings,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedPartition {
    pub label: String,
    pub kind: String,
    pub format: String,
    /// `None`: the rest of the disk.
    pub size_mib: Option<u64>,
}

/// Why a disk is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} holds the live medium QuantumOS is running from; choose another disk")]
    LiveMedium(String),
    #[error("{path} is in use (mounted at {mounts}); unmount it first")]
    Mounted { path: String, mounts: String },
    #[error("{0} is read-only")]
    ReadOnly(String),
    #[error("{path} is too small: {size}, QuantumOS needs at least {min}")]
    TooSmall {
        path: String,
        size: String,
        min: String,
    },
    #[error(
        "{path} is not empty ({what}); qos-install erases it only with --force (everything on it is lost)"
    )]
    HasData { path: String, what: String },
}

/// Sizes as a person reads them: `8.0 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// What is on a disk, in words.
pub fn describe_data(d: &Disk) -> String {
    let mut parts = Vec::new();
    if let Some(pt) = &d.partition_table {
        parts.push(format!("{pt} partition table"));
    }
    if !d.partitions.is_empty() {
        parts.push(format!("{} partitions", d.partitions.len()));
    }
    if !d.filesystems.is_empty() {
        parts.push(d.filesystems.join(", "));
    }
    if parts.is_empty() && d.has_data {
        parts.push("data in its first MiB".into());
    }
    parts.join("; ")
}

/// Whether `disk` can take an installation with `settings`; the first refusal otherwise.
pub fn check(disk: &Disk, settings: &Settings) -> Result<(), Refusal> {
    if disk.live_medium {
        return Err(Refusal::LiveMedium(disk.path.clone()));
    }
    if !disk.mounted_at.is_empty() {
        return Err(Refusal::Mounted {
            path: disk.path.clone(),
            mounts: disk.mounted_at.join(", "),
        });
    }
    if disk.read_only {
        return Err(Refusal::ReadOnly(disk.path.clone()));
    }
    let min = settings.min_disk_bytes + settings.swap_mib.unwrap_or(0) * (1 << 20);
    if disk.size_bytes < min {
        return Err(Refusal::TooSmall {
            path: disk.path.clone(),
            size: human(disk.size_bytes),
            min: human(min),
        });
    }
    if disk.has_data && !settings.force {
        return Err(Refusal::HasData {
            path: disk.path.clone(),
            what: describe_data(disk),
        });
    }
    Ok(())
}

/// The plan for `disk`, once [`check`] accepted it.
pub fn make(disk: Disk, settings: Settings) -> Plan {
    let mut partitions = vec![PlannedPartition {
        label: "ESP".into(),
        kind: "esp".into(),
        format: "vfat".into(),
        size_mib: Some(ESP_MIB),
    }];
    if let Some(mib) = settings.swap_mib {
        partitions.push(PlannedPartition {
            label: "swap".into(),
            kind: "swap".into(),
            format: "swap".into(),
            size_mib: Some(mib),
        });
    }
    partitions.push(PlannedPartition {
        label: "quantumos".into(),
        kind: "root".into(),
        format: "btrfs".into(),
        size_mib: None,
    });
    let steps = vec![
        format!(
            "partition {} with systemd-repart ({}): {}",
            disk.path,
            if disk.has_data {
                "erasing what is on it"
            } else {
                "blank disk"
            },
            partitions
                .iter()
                .map(|p| format!(
                    "{} {} {}",
                    p.label,
                    p.format,
                    p.size_mib
                        .map(|m| human(m << 20))
                        .unwrap_or_else(|| "rest of the disk".into())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "create Btrfs subvolumes @ (mounted at /) and @home (mounted at /home)".into(),
        "copy the live system's read-only image (not the live session's changes)".into(),
        "write fstab, hostname, locale, timezone; new machine-id; remove the live session's autologin".into(),
        format!(
            "create user {}{}",
            settings.user,
            if settings.password_set {
                " with the given password"
            } else {
                " with a locked password (set one with passwd)"
            }
        ),
        "install systemd-boot and a unified kernel image for the disk (kernel, initrd, root=UUID) in the ESP".into(),
        "keep the log in /var/log/qos-install.log on the installed system".into(),
    ];
    Plan {
        erases_data: disk.has_data,
        disk,
        partitions,
        subvolumes: vec![("@".into(), "/".into()), ("@home".into(), "/home".into())],
        settings,
        steps,
    }
}

impl Plan {
    /// The plan as the user sees it before confirming.
    pub fn render(&self) -> String {
        let d = &self.disk;
        let mut s = format!(
            "Install QuantumOS on {} ({}{}{})\n",
            d.path,
            human(d.size_bytes),
            if d.model.is_empty() {
                String::new()
            } else {
                format!(", {}", d.model)
            },
            if d.removable { ", removable" } else { "" }
        );
        if self.erases_data {
            s.push_str(&format!(
                "  WARNING: everything on {} is erased ({})\n",
                d.path,
                describe_data(d)
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("  {}. {step}\n", i + 1));
        }
        let st = &self.settings;
        s.push_str(&format!(
            "  hostname {}, user {}, timezone {}, locale {}\n",
            st.hostname, st.user, st.timezone, st.locale
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(size: u64) -> Disk {
        Disk {
            path: "/dev/vda".into(),
            name: "vda".into(),
            size_bytes: size,
            model: String::new(),
            kind: "disk".into(),
            removable: false,
            read_only: false,
            partition_table: None,
            partitions: vec![],
            filesystems: vec![],
            mounted_at: vec![],
            live_medium: false,
            has_data: false,
        }
    }

    fn settings() -> Settings {
        Settings {
            hostname: "quantumos".into(),
            user: "quantum".into(),
            password_set: false,
            timezone: "UTC".into(),
            locale: "C.UTF-8".into(),
            swap_mib: None,
            force: false,
            min_disk_bytes: MIN_DISK_BYTES,
        }
    }

    #[test]
    fn refusals() {
        assert!(check(&disk(8 << 30), &settings()).is_ok());
        assert!(matches!(
            check(&disk(64 << 20), &settings()),
            Err(Refusal::TooSmall { .. })
        ));
        let mut swap = settings();
        swap.swap_mib = Some(8192);
        assert!(matches!(
            check(&disk(8 << 30), &swap),
            Err(Refusal::TooSmall { .. })
        ));
        let mut live = disk(8 << 30);
        live.live_medium = true;
        let mut force = settings();
        force.force = true;
        // --force never makes the live medium acceptable.
        assert!(matches!(check(&live, &force), Err(Refusal::LiveMedium(_))));
        let mut used = disk(8 << 30);
        used.has_data = true;
        used.partition_table = Some("gpt".into());
        let e = check(&used, &settings()).expect_err("refused");
        assert!(e.to_string().contains("--force"), "{e}");
        assert!(check(&used, &force).is_ok());
        used.mounted_at = vec!["/home".into()];
        assert!(matches!(check(&used, &force), Err(Refusal::Mounted { .. })));
    }

    #[test]
    fn plan_names_what_it_erases() {
        let mut d = disk(8 << 30);
        d.has_data = true;
        d.filesystems = vec!["ext4".into()];
        let mut s = settings();
        s.swap_mib = Some(1024);
        let p = make(d, s);
        let text = p.render();
        assert!(
            text.contains("WARNING: everything on /dev/vda is erased (ext4)"),
            "{text}"
        );
        assert_eq!(p.partitions.len(), 3);
        assert!(text.contains("swap swap 1.0 GiB"), "{text}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(8 << 30), "8.0 GiB");
    }
}
