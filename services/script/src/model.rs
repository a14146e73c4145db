//! BPMN 2.0 XML → an executable process graph.
//!
//! Reads files as modelers save them (bpmn.io, Camunda Modeler 7 and 8): namespaces resolved
//! properly, diagram interchange (`bpmndi`, `dc`, `di`) and unknown vendor extensions ignored,
//! `camunda:` and `zeebe:` attributes understood where the engine has the concept (external
//! task topics, I/O mappings, called elements, error variables). Every flow element the engine
//! cannot execute is refused with its kind, id and line — a process never runs with a part of
//! it silently skipped. Conditions and mappings are parsed here, so a bad one fails the deploy.

use std::collections::{HashMap, HashSet};
use std::fmt;

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use crate::expr::{Expr, ExprError};
use crate::timer::{self, Schedule, TimerKind};

pub const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
pub const CAMUNDA_NS: &str = "http://camunda.org/schema/1.0/bpmn";
pub const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";
/// Our own extension attributes (`quantumos:call`, `quantumos:args`, …).
pub const QUANTUMOS_NS: &str = "http://quantumos.org/schema/bpmn/1.0";

/// Largest definition accepted, in bytes.
pub const MAX_XML_BYTES: usize = 4 * 1024 * 1024;
/// Most XML elements in one definition (diagram elements included).
pub const MAX_ELEMENTS: usize = 100_000;
/// Deepest XML nesting accepted.
pub const MAX_XML_DEPTH: usize = 100;

/// Why a definition cannot be deployed: what, where (element and line) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub message: String,
    pub line: Option<usize>,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ModelError {}

fn model_err(message: impl Into<String>, line: Option<usize>) -> ModelError {
    ModelError {
        message: message.into(),
        line,
    }
}

// ---------------------------------------------------------------------------------------
// A small DOM: BPMN files are small (the limit is 4 MiB), and resolving references
// (`sourceRef`, `attachedToRef`, `messageRef`) needs the whole document anyway.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Bpmn,
    Camunda,
    Zeebe,
    Quantumos,
    Other,
    None,
}

impl Ns {
    fn of(ns: &ResolveResult<'_>) -> Ns {
        match ns {
            ResolveResult::Bound(Namespace(uri)) => match *uri {
                u if u == BPMN_NS.as_bytes() => Ns::Bpmn,
                u if u == CAMUNDA_NS.as_bytes() => Ns::Camunda,
                u if u == ZEEBE_NS.as_bytes() => Ns::Zeebe,
                u if u == QUANTUMOS_NS.as_bytes() => Ns::Quantumos,
                _ => Ns::Other,
            },
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(_) => Ns::Other,
        }
    }
}

#[derive(Debug)]
struct El {
    ns: Ns,
    name: String,
    attrs: Vec<(Ns, String, String)>,
    children: Vec<El>,
    text: String,
    line: usize,
}

impl El {
    /// An unprefixed attribute (BPMN's own).
    fn attr(&self, name: &str) -> Option<&str> {
        self.attr_ns(Ns::None, name)
    }

    fn attr_ns(&self, ns: Ns, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, k, _)| *n == ns && k == name)
            .map(|(_, _, v)| v.as_str())
    }

    fn bpmn_children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == Ns::Bpmn && c.name == name)
    }

    fn bpmn_child<'a>(&'a self, name: &'a str) -> Option<&'a El> {
        self.bpmn_children(name).next()
    }

    fn extensions(&self) -> impl Iterator<Item = &El> {
        self.bpmn_children("extensionElements")
            .flat_map(|e| e.children.iter())
    }

    fn id(&self) -> &str {
        self.attr("id").unwrap_or("")
    }

    /// `bpmn:serviceTask `Task_1` ("Check dimensions")`, for messages.
    fn describe(&self) -> String {
        describe(&self.name, self.id(), self.attr("name").unwrap_or(""))
    }
}

fn describe(kind: &str, id: &str, name: &str) -> String {
    let mut s = format!("bpmn:{kind} `{id}`");
    if !name.is_empty() {
        s.push_str(&format!(" (\"{name}\")"));
    }
    s
}

fn line_at(xml: &[u8], offset: usize) -> usize {
    xml[..offset.min(xml.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_dom(xml: &str) -> Result<El, ModelError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(model_err(
            format!(
                "the definition is {:.1} MiB; the limit is {} MiB (a process this big is \
                 almost certainly not hand-drawn: split it with call activities)",
                xml.len() as f64 / (1024.0 * 1024.0),
                MAX_XML_BYTES / (1024 * 1024)
            ),
            None,
        ));
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().trim_text(false);
    let bytes = xml.as_bytes();
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    let mut count = 0usize;
    loop {
        let at = reader.buffer_position() as usize;
        let event = match reader.read_resolved_event() {
            Ok((ns, event)) => (Ns::of(&ns), event),
            Err(e) => {
                let pos = reader.error_position() as usize;
                return Err(model_err(
                    format!("not well-formed XML: {e}"),
                    Some(line_at(bytes, pos)),
                ));
            }
        };
        match event {
            (ns, Event::Start(start)) => {
                open(&reader, ns, &start, at, bytes, &mut stack, &mut count)?;
            }
            (ns, Event::Empty(start)) => {
                open(&reader, ns, &start, at, bytes, &mut stack, &mut count)?;
                close(&mut stack, &mut root)?;
            }
            (_, Event::End(_)) => close(&mut stack, &mut root)?,
            (_, Event::Text(t)) => {
                if let Some(top) = stack.last_mut() {
                    let text = t.decode().map_err(|e| {
                        model_err(format!("bad text: {e}"), Some(line_at(bytes, at)))
                    })?;
                    top.text.push_str(&text);
                }
            }
            (_, Event::GeneralRef(r)) => {
                if let Some(top) = stack.last_mut() {
                    let bad =
                        |e: String| model_err(format!("bad entity: {e}"), Some(line_at(bytes, at)));
                    if let Some(c) = r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                        top.text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| bad(e.to_string()))?;
                        let c = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| bad(format!("unknown entity `&{name};`")))?;
                        top.text.push_str(c);
                    }
                }
            }
            (_, Event::CData(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            (_, Event::DocType(_)) => {
                // Entity definitions are how "billion laughs" documents work; BPMN never
                // needs a DTD.
                return Err(model_err(
                    "DOCTYPE declarations are not allowed in BPMN files",
                    Some(line_at(bytes, at)),
                ));
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(model_err(
            "not well-formed XML: the document ends inside an element",
            Some(line_at(bytes, xml.len())),
        ));
    }
    root.ok_or_else(|| model_err("empty document: no root element", None))
}

fn open(
    reader: &NsReader<&[u8]>,
    ns: Ns,
    start: &quick_xml::events::BytesStart<'_>,
    at: usize,
    bytes: &[u8],
    stack: &mut Vec<El>,
    count: &mut usize,
) -> Result<(), ModelError> {
    *count += 1;
    if *count > MAX_ELEMENTS {
        return Err(model_err(
            format!("more than {MAX_ELEMENTS} XML elements"),
            Some(line_at(bytes, at)),
        ));
    }
    if stack.len() >= MAX_XML_DEPTH {
        return Err(model_err(
            format!("XML nested more than {MAX_XML_DEPTH} deep"),
            Some(line_at(bytes, at)),
        ));
    }
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| {
            model_err(
                format!("bad attribute in <{name}>: {e}"),
                Some(line_at(bytes, at)),
            )
        })?;
        let key = a.key;
        if key.as_ref().starts_with(b"xmlns") {
            continue;
        }
        let (ans, local) = reader.resolver().resolve_attribute(key);
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| {
                model_err(
                    format!("bad attribute value in <{name}>: {e}"),
                    Some(line_at(bytes, at)),
                )
            })?
            .into_owned();
        attrs.push((
            Ns::of(&ans),
            String::from_utf8_lossy(local.as_ref()).into_owned(),
            value,
        ));
    }
    stack.push(El {
        ns,
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
        line: line_at(bytes, at),
    });
    Ok(())
}

