//! The multi-call binary as the image runs it: through a link named after a daemon, on a
//! private bus, it is that daemon.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use steppps::api::dimension::dimension_proxy;
use steppps::api::{MANAGER, QUANTUM, SPACE};
use steppps::testing::TestBus;

const BINARY: &str = env!("CARGO_BIN_EXE_quantumos-daemons");

/// `dir/name` → the multi-call binary, as the image lays it out.
fn link(dir: &Path, name: &str) -> PathBuf {
    let at = dir.join(name);
    std::os::unix::fs::symlink(BINARY, &at).unwrap();
    at
}

#[tokio::test]
async fn each_link_runs_its_own_daemon() {
    let links = tempfile::tempdir().unwrap();
    let mut bus = TestBus::start().unwrap();
    for name in ["steppps-mgr", "steppps-spaced", "quantumd"] {
        bus.spawn_daemon(&link(links.path(), name), &[]).unwrap();
    }
    let connection = bus.connect().await.unwrap();
    for (endpoint, expected) in [
        (&MANAGER, "manager"),
        (&SPACE, "space"),
        (&QUANTUM, "quantum"),
    ] {
        bus.wait_for_name(endpoint.bus_name).await.unwrap();
        let dimension = dimension_proxy(&connection, endpoint).await.unwrap();
        assert_eq!(dimension.name().await.unwrap(), expected);
    }
}

#[test]
fn a_daemon_named_as_the_first_argument_runs_too() {
    let out = Command::new(BINARY)
        .args(["steppps-spaced", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("space dimension"), "{help}");
    assert!(help.contains("Usage: steppps-spaced"), "{help}");
}

#[test]
fn a_link_answers_with_its_own_name() {
    let links = tempfile::tempdir().unwrap();
    let out = Command::new(link(links.path(), "steppps-eventd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: steppps-eventd"), "{help}");
    assert!(help.contains("audit chain"), "{help}");
}

#[test]
fn an_unknown_name_is_refused_with_the_list() {
    let links = tempfile::tempdir().unwrap();
    let through_a_link = Command::new(link(links.path(), "steppps-nosuchd"));
    let mut by_argument = Command::new(BINARY);
    by_argument.arg("steppps-nosuchd");
    for mut cmd in [through_a_link, by_argument] {
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("steppps-nosuchd"), "{err}");
        assert!(
            err.contains("steppps-spaced") && err.contains("quantumd"),
            "{err}"
        );
    }
}

#[test]
fn list_prints_every_daemon() {
    let out = Command::new(BINARY).arg("--list").output().unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(names.iter().any(|n| n == "steppps-promptd"));
}
