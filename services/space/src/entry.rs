//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::{SpaceInterface, follow_hotplug};
use crate::inventory::Collector;
use crate::{Config, Space};
use clap::Parser;
use steppps::api::SPACE;
use steppps::daemon::DaemonArgs;

/// The QuantumOS space dimension: the machine's hardware and resource inventory on D-Bus
/// (org.quantumos.Space1; see qos-ctl space).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&SPACE, args.daemon, |daemon, config| async move {
        let space = Arc::new(Space::new(Collector::new()));
        daemon.serve(SpaceInterface::new(space.clone())).await?;
        daemon.start(space.clone()).await?;
        if config.hotplug {
            tokio::spawn(follow_hotplug(space, daemon.clone()));
        }
        daemon.run_until_stopped().await
    })
}
