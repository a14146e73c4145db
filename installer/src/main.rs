use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use qos_install::disks::{self, SystemView};
use qos_install::install::{self, LIVE_IMAGE, REPART_DIR};
use qos_install::plan::{self, Settings, human};

/// Install the running QuantumOS live system on a disk
///
/// The disk gets an EFI system partition and a Btrfs root with subvolumes for / and /home
/// (systemd-repart), systemd-boot, a new machine-id, and the hostname, user, timezone and
/// locale given. Without --disk, lists the disks it could use.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Exit status: 0 done (or nothing to do), 1 refused or failed, 64 wrong command line."
)]
struct Args {
    /// The whole disk to install on (erased), e.g. /dev/vda.
    #[arg(long, value_name = "DEVICE")]
    disk: Option<PathBuf>,
    /// Only list the candidate disks.
    #[arg(long, conflicts_with = "disk")]
    list: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation (automation).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Erase a disk that has partitions or data on it.
    #[arg(long)]
    force: bool,
    /// Add a swap partition of this many MiB.
    #[arg(long, value_name = "MIB")]
    swap: Option<u64>,
    /// The new system's hostname [default: asked, or quantumos].
    #[arg(long)]
    hostname: Option<String>,
    /// The user to create (a member of sudo); replaces the live user `quantum`.
    #[arg(long)]
    user: Option<String>,
    /// Read the user's password from this file (first line); `-` for standard input.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// A zone from /usr/share/zoneinfo, e.g. Europe/Paris.
    #[arg(long)]
    timezone: Option<String>,
    /// e.g. en_US.UTF-8.
    #[arg(long)]
    locale: Option<String>,
    /// Machine-readable output (the disk list or the plan).
    #[arg(long)]
    json: bool,
    /// Where the system to copy is (the live image).
    #[arg(long, default_value = LIVE_IMAGE, hide = true)]
    source: PathBuf,
    /// The systemd-repart definitions.
    #[arg(long, default_value = REPART_DIR, hide = true)]
    repart_dir: PathBuf,
    /// The smallest disk accepted, in MiB (tests use small loop devices).
    #[arg(long, env = "QOS_INSTALL_MIN_DISK_MIB", hide = true)]
    min_disk_mib: Option<u64>,
    /// Read the live-medium markers under this directory instead of / (for tests).
    #[arg(long, env = "QOS_INSTALL_ROOT", default_value = "/", hide = true)]
    root: PathBuf,
    /// Print the qos-install(8) man page, in roff (for packagers: the image stages it).
    #[arg(long, hide = true)]
    man_page: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 64 } else { 0 });
        }
    };
    if args.man_page {
        return print_man_page();
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qos-install: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// qos-install(8): it is in /usr/sbin, for the administrator. Dated by SOURCE_DATE_EPOCH
/// when the build sets it, so two builds write the same page, else today.
fn print_man_page() -> ExitCode {
    use clap::CommandFactory;
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|epoch| chrono::DateTime::from_timestamp(epoch, 0))
        .unwrap_or_else(chrono::Utc::now);
    let page = clap_mangen::Man::new(Args::command())
        .section("8")
        .date(date.format("%Y-%m-%d").to_string())
        .source(concat!("QuantumOS ", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut out = std::io::stdout().lock();
    match page.render(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qos-install: cannot write the man page: {e}");
            ExitCode::from(1)
        }
    }
}

fn ask(question: &str, default: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Ok(default.to_string());
    }
    eprint!("{question} [{default}]: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() { default } else { line }.to_string())
}

fn valid_name(kind: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !v.starts_with('-');
    if !ok {
        bail!("{kind} {v:?}: use letters, digits, '-', '_' or '.' (at most 63)");
    }
    Ok(())
}

fn read_password(args: &Args, user: &str) -> Result<Option<String>> {
    if let Some(path) = &args.password_file {
        let text = if path.as_os_str() == "-" {
            let mut l = String::new();
            std::io::stdin().lock().read_line(&mut l)?;
            l
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?
        };
        let pw = text.lines().next().unwrap_or("").to_string();
        if pw.is_empty() {
            bail!("the password file is empty");
        }
        return Ok(Some(pw));
    }
    if args.yes || args.dry_run || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    // systemd-ask-password reads without echo, on the terminal or through agents.
    let out = std::process::Command::new("systemd-ask-password")
        .arg(format!("Password for {user} (empty: locked):"))
        .output()
        .context("cannot run systemd-ask-password")?;
    let pw = String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string();
    Ok((!pw.is_empty()).then_some(pw))
}

fn run(args: Args) -> Result<()> {
    let view = SystemView {
        root: args.root.clone(),
    };
    let Some(disk_path) = args.disk.clone() else {
        let list = disks::list(&view)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(());
        }
        println!("{:<14} {:>10}  {:<24} NOTE", "DISK", "SIZE", "MODEL");
        for d in &list {
            let note = if d.live_medium {
                "live medium: not offered".to_string()
            } else if !d.mounted_at.is_empty() {
                format!("in use: {}", d.mounted_at.join(", "))
            } else if d.has_data {
                format!("has data ({}): --force erases it", plan::describe_data(d))
            } else if d.size_bytes < plan::MIN_DISK_BYTES {
                "too small".to_string()
            } else {
                "blank".to_string()
            };
            println!(
                "{:<14} {:>10}  {:<24} {note}",
                d.path,
                human(d.size_bytes),
                d.model
            );
        }
        if !args.list {
            println!("\nInstall with: qos-install --disk DEVICE (see --help)");
        }
        return Ok(());
    };

    let disk = disks::lookup(&view, &disk_path)?;
    let hostname = match &args.hostname {
        Some(h) => h.clone(),
        None if args.yes || args.dry_run => "quantumos".into(),
        None => ask("Hostname", "quantumos")?,
    };
    valid_name("hostname", &hostname)?;
    let user = match &args.user {
        Some(u) => u.clone(),
        None if args.yes || args.dry_run => "quantum".into(),
        None => ask("User", "quantum")?,
    };
    valid_name("user name", &user)?;
    let timezone = args.timezone.clone().unwrap_or_else(|| "UTC".into());
    let locale = args.locale.clone().unwrap_or_else(|| "C.UTF-8".into());
    let password = read_password(&args, &user)?;
    let settings = Settings {
        hostname,
        user,
        password_set: password.is_some(),
        timezone,
        locale,
        swap_mib: args.swap,
        force: args.force,
        min_disk_bytes: args.min_disk_mib.map_or(plan::MIN_DISK_BYTES, |m| m << 20),
    };
    plan::check(&disk, &settings)?;
    let zone_known = args
        .source
        .join("usr/share/zoneinfo")
        .join(&settings.timezone)
        .exists();
    // A dry run may be made away from the live system, where the zone files are elsewhere.
    if settings.timezone.contains("..") || (!zone_known && !args.dry_run) {
        bail!(
            "timezone {:?}: not in /usr/share/zoneinfo",
            settings.timezone
        );
    }
    let plan = plan::make(disk, settings);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan.render());
    }
    if args.dry_run {
        if args.json {
            eprintln!("Dry run: nothing was changed.");
        } else {
            println!("Dry run: nothing was changed.");
        }
        return Ok(());
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "not confirmed: standard input is not a terminal (use --yes to install without asking)"
            );
        }
        let answer = ask(
            &format!("Type {} to erase it and install", plan.disk.name),
            "",
        )?;
        if answer != plan.disk.name {
            bail!("not confirmed; nothing was changed");
        }
    }
    if !nix_is_root() {
        bail!("installing needs root (sudo qos-install …)");
    }
    install::install(
        &plan,
        &install::Options {
            source: args.source.clone(),
            repart_dir: args.repart_dir.clone(),
            password,
            quiet: args.json,
        },
    )?;
    println!(
        "QuantumOS is installed on {}. Remove the live medium and reboot.",
        plan.disk.path
    );
    Ok(())
}

fn nix_is_root() -> bool {
    // /proc/self/status "Uid:" real effective …: the effective uid is the second.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
