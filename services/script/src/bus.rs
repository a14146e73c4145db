//! `org.quantumos.Script1`: converts calls into engine operations, makes the D-Bus calls of
//! service tasks, fires timers, and sends the signals. Nothing else.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use steppps::Error;
use steppps::api::script::{
    DefinitionInfo, HistoryItem, IncidentInfo, InstanceDetail, InstanceInfo, TaskInfo, TokenInfo,
};
use steppps::api::{MAX_REPLY_BYTES, SCRIPT, fit_in, wire_len};
use steppps::auth::authorize;
use tracing::{debug, info, warn};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::wire::StructureBuilder;
use zbus::{Connection, DBusError, Structure, Variant, interface};

use crate::engine::{
    CallRequest, EngineError, EngineEvent, InstanceView, MAX_VARIABLES_BYTES, TaskKind, TaskView,
    Vars,
};
use crate::now_ms;
use crate::service::Script;

pub const DEPLOY: &str = "org.quantumos.script.deploy";
pub const RUN: &str = "org.quantumos.script.run";
pub const WORK: &str = "org.quantumos.script.work";

fn usec(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1000)
}

fn engine_error(e: EngineError) -> Error {
    match e {
        EngineError::Invalid(m) => Error::invalid_argument(m),
        EngineError::NotFound(m) => Error::not_found(m),
        EngineError::Conflict(m) => Error::Busy(m),
        EngineError::Store(m) => Error::failed(m),
    }
}

