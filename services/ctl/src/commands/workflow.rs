//! `qos-ctl workflow …`: BPMN definitions, instances, user tasks and incidents (the script
//! dimension).

use std::path::PathBuf;

use chrono::{Local, TimeZone};
use clap::Subcommand;
use serde_json::{Map, Value};
use steppps::api::SCRIPT;
use steppps::api::script::{InstanceInfo, Script1Proxy, TaskInfo};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table;

#[derive(Debug, Clone, Subcommand)]
pub enum WorkflowCommand {
    /// Deploy BPMN files (needs root or polkit authorization); unchanged ones keep their version
    Deploy {
        /// BPMN 2.0 XML files, each with one or more executable processes
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start an instance of a process (`KEY` or `KEY:VERSION`)
    Start {
        /// The process's key (its BPMN id), or `KEY:VERSION` for an older version
        process: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// List instances, or the deployed processes with --definitions
    List {
        /// List the deployed processes instead
        #[arg(long)]
        definitions: bool,
        /// Only instances of this process
        #[arg(long, value_name = "KEY")]
        process: Option<String>,
        /// Only instances in this state
        #[arg(long, value_parser = ["active", "completed", "terminated", "cancelled"])]
        state: Option<String>,
    },
    /// Show an instance: variables, where its tokens wait, and its history
    Show {
        /// The instance's id, as `qos-ctl workflow list` shows it
        id: u64,
    },
    /// Cancel a running instance (needs root or polkit authorization)
    Cancel {
        /// The instance's id
        id: u64,
    },
    /// Send a message to the instance waiting for it (or start a process it starts)
    Message {
        /// The message's name, as the BPMN file defines it
        name: String,
        /// Correlation key
        #[arg(long, default_value = "")]
        key: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// List open tasks (user tasks by default)
    Tasks {
        /// Which tasks: user tasks, external tasks, D-Bus calls, or all
        #[arg(long, default_value = "user", value_parser = ["user", "external", "dbus", "all"])]
        kind: String,
    },
    /// Complete a user task, setting variables
    Complete {
        /// The task's id, as `qos-ctl workflow tasks` shows it
        task: u64,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// List incidents (tasks out of retries, tokens that cannot go on)
    Incidents,
    /// Resolve an incident: retry its task, or run its element again
    Resolve {
        /// The incident's id, as `qos-ctl workflow incidents` shows it
        incident: u64,
        /// Tries the task gets
        #[arg(long, default_value_t = 1)]
        retries: i32,
    },
}

/// `qos-ctl workflow` alone lists the instances, as `workflow list` does.
impl Default for WorkflowCommand {
    fn default() -> Self {
        WorkflowCommand::List {
            definitions: false,
            process: None,
            state: None,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct VarArgs {
    /// A variable: NAME=VALUE (VALUE is JSON when it parses as JSON, a string otherwise)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    var: Vec<String>,
    /// Variables as one JSON object
    #[arg(long, value_name = "JSON")]
    vars: Option<String>,
}

impl VarArgs {
    fn to_json(&self) -> Result<String, Failure> {
        let mut map = match &self.vars {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "--vars must be a JSON object, like '{{\"name\": 1}}'"
                    )));
                }
            },
        };
        for v in &self.var {
            let (name, value) = v.split_once('=').ok_or_else(|| {
                Failure::Other(anyhow::anyhow!("--var `{v}`: expected NAME=VALUE"))
            })?;
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            map.insert(name.to_string(), value);
        }
        Ok(Value::Object(map).to_string())
    }
}

fn when(usec: u64) -> String {
    if usec == 0 {
        return "-".into();
    }
    let secs = i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX);
    Local
        .timestamp_opt(secs, 0)
        .single()
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn render_instances(list: &[InstanceInfo]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                format!("{} v{}", i.definition, i.version),
                i.state.clone(),
                when(i.started_usec),
                if i.incidents > 0 {
                    i.incidents.to_string()
                } else {
                    "-".into()
                },
                if i.positions.is_empty() {
                    "-".into()
                } else {
                    i.positions.join(" ")
                },
            ]
        })
        .collect();
    table::render(
        &["INSTANCE", "PROCESS", "STATE", "STARTED", "INCIDENTS", "AT"],
        &rows,
    )
}

fn render_tasks(tasks: &[TaskInfo]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.kind.clone(),
                table::or_dash(&t.topic),
                t.instance.to_string(),
                t.definition.clone(),
                if t.activity_name.is_empty() {
                    t.activity_id.clone()
                } else {
                    t.activity_name.clone()
                },
                t.retries.to_string(),
                table::or_dash(&t.error_message),
            ]
        })
        .collect();
    table::render(
        &[
            "TASK",
            "KIND",
            "TOPIC",
            "INSTANCE",
            "PROCESS",
            "ACTIVITY",
            "RETRIES",
            "LAST ERROR",
        ],
        &rows,
    )
}

