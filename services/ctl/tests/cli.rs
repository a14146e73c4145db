//! qos-ctl end to end: steppps-mgr and steppps-spaced as real processes on a private bus,
//! driven by the real qos-ctl binary.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use steppps::api::{MANAGER, SPACE};
use steppps::testing::{TestBus, workspace_binary};

const QOS_CTL: &str = env!("CARGO_BIN_EXE_qos-ctl");

fn qos_ctl(bus: &TestBus, args: &[&str]) -> Output {
    bus.command(QOS_CTL).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dimension<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
}

/// A bus with the manager and the space daemon running.
async fn system() -> (TestBus, steppps::testing::DaemonPid) {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let space = bus
        .spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(SPACE.bus_name).await.unwrap();
    (bus, space)
}

/// Polls `qos-ctl status --json` until `accept` holds, for at most `limit`.
fn status_until(
    bus: &TestBus,
    limit: Duration,
    accept: impl Fn(&Value) -> bool,
) -> (Output, Value) {
    let start = Instant::now();
    loop {
        let out = qos_ctl(bus, &["status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if accept(&status) || start.elapsed() > limit {
            return (out, status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn status_reports_space_ready_then_absent_after_kill_9() {
    let (bus, space) = system().await;

    let (out, status) = status_until(&bus, Duration::from_secs(10), |s| {
        dimension(s, "space")["state"] == "ready"
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let row = dimension(&status, "space");
    assert_eq!(row["state"], "ready");
    assert_eq!(row["healthy"], true);
    assert_eq!(row["pid"], space.0);
    assert_eq!(row["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["overall"], "ok");
    assert_eq!(dimension(&status, "time")["state"], "not-installed");

    bus.signal(space, Signal::SIGKILL).unwrap();
    // Within 2 s the manager must report it absent, and status must exit 1.
    let (out, status) = status_until(&bus, Duration::from_secs(2), |s| {
        dimension(s, "space")["state"] == "absent"
    });
    assert_eq!(dimension(&status, "space")["state"], "absent", "{status}");
    assert_eq!(dimension(&status, "space")["present"], false);
    assert_eq!(status["overall"], "degraded");
    assert_eq!(out.status.code(), Some(1));

    let table = qos_ctl(&bus, &["status"]);
    assert_eq!(table.status.code(), Some(1));
    let text = stdout(&table);
    assert!(
        text.lines()
            .any(|l| l.starts_with("space") && l.contains("absent")),
        "{text}"
    );
    assert!(
        text.contains("degraded: 0 of 1 expected dimensions ready"),
        "{text}"
    );
}

#[tokio::test]
async fn space_cpu_matches_nproc() {
    let (bus, _) = system().await;
    let nproc: u64 = String::from_utf8(Command::new("nproc").output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let out = qos_ctl(&bus, &["space", "cpu", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cpu: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cpu["logical_cpus"], nproc);

    let out = qos_ctl(&bus, &["space", "cpu"]);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.contains("logical CPUs")).unwrap();
    assert_eq!(
        line.split(':').nth(1).unwrap().trim(),
        nproc.to_string(),
        "{text}"
    );
}

#[tokio::test]
async fn space_views_show_the_machine() {
    let (bus, _) = system().await;
    let out = qos_ctl(&bus, &["space", "net", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let net: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lo = net
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "lo")
        .unwrap();
    assert_eq!(lo["kind"], "loopback");
    assert!(
        lo["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "127.0.0.1/8"),
        "{lo}"
    );

    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let out = qos_ctl(&bus, &["space", "memory", "--json"]);
    let memory: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(memory["total_bytes"], total_kib * 1024);

    let out = qos_ctl(&bus, &["space", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let inventory: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "os", "cpu", "memory", "storage", "network", "devices", "thermal", "power", "pressure",
    ] {
        assert!(inventory.get(key).is_some(), "inventory lacks {key}");
    }
    let uname =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(inventory["os"]["kernel_release"], uname.trim());

    for view in ["os", "disks", "devices", "thermal", "power", "pressure"] {
        let out = qos_ctl(&bus, &["space", view]);
        assert_eq!(out.status.code(), Some(0), "space {view}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "space {view} printed nothing");
    }
}

#[tokio::test]
async fn unreachable_daemons_exit_2_with_a_hint() {
    let bus = TestBus::start().unwrap();
    let out = qos_ctl(&bus, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("steppps-mgr is not running"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("systemctl start steppps-mgr.service"),
        "{}",
        stderr(&out)
    );

    let out = qos_ctl(&bus, &["space", "cpu"]);
    assert_eq!(out.status.code(), Some(2));

    let out = bus
        .command(QOS_CTL)
        .args(["--bus", "unix:path=/nonexistent/bus", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

#[tokio::test]
async fn restart_refusals_are_clear() {
    let (bus, _) = system().await;
    let out = qos_ctl(&bus, &["restart", "spaec"]);
    assert_eq!(out.status.code(), Some(64), "usage error");
    assert!(
        stderr(&out).contains("possible values: space, time"),
        "{}",
        stderr(&out)
    );

    if !std::path::Path::new("/run/systemd/system").exists()
        && nix::unistd::Uid::effective().is_root()
    {
        let out = qos_ctl(&bus, &["restart", "space"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("does not run systemd as PID 1"), "{err}");
        assert!(err.contains("org.quantumos.Error.NotSupported"), "{err}");
    }
    // The manager still answers.
    assert!(qos_ctl(&bus, &["dimensions"]).status.success());
}

#[test]
fn help_man_page_and_completions() {
    let out = Command::new(QOS_CTL).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for word in [
        "status",
        "space",
        "restart",
        "--json",
        "--bus",
        "Exit status",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    let man = Command::new(QOS_CTL)
        .args(["generate", "man"])
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(stdout(&man).starts_with(".ie"), "roff output");
    assert!(stdout(&man).contains("qos\\-ctl"));
    let bash = Command::new(QOS_CTL)
        .args(["generate", "completions", "bash"])
        .output()
        .unwrap();
    assert!(
        stdout(&bash).contains("complete -F"),
        "bash completion script"
    );
    let bad = Command::new(QOS_CTL).args(["bogus"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(64));
}

/// `qos-ctl … | head`: when the reader leaves, qos-ctl ends by SIGPIPE as coreutils do, not
/// with a panic's backtrace on the terminal.
#[test]
fn a_reader_that_leaves_ends_it_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let mut child = Command::new(QOS_CTL)
        .args(["generate", "completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The pipe's read end is closed here; the script is far longer than the pipe's buffer.
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("qos"), "{first}");
    assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

/// As with systemd's tools, `qos-ctl` alone shows the status and a group alone runs its
/// listing, instead of printing help with a usage error. A group whose command needs an
/// argument (`prompt`) still says what is missing.
#[tokio::test]
async fn a_bare_command_runs_its_listing() {
    let (bus, _space) = system().await;
    status_until(&bus, Duration::from_secs(10), |s| {
        dimension(s, "space")["state"] == "ready"
    });

    let bare = qos_ctl(&bus, &["--json"]);
    assert_eq!(bare.status.code(), Some(0), "{}", stderr(&bare));
    let bare: Value = serde_json::from_slice(&bare.stdout).unwrap();
    assert_eq!(dimension(&bare, "space")["state"], "ready");
    assert_eq!(dimension(&bare, "event")["state"], "not-installed");

    // No event daemon on this bus: `event` went to it for `event list`, and says so.
    let event = qos_ctl(&bus, &["event"]);
    assert_eq!(event.status.code(), Some(2), "{}", stdout(&event));
    assert!(stderr(&event).contains("event"), "{}", stderr(&event));
    let event_list = qos_ctl(&bus, &["event", "list"]);
    assert_eq!(stderr(&event), stderr(&event_list));

    let prompt = qos_ctl(&bus, &["prompt"]);
    assert_eq!(prompt.status.code(), Some(64));
    assert!(
        stderr(&prompt).contains("Usage: qos-ctl prompt"),
        "{}",
        stderr(&prompt)
    );
}

/// `qos-ctl generate man --dir` (what the image stages into /usr/share/man/man1): a page for
/// every command, and every page a page refers to ("qos-ctl-job(1)") exists, so `man` never
/// answers "No manual entry" for a name qos-ctl's own pages give.
#[test]
fn every_command_has_the_man_page_its_parent_names() {
    let dir = std::env::temp_dir().join(format!("qos-ctl-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(QOS_CTL)
        .args(["generate", "man", "--dir"])
        .arg(&dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let page = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.1")));

    let submit = page("qos-ctl-job-submit").unwrap();
    assert!(submit.contains("\\-\\-shots"), "the command's own option");
    assert!(submit.contains("\\-\\-timeout"), "the global options");
    assert!(submit.contains("OpenQASM"), "the argument's help");
    assert!(
        submit.contains(".TH qos-ctl-job-submit 1 2023-11-14 \"QuantumOS"),
        "dated by SOURCE_DATE_EPOCH: {}",
        submit.lines().find(|l| l.starts_with(".TH")).unwrap_or("")
    );

    let mut referenced = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // clap_mangen lists a command's subcommands as `qos\-ctl\-job(1)`.
        for name in text
            .split(|c: char| c.is_whitespace())
            .filter_map(|word| word.strip_suffix("(1)"))
            .filter(|name| name.starts_with("qos\\-ctl"))
        {
            let name = name.replace("\\-", "-");
            assert!(
                page(&name).is_ok(),
                "a page names {name}(1), which is missing"
            );
            referenced += 1;
        }
    }
    assert!(referenced > 50, "only {referenced} references found");
    assert!(
        page("qos-ctl-help").is_err(),
        "clap's help command has no page"
    );

    // A directory that cannot be made: a clear error naming it.
    let bad = Command::new(QOS_CTL)
        .args(["generate", "man", "--dir", "/proc/qos-ctl-man"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("/proc/qos-ctl-man"),
        "{}",
        stderr(&bad)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
