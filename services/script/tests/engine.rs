//! The engine as a library, with time driven by the test: the elements the daemon tests do
//! not reach (inclusive gateways, sub-processes, call activities, boundary timers, terminate,
//! send/receive, event-based timers, recursion) and a reload from a real SQLite file.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use steppps_script::engine::{Engine, EngineConfig, TaskView, Vars};
use steppps_script::store::{Durability, Store};

/// A definitions document around process elements (minimal XML: these tests are about
/// semantics; the modeler-shaped files are in tests/fixtures).
fn doc(processes: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:quantumos="http://quantumos.org/schema/bpmn/1.0" id="d" targetNamespace="x">
  <bpmn:message id="M_Go" name="go" />
  <bpmn:error id="E_Bad" name="Bad" errorCode="BAD" />
  {processes}
</bpmn:definitions>"#
    )
}

fn ext(id: &str, topic: &str) -> String {
    format!(r#"<bpmn:serviceTask id="{id}" camunda:type="external" camunda:topic="{topic}" />"#)
}

fn flow(id: &str, s: &str, t: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{s}" targetRef="{t}" />"#)
}

fn cond(id: &str, s: &str, t: &str, c: &str) -> String {
    format!(
        r#"<bpmn:sequenceFlow id="{id}" sourceRef="{s}" targetRef="{t}"><bpmn:conditionExpression>{c}</bpmn:conditionExpression></bpmn:sequenceFlow>"#
    )
}

fn vars(v: Value) -> Vars {
    v.as_object().cloned().unwrap()
}

fn fetch(e: &mut Engine, topics: &[&str], now: i64) -> Vec<TaskView> {
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    e.fetch_and_lock("t", &topics, 100, 60_000, now).unwrap()
}

fn engine() -> Engine {
    Engine::in_memory(EngineConfig::default())
}

fn state(e: &Engine, id: u64) -> String {
    e.get_instance(id).unwrap().info.state
}

#[test]
fn inclusive_gateway_joins_only_the_branches_taken() {
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}
        <bpmn:inclusiveGateway id="split" />{}{}{}{}{}{}
        <bpmn:inclusiveGateway id="join" />{}{}{}{}{}{}<bpmn:endEvent id="e" />{}</bpmn:process>"#,
        flow("f0", "s", "split"),
        cond("f1", "split", "a", "${a}"),
        cond("f2", "split", "b", "${b}"),
        cond("f3", "split", "c", "${c}"),
        ext("a", "a"),
        ext("b", "b"),
        ext("c", "c"),
        flow("f4", "a", "join"),
        flow("f5", "b", "join"),
        flow("f6", "c", "join"),
        ext("after", "after"),
        flow("f7", "join", "after"),
        flow("f8", "after", "e"),
        "",
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let id = e
        .start_instance("p", vars(json!({"a": true, "b": false, "c": true})), 0)
        .unwrap();
    let tasks = fetch(&mut e, &["a", "b", "c"], 1);
    let topics: Vec<&str> = tasks.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(topics, ["a", "c"]);
    e.complete(tasks[0].id, Vars::new(), 2).unwrap();
    assert!(fetch(&mut e, &["after"], 3).is_empty(), "joined before c");
    e.complete(tasks[1].id, Vars::new(), 4).unwrap();
    let after = fetch(&mut e, &["after"], 5);
    assert_eq!(after.len(), 1);
    e.complete(after[0].id, Vars::new(), 6).unwrap();
    assert_eq!(state(&e, id), "completed");
}

