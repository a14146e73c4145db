//! The PIXEL dimension: the machine's displays (DRM connectors, modes, EDID → size → DPI →
//! a recommended scale), backlight brightness, the ambient light sensor and the adaptive
//! brightness curve, and the display power policy. A machine without any of them (a VM, a
//! server) is a normal state, reported as such.
//!
//! [`sysfs`] reads the kernel's view from a root directory (tests point it at fixture
//! trees), [`edid`] parses EDID blocks, [`bus`] serves `org.quantumos.Pixel1` and applies
//! brightness through logind or sysfs.

pub mod bus;
pub mod edid;
mod entry;
pub mod sysfs;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use steppps::api::pixel::{Ambient, Backlight, Output, Policy};
use steppps::daemon::Vitals;

use crate::sysfs::Sysfs;

/// `/etc/quantumos/pixel.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where `/sys` is looked for (`/` on a machine; a fixture tree in tests).
    pub sysfs_root: PathBuf,
    /// Change brightness through logind's `Session.SetBrightness` when a session exists.
    pub use_logind: bool,
    /// Follow the kernel's device events (DRM hotplug, backlight changes).
    pub hotplug: bool,
    /// Also re-read outputs and backlights this often (ms; 0: only on device events). The
    /// adaptive brightness and idle dimming policy is applied at the same pace (at most
    /// every 2 s when this is 0).
    pub poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sysfs_root: PathBuf::from("/"),
            use_logind: true,
            hotplug: true,
            poll_ms: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// The brightness the adaptive curve gives for `lux`: logarithmic (the eye's response), from
/// `min` in the dark to `max` in daylight (10,000 lux and more).
pub fn adaptive_percent(lux: f64, min: u32, max: u32) -> u32 {
    let f = ((1.0 + lux.max(0.0)).ln() / (1.0 + 10_000f64).ln()).clamp(0.0, 1.0);
    let (min, max) = (f64::from(min.min(max)), f64::from(max));
    (min + (max - min) * f).round() as u32
}

/// What the idle policy does next to the backlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStep {
    /// Leave it (active, not idle long enough, or already done).
    Nothing,
    /// Dim to this percentage (`idle_dim_seconds`).
    Dim(u32),
    /// Turn it off (`blank_seconds`).
    Blank,
    /// Activity again: back to the brightness before dimming or blanking.
    Restore(u32),
}

/// The idle policy as a pure decision. `idle`: how long every session has been idle (`None`:
/// someone is active, or logind does not say); `percent`: the backlight now; `saved`: the
/// brightness before the policy dimmed or blanked it (`None`: the policy has not acted);
/// `blanked`: whether it is off now. The caller applies the step and updates `saved`.
pub fn idle_step(
    policy: &Policy,
    idle: Option<std::time::Duration>,
    percent: u32,
    saved: Option<u32>,
    blanked: bool,
) -> IdleStep {
    let after = |s: u32| std::time::Duration::from_secs(u64::from(s));
    let Some(idle) = idle else {
        return saved.map_or(IdleStep::Nothing, IdleStep::Restore);
    };
    if policy.blank_seconds > 0 && idle >= after(policy.blank_seconds) && !blanked {
        return IdleStep::Blank;
    }
    if policy.idle_dim_seconds > 0
        && idle >= after(policy.idle_dim_seconds)
        && saved.is_none()
        && percent > policy.dim_percent
    {
        return IdleStep::Dim(policy.dim_percent);
    }
    IdleStep::Nothing
}

/// Checks a policy: percentages 0–100, min ≤ max.
pub fn check_policy(p: &Policy) -> Result<(), Error> {
    for (name, v) in [
        ("min_percent", p.min_percent),
        ("max_percent", p.max_percent),
        ("dim_percent", p.dim_percent),
    ] {
        if v > 100 {
            return Err(Error::InvalidArgument(format!(
                "{name} = {v}: a percentage is 0 to 100"
            )));
        }
    }
    if p.min_percent > p.max_percent {
        return Err(Error::InvalidArgument(format!(
            "min_percent ({}) is above max_percent ({})",
            p.min_percent, p.max_percent
        )));
    }
    if p.blank_seconds != 0 && p.idle_dim_seconds != 0 && p.blank_seconds < p.idle_dim_seconds {
        return Err(Error::InvalidArgument(format!(
            "blank_seconds ({}) comes before idle_dim_seconds ({}): blank after dimming",
            p.blank_seconds, p.idle_dim_seconds
        )));
    }
    Ok(())
}

