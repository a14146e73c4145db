//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::{ScriptInterface, run_engine, start_root_when_callable};
use crate::service::{Config, Script};
use clap::Parser;
use steppps::api::SCRIPT;
use steppps::daemon::DaemonArgs;
use tracing::warn;

/// How long the root orchestrator waits at start for the daemons it calls (they start with
/// this one at boot; under emulation that can take tens of seconds).
const ROOT_PATIENCE: Duration = Duration::from_secs(120);

/// The QuantumOS script dimension: a BPMN 2.0 workflow engine whose service tasks call the
/// STEPPPS daemons over D-Bus and whose external tasks are fetched by workers
/// (org.quantumos.Script1; see qos-ctl workflow).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&SCRIPT, args.daemon, |daemon, config| async move {
        let state_dir = steppps::config::state_directory(SCRIPT.name);
        let script = Arc::new(Script::open(&state_dir, config)?);
        steppps::notify::status("deploying workflows");
        for problem in script.deploy_workflow_dirs() {
            warn!("not deployed: {problem}");
        }
        daemon.serve(ScriptInterface::new(script.clone())).await?;
        daemon.start(script.clone()).await?;
        // The root orchestrator asks the manager about every dimension, this one included:
        // it starts once this daemon's name and those it calls are owned.
        tokio::spawn(start_root_when_callable(
            script.clone(),
            daemon.connection().clone(),
            ROOT_PATIENCE,
        ));
        tokio::spawn(run_engine(script.clone(), daemon.connection().clone()));
        daemon.run_until_stopped().await
    })
}
