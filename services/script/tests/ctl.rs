//! `qos-ctl workflow …` against steppps-scriptd and steppps-mgr on a private bus: the
//! commands, their JSON and their exit statuses.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use steppps::api::{MANAGER, SCRIPT};
use steppps::testing::{TestBus, workspace_binary};

fn qos_ctl(bus: &TestBus, args: &[&str]) -> Output {
    bus.command(workspace_binary("qos-ctl").unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// steppps-mgr, then steppps-scriptd with nothing deployed and no root process.
async fn start_manager_and_script(bus: &mut TestBus) {
    bus.spawn_daemon(&workspace_binary("steppps-mgr").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(MANAGER.bus_name).await.unwrap();
    let config = bus.dir().join("script.toml");
    std::fs::write(&config, "workflow_dirs = []\nroot_process = \"\"\n").unwrap();
    bus.spawn_daemon(
        &workspace_binary("steppps-scriptd").unwrap(),
        &["--config", config.to_str().unwrap()],
    )
    .unwrap();
    bus.wait_for_name(SCRIPT.bus_name).await.unwrap();
}

#[tokio::test]
async fn workflow_commands_deploy_start_show_complete_and_cancel() {
    let mut bus = TestBus::start().unwrap();
    // Not running yet: exit status 2.
    let out = qos_ctl(&bus, &["workflow", "list"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    start_manager_and_script(&mut bus).await;

    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = here.join("../../recipes/quantumos/usr/share/quantumos/workflows");
    let two_steps = here.join("tests/fixtures/two-steps.bpmn");
    let deployed = json(&qos_ctl(
        &bus,
        &[
            "--json",
            "workflow",
            "deploy",
            shipped.join("20-error-recovery.bpmn").to_str().unwrap(),
            two_steps.to_str().unwrap(),
        ],
    ));
    assert_eq!(deployed[0]["process"], "quantumos-error-recovery");
    assert_eq!(deployed[1]["version"], 1);

    // Error recovery of a component the manager does not know ends with the operator: a
    // user task, listed and completed from the command line.
    let started = json(&qos_ctl(
        &bus,
        &[
            "--json",
            "workflow",
            "start",
            "quantumos-error-recovery",
            "--var",
            "component=warp-drive",
        ],
    ));
    let id = started["instance"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let task = loop {
        let tasks = json(&qos_ctl(&bus, &["--json", "workflow", "tasks"]));
        if let Some(t) = tasks.as_array().unwrap().first() {
            break t.clone();
        }
        assert!(Instant::now() < deadline, "no user task");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(task["kind"], "user");
    assert_eq!(task["activity_id"], "Task_Escalate");
    assert_eq!(task["topic"], "root", "the assignee");
    let table = qos_ctl(&bus, &["workflow", "tasks"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("Escalate to the operator"));
    let task_id = task["id"].as_u64().unwrap().to_string();
    json(&qos_ctl(
        &bus,
        &[
            "--json",
            "workflow",
            "complete",
            &task_id,
            "--var",
            "operator_note=\"looked at it\"",
        ],
    ));
    let shown = json(&qos_ctl(
        &bus,
        &["--json", "workflow", "show", &id.to_string()],
    ));
    assert_eq!(shown["instance"]["state"], "completed");
    assert_eq!(shown["variables"]["operator_note"], "looked at it");
    assert_eq!(shown["variables"]["component"], "warp-drive");
    let text = qos_ctl(&bus, &["workflow", "show", &id.to_string()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("history:") && text.contains("Task_Detect"),
        "{text}"
    );

    // Start, list, cancel.
    let other = json(&qos_ctl(
        &bus,
        &["--json", "workflow", "start", "two-steps"],
    ));
    let other = other["instance"].as_u64().unwrap().to_string();
    let list = json(&qos_ctl(
        &bus,
        &["--json", "workflow", "list", "--state", "active"],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["positions"][0], "Task_A");
    let defs = json(&qos_ctl(
        &bus,
        &["--json", "workflow", "list", "--definitions"],
    ));
    assert_eq!(defs.as_array().unwrap().len(), 2);
    json(&qos_ctl(&bus, &["--json", "workflow", "cancel", &other]));
    let out = qos_ctl(&bus, &["workflow", "cancel", &other]);
    assert_eq!(out.status.code(), Some(1), "cancelling twice is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already cancelled"));

    // Refusals exit 1 with the daemon's words; a wrong command line exits 64.
    let out = qos_ctl(&bus, &["workflow", "message", "nobody-waits"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no instance waits"));
    let bad = bus.dir().join("bad.bpmn");
    std::fs::write(&bad, "<definitions/>").unwrap();
    let out = qos_ctl(&bus, &["workflow", "deploy", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a BPMN 2.0 file"));
    assert_eq!(
        qos_ctl(&bus, &["workflow", "start"]).status.code(),
        Some(64)
    );
    let incidents = json(&qos_ctl(&bus, &["--json", "workflow", "incidents"]));
    assert!(incidents.as_array().unwrap().is_empty());
}

/// Waits for instance `id` to finish and returns what `qos-ctl --json workflow show` says.
async fn finished(bus: &TestBus, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let shown = json(&qos_ctl(bus, &["--json", "workflow", "show", id]));
        if shown["instance"]["state"] != "active" {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} still active: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id of the approval task instance `instance` waits on (its status is read first).
async fn approval_task(bus: &TestBus, instance: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tasks = json(&qos_ctl(bus, &["--json", "workflow", "tasks"]));
        let mine =
            tasks.as_array().unwrap().iter().find(|t| {
                t["instance"].as_u64().map(|i| i.to_string()).as_deref() == Some(instance)
            });
        if let Some(task) = mine {
            assert_eq!(task["activity_id"], "Task_Approve");
            assert_eq!(task["topic"], "operator", "the assignee");
            return task["id"].as_u64().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no user task for instance {instance}: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Completes the approval task of `instance` with `approved` and waits for the instance to end.
async fn decide(bus: &TestBus, instance: &str, approved: bool) -> Value {
    let task = approval_task(bus, instance).await;
    let var = format!("approved={approved}");
    json(&qos_ctl(
        bus,
        &["--json", "workflow", "complete", &task, "--var", &var],
    ));
    finished(bus, instance).await
}

fn reached(shown: &Value, element: &str) -> bool {
    shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["activity_id"] == element)
}

/// The example users find in /usr/share/doc/quantumos/examples/workflows/, run the way
/// docs/script.md tells them to: a name the manager does not know ends at once; a known one
/// waits for approval, and a refusal leaves it running; an approval asks steppps-mgr to restart
/// it (on this private bus without systemd the manager refuses, and the refusal is where the
/// instance ends, with the manager's message in its variables).
#[tokio::test]
async fn the_restart_approval_example_runs_from_qos_ctl() {
    let mut bus = TestBus::start().unwrap();
    start_manager_and_script(&mut bus).await;

    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/workflows/restart-approval.bpmn");
    let deployed = json(&qos_ctl(
        &bus,
        &["--json", "workflow", "deploy", example.to_str().unwrap()],
    ));
    assert_eq!(deployed[0]["process"], "restart-approval");

    let start = |dimension: &str| {
        let started = json(&qos_ctl(
            &bus,
            &[
                "--json",
                "workflow",
                "start",
                "restart-approval",
                "--var",
                &format!("dimension={dimension}"),
            ],
        ));
        started["instance"].as_u64().unwrap().to_string()
    };
    let unknown = start("warp-drive");
    let shown = finished(&bus, &unknown).await;
    assert!(reached(&shown, "EndEvent_Unknown"), "{shown}");
    assert!(!reached(&shown, "Task_Approve"), "{shown}");

    let declined = start("space");
    let shown = decide(&bus, &declined, false).await;
    assert_eq!(shown["instance"]["state"], "completed");
    assert!(reached(&shown, "EndEvent_Declined"), "{shown}");
    assert!(!reached(&shown, "Task_Restart"), "{shown}");
    assert_eq!(shown["variables"]["before"][0], "space", "{shown}");

    let approved = start("space");
    let shown = decide(&bus, &approved, true).await;
    assert!(reached(&shown, "Task_Restart"), "{shown}");
    assert!(reached(&shown, "EndEvent_Refused"), "{shown}");
    let message = shown["variables"]["restart_message"].as_str().unwrap_or("");
    assert!(message.contains("space"), "{shown}");
}
