//! steppps-scriptd as a real process on a private bus, with steppps-mgr and steppps-spaced
//! where a workflow calls them, and the real SQLite store under the test's state directory.
//! Workers are this test, speaking Script1 over D-Bus as any external worker would.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use steppps::api::script::{InstanceDetail, Script1Proxy, TaskInfo};
use steppps::api::{MANAGER, SCRIPT, SPACE};
use steppps::testing::{DaemonPid, TestBus, wait_for_event_source, workspace_binary};
use zbus::Connection;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn shipped_workflows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/quantumos/workflows")
}

fn error_text(e: &zbus::Error) -> String {
    let (name, message) = steppps::error::describe_remote(e);
    format!("{}: {message}", name.unwrap_or_default())
}

/// Starts steppps-scriptd with a config in the bus directory: no root process unless
/// `root`, the shipped workflows only when `root`, back-off from 200 ms.
async fn scriptd(bus: &mut TestBus, root: bool) -> DaemonPid {
    let config = bus.dir().join("script.toml");
    let dirs = if root {
        format!("[\"{}\"]", shipped_workflows().display())
    } else {
        "[]".into()
    };
    std::fs::write(
        &config,
        format!(
            "workflow_dirs = {dirs}\nroot_process = \"{}\"\nretry_backoff_ms = 200\ncall_timeout_ms = 5000\n",
            if root { "quantumos-root" } else { "" }
        ),
    )
    .unwrap();
    let pid = bus
        .spawn_daemon(
            &workspace_binary("steppps-scriptd").unwrap(),
            &["--config", config.to_str().unwrap()],
        )
        .unwrap();
    bus.wait_for_name(SCRIPT.bus_name).await.unwrap();
    pid
}

async fn proxy(bus: &TestBus) -> (Connection, Script1Proxy<'static>) {
    let conn = bus.connect().await.unwrap();
    let p = Script1Proxy::new(&conn).await.unwrap();
    (conn, p)
}

fn vars(t: &TaskInfo) -> Value {
    serde_json::from_str(&t.variables_json).unwrap()
}

fn instance_vars(d: &InstanceDetail) -> Value {
    serde_json::from_str(&d.variables_json).unwrap()
}

