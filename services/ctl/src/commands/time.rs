//! `qos-ctl time …`: timers, process classes and the classical-or-quantum decision.

use chrono::{Local, TimeZone};
use clap::Subcommand;
use steppps::api::TIME;
use steppps::api::time::{QuantumDecision, Time1Proxy, TimerInfo};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table::{self, bytes};

/// `qos-ctl time` alone lists the timers.
#[derive(Debug, Clone, Default, Subcommand)]
pub enum TimeCommand {
    /// List timers with their next and last elapse
    #[default]
    Timers,
    /// Add a timer (needs root or polkit authorization)
    ///
    /// SPEC is a systemd calendar event (`Mon..Fri 9:00`, `daily`, `*:0/15`), `every SPAN`
    /// (`every 10min`) or a time span for a one-shot timer (`5min`, `in 1h`).
    /// ACTION is `call <dimension|manager> <org.quantumos.Interface1.Method> [ARG…]` or
    /// `workflow <process>`.
    Add {
        /// The timer's name: 1–64 letters, digits, `-`, `_`, `.` or `@`
        name: String,
        /// When it fires: a calendar event, `every SPAN` or a time span (see above)
        spec: String,
        /// What it does: `call …` or `workflow …` (see above)
        #[arg(num_args = 1.., required = true, trailing_var_arg = true)]
        action: Vec<String>,
    },
    /// Remove a timer (needs root or polkit authorization)
    Remove {
        /// The timer's name, as `qos-ctl time timers` lists it
        name: String,
    },
    /// Show the process classes: weights, members and usage
    Classes,
    /// Put a process or a unit into a process class (needs root or polkit authorization)
    Classify {
        /// A process id or a unit name
        target: String,
        /// The class to put it in
        #[arg(value_parser = ["classical", "quantum", "hybrid", "framework"])]
        class: String,
    },
    /// Ask whether a problem should run on a quantum device (CQEA)
    Decide {
        /// The kind of problem
        #[arg(value_parser = ["search", "optimization", "simulation"])]
        problem: String,
        /// Bits (search), variables (optimization) or qubits (simulation)
        size: u32,
        /// Seconds you can wait
        #[arg(long, default_value_t = 60.0)]
        budget: f64,
    },
}

fn when(usec: u64) -> String {
    if usec == 0 {
        return "-".into();
    }
    let secs = i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX);
    Local.timestamp_opt(secs, 0).single().map_or_else(
        || "-".into(),
        |t| t.format("%a %Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn render_timers(timers: &[TimerInfo]) -> String {
    let rows: Vec<Vec<String>> = timers
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                when(t.next_elapse_usec),
                when(t.last_fired_usec),
                table::or_dash(&t.last_result),
                t.normalized.clone(),
                t.action.clone(),
            ]
        })
        .collect();
    table::render(
        &["TIMER", "NEXT", "LAST", "RESULT", "SCHEDULE", "ACTION"],
        &rows,
    )
}

fn render_decision(d: &QuantumDecision) -> String {
    format!(
        "{}\n{}\n",
        if d.use_quantum {
            "quantum"
        } else {
            "classical"
        },
        d.reason
    )
}

pub async fn run(client: &Client, command: &TimeCommand, json: bool) -> Result<u8, Failure> {
    let time = client
        .call(&TIME, Time1Proxy::new(&client.connection))
        .await?;
    match command {
        TimeCommand::Timers => {
            let timers = client.call(&TIME, time.list_timers()).await?;
            if json {
                print_json(&timers)?
            } else {
                print!("{}", render_timers(&timers))
            }
        }
        TimeCommand::Add { name, spec, action } => {
            let info = client
                .call(&TIME, time.add_timer(name, spec, &action.join(" ")))
                .await?;
            if json {
                print_json(&info)?
            } else {
                print!("{}", render_timers(std::slice::from_ref(&info)))
            }
        }
        TimeCommand::Remove { name } => {
            client.call(&TIME, time.remove_timer(name)).await?;
            if json {
                print_json(&serde_json::json!({ "removed": name }))?
            } else {
                println!("removed {name}")
            }
        }
        TimeCommand::Classes => {
            let classes = client.call(&TIME, time.list_classes()).await?;
            if json {
                print_json(&classes)?;
            } else {
                let rows: Vec<Vec<String>> = classes
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.cpu_weight.to_string(),
                            c.io_weight.to_string(),
                            bytes(c.memory_low),
                            c.pids.len().to_string(),
                            format!("{:.1} s", c.cpu_usage_usec as f64 / 1e6),
                            bytes(c.memory_bytes),
                            if c.members.is_empty() {
                                "-".into()
                            } else {
                                c.members.join(" ")
                            },
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &[
                            "CLASS", "CPU", "IO", "MEMLOW", "PROCS", "CPU TIME", "MEMORY",
                            "MEMBERS"
                        ],
                        &rows
                    )
                );
            }
        }
        TimeCommand::Classify { target, class } => {
            match target.parse::<u32>() {
                Ok(pid) => {
                    client
                        .call(&TIME, time.classify_process(pid, class))
                        .await?
                }
                Err(_) => {
                    client
                        .call(&TIME, time.classify_unit(target, class))
                        .await?
                }
            }
            if json {
                print_json(&serde_json::json!({ "classified": target, "class": class }))?;
            } else {
                println!("{target} → {class}");
            }
        }
        TimeCommand::Decide {
            problem,
            size,
            budget,
        } => {
            let d = client
                .call(&TIME, time.should_use_quantum(problem, *size, *budget))
                .await?;
            if json {
                print_json(&d)?
            } else {
                print!("{}", render_decision(&d))
            }
        }
    }
    Ok(0)
}
