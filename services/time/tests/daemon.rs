//! steppps-timed as a real process on a private bus.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use steppps::api::TIME;
use steppps::api::dimension::dimension_proxy;
use steppps::api::time::{Time1Proxy, TimerFiredStream};
use steppps::testing::{NOBODY, TestBus, peak_rss_kib, workspace_binary};

const HEALTH: &str = "call time org.quantumos.Dimension1.Health";

async fn timed(bus: &mut TestBus) -> steppps::testing::DaemonPid {
    let pid = bus
        .spawn_daemon(&workspace_binary("steppps-timed").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(TIME.bus_name).await.unwrap();
    pid
}

fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{name}: {}", msg.clone().unwrap_or_default())
        }
        other => other.to_string(),
    }
}

async fn next_fired(stream: &mut TimerFiredStream, within: Duration) -> (String, String) {
    let signal = tokio::time::timeout(within, stream.next())
        .await
        .expect("no TimerFired")
        .unwrap();
    let args = signal.args().unwrap();
    (args.name().to_string(), args.result().to_string())
}

#[tokio::test]
async fn bad_timer_input_is_refused_with_the_position() {
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();

    let err = error_name(&time.add_timer("t", "Mon 25:00", HEALTH).await.unwrap_err());
    assert!(
        err.starts_with("org.quantumos.Error.InvalidArgument"),
        "{err}"
    );
    assert!(
        err.contains("position 5") && err.contains("hour 25"),
        "{err}"
    );

    let err = error_name(
        &time
            .add_timer(
                "t",
                "daily",
                "call space org.freedesktop.systemd1.Manager.StartUnit x",
            )
            .await
            .unwrap_err(),
    );
    assert!(err.contains("only org.quantumos interfaces"), "{err}");
    let err = error_name(
        &time
            .add_timer("no such/name", "daily", HEALTH)
            .await
            .unwrap_err(),
    );
    assert!(err.contains("invalid timer name"), "{err}");
    let err = error_name(&time.remove_timer("missing").await.unwrap_err());
    assert!(err.starts_with("org.quantumos.Error.NotFound"), "{err}");

    // Still serving, nothing half-added.
    assert!(time.list_timers().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_timer_fires_its_action_and_reports_it() {
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();
    let mut fired = time.receive_timer_fired().await.unwrap();

    let info = time.add_timer("tick", "every 1s", HEALTH).await.unwrap();
    assert_eq!(info.normalized, "every 1s");
    assert!(info.next_elapse_usec > 0);
    let (name, result) = next_fired(&mut fired, Duration::from_secs(10)).await;
    assert_eq!((name.as_str(), result.as_str()), ("tick", "ok"));

    // A failing action is reported, not hidden.
    time.add_timer("broken", "in 1s", "call space org.quantumos.Space1.GetCpu")
        .await
        .unwrap();
    loop {
        let (name, result) = next_fired(&mut fired, Duration::from_secs(10)).await;
        if name == "broken" {
            assert!(result.contains("org.quantumos.Space1"), "{result}");
            break;
        }
    }
    let listed = time.list_timers().await.unwrap();
    let broken = listed.iter().find(|t| t.name == "broken").unwrap();
    assert_eq!(
        (broken.fire_count, broken.next_elapse_usec),
        (1, 0),
        "a one-shot timer fires once"
    );
    assert_ne!(broken.last_result, "ok");
}

#[tokio::test]
async fn timers_survive_sigkill_and_a_missed_one_fires_on_start() {
    let mut bus = TestBus::start().unwrap();
    let pid = timed(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();
    time.add_timer("nightly", "*-*-* 03:00:00", HEALTH)
        .await
        .unwrap();
    time.add_timer("soon", "in 2s", HEALTH).await.unwrap();
    // Killed right after acknowledging: both timers must be there after a restart.
    bus.signal(pid, Signal::SIGKILL).unwrap();
    bus.wait_exit(pid, Duration::from_secs(5)).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await; // `soon` elapses while the daemon is down

    let time = Time1Proxy::new(&conn).await.unwrap();
    let mut fired = time.receive_timer_fired().await.unwrap();
    timed(&mut bus).await;
    let (name, result) = next_fired(&mut fired, Duration::from_secs(10)).await;
    assert_eq!(
        (name.as_str(), result.as_str()),
        ("soon", "ok"),
        "the missed timer fires once at start"
    );
    let names: Vec<String> = time
        .list_timers()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["nightly", "soon"]);
}

#[tokio::test]
async fn process_classes_validate_before_asking_systemd() {
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();

    let err = error_name(
        &time
            .classify_process(std::process::id(), "quantom")
            .await
            .unwrap_err(),
    );
    assert!(
        err.starts_with("org.quantumos.Error.InvalidArgument")
            && err.contains("unknown class `quantom`"),
        "{err}"
    );
    let err = error_name(
        &time
            .classify_process(u32::MAX - 7, "quantum")
            .await
            .unwrap_err(),
    );
    assert!(
        err.starts_with("org.quantumos.Error.NotFound") && err.contains("no process with pid"),
        "{err}"
    );
    let err = error_name(&time.classify_unit("foo", "quantum").await.unwrap_err());
    assert!(err.contains("not a unit name"), "{err}");
    if !std::path::Path::new("/run/systemd/system").exists()
        && nix::unistd::Uid::effective().is_root()
    {
        let err = error_name(
            &time
                .classify_process(std::process::id(), "quantum")
                .await
                .unwrap_err(),
        );
        assert!(err.starts_with("org.quantumos.Error.NotSupported"), "{err}");
    }

    let classes = time.list_classes().await.unwrap();
    let names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["classical", "quantum", "hybrid", "framework"]);
    let quantum = &classes[1];
    assert_eq!(
        (quantum.slice.as_str(), quantum.cpu_weight),
        ("quantumos-quantum.slice", 400)
    );
}

#[tokio::test]
async fn should_use_quantum_answers_with_costs() {
    let mut bus = TestBus::start().unwrap();
    let pid = timed(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();
    let dimension = dimension_proxy(&conn, &TIME).await.unwrap();

    // The machine is measured by the first decision, not at start (where it cost every boot
    // the time of a 32 MiB copy five times over, and a 64 MiB peak of memory).
    let metrics = dimension.metrics().await.unwrap();
    assert!(!metrics.contains_key("machine_bandwidth_bytes_per_sec"));
    let peak = peak_rss_kib(pid.0);
    assert!(
        (1..32 * 1024).contains(&peak),
        "{peak} KiB at most resident before any decision"
    );

    let d = time.should_use_quantum("search", 20, 10.0).await.unwrap();
    let metrics = dimension.metrics().await.unwrap();
    assert!(
        metrics["machine_bandwidth_bytes_per_sec"] > 1e8,
        "{metrics:?}"
    );
    assert!(metrics["machine_evaluations_per_sec"] > 1e6, "{metrics:?}");
    assert!(!d.use_quantum, "{}", d.reason);
    assert!(d.quantum_seconds > d.classical_seconds);
    assert_eq!(d.device, "sim-statevector");
    let d = time
        .should_use_quantum("simulation", 60, 10.0)
        .await
        .unwrap();
    assert!(d.reason.contains("do not fit"), "{}", d.reason);
    let err = error_name(
        &time
            .should_use_quantum("factoring", 20, 1.0)
            .await
            .unwrap_err(),
    );
    assert!(err.contains("unknown problem `factoring`"), "{err}");
    let err = error_name(
        &time
            .should_use_quantum("search", 20, -1.0)
            .await
            .unwrap_err(),
    );
    assert!(
        err.starts_with("org.quantumos.Error.InvalidArgument"),
        "{err}"
    );
}

#[tokio::test]
async fn only_authorized_callers_change_timers() {
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    let busctl_as_nobody = |args: &[&str]| {
        bus.command_as(NOBODY, "busctl").map(|mut c| {
            c.arg(format!("--address={}", bus.address()))
                .args(["call", TIME.bus_name, TIME.path, "org.quantumos.Time1"])
                .args(args)
                .output()
                .unwrap()
        })
    };
    let Some(out) = busctl_as_nobody(&["AddTimer", "sss", "x", "daily", HEALTH]) else {
        eprintln!("skipped: needs root and setpriv");
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("org.quantumos.time.manage-timers"), "{err}");
    // Reading stays open.
    let out = busctl_as_nobody(&["ListTimers"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn config_with_unknown_key_is_refused() {
    let bus = TestBus::start().unwrap();
    let config = bus.dir().join("time.toml");
    std::fs::write(
        &config,
        "[[rules]]\nexe = \"/usr/bin/x\"\nclas = \"quantum\"\n",
    )
    .unwrap();
    let out = bus
        .command(workspace_binary("steppps-timed").unwrap())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `clas`") && err.contains("time.toml"),
        "{err}"
    );
}

/// The user's path: `qos-ctl time …` against the daemon.
#[tokio::test]
async fn qos_ctl_time_commands() {
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    let qos_ctl = workspace_binary("qos-ctl").unwrap();
    let run = |args: &[&str]| bus.command(&qos_ctl).args(args).output().unwrap();

    let out = run(&[
        "time",
        "add",
        "backup",
        "Mon..Fri 9:00",
        "call",
        "space",
        "org.quantumos.Dimension1.Health",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["time", "timers", "--json"]);
    let timers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(timers[0]["name"], "backup");
    assert_eq!(timers[0]["normalized"], "Mon..Fri *-*-* 09:00:00");
    assert_eq!(
        timers[0]["action"],
        "call space org.quantumos.Dimension1.Health"
    );

    let out = run(&["time", "add", "bad", "Mon 9:61", "workflow", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("position 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["time", "decide", "search", "24"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("classical\n"));

    let out = run(&["time", "classes"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let quantum: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("quantum"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(quantum[1], "400", "{text}");

    assert!(run(&["time", "remove", "backup"]).status.success());
    assert_eq!(run(&["time", "remove", "backup"]).status.code(), Some(1));
}

/// With quantumd on the bus, decisions are made against its devices.
#[tokio::test]
async fn decisions_use_quantumd_devices_when_it_runs() {
    let Ok(quantumd) = workspace_binary("quantumd") else {
        eprintln!("skipped: quantumd is not built");
        return;
    };
    let mut bus = TestBus::start().unwrap();
    timed(&mut bus).await;
    bus.spawn_daemon(&quantumd, &[]).unwrap();
    bus.wait_for_name(steppps::api::QUANTUM.bus_name)
        .await
        .unwrap();
    let conn = bus.connect().await.unwrap();
    let devices = steppps::api::quantum::Quantum1Proxy::new(&conn)
        .await
        .unwrap()
        .list_devices()
        .await
        .unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();
    let d = time
        .should_use_quantum("simulation", 12, 10.0)
        .await
        .unwrap();
    assert!(
        devices.iter().any(|dev| dev.name == d.device),
        "{} not among quantumd's devices {devices:?}",
        d.device
    );
    let widest = devices.iter().map(|dev| dev.max_qubits).max().unwrap();
    let d = time
        .should_use_quantum("simulation", widest + 1, 10.0)
        .await
        .unwrap();
    assert!(
        d.quantum_seconds.is_infinite(),
        "{} qubits exceed every device: {}",
        widest + 1,
        d.reason
    );
}