/// Parses a JSON object of variables; an empty string is no variables.
fn parse_vars(text: &str) -> Result<Vars, Error> {
    if text.trim().is_empty() {
        return Ok(Vars::new());
    }
    if text.len() > MAX_VARIABLES_BYTES {
        return Err(Error::invalid_argument(format!(
            "the variables are {:.1} MiB; at most {} MiB may be set at once",
            text.len() as f64 / f64::from(1 << 20),
            MAX_VARIABLES_BYTES >> 20
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        // Not the value echoed back: `1E15` prints as 18 bytes, four times what was sent.
        Ok(_) => Err(Error::invalid_argument(
            "variables must be a JSON object like {\"name\": 1}",
        )),
        Err(e) => Err(Error::invalid_argument(format!(
            "variables are not valid JSON: {e}"
        ))),
    }
}

fn instance_info(v: InstanceView) -> InstanceInfo {
    InstanceInfo {
        id: v.id,
        definition: v.key,
        version: v.version,
        state: v.state,
        started_usec: usec(v.started_ms),
        ended_usec: usec(v.ended_ms),
        positions: v.positions,
        incidents: v.incidents,
        parent: v.parent,
    }
}

fn task_info(t: TaskView) -> TaskInfo {
    TaskInfo {
        id: t.id,
        kind: t.kind,
        topic: t.topic,
        instance: t.instance,
        definition: t.key,
        activity_id: t.activity_id,
        activity_name: t.activity_name,
        retries: t.retries,
        attempts: t.attempts,
        variables_json: Value::Object(t.variables).to_string(),
        error_message: t.error_message,
        worker: t.worker,
        lock_expires_usec: usec(t.lock_expires_ms),
    }
}

#[derive(Debug)]
pub struct ScriptInterface {
    script: Arc<Script>,
}

impl ScriptInterface {
    pub fn new(script: Arc<Script>) -> Self {
        ScriptInterface { script }
    }

    /// Runs an engine operation, storing-failure aware, and sends the signals it caused.
    async fn op<R>(
        &self,
        emitter: &SignalEmitter<'_>,
        f: impl FnOnce(&mut crate::engine::Engine) -> Result<R, EngineError>,
    ) -> Result<R, Error> {
        let result = self.script.with(f);
        match &result {
            Err(EngineError::Store(m)) => self.script.note_store_failure(Some(m.clone())),
            // A step was stored again: whatever failed before (a full disk) is over.
            Ok(_) => self.script.note_store_failure(None),
            Err(_) => {}
        }
        emit_events(&self.script, emitter).await;
        result.map_err(engine_error)
    }
}

#[interface(name = "org.quantumos.Script1")]
impl ScriptInterface {
    async fn deploy(
        &self,
        xml: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(String, u32), Error> {
        authorize(connection, &header, DEPLOY).await?;
        let deployed = self.op(&emitter, |e| e.deploy(xml, now_ms())).await?;
        deployed
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid_argument("the file holds no executable process"))
    }

    fn list_definitions(&self) -> Vec<DefinitionInfo> {
        self.script
            .engine()
            .list_definitions()
            .into_iter()
            .map(|d| DefinitionInfo {
                key: d.key,
                name: d.name,
                version: d.version,
                versions: d.versions,
                deployed_usec: usec(d.deployed_ms),
                active_instances: d.active_instances,
                starts: d.starts,
            })
            .collect()
    }

    async fn start_instance(
        &self,
        definition: &str,
        variables_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<u64, Error> {
        let vars = parse_vars(variables_json)?;
        authorize(connection, &header, RUN).await?;
        self.op(&emitter, |e| e.start_instance(definition, vars, now_ms()))
            .await
    }

    fn list_instances(&self, definition: &str, state: &str) -> Vec<InstanceInfo> {
        let instances = self
            .script
            .engine()
            .list_instances(definition, state)
            .into_iter()
            .map(instance_info);
        fit_in(instances, MAX_REPLY_BYTES, |i| {
            wire_len(&i.definition)
                + wire_len(&i.state)
                + i.positions.iter().map(|p| wire_len(p)).sum::<usize>()
                + 64
        })
    }

    fn get_instance(&self, id: u64) -> Result<InstanceDetail, Error> {
        let d = self
            .script
            .engine()
            .get_instance(id)
            .map_err(engine_error)?;
        Ok(InstanceDetail {
            info: instance_info(d.info),
            variables_json: Value::Object(d.variables).to_string(),
            tokens: d
                .tokens
                .into_iter()
                .map(|t| TokenInfo {
                    id: t.id,
                    activity_id: t.activity_id,
                    activity_name: t.activity_name,
                    waiting_for: t.waiting_for,
                })
                .collect(),
            history: d
                .history
                .into_iter()
                .map(|h| HistoryItem {
                    seq: h.seq,
                    time_usec: usec(h.time_ms),
                    activity_id: h.activity_id,
                    activity_name: h.activity_name,
                    event: h.event,
                    detail: h.detail,
                })
                .collect(),
        })
    }

    async fn cancel(
        &self,
        id: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        authorize(connection, &header, RUN).await?;
        self.op(&emitter, |e| e.cancel(id, now_ms())).await
    }

    async fn set_variables(
        &self,
        id: u64,
        variables_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let vars = parse_vars(variables_json)?;
        authorize(connection, &header, RUN).await?;
        self.op(&emitter, |e| e.set_variables(id, vars, now_ms()))
            .await
    }

    async fn correlate_message(
        &self,
        name: &str,
        key: &str,
        variables_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<u64, Error> {
        let vars = parse_vars(variables_json)?;
        authorize(connection, &header, RUN).await?;
        self.op(&emitter, |e| e.correlate(name, key, vars, now_ms()))
            .await
    }

    // The D-Bus arguments, plus the header, connection and emitter zbus passes in.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_and_lock(
        &self,
        worker: &str,
        topics: Vec<String>,
        max: u32,
        lock_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<Vec<TaskInfo>, Error> {
        authorize(connection, &header, WORK).await?;
        let lock_ms = i64::try_from(lock_ms).unwrap_or(i64::MAX);
        let tasks = self
            .op(&emitter, |e| {
                e.fetch_and_lock(worker, &topics, max as usize, lock_ms, now_ms())
            })
            .await?;
        // The engine stops locking before the tasks would overflow the reply.
        Ok(tasks.into_iter().map(task_info).collect())
    }

    async fn complete(
        &self,
        task: u64,
        variables_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let vars = parse_vars(variables_json)?;
        let kind = self.script.engine().task_kind(task).map_err(engine_error)?;
        let action = match kind {
            TaskKind::User { .. } => RUN,
            _ => WORK,
        };
        if kind == TaskKind::Dbus {
            return Err(Error::invalid_argument(format!(
                "task {task} is a D-Bus call the engine makes itself"
            )));
        }
        authorize(connection, &header, action).await?;
        self.op(&emitter, |e| e.complete(task, vars, now_ms()))
            .await
    }

    // The D-Bus arguments, plus the header, connection and emitter zbus passes in.
    #[allow(clippy::too_many_arguments)]
    async fn handle_failure(
        &self,
        task: u64,
        message: &str,
        retries: i32,
        retry_timeout_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        authorize(connection, &header, WORK).await?;
        let timeout = i64::try_from(retry_timeout_ms).unwrap_or(i64::MAX);
        self.op(&emitter, |e| {
            e.handle_failure(task, message, retries, timeout, now_ms())
        })
        .await
    }

    // The D-Bus arguments, plus the header, connection and emitter zbus passes in.
    #[allow(clippy::too_many_arguments)]
    async fn handle_bpmn_error(
        &self,
        task: u64,
        code: &str,
        message: &str,
        variables_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let vars = parse_vars(variables_json)?;
        authorize(connection, &header, WORK).await?;
        self.op(&emitter, |e| {
            e.handle_bpmn_error(task, code, message, vars, now_ms())
        })
        .await
    }

    async fn extend_lock(
        &self,
        task: u64,
        worker: &str,
        lock_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        authorize(connection, &header, WORK).await?;
        let lock_ms = i64::try_from(lock_ms).unwrap_or(i64::MAX);
        self.op(&emitter, |e| e.extend_lock(task, worker, lock_ms, now_ms()))
            .await
    }

    fn list_tasks(&self, kind: &str) -> Vec<TaskInfo> {
        // The engine stops before the tasks would overflow the reply.
        self.script
            .engine()
            .list_tasks(kind)
            .into_iter()
            .map(task_info)
            .collect()
    }

    fn list_incidents(&self) -> Vec<IncidentInfo> {
        let incidents = self
            .script
            .engine()
            .list_incidents()
            .into_iter()
            .map(|i| IncidentInfo {
                id: i.id,
                instance: i.instance,
                definition: i.key,
                activity_id: i.activity_id,
                task: i.task,
                message: i.message,
                created_usec: usec(i.created_ms),
            });
        fit_in(incidents, MAX_REPLY_BYTES, |i| {
            wire_len(&i.definition) + wire_len(&i.activity_id) + wire_len(&i.message) + 64
        })
    }

    async fn resolve_incident(
        &self,
        id: u64,
        retries: i32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        authorize(connection, &header, RUN).await?;
        self.op(&emitter, |e| e.resolve_incident(id, retries, now_ms()))
            .await
    }

    #[zbus(signal)]
    async fn instance_changed(
        emitter: &SignalEmitter<'_>,
        id: u64,
        definition: &str,
        state: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn incident_raised(
        emitter: &SignalEmitter<'_>,
        id: u64,
        instance: u64,
        message: &str,
    ) -> zbus::Result<()>;
}

/// Sends the signals for what the engine did since the last call.
async fn emit_events(script: &Script, emitter: &SignalEmitter<'_>) {
    let events = script.engine().drain_events();
    for event in events {
        let sent = match &event {
            EngineEvent::InstanceChanged { id, key, state } => {
                ScriptInterface::instance_changed(emitter, *id, key, state).await
            }
            EngineEvent::IncidentRaised {
                id,
                instance,
                message,
            } => ScriptInterface::incident_raised(emitter, *id, *instance, message).await,
        };
        if let Err(e) = sent {
            debug!("cannot send a signal: {e}");
        }
    }
}

/// Starts the root orchestrator once the daemons its tasks call own their names, or after
/// `patience` in any case (its calls then fail and are retried like any other). At boot they
/// start alongside this daemon; waiting here, rather than ordering the unit after theirs,
/// lets all of them start at once without the first calls failing.
pub async fn start_root_when_callable(
    script: Arc<Script>,
    connection: Connection,
    patience: Duration,
) {
    let names = script
        .engine()
        .call_destinations(&script.config.root_process);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    debug!("the root process waits for {}", names.join(", "));
    if let Err(missing) = steppps::daemon::wait_for_names(&connection, &names, patience).await {
        warn!(
            "starting the root process although {} did not appear on the bus within {patience:?}",
            missing.join(", ")
        );
    }
    if let Err(e) = script.start_root() {
        warn!("{e:#}");
    }
}

/// Fires timers and makes the service tasks' D-Bus calls, for as long as the daemon runs.
pub async fn run_engine(script: Arc<Script>, connection: Connection) {
    let emitter = match SignalEmitter::new(&connection, SCRIPT.path) {
        Ok(e) => e.into_owned(),
        Err(e) => {
            warn!("workflow timers disabled: {e}");
            return;
        }
    };
    let timeout = Duration::from_millis(script.config.call_timeout_ms.max(1));
    // Old history goes at start and then hourly: history_days counts in days.
    const FORGET_EVERY: Duration = Duration::from_secs(3600);
    let mut forgotten_at: Option<std::time::Instant> = None;
    loop {
        let now = now_ms();
        let (calls, next) = {
            let mut engine = script.engine();
            if let Err(e) = engine.tick_timers(now) {
                warn!("{e}");
                script.note_store_failure(Some(e.to_string()));
            }
            if forgotten_at.is_none_or(|t| t.elapsed() >= FORGET_EVERY) {
                forgotten_at = Some(std::time::Instant::now());
                match engine.forget_old_history(now) {
                    Ok(0) => {}
                    Ok(n) => info!(
                        "forgot {n} instance(s) finished more than {} day(s) ago",
                        script.config.history_days
                    ),
                    Err(e) => warn!("cannot forget old history: {e}"),
                }
            }
            (engine.take_calls(now), engine.next_due())
        };
        emit_events(&script, &emitter).await;
        for call in calls {
            tokio::spawn(make_call(
                script.clone(),
                connection.clone(),
                emitter.clone(),
                call,
                timeout,
            ));
        }
        // Sleep to the next timer, at most a second (a wall-clock change is noticed), or
        // until the engine has something new.
        let wait = next.map_or(1000, |n| (n - now_ms()).clamp(0, 1000));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = script.wake.notified() => {}
        }
    }
}

async fn make_call(
    script: Arc<Script>,
    connection: Connection,
    emitter: SignalEmitter<'static>,
    call: CallRequest,
    timeout: Duration,
) {
    let outcome = match call_body(&call.args, call.signature.as_deref()) {
        Err(message) => Err((
            "org.quantumos.Error.InvalidArgument".to_string(),
            message,
            Some(0),
        )),
        Ok(body) => {
            let reply = async {
                let (dest, path, iface, method) = (
                    Some(call.destination.as_str()),
                    call.path.as_str(),
                    Some(call.interface.as_str()),
                    call.method.as_str(),
                );
                match &body {
                    None => connection.call_method(dest, path, iface, method, &()).await,
                    Some(b) => connection.call_method(dest, path, iface, method, b).await,
                }
            };
            match tokio::time::timeout(timeout, reply).await {
                Err(_) => Err((
                    "org.quantumos.Error.Timeout".to_string(),
                    format!(
                        "{}.{} on {} did not answer within {timeout:?}",
                        call.interface, call.method, call.destination
                    ),
                    None,
                )),
                Ok(Err(e)) => {
                    let (name, message) = steppps::error::describe_remote(&e);
                    // zbus turns the bus daemon's own errors (ServiceUnknown, …) into FDO
                    // values: their D-Bus name is the code an error boundary can match.
                    let name = name.or_else(|| match &e {
                        zbus::Error::FDO(fdo) => Some(fdo.name().to_string()),
                        _ => None,
                    });
                    Err((
                        name.unwrap_or_else(|| "org.quantumos.Error.Failed".into()),
                        format!("{}.{}: {message}", call.interface, call.method),
                        None,
                    ))
                }
                Ok(Ok(reply)) => Ok(reply_to_json(&reply)),
            }
        }
    };
    let now = now_ms();
    let result = script.with(|e| match outcome {
        Ok(value) => e.call_succeeded(call.task, value, now),
        Err((name, message, retries)) => e.call_failed(call.task, &name, &message, retries, now),
    });
    match result {
        Ok(()) => {}
        // The task went away meanwhile (instance cancelled, boundary timer): nothing to do.
        Err(EngineError::NotFound(_)) | Err(EngineError::Conflict(_)) => {}
        Err(e) => {
            warn!("task {}: {e}", call.task);
            if let EngineError::Store(m) = e {
                script.note_store_failure(Some(m));
            }
        }
    }
    emit_events(&script, &emitter).await;
}

/// The call's arguments as a D-Bus body, typed by `signature` or by the JSON values.
pub fn call_body(
    args: &[Value],
    signature: Option<&str>,
) -> Result<Option<Structure<'static>>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let types: Vec<String> = match signature {
        Some(sig) => split_signature(sig)?,
        None => args.iter().map(infer_type).collect::<Result<_, _>>()?,
    };
    if types.len() != args.len() {
        return Err(format!(
            "the signature has {} argument(s) but quantumos:args gives {}",
            types.len(),
            args.len()
        ));
    }
    let mut builder = StructureBuilder::new();
    for (value, ty) in args.iter().zip(&types) {
        builder = builder.append_field(to_variant(value, ty)?);
    }
    builder.build().map(Some).map_err(|e| e.to_string())
}

fn split_signature(sig: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = sig.chars();
    while let Some(c) = chars.next() {
        match c {
            'a' => match chars.next() {
                Some('s') => out.push("as".to_string()),
                other => {
                    return Err(format!(
                        "signature `{sig}`: only `as` arrays are supported, not `a{}`",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            },
            c if "sbynqiuxtd".contains(c) => out.push(c.to_string()),
            c => return Err(format!("signature `{sig}`: `{c}` is not supported")),
        }
    }
    Ok(out)
}

fn infer_type(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::String(_) => "s",
        Value::Bool(_) => "b",
        Value::Number(n) if n.is_i64() || n.is_u64() => "x",
        Value::Number(_) => "d",
        Value::Array(a) if a.iter().all(Value::is_string) => "as",
        other => {
            return Err(format!(
                "cannot tell the D-Bus type of {other}; give quantumos:signature"
            ));
        }
    }
    .to_string())
}

fn to_variant(v: &Value, ty: &str) -> Result<Variant<'static>, String> {
    let int = || -> Result<i64, String> {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("{v} is not an integer (signature `{ty}`)"))
    };
    let range = |what: &str| format!("{v} is out of range for `{what}`");
    // A NUL (`\u0000` in a variable's JSON) would make dbus-daemon drop steppps-scriptd from
    // the bus mid-call, so it stops the call here as any other bad argument does.
    let text = |v: &Value| -> Result<String, String> {
        let s = crate::expr::display(v);
        if s.contains('\0') {
            return Err(format!(
                "{v} contains a NUL character, which a D-Bus string cannot carry"
            ));
        }
        Ok(s)
    };
    Ok(match ty {
        "s" => Variant::from(text(v)?),
        "b" => Variant::from(v.as_bool().ok_or_else(|| format!("{v} is not a boolean"))?),
        "y" => Variant::from(u8::try_from(int()?).map_err(|_| range("y"))?),
        "n" => Variant::from(i16::try_from(int()?).map_err(|_| range("n"))?),
        "q" => Variant::from(u16::try_from(int()?).map_err(|_| range("q"))?),
        "i" => Variant::from(i32::try_from(int()?).map_err(|_| range("i"))?),
        "u" => Variant::from(u32::try_from(int()?).map_err(|_| range("u"))?),
        "x" => Variant::from(int()?),
        "t" => Variant::from(u64::try_from(int()?).map_err(|_| range("t"))?),
        "d" => Variant::from(v.as_f64().ok_or_else(|| format!("{v} is not a number"))?),
        "as" => Variant::from(
            v.as_array()
                .ok_or_else(|| format!("{v} is not a list"))?
                .iter()
                .map(text)
                .collect::<Result<Vec<String>, String>>()?,
        ),
        other => return Err(format!("unsupported type `{other}`")),
    })
}

/// A reply as JSON: nothing → null, one value → it, several → a list. Structures become
/// lists (D-Bus has no field names), dictionaries objects.
pub fn reply_to_json(reply: &zbus::Message) -> Value {
    let body = reply.body();
    if body.is_empty() {
        return Value::Null;
    }
    match body.deserialize::<Structure<'_>>() {
        Ok(s) => {
            let mut fields: Vec<Value> = s.fields().iter().map(variant_to_json).collect();
            if fields.len() == 1 {
                fields.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(fields)
            }
        }
        Err(e) => {
            debug!("cannot read a reply: {e}");
            Value::Null
        }
    }
}

fn variant_to_json(v: &Variant<'_>) -> Value {
    match v {
        Variant::U8(n) => Value::from(*n),
        Variant::Bool(b) => Value::from(*b),
        Variant::I16(n) => Value::from(*n),
        Variant::U16(n) => Value::from(*n),
        Variant::I32(n) => Value::from(*n),
        Variant::U32(n) => Value::from(*n),
        Variant::I64(n) => Value::from(*n),
        Variant::U64(n) => Value::from(*n),
        Variant::F64(n) => Value::from(*n),
        Variant::Str(s) => Value::from(s.as_str()),
        Variant::Signature(s) => Value::from(s.to_string()),
        Variant::ObjectPath(p) => Value::from(p.as_str()),
        Variant::Variant(inner) => variant_to_json(inner),
        Variant::Array(a) => Value::Array(a.inner().iter().map(variant_to_json).collect()),
        Variant::Dict(d) => Value::Object(
            d.iter()
                .map(|(k, v)| {
                    let key = match variant_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, variant_to_json(v))
                })
                .collect(),
        ),
        Variant::Structure(s) => Value::Array(s.fields().iter().map(variant_to_json).collect()),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_that_are_not_an_object_or_too_large_are_refused_briefly() {
        let message = |text: &str| match parse_vars(text) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        let numbers = format!("[{}1]", "1E15,".repeat(100_000));
        let m = message(&numbers);
        assert!(
            m.len() < 100 && m.contains("must be a JSON object"),
            "{}",
            &m[..m.len().min(200)]
        );
        let huge = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_VARIABLES_BYTES));
        assert!(message(&huge).contains("at most 4 MiB"));
        assert_eq!(parse_vars(" ").unwrap(), Vars::new());
    }

    #[test]
    fn arguments_are_typed_by_signature_or_value() {
        let body = call_body(&[json!("space"), json!(3)], Some("su"))
            .unwrap()
            .unwrap();
        assert_eq!(body.signature().to_string(), "(su)");
        let body = call_body(&[json!(["a", "b"]), json!(true)], None)
            .unwrap()
            .unwrap();
        assert_eq!(body.signature().to_string(), "(asb)");
        assert!(call_body(&[], None).unwrap().is_none());
        let err = call_body(&[json!(70000)], Some("q")).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    /// `\u0000` in a variable's JSON must fail the task, not reach the bus (where
    /// dbus-daemon would disconnect steppps-scriptd for it).
    #[test]
    fn a_nul_in_an_argument_fails_the_call() {
        let err = call_body(&[json!("a\u{0}b")], Some("s")).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
        let err = call_body(&[json!(["ok", "x\u{0}"])], None).unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }
}