#[test]
fn an_error_end_event_in_a_sub_process_is_caught_on_its_boundary() {
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}
        <bpmn:subProcess id="sub"><bpmn:startEvent id="ss" />{}<bpmn:parallelGateway id="fork" />{}{}{}{}{}{}
          <bpmn:endEvent id="boom"><bpmn:errorEventDefinition errorRef="E_Bad" /></bpmn:endEvent>{}<bpmn:endEvent id="se" />{}
        </bpmn:subProcess>
        <bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="E_Bad" camunda:errorCodeVariable="code" /></bpmn:boundaryEvent>
        {}{}<bpmn:endEvent id="handled" /><bpmn:endEvent id="e" />{}{}</bpmn:process>"#,
        flow("f0", "s", "sub"),
        flow("f1", "ss", "fork"),
        flow("f2", "fork", "long"),
        flow("f3", "fork", "fail"),
        ext("long", "long"),
        ext("fail", "fail"),
        flow("f4", "long", "se"),
        flow("f5", "fail", "boom"),
        "",
        "",
        ext("handler", "handler"),
        flow("f6", "caught", "handler"),
        flow("f7", "handler", "handled"),
        flow("f8", "sub", "e"),
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    let tasks = fetch(&mut e, &["long", "fail"], 1);
    assert_eq!(tasks.len(), 2);
    let fail = tasks.iter().find(|t| t.topic == "fail").unwrap();
    e.complete(fail.id, Vars::new(), 2).unwrap();
    // The error ended the whole sub-process, its other branch included.
    let long = tasks.iter().find(|t| t.topic == "long").unwrap();
    assert!(e.complete(long.id, Vars::new(), 3).is_err());
    let h = fetch(&mut e, &["handler"], 4);
    assert_eq!(h[0].variables["code"], json!("BAD"));
    e.complete(h[0].id, Vars::new(), 5).unwrap();
    let d = e.get_instance(id).unwrap();
    assert_eq!(d.info.state, "completed");
    assert!(
        d.history
            .iter()
            .any(|x| x.event == "ended" && x.activity_id == "handled")
    );
}

#[test]
fn call_activities_pass_variables_and_errors_back() {
    let child = format!(
        r#"<bpmn:process id="child" isExecutable="true"><bpmn:startEvent id="cs" />{}{}<bpmn:exclusiveGateway id="ok" default="good" />{}{}
        <bpmn:endEvent id="ce" /><bpmn:endEvent id="cerr"><bpmn:errorEventDefinition errorRef="E_Bad" /></bpmn:endEvent>{}</bpmn:process>"#,
        flow("c1", "cs", "work"),
        ext("work", "child-work"),
        flow("c2", "work", "ok"),
        cond("bad", "ok", "cerr", "${fail}"),
        flow("good", "ok", "ce"),
    );
    let parent = format!(
        r#"<bpmn:process id="parent" isExecutable="true"><bpmn:startEvent id="s" />{}
        <bpmn:callActivity id="call" calledElement="child" />
        <bpmn:boundaryEvent id="err" attachedToRef="call"><bpmn:errorEventDefinition errorRef="E_Bad" /></bpmn:boundaryEvent>
        {}{}<bpmn:endEvent id="e" /><bpmn:endEvent id="failed" /></bpmn:process>"#,
        flow("f1", "s", "call"),
        flow("f2", "call", "e"),
        flow("f3", "err", "failed"),
    );
    let mut e = engine();
    e.deploy(&doc(&format!("{child}{parent}")), 0).unwrap();
    for fail in [false, true] {
        let id = e
            .start_instance("parent", vars(json!({"input": 7, "fail": fail})), 0)
            .unwrap();
        let t = fetch(&mut e, &["child-work"], 1);
        assert_eq!(t[0].variables["input"], json!(7), "variables go in");
        let child_id = t[0].instance;
        assert_ne!(child_id, id);
        e.complete(t[0].id, vars(json!({"output": "done"})), 2)
            .unwrap();
        let d = e.get_instance(id).unwrap();
        assert_eq!(d.info.state, "completed");
        if fail {
            assert!(
                d.history
                    .iter()
                    .any(|h| h.event == "ended" && h.activity_id == "failed")
            );
        } else {
            assert_eq!(d.variables["output"], json!("done"), "variables come back");
            assert!(
                d.history
                    .iter()
                    .any(|h| h.event == "ended" && h.activity_id == "e")
            );
        }
    }
}

