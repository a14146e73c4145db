//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::bus::ManagerInterface;
use crate::{Config, Manager, monitor};
use clap::Parser;
use steppps::api::MANAGER;
use steppps::daemon::DaemonArgs;

/// The QuantumOS manager: tracks every STEPPPS dimension's presence and health and serves
/// org.quantumos.Manager1 (see qos-ctl status).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&MANAGER, args.daemon, |daemon, config| async move {
        config.validate()?;
        let manager = Manager::new(config);
        daemon.serve(ManagerInterface::new(manager.clone())).await?;
        daemon.start(manager.clone()).await?;
        let connection = daemon.connection().clone();
        tokio::select! {
            result = monitor::run(manager, connection) => result,
            result = daemon.clone().run_until_stopped() => result,
        }
    })
}