fn close(stack: &mut Vec<El>, root: &mut Option<El>) -> Result<(), ModelError> {
    let el = stack
        .pop()
        .ok_or_else(|| model_err("not well-formed XML: unbalanced end tag", None))?;
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => {
            if root.is_some() {
                return Err(model_err(
                    "not well-formed XML: more than one root element",
                    Some(el.line),
                ));
            }
            *root = Some(el);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The executable model

/// An input or output mapping: `target := source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub target: String,
    pub source: Expr,
}

/// A D-Bus method a service task calls.
#[derive(Debug, Clone, PartialEq)]
pub struct DbusCall {
    /// Bus name, always `org.quantumos.*`.
    pub destination: String,
    pub path: String,
    pub interface: String,
    pub method: String,
    /// The arguments' D-Bus signature when given (`su`); otherwise inferred from the values.
    pub signature: Option<String>,
    /// A list expression giving the arguments.
    pub args: Option<Expr>,
}

/// What carries out a service (or send) task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskBinding {
    /// The engine calls a QuantumOS daemon.
    Dbus(DbusCall),
    /// An external worker fetches it by topic.
    External { topic: String },
}

/// A message subscription: its name and the expression giving the correlation key.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRef {
    pub name: String,
    pub key: Option<Expr>,
}

/// A timer: a literal (checked at deploy) or an expression giving the text.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerDef {
    pub kind: TimerKind,
    pub text: String,
    pub literal: Option<Schedule>,
    pub expr: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    StartNone,
    StartTimer(TimerDef),
    StartMessage(MessageRef),
    EndNone,
    EndError {
        code: Option<String>,
    },
    EndTerminate,
    EndCompensate {
        activity: Option<usize>,
    },
    ThrowNone,
    ThrowCompensate {
        activity: Option<usize>,
    },
    CatchTimer(TimerDef),
    CatchMessage(MessageRef),
    ServiceTask(TaskBinding),
    UserTask {
        assignee: Option<String>,
    },
    /// A send task either publishes a message to a waiting instance (correlated like
    /// `CorrelateMessage`) or is carried out like a service task.
    SendMessage(MessageRef),
    SendTask(TaskBinding),
    ReceiveTask(MessageRef),
    CallActivity {
        called: String,
    },
    SubProcess {
        start: usize,
    },
    Exclusive,
    Parallel,
    Inclusive,
    EventBased,
    BoundaryError {
        code: Option<String>,
        code_variable: Option<String>,
        message_variable: Option<String>,
    },
    BoundaryTimer {
        timer: TimerDef,
        interrupting: bool,
    },
    BoundaryCompensate {
        handler: Option<usize>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// The BPMN element name (`serviceTask`), for messages.
    pub element: String,
    pub kind: NodeKind,
    /// The embedded sub-process this node is in (`None`: the process itself).
    pub scope: Option<usize>,
    pub incoming: Vec<usize>,
    pub outgoing: Vec<usize>,
    pub default_flow: Option<usize>,
    /// For boundary events: the activity they are attached to.
    pub attached_to: Option<usize>,
    /// For activities: their boundary events.
    pub boundaries: Vec<usize>,
    pub inputs: Vec<Mapping>,
    pub outputs: Vec<Mapping>,
    /// Store the whole result of a service call in this variable.
    pub result_variable: Option<String>,
    pub for_compensation: bool,
}

impl Node {
    pub fn describe(&self) -> String {
        describe(&self.element, &self.id, &self.name)
    }

    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }

    /// Whether a token stops here until something outside the engine happens.
    pub fn is_wait_state(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::CatchTimer(_)
                | NodeKind::CatchMessage(_)
                | NodeKind::ServiceTask(_)
                | NodeKind::UserTask { .. }
                | NodeKind::SendTask(_)
                | NodeKind::ReceiveTask(_)
                | NodeKind::CallActivity { .. }
                | NodeKind::EventBased
        )
    }

    pub fn is_activity(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::ServiceTask(_)
                | NodeKind::UserTask { .. }
                | NodeKind::SendMessage(_)
                | NodeKind::SendTask(_)
                | NodeKind::ReceiveTask(_)
                | NodeKind::CallActivity { .. }
                | NodeKind::SubProcess { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub source: usize,
    pub target: usize,
    pub condition: Option<Expr>,
}

/// One executable process of a definition file.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// The process id: the definition's key.
    pub key: String,
    pub name: String,
    pub nodes: Vec<Node>,
    pub flows: Vec<Flow>,
    /// The none start event of the process (`StartInstance` begins here).
    pub start: Option<usize>,
    /// Timer and message start events.
    pub event_starts: Vec<usize>,
}

