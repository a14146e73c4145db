//! The daemon's entry point: its command line, and what it starts and serves. Its own binary
//! and the multi-call binary the image ships (`quantumos-daemons`) both run it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::bus::{PixelInterface, follow};
use crate::{Config, Pixel};
use anyhow::Context as _;
use clap::Parser;
use steppps::api::PIXEL;
use steppps::daemon::DaemonArgs;
use tracing::warn;

/// The QuantumOS pixel dimension: displays, EDID and scaling, backlight and ambient light,
/// display power policy (org.quantumos.Pixel1; see qos-ctl pixel).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Read /sys under this directory instead (a fixture tree) [default: pixel.toml's
    /// sysfs_root, or /]
    #[arg(long, value_name = "DIR")]
    sysfs_root: Option<PathBuf>,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    let sysfs_root = args.sysfs_root;
    steppps::daemon::run::<Config, _, _>(
        &PIXEL,
        args.daemon,
        |daemon, mut config: Config| async move {
            if let Some(root) = sysfs_root {
                config.sysfs_root = root;
            }
            if !config.sysfs_root.is_dir() {
                anyhow::bail!(
                    "sysfs root {} is not a directory",
                    config.sysfs_root.display()
                );
            }
            let dir = steppps::config::state_directory(PIXEL.name);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
            let (pixel, warning) = Pixel::new(config, &dir);
            if let Some(w) = warning {
                warn!("{w}");
            }
            let pixel = Arc::new(pixel);
            daemon.serve(PixelInterface::new(pixel.clone())).await?;
            daemon.start(pixel.clone()).await?;
            tokio::spawn(follow(pixel, daemon.clone()));
            daemon.run_until_stopped().await
        },
    )
}
