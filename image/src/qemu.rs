//! Booting an ISO in qemu with UEFI firmware (OVMF on x86_64, AAVMF on arm64): either
//! interactively on the serial console, or headless with the console captured line by line
//! (timestamped from qemu's start) for the boot test and the boot benchmark.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::platform::Arch;
use crate::run;

/// How the ISO is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Media {
    /// As a CD-ROM (El Torito).
    Cdrom,
    /// As a disk, like a USB stick the ISO was written to.
    Disk,
}

/// The accelerator. TCG (emulation) works everywhere; KVM only where nested virtualization
/// works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Tcg,
    Kvm,
}

#[derive(Debug, Clone)]
pub struct Vm {
    pub arch: Arch,
    pub iso: PathBuf,
    pub media: Media,
    pub accel: Accel,
    pub memory_mib: u32,
    pub cpus: u32,
    /// A blank disk to attach (an installer's target), created when missing.
    pub blank_disk: Option<(PathBuf, String)>,
    /// Where the firmware variables copy lives.
    pub state_dir: PathBuf,
    /// systemd credentials for the guest (`NAME`, `VALUE`), passed as SMBIOS type 11 strings:
    /// how a test run asks the image for optional work without rebuilding it.
    pub credentials: Vec<(String, String)>,
}

struct Firmware {
    code: &'static str,
    vars: &'static str,
    package: &'static str,
}

fn firmware(arch: Arch) -> Firmware {
    match arch {
        Arch::X86_64 => Firmware {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd",
            vars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
            package: "ovmf",
        },
        Arch::Arm64 => Firmware {
            code: "/usr/share/AAVMF/AAVMF_CODE.fd",
            vars: "/usr/share/AAVMF/AAVMF_VARS.fd",
            package: "qemu-efi-aarch64",
        },
    }
}

pub fn qemu_binary(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Arm64 => "qemu-system-aarch64",
    }
}

impl Vm {
    /// The qemu command line; `headless` puts the serial console on stdout and nothing else.
    pub fn command(&self, headless: bool) -> Result<Command> {
        let fw = firmware(self.arch);
        for file in [fw.code, fw.vars] {
            if !Path::new(file).is_file() {
                bail!(
                    "UEFI firmware {file} is missing: install {} (qos-image deps --arch {})",
                    fw.package,
                    self.arch
                );
            }
        }
        if !self.iso.is_file() {
            bail!(
                "{} does not exist: build it first (qos-image build)",
                self.iso.display()
            );
        }
        let qemu = qemu_binary(self.arch);
        if run::find_tool(qemu).is_none() {
            bail!(
                "{qemu} is missing: run `qos-image deps --arch {}`",
                self.arch
            );
        }
        std::fs::create_dir_all(&self.state_dir)?;
        let vars = self
            .state_dir
            .join(format!("efivars-{}-{}.fd", self.arch, std::process::id()));
        std::fs::copy(fw.vars, &vars).with_context(|| format!("copying {}", fw.vars))?;

        let mut cmd = Command::new(qemu);
        let (machine, cpu) = match (self.arch, self.accel) {
            (Arch::X86_64, Accel::Tcg) => ("q35", "max"),
            (Arch::X86_64, Accel::Kvm) => ("q35", "host"),
            (Arch::Arm64, Accel::Tcg) => ("virt", "max"),
            (Arch::Arm64, Accel::Kvm) => ("virt", "host"),
        };
        let accel = match self.accel {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        };
        cmd.args(["-machine", machine, "-accel", accel, "-cpu", cpu])
            .args(["-smp", &self.cpus.to_string()])
            .args(["-m", &self.memory_mib.to_string()])
            .args([
                "-drive",
                &format!("if=pflash,format=raw,unit=0,readonly=on,file={}", fw.code),
            ])
            .args([
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
            ])
            .args(["-device", "virtio-rng-pci"])
            .args(["-nic", "user,model=virtio-net-pci"])
            .arg("-no-reboot");
        for (name, value) in &self.credentials {
            // The qemu option parser splits on commas: a value may not hold one.
            if value.contains(',') || name.contains(',') {
                bail!("credential {name}: commas cannot pass through qemu's -smbios");
            }
            cmd.args([
                "-smbios",
                &format!("type=11,value=io.systemd.credential:{name}={value}"),
            ]);
        }
        let iso = self.iso.display().to_string();
        match (self.media, self.arch) {
            (Media::Cdrom, Arch::X86_64) => {
                cmd.args(["-cdrom", &iso]);
            }
            (Media::Cdrom, Arch::Arm64) => {
                cmd.args([
                    "-drive",
                    &format!("if=none,id=live,media=cdrom,readonly=on,file={iso}"),
                ])
                .args(["-device", "virtio-scsi-pci,id=scsi0"])
                .args(["-device", "scsi-cd,drive=live,bus=scsi0.0"]);
            }
            (Media::Disk, _) => {
                cmd.args([
                    "-drive",
                    &format!("if=none,id=live,format=raw,readonly=on,file={iso}"),
                ])
                .args(["-device", "virtio-blk-pci,drive=live"]);
            }
        }
        if let Some((disk, size)) = &self.blank_disk {
            if !disk.exists() {
                run::output(
                    Command::new("qemu-img")
                        .args(["create", "-f", "qcow2"])
                        .arg(disk)
                        .arg(size),
                )
                .context("creating the blank disk (qemu-img is in qemu-utils)")?;
            }
            cmd.args([
                "-drive",
                &format!("if=none,id=target,format=qcow2,file={}", disk.display()),
            ])
            .args(["-device", "virtio-blk-pci,drive=target"]);
        }
        if headless {
            cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        } else {
            cmd.arg("-nographic");
        }
        Ok(cmd)
    }
}

