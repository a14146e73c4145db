//! steppps-mgr as a real process on a private bus, driven with busctl and its proxy.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steppps::api::MANAGER;
use steppps::api::manager::Manager1Proxy;
use steppps::testing::{TestBus, workspace_binary};

fn mgr() -> std::path::PathBuf {
    workspace_binary("steppps-mgr").unwrap()
}

fn busctl(bus: &TestBus, args: &[&str]) -> (bool, String, String) {
    let out = bus.busctl(args).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn introspection_shows_manager_and_dimension_interfaces() {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&mgr(), &[]).unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let (ok, out, err) = busctl(&bus, &["introspect", MANAGER.bus_name, MANAGER.path]);
    assert!(ok, "{err}");
    assert!(out.contains("org.quantumos.Manager1"), "{out}");
    assert!(out.contains("org.quantumos.Dimension1"), "{out}");
    assert!(out.contains(".GetStatus"), "{out}");
    let (ok, out, _) = busctl(
        &bus,
        &[
            "get-property",
            MANAGER.bus_name,
            MANAGER.path,
            "org.quantumos.Dimension1",
            "State",
        ],
    );
    assert!(ok);
    assert_eq!(out.trim(), "s \"ready\"");
}

#[tokio::test]
async fn restart_rejects_unknown_names_and_keeps_serving() {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&mgr(), &[]).unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();

    let (ok, _, err) = busctl(
        &bus,
        &[
            "call",
            MANAGER.bus_name,
            MANAGER.path,
            "org.quantumos.Manager1",
            "Restart",
            "s",
            "spaec",
        ],
    );
    assert!(!ok);
    assert!(err.contains("unknown dimension `spaec`"), "{err}");
    assert!(
        err.contains("space, time, event"),
        "lists the known names: {err}"
    );

    // The error has the documented name, as a client library sees it.
    let conn = bus.connect().await.unwrap();
    let manager = Manager1Proxy::new(&conn).await.unwrap();
    match manager.restart("nope").await {
        Err(zbus::Error::MethodError(name, _, _)) => {
            assert_eq!(name.as_str(), "org.quantumos.Error.InvalidArgument")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    // A known name on a machine without systemd as PID 1 (this test bus): NotSupported for
    // root, PermissionDenied for anyone else (there is no polkit on a private bus).
    let expected = if nix::unistd::Uid::effective().is_root() {
        "org.quantumos.Error.NotSupported"
    } else {
        "org.quantumos.Error.PermissionDenied"
    };
    if !std::path::Path::new("/run/systemd/system").exists() {
        match manager.restart("space").await {
            Err(zbus::Error::MethodError(name, msg, _)) => {
                assert_eq!(name.as_str(), expected, "{msg:?}");
            }
            other => panic!("expected {expected}, got {other:?}"),
        }
    }

    // Still serving after bad input.
    let status = manager.get_status().await.unwrap();
    assert_eq!(status.dimensions.len(), 8);
}

#[tokio::test]
async fn second_manager_refuses_to_start_and_names_the_owner() {
    let mut bus = TestBus::start().unwrap();
    let first = bus.spawn_daemon(&mgr(), &[]).unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();

    let out = bus
        .command(mgr())
        .env("STATE_DIRECTORY", bus.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("org.quantumos.Manager1 is already owned by"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.0)),
        "names the owner's pid: {err}"
    );

    // The first one is unaffected.
    let conn = bus.connect().await.unwrap();
    let manager = Manager1Proxy::new(&conn).await.unwrap();
    assert_eq!(manager.get_status().await.unwrap().overall, "ok");
}

#[tokio::test]
async fn config_with_unknown_key_is_refused_with_file_and_key() {
    let bus = TestBus::start().unwrap();
    let config = bus.dir().join("manager.toml");
    std::fs::write(&config, "health_interval_sec = 2\nhealth_timout_ms = 100\n").unwrap();
    let out = bus
        .command(mgr())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&config.display().to_string()), "{err}");
    assert!(err.contains("unknown field `health_timout_ms`"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    std::fs::write(&config, "expected = [\"spcae\"]\n").unwrap();
    let out = bus
        .command(mgr())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown dimension `spcae`"), "{err}");
}

#[tokio::test]
async fn configured_dimension_that_is_missing_degrades_the_system() {
    let mut bus = TestBus::start().unwrap();
    let config = bus.dir().join("manager.toml");
    std::fs::write(&config, "expected = [\"time\"]\nunit_dirs = []\n").unwrap();
    bus.spawn_daemon(&mgr(), &["--config", config.to_str().unwrap()])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let conn = bus.connect().await.unwrap();
    let status = Manager1Proxy::new(&conn)
        .await
        .unwrap()
        .get_status()
        .await
        .unwrap();
    assert_eq!(status.overall, "degraded");
    let time = status.dimensions.iter().find(|d| d.name == "time").unwrap();
    assert_eq!(
        (time.state.as_str(), time.expected, time.present),
        ("absent", true, false)
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_releases_the_name() {
    let mut bus = TestBus::start().unwrap();
    let pid = bus.spawn_daemon(&mgr(), &[]).unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    bus.signal(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = bus.wait_exit(pid, Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}: {}", bus.log("steppps-mgr"));
    let (_, out, _) = busctl(&bus, &["list", "--no-pager"]);
    assert!(!out.contains(MANAGER.bus_name), "{out}");
}

async fn next_change(
    changes: &mut steppps::api::manager::DimensionChangedStream,
) -> steppps::api::manager::DimensionStatus {
    use futures_util::StreamExt;
    let signal = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("no DimensionChanged")
        .unwrap();
    signal.args().unwrap().status
}

/// Clients following `DimensionChanged` see a dimension appear, become ready, and vanish.
#[tokio::test]
async fn dimension_changed_follows_a_dimension() {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&mgr(), &[]).unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let conn = bus.connect().await.unwrap();
    let manager = Manager1Proxy::new(&conn).await.unwrap();
    let mut changes = manager.receive_dimension_changed().await.unwrap();

    let space = bus
        .spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    let mut states = Vec::new();
    while states.last().map(String::as_str) != Some("ready") {
        let status = next_change(&mut changes).await;
        assert_eq!(status.name, "space");
        states.push(status.state);
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("starting"),
        "{states:?}"
    );

    bus.signal(space, nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let status = next_change(&mut changes).await;
    assert_eq!(
        (status.name.as_str(), status.state.as_str(), status.present),
        ("space", "absent", false)
    );
}

/// Under systemd (`Type=notify`) a daemon sends READY=1 only once its name is owned, a STATUS=
/// line, and WATCHDOG=1 pings when WATCHDOG_USEC is set. Checked with a notify socket of our
/// own, as systemd would provide.
#[tokio::test]
async fn notifies_ready_after_owning_the_name_and_pings_the_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let bus = TestBus::start().unwrap();
    let socket_path = bus.dir().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = bus
        .command(mgr())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("no notification");
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    assert!(
        first
            .lines()
            .any(|l| l.starts_with("STATUS=serving org.quantumos.Manager1")),
        "{first}"
    );
    // READY=1 came after the name was owned.
    let (ok, out, _) = busctl(&bus, &["status", MANAGER.bus_name]);
    assert!(ok, "name owned when READY=1 arrived: {out}");

    let mut pings = 0;
    while pings < 2 {
        let n = socket.recv(&mut buf).expect("no watchdog ping");
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "WATCHDOG=1")
        {
            pings += 1;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut stopping = false;
    while let Ok(n) = socket.recv(&mut buf) {
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "STOPPING=1")
        {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 on SIGTERM");
    assert!(child.wait().unwrap().success());
}
