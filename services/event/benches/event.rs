//! Throughput of the event dimension, next to the limits of this machine.
//!
//! Run with `ci/bench-event`. Measures, on the local disk under a temporary directory:
//! bare SHA-256 of a record-sized payload and plain buffered file append of the encoded
//! records (the limits); chain append batched (4096 per commit) and unbatched (one commit per
//! event), with and without fsync at each commit, signed and unsigned; the per-event cost of
//! capture in-process (queue → writer thread → chain → committed); Verify speed; Query of the
//! newest records in a full segment (`qos-ctl event list`); and Emit over D-Bus on a private
//! bus (the daemon in release mode, several callers in flight).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use steppps::api::EVENT;
use steppps::api::event::{Event1Proxy, EventFilter};
use steppps::testing::{TestBus, workspace_binary};
use steppps_event::chain::record::encode_record;
use steppps_event::chain::{AuditChain, ChainOptions, Entry, FsyncPolicy, verify_dir};
use steppps_event::{Config, EventLog, FsyncSetting, Pending};

// No #[global_allocator]: the daemon runs on the system allocator, and so does this
// benchmark (src/main.rs says why).

fn entry(i: u64) -> Entry {
    Entry {
        time_usec: 1_700_000_000_000_000 + i,
        severity: 6,
        source: "bench".into(),
        kind: "bench.event".into(),
        fields: vec![
            ("unit".into(), "steppps-space.service".into()),
            ("pid".into(), "4242".into()),
            ("message".into(), "a typical short event message".into()),
        ],
    }
}

/// CPU time this process has used (all threads), from /proc/self/stat (clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A measurement: wall time and the process's CPU time around `f`.
fn measure(f: impl FnOnce()) -> (Duration, Duration) {
    let cpu = process_cpu();
    let started = Instant::now();
    f();
    (started.elapsed(), process_cpu().saturating_sub(cpu))
}

fn per(d: Duration, events: u64) -> String {
    let per = d.as_secs_f64() * 1e9 / events as f64;
    if per >= 10_000.0 {
        format!("{:.1} µs", per / 1000.0)
    } else {
        format!("{per:.0} ns")
    }
}

