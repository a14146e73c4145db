//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use crate::bus::{EventInterface, publish_captured, send_alert};
use crate::chain::{Entry, now_usec};
use crate::{Config, EventLog, Pending, actions, sources};
use clap::Parser;
use steppps::api::EVENT;
use steppps::daemon::DaemonArgs;

// The system allocator (glibc), on purpose: mimalloc made capture ~1.5× cheaper in CPU
// (events are allocated by a source and freed on other threads), but in the booted image the
// daemon then kept ~12 MiB of anonymous memory after boot against ~1 MiB for every other
// daemon (docs/benchmarks.md, event section). At the rates a machine produces, memory is
// what a user notices.
/// The QuantumOS event dimension: captures system events into a tamper-evident audit chain,
/// matches correlation rules and heals (org.quantumos.Event1; see qos-ctl event).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&EVENT, args.daemon, |daemon, config| async move {
        let state_dir = steppps::config::state_directory(EVENT.name);
        let sources_config = config.sources.clone();
        let (log, channels) = EventLog::open(config, &state_dir)?;
        let writer = {
            let log = log.clone();
            let (queue, committed, actions) =
                (channels.queue, channels.committed_tx, channels.actions_tx);
            std::thread::Builder::new()
                .name("chain-writer".into())
                .spawn(move || log.run_writer(queue, committed, actions))?
        };
        let connection = daemon.connection().clone();
        daemon.serve(EventInterface::new(log.clone())).await?;
        daemon.start(log.clone()).await?;

        // What opening the chain found goes on the record.
        let report = log.open_report().clone();
        let mut fields = vec![
            ("next_seq".to_string(), report.next_seq.to_string()),
            ("resealed".to_string(), report.resealed.to_string()),
        ];
        if let Some(t) = &report.torn_tail {
            fields.push((
                "torn_tail".into(),
                format!(
                    "{} bytes cut at byte {} of {}: {}",
                    t.bytes_cut,
                    t.offset,
                    t.segment.display(),
                    t.reason
                ),
            ));
        }
        for (i, q) in report.quarantined.iter().enumerate() {
            fields.push((
                format!("quarantined_{i}"),
                format!("{} ({})", q.moved_to.display(), q.reason),
            ));
        }
        let severity = if report.torn_tail.is_some() || !report.quarantined.is_empty() {
            4
        } else {
            6
        };
        log.offer(Pending::new(Entry {
            time_usec: now_usec(),
            severity,
            source: "chain".into(),
            kind: "chain.opened".into(),
            fields,
        }));

        tokio::spawn(publish_captured(
            connection.clone(),
            log.clone(),
            channels.committed,
        ));
        // Opening looked at the last segment only; verify the whole chain in the background
        // and put the result on the record (and in the daemon's state when it fails).
        {
            let log = log.clone();
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let checked = log.clone();
                let result = tokio::task::spawn_blocking(move || checked.verify()).await;
                let (kind, severity, fields) = match result {
                    Ok(Ok(v)) if v.ok => (
                        "chain.verified",
                        6,
                        vec![("records".to_string(), v.records.to_string())],
                    ),
                    Ok(Ok(v)) => {
                        tracing::error!("the audit chain does not verify: {}", v.message);
                        let _ = daemon
                            .set_state(steppps::api::dimension::DaemonState::Degraded)
                            .await;
                        (
                            "chain.verify-failed",
                            2,
                            vec![
                                ("problem".to_string(), v.problem.clone()),
                                ("message".to_string(), v.message.clone()),
                            ],
                        )
                    }
                    Ok(Err(e)) => ("chain.verify-failed", 2, vec![("message".to_string(), e)]),
                    Err(e) => (
                        "chain.verify-failed",
                        2,
                        vec![("message".to_string(), e.to_string())],
                    ),
                };
                log.offer(Pending::new(Entry {
                    time_usec: now_usec(),
                    severity,
                    source: "chain".into(),
                    kind: kind.into(),
                    fields,
                }));
            });
        }
        {
            let alert_connection = connection.clone();
            tokio::spawn(actions::execute(
                log.clone(),
                connection.clone(),
                channels.actions,
                move |request| {
                    let connection = alert_connection.clone();
                    async move {
                        send_alert(
                            &connection,
                            &request.rule,
                            &request.message,
                            request.trigger_seq,
                        )
                        .await;
                    }
                },
            ));
        }
        for (name, on) in [
            (sources::journal::SOURCE, sources_config.journal),
            (sources::units::SOURCE, sources_config.units),
            (sources::udev::SOURCE, sources_config.udev),
            (sources::dimensions::SOURCE, sources_config.bus),
            (sources::process::SOURCE, sources_config.process),
        ] {
            // Every configured source is listed from the start; its task says when it is on.
            log.set_source_state(name, if on { "starting" } else { "off" });
        }
        log.set_source_state("emit", "on");
        if sources_config.journal {
            tokio::spawn(sources::journal::follow(log.clone(), state_dir.clone()));
        }
        if sources_config.units {
            tokio::spawn(sources::units::follow(log.clone(), connection.clone()));
        }
        if sources_config.udev {
            tokio::spawn(sources::udev::follow(log.clone()));
        }
        if sources_config.bus {
            tokio::spawn(sources::dimensions::follow(log.clone(), connection.clone()));
        }
        if sources_config.process {
            let log = log.clone();
            tokio::spawn(async move {
                let device = std::path::Path::new(steppps::process_events::DEVICE);
                sources::process::follow(log, device).await;
            });
        }

        daemon.run_until_stopped().await?;
        // Let queued events reach the chain without waiting for more, then save where the
        // journal was.
        log.commit_without_delay();
        tokio::time::sleep(Duration::from_millis(50)).await;
        log.shutdown();
        let mut last = None;
        sources::journal::save_cursor(&log, &state_dir, &mut last);
        drop(writer);
        Ok(())
    })
}