impl Process {
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The message names that start this process.
    pub fn start_messages(&self) -> impl Iterator<Item = (usize, &str)> {
        self.event_starts
            .iter()
            .filter_map(|&i| match &self.nodes[i].kind {
                NodeKind::StartMessage(m) => Some((i, m.name.as_str())),
                _ => None,
            })
    }
}

/// Parses a BPMN file into its executable processes (at least one).
pub fn parse(xml: &str) -> Result<Vec<Process>, ModelError> {
    let root = parse_dom(xml)?;
    if root.ns != Ns::Bpmn || root.name != "definitions" {
        return Err(model_err(
            format!(
                "not a BPMN 2.0 file: the root element is <{}>, not <bpmn:definitions> in \
                 namespace {BPMN_NS}",
                root.name
            ),
            Some(root.line),
        ));
    }
    let mut globals = Globals::default();
    for child in &root.children {
        if child.ns != Ns::Bpmn {
            continue;
        }
        match child.name.as_str() {
            "message" => {
                // Zeebe keeps the correlation key on the message.
                let key = child
                    .extensions()
                    .find(|e| e.ns == Ns::Zeebe && e.name == "subscription")
                    .and_then(|s| s.attr("correlationKey"))
                    .map(|k| parse_expr(k, &child.describe(), child.line))
                    .transpose()?;
                globals.messages.insert(
                    child.id().to_string(),
                    (child.attr("name").unwrap_or(child.id()).to_string(), key),
                );
            }
            "error" => {
                globals.errors.insert(
                    child.id().to_string(),
                    child
                        .attr("errorCode")
                        .or(child.attr("name"))
                        .unwrap_or(child.id())
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    let mut processes = Vec::new();
    for p in root.bpmn_children("process") {
        if p.attr("isExecutable") == Some("false") {
            continue;
        }
        processes.push(build_process(p, &globals)?);
    }
    if processes.is_empty() {
        return Err(model_err(
            "no executable process in the file (set isExecutable=\"true\" on the process)",
            Some(root.line),
        ));
    }
    let mut seen = HashSet::new();
    for p in &processes {
        if !seen.insert(p.key.clone()) {
            return Err(model_err(
                format!("two processes with the id `{}`", p.key),
                None,
            ));
        }
    }
    Ok(processes)
}

#[derive(Debug, Default)]
struct Globals {
    /// message id → (name, Zeebe correlation key)
    messages: HashMap<String, (String, Option<Expr>)>,
    /// error id → error code
    errors: HashMap<String, String>,
}

fn parse_expr(text: &str, what: &str, line: usize) -> Result<Expr, ModelError> {
    Expr::parse_modeler(text).map_err(|e: ExprError| {
        model_err(
            format!("{what}: expression `{}` does not parse: {e}", text.trim()),
            Some(line),
        )
    })
}

/// Flow elements that are never executed and are safe to ignore: documentation, artifacts,
/// lanes, data objects (the engine keeps data in variables).
const IGNORED: &[&str] = &[
    "documentation",
    "extensionElements",
    "laneSet",
    "textAnnotation",
    "association",
    "group",
    "dataObject",
    "dataObjectReference",
    "dataStoreReference",
    "property",
    "ioSpecification",
    "incoming",
    "outgoing",
    "dataInputAssociation",
    "dataOutputAssociation",
];

const NODE_ELEMENTS: &[&str] = &[
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "serviceTask",
    "userTask",
    "sendTask",
    "receiveTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
];

fn unsupported_hint(element: &str) -> &'static str {
    match element {
        "scriptTask" => {
            "no code runs inside the engine; use a service task with an external worker \
             (camunda:type=\"external\") or a D-Bus call (quantumos:call)"
        }
        "task" | "manualTask" => {
            "a plain task does nothing the engine can carry out; make it a service, user, \
             send or receive task"
        }
        "businessRuleTask" => "DMN is not supported; use an exclusive gateway with conditions",
        "complexGateway" => "use an inclusive or parallel gateway",
        "transaction" => "use an embedded sub-process with compensation",
        "adHocSubProcess" => "use an embedded sub-process",
        _ => "the engine does not implement it",
    }
}

struct Builder<'a> {
    globals: &'a Globals,
    nodes: Vec<Node>,
    flows: Vec<Flow>,
    /// Raw references, resolved once every node exists.
    flow_refs: Vec<(String, String, String, usize)>,
    defaults: Vec<(usize, String)>,
    attachments: Vec<(usize, String, usize)>,
    compensate_refs: Vec<(usize, String, usize)>,
    associations: Vec<(String, String)>,
    sub_starts: Vec<(usize, Option<usize>)>,
    depth: usize,
}

fn build_process(p: &El, globals: &Globals) -> Result<Process, ModelError> {
    let key = p.id().to_string();
    if key.is_empty() {
        return Err(model_err("a process without an id", Some(p.line)));
    }
    let mut b = Builder {
        globals,
        nodes: Vec::new(),
        flows: Vec::new(),
        flow_refs: Vec::new(),
        defaults: Vec::new(),
        attachments: Vec::new(),
        compensate_refs: Vec::new(),
        associations: Vec::new(),
        sub_starts: Vec::new(),
        depth: 0,
    };
    b.scope(p, None)?;
    b.resolve()?;
    let Builder { nodes, flows, .. } = b;
    let start = nodes
        .iter()
        .position(|n| n.scope.is_none() && n.kind == NodeKind::StartNone);
    let event_starts: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.scope.is_none()
                && matches!(n.kind, NodeKind::StartTimer(_) | NodeKind::StartMessage(_))
        })
        .map(|(i, _)| i)
        .collect();
    let process = Process {
        key,
        name: p.attr("name").unwrap_or("").to_string(),
        nodes,
        flows,
        start,
        event_starts,
    };
    validate(&process, p.line)?;
    Ok(process)
}

