//! A private D-Bus for tests: starts a `dbus-daemon` of its own in a temporary directory,
//! starts daemon binaries against it, waits for their names, and tears everything down when
//! dropped. Nothing touches the real system bus.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use steppps::testing::{TestBus, workspace_binary};
//! let mut bus = TestBus::start()?;
//! bus.spawn_daemon(&workspace_binary("steppps-spaced")?, &[])?;
//! bus.wait_for_name("org.quantumos.Space1").await?;
//! # Ok(()) }
//! ```

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use zbus::Connection;

/// How long a daemon may take to own its name before a test gives up.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A private `dbus-daemon` and the daemons started on it.
#[derive(Debug)]
pub struct TestBus {
    dir: TempDir,
    address: String,
    bus: Child,
    daemons: Vec<(String, Child)>,
}

/// A daemon started by [`TestBus::spawn_daemon`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonPid(pub u32);

impl TestBus {
    /// Starts a `dbus-daemon` that lets anyone own any name (tests run as any user).
    pub fn start() -> anyhow::Result<TestBus> {
        Self::start_bus(&[], true)
    }

    /// A bus that enforces the given D-Bus policy files (`<include>`) the way the system bus
    /// does: anyone may call, but owning a name needs a policy that allows it. A test proves
    /// with it that the shipped policy parses and what it allows.
    pub fn start_with_policies(policies: &[&Path]) -> anyhow::Result<TestBus> {
        Self::start_bus(policies, false)
    }

    fn start_bus(policies: &[&Path], anyone_owns: bool) -> anyhow::Result<TestBus> {
        let dir = tempfile::Builder::new().prefix("qos-testbus-").tempdir()?;
        let socket = dir.path().join("bus");
        let includes: String = policies
            .iter()
            .map(|p| format!("  <include>{}</include>\n", p.display()))
            .collect();
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
{own}    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
{includes}</busconfig>
"#,
            socket = socket.display(),
            own = if anyone_owns {
                "    <allow own=\"*\"/>\n"
            } else {
                ""
            },
        );
        let config_path = dir.path().join("bus.conf");
        fs::write(&config_path, config)?;

        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--print-address=1", "--nopidfile"])
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("dbus-daemon.log"))?)
            .spawn()
            .context("cannot start dbus-daemon (install the `dbus` package)")?;
        // dbus-daemon prints its address once it listens: that is the moment to connect.
        let stdout = bus.stdout.take().context("dbus-daemon stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line.trim().to_string();
        if address.is_empty() {
            let status = bus.wait()?;
            bail!(
                "dbus-daemon exited ({status}) without printing its address; config {}",
                config_path.display()
            );
        }
        Ok(TestBus {
            dir,
            address,
            bus,
            daemons: Vec::new(),
        })
    }

    /// The bus address, for `DBUS_SYSTEM_BUS_ADDRESS` or `--bus`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A scratch directory that lives as long as the bus.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command with `DBUS_SYSTEM_BUS_ADDRESS` pointing at this bus (for `qos-ctl`, `busctl`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &self.address);
        cmd
    }

    /// Like [`TestBus::command`], run as another user through `setpriv` (the caller must be
    /// root): how tests check what the shipped policy and polkit fallback allow an ordinary
    /// user. `None` when that cannot be done here (not root, or no setpriv).
    pub fn command_as(&self, uid: u32, program: impl AsRef<OsStr>) -> Option<Command> {
        let root = nix::unistd::Uid::effective().is_root();
        if !root || Command::new("setpriv").arg("--version").output().is_err() {
            return None;
        }
        let mut cmd = self.command("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(program);
        Some(cmd)
    }

    /// Runs `busctl` against this bus and returns its output.
    pub fn busctl(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .context("cannot run busctl (install the `systemd` package)")
    }

    /// Starts a daemon binary on this bus with its own state directory, no config file
    /// unless `args` names one, and its stderr in `<dir>/<binary>.log`.
    pub fn spawn_daemon(&mut self, binary: &Path, args: &[&str]) -> anyhow::Result<DaemonPid> {
        let name = binary
            .file_name()
            .and_then(OsStr::to_str)
            .unwrap_or("daemon")
            .to_string();
        let state = self.dir.path().join("state").join(&name);
        fs::create_dir_all(&state)?;
        let log = File::create(self.log_path(&name))?;
        let mut cmd = self.command(binary);
        cmd.args(args)
            .env("STATE_DIRECTORY", &state)
            .env("QOS_LOG", "debug")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = DaemonPid(child.id());
        self.daemons.push((name, child));
        Ok(pid)
    }

    /// Where a daemon started by [`TestBus::spawn_daemon`] writes its log.
    pub fn log_path(&self, binary_name: &str) -> PathBuf {
        self.dir.path().join(format!("{binary_name}.log"))
    }

    /// The log of a daemon, for assertion messages.
    pub fn log(&self, binary_name: &str) -> String {
        fs::read_to_string(self.log_path(binary_name)).unwrap_or_default()
    }

    /// Sends `signal` to a daemon started here.
    pub fn signal(&self, pid: DaemonPid, signal: Signal) -> anyhow::Result<()> {
        let raw = i32::try_from(pid.0).context("pid out of range")?;
        kill(Pid::from_raw(raw), signal).with_context(|| format!("kill -{signal} {}", pid.0))
    }

    /// Waits for a daemon started here to exit and returns its exit status.
    pub fn wait_exit(
        &mut self,
        pid: DaemonPid,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let (_, child) = self
            .daemons
            .iter_mut()
            .find(|(_, c)| c.id() == pid.0)
            .context("no such daemon")?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("pid {} still running after {timeout:?}", pid.0);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client connection to this bus.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        crate::daemon::connect(Some(&self.address)).await
    }

    /// Waits until `name` has an owner on this bus ([`STARTUP_TIMEOUT`] at most).
    pub async fn wait_for_name(&self, name: &str) -> anyhow::Result<()> {
        let conn = self.connect().await?;
        crate::daemon::wait_for_names(&conn, &[name], STARTUP_TIMEOUT)
            .await
            .map_err(|_| {
                anyhow::anyhow!("{name} did not appear on the test bus within {STARTUP_TIMEOUT:?}")
            })
    }
}

