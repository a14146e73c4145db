//! steppps-psychologyd as a real process on a private bus: every method, bad input, a kill -9
//! that loses nothing acknowledged, and users kept apart.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use steppps::api::PSYCHOLOGY;
use steppps::api::dimension::dimension_proxy;
use steppps::api::psychology::{Context, Psychology1Proxy};
use steppps::testing::{DaemonPid, TestBus, workspace_binary};

async fn psychologyd(bus: &mut TestBus) -> DaemonPid {
    let pid = bus
        .spawn_daemon(&workspace_binary("steppps-psychologyd").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(PSYCHOLOGY.bus_name).await.unwrap();
    pid
}

fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{name}: {}", msg.as_deref().unwrap_or(""))
        }
        other => format!("{other}"),
    }
}

#[tokio::test]
async fn learns_predicts_completes_and_forgets() {
    let mut bus = TestBus::start().unwrap();
    psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();

    for _ in 0..4 {
        psy.record("make", "/src", 0, 1200).await.unwrap();
        psy.record("./run --fast", "/src", 0, 40).await.unwrap();
        psy.record("git status", "/etc", 0, 10).await.unwrap();
    }
    psy.record("git psuh", "/src", 1, 3).await.unwrap();
    psy.record("make", "/src", 0, 1100).await.unwrap();

    let next = psy.predict(&Context::default(), 3).await.unwrap();
    assert_eq!(next[0].command, "./run --fast", "{next:?}");
    assert!(next[0].reason.contains("make"), "{next:?}");
    assert!(next.len() <= 3);
    let explicit = Context {
        cwd: "/etc".into(),
        previous: vec!["./run --fast".into()],
    };
    let next = psy.predict(&explicit, 1).await.unwrap();
    assert_eq!(next[0].command, "git status");

    let done = psy.complete("git ", 5).await.unwrap();
    let lines: Vec<_> = done.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(
        lines[0], "git status",
        "the failing typo comes last: {lines:?}"
    );
    assert!(lines.contains(&"git psuh"));
    assert!(psy.complete("zzz", 3).await.unwrap().is_empty());

    let stats = psy.stats().await.unwrap();
    assert_eq!(stats.entries, 14);
    assert_eq!(stats.distinct_commands, 4);
    assert_eq!(stats.directories, 2);
    assert_eq!(stats.top[0], ("make".to_string(), 5));
    assert!((stats.failure_rate - 1.0 / 14.0).abs() < 1e-9);
    assert!(stats.first_ms > 0 && stats.last_ms >= stats.first_ms);

    let me = nix::unistd::Uid::current().as_raw();
    let history = psy.export(me).await.unwrap();
    assert_eq!(history.len(), 14);
    assert_eq!(history[0].command, "make");
    assert_eq!(history[0].cwd, "/src");
    assert_eq!(history[0].duration_ms, 1200);
    assert_eq!(history[12].exit_status, 1);

    assert_eq!(psy.forget("git *").await.unwrap(), 5);
    assert!(psy.complete("git", 5).await.unwrap().is_empty());
    assert_eq!(psy.forget("nothing-like-this").await.unwrap(), 0);

    let imported = psy
        .import_history(&["#1700000000", "ls -la", "", "cd /tmp", " secret"])
        .await
        .unwrap();
    assert_eq!(imported, 2);
    let history = psy.export(me).await.unwrap();
    assert_eq!(history[history.len() - 2].time_ms, 1_700_000_000_000);

    assert_eq!(psy.erase_all().await.unwrap(), 11);
    assert_eq!(psy.stats().await.unwrap().entries, 0);
    assert!(
        psy.predict(&Context::default(), 3)
            .await
            .unwrap()
            .is_empty()
    );

    let dim = dimension_proxy(&conn, &PSYCHOLOGY).await.unwrap();
    let (ok, detail) = dim.health().await.unwrap();
    assert!(ok, "{detail}");
    assert!(detail.contains("history.sqlite"), "{detail}");
    let metrics = dim.metrics().await.unwrap();
    assert_eq!(metrics["records"], 14.0);
    assert_eq!(dim.state().await.unwrap(), "ready");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let mut bus = TestBus::start().unwrap();
    psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();
    psy.record("ls", "/", 0, 1).await.unwrap();

    let invalid = "org.quantumos.Error.InvalidArgument";
    let cases: Vec<(&str, zbus::Error)> = vec![
        ("empty", psy.record("   ", "/", 0, 1).await.unwrap_err()),
        ("absolute", psy.record("ls", "tmp", 0, 1).await.unwrap_err()),
        (
            "4096",
            psy.record(&"y".repeat(10_000), "/", 0, 1)
                .await
                .unwrap_err(),
        ),
        (
            "k = 0",
            psy.predict(&Context::default(), 0).await.unwrap_err(),
        ),
        ("k = 51", psy.complete("l", 51).await.unwrap_err()),
        (
            "absolute",
            psy.predict(
                &Context {
                    cwd: "relative".into(),
                    previous: vec![],
                },
                3,
            )
            .await
            .unwrap_err(),
        ),
        ("pattern is empty", psy.forget("").await.unwrap_err()),
    ];
    for (needle, err) in cases {
        let text = error_name(&err);
        assert!(text.starts_with(invalid), "{text}");
        assert!(text.contains(needle), "{text} lacks {needle}");
    }
    // A wrong signature is refused by zbus itself, and the daemon is still there.
    let out = bus
        .busctl(&[
            "call",
            PSYCHOLOGY.bus_name,
            PSYCHOLOGY.path,
            PSYCHOLOGY.interface,
            "Predict",
            "su",
            "x",
            "3",
        ])
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(psy.stats().await.unwrap().entries, 1);
}

