use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use steppps::api::PSYCHOLOGY;
use steppps::daemon::DaemonArgs;
use steppps_psychology::bus::PsychologyInterface;
use steppps_psychology::{Config, Psychology};

/// The QuantumOS psychology dimension: learns each user's commands and predicts the next one
/// (org.quantumos.Psychology1; see qos-ctl psychology).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