/// A table row: events per wall-clock second and per CPU second (the machine is shared: the
/// CPU figure is what the code costs, the wall figure what it got).
fn row(what: &str, events: u64, (wall, cpu): (Duration, Duration)) {
    let rate = events as f64 / wall.as_secs_f64();
    let cpu_rate = if cpu.is_zero() {
        "-".to_string()
    } else {
        group((events as f64 / cpu.as_secs_f64()) as u64)
    };
    println!(
        "| {what} | {} | {} | {cpu_rate} |",
        group(rate as u64),
        per(wall, events)
    );
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

fn chain_run(
    dir: &Path,
    events: u64,
    per_commit: u64,
    fsync: FsyncPolicy,
    sign: bool,
) -> (Duration, Duration) {
    let _ = std::fs::remove_dir_all(dir);
    let key = sign.then(|| ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let (mut chain, _) = AuditChain::open(
        dir,
        ChainOptions {
            fsync,
            signing_key: key,
            max_block_records: per_commit.max(1) as usize,
            ..ChainOptions::default()
        },
    )
    .expect("open chain");
    let entries: Vec<Entry> = (0..per_commit.min(events)).map(entry).collect();
    let t = measure(|| {
        let mut done = 0;
        while done < events {
            let n = per_commit.min(events - done);
            chain
                .append_batch(entries.iter().take(n as usize))
                .expect("append");
            chain.commit().expect("commit");
            done += n;
        }
    });
    drop(chain);
    t
}

fn main() {
    let only_chain = std::env::var_os("BENCH_SKIP_DBUS").is_some();
    // BENCH_ONLY=limits|chain|query|capture|dbus runs one part (profiling, quick checks).
    let only = std::env::var("BENCH_ONLY").ok();
    let wanted = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let tmp = tempfile::Builder::new()
        .prefix("qos-bench-event-")
        .tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
        .expect("temporary directory");
    let dir = tmp.path();
    println!("Temporary files in {} ({})", dir.display(), fs_type(dir));
    println!();
    println!("| what | events/s (wall) | per event (wall) | events per CPU-second |");
    println!("|---|---:|---:|---:|");

    if wanted("limits") {
        // Limits: hashing and appending the same bytes.
        let mut encoded = Vec::new();
        let hash = encode_record(&mut encoded, 1, &entry(1), &[0; 32]);
        let payload = encoded[5..encoded.len() - 32].to_vec();
        let n = 2_000_000u64;
        let t = measure(|| {
            let mut h = hash;
            for _ in 0..n {
                let mut d = Sha256::new();
                d.update(&payload);
                d.update(h);
                h = d.finalize().into();
            }
            std::hint::black_box(h);
        });
        row(
            &format!("limit: bare SHA-256 of a {}-byte record", payload.len()),
            n,
            t,
        );

        let file_path = dir.join("plain");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file_path)
            .expect("file");
        let batch: Vec<u8> = encoded.repeat(4096);
        let n = 4_000_000u64;
        let t = measure(|| {
            for _ in 0..n / 4096 {
                file.write_all(&batch).expect("write");
            }
        });
        row(
            &format!(
                "limit: plain file append, {}-byte records, 4096 per write",
                encoded.len()
            ),
            n,
            t,
        );
        let n = 200_000u64;
        let t = measure(|| {
            for _ in 0..n / 4096 {
                file.write_all(&batch).expect("write");
                file.sync_data().expect("fsync");
            }
        });
        row("limit: plain file append + fdatasync per 4096", n, t);
        let n = 300u64;
        let t = measure(|| {
            for _ in 0..n {
                file.write_all(&encoded).expect("write");
                file.sync_data().expect("fsync");
            }
        });
        row("limit: plain file append + fdatasync per record", n, t);
        drop(file);
    }

    if wanted("chain") {
        // The chain.
        let chain_dir = dir.join("chain");
        let n = 2_000_000;
        let t = chain_run(&chain_dir, n, 4096, FsyncPolicy::Never, false);
        row("chain append, batched 4096, no fsync", n, t);
        let t = chain_run(&chain_dir, n, 4096, FsyncPolicy::Never, true);
        row("chain append, batched 4096, no fsync, signed blocks", n, t);
        let t = chain_run(&chain_dir, n, 4096, FsyncPolicy::EveryCommit, true);
        row("chain append, batched 4096, fsync per batch, signed", n, t);
        let mut report = None;
        let t = measure(|| report = Some(verify_dir(&chain_dir, None).expect("verify")));
        let report = report.expect("report");
        assert!(report.ok, "{:?}", report.problem);
        row(
            "Verify (hashes, Merkle roots, signatures)",
            report.records,
            t,
        );
        let n = 100_000;
        let t = chain_run(&chain_dir, n, 1, FsyncPolicy::Never, false);
        row("chain append, unbatched (commit per event), no fsync", n, t);
        let n = 300;
        let t = chain_run(&chain_dir, n, 1, FsyncPolicy::EveryCommit, true);
        row("chain append, unbatched, fsync per event, signed", n, t);
    }

    if wanted("query") {
        // `qos-ctl event list` and `tail`: the newest 20 records of a full 64 MiB segment
        // (the default max_segment_mib), as a busy system's chain has it. Commits of 4
        // records: at a trickle nearly every record is its own commit, each with a seal.
        let state = dir.join("query");
        let (mut chain, _) = AuditChain::open(
            &state.join("chain"),
            ChainOptions {
                fsync: FsyncPolicy::Never,
                signing_key: Some(ed25519_dalek::SigningKey::from_bytes(&[7; 32])),
                ..ChainOptions::default()
            },
        )
        .expect("open chain");
        let entries: Vec<Entry> = (0..4)
            .map(|i| Entry {
                kind: format!("bench.event.{i}"),
                ..entry(i)
            })
            .collect();
        let mut records = 0u64;
        while chain.stats().bytes_written < 63 << 20 {
            chain.append_batch(entries.iter()).expect("append");
            chain.commit().expect("commit");
            records += 4;
        }
        drop(chain);
        let config = Config {
            rules_dirs: Vec::new(),
            ..Config::default()
        };
        let (log, _channels) = EventLog::open(config, &state).expect("event log");
        for (label, filter) in [
            ("newest 20", EventFilter::default()),
            (
                "newest 20 of one kind (1 in 4 records)",
                EventFilter {
                    kind: "bench.event.0".into(),
                    ..EventFilter::default()
                },
            ),
        ] {
            let filter = EventFilter {
                limit: 20,
                newest: true,
                ..filter
            };
            let rounds = 20;
            let t = measure(|| {
                for _ in 0..rounds {
                    let page = log.query(&filter).expect("query");
                    assert_eq!(page.records.len(), 20);
                }
            });
            println!(
                "| Query {label}, one 63 MiB segment ({records} records): {:.1} ms per query (wall), {:.1} ms CPU | | | |",
                t.0.as_secs_f64() * 1e3 / rounds as f64,
                t.1.as_secs_f64() * 1e3 / rounds as f64,
            );
        }
    }

    if wanted("capture") {
        // Capture in-process: offer → queue → writer thread → chain → committed.
        for (label, fsync) in [
            ("no fsync", FsyncSetting::None),
            ("fsync per batch", FsyncSetting::Batch),
        ] {
            let state = dir.join(format!("capture-{label}"));
            let config = Config {
                fsync,
                rules_dirs: Vec::new(),
                ..Config::default()
            };
            let (log, channels) = EventLog::open(config, &state).expect("event log");
            let (queue, committed_tx, actions_tx) =
                (channels.queue, channels.committed_tx, channels.actions_tx);
            // The records are handed on for Captured as when a client has subscribed (the
            // daemon's costliest case): a stand-in subscriber, and a thread that drains what
            // would be sent so that nothing is shed for that.
            let stand_in = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("tokio runtime");
            let subscription = stand_in.spawn(std::future::pending::<()>());
            log.subscribers.add(":bench", subscription.abort_handle());
            let mut committed = channels.committed;
            let drain = std::thread::spawn(move || while committed.blocking_recv().is_some() {});
            let writer = {
                let log = log.clone();
                std::thread::spawn(move || log.run_writer(queue, committed_tx, actions_tx))
            };
            let n = 1_000_000u64;
            let entries: Vec<Entry> = (0..1024).map(entry).collect();
            let t = measure(|| {
                for i in 0..n {
                    // The waiting form (as Emit and the journal use): a full queue slows the
                    // producer instead of shedding.
                    log.queue_blocking(Pending::new(entries[(i % 1024) as usize].clone()))
                        .expect("queue");
                }
                while log.stats().head_seq < n {
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
            row(
                &format!("capture in-process (queue → writer → chain), {label}"),
                n,
                t,
            );
            let shed: u64 = log.stats().shed.values().sum();
            if shed > 0 {
                println!("|   (shed during the run: {shed}) | | |");
            }
            // The writer and drain threads end with the process.
            drop((writer, drain));
        }
    }

    if only_chain || !wanted("dbus") {
        return;
    }
    // Emit over D-Bus.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for (label, fsync) in [("fsync per batch", "batch"), ("no fsync", "none")] {
            let mut bus = TestBus::start().expect("bus");
            let config = bus.dir().join("event.toml");
            std::fs::write(
                &config,
                format!("fsync = \"{fsync}\"\nrules_dirs = []\n[sources]\njournal = false\nunits = false\nudev = false\nbus = false\n"),
            )
            .expect("config");
            let binary = workspace_binary("steppps-eventd").expect("steppps-eventd built");
            bus.spawn_daemon(&binary, &["--config", &config.display().to_string()]).expect("spawn");
            bus.wait_for_name(EVENT.bus_name).await.expect("name");
            let conn = bus.connect().await.expect("connect");
            let event = Event1Proxy::new(&conn).await.expect("proxy");
            let fields: HashMap<String, String> = entry(0).fields.into_iter().collect();
            for _ in 0..200 {
                event.emit("bench", "warmup", "info", fields.clone()).await.expect("emit");
            }
            let n = 20_000u64;
            let in_flight = 64;
            let wall = Instant::now();
            let mut calls = futures_util::stream::FuturesUnordered::new();
            let mut sent = 0;
            let mut done = 0;
            use futures_util::StreamExt;
            while done < n {
                while sent < n && calls.len() < in_flight {
                    let event = event.clone();
                    let fields = fields.clone();
                    calls.push(async move { event.emit("bench", "bench.event", "info", fields).await });
                    sent += 1;
                }
                if let Some(r) = calls.next().await {
                    r.expect("emit");
                    done += 1;
                }
            }
            // CPU time is the daemon's and the bus's too: only wall time is shown.
            row(&format!("Emit over D-Bus, {in_flight} in flight, {label}"), n, (wall.elapsed(), Duration::ZERO));
            let one = if fsync == "batch" { 300u64 } else { 2_000 };
            let wall = Instant::now();
            for _ in 0..one {
                event.emit("bench", "bench.event", "info", fields.clone()).await.expect("emit");
            }
            row(&format!("Emit over D-Bus, one at a time, {label}"), one, (wall.elapsed(), Duration::ZERO));
        }
    });
}

fn fs_type(path: &Path) -> String {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}
