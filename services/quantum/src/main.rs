use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use quantumd::bus::{QuantumInterface, emit_updates};
use quantumd::{Config, Quantum};
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

fn main() -> ExitCode {
    let args = Args::parse();
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