impl Builder<'_> {
    fn scope(&mut self, container: &El, scope: Option<usize>) -> Result<(), ModelError> {
        self.depth += 1;
        if self.depth > 16 {
            return Err(model_err(
                "sub-processes nested more than 16 deep",
                Some(container.line),
            ));
        }
        for el in &container.children {
            if el.ns != Ns::Bpmn {
                continue;
            }
            let name = el.name.as_str();
            if NODE_ELEMENTS.contains(&name) {
                self.node(el, scope)?;
            } else if name == "sequenceFlow" {
                self.sequence_flow(el)?;
            } else if name == "association" {
                if let (Some(s), Some(t)) = (el.attr("sourceRef"), el.attr("targetRef")) {
                    self.associations.push((s.to_string(), t.to_string()));
                }
            } else if !IGNORED.contains(&name) {
                return Err(model_err(
                    format!(
                        "{} is not supported: {}",
                        el.describe(),
                        unsupported_hint(name)
                    ),
                    Some(el.line),
                ));
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn sequence_flow(&mut self, el: &El) -> Result<(), ModelError> {
        let what = el.describe();
        let source = el
            .attr("sourceRef")
            .ok_or_else(|| model_err(format!("{what} has no sourceRef"), Some(el.line)))?;
        let target = el
            .attr("targetRef")
            .ok_or_else(|| model_err(format!("{what} has no targetRef"), Some(el.line)))?;
        let condition = match el.bpmn_child("conditionExpression") {
            Some(c) => {
                if let Some(lang) = c.attr("language")
                    && !lang.eq_ignore_ascii_case("feel")
                    && !lang.eq_ignore_ascii_case("juel")
                {
                    return Err(model_err(
                        format!(
                            "{what}: condition in `{lang}` is not supported: no scripts run \
                             inside the engine; write it as an expression"
                        ),
                        Some(c.line),
                    ));
                }
                if c.text.trim().is_empty() {
                    None
                } else {
                    Some(parse_expr(&c.text, &format!("{what} condition"), c.line)?)
                }
            }
            None => None,
        };
        self.flows.push(Flow {
            id: el.id().to_string(),
            name: el.attr("name").unwrap_or("").to_string(),
            source: usize::MAX,
            target: usize::MAX,
            condition,
        });
        self.flow_refs.push((
            el.id().to_string(),
            source.to_string(),
            target.to_string(),
            el.line,
        ));
        Ok(())
    }

    fn node(&mut self, el: &El, scope: Option<usize>) -> Result<(), ModelError> {
        let what = el.describe();
        let line = Some(el.line);
        if el.id().is_empty() {
            return Err(model_err(format!("a bpmn:{} without an id", el.name), line));
        }
        for child in &el.children {
            if child.ns == Ns::Bpmn
                && matches!(
                    child.name.as_str(),
                    "multiInstanceLoopCharacteristics" | "standardLoopCharacteristics"
                )
            {
                return Err(model_err(
                    format!(
                        "{what}: {} is not supported: model the loop with a gateway and a wait state",
                        child.name
                    ),
                    Some(child.line),
                ));
            }
        }
        for ext in el.extensions() {
            if ext.ns == Ns::Camunda
                && matches!(
                    ext.name.as_str(),
                    "executionListener" | "taskListener" | "connector" | "field"
                )
            {
                return Err(model_err(
                    format!(
                        "{what}: camunda:{} is not supported: listeners and connectors run \
                         code, and no code runs inside the engine",
                        ext.name
                    ),
                    Some(ext.line),
                ));
            }
        }
        let event_defs: Vec<&El> = el
            .children
            .iter()
            .filter(|c| c.ns == Ns::Bpmn && c.name.ends_with("EventDefinition"))
            .collect();
        if event_defs.len() > 1 {
            return Err(model_err(
                format!(
                    "{what}: events with several definitions (multiple events) are not supported"
                ),
                line,
            ));
        }
        let def = event_defs.first().copied();
        let def_name = def.map(|d| d.name.as_str());
        let unsupported_def = |kind: &str| {
            model_err(
                format!(
                    "{what}: a {kind} with a {} is not supported",
                    def_name.unwrap_or("?")
                ),
                def.map(|d| d.line).or(line),
            )
        };
        let index = self.nodes.len();
        let kind = match el.name.as_str() {
            "startEvent" => match def_name {
                None => NodeKind::StartNone,
                Some("timerEventDefinition") if scope.is_none() => {
                    NodeKind::StartTimer(self.timer(def.unwrap_or(el), &what)?)
                }
                Some("messageEventDefinition") if scope.is_none() => {
                    NodeKind::StartMessage(self.message(def.unwrap_or(el), el, &what)?)
                }
                _ => return Err(unsupported_def("start event")),
            },
            "endEvent" => match (def_name, def) {
                (None, _) => NodeKind::EndNone,
                (Some("terminateEventDefinition"), _) => NodeKind::EndTerminate,
                (Some("errorEventDefinition"), Some(d)) => NodeKind::EndError {
                    code: self.error_code(d, &what)?,
                },
                (Some("compensateEventDefinition"), Some(d)) => {
                    if let Some(a) = d.attr("activityRef") {
                        self.compensate_refs.push((index, a.to_string(), d.line));
                    }
                    NodeKind::EndCompensate { activity: None }
                }
                _ => return Err(unsupported_def("end event")),
            },
            "intermediateThrowEvent" => match (def_name, def) {
                (None, _) => NodeKind::ThrowNone,
                (Some("compensateEventDefinition"), Some(d)) => {
                    if let Some(a) = d.attr("activityRef") {
                        self.compensate_refs.push((index, a.to_string(), d.line));
                    }
                    NodeKind::ThrowCompensate { activity: None }
                }
                _ => return Err(unsupported_def("intermediate throw event")),
            },
            "intermediateCatchEvent" => match (def_name, def) {
                (Some("timerEventDefinition"), Some(d)) => {
                    NodeKind::CatchTimer(self.timer(d, &what)?)
                }
                (Some("messageEventDefinition"), Some(d)) => {
                    NodeKind::CatchMessage(self.message(d, el, &what)?)
                }
                _ => return Err(unsupported_def("intermediate catch event")),
            },
            "boundaryEvent" => {
                let attached = el.attr("attachedToRef").ok_or_else(|| {
                    model_err(format!("{what} has no attachedToRef"), line)
                })?;
                self.attachments.push((index, attached.to_string(), el.line));
                let interrupting = el.attr("cancelActivity") != Some("false");
                match (def_name, def) {
                    (Some("errorEventDefinition"), Some(d)) => {
                        if !interrupting {
                            return Err(model_err(
                                format!("{what}: an error boundary event always interrupts"),
                                line,
                            ));
                        }
                        NodeKind::BoundaryError {
                            code: self.error_code(d, &what)?,
                            code_variable: d
                                .attr_ns(Ns::Camunda, "errorCodeVariable")
                                .map(str::to_string),
                            message_variable: d
                                .attr_ns(Ns::Camunda, "errorMessageVariable")
                                .map(str::to_string),
                        }
                    }
                    (Some("timerEventDefinition"), Some(d)) => NodeKind::BoundaryTimer {
                        timer: self.timer(d, &what)?,
                        interrupting,
                    },
                    (Some("compensateEventDefinition"), Some(_)) => {
                        NodeKind::BoundaryCompensate { handler: None }
                    }
                    _ => return Err(unsupported_def("boundary event")),
                }
            }
            "serviceTask" => NodeKind::ServiceTask(self.binding(el, &what)?.ok_or_else(|| {
                model_err(
                    format!(
                        "{what} says nothing about who carries it out: set quantumos:call=\"org.quantumos.Space1.GetInventory\" \
                         (a D-Bus method) or camunda:type=\"external\" camunda:topic=\"…\" (an external worker)"
                    ),
                    line,
                )
            })?),
            "sendTask" => match el.attr("messageRef") {
                Some(m) => NodeKind::SendMessage(self.message_named(m, el, &what)?),
                None => NodeKind::SendTask(self.binding(el, &what)?.ok_or_else(|| {
                    model_err(
                        format!(
                            "{what} needs a messageRef (a message to another instance), \
                             quantumos:call or an external topic"
                        ),
                        line,
                    )
                })?),
            },
            "receiveTask" => {
                let m = el.attr("messageRef").ok_or_else(|| {
                    model_err(format!("{what} needs a messageRef"), line)
                })?;
                NodeKind::ReceiveTask(self.message_named(m, el, &what)?)
            }
            "userTask" => NodeKind::UserTask {
                assignee: el
                    .attr_ns(Ns::Camunda, "assignee")
                    .map(str::to_string)
                    .or_else(|| {
                        el.extensions()
                            .find(|e| e.ns == Ns::Zeebe && e.name == "assignmentDefinition")
                            .and_then(|a| a.attr("assignee"))
                            .map(str::to_string)
                    }),
            },
            "callActivity" => {
                let called = el
                    .attr("calledElement")
                    .map(str::to_string)
                    .or_else(|| {
                        el.extensions()
                            .find(|e| e.ns == Ns::Zeebe && e.name == "calledElement")
                            .and_then(|c| c.attr("processId"))
                            .map(str::to_string)
                    })
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        model_err(
                            format!("{what} does not say which process it calls (calledElement)"),
                            line,
                        )
                    })?;
                if called.starts_with("${") || called.starts_with('=') {
                    return Err(model_err(
                        format!("{what}: the called process must be a process id, not an expression"),
                        line,
                    ));
                }
                NodeKind::CallActivity { called }
            }
            "subProcess" => {
                if el.attr("triggeredByEvent") == Some("true") {
                    return Err(model_err(
                        format!("{what}: event sub-processes are not supported; use boundary events"),
                        line,
                    ));
                }
                NodeKind::SubProcess { start: usize::MAX }
            }
            "exclusiveGateway" => NodeKind::Exclusive,
            "parallelGateway" => NodeKind::Parallel,
            "inclusiveGateway" => NodeKind::Inclusive,
            "eventBasedGateway" => {
                if el.attr("eventGatewayType") == Some("Parallel") || el.attr("instantiate") == Some("true") {
                    return Err(model_err(
                        format!("{what}: instantiating or parallel event-based gateways are not supported"),
                        line,
                    ));
                }
                NodeKind::EventBased
            }
            other => {
                return Err(model_err(
                    format!("{what} is not supported: {}", unsupported_hint(other)),
                    line,
                ));
            }
        };
        let (inputs, outputs) = self.mappings(el, &what)?;
        if let Some(d) = el.attr("default") {
            self.defaults.push((index, d.to_string()));
        }
        self.nodes.push(Node {
            id: el.id().to_string(),
            name: el.attr("name").unwrap_or("").trim().to_string(),
            element: el.name.clone(),
            kind,
            scope,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            default_flow: None,
            attached_to: None,
            boundaries: Vec::new(),
            inputs,
            outputs,
            result_variable: el
                .attr_ns(Ns::Quantumos, "resultVariable")
                .or(el.attr_ns(Ns::Camunda, "resultVariable"))
                .map(str::to_string),
            for_compensation: el.attr("isForCompensation") == Some("true"),
        });
        if el.name == "subProcess" {
            self.scope(el, Some(index))?;
            let start = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.scope == Some(index))
                .filter(|(_, n)| n.element == "startEvent")
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            match start.as_slice() {
                [s] if self.nodes[*s].kind == NodeKind::StartNone => {
                    self.sub_starts.push((index, Some(*s)));
                }
                _ => {
                    return Err(model_err(
                        format!("{what} needs exactly one start event, a none start event"),
                        line,
                    ));
                }
            }
        }
        Ok(())
    }

    fn binding(&self, el: &El, what: &str) -> Result<Option<TaskBinding>, ModelError> {
        let line = Some(el.line);
        for attr in ["class", "delegateExpression", "expression"] {
            if el.attr_ns(Ns::Camunda, attr).is_some() {
                return Err(model_err(
                    format!(
                        "{what}: camunda:{attr} is not supported: it runs Java or JUEL code; \
                         use camunda:type=\"external\" with a topic, or quantumos:call"
                    ),
                    line,
                ));
            }
        }
        if let Some(call) = el.attr_ns(Ns::Quantumos, "call") {
            let (interface, method) = call.rsplit_once('.').ok_or_else(|| {
                model_err(
                    format!("{what}: quantumos:call=\"{call}\" is not Interface.Method"),
                    line,
                )
            })?;
            let destination = el
                .attr_ns(Ns::Quantumos, "destination")
                .unwrap_or(interface)
                .to_string();
            // The engine runs as root: it only ever calls QuantumOS daemons, whatever a
            // definition says.
            if !destination.starts_with("org.quantumos.")
                || !interface.starts_with("org.quantumos.")
            {
                return Err(model_err(
                    format!(
                        "{what}: only org.quantumos interfaces and services may be called, not `{call}`"
                    ),
                    line,
                ));
            }
            if method.is_empty()
                || !method
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(model_err(
                    format!("{what}: `{method}` is not a D-Bus method name"),
                    line,
                ));
            }
            let signature = el.attr_ns(Ns::Quantumos, "signature").map(str::to_string);
            if let Some(s) = &signature
                && let Some(bad) = s.chars().find(|c| !"sbynqiuxtd".contains(*c) && *c != 'a')
            {
                return Err(model_err(
                    format!(
                        "{what}: quantumos:signature `{s}` has `{bad}`; supported: s b y n q i u x t d and `as`"
                    ),
                    line,
                ));
            }
            let args = el
                .attr_ns(Ns::Quantumos, "args")
                .map(|a| parse_expr(a, &format!("{what} quantumos:args"), el.line))
                .transpose()?;
            let path = format!("/{}", destination.replace('.', "/"));
            return Ok(Some(TaskBinding::Dbus(DbusCall {
                destination,
                path,
                interface: interface.to_string(),
                method: method.to_string(),
                signature,
                args,
            })));
        }
        if el.attr_ns(Ns::Camunda, "type") == Some("external") {
            let topic = el
                .attr_ns(Ns::Camunda, "topic")
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    model_err(
                        format!("{what}: camunda:type=\"external\" without a camunda:topic"),
                        line,
                    )
                })?;
            return Ok(Some(TaskBinding::External {
                topic: topic.to_string(),
            }));
        }
        if let Some(def) = el
            .extensions()
            .find(|e| e.ns == Ns::Zeebe && e.name == "taskDefinition")
        {
            let topic = def.attr("type").filter(|t| !t.is_empty()).ok_or_else(|| {
                model_err(format!("{what}: zeebe:taskDefinition without a type"), line)
            })?;
            return Ok(Some(TaskBinding::External {
                topic: topic.trim_start_matches('=').to_string(),
            }));
        }
        Ok(None)
    }

    fn timer(&self, def: &El, what: &str) -> Result<TimerDef, ModelError> {
        let (kind, el) = [TimerKind::Duration, TimerKind::Date, TimerKind::Cycle]
            .into_iter()
            .find_map(|k| def.bpmn_child(k.element()).map(|e| (k, e)))
            .ok_or_else(|| {
                model_err(
                    format!("{what}: the timer has no timeDuration, timeDate or timeCycle"),
                    Some(def.line),
                )
            })?;
        let text = el.text.trim().to_string();
        let is_expr = text.starts_with("${") || text.starts_with('=') || text.starts_with("#{");
        if is_expr {
            let expr = parse_expr(&text, what, el.line)?;
            return Ok(TimerDef {
                kind,
                text,
                literal: None,
                expr: Some(expr),
            });
        }
        let schedule = timer::parse(kind, &text)
            .map_err(|e| model_err(format!("{what}: {e}"), Some(el.line)))?;
        Ok(TimerDef {
            kind,
            text,
            literal: Some(schedule),
            expr: None,
        })
    }

    fn message(&self, def: &El, node: &El, what: &str) -> Result<MessageRef, ModelError> {
        let m = def.attr("messageRef").ok_or_else(|| {
            model_err(
                format!("{what}: the message event has no messageRef"),
                Some(def.line),
            )
        })?;
        self.message_named(m, node, what)
    }

    fn message_named(&self, id: &str, node: &El, what: &str) -> Result<MessageRef, ModelError> {
        let (name, zeebe_key) = self.globals.messages.get(id).ok_or_else(|| {
            model_err(
                format!("{what}: messageRef `{id}` names no bpmn:message"),
                Some(node.line),
            )
        })?;
        let key = match node.attr_ns(Ns::Quantumos, "correlationKey") {
            Some(k) => Some(parse_expr(
                k,
                &format!("{what} correlation key"),
                node.line,
            )?),
            None => zeebe_key.clone(),
        };
        Ok(MessageRef {
            name: name.clone(),
            key,
        })
    }

    fn error_code(&self, def: &El, what: &str) -> Result<Option<String>, ModelError> {
        match def.attr("errorRef") {
            None => Ok(None),
            Some(r) => self
                .globals
                .errors
                .get(r)
                .cloned()
                .map(Some)
                .ok_or_else(|| {
                    model_err(
                        format!("{what}: errorRef `{r}` names no bpmn:error"),
                        Some(def.line),
                    )
                }),
        }
    }

    fn mappings(&self, el: &El, what: &str) -> Result<(Vec<Mapping>, Vec<Mapping>), ModelError> {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for ext in el.extensions() {
            match (ext.ns, ext.name.as_str()) {
                (Ns::Camunda, "inputOutput") => {
                    for p in &ext.children {
                        if p.ns != Ns::Camunda {
                            continue;
                        }
                        let target = p.attr("name").unwrap_or("").to_string();
                        if p.children.iter().any(|c| c.ns == Ns::Camunda) {
                            return Err(model_err(
                                format!(
                                    "{what}: camunda:{} `{target}` uses a list, map or script; \
                                     only expressions are supported",
                                    p.name
                                ),
                                Some(p.line),
                            ));
                        }
                        let text = p.text.trim();
                        // Camunda treats text without `${…}` as a string constant.
                        let source = if text.starts_with("${") || text.starts_with("#{") {
                            parse_expr(text, &format!("{what} {target}"), p.line)?
                        } else {
                            Expr::parse(&serde_json::Value::from(text).to_string()).map_err(
                                |e| model_err(format!("{what} {target}: {e}"), Some(p.line)),
                            )?
                        };
                        let m = Mapping { target, source };
                        match p.name.as_str() {
                            "inputParameter" => inputs.push(m),
                            "outputParameter" => outputs.push(m),
                            _ => {}
                        }
                    }
                }
                (Ns::Zeebe, "ioMapping") => {
                    for p in &ext.children {
                        let (Some(source), Some(target)) = (p.attr("source"), p.attr("target"))
                        else {
                            continue;
                        };
                        let m = Mapping {
                            target: target.to_string(),
                            source: parse_expr(source, &format!("{what} {target}"), p.line)?,
                        };
                        match p.name.as_str() {
                            "input" => inputs.push(m),
                            "output" => outputs.push(m),
                            _ => {}
                        }
                    }
                }
                // Call activities: camunda:in/out with source/sourceExpression → target.
                // `variables="all"` is what the engine does anyway.
                (Ns::Camunda, "in" | "out") => {
                    let Some(target) = ext.attr("target") else {
                        continue;
                    };
                    let source = match (ext.attr("source"), ext.attr("sourceExpression")) {
                        (Some(s), _) => parse_expr(s, &format!("{what} {target}"), ext.line)?,
                        (None, Some(e)) => parse_expr(e, &format!("{what} {target}"), ext.line)?,
                        _ => continue,
                    };
                    let m = Mapping {
                        target: target.to_string(),
                        source,
                    };
                    if ext.name == "in" {
                        inputs.push(m);
                    } else {
                        outputs.push(m);
                    }
                }
                _ => {}
            }
        }
        for m in inputs.iter().chain(&outputs) {
            if m.target.is_empty() {
                return Err(model_err(
                    format!("{what}: a mapping without a target name"),
                    Some(el.line),
                ));
            }
        }
        Ok((inputs, outputs))
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn resolve(&mut self) -> Result<(), ModelError> {
        let mut ids = HashSet::new();
        for n in &self.nodes {
            if !ids.insert(n.id.as_str()) {
                return Err(model_err(
                    format!("two elements with the id `{}`", n.id),
                    None,
                ));
            }
        }
        let flow_refs = std::mem::take(&mut self.flow_refs);
        for (i, (id, source, target, line)) in flow_refs.into_iter().enumerate() {
            let s = self.find(&source).ok_or_else(|| {
                model_err(
                    format!("sequence flow `{id}`: sourceRef `{source}` is not a flow node of the process"),
                    Some(line),
                )
            })?;
            let t = self.find(&target).ok_or_else(|| {
                model_err(
                    format!("sequence flow `{id}`: targetRef `{target}` is not a flow node of the process"),
                    Some(line),
                )
            })?;
            if self.nodes[s].scope != self.nodes[t].scope {
                return Err(model_err(
                    format!(
                        "sequence flow `{id}` crosses a sub-process boundary ({source} → {target})"
                    ),
                    Some(line),
                ));
            }
            self.flows[i].source = s;
            self.flows[i].target = t;
            self.nodes[s].outgoing.push(i);
            self.nodes[t].incoming.push(i);
        }
        for (node, flow_id) in std::mem::take(&mut self.defaults) {
            let f = self
                .flows
                .iter()
                .position(|f| f.id == flow_id && f.source == node)
                .ok_or_else(|| {
                    model_err(
                        format!(
                            "{}: default flow `{flow_id}` is not one of its outgoing flows",
                            self.nodes[node].describe()
                        ),
                        None,
                    )
                })?;
            self.nodes[node].default_flow = Some(f);
        }
        for (boundary, target, line) in std::mem::take(&mut self.attachments) {
            let what = self.nodes[boundary].describe();
            let a = self.find(&target).ok_or_else(|| {
                model_err(
                    format!("{what}: attachedToRef `{target}` names no activity"),
                    Some(line),
                )
            })?;
            if !self.nodes[a].is_activity() || self.nodes[a].scope != self.nodes[boundary].scope {
                return Err(model_err(
                    format!(
                        "{what} is attached to {}, which is not an activity beside it",
                        self.nodes[a].describe()
                    ),
                    Some(line),
                ));
            }
            self.nodes[boundary].attached_to = Some(a);
            self.nodes[a].boundaries.push(boundary);
        }
        for (node, target, line) in std::mem::take(&mut self.compensate_refs) {
            let a = self.find(&target).ok_or_else(|| {
                model_err(
                    format!(
                        "{}: activityRef `{target}` names no activity",
                        self.nodes[node].describe()
                    ),
                    Some(line),
                )
            })?;
            match &mut self.nodes[node].kind {
                NodeKind::EndCompensate { activity } | NodeKind::ThrowCompensate { activity } => {
                    *activity = Some(a)
                }
                _ => {}
            }
        }
        for (source, target) in std::mem::take(&mut self.associations) {
            let (Some(s), Some(t)) = (self.find(&source), self.find(&target)) else {
                continue;
            };
            if let NodeKind::BoundaryCompensate { handler } = &mut self.nodes[s].kind {
                *handler = Some(t);
            }
        }
        for (sub, start) in std::mem::take(&mut self.sub_starts) {
            if let (NodeKind::SubProcess { start: s }, Some(st)) =
                (&mut self.nodes[sub].kind, start)
            {
                *s = st;
            }
        }
        Ok(())
    }
}

