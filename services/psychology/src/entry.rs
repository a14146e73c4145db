//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::PsychologyInterface;
use crate::{Config, Psychology};
use anyhow::Context as _;
use clap::Parser;
use steppps::api::PSYCHOLOGY;
use steppps::daemon::DaemonArgs;

/// The QuantumOS psychology dimension: learns each user's commands and predicts the next one
/// (org.quantumos.Psychology1; see qos-ctl psychology).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&PSYCHOLOGY, args.daemon, |daemon, config| async move {
        let dir = steppps::config::state_directory(PSYCHOLOGY.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let database = dir.join("history.sqlite");
        let psychology = Arc::new(Psychology::open(&database, config)?);
        daemon
            .serve(PsychologyInterface::new(psychology.clone()))
            .await?;
        daemon.start(psychology).await?;
        daemon.run_until_stopped().await
    })
}