/// Every acknowledged Record survives a SIGKILL: the daemon restarted on the same state
/// directory exports them all.
#[tokio::test]
async fn kill_9_loses_nothing_acknowledged() {
    let mut bus = TestBus::start().unwrap();
    let pid = psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();
    for i in 0..200 {
        psy.record(&format!("cmd {i}"), "/w", 0, i).await.unwrap();
    }
    // Keep calls in flight while the kill lands: those may or may not be learned.
    let racing = {
        let psy = psy.clone();
        tokio::spawn(async move {
            for i in 200..400 {
                if psy.record(&format!("cmd {i}"), "/w", 0, i).await.is_err() {
                    return i;
                }
            }
            400
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    bus.signal(pid, Signal::SIGKILL).unwrap();
    bus.wait_exit(pid, Duration::from_secs(10)).unwrap();
    let acknowledged = racing.await.unwrap();
    drop(psy);

    psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();
    let me = nix::unistd::Uid::current().as_raw();
    let history = psy.export(me).await.unwrap();
    assert!(
        history.len() as u64 >= acknowledged,
        "{} entries after the kill, {acknowledged} acknowledged",
        history.len()
    );
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.command, format!("cmd {i}"), "in order, none missing");
    }
    let next = psy.predict(&Context::default(), 1).await.unwrap();
    assert_eq!(next.len(), 1, "the model is rebuilt from the database");
}

fn as_nobody(bus: &TestBus, args: &[&str]) -> std::process::Output {
    bus.command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "busctl",
            "--json=short",
        ])
        .arg(format!("--address={}", bus.address()))
        .args([
            "call",
            PSYCHOLOGY.bus_name,
            PSYCHOLOGY.path,
            PSYCHOLOGY.interface,
        ])
        .args(args)
        .output()
        .unwrap()
}

