//! `org.quantumos.Time1`: converts calls into [`Time`] operations, runs the timers' actions
//! over D-Bus, and applies process classes through systemd. Nothing else.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use steppps::Error;
use steppps::api::TIME;
use steppps::api::systemd::{Systemd1ManagerProxy, systemd_booted};
use steppps::api::time::{ClassInfo, QuantumDecision, TimerInfo};
use steppps::auth::authorize;
use steppps::exec_watch::{ExecEvent, ExecWatch};
use tracing::{info, warn};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, Variant, interface};

use crate::classes::{self, ProcessClass};
use crate::timers::{Action, TimerRecord};
use crate::{Time, unix_now};

pub const MANAGE_TIMERS: &str = "org.quantumos.time.manage-timers";
pub const CLASSIFY: &str = "org.quantumos.time.classify";

/// How long a timer's action may take before it counts as failed.
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct TimeInterface {
    time: Arc<Time>,
}

impl TimeInterface {
    pub fn new(time: Arc<Time>) -> Self {
        TimeInterface { time }
    }
}

#[interface(name = "org.quantumos.Time1")]
impl TimeInterface {
    async fn add_timer(
        &self,
        name: &str,
        spec: &str,
        action: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<TimerInfo, Error> {
        authorize(connection, &header, MANAGE_TIMERS).await?;
        self.time.add_timer(name, spec, action)
    }

    async fn remove_timer(
        &self,
        name: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        authorize(connection, &header, MANAGE_TIMERS).await?;
        self.time.remove_timer(name)
    }

    fn list_timers(&self) -> Vec<TimerInfo> {
        self.time.list_timers()
    }

    async fn classify_process(
        &self,
        pid: u32,
        class: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let class = self.time.check_process(pid, class)?;
        authorize(connection, &header, CLASSIFY).await?;
        place_process(connection, pid, class).await
    }

    async fn classify_unit(
        &self,
        unit: &str,
        class: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let class = self.time.parse_class(class)?;
        if !unit.contains('.') || unit.contains('/') {
            return Err(Error::invalid_argument(format!(
                "`{unit}` is not a unit name (like foo.service)"
            )));
        }
        authorize(connection, &header, CLASSIFY).await?;
        weigh_unit(connection, unit, class, &self.time).await?;
        self.time.remember_unit(unit, class)
    }

    fn list_classes(&self) -> Vec<ClassInfo> {
        self.time.list_classes()
    }

    async fn should_use_quantum(
        &self,
        problem: &str,
        size: u32,
        budget_seconds: f64,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<QuantumDecision, Error> {
        // The first decision measures the machine: on a blocking thread, so that the daemon
        // goes on answering (Health, timers) meanwhile.
        let time = self.time.clone();
        tokio::task::spawn_blocking(move || {
            time.machine();
        })
        .await
        .map_err(|e| Error::failed(format!("measuring the machine: {e}")))?;
        let devices = quantumd_devices(connection)
            .await
            .map(|d| self.time.devices_from_quantumd(&d));
        self.time
            .should_use_quantum(problem, size, budget_seconds, devices)
    }

    #[zbus(signal)]
    async fn timer_fired(emitter: &SignalEmitter<'_>, name: &str, result: &str)
    -> zbus::Result<()>;
}

/// quantumd's device list, when it answers quickly; `None` when it is not running.
async fn quantumd_devices(
    connection: &Connection,
) -> Option<Vec<steppps::api::quantum::DeviceInfo>> {
    let ask = async {
        let quantumd = steppps::api::quantum::Quantum1Proxy::new(connection)
            .await
            .ok()?;
        quantumd.list_devices().await.ok()
    };
    tokio::time::timeout(Duration::from_millis(500), ask)
        .await
        .ok()
        .flatten()
}

fn needs_systemd() -> Result<(), Error> {
    if systemd_booted() {
        Ok(())
    } else {
        Err(Error::not_supported(
            "process classes are applied through systemd, and this system does not run systemd as PID 1",
        ))
    }
}

fn systemd_error(what: String, e: zbus::Error) -> Error {
    match &e {
        zbus::Error::MethodError(name, msg, _)
            if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            Error::not_found(msg.clone().unwrap_or(what))
        }
        _ => Error::failed(format!("{what}: {e}")),
    }
}

/// Moves `pid` into a transient scope in its class's slice.
async fn place_process(
    connection: &Connection,
    pid: u32,
    class: ProcessClass,
) -> Result<(), Error> {
    needs_systemd()?;
    let systemd = Systemd1ManagerProxy::new(connection).await?;
    let scope = classes::scope_name(class, pid);
    let slice = class.slice();
    let description = format!("QuantumOS {class} process {pid}");
    let properties = [
        ("PIDs", Variant::from(vec![pid])),
        ("Slice", Variant::from(slice.as_str())),
        ("Description", Variant::from(description.as_str())),
    ];
    systemd
        .start_transient_unit(&scope, "fail", &properties, &[])
        .await
        .map_err(|e| systemd_error(format!("cannot move pid {pid} into {slice}"), e))?;
    info!(pid, %class, "classified process");
    Ok(())
}

/// Gives a unit its class's weights (until reboot; the daemon re-applies them at start).
async fn weigh_unit(
    connection: &Connection,
    unit: &str,
    class: ProcessClass,
    time: &Time,
) -> Result<(), Error> {
    needs_systemd()?;
    let systemd = Systemd1ManagerProxy::new(connection).await?;
    let w = time.weights(class);
    let properties = [
        ("CPUWeight", Variant::from(w.cpu_weight)),
        ("IOWeight", Variant::from(w.io_weight)),
        ("MemoryLow", Variant::from(w.memory_low)),
    ];
    systemd
        .set_unit_properties(unit, true, &properties)
        .await
        .map_err(|e| systemd_error(format!("cannot set the weights of {unit}"), e))?;
    info!(unit, %class, "classified unit");
    Ok(())
}

/// Fires timers when they are due, for as long as the daemon runs.
pub async fn run_timers(time: Arc<Time>, connection: Connection) {
    let emitter = match SignalEmitter::new(&connection, TIME.path) {
        Ok(e) => e.into_owned(),
        Err(e) => {
            warn!("timers disabled: {e}");
            return;
        }
    };
    loop {
        let now = unix_now();
        match time.take_due(now) {
            Ok(due) => {
                for timer in due {
                    tokio::spawn(fire(
                        time.clone(),
                        connection.clone(),
                        emitter.clone(),
                        timer,
                    ));
                }
            }
            Err(e) => warn!("cannot save timer state: {e}"),
        }
        // Sleep to the next elapse, at most a minute (so a changed wall clock is noticed), or
        // until a timer is added or removed.
        let wait = time
            .next_wakeup(unix_now())
            .map_or(60, |next| (next - unix_now()).clamp(0, 60));
        let wait = Duration::from_secs(wait as u64).max(Duration::from_millis(200));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = time.timers_changed.notified() => {}
        }
    }
}

async fn fire(
    time: Arc<Time>,
    connection: Connection,
    emitter: SignalEmitter<'static>,
    timer: TimerRecord,
) {
    let result = match Action::parse(&timer.action) {
        Ok(action) => call(&connection, &action).await,
        Err(e) => Err(e.to_string()),
    };
    let result = result.map_or_else(|e| e, |()| "ok".to_string());
    // A callee's error may be long, or quote a NUL; the result is kept for `ListTimers` and
    // goes out in the signal.
    let result = steppps::error::message_text(&result).into_owned();
    info!(timer = %timer.name, %result, "timer fired");
    if let Err(e) = time.record_result(&timer.name, result.clone()) {
        warn!("cannot save the result of {}: {e}", timer.name);
    }
    if let Err(e) = TimeInterface::timer_fired(&emitter, &timer.name, &result).await {
        warn!("cannot emit TimerFired: {e}");
    }
}

async fn call(connection: &Connection, action: &Action) -> Result<(), String> {
    let (target, interface, method, args) = action.as_call();
    let reply = async {
        let (dest, path, iface) = (Some(target.bus_name), target.path, Some(interface.as_str()));
        let method = method.as_str();
        match args.as_slice() {
            [] => connection.call_method(dest, path, iface, method, &()).await,
            [a] => {
                connection
                    .call_method(dest, path, iface, method, &(a,))
                    .await
            }
            [a, b] => {
                connection
                    .call_method(dest, path, iface, method, &(a, b))
                    .await
            }
            [a, b, c] => {
                connection
                    .call_method(dest, path, iface, method, &(a, b, c))
                    .await
            }
            _ => Err(zbus::Error::Failure("too many arguments".into())),
        }
    };
    match tokio::time::timeout(ACTION_TIMEOUT, reply).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "{}.{method} on {}: {e}",
            interface, target.bus_name
        )),
        Err(_) => Err(format!(
            "{}.{method} on {} did not answer within {ACTION_TIMEOUT:?}",
            interface, target.bus_name
        )),
    }
}

