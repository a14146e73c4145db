//! Carrying out a [`Plan`]: systemd-repart, Btrfs subvolumes, the copy of the live system,
//! the installed system's identity, the boot loader. Each step is logged (to the terminal
//! and to a log that ends up in `/var/log/qos-install.log` on the installed system).
//!
//! The copy comes from the live system's read-only image (`/run/rootfsbase`, where
//! dmsquash-live mounts the squashfs under its overlay), so the live session's own changes
//! (logs, the autologin user's files) stay behind.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::copy::{ProgressLine, copy_with_progress};
use crate::plan::Plan;

/// Where the live system's read-only image is mounted.
pub const LIVE_IMAGE: &str = "/run/rootfsbase";
/// The systemd-repart definitions shipped in the image (recipes/quantumos/).
pub const REPART_DIR: &str = "/usr/lib/quantumos/repart.d";

#[derive(Debug)]
pub struct Options {
    pub source: PathBuf,
    pub repart_dir: PathBuf,
    pub password: Option<String>,
    pub quiet: bool,
}

#[derive(Debug, Default)]
struct Log {
    text: String,
    quiet: bool,
}

impl Log {
    fn say(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
        let _ = writeln!(self.text, "{line}");
    }
}

fn run(log: &mut Log, cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    log.say(&format!("  $ {shown}"));
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for l in stderr.lines().take(50) {
        log.say(&format!("    {l}"));
    }
    if !out.status.success() {
        bail!("{shown} failed ({}): {}", out.status, stderr.trim());
    }
    Ok(stdout)
}

