use std::process::ExitCode;

use clap::Parser;
use steppps::api::MANAGER;
use steppps::daemon::DaemonArgs;
use steppps_mgr::bus::ManagerInterface;
use steppps_mgr::{Config, Manager, monitor};

/// The QuantumOS manager: tracks every STEPPPS dimension's presence and health and serves
/// org.quantumos.Manager1 (see qos-ctl status).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
