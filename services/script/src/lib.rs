//! A BPMN 2.0 workflow engine: processes drawn in any BPMN modeler run as tokens over a
//! graph, with every step persisted (SQLite), external tasks à la Camunda, timers, messages,
//! error and compensation events, and a small safe expression language.
//!
//! The library has no daemon types: [`model`] parses BPMN XML, [`expr`] is the expression
//! language, [`timer`] the ISO 8601 timers, [`engine`] runs instances and [`store`] keeps
//! them. `steppps-scriptd` puts it on the bus ([`bus`]) and calls the other dimensions.
//!
//! ```
//! use steppps_script::engine::{Engine, EngineConfig};
//! let xml = r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
//!     xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="x">
//!   <bpmn:process id="hello" isExecutable="true">
//!     <bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t" />
//!     <bpmn:serviceTask id="t" camunda:type="external" camunda:topic="greet" />
//!     <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e" /><bpmn:endEvent id="e" />
//!   </bpmn:process></bpmn:definitions>"#;
//! let mut engine = Engine::in_memory(EngineConfig::default());
//! engine.deploy(xml, 0).unwrap();
//! let id = engine.start_instance("hello", Default::default(), 0).unwrap();
//! let tasks = engine.fetch_and_lock("worker-1", &["greet".into()], 10, 60_000, 0).unwrap();
//! engine.complete(tasks[0].id, Default::default(), 1).unwrap();
//! assert_eq!(engine.get_instance(id).unwrap().info.state, "completed");
//! ```

pub mod bus;
pub mod engine;
mod entry;
pub mod expr;
pub mod model;
pub mod service;
pub mod store;
pub mod timer;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
