//! Workflow engine benchmarks (run by ci/bench-script):
//! - simple instances (start → external task → end: start, fetch-and-lock, complete) per
//!   second, in memory and persisted in SQLite (WAL, one transaction per step);
//! - 10,000 concurrent instances waiting: time to start them, memory they take, and
//!   FetchAndLock latency with all of them queued, in process and over D-Bus against a
//!   release steppps-scriptd on a private bus.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use steppps::testing::percentile;

use steppps_script::engine::{Engine, EngineConfig, Vars};
use steppps_script::store::{Durability, Store};

const SIMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_bench" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="simple" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_1" />
    <bpmn:serviceTask id="Task_1" name="Work" camunda:type="external" camunda:topic="work"><bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_1" targetRef="EndEvent_1" />
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>Flow_2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"#;

fn rss_bytes() -> u64 {
    steppps::testing::rss_kib(std::process::id()) * 1024
}

fn vars(i: usize) -> Vars {
    let mut v = Vars::new();
    v.insert("n".into(), i.into());
    v
}

/// Runs `n` simple instances through, `batch` at a time; instances per second.
fn simple_instances(engine: &mut Engine, n: usize, batch: usize) -> f64 {
    let topics = ["work".to_string()];
    let started = Instant::now();
    let mut now = 1_000;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        for i in 0..k {
            engine
                .start_instance("simple", vars(done + i), now)
                .unwrap();
        }
        let tasks = engine
            .fetch_and_lock("bench", &topics, k, 60_000, now)
            .unwrap();
        assert_eq!(tasks.len(), k);
        for t in tasks {
            engine.complete(t.id, Vars::new(), now).unwrap();
        }
        done += k;
        now += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let cfg = EngineConfig {
        keep_finished: 100,
        history_in_memory: 16,
        ..EngineConfig::default()
    };

    // In memory.
    let mut mem = Engine::in_memory(cfg.clone());
    mem.deploy(SIMPLE, 0).unwrap();
    simple_instances(&mut mem, 10_000, 1000); // warm-up
    let rate = simple_instances(&mut mem, 200_000, 1000);
    println!("simple instances, in memory: {rate:.0} instances/s (200,000, batches of 1,000)");

    // Persisted: a real SQLite file, WAL, one transaction per step.
    let dir = tempfile::tempdir().unwrap();
    for (durability, label) in [
        (Durability::Process, "process"),
        (Durability::Power, "power"),
    ] {
        let path = dir.path().join(format!("bench-{label}.sqlite"));
        let store = Store::open(&path, durability).unwrap();
        let mut eng = Engine::open(cfg.clone(), store, 0).unwrap();
        eng.deploy(SIMPLE, 0).unwrap();
        let n = if durability == Durability::Power {
            2_000
        } else {
            20_000
        };
        let rate = simple_instances(&mut eng, n, 100);
        println!(
            "simple instances, persisted (durability={label}, 3 steps each): {rate:.0} instances/s ({n})"
        );
    }

    // 10,000 concurrent instances, all waiting at their external task.
    for persisted in [false, true] {
        let mut eng = if persisted {
            let store =
                Store::open(&dir.path().join("concurrent.sqlite"), Durability::Process).unwrap();
            Engine::open(cfg.clone(), store, 0).unwrap()
        } else {
            Engine::in_memory(cfg.clone())
        };
        eng.deploy(SIMPLE, 0).unwrap();
        let before = rss_bytes();
        let t = Instant::now();
        for i in 0..10_000 {
            eng.start_instance("simple", vars(i), 1).unwrap();
        }
        let start_time = t.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        let topics = ["work".to_string()];
        let mut lat = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            let got = eng.fetch_and_lock("bench", &topics, 1, 60_000, 2).unwrap();
            lat.push(t.elapsed());
            assert_eq!(got.len(), 1);
        }
        lat.sort();
        let t = Instant::now();
        let hundred = eng
            .fetch_and_lock("bench", &topics, 100, 60_000, 2)
            .unwrap();
        let batch = t.elapsed();
        assert_eq!(hundred.len(), 100);
        println!(
            "10,000 concurrent instances ({}): started in {:.0} ms, +{:.1} MiB RSS; FetchAndLock(max 1) p50 {:.1} µs, p99 {:.1} µs; FetchAndLock(max 100) {:.2} ms",
            if persisted { "persisted" } else { "in memory" },
            start_time.as_secs_f64() * 1e3,
            grown as f64 / (1024.0 * 1024.0),
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6,
            batch.as_secs_f64() * 1e3,
        );
    }

    over_dbus();
}

/// FetchAndLock over D-Bus: a release steppps-scriptd on a private bus, 10,000 instances
/// waiting, a worker fetching one task per call (what a Camunda-style worker does).
fn over_dbus() {
    use steppps::api::script::Script1Proxy;
    use steppps::testing::{TestBus, workspace_binary};

    let Ok(binary) = workspace_binary("steppps-scriptd") else {
        println!("over D-Bus: skipped (steppps-scriptd is not built next to the benchmark)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut bus = TestBus::start().unwrap();
        let config = bus.dir().join("script.toml");
        std::fs::write(&config, "workflow_dirs = []\nroot_process = \"\"\n").unwrap();
        bus.spawn_daemon(&binary, &["--config", config.to_str().unwrap()])
            .unwrap();
        bus.wait_for_name("org.quantumos.Script1").await.unwrap();
        let conn = bus.connect().await.unwrap();
        let p = Script1Proxy::new(&conn).await.unwrap();
        p.deploy(SIMPLE).await.unwrap();
        let t = Instant::now();
        for i in 0..10_000 {
            p.start_instance("simple", &format!("{{\"n\": {i}}}"))
                .await
                .unwrap();
        }
        let starts = 10_000.0 / t.elapsed().as_secs_f64();
        let mut lat = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            let got = p.fetch_and_lock("bench", &["work"], 1, 60_000).await.unwrap();
            lat.push(t.elapsed());
            assert_eq!(got.len(), 1);
            let c = Instant::now();
            p.complete(got[0].id, "").await.unwrap();
            let _ = c;
        }
        lat.sort();
        println!(
            "over D-Bus (release steppps-scriptd, persisted, 10,000 queued): StartInstance {starts:.0}/s; FetchAndLock(max 1) p50 {:.0} µs, p99 {:.0} µs",
            percentile(&lat, 0.5).as_secs_f64() * 1e6,
            percentile(&lat, 0.99).as_secs_f64() * 1e6,
        );
    });
}