/// Waits until the event dimension reports its capture source `source` (`bus`, `journal`,
/// …) as `on` (or `on, …` with a remark): sources subscribe after the daemon owns its name,
/// so a test that provokes events right after [`TestBus::wait_for_name`] could otherwise
/// lose them.
pub async fn wait_for_event_source(
    event: &crate::api::event::Event1Proxy<'_>,
    source: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let stats = event.stats().await?;
        match stats.sources.get(source).map(String::as_str) {
            Some(s) if s == "on" || s.starts_with("on,") => return Ok(()),
            state if Instant::now() > deadline => bail!(
                "the event source `{source}` is {} after {STARTUP_TIMEOUT:?}",
                state.unwrap_or("missing")
            ),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        for (_, child) in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// The D-Bus policy file the image ships for `bus_name` (from `recipes/quantumos/`), for
/// [`TestBus::start_with_policies`].
pub fn shipped_policy(bus_name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/dbus-1/system.d")
        .join(format!("{bus_name}.conf"))
}

/// The uid tests use for an ordinary, unprivileged user.
pub const NOBODY: u32 = 65534;

/// A binary built from this workspace, found next to the running test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`). `cargo test --workspace`
/// builds every package's binaries before it runs any test.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("test executable has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built; run `cargo build --workspace` (or `cargo test --workspace`) first",
            path.display()
        );
    }
    Ok(path)
}

/// Resident memory (`VmRSS`) of process `pid` in KiB; 0 when it cannot be read. For the
/// benchmarks' memory figures.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory process `pid` has had (`VmHWM`) in KiB; 0 when it cannot be read.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A KiB figure of `/proc/PID/status`, by its field name with the colon.
fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The `p` quantile (0…1, nearest rank) of `sorted` durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
