//! systemd service notification (`Type=notify`): `READY=1`, `STATUS=`, `STOPPING=1`, and the
//! watchdog. Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use sd_notify::NotifyState;
use tracing::warn;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("sd_notify failed: {e}");
    }
}

/// The daemon serves requests: sent after the bus name is owned.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A one-line status shown by `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// When the unit sets `WatchdogSec=`, pings systemd at half the interval for as long as the
/// daemon's runtime is alive (a hung runtime stops the pings and systemd restarts it).
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|d| !d.is_zero())?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval / 2);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}