/// Checks a brightness request.
pub fn check_percent(percent: u32) -> Result<(), Error> {
    if percent > 100 {
        return Err(Error::InvalidArgument(format!(
            "brightness {percent}% is out of range: give 0 to 100"
        )));
    }
    Ok(())
}

/// `policy.json` in the state directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPolicy {
    adaptive: bool,
    min_percent: u32,
    max_percent: u32,
    idle_dim_seconds: u32,
    dim_percent: u32,
    blank_seconds: u32,
}

impl From<&Policy> for StoredPolicy {
    fn from(p: &Policy) -> Self {
        StoredPolicy {
            adaptive: p.adaptive,
            min_percent: p.min_percent,
            max_percent: p.max_percent,
            idle_dim_seconds: p.idle_dim_seconds,
            dim_percent: p.dim_percent,
            blank_seconds: p.blank_seconds,
        }
    }
}

impl From<StoredPolicy> for Policy {
    fn from(s: StoredPolicy) -> Self {
        Policy {
            adaptive: s.adaptive,
            min_percent: s.min_percent,
            max_percent: s.max_percent,
            idle_dim_seconds: s.idle_dim_seconds,
            dim_percent: s.dim_percent,
            blank_seconds: s.blank_seconds,
        }
    }
}

/// The pixel dimension's state.
#[derive(Debug)]
pub struct Pixel {
    sysfs: Sysfs,
    config: Config,
    policy_path: PathBuf,
    policy: Mutex<Policy>,
    /// Connector statuses and backlight percents last announced, to signal only changes.
    seen_outputs: Mutex<HashMap<String, String>>,
    seen_backlights: Mutex<HashMap<String, u32>>,
    brightness_sets: AtomicU64,
    hotplug_events: AtomicU64,
    hotplug: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pixel {
    /// `state_dir` holds `policy.json`; a missing one means the defaults. A damaged one also
    /// does, and the second value says why (for the log).
    pub fn new(config: Config, state_dir: &Path) -> (Pixel, Option<String>) {
        let policy_path = state_dir.join("policy.json");
        let (policy, warning) = match std::fs::read_to_string(&policy_path) {
            Ok(text) => match serde_json::from_str::<StoredPolicy>(&text) {
                Ok(s) => {
                    let p = Policy::from(s);
                    match check_policy(&p) {
                        Ok(()) => (p, None),
                        Err(e) => (
                            Policy::default(),
                            Some(format!("{}: {e}; using defaults", policy_path.display())),
                        ),
                    }
                }
                Err(e) => (
                    Policy::default(),
                    Some(format!("{}: {e}; using defaults", policy_path.display())),
                ),
            },
            Err(_) => (Policy::default(), None),
        };
        let pixel = Pixel {
            sysfs: Sysfs::new(&config.sysfs_root),
            config,
            policy_path,
            policy: Mutex::new(policy),
            seen_outputs: Mutex::new(HashMap::new()),
            seen_backlights: Mutex::new(HashMap::new()),
            brightness_sets: AtomicU64::new(0),
            hotplug_events: AtomicU64::new(0),
            hotplug: Mutex::new("disabled".into()),
        };
        pixel.output_changes();
        pixel.brightness_changes();
        (pixel, warning)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }

    pub fn outputs(&self) -> Vec<Output> {
        self.sysfs.outputs()
    }

    pub fn backlights(&self) -> Vec<Backlight> {
        self.sysfs.backlights()
    }

    /// A backlight by name, or the preferred one for an empty name.
    pub fn backlight(&self, device: &str) -> Result<Backlight, Error> {
        if device.is_empty() {
            return self.backlights().into_iter().next().ok_or_else(|| {
                Error::NotFound(
                    "this machine has no backlight (a VM, a desktop, or a monitor that is \
                     not driven through /sys/class/backlight)"
                        .into(),
                )
            });
        }
        if !sysfs::valid_device_name(device) {
            return Err(Error::InvalidArgument(format!(
                "`{device}` is not a backlight device name (like intel_backlight)"
            )));
        }
        self.sysfs.backlight(device).ok_or_else(|| {
            let known: Vec<String> = self.backlights().into_iter().map(|b| b.name).collect();
            Error::NotFound(format!(
                "no backlight `{device}`; {}",
                if known.is_empty() {
                    "this machine has none".to_string()
                } else {
                    format!("known: {}", known.join(", "))
                }
            ))
        })
    }

    pub fn ambient(&self) -> Ambient {
        let policy = self.policy();
        match self.sysfs.ambient() {
            Some((device, lux)) => Ambient {
                present: true,
                device,
                lux,
                recommended_percent: adaptive_percent(lux, policy.min_percent, policy.max_percent),
            },
            None => Ambient::default(),
        }
    }

    pub fn policy(&self) -> Policy {
        lock(&self.policy).clone()
    }

    /// Validates and stores a policy (write to a temporary file, then rename).
    pub fn set_policy(&self, policy: Policy) -> Result<Policy, Error> {
        check_policy(&policy)?;
        let text = serde_json::to_string_pretty(&StoredPolicy::from(&policy))
            .map_err(|e| Error::Failed(format!("cannot encode the policy: {e}")))?;
        let tmp = self.policy_path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.policy_path)
        };
        write().map_err(|e| {
            Error::Failed(format!(
                "cannot save the policy to {}: {e}",
                self.policy_path.display()
            ))
        })?;
        *lock(&self.policy) = policy.clone();
        Ok(policy)
    }

    /// Connectors whose status changed since the last call: `(name, status)`.
    pub fn output_changes(&self) -> Vec<(String, String)> {
        let now: HashMap<String, String> = self
            .outputs()
            .into_iter()
            .map(|o| (format!("{}-{}", o.card, o.name), o.status))
            .collect();
        let mut seen = lock(&self.seen_outputs);
        let mut changes: Vec<(String, String)> = now
            .iter()
            .filter(|(k, v)| seen.get(*k) != Some(*v))
            .map(|(k, v)| (connector_name(k), v.clone()))
            .collect();
        changes.extend(
            seen.keys()
                .filter(|k| !now.contains_key(*k))
                .map(|k| (connector_name(k), "removed".to_string())),
        );
        changes.sort();
        *seen = now;
        changes
    }

    /// Backlights whose brightness changed since the last call: `(device, percent)`.
    pub fn brightness_changes(&self) -> Vec<(String, u32)> {
        let now: HashMap<String, u32> = self
            .backlights()
            .into_iter()
            .map(|b| (b.name, b.percent))
            .collect();
        let mut seen = lock(&self.seen_backlights);
        let mut changes: Vec<(String, u32)> = now
            .iter()
            .filter(|(k, v)| seen.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        changes.sort();
        *seen = now;
        changes
    }

    pub fn count_brightness_set(&self) {
        self.brightness_sets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_hotplug_event(&self) {
        self.hotplug_events.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_hotplug(&self, state: impl Into<String>) {
        *lock(&self.hotplug) = state.into();
    }
}

/// `card0-HDMI-A-1` → `HDMI-A-1`.
fn connector_name(key: &str) -> String {
    key.split_once('-').map_or(key, |(_, n)| n).to_string()
}

impl Vitals for Pixel {
    fn health(&self) -> (bool, String) {
        let outputs = self.outputs();
        let connected = outputs.iter().filter(|o| o.status == "connected").count();
        let backlights = self.backlights();
        let displays = if outputs.is_empty() {
            "no DRM display connectors".to_string()
        } else {
            format!("{} connector(s), {connected} connected", outputs.len())
        };
        let backlight = match backlights.first() {
            Some(b) => format!("backlight {} at {}%", b.name, b.percent),
            None => "no backlight".to_string(),
        };
        let ambient = if self.sysfs.ambient().is_some() {
            "ambient light sensor"
        } else {
            "no ambient light sensor"
        };
        let hotplug = lock(&self.hotplug).clone();
        let none = outputs.is_empty() && backlights.is_empty();
        (
            true,
            format!(
                "{displays}; {backlight}; {ambient}; device events: {hotplug}{}",
                if none {
                    " (no display hardware: normal in a VM or on a server)"
                } else {
                    ""
                }
            ),
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        HashMap::from([
            (
                "brightness_sets".into(),
                self.brightness_sets.load(Ordering::Relaxed) as f64,
            ),
            (
                "hotplug_events".into(),
                self.hotplug_events.load(Ordering::Relaxed) as f64,
            ),
        ])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn idle_dims_then_blanks_and_activity_restores() {
        use std::time::Duration;
        let policy = Policy {
            idle_dim_seconds: 120,
            dim_percent: 20,
            blank_seconds: 600,
            ..Policy::default()
        };
        let s = |n: u64| Some(Duration::from_secs(n));
        // Active, or idle not long enough: nothing.
        assert_eq!(idle_step(&policy, None, 80, None, false), IdleStep::Nothing);
        assert_eq!(
            idle_step(&policy, s(60), 80, None, false),
            IdleStep::Nothing
        );
        // Two minutes: dim, once.
        assert_eq!(
            idle_step(&policy, s(120), 80, None, false),
            IdleStep::Dim(20)
        );
        assert_eq!(
            idle_step(&policy, s(300), 20, Some(80), false),
            IdleStep::Nothing
        );
        // Already darker than the dim level: left alone.
        assert_eq!(
            idle_step(&policy, s(300), 10, None, false),
            IdleStep::Nothing
        );
        // Ten minutes: off, once; still remembering the brightness from before dimming.
        assert_eq!(
            idle_step(&policy, s(600), 20, Some(80), false),
            IdleStep::Blank
        );
        assert_eq!(
            idle_step(&policy, s(900), 0, Some(80), true),
            IdleStep::Nothing
        );
        // Someone touches the keyboard: back to 80 %.
        assert_eq!(
            idle_step(&policy, None, 0, Some(80), true),
            IdleStep::Restore(80)
        );
        // Blanking alone (no dimming) works too.
        let blank_only = Policy {
            idle_dim_seconds: 0,
            ..policy
        };
        assert_eq!(
            idle_step(&blank_only, s(300), 80, None, false),
            IdleStep::Nothing
        );
        assert_eq!(
            idle_step(&blank_only, s(600), 80, None, false),
            IdleStep::Blank
        );
    }

    #[test]
    fn adaptive_curve_is_monotonic_within_the_range() {
        assert_eq!(adaptive_percent(0.0, 10, 100), 10);
        assert_eq!(adaptive_percent(50_000.0, 10, 100), 100);
        let office = adaptive_percent(400.0, 10, 100);
        assert!((60..=70).contains(&office), "{office}");
        let mut last = 0;
        for lux in [0.0, 1.0, 10.0, 100.0, 1000.0, 10_000.0] {
            let p = adaptive_percent(lux, 5, 90);
            assert!(p >= last && (5..=90).contains(&p));
            last = p;
        }
    }

    #[test]
    fn policies_are_checked() {
        assert!(check_policy(&Policy::default()).is_ok());
        let bad = Policy {
            min_percent: 80,
            max_percent: 20,
            ..Policy::default()
        };
        assert!(
            check_policy(&bad)
                .unwrap_err()
                .to_string()
                .contains("above")
        );
        let bad = Policy {
            dim_percent: 101,
            ..Policy::default()
        };
        assert!(
            check_policy(&bad)
                .unwrap_err()
                .to_string()
                .contains("0 to 100")
        );
        assert!(check_percent(101).is_err() && check_percent(0).is_ok());
    }
}