/// Checks that the graph can run: flows where they must be, handlers where they are needed,
/// no loop a token could run around forever without waiting.
fn validate(p: &Process, line: usize) -> Result<(), ModelError> {
    let mut none_starts = p
        .nodes
        .iter()
        .filter(|n| n.scope.is_none() && n.kind == NodeKind::StartNone);
    if none_starts.nth(1).is_some() {
        return Err(model_err(
            format!("process `{}` has more than one none start event", p.key),
            Some(line),
        ));
    }
    if p.start.is_none() && p.event_starts.is_empty() {
        return Err(model_err(
            format!("process `{}` has no start event", p.key),
            Some(line),
        ));
    }
    for n in &p.nodes {
        let what = n.describe();
        match &n.kind {
            NodeKind::EndNone
            | NodeKind::EndError { .. }
            | NodeKind::EndTerminate
            | NodeKind::EndCompensate { .. }
                if !n.outgoing.is_empty() =>
            {
                return Err(model_err(
                    format!("{what}: an end event cannot have outgoing flows"),
                    None,
                ));
            }
            NodeKind::StartNone | NodeKind::StartTimer(_) | NodeKind::StartMessage(_)
                if !n.incoming.is_empty() =>
            {
                return Err(model_err(
                    format!("{what}: a start event cannot have incoming flows"),
                    None,
                ));
            }
            NodeKind::BoundaryCompensate { handler } => {
                let h = handler.ok_or_else(|| {
                    model_err(
                        format!("{what}: no compensation handler is associated with it (bpmn:association to an activity with isForCompensation=\"true\")"),
                        None,
                    )
                })?;
                if !p.nodes[h].for_compensation || !p.nodes[h].is_activity() {
                    return Err(model_err(
                        format!(
                            "{what}: its handler {} must be an activity with isForCompensation=\"true\"",
                            p.nodes[h].describe()
                        ),
                        None,
                    ));
                }
            }
            NodeKind::BoundaryError { .. } | NodeKind::BoundaryTimer { .. }
                if n.outgoing.is_empty() =>
            {
                return Err(model_err(format!("{what} has no outgoing flow"), None));
            }
            NodeKind::EventBased => {
                for &f in &n.outgoing {
                    let t = &p.nodes[p.flows[f].target];
                    if !matches!(
                        t.kind,
                        NodeKind::CatchTimer(_)
                            | NodeKind::CatchMessage(_)
                            | NodeKind::ReceiveTask(_)
                    ) {
                        return Err(model_err(
                            format!(
                                "{what}: it may only lead to timer or message catch events and receive tasks, not {}",
                                t.describe()
                            ),
                            None,
                        ));
                    }
                }
                if n.outgoing.len() < 2 {
                    return Err(model_err(
                        format!("{what} needs at least two outgoing flows"),
                        None,
                    ));
                }
            }
            _ => {}
        }
        if n.for_compensation && (!n.incoming.is_empty() || !n.outgoing.is_empty()) {
            return Err(model_err(
                format!("{what}: a compensation handler cannot have sequence flows"),
                None,
            ));
        }
        if n.for_compensation
            && !p.nodes.iter().any(|b| matches!(b.kind, NodeKind::BoundaryCompensate { handler: Some(h) } if p.nodes.get(h).is_some_and(|h| h.id == n.id)))
        {
            return Err(model_err(
                format!("{what} is a compensation handler that no compensation boundary event is associated with"),
                None,
            ));
        }
    }
    if let Some(cycle) = find_busy_cycle(p) {
        let names: Vec<&str> = cycle.iter().map(|&i| p.nodes[i].id.as_str()).collect();
        return Err(model_err(
            format!(
                "a cycle with no wait state would loop forever: {} → {}; put a task, a timer \
                 or a message event on it",
                names.join(" → "),
                names.first().copied().unwrap_or("")
            ),
            None,
        ));
    }
    Ok(())
}

