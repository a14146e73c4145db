//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::PromptInterface;
use crate::{Config, Prompt};
use clap::Parser;
use steppps::api::PROMPT;
use steppps::daemon::DaemonArgs;
use tracing::info;

/// The QuantumOS prompt dimension: natural language to shell commands with a local embedding
/// model and a command catalog (org.quantumos.Prompt1; see qos-ctl prompt).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    steppps::daemon::run::<Config, _, _>(&PROMPT, args.daemon, |daemon, config| async move {
        // The model loads on the first request and is dropped after `idle_unload_sec`
        // without one, so an unused shell assistant costs a few MiB, not a hundred.
        let prompt = Arc::new(Prompt::new(&config));
        daemon
            .serve(PromptInterface::new(prompt.clone(), config.log_requests))
            .await?;
        daemon.start(prompt.clone()).await?;
        if !prompt.idle_interval().is_zero() {
            let p = prompt.clone();
            tokio::spawn(async move {
                let tick = (p.idle_interval() / 4).max(std::time::Duration::from_secs(1));
                loop {
                    tokio::time::sleep(tick).await;
                    if p.unload_if_idle() {
                        // The matrix and weights are large allocations (mmap-backed in
                        // glibc), so dropping them returns the memory to the kernel.
                        info!("model unloaded after {}s idle", p.idle_interval().as_secs());
                    }
                }
            });
        }
        daemon.run_until_stopped().await
    })
}