#[test]
fn a_process_calling_itself_is_cut_off_with_an_incident() {
    let p = format!(
        r#"<bpmn:process id="again" isExecutable="true"><bpmn:startEvent id="s" />{}<bpmn:callActivity id="call" calledElement="again" />{}<bpmn:endEvent id="e" /></bpmn:process>"#,
        flow("f1", "s", "call"),
        flow("f2", "call", "e"),
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    e.start_instance("again", Vars::new(), 0).unwrap();
    let incidents = e.list_incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(
        incidents[0].message.contains("nested more than"),
        "{incidents:?}"
    );
    assert!(e.list_instances("again", "").len() <= 34);
}

#[test]
fn boundary_timers_interrupt_or_repeat() {
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}
        <bpmn:userTask id="approve" />
        <bpmn:boundaryEvent id="nag" attachedToRef="approve" cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT10S</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>
        <bpmn:boundaryEvent id="give-up" attachedToRef="approve"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
        {}{}{}{}<bpmn:endEvent id="approved" /><bpmn:endEvent id="expired" />{}</bpmn:process>"#,
        flow("f1", "s", "approve"),
        ext("remind", "remind"),
        flow("f2", "nag", "remind"),
        flow("f3", "approve", "approved"),
        flow("f4", "give-up", "expired"),
        "",
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    assert_eq!(e.next_due(), Some(10_000));
    e.tick_timers(10_000).unwrap();
    e.tick_timers(20_000).unwrap();
    e.tick_timers(30_000).unwrap(); // R2: no third reminder
    assert_eq!(fetch(&mut e, &["remind"], 30_001).len(), 2);
    assert_eq!(e.list_tasks("user").len(), 1, "the user task is still open");
    e.tick_timers(60_000).unwrap();
    assert!(e.list_tasks("user").is_empty(), "interrupted");
    let d = e.get_instance(id).unwrap();
    assert!(
        d.history
            .iter()
            .any(|h| h.event == "ended" && h.activity_id == "expired")
    );
}

#[test]
fn terminate_ends_every_branch() {
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}<bpmn:parallelGateway id="fork" />{}{}{}{}
        <bpmn:endEvent id="stop"><bpmn:terminateEventDefinition /></bpmn:endEvent>{}<bpmn:endEvent id="e" />{}</bpmn:process>"#,
        flow("f0", "s", "fork"),
        flow("f1", "fork", "slow"),
        flow("f2", "fork", "quick"),
        ext("slow", "slow"),
        ext("quick", "quick"),
        flow("f3", "quick", "stop"),
        flow("f4", "slow", "e"),
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    let q = fetch(&mut e, &["quick"], 1);
    e.complete(q[0].id, Vars::new(), 2).unwrap();
    assert_eq!(state(&e, id), "terminated");
    assert!(fetch(&mut e, &["slow"], 3).is_empty());
    assert!(e.list_tasks("").is_empty());
}

