//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::{TimeInterface, run_classes, run_timers};
use crate::{Config, Time};
use clap::Parser;
use steppps::api::TIME;
use steppps::daemon::DaemonArgs;
use tracing::warn;

/// The QuantumOS time dimension: calendar timers that call the dimensions, process classes as
/// cgroup weights, and the classical-or-quantum decision (org.quantumos.Time1; see qos-ctl time).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&TIME, args.daemon, |daemon, config| async move {
        let state_dir = steppps::config::state_directory(TIME.name);
        let (time, warning) = Time::open(&state_dir, &config)?;
        if let Some(w) = warning {
            warn!("{w}");
        }
        let time = Arc::new(time);
        daemon.serve(TimeInterface::new(time.clone())).await?;
        daemon.start(time.clone()).await?;
        let connection = daemon.connection().clone();
        tokio::spawn(run_timers(time.clone(), connection.clone()));
        tokio::spawn(run_classes(
            time,
            connection,
            std::time::Duration::from_secs_f64(config.scan_interval_sec),
            steppps::process_events::DEVICE.into(),
        ));
        daemon.run_until_stopped().await
    })
}