/// Fetches tasks of `topics` until at least one comes, or `within` passes.
async fn fetch_until(p: &Script1Proxy<'_>, topics: &[&str], within: Duration) -> Vec<TaskInfo> {
    let deadline = Instant::now() + within;
    loop {
        let tasks = p
            .fetch_and_lock("test-worker", topics, 100, 30_000)
            .await
            .unwrap();
        if !tasks.is_empty() || Instant::now() > deadline {
            return tasks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_state(
    p: &Script1Proxy<'_>,
    id: u64,
    state: &str,
    within: Duration,
) -> InstanceDetail {
    let deadline = Instant::now() + within;
    loop {
        let d = p.get_instance(id).await.unwrap();
        if d.info.state == state {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} is not {state}: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn events(d: &InstanceDetail) -> Vec<String> {
    d.history
        .iter()
        .map(|h| format!("{} {}", h.event, h.activity_id))
        .collect()
}

/// At boot every dimension starts at once (the unit has no After= on them): the root
/// orchestrator waits for the daemons it calls to own their names instead of failing its
/// first calls.
#[tokio::test]
async fn the_root_orchestrator_waits_for_the_daemons_it_calls() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, true).await;
    let (_c, p) = proxy(&bus).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        p.list_instances("quantumos-root", "").await.unwrap(),
        vec![],
        "the root started before the manager and space were there"
    );
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        p.list_instances("quantumos-root", "").await.unwrap(),
        vec![]
    );
    bus.spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let root = loop {
        let list = p.list_instances("quantumos-root", "active").await.unwrap();
        if let Some(i) = list.first() {
            if i.positions.iter().any(|p| p == "Event_MonitorTimer") {
                break p.get_instance(i.id).await.unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the root never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ev = events(&root);
    assert!(
        ev.contains(&"completed Task_CheckDimensions".to_string())
            && ev.contains(&"completed Task_Inventory".to_string()),
        "{ev:?}"
    );
    assert!(!ev.iter().any(|e| e.starts_with("failed")), "{ev:?}");
}

#[tokio::test]
async fn the_root_orchestrator_runs_against_the_manager_and_space() {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    bus.spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(SPACE.bus_name).await.unwrap();
    scriptd(&mut bus, true).await;
    let (_c, p) = proxy(&bus).await;

    let defs = p.list_definitions().await.unwrap();
    let keys: HashSet<&str> = defs.iter().map(|d| d.key.as_str()).collect();
    for k in [
        "quantumos-root",
        "quantumos-health-check",
        "quantumos-error-recovery",
    ] {
        assert!(keys.contains(k), "{k} not deployed: {defs:?}");
    }

    // The root instance was started at boot; it calls the manager and space, then waits on
    // both branches: the monitoring timer and the request message.
    let deadline = Instant::now() + Duration::from_secs(20);
    let root = loop {
        let list = p.list_instances("quantumos-root", "active").await.unwrap();
        if let Some(i) = list.first() {
            let mut pos = i.positions.clone();
            pos.sort();
            if pos == ["Event_MonitorTimer", "Event_Request"] {
                break p.get_instance(i.id).await.unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "root never reached its wait states: {:#?}",
            p.list_instances("", "").await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v = instance_vars(&root);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(v["hostname"], json!(host), "{v}");
    assert!(
        v["overall"] == json!("ok") || v["overall"] == json!("degraded"),
        "{v}"
    );
    // space at least (script itself may not have been probed yet when the root asked).
    assert!(v["dimensions_expected"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["dimensions_ready"].as_u64().unwrap() >= 1, "{v}");
    let ev = events(&root);
    assert!(
        ev.contains(&"completed Task_CheckDimensions".to_string()),
        "{ev:?}"
    );
    assert!(
        ev.contains(&"completed Task_Inventory".to_string()),
        "{ev:?}"
    );
    let waits: Vec<&str> = root.tokens.iter().map(|t| t.waiting_for.as_str()).collect();
    assert!(
        waits.iter().any(|w| w.starts_with("timer due")),
        "{waits:?}"
    );
    assert!(
        waits
            .iter()
            .any(|w| w.starts_with("message quantumos.request")),
        "{waits:?}"
    );

    // A request: a health check now. It runs as a called instance of the root.
    let id = p
        .correlate_message("quantumos.request", "", r#"{"request": "health-check"}"#)
        .await
        .unwrap();
    assert_eq!(id, root.info.id);
    let deadline = Instant::now() + Duration::from_secs(20);
    let check = loop {
        let checks = p
            .list_instances("quantumos-health-check", "")
            .await
            .unwrap();
        if let Some(c) = checks
            .iter()
            .find(|c| c.parent == root.info.id && c.state == "completed")
        {
            break p.get_instance(c.id).await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no completed health check: {checks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let cv = instance_vars(&check);
    assert!(cv["overall"].is_string(), "{cv}");
    assert!(events(&check).contains(&"completed Task_AskManager".to_string()));

    // `stop` ends the orchestrator through its terminate end event.
    p.correlate_message("quantumos.request", "", r#"{"request": "stop"}"#)
        .await
        .unwrap();
    wait_state(&p, root.info.id, "terminated", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn an_external_worker_fails_twice_then_completes_with_backoff() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    let (key, version) = p.deploy(&fixture("order-payment.bpmn")).await.unwrap();
    assert_eq!((key.as_str(), version), ("order-payment", 1));
    let id = p
        .start_instance("order-payment", r#"{"amount": 12.5}"#)
        .await
        .unwrap();

    let tasks = fetch_until(&p, &["charge-card"], Duration::from_secs(5)).await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!((task.retries, task.attempts, task.instance), (3, 0, id));
    assert_eq!(vars(task)["amount_cents"], json!(1250), "input mapping");

    // Two failures with the engine's policy (-1): one retry less each time, and the task is
    // not fetchable before its back-off (200 ms, then 400 ms) has passed.
    let mut backoffs = Vec::new();
    for attempt in 1..=2 {
        // Taken before the call: the daemon starts the back-off while handling it, so time
        // measured from after its reply can fall a little short of the back-off.
        let failed_at = Instant::now();
        p.handle_failure(task.id, "card terminal offline", -1, 0)
            .await
            .unwrap();
        assert!(
            p.fetch_and_lock("w", &["charge-card"], 10, 30_000)
                .await
                .unwrap()
                .is_empty(),
            "fetchable during its back-off"
        );
        let again = fetch_until(&p, &["charge-card"], Duration::from_secs(5)).await;
        backoffs.push(failed_at.elapsed());
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, task.id);
        assert_eq!(again[0].retries, 3 - attempt);
        assert_eq!(again[0].attempts, attempt as u32);
        assert_eq!(again[0].error_message, "card terminal offline");
    }
    assert!(backoffs[0] >= Duration::from_millis(200), "{backoffs:?}");
    assert!(backoffs[1] >= Duration::from_millis(400), "{backoffs:?}");
    assert!(backoffs[1] > backoffs[0], "exponential: {backoffs:?}");

    p.complete(task.id, r#"{"receipt": "R-1"}"#).await.unwrap();
    let d = wait_state(&p, id, "completed", Duration::from_secs(5)).await;
    assert_eq!(instance_vars(&d)["receipt"], json!("R-1"));
    let failed = d.history.iter().filter(|h| h.event == "failed").count();
    assert_eq!(failed, 2, "{:?}", events(&d));

    // A lock that expires returns the task to the queue.
    let id2 = p
        .start_instance("order-payment", r#"{"amount": 1}"#)
        .await
        .unwrap();
    let t = p
        .fetch_and_lock("slow-worker", &["charge-card"], 1, 200)
        .await
        .unwrap();
    assert_eq!(t[0].instance, id2);
    assert!(
        p.fetch_and_lock("w2", &["charge-card"], 1, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let t2 = p
        .fetch_and_lock("w2", &["charge-card"], 1, 30_000)
        .await
        .unwrap();
    assert_eq!(t2[0].id, t[0].id);
    assert_eq!(t2[0].worker, "w2");

    // Out of retries: an incident, resolvable with more retries.
    for _ in 0..3 {
        p.handle_failure(t2[0].id, "declined", 0, 0)
            .await
            .unwrap_or(());
    }
    let incidents = p.list_incidents().await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].instance, id2);
    p.resolve_incident(incidents[0].id, 1).await.unwrap();
    let t3 = fetch_until(&p, &["charge-card"], Duration::from_secs(2)).await;
    assert_eq!(t3[0].id, t2[0].id);
    p.complete(t3[0].id, "").await.unwrap();
    wait_state(&p, id2, "completed", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_boundary_error_event_routes_to_its_handler() {
    let mut bus = TestBus::start().unwrap();
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("stock-reservation.bpmn")).await.unwrap();
    let id = p.start_instance("stock-reservation", "{}").await.unwrap();

    // The D-Bus call to the manager is refused (no such dimension): its error name is the
    // BPMN error code, caught by the catch-all boundary event.
    let reserve = fetch_until(&p, &["reserve-stock"], Duration::from_secs(10)).await;
    assert_eq!(reserve.len(), 1, "{:#?}", p.get_instance(id).await.unwrap());
    let v = vars(&reserve[0]);
    assert!(
        v["dbus_error"]
            .as_str()
            .unwrap()
            .starts_with("org.quantumos.Error."),
        "{v}"
    );
    assert!(
        v["dbus_message"]
            .as_str()
            .unwrap()
            .contains("no-such-dimension"),
        "{v}"
    );

    // The worker reports a business error; the boundary event for its code takes it.
    p.handle_bpmn_error(
        reserve[0].id,
        "OUT_OF_STOCK",
        "none left",
        r#"{"sku": "Q-1"}"#,
    )
    .await
    .unwrap();
    let notify = fetch_until(&p, &["notify-customer"], Duration::from_secs(5)).await;
    assert_eq!(notify.len(), 1);
    assert_eq!(vars(&notify[0])["error_code"], json!("OUT_OF_STOCK"));
    assert_eq!(vars(&notify[0])["sku"], json!("Q-1"));
    p.complete(notify[0].id, "").await.unwrap();
    let d = wait_state(&p, id, "completed", Duration::from_secs(5)).await;
    let ev = events(&d);
    assert!(
        ev.contains(&"error caught Task_RestartBogus".to_string()),
        "{ev:?}"
    );
    assert!(
        ev.contains(&"error caught Task_Reserve".to_string()),
        "{ev:?}"
    );
    assert!(
        ev.contains(&"ended EndEvent_Backorder".to_string()),
        "{ev:?}"
    );
    assert!(
        !ev.contains(&"ended EndEvent_Reserved".to_string()),
        "{ev:?}"
    );
}

#[tokio::test]
async fn compensation_undoes_two_completed_tasks_in_reverse_order() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("trip-booking.bpmn")).await.unwrap();
    let id = p.start_instance("trip-booking", "{}").await.unwrap();
    for topic in ["book-flight", "book-hotel"] {
        let t = fetch_until(&p, &[topic], Duration::from_secs(5)).await;
        p.complete(t[0].id, "").await.unwrap();
    }
    let charge = fetch_until(&p, &["charge-trip"], Duration::from_secs(5)).await;
    p.handle_bpmn_error(charge[0].id, "PAYMENT_FAILED", "card declined", "")
        .await
        .unwrap();

    // The hotel (booked last) is cancelled first; the flight only once that is done.
    let undo = ["cancel-flight", "cancel-hotel"];
    let first = fetch_until(&p, &undo, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].topic, "cancel-hotel");
    assert!(
        p.fetch_and_lock("w", &undo, 10, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    p.complete(first[0].id, "").await.unwrap();
    let second = fetch_until(&p, &undo, Duration::from_secs(5)).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].topic, "cancel-flight");
    p.complete(second[0].id, "").await.unwrap();

    let d = wait_state(&p, id, "completed", Duration::from_secs(5)).await;
    let ev = events(&d);
    let pos = |e: &str| {
        ev.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} not in {ev:?}"))
    };
    assert!(pos("compensating Task_BookHotel") < pos("compensating Task_BookFlight"));
    assert!(pos("completed Task_CancelHotel") < pos("completed Task_CancelFlight"));
    assert!(pos("completed Task_CancelFlight") < pos("ended EndEvent_Cancelled"));
}

#[tokio::test]
async fn a_timer_fires() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("reminder.bpmn")).await.unwrap();
    let started = Instant::now();
    let id = p
        .start_instance("reminder", r#"{"delay": "PT0.6S"}"#)
        .await
        .unwrap();
    let d = p.get_instance(id).await.unwrap();
    assert!(d.tokens[0].waiting_for.starts_with("timer due"), "{d:#?}");
    assert!(
        p.fetch_and_lock("w", &["remind"], 1, 30_000)
            .await
            .unwrap()
            .is_empty()
    );
    let t = fetch_until(&p, &["remind"], Duration::from_secs(5)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(t.len(), 1);
    p.complete(t[0].id, "").await.unwrap();
    let d = wait_state(&p, id, "completed", Duration::from_secs(5)).await;
    assert!(events(&d).contains(&"timer fired Event_Wait".to_string()));

    // A timer value that is not ISO 8601 is an incident at run time, not a crash.
    let bad = p
        .start_instance("reminder", r#"{"delay": "soon"}"#)
        .await
        .unwrap();
    let incidents = p.list_incidents().await.unwrap();
    assert!(
        incidents
            .iter()
            .any(|i| i.instance == bad && i.message.contains("soon")),
        "{incidents:?}"
    );
}

#[tokio::test]
async fn a_parallel_join_waits_for_every_branch() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("server-provisioning.bpmn"))
        .await
        .unwrap();
    let id = p.start_instance("server-provisioning", "{}").await.unwrap();
    let branches = ["partition-disk", "configure-network", "create-users"];
    let tasks = p.fetch_and_lock("w", &branches, 10, 30_000).await.unwrap();
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    for t in &tasks[..2] {
        p.complete(t.id, "").await.unwrap();
        assert!(
            p.fetch_and_lock("w", &["hand-over"], 1, 30_000)
                .await
                .unwrap()
                .is_empty(),
            "joined early"
        );
    }
    let d = p.get_instance(id).await.unwrap();
    assert_eq!(
        d.tokens
            .iter()
            .filter(|t| t.waiting_for.contains("join"))
            .count(),
        2,
        "{d:#?}"
    );
    p.complete(tasks[2].id, "").await.unwrap();
    let after = p
        .fetch_and_lock("w", &["hand-over"], 1, 30_000)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    p.complete(after[0].id, "").await.unwrap();
    let d = wait_state(&p, id, "completed", Duration::from_secs(5)).await;
    assert!(events(&d).contains(&"joined Gateway_Join".to_string()));
}

#[tokio::test]
async fn a_message_correlates_to_the_right_instance() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("order-shipping.bpmn")).await.unwrap();
    let mut ids = HashMap::new();
    for order in ["A", "B", "C"] {
        let id = p
            .start_instance("order-shipping", &json!({"order_id": order}).to_string())
            .await
            .unwrap();
        ids.insert(order, id);
    }
    let got = p
        .correlate_message("payment-received", "B", r#"{"paid_by": "card"}"#)
        .await
        .unwrap();
    assert_eq!(got, ids["B"]);
    let ship = p.fetch_and_lock("w", &["ship"], 10, 30_000).await.unwrap();
    assert_eq!(ship.len(), 1);
    assert_eq!(ship[0].instance, ids["B"]);
    assert_eq!(vars(&ship[0])["paid_by"], json!("card"));
    for order in ["A", "C"] {
        let d = p.get_instance(ids[order]).await.unwrap();
        assert_eq!(d.info.positions, ["Gateway_Wait"], "{d:#?}");
        assert!(
            d.tokens[0].waiting_for.contains("message payment-received"),
            "{d:#?}"
        );
    }
    // The timer branch of B's event-based gateway was withdrawn.
    let b = p.get_instance(ids["B"]).await.unwrap();
    assert!(!b.tokens[0].waiting_for.contains("timer"), "{b:#?}");

    let err = p
        .correlate_message("payment-received", "Z", "{}")
        .await
        .unwrap_err();
    let text = error_text(&err);
    assert!(
        text.starts_with("org.quantumos.Error.NotFound") && text.contains("`Z`"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_the_engine_keeps_serving() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;

    let bad = |e: zbus::Error| {
        let t = error_text(&e);
        assert!(t.starts_with("org.quantumos.Error.InvalidArgument"), "{t}");
        t
    };
    let t = bad(p
        .deploy("<bpmn:definitions><bpmn:process id=")
        .await
        .unwrap_err());
    assert!(t.contains("XML") && t.contains("line 1"), "{t}");

    let t = bad(p.deploy(&fixture("legacy-script.bpmn")).await.unwrap_err());
    assert!(
        t.contains("bpmn:scriptTask `Activity_0ugm2rk`") && t.contains("not supported"),
        "{t}"
    );

    let with_bad_condition = fixture("server-provisioning.bpmn").replace(
        r#"<bpmn:sequenceFlow id="Flow_8" sourceRef="Gateway_Join" targetRef="Task_Handover" />"#,
        r#"<bpmn:sequenceFlow id="Flow_8" sourceRef="Gateway_Join" targetRef="Task_Handover"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${disks &gt; }</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
    );
    let t = bad(p.deploy(&with_bad_condition).await.unwrap_err());
    assert!(
        t.contains("`Flow_8`") && t.contains("does not parse"),
        "{t}"
    );

    // Two gateways sending the token round for ever.
    let cycle = fixture("two-steps.bpmn").replace(
        r#"<bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_A" />"#,
        r#"<bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Gateway_X" />
    <bpmn:exclusiveGateway id="Gateway_X" /><bpmn:exclusiveGateway id="Gateway_Y" />
    <bpmn:sequenceFlow id="Flow_X" sourceRef="Gateway_X" targetRef="Gateway_Y" />
    <bpmn:sequenceFlow id="Flow_Y" sourceRef="Gateway_Y" targetRef="Gateway_X" />"#,
    );
    let t = bad(p.deploy(&cycle).await.unwrap_err());
    assert!(
        t.contains("cycle with no wait state") && t.contains("Gateway_X"),
        "{t}"
    );

    // 20 MB: a documentation element as big as a careless export could make it.
    let huge = fixture("two-steps.bpmn").replace(
        "<bpmn:startEvent id=\"StartEvent_1\" name=\"Start\">",
        &format!(
            "<bpmn:startEvent id=\"StartEvent_1\" name=\"Start\"><bpmn:documentation>{}</bpmn:documentation>",
            "x".repeat(20 * 1024 * 1024)
        ),
    );
    let t = bad(p.deploy(&huge).await.unwrap_err());
    assert!(t.contains("20.0 MiB") && t.contains("limit"), "{t}");

    let t = bad(p.start_instance("two-steps", "[1, 2]").await.unwrap_err());
    assert!(t.contains("JSON object"), "{t}");

    // Nothing half-deployed, and the engine still works.
    assert!(p.list_definitions().await.unwrap().is_empty());
    assert_eq!(
        p.deploy(&fixture("two-steps.bpmn")).await.unwrap(),
        ("two-steps".into(), 1)
    );
    let id = p.start_instance("two-steps", "{}").await.unwrap();
    assert_eq!(p.get_instance(id).await.unwrap().info.positions, ["Task_A"]);
    // Same text: same version. Changed text: a new version; running instances keep theirs.
    assert_eq!(p.deploy(&fixture("two-steps.bpmn")).await.unwrap().1, 1);
    let v2 = fixture("two-steps.bpmn").replace("name=\"Step B\"", "name=\"Step B, revised\"");
    assert_eq!(p.deploy(&v2).await.unwrap().1, 2);
    let id2 = p.start_instance("two-steps", "{}").await.unwrap();
    assert_eq!(p.get_instance(id).await.unwrap().info.version, 1);
    assert_eq!(p.get_instance(id2).await.unwrap().info.version, 2);
}

/// 1,000 instances in flight, the daemon killed while workers complete tasks, restarted:
/// every instance goes on from its last persisted step, none is lost, and no acknowledged
/// step runs again.
#[tokio::test]
async fn a_kill_loses_nothing_and_repeats_nothing() {
    const N: usize = 1000;
    let mut bus = TestBus::start().unwrap();
    let pid = scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("two-steps.bpmn")).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(
            p.start_instance("two-steps", &json!({"n": i}).to_string())
                .await
                .unwrap(),
        );
    }
    // Short locks: tasks held by the workers at the kill come back quickly.
    let a = p
        .fetch_and_lock("w", &["step-a"], N as u32, 2000)
        .await
        .unwrap();
    assert_eq!(a.len(), N);

    // Complete step A in concurrent batches; kill the daemon in the middle of one.
    let mut acknowledged: HashSet<u64> = HashSet::new();
    let mut killed = false;
    for (batch_no, batch) in a.chunks(50).enumerate() {
        let calls = batch.iter().map(|t| {
            let p = p.clone();
            async move { (t.instance, p.complete(t.id, r#"{"a_done": true}"#).await) }
        });
        let kill_now = batch_no == 8;
        let bus_ref = &bus;
        let killer = async move {
            if kill_now {
                tokio::time::sleep(Duration::from_millis(3)).await;
                bus_ref.signal(pid, Signal::SIGKILL).unwrap();
            }
        };
        let (results, ()) = tokio::join!(futures_util::future::join_all(calls), killer);
        for (instance, r) in results {
            if r.is_ok() {
                acknowledged.insert(instance);
            }
        }
        if kill_now {
            killed = true;
            break;
        }
    }
    assert!(killed);
    bus.wait_exit(pid, Duration::from_secs(5)).unwrap();
    assert!(acknowledged.len() >= 400, "{}", acknowledged.len());
    assert!(acknowledged.len() < N);

    scriptd(&mut bus, false).await;
    let (_c2, p) = proxy(&bus).await;
    let all = p.list_instances("two-steps", "").await.unwrap();
    assert_eq!(all.len(), N, "instances lost");
    for i in &all {
        if acknowledged.contains(&i.id) {
            assert_eq!(
                i.positions,
                ["Task_B"],
                "acknowledged A of {} was lost",
                i.id
            );
        } else {
            assert!(
                i.positions == ["Task_A"] || i.positions == ["Task_B"],
                "{i:?}"
            );
        }
    }

    // Work everything off. Step A is only ever handed out for instances whose A was not
    // acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = p
            .fetch_and_lock("w2", &["step-a", "step-b"], 200, 30_000)
            .await
            .unwrap();
        for t in &tasks {
            if t.topic == "step-a" {
                assert!(
                    !acknowledged.contains(&t.instance),
                    "step A of {} ran twice",
                    t.instance
                );
            }
            p.complete(t.id, "").await.unwrap();
        }
        let active = p.list_instances("two-steps", "active").await.unwrap().len();
        if active == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{active} instances still active");
        if tasks.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for id in &ids {
        let d = p.get_instance(*id).await.unwrap();
        assert_eq!(d.info.state, "completed");
        let count = |e: &str| events(&d).iter().filter(|x| *x == e).count();
        assert_eq!(count("completed Task_A"), 1, "{:?}", events(&d));
        assert_eq!(count("completed Task_B"), 1, "{:?}", events(&d));
    }
}

/// The time dimension's `workflow <process>` timer action starts an instance here.
#[tokio::test]
async fn a_time_dimension_timer_starts_a_workflow() {
    use steppps::api::TIME;
    use steppps::api::time::Time1Proxy;
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    bus.spawn_daemon(&workspace_binary("steppps-timed").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(TIME.bus_name).await.unwrap();
    let (conn, p) = proxy(&bus).await;
    p.deploy(&fixture("two-steps.bpmn")).await.unwrap();
    let time = Time1Proxy::new(&conn).await.unwrap();
    time.add_timer("nightly-two-steps", "1s", "workflow two-steps")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = p.list_instances("two-steps", "").await.unwrap();
        if !list.is_empty() {
            assert_eq!(list[0].positions, ["Task_A"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no instance; timers: {:?}",
            time.list_timers().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event dimension's shipped recovery rule: a dimension killed under its eye starts the
/// error-recovery workflow for it, which asks the manager, restarts the dimension (refused
/// here: no systemd on a private bus) and escalates to the operator.
#[tokio::test]
async fn a_dead_dimension_starts_error_recovery_through_the_event_rules() {
    use steppps::api::EVENT;
    use steppps::api::event::Event1Proxy;
    let mut bus = TestBus::start().unwrap();
    let rules = bus.dir().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let shipped_rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/quantumos/event.d/40-recovery.toml");
    std::fs::copy(&shipped_rules, rules.join("40-recovery.toml")).unwrap();
    let event_config = bus.dir().join("event.toml");
    std::fs::write(
        &event_config,
        format!(
            "rules_dirs = [\"{}\"]\n[sources]\njournal = false\nunits = false\nudev = false\nprocess = false\n",
            rules.display()
        ),
    )
    .unwrap();
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    scriptd(&mut bus, false).await;
    let (conn, p) = proxy(&bus).await;
    p.deploy(&std::fs::read_to_string(shipped_workflows().join("20-error-recovery.bpmn")).unwrap())
        .await
        .unwrap();
    bus.spawn_daemon(
        &workspace_binary("steppps-eventd").unwrap(),
        &["--config", event_config.to_str().unwrap()],
    )
    .unwrap();
    bus.wait_for_name(EVENT.bus_name).await.unwrap();
    let event = Event1Proxy::new(&conn).await.unwrap();
    wait_for_event_source(&event, "bus").await.unwrap();
    let space = bus
        .spawn_daemon(&workspace_binary("steppps-spaced").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(SPACE.bus_name).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    bus.signal(space, Signal::SIGKILL).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let recovery = loop {
        let list = p
            .list_instances("quantumos-error-recovery", "")
            .await
            .unwrap();
        if let Some(i) = list.first() {
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no error recovery started:\n{}",
            bus.log("steppps-eventd")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let d = p.get_instance(recovery.id).await.unwrap();
    let v = instance_vars(&d);
    assert_eq!(v["component"], json!("space"), "{v}");
    assert_eq!(v["rule"], json!("dimension-recovery"), "{v}");
    // Gone → restart through the manager, which cannot (no systemd here) → the operator.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = p.list_tasks("user").await.unwrap();
        if tasks
            .iter()
            .any(|t| t.instance == recovery.id && t.activity_id == "Task_Escalate")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not escalated: {:#?}",
            p.get_instance(recovery.id).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = p.get_instance(recovery.id).await.unwrap();
    let ev = events(&d);
    assert!(ev.contains(&"completed Task_Detect".to_string()), "{ev:?}");
    assert!(
        ev.contains(&"error caught Task_Restart".to_string()),
        "{ev:?}"
    );
    let v = instance_vars(&d);
    assert!(
        v["restart_error"]
            .as_str()
            .unwrap()
            .starts_with("org.quantumos.Error."),
        "{v}"
    );
}

/// A D-Bus error of the bus daemon itself (the dimension is not running) keeps its name, so
/// an error boundary event can catch it by that name.
#[tokio::test]
async fn a_missing_dimension_is_an_error_with_the_bus_error_name() {
    let mut bus = TestBus::start().unwrap();
    scriptd(&mut bus, false).await;
    let (_c, p) = proxy(&bus).await;
    p.deploy(&fixture("stock-reservation.bpmn")).await.unwrap();
    p.start_instance("stock-reservation", "{}").await.unwrap();
    let reserve = fetch_until(&p, &["reserve-stock"], Duration::from_secs(10)).await;
    assert_eq!(
        vars(&reserve[0])["dbus_error"],
        json!("org.freedesktop.DBus.Error.ServiceUnknown")
    );
}
