//! The scheduler: 10,000 jobs submitted one by one into an on-disk SQLite store with artifacts
//! (the daemon's path, without the bus), submit → QUEUED latency p50/p99, then a restart that
//! reloads them all, waiting and then finished: time and memory, each restart in a fresh
//! process (freed memory of the first would hide the second's). `cargo bench -p quantumd
//! --bench scheduler`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use quantumd::driver::SimulatorDriver;
use quantumd::scheduler::{Scheduler, database_path};
use quantumd::store::Store;
use steppps::testing::rss_kib;

const JOB: &str = r#"apiVersion: quantumos.io/v1
kind: QuantumJob
metadata: {name: NAME}
spec:
  program:
    format: qasm2
    source: |
      OPENQASM 2.0; include "qelib1.inc"; qreg q[5]; creg c[5];
      h q[0]; cx q[0], q[1]; cx q[1], q[2]; cx q[2], q[3]; cx q[3], q[4];
      measure q -> c;
  shots: 100
"#;

/// Set in the child process that measures one restart: the store's directory.
const RELOAD_DIR: &str = "QUANTUMD_BENCH_RELOAD_DIR";

fn open(dir: &Path) -> Scheduler {
    let store = Store::open(&database_path(dir)).expect("store");
    Scheduler::new(
        store,
        Arc::new(SimulatorDriver::default()),
        Some(dir.to_path_buf()),
        Box::new(|_| {}),
    )
    .expect("scheduler")
}

/// One restart, in this (fresh) process: its time and how much memory the jobs took.
fn reload(dir: &Path) {
    let rss_kib = || rss_kib(std::process::id());
    let rss = rss_kib();
    let t = Instant::now();
    let s = open(dir);
    let elapsed = t.elapsed().as_secs_f64();
    let counts = s.counts();
    let what = if counts.contains_key("CANCELLED") {
        "finished"
    } else {
        "queued"
    };
    println!(
        "| restart: reload {} {what} jobs | {elapsed:.2} s, +{:.1} MiB RSS |",
        counts.values().sum::<usize>(),
        (rss_kib().saturating_sub(rss)) as f64 / 1024.0
    );
}

fn restart_in_a_child(dir: &Path) {
    let exe = std::env::current_exe().expect("this bench's path");
    let status = std::process::Command::new(exe)
        .env(RELOAD_DIR, dir)
        .status()
        .expect("the restart runs");
    assert!(status.success(), "the restart failed: {status}");
}

fn main() {
    if let Some(dir) = std::env::var_os(RELOAD_DIR) {
        return reload(Path::new(&dir));
    }
    let dir = std::env::temp_dir().join(format!("quantumd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The worker is not started: every job stays QUEUED.
    let s = open(&dir);
    let n = 10_000;
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let spec = JOB.replace("NAME", &format!("bench-{i}"));
        let t = Instant::now();
        let ids = s.submit(&spec).expect("submit");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(s.status(&ids[0]).expect("status").state, "QUEUED");
    }
    let total = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!("| scheduler | value |");
    println!("|---|---:|");
    println!(
        "| jobs queued | {} |",
        s.counts().get("QUEUED").copied().unwrap_or(0)
    );
    println!("| submit → QUEUED p50 | {:.2} ms |", p(0.5));
    println!("| submit → QUEUED p99 | {:.2} ms |", p(0.99));
    println!("| submit → QUEUED max | {:.2} ms |", p(1.0));
    println!("| submissions/s | {:.0} |", n as f64 / total);
    let ids: Vec<String> = s.list("", 0).into_iter().map(|j| j.id).collect();
    drop(s);
    restart_in_a_child(&dir);
    // The same jobs finished (cancelled): a restart keeps only their statuses in memory.
    let s = open(&dir);
    for id in &ids {
        s.cancel(id).expect("cancel");
    }
    drop(s);
    restart_in_a_child(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
