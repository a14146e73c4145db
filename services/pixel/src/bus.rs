//! `org.quantumos.Pixel1`: converts calls into [`Pixel`] queries, applies brightness through
//! logind (or sysfs when there is no session), and turns device events and the policy's
//! timers into signals and brightness changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use steppps::Error;
use steppps::api::PIXEL;
use steppps::api::logind::{Login1ManagerProxy, Login1SessionProxy};
use steppps::api::pixel::{Ambient, Backlight, Output, Policy};
use steppps::auth::authorize;
use steppps::daemon::Daemon;
use steppps_space::hotplug::{UeventAction, UeventSocket};
use tracing::{debug, info, warn};
use zbus::message::Header;
use zbus::names::BusName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::{IdleStep, Pixel, check_percent, sysfs};

/// polkit actions, shipped in `org.quantumos.pixel.policy`.
pub const SET_BRIGHTNESS_ACTION: &str = "org.quantumos.pixel.set-brightness";
pub const SET_POLICY_ACTION: &str = "org.quantumos.pixel.set-policy";

#[derive(Debug)]
pub struct PixelInterface {
    pixel: Arc<Pixel>,
}

impl PixelInterface {
    pub fn new(pixel: Arc<Pixel>) -> Self {
        PixelInterface { pixel }
    }
}

fn map(e: crate::Error) -> Error {
    match e {
        crate::Error::InvalidArgument(m) => Error::invalid_argument(m),
        crate::Error::NotFound(m) => Error::not_found(m),
        crate::Error::Failed(m) => Error::failed(m),
    }
}

/// How a brightness change was made, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Logind,
    Sysfs,
}

/// The logind session to change brightness through: the caller's, else an active one with a
/// seat. `None` when logind is absent or has no such session.
async fn session(
    connection: &Connection,
    caller_pid: Option<u32>,
) -> Option<Login1SessionProxy<'static>> {
    let manager = Login1ManagerProxy::new(connection).await.ok()?;
    let path = match caller_pid {
        Some(pid) => manager.get_session_by_pid(pid).await.ok(),
        None => None,
    };
    let path = match path {
        Some(p) => p,
        None => {
            let sessions = manager.list_sessions().await.ok()?;
            let mut chosen = None;
            for (_, _, _, seat, path) in sessions {
                if seat.is_empty() {
                    continue;
                }
                let s = Login1SessionProxy::builder(connection)
                    .path(path.clone())
                    .build()
                    .await
                    .ok()?;
                if s.active().await.unwrap_or(false) {
                    chosen = Some(path);
                    break;
                }
            }
            chosen?
        }
    };
    Login1SessionProxy::builder(connection)
        .path(path)
        .build()
        .await
        .ok()
}

/// Sets `device` to `percent`: through logind when allowed and a session exists, else by
/// writing sysfs. Returns the backlight as it is afterwards.
pub async fn apply_brightness(
    connection: &Connection,
    pixel: &Pixel,
    device: &Backlight,
    percent: u32,
    caller_pid: Option<u32>,
) -> Result<(Backlight, Path), Error> {
    let raw = sysfs::raw_from_percent(percent, device.max_brightness);
    let mut path = Path::Sysfs;
    if pixel.config().use_logind && pixel.config().sysfs_root == std::path::Path::new("/") {
        if let Some(s) = session(connection, caller_pid).await {
            match s.set_brightness("backlight", &device.name, raw).await {
                Ok(()) => path = Path::Logind,
                Err(e) => debug!("logind SetBrightness failed ({e}); writing sysfs"),
            }
        }
    }
    if path == Path::Sysfs {
        pixel
            .sysfs()
            .write_brightness(&device.name, raw)
            .map_err(|e| {
                Error::failed(format!(
                    "cannot write {}/sys/class/backlight/{}/brightness: {e} (no logind session to \
                 go through, and the daemon may not write sysfs)",
                    pixel.sysfs().root().display(),
                    device.name
                ))
            })?;
    }
    pixel.count_brightness_set();
    let mut after = pixel
        .backlight(&device.name)
        .unwrap_or_else(|_| device.clone());
    // logind and the kernel apply it synchronously; if the read races, report the request.
    if after.brightness != raw {
        after.brightness = raw;
        after.percent = sysfs::percent_from_raw(raw, after.max_brightness);
    }
    Ok((after, path))
}

async fn caller_pid(connection: &Connection, header: &Header<'_>) -> Option<u32> {
    let sender = header.sender()?;
    let dbus = zbus::fdo::DBusProxy::new(connection).await.ok()?;
    dbus.get_connection_unix_process_id(BusName::Unique(sender.clone()))
        .await
        .ok()
}

#[interface(name = "org.quantumos.Pixel1")]
impl PixelInterface {
    fn list_outputs(&self) -> Vec<Output> {
        self.pixel.outputs()
    }

    fn list_backlights(&self) -> Vec<Backlight> {
        self.pixel.backlights()
    }

    fn get_brightness(&self, device: &str) -> Result<Backlight, Error> {
        self.pixel.backlight(device).map_err(map)
    }