#[test]
fn a_send_task_reaches_a_receive_task_and_a_message_start_event() {
    let p = format!(
        r#"<bpmn:process id="waiter" isExecutable="true"><bpmn:startEvent id="s" />{}<bpmn:receiveTask id="wait" messageRef="M_Go" quantumos:correlationKey="${{k}}" />{}<bpmn:endEvent id="e" /></bpmn:process>
        <bpmn:process id="sender" isExecutable="true"><bpmn:startEvent id="s2" />{}<bpmn:sendTask id="send" messageRef="M_Go" quantumos:correlationKey="${{k}}" />{}<bpmn:endEvent id="e2" /></bpmn:process>"#,
        flow("f1", "s", "wait"),
        flow("f2", "wait", "e"),
        flow("f3", "s2", "send"),
        flow("f4", "send", "e2"),
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let w1 = e
        .start_instance("waiter", vars(json!({"k": "one"})), 0)
        .unwrap();
    let w2 = e
        .start_instance("waiter", vars(json!({"k": "two"})), 0)
        .unwrap();
    e.start_instance("sender", vars(json!({"k": "two"})), 1)
        .unwrap();
    assert_eq!(state(&e, w2), "completed");
    assert_eq!(state(&e, w1), "active");

    let starter = format!(
        r#"<bpmn:process id="on-go" isExecutable="true"><bpmn:startEvent id="ms"><bpmn:messageEventDefinition messageRef="M_Go" /></bpmn:startEvent>{}{}<bpmn:endEvent id="e" />{}</bpmn:process>"#,
        flow("f1", "ms", "t"),
        ext("t", "started-by-message"),
        flow("f2", "t", "e"),
    );
    e.deploy(&doc(&starter), 2).unwrap();
    // `one` is waited for; `three` is not: it starts a new instance.
    assert_eq!(e.correlate("go", "one", Vars::new(), 3).unwrap(), w1);
    let started = e
        .correlate("go", "three", vars(json!({"x": 1})), 4)
        .unwrap();
    let t = fetch(&mut e, &["started-by-message"], 5);
    assert_eq!(t[0].instance, started);
    assert_eq!(t[0].variables["x"], json!(1));
}

#[test]
fn a_reload_from_sqlite_continues_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sqlite");
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}
        <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT5S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
        {}{}{}<bpmn:receiveTask id="rx" messageRef="M_Go" quantumos:correlationKey="${{k}}" />{}<bpmn:endEvent id="e" /></bpmn:process>"#,
        flow("f1", "s", "wait"),
        flow("f2", "wait", "work"),
        ext("work", "work"),
        flow("f3", "work", "rx"),
        flow("f4", "rx", "e"),
    );
    let id;
    {
        let store = Store::open(&path, Durability::Process).unwrap();
        let mut e = Engine::open(EngineConfig::default(), store, 0).unwrap();
        e.deploy(&doc(&p), 0).unwrap();
        id = e.start_instance("p", vars(json!({"k": "K"})), 0).unwrap();
        assert_eq!(e.next_due(), Some(5000));
    }
    // Timer armed before the restart fires after it.
    let store = Store::open(&path, Durability::Process).unwrap();
    let mut e = Engine::open(EngineConfig::default(), store, 6000).unwrap();
    assert_eq!(e.list_definitions()[0].key, "p");
    e.tick_timers(6000).unwrap();
    let t = fetch(&mut e, &["work"], 6001);
    assert_eq!(t.len(), 1);
    drop(e);
    // A lock survives a restart: the worker can still complete.
    let store = Store::open(&path, Durability::Process).unwrap();
    let mut e = Engine::open(EngineConfig::default(), store, 7000).unwrap();
    assert!(fetch(&mut e, &["work"], 7001).is_empty(), "still locked");
    e.complete(t[0].id, Vars::new(), 7002).unwrap();
    drop(e);
    // The subscription survives too.
    let store = Store::open(&path, Durability::Process).unwrap();
    let mut e = Engine::open(EngineConfig::default(), store, 8000).unwrap();
    assert_eq!(e.correlate("go", "K", Vars::new(), 8001).unwrap(), id);
    let d = e.get_instance(id).unwrap();
    assert_eq!(d.info.state, "completed");
    let events: Vec<String> = d
        .history
        .iter()
        .map(|h| format!("{} {}", h.event, h.activity_id))
        .collect();
    for expected in [
        "timer fired wait",
        "completed work",
        "message received rx",
        "completed rx",
    ] {
        assert!(
            events.contains(&expected.to_string()),
            "{expected} not in {events:?}"
        );
    }
}

#[test]
fn an_event_based_gateway_takes_the_timer_when_no_message_comes() {
    let p = format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}<bpmn:eventBasedGateway id="g" />{}{}
        <bpmn:intermediateCatchEvent id="msg"><bpmn:messageEventDefinition messageRef="M_Go" /></bpmn:intermediateCatchEvent>
        <bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1S</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
        {}{}<bpmn:endEvent id="got" /><bpmn:endEvent id="timeout" /></bpmn:process>"#,
        flow("f0", "s", "g"),
        flow("f1", "g", "msg"),
        flow("f2", "g", "late"),
        flow("f3", "msg", "got"),
        flow("f4", "late", "timeout"),
    );
    let mut e = engine();
    e.deploy(&doc(&p), 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    e.tick_timers(1000).unwrap();
    let d = e.get_instance(id).unwrap();
    assert_eq!(d.info.state, "completed");
    assert!(
        d.history
            .iter()
            .any(|h| h.event == "ended" && h.activity_id == "timeout")
    );
    // The message subscription was withdrawn with it.
    assert!(e.correlate("go", "", Vars::new(), 1001).is_err());
}