pub async fn run(client: &Client, command: &WorkflowCommand, json: bool) -> Result<u8, Failure> {
    let script = client
        .call(&SCRIPT, Script1Proxy::new(&client.connection))
        .await?;
    match command {
        WorkflowCommand::Deploy { files } => {
            let mut deployed = Vec::new();
            for file in files {
                let xml = std::fs::read_to_string(file).map_err(|e| {
                    Failure::Other(anyhow::anyhow!("cannot read {}: {e}", file.display()))
                })?;
                super::refuse_nul(file, &xml)?;
                let (key, version) =
                    client
                        .call(&SCRIPT, script.deploy(&xml))
                        .await
                        .map_err(|f| match f {
                            Failure::Refused { name, message } => Failure::Refused {
                                name,
                                message: format!("{}: {message}", file.display()),
                            },
                            other => other,
                        })?;
                if !json {
                    println!("{}: {key} v{version}", file.display());
                }
                deployed.push(serde_json::json!({
                    "file": file, "process": key, "version": version
                }));
            }
            if json {
                print_json(&deployed)?;
            }
        }
        WorkflowCommand::Start { process, vars } => {
            let id = client
                .call(&SCRIPT, script.start_instance(process, &vars.to_json()?))
                .await?;
            if json {
                print_json(&serde_json::json!({ "instance": id }))?;
            } else {
                println!("started instance {id} of {process}");
            }
        }
        WorkflowCommand::List {
            definitions: true, ..
        } => {
            let defs = client.call(&SCRIPT, script.list_definitions()).await?;
            if json {
                print_json(&defs)?;
            } else {
                let rows: Vec<Vec<String>> = defs
                    .iter()
                    .map(|d| {
                        vec![
                            d.key.clone(),
                            d.version.to_string(),
                            d.active_instances.to_string(),
                            d.starts.clone(),
                            table::or_dash(&d.name),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["PROCESS", "VERSION", "ACTIVE", "STARTS", "NAME"], &rows)
                );
            }
        }
        WorkflowCommand::List { process, state, .. } => {
            let list = client
                .call(
                    &SCRIPT,
                    script.list_instances(
                        process.as_deref().unwrap_or(""),
                        state.as_deref().unwrap_or(""),
                    ),
                )
                .await?;
            if json {
                print_json(&list)?;
            } else {
                print!("{}", render_instances(&list));
            }
        }
        WorkflowCommand::Show { id } => {
            let d = client.call(&SCRIPT, script.get_instance(*id)).await?;
            let variables: Value = serde_json::from_str(&d.variables_json).unwrap_or(Value::Null);
            if json {
                print_json(&serde_json::json!({
                    "instance": d.info, "variables": variables,
                    "tokens": d.tokens, "history": d.history,
                }))?;
            } else {
                print!("{}", render_instances(std::slice::from_ref(&d.info)));
                println!("\nvariables:");
                println!(
                    "{}",
                    serde_json::to_string_pretty(&variables).unwrap_or_default()
                );
                if !d.tokens.is_empty() {
                    println!("\nwaiting:");
                    for t in &d.tokens {
                        println!(
                            "  {} ({}): {}",
                            t.activity_id, t.activity_name, t.waiting_for
                        );
                    }
                }
                println!("\nhistory:");
                let rows: Vec<Vec<String>> = d
                    .history
                    .iter()
                    .map(|h| {
                        vec![
                            when(h.time_usec),
                            h.event.clone(),
                            table::or_dash(&h.activity_id),
                            table::or_dash(&h.activity_name),
                            h.detail.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(&["TIME", "EVENT", "ELEMENT", "NAME", "DETAIL"], &rows)
                );
            }
        }
        WorkflowCommand::Cancel { id } => {
            client.call(&SCRIPT, script.cancel(*id)).await?;
            if json {
                print_json(&serde_json::json!({ "cancelled": id }))?;
            } else {
                println!("cancelled instance {id}");
            }
        }
        WorkflowCommand::Message { name, key, vars } => {
            let id = client
                .call(
                    &SCRIPT,
                    script.correlate_message(name, key, &vars.to_json()?),
                )
                .await?;
            if json {
                print_json(&serde_json::json!({ "instance": id }))?;
            } else {
                println!("message {name} delivered to instance {id}");
            }
        }
        WorkflowCommand::Tasks { kind } => {
            let kind = if kind == "all" { "" } else { kind.as_str() };
            let tasks = client.call(&SCRIPT, script.list_tasks(kind)).await?;
            if json {
                print_json(&tasks)?;
            } else {
                print!("{}", render_tasks(&tasks));
            }
        }
        WorkflowCommand::Complete { task, vars } => {
            client
                .call(&SCRIPT, script.complete(*task, &vars.to_json()?))
                .await?;
            if json {
                print_json(&serde_json::json!({ "completed": task }))?;
            } else {
                println!("completed task {task}");
            }
        }
        WorkflowCommand::Incidents => {
            let incidents = client.call(&SCRIPT, script.list_incidents()).await?;
            if json {
                print_json(&incidents)?;
            } else {
                let rows: Vec<Vec<String>> = incidents
                    .iter()
                    .map(|i| {
                        vec![
                            i.id.to_string(),
                            i.instance.to_string(),
                            i.definition.clone(),
                            i.activity_id.clone(),
                            when(i.created_usec),
                            i.message.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &[
                            "INCIDENT", "INSTANCE", "PROCESS", "ELEMENT", "SINCE", "MESSAGE"
                        ],
                        &rows
                    )
                );
            }
        }
        WorkflowCommand::Resolve { incident, retries } => {
            client
                .call(&SCRIPT, script.resolve_incident(*incident, *retries))
                .await?;
            if json {
                print_json(&serde_json::json!({ "resolved": incident }))?;
            } else {
                println!("resolved incident {incident}");
            }
        }
    }
    Ok(0)
}