    async fn set_brightness(
        &self,
        device: &str,
        percent: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<Backlight, Error> {
        check_percent(percent).map_err(map)?;
        let backlight = self.pixel.backlight(device).map_err(map)?;
        authorize(connection, &header, SET_BRIGHTNESS_ACTION).await?;
        let pid = caller_pid(connection, &header).await;
        let (after, path) =
            apply_brightness(connection, &self.pixel, &backlight, percent, pid).await?;
        info!(device = %after.name, percent, ?path, "brightness set");
        // Announce it now (and keep the poller from announcing it again).
        let _ = self.pixel.brightness_changes();
        let _ = Self::brightness_changed(&emitter, &after.name, after.percent).await;
        Ok(after)
    }

    fn get_ambient(&self) -> Ambient {
        self.pixel.ambient()
    }

    fn get_policy(&self) -> Policy {
        self.pixel.policy()
    }

    async fn set_policy(
        &self,
        policy: Policy,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Policy, Error> {
        crate::check_policy(&policy).map_err(map)?;
        authorize(connection, &header, SET_POLICY_ACTION).await?;
        self.pixel.set_policy(policy).map_err(map)
    }

    #[zbus(signal)]
    async fn output_changed(
        emitter: &SignalEmitter<'_>,
        name: &str,
        status: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn brightness_changed(
        emitter: &SignalEmitter<'_>,
        device: &str,
        percent: u32,
    ) -> zbus::Result<()>;
}

async fn announce(pixel: &Pixel, emitter: &SignalEmitter<'_>) {
    for (name, status) in pixel.output_changes() {
        info!(output = %name, %status, "output changed");
        if let Err(e) = PixelInterface::output_changed(emitter, &name, &status).await {
            warn!("cannot emit OutputChanged: {e}");
        }
    }
    for (device, percent) in pixel.brightness_changes() {
        debug!(%device, percent, "brightness changed");
        if let Err(e) = PixelInterface::brightness_changed(emitter, &device, percent).await {
            warn!("cannot emit BrightnessChanged: {e}");
        }
    }
}

/// What the policy did to the brightness, so it can undo it.
#[derive(Debug, Default)]
struct PolicyState {
    /// The brightness before the idle policy dimmed or blanked the backlight.
    saved: Option<u32>,
    /// Whether the policy turned the backlight off.
    blanked: bool,
}

/// The idle time logind reports (all sessions idle), or `None` when not idle or unknown.
async fn idle_for(connection: &Connection) -> Option<Duration> {
    let manager = Login1ManagerProxy::new(connection).await.ok()?;
    if !manager.idle_hint().await.ok()? {
        return None;
    }
    let since_us = manager.idle_since_hint().await.ok()?;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_micros();
    let idle = now_us.saturating_sub(u128::from(since_us));
    Some(Duration::from_micros(
        u64::try_from(idle).unwrap_or(u64::MAX),
    ))
}

async fn apply_policy(pixel: &Pixel, connection: &Connection, state: &mut PolicyState) {
    let policy = pixel.policy();
    let Ok(backlight) = pixel.backlight("") else {
        return;
    };
    if policy.idle_dim_seconds > 0 || policy.blank_seconds > 0 || state.saved.is_some() {
        let idle = idle_for(connection).await;
        let step = crate::idle_step(&policy, idle, backlight.percent, state.saved, state.blanked);
        let (to, saved, blanked) = match step {
            IdleStep::Nothing => (None, state.saved, state.blanked),
            IdleStep::Dim(to) => (Some(to), Some(backlight.percent), false),
            IdleStep::Blank => (Some(0), state.saved.or(Some(backlight.percent)), true),
            IdleStep::Restore(to) => (Some(to), None, false),
        };
        if let Some(to) = to {
            info!(from = backlight.percent, to, ?step, "idle policy");
            if apply_brightness(connection, pixel, &backlight, to, None)
                .await
                .is_ok()
            {
                (state.saved, state.blanked) = (saved, blanked);
            }
            return;
        }
        // Dimmed or off: the adaptive curve waits for activity.
        if state.saved.is_some() {
            return;
        }
    }
    if policy.adaptive {
        let ambient = pixel.ambient();
        if ambient.present && ambient.recommended_percent.abs_diff(backlight.percent) >= 3 {
            debug!(
                lux = ambient.lux,
                to = ambient.recommended_percent,
                "adaptive brightness"
            );
            let _ = apply_brightness(
                connection,
                pixel,
                &backlight,
                ambient.recommended_percent,
                None,
            )
            .await;
        }
    }
}

/// Follows DRM and backlight device events (and polls when configured), announces changes,
/// and applies the adaptive brightness and idle dimming policy.
pub async fn follow(pixel: Arc<Pixel>, daemon: Daemon) {
    let emitter = match SignalEmitter::new(daemon.connection(), PIXEL.path) {
        Ok(e) => e,
        Err(e) => {
            warn!("cannot emit signals: {e}");
            return;
        }
    };
    let mut socket = if pixel.config().hotplug {
        match UeventSocket::open() {
            Ok(s) => {
                pixel.set_hotplug("following");
                Some(s)
            }
            Err(e) => {
                warn!("cannot follow device events: {e}");
                pixel.set_hotplug(format!("unavailable ({e})"));
                None
            }
        }
    } else {
        None
    };
    let poll = match pixel.config().poll_ms {
        0 => Duration::from_secs(2),
        ms => Duration::from_millis(ms),
    };
    let rescan_on_tick = pixel.config().poll_ms > 0;
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = PolicyState::default();
    loop {
        let event = async {
            match socket.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = event => match event {
                Ok(ev) if matches!(ev.subsystem.as_str(), "drm" | "backlight")
                    && ev.action != UeventAction::Bind =>
                {
                    pixel.count_hotplug_event();
                    announce(&pixel, &emitter).await;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!("device events stopped: {e}");
                    pixel.set_hotplug(format!("stopped ({e})"));
                    socket = None;
                }
            },
            _ = ticker.tick() => {
                if rescan_on_tick {
                    announce(&pixel, &emitter).await;
                }
                apply_policy(&pixel, daemon.connection(), &mut state).await;
            }
        }
    }
}