/// Each uid has its own model: nobody (65534) sees none of root's commands, root none of
/// nobody's, and nobody may not export root's history. Needs root (setpriv); skipped
/// otherwise.
#[tokio::test]
async fn users_are_kept_apart() {
    if !nix::unistd::Uid::effective().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let mut bus = TestBus::start().unwrap();
    psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();
    psy.record("cat /root/secret-plan", "/root", 0, 1)
        .await
        .unwrap();

    let out = as_nobody(&bus, &["Record", "ssit", "ls /tmp", "/tmp", "0", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&bus, &["Predict", "(sas)u", "/tmp", "0", "5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ls /tmp"), "{text}");
    assert!(
        !text.contains("secret-plan"),
        "nobody sees root's commands: {text}"
    );
    let out = as_nobody(&bus, &["Complete", "su", "cat", "5"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret-plan"));
    let out = as_nobody(&bus, &["Stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("65534") && !text.contains("secret"), "{text}");

    let out = as_nobody(&bus, &["Export", "u", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uid 65534 may not read the history of uid 0"),
        "{err}"
    );
    let out = as_nobody(&bus, &["Export", "u", "65534"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ls /tmp"));

    // Root sees only its own model, but may inspect nobody's history.
    let mine = psy.complete("", 10).await.unwrap();
    assert!(mine.iter().all(|s| s.command != "ls /tmp"), "{mine:?}");
    assert_eq!(psy.stats().await.unwrap().entries, 1);
    assert_eq!(psy.export(65534).await.unwrap()[0].command, "ls /tmp");
    // Erasing one user's data leaves the other's.
    let out = as_nobody(&bus, &["EraseAll"]);
    assert!(out.status.success());
    assert_eq!(psy.stats().await.unwrap().entries, 1);
    assert!(psy.export(65534).await.unwrap().is_empty());
}

/// The shipped D-Bus policy lets root own org.quantumos.Psychology1 and nobody else, and lets
/// anyone call it. Needs root (setpriv); skipped otherwise.
#[tokio::test]
async fn shipped_policy_lets_only_root_own_the_name() {
    if !nix::unistd::Uid::effective().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/dbus-1/system.d/org.quantumos.Psychology1.conf");
    let mut bus = TestBus::start_with_policies(&[&policy]).unwrap();
    let binary = workspace_binary("steppps-psychologyd").unwrap();
    let state = bus.dir().join("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let out = bus
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&binary)
        .env("STATE_DIRECTORY", &state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("steppps-psychologyd") {
        eprintln!("skipped: nobody cannot execute {}", binary.display());
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not allowed to own org.quantumos.Psychology1"),
        "{err}"
    );

    psychologyd(&mut bus).await;
    let out = as_nobody(&bus, &["Record", "ssit", "ls", "/", "0", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `qos-ctl psychology …` end to end: import a bash history file, then read it back.
/// Needs the qos-ctl binary (built by `cargo test --workspace`); skipped when it is absent.
#[tokio::test]
async fn qos_ctl_imports_predicts_and_erases() {
    let Ok(ctl) = workspace_binary("qos-ctl") else {
        eprintln!("skipped: qos-ctl is not built (cargo test --workspace builds it)");
        return;
    };
    let mut bus = TestBus::start().unwrap();
    psychologyd(&mut bus).await;
    let history = bus.dir().join("bash_history");
    let mut text = String::new();
    for _ in 0..5 {
        text.push_str("#1700000000\ncd project\nmake\n./build/app --check\n");
    }
    std::fs::write(&history, text).unwrap();
    let run = |args: &[&str]| {
        bus.command(&ctl)
            .args(["psychology"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["import", history.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 15 commands"));

    let out = run(&["predict", "--after", "make", "-k", "1"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("./build/app --check"), "{table}");
    let out = bus
        .command(&ctl)
        .args(["--json", "psychology", "stats"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["entries"], 15);
    let out = run(&["complete", "./b"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("./build/app --check"));

    let out = run(&["predict", "-k", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgument"));

    let out = run(&["forget", "cd *"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("forgot 5 commands"));
    let out = run(&["erase"]);
    assert_eq!(out.status.code(), Some(64), "erase wants --yes");
    let out = run(&["erase", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("erased 10 commands"));
    let out = run(&["export"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("none"));
}

/// 5000 commands of 4 KB: 20 MB, more than a reply should carry (dbus-daemon disconnects a
/// peer sending over 32 MiB). Export refuses it by name; ExportPage and qos-ctl page through.
#[tokio::test]
async fn a_long_history_is_exported_page_by_page() {
    let mut bus = TestBus::start().unwrap();
    psychologyd(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let psy = Psychology1Proxy::new(&conn).await.unwrap();
    let filler = "x".repeat(4000);
    let lines: Vec<String> = (0..5000).map(|i| format!("echo {i} {filler}")).collect();
    for chunk in lines.chunks(2500) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        assert_eq!(psy.import_history(&refs).await.unwrap(), 2500);
    }
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    let e = psy.export(uid).await.unwrap_err();
    let message = error_name(&e);
    assert!(
        message.contains("InvalidArgument") && message.contains("ExportPage"),
        "{message}"
    );

    // The byte budget cuts a page asked for 10 000 entries; the cursor goes on from there.
    let page = psy.export_page(uid, 0, 10_000).await.unwrap();
    let n = page.entries.len();
    assert!((2000..5000).contains(&n), "{n} entries in the first page");
    assert_ne!(page.next, 0);
    let mut got = page.entries;
    let mut after = page.next;
    while after != 0 {
        let page = psy.export_page(uid, after, 0).await.unwrap();
        assert!(page.entries.len() <= 1000);
        got.extend(page.entries);
        after = page.next;
    }
    let commands: Vec<&str> = got.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(
        commands,
        lines.iter().map(String::as_str).collect::<Vec<_>>()
    );

    if let Ok(ctl) = workspace_binary("qos-ctl") {
        let out = bus
            .command(&ctl)
            .args(["--json", "psychology", "export"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.as_array().map(Vec::len), Some(5000));
    }
    // Still serving.
    assert!(psy.stats().await.is_ok());
}
