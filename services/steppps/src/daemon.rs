//! The life of a QuantumOS daemon, written once: parse the common options, log, load the
//! config, connect to the bus, serve the dimension's interfaces next to
//! `org.quantumos.Dimension1`, own the well-known name, tell systemd, and stop cleanly on
//! SIGTERM or SIGINT.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use steppps::daemon::{Daemon, DaemonArgs, Vitals};
//! # struct Logic; impl Vitals for Logic { fn health(&self) -> (bool, String) { (true, "ok".into()) } }
//! # #[derive(Default, serde::Deserialize)] struct Config {}
//! fn main() -> std::process::ExitCode {
//!     let args = DaemonArgs { bus: None, config: None };
//!     steppps::daemon::run::<Config, _, _>(&steppps::api::SPACE, args, |daemon, _config| async move {
//!         let logic = Arc::new(Logic);
//!         daemon.start(logic).await?;
//!         daemon.run_until_stopped().await
//!     })
//! }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info};
use zbus::connection::Builder;
use zbus::fdo::{DBusProxy, RequestNameFlags, RequestNameReply};
use zbus::names::BusName;
use zbus::object_server::Interface;
use zbus::{Connection, interface};

use crate::api::DimensionId;
use crate::api::dimension::DaemonState;
use crate::{config, logging, notify};

/// Options every daemon takes; flatten it into the daemon's clap parser.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DaemonArgs {
    /// D-Bus address to serve on instead of the system bus (tests use a private bus)
    #[arg(long, value_name = "ADDRESS", env = "DBUS_SYSTEM_BUS_ADDRESS")]
    pub bus: Option<String>,
    /// Configuration file [default: /etc/quantumos/<dimension>.toml]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// What a daemon's logic tells `org.quantumos.Dimension1` about itself.
pub trait Vitals: Send + Sync + 'static {
    /// `(ok, detail)`: can the daemon do its job, and if not, why, in words.
    fn health(&self) -> (bool, String);

    /// The dimension's own counters and gauges (`uptime_seconds` and `rss_bytes` are added
    /// for every daemon).
    fn metrics(&self) -> HashMap<String, f64> {
        HashMap::new()
    }
}

/// Connects to the system bus, or to `address` when given.
pub async fn connect(address: Option<&str>) -> anyhow::Result<Connection> {
    let (builder, described) = match address {
        Some(a) => (Builder::address(a), format!("the bus at `{a}`")),
        None => (Builder::system(), "the system bus".to_string()),
    };
    builder
        .build()
        .await
        .with_context(|| format!("cannot connect to {described} (is dbus running?)"))
}

/// Waits until every name in `names` has an owner on `connection`'s bus, `patience` at most.
/// `Err` lists the names still missing then (all of them when the bus cannot be asked). Each
/// name is asked about once; after that the bus's `NameOwnerChanged` signals say when one
/// appears.
pub async fn wait_for_names(
    connection: &Connection,
    names: &[&str],
    patience: Duration,
) -> Result<(), Vec<String>> {
    wait_for_names_reporting(connection, names, Some(patience), |_| {}).await
}

/// [`wait_for_names`], without a time limit when `patience` is `None` (then it ends early only
/// when the connection closes), and calling `on_missing` once with the names the first look
/// did not find, so a caller can say what it is waiting for.
pub async fn wait_for_names_reporting(
    connection: &Connection,
    names: &[&str],
    patience: Option<Duration>,
    on_missing: impl FnOnce(&[String]),
) -> Result<(), Vec<String>> {
    let deadline = patience.map(|p| tokio::time::Instant::now() + p);
    let all_missing = || names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let Ok(dbus) = DBusProxy::new(connection).await else {
        return Err(all_missing());
    };
    // Subscribed before the first look, so a name appearing in between is not missed.
    let Ok(mut changes) = dbus.receive_name_owner_changed().await else {
        return Err(all_missing());
    };
    let mut missing = Vec::new();
    for &name in names {
        let owned = match BusName::try_from(name) {
            Ok(bus_name) => dbus.name_has_owner(bus_name).await.unwrap_or(false),
            Err(_) => false,
        };
        if !owned {
            missing.push(name.to_string());
        }
    }
    if !missing.is_empty() {
        on_missing(&missing);
    }
    while !missing.is_empty() {
        let change = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, changes.next())
                .await
                .ok()
                .flatten(),
            None => changes.next().await,
        };
        let Some(signal) = change else {
            return Err(missing);
        };
        if let Ok(args) = signal.args()
            && args.new_owner().is_some()
        {
            missing.retain(|n| n.as_str() != args.name().as_str());
        }
    }
    Ok(())
}