#[test]
fn a_timer_start_event_starts_instances_on_its_cycle() {
    let p = |name: &str| {
        format!(
            r#"<bpmn:process id="tick" name="{name}" isExecutable="true"><bpmn:startEvent id="ts"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1S</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>{}{}<bpmn:endEvent id="e" />{}</bpmn:process>"#,
            flow("f1", "ts", "t"),
            ext("t", "tick"),
            flow("f2", "t", "e"),
        )
    };
    let mut e = engine();
    e.deploy(&doc(&p("v1")), 0).unwrap();
    assert_eq!(e.list_definitions()[0].starts, "timer R2/PT1S");
    e.tick_timers(1000).unwrap();
    e.tick_timers(2000).unwrap();
    e.tick_timers(3000).unwrap();
    assert_eq!(e.list_instances("tick", "").len(), 2, "R2: two instances");
    // A new version re-arms the schedule for itself.
    assert_eq!(e.deploy(&doc(&p("v2")), 5000).unwrap()[0].1, 2);
    e.tick_timers(6000).unwrap();
    let list = e.list_instances("tick", "");
    assert_eq!(list.len(), 3);
    assert_eq!(list[2].version, 2);
}

/// The acceptance item "files drawn in a real modeler load": every test fixture, shipped
/// workflow and example is saved by bpmn-js's Modeler (services/script/workflows/export.mjs), with its
/// diagram, and deploys as it is — except the script task, refused by name.
#[test]
fn files_saved_by_bpmn_js_deploy() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = here.join("../../recipes/quantumos/usr/share/quantumos/workflows");
    let fixtures = here.join("tests/fixtures");
    let mut files: Vec<std::path::PathBuf> = ["20-error-recovery", "10-health-check", "90-root"]
        .iter()
        .map(|f| shipped.join(format!("{f}.bpmn")))
        .collect();
    let mut fixture_files: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpmn"))
        .collect();
    fixture_files.sort();
    assert_eq!(fixture_files.len(), 8, "{fixture_files:?}");
    files.extend(fixture_files);
    files.push(here.join("../../examples/workflows/restart-approval.bpmn"));

    let mut e = engine();
    for path in &files {
        let xml = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            xml.contains(r#"exporter="bpmn-js ("#) && xml.contains("exporterVersion=\""),
            "{name}: not saved by bpmn-js"
        );
        for element in [
            "<bpmndi:BPMNDiagram",
            "<bpmndi:BPMNShape",
            "<dc:Bounds",
            "<di:waypoint",
        ] {
            assert!(xml.contains(element), "{name}: no {element}");
        }
        let flows = xml.matches("<bpmn:sequenceFlow ").count();
        let edges = xml.matches("<bpmndi:BPMNEdge ").count();
        assert!(
            edges >= flows && flows > 0,
            "{name}: {flows} flows, {edges} edges"
        );
        match e.deploy(&xml, 0) {
            Ok(deployed) => {
                assert_ne!(name, "legacy-script.bpmn");
                assert_eq!(deployed.len(), 1, "{name}");
            }
            Err(err) => {
                let err = err.to_string();
                assert_eq!(name, "legacy-script.bpmn", "{err}");
                assert!(err.contains("bpmn:scriptTask `Activity_0ugm2rk`"), "{err}");
            }
        }
    }
}

/// One external task between a start and an end event.
fn one_task(topic: &str) -> String {
    doc(&format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />{}{}<bpmn:endEvent id="e" />{}</bpmn:process>"#,
        ext("t", topic),
        flow("f1", "s", "t"),
        flow("f2", "t", "e"),
    ))
}

#[test]
fn a_fetch_stops_before_its_reply_would_be_too_large_and_leaves_the_rest() {
    let mut e = engine();
    e.deploy(&one_task("big"), 0).unwrap();
    // Five tasks whose instances hold 5 MiB each: 25 MiB is more than one reply may carry.
    let blob = "x".repeat(5 << 20);
    for _ in 0..5 {
        e.start_instance("p", vars(json!({ "blob": blob })), 0)
            .unwrap();
    }
    // Listed, the same: the tasks that fit in one reply.
    let listed = e.list_tasks("");
    assert!(
        (1..5).contains(&listed.len()),
        "{} tasks listed",
        listed.len()
    );
    let first = fetch(&mut e, &["big"], 1);
    assert!(
        (1..5).contains(&first.len()),
        "{} tasks in one reply",
        first.len()
    );
    let mut all: Vec<u64> = first.iter().map(|t| t.id).collect();
    while all.len() < 5 {
        let more = fetch(&mut e, &["big"], 2);
        assert!(
            !more.is_empty(),
            "the tasks left behind are still available"
        );
        all.extend(more.iter().map(|t| t.id));
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 5, "each task locked once");
}

