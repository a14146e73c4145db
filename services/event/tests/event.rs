//! steppps-eventd as a real process on a private bus: Emit and Query, rules and their
//! actions, Verify against damage, crashes at random moments, and bad input.
//!
//! `Emit` is authorized for uid 0 (polkit is not on a test bus), so tests that emit skip
//! when not run as root.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use steppps::api::dimension::dimension_proxy;
use steppps::api::event::{Event1Proxy, EventFilter, EventRecord};
use steppps::api::{EVENT, MANAGER, SPACE};
use steppps::testing::{DaemonPid, TestBus, wait_for_event_source, workspace_binary};
use steppps_event::chain::Frame;
use steppps_event::chain::record::decode_frame;
use steppps_event::chain::segment::{HEADER_LEN, list_segments};

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: Emit needs uid 0 on a bus without polkit");
            return;
        }
    };
}

/// A test bus with an event daemon configured from `extra` (TOML appended to a config that
/// turns every system source off) and a rules directory.
struct Fixture {
    bus: TestBus,
    config: PathBuf,
    rules: PathBuf,
    pid: Option<DaemonPid>,
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        let bus = TestBus::start().unwrap();
        let rules = bus.dir().join("rules");
        fs::create_dir_all(&rules).unwrap();
        let config = bus.dir().join("event.toml");
        fs::write(
            &config,
            format!(
                "rules_dirs = [\"{}\"]\n{extra}\n[sources]\njournal = false\nunits = false\nudev = false\nprocess = false\n",
                rules.display()
            ),
        )
        .unwrap();
        Fixture {
            bus,
            config,
            rules,
            pid: None,
        }
    }

    /// A test bus with an event daemon configured by `config` alone (TOML, written as is).
    fn with_config(config: &str) -> Fixture {
        let bus = TestBus::start().unwrap();
        let path = bus.dir().join("event.toml");
        fs::write(&path, config).unwrap();
        Fixture {
            rules: bus.dir().join("rules"),
            bus,
            config: path,
            pid: None,
        }
    }

    async fn start(&mut self) -> Event1Proxy<'static> {
        let binary = workspace_binary("steppps-eventd").unwrap();
        let config = self.config.display().to_string();
        self.pid = Some(
            self.bus
                .spawn_daemon(&binary, &["--config", &config])
                .unwrap(),
        );
        self.bus.wait_for_name(EVENT.bus_name).await.unwrap();
        let conn = self.bus.connect().await.unwrap();
        Event1Proxy::new(&conn).await.unwrap()
    }

    fn kill(&mut self, signal: Signal) {
        let pid = self.pid.take().unwrap();
        self.bus.signal(pid, signal).unwrap();
        self.bus.wait_exit(pid, Duration::from_secs(10)).unwrap();
    }

    fn chain_dir(&self) -> PathBuf {
        self.bus.dir().join("state/steppps-eventd/chain")
    }

    fn log(&self) -> String {
        self.bus.log("steppps-eventd")
    }
}

fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every record matching `filter`, following the paging cursor.
async fn query_all(event: &Event1Proxy<'_>, mut filter: EventFilter) -> Vec<EventRecord> {
    let mut out = Vec::new();
    loop {
        let page = event.query(filter.clone()).await.unwrap();
        let last = page.records.last().map(|r| r.seq);
        out.extend(page.records);
        match (page.more, last) {
            (true, Some(seq)) => filter.after_seq = seq,
            _ => return out,
        }
    }
}