/// Applies unit weights at start, places the running processes that exe rules match, then
/// each newly executed program as it starts: from the steppps module's `device`, else the
/// proc connector ([`ExecWatch`]), else by scanning /proc every `scan_interval`. Health says
/// which. Without systemd it says so once, in Health, and stops.
pub async fn run_classes(
    time: Arc<Time>,
    connection: Connection,
    scan_interval: Duration,
    device: PathBuf,
) {
    if !systemd_booted() {
        time.set_classes_note(Some(
            "process classes inactive: systemd is not PID 1".into(),
        ));
        return;
    }
    // The slices ship with the default weights; time.toml may change them.
    for class in classes::CLASSES {
        if let Err(e) = weigh_unit(&connection, &class.slice(), class, &time).await {
            warn!("{e}");
        }
    }
    for (unit, class) in time.units_to_apply() {
        if let Err(e) = weigh_unit(&connection, &unit, class, &time).await {
            warn!("{e}");
        }
    }
    if !classes::has_exe_rules(&time.rules) {
        // Nothing to follow: no exec notifications, no scans.
        time.set_classes_note(Some(
            "process classes applied through systemd (no exe rules in time.toml)".into(),
        ));
        return;
    }
    let mut placer = Placer {
        time: time.clone(),
        connection,
        tried: HashSet::new(),
    };
    placer.scan().await;
    let why_scanning = match ExecWatch::open(&device) {
        Ok(mut watch) => {
            let source = watch.source();
            info!("classifying processes at exec time, from {source}");
            time.set_classes_note(Some(format!(
                "process classes applied at exec time (from {source})"
            )));
            loop {
                match watch.next().await {
                    Ok(events) => placer.handle(events).await,
                    Err(e) => break format!("{source} failed: {e}"),
                }
            }
        }
        Err(e) => e,
    };
    warn!("scanning /proc every {scan_interval:?} for processes to classify: {why_scanning}");
    time.set_classes_note(Some(format!(
        "process classes applied by scanning /proc every {} s (no exec notifications: \
         {why_scanning})",
        scan_interval.as_secs_f64()
    )));
    let mut tick = tokio::time::interval(scan_interval);
    loop {
        tick.tick().await;
        placer.scan().await;
    }
}