/// `cp --archive` of the live system with a progress bar (a line every 10 % when stderr is
/// not a terminal: the journal of a unit, a pipe).
fn copy_system(log: &mut Log, entries: &[PathBuf], target: &Path) -> Result<u64> {
    let shown = format!(
        "cp --archive --one-file-system --sparse=always --verbose {} {}",
        entries
            .iter()
            .map(|e| e.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        target.display()
    );
    log.say(&format!("  $ {shown}"));
    let terminal = !log.quiet && std::io::stderr().is_terminal();
    let mut line = ProgressLine::new(terminal);
    let quiet = log.quiet;
    let copied = copy_with_progress(entries, target, |copied, total| {
        if let Some(text) = line.update(copied, total) {
            if terminal {
                eprint!("{text}");
            } else if !quiet {
                eprintln!("{text}");
            }
        }
    });
    if terminal {
        eprintln!();
    }
    copied
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The partitions systemd-repart made, by label.
fn partition_by_label(log: &mut Log, disk: &str, label: &str) -> Result<String> {
    let out = run(
        log,
        Command::new("lsblk").args(["--list", "--noheadings", "--output", "PATH,PARTLABEL", disk]),
    )?;
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(_, l)| l.trim() == label)
        .map(|(p, _)| p.trim().to_string())
        .with_context(|| format!("systemd-repart made no partition labelled {label} on {disk}"))
}

fn uuid(log: &mut Log, dev: &str) -> Result<String> {
    let out = run(
        log,
        Command::new("blkid").args(["-s", "UUID", "-o", "value", dev]),
    )?;
    let u = out.trim().to_string();
    if u.is_empty() {
        bail!("{dev} has no file system UUID");
    }
    Ok(u)
}

/// Installs. On failure the target stays unmounted and the error says which step failed.
pub fn install(plan: &Plan, opts: &Options) -> Result<()> {
    let mut log = Log {
        quiet: opts.quiet,
        ..Log::default()
    };
    let target = PathBuf::from("/run/qos-install/target");
    let result = steps(plan, opts, &mut log, &target);
    // Unmount whatever is mounted, innermost first, even after a failure.
    unmount_tree(&target);
    result
}

/// `umount --recursive`, and when something below is still busy, detach it lazily so that no
/// mount is left behind (the kernel finishes once the last user lets go).
fn unmount_tree(path: &Path) {
    let unmounted = Command::new("umount")
        .arg("--recursive")
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !unmounted {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(path)
            .status();
    }
}

fn steps(plan: &Plan, opts: &Options, log: &mut Log, target: &Path) -> Result<()> {
    let disk = plan.disk.path.as_str();
    let total = 7;
    let step = |log: &mut Log, n: usize, what: &str| log.say(&format!("[{n}/{total}] {what}"));

    if !opts.source.join("usr/lib/os-release").exists() {
        bail!(
            "{} is not a system image (no usr/lib/os-release): run qos-install from the live system",
            opts.source.display()
        );
    }

    step(log, 1, &format!("partitioning {disk}"));
    let defs = tempdir_for_repart(plan, &opts.repart_dir)?;
    run(
        log,
        Command::new("systemd-repart")
            .arg("--dry-run=no")
            .arg(if plan.settings.force {
                "--empty=force"
            } else {
                "--empty=require"
            })
            .arg(format!("--definitions={}", defs.display()))
            .arg("--no-pager")
            .arg(disk),
    )?;
    let _ = std::fs::remove_dir_all(&defs);
    run(
        log,
        Command::new("udevadm").args(["settle", "--timeout=30"]),
    )?;
    let esp = partition_by_label(log, disk, "ESP")?;
    let root = partition_by_label(log, disk, "quantumos")?;
    let swap = if plan.settings.swap_mib.is_some() {
        Some(partition_by_label(log, disk, "swap")?)
    } else {
        None
    };

    step(log, 2, "creating Btrfs subvolumes @ and @home");
    std::fs::create_dir_all(target)?;
    run(log, Command::new("mount").arg(&root).arg(target))?;
    run(
        log,
        Command::new("btrfs")
            .args(["subvolume", "create"])
            .arg(target.join("@")),
    )?;
    run(
        log,
        Command::new("btrfs")
            .args(["subvolume", "create"])
            .arg(target.join("@home")),
    )?;
    run(log, Command::new("umount").arg(target))?;
    run(
        log,
        Command::new("mount")
            .args(["-o", "subvol=@,compress=zstd:1"])
            .arg(&root)
            .arg(target),
    )?;
    for (sub, dir) in [("@home", "home"), ("", "boot")] {
        std::fs::create_dir_all(target.join(dir))?;
        if !sub.is_empty() {
            run(
                log,
                Command::new("mount")
                    .args(["-o", &format!("subvol={sub},compress=zstd:1")])
                    .arg(&root)
                    .arg(target.join(dir)),
            )?;
        }
    }

    step(
        log,
        3,
        &format!("copying the system from {}", opts.source.display()),
    );
    // /boot stays out: the ESP is mounted there and gets the boot loader and the UKI below.
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&opts.source)
        .with_context(|| format!("cannot read {}", opts.source.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "boot" && n != "home"))
        .collect();
    entries.sort();
    let copied = copy_system(log, &entries, target)?;
    log.say(&format!("  copied {copied} entries"));
    if opts.source.join("home").is_dir() {
        run(
            log,
            Command::new("cp")
                .args(["--archive", "--one-file-system", "--no-target-directory"])
                .arg(opts.source.join("home"))
                .arg(target.join("home")),
        )?;
    }
    run(
        log,
        Command::new("mount").arg(&esp).arg(target.join("boot")),
    )?;

    step(log, 4, "writing the installed system's settings");
    let s = &plan.settings;
    let root_uuid = uuid(log, &root)?;
    let esp_uuid = uuid(log, &esp)?;
    let mut fstab = format!(
        "# Written by qos-install.\n\
         UUID={root_uuid} /     btrfs subvol=@,compress=zstd:1     0 0\n\
         UUID={root_uuid} /home btrfs subvol=@home,compress=zstd:1 0 0\n\
         UUID={esp_uuid} /boot vfat  umask=0077,shortname=winnt   0 2\n"
    );
    if let Some(swap) = &swap {
        fstab.push_str(&format!(
            "UUID={} none  swap  defaults 0 0\n",
            uuid(log, swap)?
        ));
    }
    write(&target.join("etc/fstab"), &fstab)?;
    write(&target.join("etc/hostname"), &format!("{}\n", s.hostname))?;
    write(
        &target.join("etc/locale.conf"),
        &format!("LANG={}\n", s.locale),
    )?;
    let localtime = target.join("etc/localtime");
    let _ = std::fs::remove_file(&localtime);
    std::os::unix::fs::symlink(format!("../usr/share/zoneinfo/{}", s.timezone), &localtime)
        .context("cannot set the timezone")?;
    // A new identity: systemd generates the machine-id at first boot from "uninitialized".
    write(&target.join("etc/machine-id"), "uninitialized\n")?;
    let _ = std::fs::remove_file(target.join("var/lib/systemd/random-seed"));
    // The live session's conveniences do not belong on an installed system.
    for live_only in [
        "etc/sudoers.d/quantum-live",
        "etc/polkit-1/rules.d/50-quantumos-live.rules",
        "usr/lib/systemd/system/getty@tty1.service.d/autologin.conf",
        "usr/lib/systemd/system/serial-getty@.service.d/autologin.conf",
        "etc/dracut.conf.d/10-quantumos-live.conf",
    ] {
        let _ = std::fs::remove_file(target.join(live_only));
    }

    step(log, 5, &format!("creating user {}", s.user));
    if s.user != "quantum" && target_has_user(target, "quantum") {
        run(
            log,
            Command::new("userdel")
                .arg("--root")
                .arg(target)
                .args(["--remove", "quantum"]),
        )?;
    }
    if !target_has_user(target, &s.user) {
        run(
            log,
            Command::new("useradd")
                .arg("--root")
                .arg(target)
                .args(["--create-home", "--user-group", "--shell", "/bin/bash"])
                .args(["--groups", "adm,sudo,systemd-journal"])
                .arg(&s.user),
        )?;
    }
    match &opts.password {
        Some(pw) => {
            let mut child = Command::new("chpasswd")
                .arg("--root")
                .arg(target)
                .stdin(Stdio::piped())
                .spawn()
                .context("cannot run chpasswd")?;
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                writeln!(stdin, "{}:{pw}", s.user).context("chpasswd")?;
            }
            if !child.wait().context("chpasswd")?.success() {
                bail!("chpasswd could not set {}'s password", s.user);
            }
            log.say("  password set");
        }
        None => {
            run(
                log,
                Command::new("passwd")
                    .arg("--root")
                    .arg(target)
                    .args(["--lock", &s.user]),
            )?;
        }
    }

    step(log, 6, "installing the boot loader and the kernel");
    boot(log, target, &root_uuid)?;

    step(log, 7, "done");
    write(&target.join("var/log/qos-install.log"), &log.text)?;
    run(log, &mut Command::new("sync"))?;
    Ok(())
}

