//! qos-image: builds the QuantumOS ISO and boots it. See docs/image.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use qos_image::build::{self, BuildOptions};
use qos_image::qemu::{self, Accel, Media, Vm};
use qos_image::{Arch, Profile, Workspace, bench, boottest, host};

#[derive(Parser, Debug)]
#[command(
    name = "qos-image",
    version,
    about = "Build the QuantumOS ISO from recipes/ with mkosi, and boot and test it in qemu",
    long_about = "Build the QuantumOS ISO from recipes/ with mkosi, and boot and test it in qemu.\n\n\
        Outputs go to out/ in the repository: out/quantumos-<version>-<arch>.iso (the live \
        profile; other profiles add -<profile>), a .manifest.json next to it and \
        out/SHA256SUMS. Building needs root (mkosi) and the host tools `qos-image deps` installs."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
struct Target {
    /// Architecture of the image.
    #[arg(long, value_enum, default_value = "x86_64")]
    arch: Arch,
    /// Variant of the image: live (the product), baseline (without QuantumOS services),
    /// test (live plus the in-guest boot test).
    #[arg(long, value_enum, default_value = "live")]
    profile: Profile,
}

#[derive(clap::Args, Debug, Clone)]
struct Machine {
    /// The ISO to boot (default: the one `build` writes for --arch and --profile).
    #[arg(long)]
    iso: Option<PathBuf>,
    /// Attach the ISO as a CD-ROM or as a disk (like a USB stick).
    #[arg(long = "as", value_enum, default_value = "cdrom")]
    media: Media,
    /// tcg (emulation, works everywhere) or kvm.
    #[arg(long, value_enum, default_value = "tcg")]
    accel: Accel,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// A systemd credential for the guest, NAME=VALUE (repeatable), e.g.
    /// `qos.bench-module=1` asks the test image to also run the module benchmark.
    #[arg(long = "credential", value_parser = parse_credential)]
    credentials: Vec<(String, String)>,
}

fn parse_credential(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: give NAME=VALUE")),
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check the host for the tools a build needs and install what is missing (apt-get, as
    /// root; on Debian 12 mkosi and qemu come from bookworm-backports).
    Deps {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
        /// Only report; install nothing (exit status 1 when something is missing).
        #[arg(long)]
        check: bool,
    },
    /// Build our binaries for the target, run mkosi, assemble the ISO, write SHA256SUMS and
    /// the manifest (installs missing host tools first, as `deps` does).
    Build {
        #[command(flatten)]
        target: Target,
        /// Do not use or fill the package cache in /var/cache/quantumos-mkosi.
        #[arg(long)]
        no_cache: bool,
    },
    /// Boot an ISO in qemu with UEFI firmware: on this terminal's serial console, or
    /// headless until a console line appears (--until).
    Boot {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        machine: Machine,
        /// Attach a blank disk of this size (e.g. 8G), created under out/vm/ when missing.
        #[arg(long, value_name = "SIZE")]
        disk: Option<String>,
        /// Boot headless and stop once a console line contains TEXT, printing when
        /// (e.g. "Reached target multi-user.target").
        #[arg(long, value_name = "TEXT")]
        until: Option<String>,
        /// Seconds to wait for --until.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// The boot test: boot the test-profile ISO headless, wait for the in-guest check's
    /// QOS-TEST-RESULT line and assert on it (nonzero exit status on failure).
    Test {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
        #[command(flatten)]
        machine: Machine,
        /// Seconds to wait for the result.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
    /// The boot benchmark: boot the live and the baseline ISO --runs times each with the same
    /// qemu settings and print times to multi-user.target and steppps.target, memory used,
    /// the daemons' RSS, and the ratios (JSON in out/bench-boot-<arch>.json).
    Bench {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
        #[command(flatten)]
        machine: Machine,
        /// Boots per image.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds to wait for each boot.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Remove out/ (images, logs, the mkosi tools tree).
    Clean {
        /// Also remove the package cache in /var/cache/quantumos-mkosi.
        #[arg(long)]
        all: bool,
    },
}

fn workspace() -> Result<Workspace> {
    let here = std::env::current_dir().context("reading the current directory")?;
    Workspace::discover(&here)
}

fn vm(ws: &Workspace, arch: Arch, profile: Profile, m: &Machine) -> Vm {
    Vm {
        arch,
        iso: m
            .iso
            .clone()
            .unwrap_or_else(|| build::iso_path(ws, arch, profile)),
        media: m.media,
        accel: m.accel,
        memory_mib: m.memory,
        cpus: m.cpus,
        blank_disk: None,
        state_dir: ws.out_dir().join("vm"),
        credentials: m.credentials.clone(),
    }
}

fn console_log(ws: &Workspace, what: &str, arch: Arch) -> PathBuf {
    ws.out_dir()
        .join("logs")
        .join(format!("console-{what}-{arch}.log"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qos-image: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Deps { arch, check } => host::install_missing(arch, check),
        Cmd::Build { target, no_cache } => {
            let ws = workspace()?;
            build::build(
                &ws,
                &BuildOptions {
                    arch: target.arch,
                    profile: target.profile,
                    use_cache: !no_cache,
                },
            )
            .map(|_| ())
        }
        Cmd::Boot {
            target,
            machine,
            disk,
            until,
            timeout,
        } => {
            let ws = workspace()?;
            host::ensure(target.arch, true)?;
            let mut vm = vm(&ws, target.arch, target.profile, &machine);
            vm.blank_disk = disk.map(|size| {
                (
                    ws.out_dir()
                        .join("vm")
                        .join(format!("disk-{}.qcow2", target.arch)),
                    size,
                )
            });
            match until {
                Some(text) => boottest::boot_until(
                    &vm,
                    &text,
                    Duration::from_secs(timeout),
                    &console_log(&ws, "boot", target.arch),
                )
                .map(|_| ()),
                None => qemu::interactive(&vm),
            }
        }
        Cmd::Test {
            arch,
            machine,
            timeout,
        } => {
            let ws = workspace()?;
            host::ensure(arch, true)?;
            let vm = vm(&ws, arch, Profile::Test, &machine);
            boottest::run(
                &vm,
                Duration::from_secs(timeout),
                &console_log(&ws, "test", arch),
            )
        }
        Cmd::Bench {
            arch,
            machine,
            runs,
            timeout,
        } => {
            let ws = workspace()?;
            host::ensure(arch, true)?;
            if machine.iso.is_some() {
                anyhow::bail!(
                    "bench boots the live and the baseline ISO `build` wrote; --iso does not apply"
                );
            }
            if runs == 0 {
                anyhow::bail!("--runs must be at least 1");
            }
            let mut samples = [Vec::new(), Vec::new()];
            for run in 1..=runs {
                for (i, profile) in [Profile::Live, Profile::Baseline].into_iter().enumerate() {
                    let vm = vm(&ws, arch, profile, &machine);
                    let log = console_log(&ws, &format!("bench-{profile}-{run}"), arch);
                    eprintln!("Boot {run}/{runs} of {} ({profile})", vm.iso.display());
                    samples[i].push(bench::measure(&vm, &log, Duration::from_secs(timeout))?);
                }
            }
            let [live, baseline] = samples;
            let report = bench::report(live, baseline);
            bench::print(&report);
            let path = ws.out_dir().join(format!("bench-boot-{arch}.json"));
            bench::write_json(&report, &path)?;
            eprintln!("Wrote {}", path.display());
            Ok(())
        }
        Cmd::Clean { all } => build::clean(&workspace()?, all),
    }
}
