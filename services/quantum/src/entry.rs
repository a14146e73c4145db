//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::{QuantumInterface, emit_updates};
use crate::{Config, Quantum};
use clap::Parser;
use steppps::api::QUANTUM;
use steppps::daemon::DaemonArgs;

/// quantumd: QuantumOS's quantum backend on D-Bus (org.quantumos.Quantum1; see qos-ctl job,
/// device, circuit).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&QUANTUM, args.daemon, |daemon, config| async move {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let state_dir = steppps::config::state_directory(QUANTUM.name);
        let quantum = Arc::new(Quantum::open(&state_dir, &config, move |e| {
            let _ = tx.send(e.clone());
        })?);
        daemon.serve(QuantumInterface::new(quantum.clone())).await?;
        tokio::spawn(emit_updates(daemon.connection().clone(), rx));
        daemon.start(quantum).await?;
        daemon.run_until_stopped().await
    })
}