/// Places processes that exe rules match, each pid at most once per program it runs (a
/// process systemd refused to move is not retried on every scan).
struct Placer {
    time: Arc<Time>,
    connection: Connection,
    tried: HashSet<u32>,
}

impl Placer {
    /// Looks at every running process.
    async fn scan(&mut self) {
        let proc_root = self.time.proc_root.clone();
        let matched = classes::match_processes(&proc_root, &self.time.rules);
        self.tried
            .retain(|pid| classes::process_exists(&proc_root, *pid));
        for (pid, class) in matched {
            self.place(pid, class).await;
        }
    }

    async fn handle(&mut self, events: Vec<ExecEvent>) {
        for event in events {
            match event {
                ExecEvent::Exec { pid, .. } => {
                    // A new program: a new decision, whatever the pid ran before. Not
                    // remembered in `tried`, which only scans prune: in exec mode it would
                    // grow with every process ever placed.
                    let class = classes::match_process(&self.time.proc_root, &self.time.rules, pid);
                    if let Some(class) = class
                        && let Err(e) = place_process(&self.connection, pid, class).await
                    {
                        warn!("{e}");
                    }
                }
                ExecEvent::Missed { count } => {
                    warn!(
                        count,
                        "exec notifications were lost; looking at every process"
                    );
                    self.scan().await;
                }
            }
        }
    }

    async fn place(&mut self, pid: u32, class: ProcessClass) {
        if self.tried.insert(pid)
            && let Err(e) = place_process(&self.connection, pid, class).await
        {
            warn!("{e}");
        }
    }
}
