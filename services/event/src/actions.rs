//! Carrying out what rules ask for: alerts (the `Alert` signal and a warning in the journal),
//! unit restarts and stops through systemd's D-Bus API, dimension restarts through
//! steppps-mgr. A global rate limit caps them; each outcome, done, failed or rate-limited,
//! is recorded in the chain (source `rules`, kind `action.<action>`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steppps::api::manager::Manager1Proxy;
use steppps::api::systemd::Systemd1ManagerProxy;
use tokio::sync::mpsc;
use tracing::{info, warn};
use zbus::Connection;
use zbus::names::BusName;

use crate::EventLog;
use crate::chain::{Entry, now_usec};
use crate::rules::{ActionKind, ActionRequest};

const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How an action went: `Ok(detail)` or `Err(why)`.
pub type Outcome = Result<String, String>;

/// Runs requested actions until the channel closes. `alert` sends the `Alert` signal.
pub async fn execute<A, F>(
    log: Arc<EventLog>,
    connection: Connection,
    mut requests: mpsc::Receiver<ActionRequest>,
    alert: A,
) where
    A: Fn(ActionRequest) -> F,
    F: Future<Output = ()>,
{
    let per_minute = log.config().max_actions_per_minute as usize;
    let mut recent: VecDeque<Instant> = VecDeque::new();
    while let Some(request) = requests.recv().await {
        while recent
            .front()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(60))
        {
            recent.pop_front();
        }
        let outcome = if recent.len() >= per_minute {
            log.count_shed("actions rate-limited");
            Err(format!(
                "rate-limited: {per_minute} actions within the last minute (max_actions_per_minute)"
            ))
        } else {
            recent.push_back(Instant::now());
            if request.alert {
                warn!(rule = %request.rule, seq = request.trigger_seq, "alert: {}", request.message);
                alert(request.clone()).await;
            }
            run(&connection, &request).await
        };
        match &outcome {
            Ok(detail) => info!(
                "rule {}: {} {}: {detail}",
                request.rule,
                request.action.as_str(),
                request.target
            ),
            Err(why) => warn!(
                "rule {}: {} {} failed: {why}",
                request.rule,
                request.action.as_str(),
                request.target
            ),
        }
        log.count_action(outcome.is_ok());
        let entry = action_record(&request, &outcome);
        if let Err(e) = log.submit(entry).await {
            warn!("cannot record the action of rule {}: {e}", request.rule);
        }
    }
}

/// The chain record of an action and its outcome.
pub fn action_record(request: &ActionRequest, outcome: &Outcome) -> Entry {
    let latency_ms = now_usec().saturating_sub(request.trigger_time_usec) / 1000;
    let (result, detail, severity) = match outcome {
        Ok(d) => ("ok", d.clone(), 5),
        Err(e) => ("failed", e.clone(), 3),
    };
    let mut fields = vec![
        ("rule".to_string(), request.rule.clone()),
        ("target".to_string(), request.target.clone()),
        (
            "message".to_string(),
            super::sources::clip(request.message.clone(), 4096),
        ),
        ("trigger_seq".to_string(), request.trigger_seq.to_string()),
        ("outcome".to_string(), result.to_string()),
        ("detail".to_string(), super::sources::clip(detail, 4096)),
        ("since_trigger_ms".to_string(), latency_ms.to_string()),
    ];
    fields.sort();
    Entry {
        time_usec: now_usec(),
        severity,
        source: "rules".into(),
        kind: format!("action.{}", request.action.as_str()),
        fields,
    }
}

async fn run(connection: &Connection, request: &ActionRequest) -> Outcome {
    let call = async {
        match request.action {
            ActionKind::Alert => Ok("alert raised".to_string()),
            ActionKind::RestartUnit | ActionKind::StopUnit => {
                systemd_call(connection, request.action, &request.target).await
            }
            ActionKind::RestartDimension => {
                let manager = Manager1Proxy::new(connection)
                    .await
                    .map_err(|e| e.to_string())?;
                manager
                    .restart(&request.target)
                    .await
                    .map(|()| format!("steppps-mgr is restarting {}", request.target))
                    .map_err(|e| describe(&e))
            }
            ActionKind::RunWorkflow => run_workflow(connection, request).await,
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
    }
}

/// Starts the workflow `<process> [NAME=VALUE…]` in steppps-scriptd.
async fn run_workflow(connection: &Connection, request: &ActionRequest) -> Outcome {
    let mut words = request.target.split_whitespace();
    let process = words.next().ok_or("no workflow named")?;
    let mut vars = serde_json::Map::new();
    vars.insert("rule".into(), request.rule.clone().into());
    vars.insert("message".into(), request.message.clone().into());
    for pair in words {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not NAME=VALUE"))?;
        vars.insert(name.into(), value.into());
    }
    let script = steppps::api::script::Script1Proxy::new(connection)
        .await
        .map_err(|e| e.to_string())?;
    script
        .start_instance(process, &serde_json::Value::Object(vars).to_string())
        .await
        .map(|id| format!("started instance {id} of workflow {process}"))
        .map_err(|e| describe(&e))
}

async fn systemd_call(connection: &Connection, action: ActionKind, unit: &str) -> Outcome {
    let dbus = zbus::fdo::DBusProxy::new(connection)
        .await
        .map_err(|e| e.to_string())?;
    let name = BusName::try_from("org.freedesktop.systemd1").map_err(|e| e.to_string())?;
    if !dbus.name_has_owner(name).await.unwrap_or(false) {
        return Err("systemd is not on this bus".into());
    }
    let systemd = Systemd1ManagerProxy::new(connection)
        .await
        .map_err(|e| e.to_string())?;
    let job = if action == ActionKind::StopUnit {
        systemd.stop_unit(unit, "replace").await
    } else {
        systemd.restart_unit(unit, "replace").await
    };
    job.map(|j| format!("systemd job {}", j.as_str()))
        .map_err(|e| describe(&e))
}

fn describe(e: &zbus::Error) -> String {
    let (name, message) = steppps::error::describe_remote(e);
    match name {
        Some(n) => format!("{message} ({n})"),
        None => message,
    }
}