/// A cycle of sequence flows on which no node waits (only gateways and pass-through events,
/// sub-processes without a wait state inside): a token entering it would loop forever.
fn find_busy_cycle(p: &Process) -> Option<Vec<usize>> {
    let busy: Vec<bool> = p
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match n.kind {
            NodeKind::SubProcess { .. } => !p
                .nodes
                .iter()
                .enumerate()
                .any(|(j, m)| m.is_wait_state() && inside(p, j, i)),
            _ => !n.is_wait_state(),
        })
        .collect();
    // Iterative DFS over busy nodes only, looking for a back edge.
    let n = p.nodes.len();
    let mut color = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    for root in 0..n {
        if !busy[root] || color[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let outs = &p.nodes[node].outgoing;
            if *next < outs.len() {
                let t = p.flows[outs[*next]].target;
                *next += 1;
                if !busy[t] {
                    continue;
                }
                if color[t] == 1 {
                    let mut cycle: Vec<usize> = stack.iter().map(|&(v, _)| v).collect();
                    let from = cycle.iter().position(|&v| v == t).unwrap_or(0);
                    cycle.drain(..from);
                    return Some(cycle);
                }
                if color[t] == 0 {
                    color[t] = 1;
                    stack.push((t, 0));
                }
            } else {
                color[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

/// Whether node `j` is (at any depth) inside sub-process `sub`.
pub fn inside(p: &Process, j: usize, sub: usize) -> bool {
    let mut scope = p.nodes[j].scope;
    while let Some(s) = scope {
        if s == sub {
            return true;
        }
        scope = p.nodes[s].scope;
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wrap(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:camunda="{CAMUNDA_NS}" xmlns:quantumos="{QUANTUMOS_NS}" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:error id="Err" name="Boom" errorCode="BOOM" />
  <bpmn:process id="p" isExecutable="true">
{body}
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1"><bpmndi:BPMNPlane id="pl" bpmnElement="p"/></bpmndi:BPMNDiagram>
</bpmn:definitions>"#
        )
    }

    #[test]
    fn parses_a_simple_process() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
            <bpmn:serviceTask id="t" name="Work" camunda:type="external" camunda:topic="work" />
            <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" /><bpmn:endEvent id="e" />"#,
        );
        let p = parse(&xml).unwrap().remove(0);
        assert_eq!(p.key, "p");
        assert_eq!(p.nodes.len(), 3);
        let t = &p.nodes[p.node_index("t").unwrap()];
        assert_eq!(
            t.kind,
            NodeKind::ServiceTask(TaskBinding::External {
                topic: "work".into()
            })
        );
        assert_eq!(p.nodes[p.start.unwrap()].outgoing, vec![0]);
    }

    #[test]
    fn unsupported_elements_are_named() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s" /><bpmn:scriptTask id="Script_1" name="Run it" scriptFormat="groovy" />"#,
        );
        let e = parse(&xml).unwrap_err().to_string();
        assert!(
            e.contains("bpmn:scriptTask `Script_1` (\"Run it\") is not supported"),
            "{e}"
        );
        assert!(e.starts_with("line 5"), "{e}");
        let xml = wrap(
            r#"<bpmn:startEvent id="s"><bpmn:signalEventDefinition id="x" /></bpmn:startEvent>"#,
        );
        let e = parse(&xml).unwrap_err().to_string();
        assert!(
            e.contains("`s`") && e.contains("signalEventDefinition"),
            "{e}"
        );
        let xml = wrap(
            r#"<bpmn:startEvent id="s" /><bpmn:serviceTask id="j" camunda:class="org.Foo" />"#,
        );
        assert!(
            parse(&xml)
                .unwrap_err()
                .to_string()
                .contains("camunda:class")
        );
    }

    #[test]
    fn bad_conditions_and_busy_cycles_fail() {
        let xml = wrap(
            r#"<bpmn:startEvent id="s" /><bpmn:exclusiveGateway id="g" /><bpmn:endEvent id="e" />
            <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g" />
            <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="e"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">${x &gt;}</bpmn:conditionExpression></bpmn:sequenceFlow>"#,
        );
        let e = parse(&xml).unwrap_err().to_string();
        assert!(e.contains("`f2`") && e.contains("does not parse"), "{e}");
        let xml = wrap(
            r#"<bpmn:startEvent id="s" /><bpmn:exclusiveGateway id="g1" /><bpmn:exclusiveGateway id="g2" />
            <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g1" />
            <bpmn:sequenceFlow id="f2" sourceRef="g1" targetRef="g2" />
            <bpmn:sequenceFlow id="f3" sourceRef="g2" targetRef="g1" />"#,
        );
        let e = parse(&xml).unwrap_err().to_string();
        assert!(
            e.contains("cycle with no wait state") && e.contains("g1 → g2 → g1"),
            "{e}"
        );
    }

    #[test]
    fn malformed_xml_and_doctype() {
        assert!(
            parse("<bpmn:definitions")
                .unwrap_err()
                .to_string()
                .contains("XML")
        );
        let e = parse("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x/>").unwrap_err();
        assert!(e.to_string().contains("DOCTYPE"), "{e}");
        let e = parse("<definitions/>").unwrap_err();
        assert!(e.to_string().contains("not a BPMN 2.0 file"), "{e}");
    }
}
