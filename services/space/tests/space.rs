//! steppps-spaced as a real process on a private bus: its interfaces, its answers, and its
//! hotplug signals.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use steppps::api::SPACE;
use steppps::api::dimension::dimension_proxy;
use steppps::api::space::Space1Proxy;
use steppps::testing::{NOBODY, TestBus, shipped_policy, workspace_binary};

fn busctl(bus: &TestBus, args: &[&str]) -> String {
    let out = bus.busctl(args).unwrap();
    assert!(
        out.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn spaced(bus: &mut TestBus, args: &[&str]) {
    bus.spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), args)
        .unwrap();
    bus.wait_for_name(SPACE.bus_name).await.unwrap();
}

#[tokio::test]
async fn busctl_introspection_shows_space_and_dimension_interfaces() {
    let mut bus = TestBus::start().unwrap();
    spaced(&mut bus, &[]).await;
    let out = busctl(&bus, &["introspect", SPACE.bus_name, SPACE.path]);
    for needle in [
        "org.quantumos.Space1",
        "org.quantumos.Dimension1",
        ".GetInventory",
        ".LinkAdded",
        ".CpuCount",
        ".Health",
    ] {
        assert!(out.contains(needle), "introspection lacks {needle}:\n{out}");
    }
    let nproc = String::from_utf8(Command::new("nproc").output().unwrap().stdout).unwrap();
    let prop = busctl(
        &bus,
        &[
            "get-property",
            SPACE.bus_name,
            SPACE.path,
            "org.quantumos.Space1",
            "CpuCount",
        ],
    );
    assert_eq!(prop.trim(), format!("u {}", nproc.trim()));
    let name = busctl(
        &bus,
        &[
            "get-property",
            SPACE.bus_name,
            SPACE.path,
            "org.quantumos.Dimension1",
            "Name",
        ],
    );
    assert_eq!(name.trim(), "s \"space\"");
}

#[tokio::test]
async fn typed_answers_and_health() {
    let mut bus = TestBus::start().unwrap();
    spaced(&mut bus, &[]).await;
    let conn = bus.connect().await.unwrap();
    let space = Space1Proxy::new(&conn).await.unwrap();
    let cpu = space.get_cpu().await.unwrap();
    assert!(cpu.logical_cpus >= 1);
    assert_eq!(space.cpu_count().await.unwrap(), cpu.logical_cpus);
    let memory = space.get_memory().await.unwrap();
    assert_eq!(space.memory_total().await.unwrap(), memory.total_bytes);
    let pressure = space.get_pressure().await.unwrap();
    assert_eq!(
        pressure.available,
        std::path::Path::new("/proc/pressure/cpu").exists()
    );

    let dim = dimension_proxy(&conn, &SPACE).await.unwrap();
    let (ok, detail) = dim.health().await.unwrap();
    assert!(ok, "{detail}");
    assert!(
        detail.contains(&format!("{} CPUs", cpu.logical_cpus)),
        "{detail}"
    );
    let metrics = dim.metrics().await.unwrap();
    assert!(metrics["inventory_requests"] >= 2.0, "{metrics:?}");
    assert!(metrics["rss_bytes"] > 0.0);
    assert_eq!(dim.state().await.unwrap(), "ready");
}

#[tokio::test]
async fn config_with_unknown_key_is_refused() {
    let bus = TestBus::start().unwrap();
    let config = bus.dir().join("space.toml");
    std::fs::write(&config, "hotplugg = false\n").unwrap();
    let out = bus
        .command(workspace_binary("steppps-spaced").unwrap())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `hotplugg`"), "{err}");
    assert!(err.contains("space.toml"), "{err}");
}

/// A network link created while the daemon runs is announced with `LinkAdded`, and its removal
/// with `LinkRemoved`. Needs root (to create a veth pair); skipped otherwise.
#[tokio::test]
async fn link_added_and_removed_signals() {
    if !nix::unistd::Uid::effective().is_root() || Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and iproute2");
        return;
    }
    let mut bus = TestBus::start().unwrap();
    spaced(&mut bus, &[]).await;
    let conn = bus.connect().await.unwrap();
    let space = Space1Proxy::new(&conn).await.unwrap();
    let mut added = space.receive_link_added().await.unwrap();
    let mut removed = space.receive_link_removed().await.unwrap();

    let name = format!("qos{}", std::process::id() % 100_000);
    let peer = format!("{name}p");
    let ok = Command::new("ip")
        .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
        .status()
        .unwrap();
    assert!(ok.success(), "ip link add failed");

    let wait = Duration::from_secs(10);
    let mut seen = Vec::new();
    while !seen.contains(&name) {
        let signal = tokio::time::timeout(wait, added.next())
            .await
            .expect("no LinkAdded signal")
            .unwrap();
        seen.push(signal.args().unwrap().name().to_string());
    }
    let net = space.get_network().await.unwrap();
    assert!(
        net.iter().any(|i| i.name == name),
        "inventory lists the new link"
    );

    Command::new("ip")
        .args(["link", "del", &name])
        .status()
        .unwrap();
    let mut gone = Vec::new();
    while !gone.contains(&name) {
        let signal = tokio::time::timeout(wait, removed.next())
            .await
            .expect("no LinkRemoved signal")
            .unwrap();
        gone.push(signal.args().unwrap().name().to_string());
    }
}

/// The shipped D-Bus policy lets root own org.quantumos.Space1 and nobody else; a daemon
/// that may not own its name says which policy file to look at. Needs root (to run the daemon
/// as `nobody` with setpriv); skipped otherwise.
#[tokio::test]
async fn shipped_policy_lets_only_root_own_the_name() {
    let mut bus = TestBus::start_with_policies(&[&shipped_policy(SPACE.bus_name)]).unwrap();
    let binary = workspace_binary("steppps-spaced").unwrap();
    let Some(mut as_nobody) = bus.command_as(NOBODY, &binary) else {
        eprintln!("skipped: needs root and setpriv");
        return;
    };
    let out = as_nobody.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("steppps-spaced") {
        eprintln!("skipped: nobody cannot execute {}", binary.display());
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not allowed to own org.quantumos.Space1"),
        "{err}"
    );
    assert!(err.contains("org.quantumos.Space1.conf"), "{err}");

    spaced(&mut bus, &[]).await;
    // And any user may call it.
    let out = bus
        .command_as(NOBODY, "busctl")
        .unwrap()
        .arg(format!("--address={}", bus.address()))
        .args([
            "get-property",
            SPACE.bus_name,
            SPACE.path,
            "org.quantumos.Dimension1",
            "State",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "s \"ready\"",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