fn target_has_user(target: &Path, user: &str) -> bool {
    std::fs::read_to_string(target.join("etc/passwd"))
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(user)))
        .unwrap_or(false)
}

/// The repart definitions for this plan: the shipped ones, plus swap when asked.
fn tempdir_for_repart(plan: &Plan, shipped: &Path) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("qos-install-repart.{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for e in std::fs::read_dir(shipped).with_context(|| {
        format!(
            "cannot read the repart definitions in {}",
            shipped.display()
        )
    })? {
        let e = e?;
        std::fs::copy(e.path(), dir.join(e.file_name()))?;
    }
    if let Some(mib) = plan.settings.swap_mib {
        write(
            &dir.join("20-swap.conf"),
            &format!(
                "[Partition]\nType=swap\nLabel=swap\nFormat=swap\nSizeMinBytes={mib}M\nSizeMaxBytes={mib}M\n"
            ),
        )?;
    }
    Ok(dir)
}

/// systemd-boot in the ESP and one unified kernel image (UKI) for the disk in
/// `/EFI/Linux/`, where systemd-boot finds it without an entry file (Boot Loader
/// Specification, type 2). The UKI holds the kernel, an initrd that mounts the Btrfs root by
/// UUID, the command line and os-release, and is built by ukify inside the new system with
/// its own EFI stub.
fn boot(log: &mut Log, target: &Path, root_uuid: &str) -> Result<()> {
    let modules = target.join("usr/lib/modules");
    let kver = std::fs::read_dir(&modules)
        .with_context(|| format!("cannot read {}", modules.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .next()
        .context("the system has no kernel in /usr/lib/modules")?;
    run(
        log,
        Command::new("bootctl")
            .arg(format!("--root={}", target.display()))
            .args(["--esp-path=/boot", "--no-variables", "install"]),
    )?;
    // The kernel and initrd are only ingredients: they live in the new system's /var/tmp
    // while the UKI is built, and go away after.
    let work = format!("/var/tmp/qos-install-uki.{}", std::process::id());
    let work_dir = target.join(work.trim_start_matches('/'));
    std::fs::create_dir_all(&work_dir)?;
    let vmlinuz = Path::new(LIVE_IMAGE)
        .join("boot")
        .join(format!("vmlinuz-{kver}"));
    let vmlinuz = if vmlinuz.exists() {
        vmlinuz
    } else {
        modules.join(&kver).join("vmlinuz")
    };
    std::fs::copy(&vmlinuz, work_dir.join("linux"))
        .with_context(|| format!("cannot copy the kernel {}", vmlinuz.display()))?;
    let uki = format!("/boot/EFI/Linux/quantumos-{kver}.efi");
    std::fs::create_dir_all(target.join("boot/EFI/Linux"))?;
    // systemd.firstboot=off: hostname, locale, timezone and users are set already; a first
    // boot (new machine-id) must not stop at a prompt.
    let cmdline = format!(
        "root=UUID={root_uuid} rootflags=subvol=@ rw quiet console=tty0 console=ttyS0 \
         systemd.firstboot=off"
    );
    for fs in ["proc", "sys", "dev"] {
        run(
            log,
            Command::new("mount")
                .arg("--rbind")
                .arg(format!("/{fs}"))
                .arg(target.join(fs)),
        )?;
        // A slave: unmounting these again must not propagate back to the live system's
        // own /sys (cgroup2 there is busy and refuses).
        run(
            log,
            Command::new("mount")
                .arg("--make-rslave")
                .arg(target.join(fs)),
        )?;
    }
    // The live initrd finds a CD by label; the installed system needs one that mounts Btrfs
    // by UUID: dracut, generic (not host-only: the disk may move to another machine).
    let built = run(
        log,
        Command::new("chroot").arg(target).args([
            "dracut",
            "--force",
            "--quiet",
            "--no-hostonly",
            "--omit",
            "dmsquash-live",
            "--kver",
            &kver,
            &format!("{work}/initrd"),
        ]),
    )
    .and_then(|_| {
        run(
            log,
            Command::new("chroot").arg(target).args([
                "ukify",
                "build",
                &format!("--linux={work}/linux"),
                &format!("--initrd={work}/initrd"),
                &format!("--cmdline={cmdline}"),
                "--os-release=@/usr/lib/os-release",
                &format!("--uname={kver}"),
                &format!("--output={uki}"),
            ]),
        )
    });
    for fs in ["dev", "sys", "proc"] {
        unmount_tree(&target.join(fs));
    }
    let _ = std::fs::remove_dir_all(&work_dir);
    built?;
    write(
        &target.join("boot/loader/loader.conf"),
        "timeout 3\neditor no\n",
    )?;
    Ok(())
}
