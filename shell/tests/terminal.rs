//! qsh in a real terminal (tmux), typed at as a person would: a request in words, the
//! proposal, the confirmation and the command's output; Ctrl-C during a command; a destructive
//! proposal refused on a plain "y". Skips when tmux is missing; the request part also needs
//! the model (`ci/fetch-model`) unless QOS_REQUIRE_MODEL=1 makes its absence a failure.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, args: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("QOS_REQUIRE_TMUX").as_deref() != Ok("1"),
                "QOS_REQUIRE_TMUX=1 but tmux is not installed"
            );
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        let socket = format!("qsh-test-{}-{}", std::process::id(), args.len());
        let qsh = env!("CARGO_BIN_EXE_qsh");
        let cmd = format!(
            "env HOME={home} XDG_STATE_HOME={home}/state DBUS_SYSTEM_BUS_ADDRESS=unix:path={home}/no-bus TERM=xterm-256color {qsh} {args}",
            home = dir.display()
        );
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "160",
                "-y",
                "50",
                "-c",
            ])
            .arg(dir)
            .arg(cmd)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Some(Tmux { socket })
    }

    fn send(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                "t",
                "-S",
                "-200",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "waited {within:?} for {what:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn count(&self, what: &str) -> usize {
        self.screen().matches(what).count()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn model_available() -> bool {
    steppps_prompt::model::dirs_for_tests().is_some()
}

#[test]
fn ctrl_c_interrupts_the_command_not_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = Tmux::start(dir.path(), "") else {
        return;
    };
    t.send(&["echo ready-$((40+2))", "Enter"]);
    t.wait_for("ready-42", Duration::from_secs(10));
    t.send(&["sleep 30; echo not-interrupted", "Enter"]);
    std::thread::sleep(Duration::from_millis(700));
    let start = Instant::now();
    t.send(&["C-c"]);
    t.send(&["echo alive-$((1+1)) status", "Enter"]);
    let s = t.wait_for("alive-2 status", Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!s.lines().any(|l| l.trim() == "not-interrupted"), "{s}");
    // Exit statuses are the command's, as in bash.
    t.send(&["bash -c 'exit 7'; echo code-$?", "Enter"]);
    t.wait_for("code-7", Duration::from_secs(5));
    // cd changes qsh's own directory.
    t.send(&["cd /usr", "Enter"]);
    t.send(&["pwd", "Enter"]);
    t.wait_for("\n/usr\n", Duration::from_secs(5));
}

#[test]
fn a_request_in_words_is_proposed_confirmed_and_run() {
    if !model_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huge-file.bin"), vec![b'x'; 300_000]).unwrap();
    std::fs::write(dir.path().join("victim.txt"), "keep me").unwrap();
    let Some(t) = Tmux::start(dir.path(), "--offline") else {
        return;
    };
    t.wait_for("qsh:", Duration::from_secs(10));
    t.send(&["show the five biggest files here", "Enter"]);
    let s = t.wait_for("Run it? [y/N/e]", Duration::from_secs(30));
    assert!(
        s.contains("du -ah . | sort -rh | head -n 5") && s.contains("read-only"),
        "{s}"
    );
    t.send(&["y", "Enter"]);
    t.wait_for("huge-file.bin", Duration::from_secs(10));

    // A destructive proposal is not run on a plain "y".
    t.send(&["? delete the file victim.txt", "Enter"]);
    let s = t.wait_for("needs an explicit \"yes\"", Duration::from_secs(10));
    assert!(s.contains("victim.txt") && s.contains("destructive"), "{s}");
    t.send(&["y", "Enter"]);
    t.wait_for("not run", Duration::from_secs(5));
    assert!(dir.path().join("victim.txt").exists());
    let before = t.count("not run");
    t.send(&["? delete the file victim.txt", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    t.wait_for("needs an explicit", Duration::from_secs(10));
    t.send(&["n", "Enter"]);
    let start = Instant::now();
    while t.count("not run") == before {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(dir.path().join("victim.txt").exists());
}

#[test]
fn suggest_prints_the_command_for_scripts() {
    let qsh = env!("CARGO_BIN_EXE_qsh");
    let out = Command::new(qsh)
        .args(["--suggest", "show the five biggest files here"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    // No daemon: a clear error, exit 2.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));
    let out = Command::new(qsh)
        .args(["-c", "echo plain; exit 3"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "plain\n");
    assert_eq!(out.status.code(), Some(3));
    if !model_available() {
        return;
    }
    let out = Command::new(qsh)
        .args([
            "--offline",
            "--suggest",
            "which process listens on port 8080",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("8080"), "{text}");
    let out = Command::new(qsh)
        .args(["--offline", "--suggest", "write me a poem about the sea"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = Command::new(qsh)
        .args(["--offline", "--suggest", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