/// The records matching `filter` as soon as there are any, asking again every 20 ms for
/// `patience` at most (empty when none came).
async fn wait_for_records(
    event: &Event1Proxy<'_>,
    filter: EventFilter,
    patience: Duration,
) -> Vec<EventRecord> {
    let deadline = Instant::now() + patience;
    loop {
        let found = query_all(event, filter.clone()).await;
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One of the daemon's `Metrics`.
async fn metric(event: &Event1Proxy<'_>, name: &str) -> f64 {
    let dimension = dimension_proxy(event.inner().connection(), &EVENT)
        .await
        .unwrap();
    let metrics = dimension.metrics().await.unwrap();
    *metrics
        .get(name)
        .unwrap_or_else(|| panic!("no metric {name}: {metrics:?}"))
}

/// (offset, seq) of every record frame, and the end offset of every seal, in a segment.
fn layout(path: &Path) -> (Vec<(usize, u64)>, Vec<usize>) {
    let data = fs::read(path).unwrap();
    let mut pos = HEADER_LEN;
    let (mut records, mut seals) = (Vec::new(), Vec::new());
    while pos < data.len() {
        let Ok((frame, n)) = decode_frame(&data[pos..]) else {
            break;
        };
        match frame {
            Frame::Record(r) => records.push((pos, r.seq)),
            Frame::Seal(_) => seals.push(pos + n),
        }
        pos += n;
    }
    (records, seals)
}

fn last_segment(dir: &Path) -> PathBuf {
    list_segments(dir).unwrap().last().unwrap().1.clone()
}

#[tokio::test]
async fn emitted_events_come_back_in_order_with_paging_and_filters() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    let mut captured = event.receive_captured().await.unwrap();
    event.subscribe().await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..25 {
        let severity = if i % 5 == 0 { "warning" } else { "info" };
        let n = i.to_string();
        let seq = event
            .emit(
                "test",
                &format!("step.{i}"),
                severity,
                fields(&[
                    ("n", &n),
                    ("parity", if i % 2 == 0 { "even" } else { "odd" }),
                ]),
            )
            .await
            .unwrap();
        seqs.push(seq);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The Captured signal carries the records too.
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = captured.next().await.unwrap();
            let r = s.args().unwrap().record().clone();
            if r.source == "test" {
                return r;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((first.seq, first.kind.as_str()), (seqs[0], "step.0"));

    // Pages of 10, in order, nothing lost or repeated.
    let filter = EventFilter {
        source: "test".into(),
        limit: 10,
        ..EventFilter::default()
    };
    let page = event.query(filter.clone()).await.unwrap();
    assert_eq!(page.records.len(), 10);
    assert!(page.more);
    let all = query_all(&event, filter.clone()).await;
    let kinds: Vec<String> = all.iter().map(|r| r.kind.clone()).collect();
    let want: Vec<String> = (0..25).map(|i| format!("step.{i}")).collect();
    assert_eq!(kinds, want);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[3].fields["n"], "3");
    assert_eq!(all[3].hash.len(), 64);

    // Filters: severity, fields, kind prefix, newest.
    let warnings = query_all(
        &event,
        EventFilter {
            source: "test".into(),
            severity: "warning".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(warnings.len(), 5);
    let even = query_all(
        &event,
        EventFilter {
            fields: fields(&[("parity", "even")]),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(even.len(), 13);
    let prefix = query_all(
        &event,
        EventFilter {
            kind: "step.1*".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(prefix.len(), 11);
    let newest = event
        .query(EventFilter {
            source: "test".into(),
            limit: 3,
            newest: true,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = newest.records.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["step.22", "step.23", "step.24"]);
    assert!(newest.more);

    let stats = event.stats().await.unwrap();
    assert_eq!(stats.captured["test"], 25);
    assert!(stats.signing);
    assert_eq!(stats.fsync, "batch");
    assert_eq!(stats.sources["journal"], "off");
}

#[tokio::test]
async fn a_rule_fires_its_action_and_the_action_is_recorded() {
    needs_root!();
    let mut fx = Fixture::new("");
    fs::write(
        fx.rules.join("login.toml"),
        r#"
[[rule]]
name = "too-many-failures"
source = "test"
kind = "login.failed"
count = 3
within_sec = 60
group_by = "user"
action = "alert"
message = "{user} failed to log in 3 times"
"#,
    )
    .unwrap();
    let event = fx.start().await;
    assert_eq!(event.stats().await.unwrap().rules, 1);
    let mut alerts = event.receive_alert().await.unwrap();
    for user in ["ann", "bob", "ann", "ann"] {
        event
            .emit("test", "login.failed", "notice", fields(&[("user", user)]))
            .await
            .unwrap();
    }
    let alert = tokio::time::timeout(Duration::from_secs(10), alerts.next())
        .await
        .expect("no Alert signal")
        .unwrap();
    let args = alert.args().unwrap();
    assert_eq!(*args.rule(), "too-many-failures");
    assert_eq!(*args.message(), "ann failed to log in 3 times");
    let trigger = *args.seq();

    let actions = wait_for_records(
        &event,
        EventFilter {
            source: "rules".into(),
            ..EventFilter::default()
        },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].kind, "action.alert");
    assert_eq!(actions[0].fields["trigger_seq"], trigger.to_string());
    assert_eq!(actions[0].fields["outcome"], "ok");
    assert_eq!(event.stats().await.unwrap().actions_taken, 1);
}

/// 10 000 records of long journal lines would make a reply larger than dbus-daemon lets a
/// peer send (32 MiB), and it would disconnect the event dimension for it. A page stops at
/// 16 MiB instead, and says there is more.
#[tokio::test]
async fn a_page_of_big_records_stays_under_the_bus_message_limit() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    let line = "x".repeat(8000);
    let big: Vec<(String, String)> = (0..32).map(|i| (format!("f{i}"), line.clone())).collect();
    let big: HashMap<String, String> = big.into_iter().collect();
    let count = 150; // 150 × 256 KB: 38 MB in all
    for i in 0..count {
        event
            .emit("big", &format!("line.{i}"), "info", big.clone())
            .await
            .unwrap();
    }
    let filter = EventFilter {
        source: "big".into(),
        limit: 10_000,
        ..EventFilter::default()
    };
    for newest in [false, true] {
        let page = event
            .query(EventFilter {
                newest,
                ..filter.clone()
            })
            .await
            .unwrap();
        assert!(page.more, "newest: {newest}");
        let n = page.records.len();
        assert!((50..count).contains(&n), "newest: {newest}: {n} records");
        if newest {
            assert_eq!(
                page.records.last().unwrap().kind,
                format!("line.{}", count - 1)
            );
        }
    }
    // Paging on gets every record, and the daemon is still on the bus.
    assert_eq!(query_all(&event, filter).await.len(), count);
    assert!(event.stats().await.is_ok());
}

#[tokio::test]
async fn verify_is_ok_then_names_the_record_with_a_flipped_byte() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    let mut seqs = Vec::new();
    for i in 0..20 {
        seqs.push(
            event
                .emit(
                    "test",
                    "tamper.me",
                    "info",
                    fields(&[("i", &i.to_string())]),
                )
                .await
                .unwrap(),
        );
    }
    let ok = event.verify().await.unwrap();
    assert!(ok.ok, "{ok:?}");
    assert!(ok.records >= 20);
    assert_eq!(ok.signed_blocks, ok.blocks);

    let victim = seqs[9];
    let seg = last_segment(&fx.chain_dir());
    let (records, _) = layout(&seg);
    let (offset, _) = records.iter().find(|(_, s)| *s == victim).unwrap();
    let mut data = fs::read(&seg).unwrap();
    // The first byte of the source text (`test`) becomes `best`.
    let at = offset + 5 + 8 + 8 + 1 + 2;
    assert_eq!(data[at], b't');
    data[at] = b'b';
    fs::write(&seg, &data).unwrap();

    let bad = event.verify().await.unwrap();
    assert!(!bad.ok);
    assert_eq!(bad.problem, "bad-record");
    assert_eq!(bad.bad_seq, victim);
    assert!(
        bad.message.contains(&format!("record {victim}")),
        "{}",
        bad.message
    );
    assert!(bad.message.contains("altered"), "{}", bad.message);
}

#[tokio::test]
async fn deleting_the_last_block_is_reported_as_truncation() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    for i in 0..10 {
        event
            .emit("test", "block", "info", fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    assert!(event.verify().await.unwrap().ok);
    let seg = last_segment(&fx.chain_dir());
    let (_, seals) = layout(&seg);
    // Each Emit was its own commit, so its own block: cut the last one off.
    let cut = seals[seals.len() - 2];
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let result = event.verify().await.unwrap();
    assert!(!result.ok);
    assert_eq!(result.problem, "truncated", "{result:?}");
    assert!(result.message.contains("missing"), "{}", result.message);
}

/// A writer emitting events is killed with SIGKILL 20 times at random moments: every event
/// acknowledged before a kill is there afterwards, with the seq it was acknowledged with, and
/// the chain verifies.
#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    needs_root!();
    let mut fx = Fixture::new("");
    let mut acked: Vec<(String, u64)> = Vec::new();
    let mut seed = (std::process::id() as u64) ^ 0x9e37_79b9_7f4a_7c15;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let started = Instant::now();
    for round in 0..20 {
        let event = fx.start().await;
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for w in 0..4 {
            let event = event.clone();
            let stop = stop.clone();
            let progress = progress.clone();
            writers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("{round}-{w}-{i}");
                    match event
                        .emit("fault", "write", "info", fields(&[("id", &id)]))
                        .await
                    {
                        Ok(seq) => {
                            mine.push((id, seq));
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                    i += 1;
                }
                mine
            }));
        }
        // Writing has begun (however loaded the machine), then a random moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(random(120))).await;
        fx.kill(Signal::SIGKILL);
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            acked.extend(w.await.unwrap());
        }
    }
    let event = fx.start().await;
    let stored = query_all(
        &event,
        EventFilter {
            source: "fault".into(),
            limit: 10_000,
            ..EventFilter::default()
        },
    )
    .await;
    let by_id: HashMap<&str, u64> = stored
        .iter()
        .map(|r| (r.fields["id"].as_str(), r.seq))
        .collect();
    assert!(
        acked.len() > 100,
        "only {} events acknowledged",
        acked.len()
    );
    for (id, seq) in &acked {
        assert_eq!(
            by_id.get(id.as_str()),
            Some(seq),
            "acknowledged event {id} (seq {seq}) is missing"
        );
    }
    let verify = event.verify().await.unwrap();
    assert!(verify.ok, "{verify:?}\n{}", fx.log());
    eprintln!(
        "{} events acknowledged across 20 SIGKILLs, all present, chain verifies ({} records, {:.1} s)",
        acked.len(),
        verify.records,
        started.elapsed().as_secs_f64()
    );
}

/// Self-healing on a private bus: a real steppps-spaced is killed under the event daemon's eye;
/// the shipped rule asks a real steppps-mgr to restart it. Without systemd the manager answers
/// NotSupported, so this proves detection → rule → action → record; only the booted image
/// proves the daemon comes back.
#[tokio::test]
async fn a_dimension_killed_under_its_eye_is_restarted_through_the_manager_and_recorded() {
    needs_root!();
    let mut fx = Fixture::new("");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/quantumos/event.d/10-dimensions.toml");
    fs::copy(&shipped, fx.rules.join("10-dimensions.toml")).unwrap();
    fx.bus
        .spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    fx.bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let event = fx.start().await;
    // The bus source subscribes after the name is owned: wait until it says it is on.
    if let Err(e) = wait_for_event_source(&event, "bus").await {
        panic!("{e}:\n{}", fx.log());
    }
    let space = fx
        .bus
        .spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    fx.bus.wait_for_name(SPACE.bus_name).await.unwrap();
    // Let the event daemon see it appear (and its `ready` state).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let killed = Instant::now();
    fx.bus.signal(space, Signal::SIGKILL).unwrap();
    let action = wait_for_records(
        &event,
        EventFilter {
            source: "rules".into(),
            kind: "action.restart-dimension".into(),
            ..EventFilter::default()
        },
        Duration::from_secs(20),
    )
    .await
    .into_iter()
    .next()
    .unwrap_or_else(|| panic!("no restart action recorded:\n{}", fx.log()));
    let reaction = killed.elapsed();
    assert_eq!(action.fields["target"], "space");
    assert_eq!(action.fields["rule"], "dimension-died");
    // The manager was asked: without systemd it says so, and that answer is on the record.
    assert_eq!(action.fields["outcome"], "failed", "{action:?}");
    assert!(
        action.fields["detail"].contains("NotSupported")
            || action.fields["detail"].contains("systemd"),
        "{action:?}"
    );

    let vanished = query_all(
        &event,
        EventFilter {
            source: "bus".into(),
            kind: "dimension.vanished".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(vanished.len(), 1);
    assert_eq!(vanished[0].fields["clean"], "no");
    assert_eq!(action.fields["trigger_seq"], vanished[0].seq.to_string());
    eprintln!(
        "death → restart request recorded in {:.0} ms (rule reaction {} ms after the vanishing was recorded)",
        reaction.as_secs_f64() * 1000.0,
        action.fields["since_trigger_ms"]
    );

    // A clean stop (SIGTERM: `stopping` first) is not a death.
    let space = fx
        .bus
        .spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    fx.bus.wait_for_name(SPACE.bus_name).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.bus.signal(space, Signal::SIGTERM).unwrap();
    fx.bus.wait_exit(space, Duration::from_secs(10)).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let vanished = query_all(
        &event,
        EventFilter {
            source: "bus".into(),
            kind: "dimension.vanished".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(vanished.len(), 2);
    assert_eq!(vanished[1].fields["clean"], "yes");
    let actions = query_all(
        &event,
        EventFilter {
            source: "rules".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(
        actions.len(),
        1,
        "a clean stop triggered an action: {actions:?}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_the_daemon_keeps_serving() {
    needs_root!();
    let mut fx = Fixture::new("");
    fs::write(
        fx.rules.join("good.toml"),
        "[[rule]]\nname = \"r\"\nsource = \"test\"\naction = \"alert\"\n",
    )
    .unwrap();
    let event = fx.start().await;
    let refused = |e: zbus::Error| {
        let (name, message) = steppps::error::describe_remote(&e);
        (name.unwrap_or_default(), message)
    };
    let big = "x".repeat(100_000);
    let (name, message) = refused(
        event
            .emit("test", "big", "info", fields(&[("blob", &big)]))
            .await
            .unwrap_err(),
    );
    assert_eq!(name, "org.quantumos.Error.InvalidArgument");
    assert!(
        message.contains("field `blob`") && message.contains("8192"),
        "{message}"
    );
    let (_, message) = refused(
        event
            .emit("test", "k", "loud", HashMap::new())
            .await
            .unwrap_err(),
    );
    assert!(message.contains("unknown severity `loud`"), "{message}");
    let (_, message) = refused(
        event
            .emit("", "k", "info", HashMap::new())
            .await
            .unwrap_err(),
    );
    assert!(message.contains("source must not be empty"), "{message}");
    let (_, message) = refused(
        event
            .emit("rules", "k", "info", HashMap::new())
            .await
            .unwrap_err(),
    );
    assert!(message.contains("reserved"), "{message}");
    let many: HashMap<String, String> = (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    assert!(event.emit("test", "many", "info", many).await.is_err());
    let (_, message) = refused(
        event
            .query(EventFilter {
                severity: "loud".into(),
                ..EventFilter::default()
            })
            .await
            .unwrap_err(),
    );
    assert!(message.contains("unknown severity"), "{message}");

    // A bogus rules file: the error names it and its line, and the previous rules stay.
    fs::write(
        fx.rules.join("zz-bogus.toml"),
        "[[rule]]\nname = \"b\"\naction = \"alert\"\ncount = \"three\"\n",
    )
    .unwrap();
    let (name, message) = refused(event.reload_rules().await.unwrap_err());
    assert_eq!(name, "org.quantumos.Error.InvalidArgument");
    assert!(
        message.contains("zz-bogus.toml") && message.contains("line 4"),
        "{message}"
    );
    assert!(message.contains("previous rules stay"), "{message}");
    assert_eq!(event.stats().await.unwrap().rules, 1);
    fs::remove_file(fx.rules.join("zz-bogus.toml")).unwrap();
    assert_eq!(event.reload_rules().await.unwrap(), 1);

    // Still serving, nothing stored from the refused calls.
    let seq = event
        .emit("test", "after", "info", HashMap::new())
        .await
        .unwrap();
    let all = query_all(
        &event,
        EventFilter {
            source: "test".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].seq, seq);
}

#[tokio::test]
async fn a_segment_damaged_at_startup_is_kept_aside_and_a_new_one_started() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    for i in 0..10 {
        event
            .emit("test", "before", "info", fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    fx.kill(Signal::SIGTERM);
    let seg = last_segment(&fx.chain_dir());
    let (records, _) = layout(&seg);
    let (offset, _) = records[3];
    let mut data = fs::read(&seg).unwrap();
    data[offset + 5 + 8] ^= 0x55;
    fs::write(&seg, &data).unwrap();

    let event = fx.start().await;
    let verify = event.verify().await.unwrap();
    assert!(verify.ok, "{verify:?}");
    assert!(
        verify.notes.iter().any(|n| n.contains("set aside")),
        "{verify:?}"
    );
    let quarantined = query_all(
        &event,
        EventFilter {
            kind: "chain.quarantined".into(),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(quarantined.len(), 1);
    let kept = PathBuf::from(&quarantined[0].fields["file"]);
    assert!(
        kept.exists(),
        "the damaged file is kept for forensics: {}",
        kept.display()
    );
    assert!(
        quarantined[0].fields["reason"].contains("hash"),
        "{quarantined:?}"
    );
    event
        .emit("test", "after", "info", HashMap::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn config_with_unknown_key_is_refused() {
    let bus = TestBus::start().unwrap();
    let config = bus.dir().join("event.toml");
    fs::write(&config, "fsync = \"batch\"\nretension = 4\n").unwrap();
    let out = bus
        .command(workspace_binary("steppps-eventd").unwrap())
        .arg("--config")
        .arg(&config)
        .env("STATE_DIRECTORY", bus.dir().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `retension`") && err.contains("line 2"),
        "{err}"
    );
    fs::write(&config, "fsync = \"sometimes\"\n").unwrap();
    let out = bus
        .command(workspace_binary("steppps-eventd").unwrap())
        .arg("--config")
        .arg(&config)
        .env("STATE_DIRECTORY", bus.dir().join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sometimes") && err.contains("batch"), "{err}");
}

/// The shipped D-Bus policy lets root own org.quantumos.Event1 and nobody else. Needs root
/// (to run the daemon as `nobody` with setpriv); skipped otherwise.
#[tokio::test]
async fn shipped_policy_lets_only_root_own_the_name() {
    if !is_root()
        || std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let policy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/dbus-1/system.d/org.quantumos.Event1.conf");
    let bus = TestBus::start_with_policies(&[&policy]).unwrap();
    let binary = workspace_binary("steppps-eventd").unwrap();
    let state = bus.dir().join("nobody-state");
    fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let out = bus
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&binary)
        .env("STATE_DIRECTORY", &state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("steppps-eventd") && !err.contains("own") {
        eprintln!("skipped: nobody cannot execute {}", binary.display());
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not allowed to own org.quantumos.Event1"),
        "{err}"
    );
}

/// `qos-ctl event verify PATH` verifies a copy of the chain without the daemon: ok (exit 0),
/// then a flipped byte is named (exit 1).
#[tokio::test]
async fn qos_ctl_verifies_a_copy_offline() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    for i in 0..5 {
        event
            .emit("test", "copy", "info", fields(&[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    fx.kill(Signal::SIGTERM);
    let copy = fx.bus.dir().join("copy");
    fs::create_dir_all(&copy).unwrap();
    for entry in fs::read_dir(fx.chain_dir()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let ctl = workspace_binary("qos-ctl").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&ctl)
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
            .args(["--bus", "unix:path=/nonexistent"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let path = copy.display().to_string();
    let (code, out) = run(&["event", "verify", &path]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("ok: "), "{out}");

    let seg = last_segment(&copy);
    let (records, _) = layout(&seg);
    let (offset, seq) = records[2];
    let mut data = fs::read(&seg).unwrap();
    data[offset + 5 + 8 + 8 + 1 + 2] ^= 0x20;
    fs::write(&seg, &data).unwrap();
    let (code, out) = run(&["event", "verify", &path]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("record {seq}")), "{out}");
    let (_, json) = run(&["--json", "event", "verify", &path]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["bad_seq"], seq);
}

/// Without the steppps module (never loaded on a build machine), process events come from
/// the kernel's proc connector: a child we start is recorded forking, executing and exiting
/// with its status. Subscribing needs CAP_NET_ADMIN (root on CI, where
/// `QOS_REQUIRE_PROC_CONNECTOR` makes a refusal fail the test).
#[tokio::test]
async fn without_the_module_process_events_come_from_the_proc_connector() {
    if std::path::Path::new(steppps::process_events::DEVICE).exists() {
        eprintln!("skipped: the steppps module is loaded here, so the connector is not used");
        return;
    }
    let mut fx = Fixture::with_config(
        "rules_dirs = []\n[sources]\njournal = false\nunits = false\nudev = false\nbus = false\n",
    );
    let event = fx.start().await;
    if let Err(e) = wait_for_event_source(&event, "process").await {
        let state = event.stats().await.unwrap().sources["process"].clone();
        if std::env::var_os("QOS_REQUIRE_PROC_CONNECTOR").is_some() {
            panic!("{e}: {state}");
        }
        assert!(state.contains("CAP_NET_ADMIN"), "{state}");
        eprintln!("skipped: {state}");
        return;
    }
    let state = event.stats().await.unwrap().sources["process"].clone();
    assert!(state.contains("proc connector"), "{state}");

    let status = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    // Our child, found by its parent and the status it ended with.
    let exit = wait_for_records(
        &event,
        EventFilter {
            source: "process".into(),
            kind: "process.exit".into(),
            fields: fields(&[
                ("exit_code", "7"),
                ("ppid", &std::process::id().to_string()),
            ]),
            ..EventFilter::default()
        },
        Duration::from_secs(20),
    )
    .await
    .into_iter()
    .next()
    .expect("no process.exit with exit_code 7 recorded");
    let pid = exit.fields["pid"].clone();
    let execs = query_all(
        &event,
        EventFilter {
            source: "process".into(),
            kind: "process.exec".into(),
            fields: fields(&[("pid", &pid)]),
            ..EventFilter::default()
        },
    )
    .await;
    assert_eq!(execs.len(), 1, "{execs:?}");
    // Read from /proc while sh ran; it may already have been gone (then the fields are absent,
    // never wrong).
    if let Some(path) = execs[0].fields.get("filename") {
        assert!(path.ends_with("sh"), "{path}");
    }
    assert!(!execs[0].fields.contains_key("cgroup_id"));
}

/// What the units source calls on PID 1's manager: `Subscribe`. The test plays systemd on its
/// private bus (where the real one never is) to join late, as PID 1 can at boot.
struct LateSystemd;

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl LateSystemd {
    fn subscribe(&self) {}
}

/// At boot the daemon can start before PID 1 has connected to the new dbus-daemon. The units
/// source then waits for systemd instead of giving up for the whole boot: its state says so,
/// and once systemd owns its name, a unit's change becomes an event.
#[tokio::test]
async fn the_units_source_waits_for_systemd_to_join_the_bus() {
    let mut fx = Fixture::with_config(
        "rules_dirs = []\n[sources]\njournal = false\nunits = true\nudev = false\nprocess = false\nbus = false\n",
    );
    let event = fx.start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = event.stats().await.unwrap().sources.get("units").cloned();
        if state.as_deref() == Some(steppps_event::sources::units::WAITING) {
            break;
        }
        assert!(Instant::now() < deadline, "units source state: {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let systemd = zbus::connection::Builder::address(fx.bus.address())
        .name("org.freedesktop.systemd1")
        .serve_at("/org/freedesktop/systemd1", LateSystemd)
        .build()
        .await
        .unwrap();
    wait_for_event_source(&event, "units").await.unwrap();
    let changed = HashMap::from([("ActiveState", zbus::Variant::from("active"))]);
    systemd
        .emit_signal(
            None::<()>,
            "/org/freedesktop/systemd1/unit/late_2eservice",
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &(
                "org.freedesktop.systemd1.Unit",
                changed,
                Vec::<String>::new(),
            ),
        )
        .await
        .unwrap();
    let started = wait_for_records(
        &event,
        EventFilter {
            source: "units".into(),
            kind: "unit.started".into(),
            fields: fields(&[("unit", "late.service")]),
            ..EventFilter::default()
        },
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(started.len(), 1, "{started:?}");
}

/// `Captured` goes out only for records committed while some client has subscribed; a
/// subscriber that leaves the bus without unsubscribing is forgotten.
#[tokio::test]
async fn captured_is_sent_only_while_a_client_subscribes() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    for _ in 0..5 {
        event
            .emit("test", "unheard", "info", fields(&[]))
            .await
            .unwrap();
    }
    assert_eq!(metric(&event, "captured_signals_sent").await, 0.0);

    let listener_connection = fx.bus.connect().await.unwrap();
    let listener = Event1Proxy::new(&listener_connection).await.unwrap();
    let mut captured = listener.receive_captured().await.unwrap();
    listener.subscribe().await.unwrap();
    listener.subscribe().await.unwrap(); // twice counts once
    assert_eq!(metric(&event, "captured_subscribers").await, 1.0);
    let seq = event
        .emit("test", "heard", "info", fields(&[]))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), captured.next())
        .await
        .unwrap()
        .unwrap();
    let record = first.args().unwrap().record().clone();
    assert_eq!((record.seq, record.kind.as_str()), (seq, "heard"));
    assert_eq!(metric(&event, "captured_signals_sent").await, 1.0);

    // The listener goes away without Unsubscribe: the daemon notices and stops sending.
    drop(captured);
    drop(listener);
    drop(listener_connection);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&event, "captured_subscribers").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the departed subscriber is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        event
            .emit("test", "unheard", "info", fields(&[]))
            .await
            .unwrap();
    }
    assert_eq!(metric(&event, "captured_signals_sent").await, 1.0);

    // Unsubscribing without a subscription says so.
    let err = event.unsubscribe().await.unwrap_err().to_string();
    assert!(err.contains("has not subscribed"), "{err}");
    event.subscribe().await.unwrap();
    event.unsubscribe().await.unwrap();
    assert_eq!(metric(&event, "captured_subscribers").await, 0.0);
}

/// `qos-ctl event tail` follows new records (it subscribes), and its subscription ends with
/// it.
#[tokio::test]
async fn qos_ctl_event_tail_follows_new_records() {
    needs_root!();
    let mut fx = Fixture::new("");
    let event = fx.start().await;
    let mut tail =
        tokio::process::Command::from(fx.bus.command(workspace_binary("qos-ctl").unwrap()))
            .args(["--json", "event", "tail", "-n", "0", "--source", "test"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&event, "captured_subscribers").await != 1.0 {
        assert!(
            Instant::now() < deadline,
            "qos-ctl event tail did not subscribe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    event
        .emit("other", "not.shown", "info", fields(&[]))
        .await
        .unwrap();
    let seq = event
        .emit("test", "followed", "info", fields(&[("n", "1")]))
        .await
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tail.stdout.take().unwrap()));
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("nothing followed")
        .unwrap()
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["seq"], seq, "{line}");
    assert_eq!(record["kind"], "followed", "{line}");

    tail.kill().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&event, "captured_subscribers").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "qos-ctl's subscription outlived it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