#[test]
fn a_failure_keeps_a_readable_message_not_a_whole_stack_trace() {
    let mut e = engine();
    e.deploy(&one_task("work"), 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    let task = fetch(&mut e, &["work"], 1)[0].id;
    let trace = "at frame\n".repeat(1 << 20);
    e.handle_failure(task, &trace, 0, 0, 2).unwrap();
    let incidents = e.list_incidents();
    assert_eq!(incidents.len(), 1);
    let message = &incidents[0].message;
    assert!(message.len() < 8 << 10, "{} bytes kept", message.len());
    assert!(
        message.starts_with("at frame") && message.contains("more bytes)"),
        "{}",
        &message[message.len() - 40..]
    );
    assert_eq!(state(&e, id), "active");
}

#[test]
fn a_call_result_too_large_to_keep_is_an_incident() {
    let mut e = engine();
    let p = doc(&format!(
        r#"<bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s" />
        <bpmn:serviceTask id="call" quantumos:call="org.quantumos.Event1.Query" camunda:resultVariable="page" />
        <bpmn:endEvent id="e" />{}{}</bpmn:process>"#,
        flow("f1", "s", "call"),
        flow("f2", "call", "e"),
    ));
    e.deploy(&p, 0).unwrap();
    let id = e.start_instance("p", Vars::new(), 0).unwrap();
    let calls = e.take_calls(1);
    assert_eq!(calls.len(), 1);
    let page = json!({ "records": "x".repeat(5 << 20) });
    e.call_succeeded(calls[0].task, page, 2).unwrap();
    let incidents = e.list_incidents();
    assert_eq!(incidents.len(), 1, "the result is not stored");
    assert!(
        incidents[0]
            .message
            .contains("more than a variable may hold"),
        "{}",
        incidents[0].message
    );
    let detail = e.get_instance(id).unwrap();
    assert_eq!(detail.info.state, "active");
    assert!(!detail.variables.contains_key("page"));
}

#[test]
fn instances_finished_longer_ago_than_the_history_ttl_are_forgotten_for_good() {
    const DAY: i64 = 24 * 3600 * 1000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sqlite");
    let cfg = EngineConfig {
        history_ttl_ms: 30 * DAY,
        ..EngineConfig::default()
    };
    let run_one = |e: &mut Engine, at: i64| -> u64 {
        let id = e.start_instance("p", Vars::new(), at).unwrap();
        let task = fetch(e, &["work"], at)[0].id;
        e.complete(task, Vars::new(), at).unwrap();
        assert_eq!(state(e, id), "completed");
        id
    };
    let (old, recent, running);
    {
        let store = Store::open(&path, Durability::Process).unwrap();
        let mut e = Engine::open(cfg.clone(), store, 0).unwrap();
        e.deploy(&one_task("work"), 0).unwrap();
        old = run_one(&mut e, 0);
        recent = run_one(&mut e, 20 * DAY);
        running = e.start_instance("p", Vars::new(), 0).unwrap();
        assert_eq!(e.forget_old_history(31 * DAY).unwrap(), 1);
        assert!(e.get_instance(old).is_err(), "forgotten in memory");
        assert_eq!(state(&e, recent), "completed");
        assert_eq!(
            state(&e, running),
            "active",
            "an active instance is never forgotten"
        );
    }
    // And in the store: a restart does not bring it back.
    let store = Store::open(&path, Durability::Process).unwrap();
    let e = Engine::open(cfg, store, 31 * DAY).unwrap();
    assert!(e.get_instance(old).is_err());
    assert_eq!(state(&e, recent), "completed");
    assert!(!e.get_instance(recent).unwrap().history.is_empty());
}