/// Runs a daemon: logging, config, a single-threaded runtime (these daemons are I/O-bound and
/// small), a bus connection, then `body`. Returns the process exit code; errors are logged
/// and shown in `systemctl status` through `STATUS=`.
pub fn run<C, F, Fut>(id: &'static DimensionId, args: DaemonArgs, body: F) -> ExitCode
where
    C: DeserializeOwned + Default,
    F: FnOnce(Daemon, C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    logging::init(id.name);
    let result = (|| -> anyhow::Result<()> {
        let (config, from) = config::load::<C>(id.name, args.config.as_deref())?;
        if let Some(path) = from {
            info!("configuration from {}", path.display());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async move {
            // Before the name is owned: a stop request that follows readiness at once must
            // find the handlers in place, not the default action (death by the signal).
            let stop = watch_stop_signals()?;
            let connection = connect(args.bus.as_deref()).await?;
            let daemon = Daemon::new(id, connection, stop).on_private_bus(args.bus.is_some());
            body(daemon, config).await
        })
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            error!("{message}");
            notify::status(&format!("failed: {message}"));
            ExitCode::FAILURE
        }
    }
}

/// Catches SIGTERM and SIGINT from now on; the receiver then holds the signal's name.
fn watch_stop_signals() -> anyhow::Result<watch::Receiver<Option<&'static str>>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let _ = tx.send(Some(which));
    });
    Ok(rx)
}

/// A daemon connected to its bus, before and after it owns its name.
#[derive(Debug, Clone)]
pub struct Daemon {
    id: &'static DimensionId,
    connection: Connection,
    private_bus: bool,
    /// Set to the signal's name when SIGTERM or SIGINT arrives.
    stop: watch::Receiver<Option<&'static str>>,
}

impl Daemon {
    pub fn new(
        id: &'static DimensionId,
        connection: Connection,
        stop: watch::Receiver<Option<&'static str>>,
    ) -> Self {
        Daemon {
            id,
            connection,
            private_bus: false,
            stop,
        }
    }

    /// Marks the connection as one to a bus other than the system bus (for messages).
    pub fn on_private_bus(mut self, private: bool) -> Self {
        self.private_bus = private;
        self
    }

    pub fn id(&self) -> &'static DimensionId {
        self.id
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Serves one of the dimension's own interfaces on its object path. Call before
    /// [`Daemon::start`] so no call arrives before the interface is there.
    pub async fn serve<I: Interface>(&self, iface: I) -> anyhow::Result<()> {
        let existing = self
            .connection
            .object_server()
            .at(self.id.path, iface)
            .await?;
        if existing.is_some() {
            bail!("{} is already served at {}", I::name(), self.id.path);
        }
        Ok(())
    }

    /// Serves `org.quantumos.Dimension1`, owns the bus name, and tells systemd it is ready.
    pub async fn start(&self, vitals: Arc<dyn Vitals>) -> anyhow::Result<()> {
        let dimension = DimensionInterface::new(self.id.name, vitals);
        self.serve(dimension).await?;
        self.own_name().await?;
        self.set_state(DaemonState::Ready).await?;
        let _ = notify::spawn_watchdog();
        notify::ready(&format!(
            "serving {} on {}",
            self.id.bus_name,
            self.describe_bus()
        ));
        info!("ready: {} at {}", self.id.bus_name, self.id.path);
        Ok(())
    }

    fn describe_bus(&self) -> &'static str {
        if self.private_bus {
            "a private bus"
        } else {
            "the system bus"
        }
    }

    async fn own_name(&self) -> anyhow::Result<()> {
        let name = self.id.bus_name;
        let reply = self
            .connection
            .request_name_with_flags(name, RequestNameFlags::DO_NOT_QUEUE)
            .await
            .map(Some)
            .or_else(|e| match e {
                // zbus reports the `Exists` reply as this error.
                zbus::Error::NameTaken => Ok(None),
                zbus::Error::FDO(ref fdo) if matches!(**fdo, zbus::fdo::Error::AccessDenied(_)) => {
                    Err(anyhow!(
                        "not allowed to own {name}: the D-Bus policy \
                     (/usr/share/dbus-1/system.d/{name}.conf) lets only root own it"
                    ))
                }
                other => Err(anyhow!(other).context(format!("cannot own {name}"))),
            })?;
        match reply {
            Some(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => Ok(()),
            Some(RequestNameReply::Exists | RequestNameReply::InQueue) | None => {
                let owner = self.describe_owner(name).await;
                bail!(
                    "{name} is already owned by {owner}: is another {} running?",
                    self.id.binary
                )
            }
        }
    }

    async fn describe_owner(&self, name: &str) -> String {
        let Ok(dbus) = DBusProxy::new(&self.connection).await else {
            return "another process".into();
        };
        let Ok(bus_name) = zbus::names::BusName::try_from(name) else {
            return "another process".into();
        };
        let owner = dbus.get_name_owner(bus_name.clone()).await.ok();
        let pid = dbus.get_connection_unix_process_id(bus_name).await.ok();
        match (owner, pid) {
            (Some(o), Some(p)) => format!("{o} (pid {p})"),
            (Some(o), None) => o.to_string(),
            _ => "another process".into(),
        }
    }

    /// Changes the `State` property and emits `PropertiesChanged`.
    pub async fn set_state(&self, state: DaemonState) -> anyhow::Result<()> {
        let iface = self
            .connection
            .object_server()
            .interface::<_, DimensionInterface>(self.id.path)
            .await?;
        iface.get_mut().await.state = state;
        iface
            .get()
            .await
            .state_changed(iface.signal_emitter())
            .await?;
        Ok(())
    }

    /// Waits for SIGTERM or SIGINT, then announces `stopping` and gives the name back.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let which = match self.stop.wait_for(Option::is_some).await {
            Ok(which) => which.unwrap_or("a stop signal"),
            Err(_) => bail!("the signal watcher ended"),
        };
        info!("{which}: stopping");
        notify::stopping();
        // Clients see `stopping` before the name disappears.
        let _ = self.set_state(DaemonState::Stopping).await;
        // Replies to calls already dispatched have been queued by now; the runtime's end
        // drops the connection (other tasks hold clones, so graceful_shutdown would wait
        // forever).
        let _ = self.connection.release_name(self.id.bus_name).await;
        Ok(())
    }
}

