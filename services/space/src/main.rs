use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use steppps::api::SPACE;
use steppps::daemon::DaemonArgs;
use steppps_space::bus::{SpaceInterface, follow_hotplug};
use steppps_space::inventory::Collector;
use steppps_space::{Config, Space};

/// The QuantumOS space dimension: the machine's hardware and resource inventory on D-Bus
/// (org.quantumos.Space1; see qos-ctl space).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