/// A console line, with the time since qemu started.
#[derive(Debug, Clone)]
pub struct ConsoleLine {
    pub at: Duration,
    pub text: String,
}

/// A headless VM whose serial console is read line by line and logged.
#[derive(Debug)]
pub struct Console {
    child: Child,
    lines: Receiver<ConsoleLine>,
    started: Instant,
    pub log: PathBuf,
}

impl Console {
    pub fn start(vm: &Vm, log: &Path) -> Result<Console> {
        let mut cmd = vm.command(true)?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", qemu_binary(vm.arch)))?;
        let started = Instant::now();
        let stdout = child.stdout.take().context("qemu has no stdout")?;
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let at = started.elapsed();
                let text = clean(&String::from_utf8_lossy(&raw));
                let _ = writeln!(file, "[{:8.3}] {text}", at.as_secs_f64());
                if tx.send(ConsoleLine { at, text }).is_err() {
                    break;
                }
            }
        });
        Ok(Console {
            child,
            lines: rx,
            started,
            log: log.to_path_buf(),
        })
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next console line, or `None` when `deadline` passes or the VM has stopped.
    pub fn next_line(&mut self, deadline: Instant) -> Option<ConsoleLine> {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(wait).ok()
    }

    /// Reads lines until one satisfies `want`; returns it, or `None` on timeout or VM exit.
    pub fn wait_for(
        &mut self,
        deadline: Instant,
        mut want: impl FnMut(&ConsoleLine) -> bool,
    ) -> Option<ConsoleLine> {
        while let Some(line) = self.next_line(deadline) {
            if want(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Types `text` on the serial console (the live session's shell once logged in).
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .context("qemu's stdin is closed")?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Stops the VM (it is ours: we started it).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Strips terminal escape sequences and carriage returns from a console line.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' | '\n' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs qemu attached to this terminal (serial console; Ctrl-A X quits).
pub fn interactive(vm: &Vm) -> Result<()> {
    eprintln!(
        "Booting {} ({:?}, {:?}); serial console here, Ctrl-A X quits qemu",
        vm.iso.display(),
        vm.media,
        vm.accel
    );
    run::visible(&mut vm.command(false)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_stripped() {
        let raw = "[\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m.\r\n";
        assert_eq!(clean(raw), "[  OK  ] Reached target multi-user.target.");
        assert_eq!(clean("\u{1b}[2J\u{1b}[01;01H\u{1b}[=3hBdsDxe"), "BdsDxe");
    }
}