/// The `org.quantumos.Dimension1` object: the daemon's name, version, state, health and
/// metrics.
pub struct DimensionInterface {
    name: &'static str,
    state: DaemonState,
    vitals: Arc<dyn Vitals>,
    started: Instant,
}

impl std::fmt::Debug for DimensionInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DimensionInterface")
            .field("name", &self.name)
            .field("state", &self.state)
            .finish()
    }
}

impl DimensionInterface {
    pub fn new(name: &'static str, vitals: Arc<dyn Vitals>) -> Self {
        DimensionInterface {
            name,
            state: DaemonState::Starting,
            vitals,
            started: Instant::now(),
        }
    }
}

#[interface(name = "org.quantumos.Dimension1")]
impl DimensionInterface {
    fn health(&self) -> (bool, String) {
        self.vitals.health()
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let mut metrics = self.vitals.metrics();
        metrics.insert(
            "uptime_seconds".into(),
            self.started.elapsed().as_secs_f64(),
        );
        if let Some(rss) = resident_set_bytes() {
            metrics.insert("rss_bytes".into(), rss as f64);
        }
        metrics
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> &str {
        self.name
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    #[zbus(property)]
    fn state(&self) -> &str {
        self.state.as_str()
    }
}

/// This process's resident set size, from `/proc/self/statm`.
pub fn resident_set_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(pages * u64::try_from(page_size).ok()?)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::TestBus;

    #[tokio::test]
    async fn waiting_for_names_ends_when_they_appear_and_names_those_that_did_not() {
        let bus = TestBus::start().expect("test bus");
        let waiter = bus.connect().await.expect("connect");
        let nobody = wait_for_names(
            &waiter,
            &["org.quantumos.Nobody1"],
            Duration::from_millis(300),
        );
        assert_eq!(nobody.await, Err(vec!["org.quantumos.Nobody1".to_string()]));

        // Names taken one after the other while we wait end the wait.
        let owner = bus.connect().await.expect("connect");
        let both = ["org.quantumos.Late1", "org.quantumos.Later1"];
        let take = async {
            for name in both {
                tokio::time::sleep(Duration::from_millis(100)).await;
                owner.request_name(name).await.expect("take the name");
            }
        };
        let (waited, ()) = tokio::join!(
            wait_for_names(&waiter, &both, Duration::from_secs(10)),
            take
        );
        assert_eq!(waited, Ok(()));
        // Already owned: no waiting at all.
        assert_eq!(wait_for_names(&waiter, &both, Duration::ZERO).await, Ok(()));
    }

    #[tokio::test]
    async fn waiting_without_a_limit_says_once_what_is_missing() {
        let bus = TestBus::start().expect("test bus");
        let waiter = bus.connect().await.expect("connect");
        let owner = bus.connect().await.expect("connect");
        let mut reported = Vec::new();
        let take = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            owner
                .request_name("org.quantumos.Late1")
                .await
                .expect("take the name");
        };
        let (waited, ()) = tokio::join!(
            wait_for_names_reporting(&waiter, &["org.quantumos.Late1"], None, |missing| {
                reported.extend_from_slice(missing)
            }),
            take
        );
        assert_eq!(waited, Ok(()));
        assert_eq!(reported, ["org.quantumos.Late1"]);
        // Nothing missing: nothing reported.
        let mut called = false;
        let owned =
            wait_for_names_reporting(&waiter, &["org.quantumos.Late1"], None, |_| called = true);
        assert_eq!(owned.await, Ok(()));
        assert!(!called);
    }
}
