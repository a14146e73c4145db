//! Timers: when each one elapses, what it does, and the file that keeps them across restarts.
//!
//! A timer's schedule is one of three kinds, told apart by its specification:
//! - a calendar event (`Mon..Fri 9:00`, `daily`): recurring, and persistent like systemd's
//!   `Persistent=true`: an elapse missed while the daemon was down fires once when it starts;
//! - `every <span>` (`every 10min`): recurring, `span` after the previous firing;
//! - a time span (`5min`, `in 1h`): once, that long after the timer was added (also fired on
//!   start when it elapsed while the daemon was down).
//!
//! The state file is JSON, replaced atomically ([`steppps::state::write_atomic`]),
//! and saved before `AddTimer` returns and before an action runs: an acknowledged timer is
//! never lost, and a firing is never repeated after a crash (at most once).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steppps::api::{DIMENSIONS, DimensionId, MANAGER, SCRIPT};

use crate::calendar::{CalendarError, CalendarSpec};
use crate::timespan::{self, TimespanError};

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Timespan(#[from] TimespanError),
    #[error("{0}")]
    Action(String),
    #[error("{0}")]
    Name(String),
    #[error("a timer named `{0}` exists; remove it first")]
    Exists(String),
    #[error("no timer named `{0}`")]
    NotFound(String),
    #[error("cannot save timers to {path}: {source}")]
    Save { path: PathBuf, source: io::Error },
}

/// When a timer elapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Calendar(CalendarSpec),
    Every(Duration),
    Once(Duration),
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, TimerError> {
        let trimmed = spec.trim();
        if let Some(span) = trimmed.strip_prefix("every ") {
            let every = timespan::parse(span)?;
            if every < Duration::from_secs(1) {
                return Err(TimerError::Name("`every` needs at least 1s".into()));
            }
            return Ok(Schedule::Every(every));
        }
        if let Some(span) = trimmed.strip_prefix("in ") {
            return Ok(Schedule::Once(timespan::parse(span)?));
        }
        // Something that starts with a digit and has no date or time separators is a span.
        if trimmed.starts_with(|c: char| c.is_ascii_digit())
            && !trimmed.contains([':', '-', '~', '.', ',', '/'])
        {
            return Ok(Schedule::Once(timespan::parse(trimmed)?));
        }
        Ok(Schedule::Calendar(CalendarSpec::parse(trimmed)?))
    }

    /// The normalized form shown to users.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Calendar(c) => c.to_string(),
            Schedule::Every(d) => format!("every {}", timespan::format(*d)),
            Schedule::Once(d) => format!("once, {} after it was added", timespan::format(*d)),
        }
    }
}

/// What a timer does when it elapses: a D-Bus call to a QuantumOS daemon (only those: the
/// time daemon runs as root and must not become a way to call anything on the system bus),
/// or the start of a workflow in the script dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Call {
        target: &'static DimensionId,
        interface: String,
        method: String,
        args: Vec<String>,
    },
    Workflow {
        process: String,
    },
}

/// At most this many string arguments in a call action.
pub const MAX_CALL_ARGS: usize = 3;

impl Action {
    /// `call <dimension|manager> <org.quantumos.Interface1.Method> [ARG…]` or
    /// `workflow <process-id>`.
    pub fn parse(text: &str) -> Result<Action, TimerError> {
        let bad = |m: String| TimerError::Action(format!("invalid action `{text}`: {m}"));
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["workflow", process] => Ok(Action::Workflow {
                process: process.to_string(),
            }),
            ["call", target, member, args @ ..] => {
                let target = if *target == "manager" {
                    &MANAGER
                } else {
                    DIMENSIONS
                        .iter()
                        .find(|d| d.name == *target)
                        .ok_or_else(|| {
                            bad(format!(
                                "unknown target `{target}`; use manager or one of {}",
                                steppps::api::dimension_names().join(", ")
                            ))
                        })?
                };
                let (interface, method) = member
                    .rsplit_once('.')
                    .ok_or_else(|| bad(format!("`{member}` is not Interface.Method")))?;
                if !interface.starts_with("org.quantumos.") {
                    return Err(bad(format!(
                        "only org.quantumos interfaces may be called, not `{interface}`"
                    )));
                }
                if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(bad(format!("`{method}` is not a method name")));
                }
                if args.len() > MAX_CALL_ARGS {
                    return Err(bad(format!("at most {MAX_CALL_ARGS} arguments")));
                }
                Ok(Action::Call {
                    target,
                    interface: interface.to_string(),
                    method: method.to_string(),
                    args: args.iter().map(|a| a.to_string()).collect(),
                })
            }
            _ => Err(bad(
                "expected `call <target> <Interface.Method> [ARG…]` or `workflow <process>`".into(),
            )),
        }
    }

    /// The workflow form as the call it becomes.
    pub fn as_call(&self) -> (&'static DimensionId, String, String, Vec<String>) {
        match self {
            Action::Call {
                target,
                interface,
                method,
                args,
            } => (target, interface.clone(), method.clone(), args.clone()),
            Action::Workflow { process } => (
                &SCRIPT,
                SCRIPT.interface.to_string(),
                "StartInstance".into(),
                // Script1.StartInstance(definition, variables_json): no variables.
                vec![process.clone(), "{}".into()],
            ),
        }
    }
}

/// A timer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    pub name: String,
    pub spec: String,
    pub action: String,
    /// Unix seconds.
    pub created: i64,
    pub last_fired: Option<i64>,
    /// How the last firing went: `ok`, or the error.
    pub last_result: String,
    pub fire_count: u64,
}

impl TimerRecord {
    pub fn schedule(&self) -> Result<Schedule, TimerError> {
        Schedule::parse(&self.spec)
    }

    /// The next time this timer fires, given `now`: `Some(t <= now)` means it is due (a
    /// missed calendar elapse fires once, at start); `None`, that it never fires again.
    pub fn next_elapse(&self, now: i64) -> Option<i64> {
        let base = self.last_fired.unwrap_or(self.created);
        match self.schedule().ok()? {
            Schedule::Calendar(spec) => {
                let next = spec.next_elapse(base)?;
                // Several missed elapses fire once, not once each.
                Some(if next <= now { now } else { next })
            }
            Schedule::Every(d) => Some(base.saturating_add(d.as_secs() as i64)),
            Schedule::Once(d) => self
                .last_fired
                .is_none()
                .then(|| self.created.saturating_add(d.as_secs() as i64)),
        }
    }
}

/// Timer names: what `RemoveTimer` and `qos-ctl time remove` take.
pub fn validate_name(name: &str) -> Result<(), TimerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(TimerError::Name(format!(
            "invalid timer name `{name}`: use 1–64 letters, digits, `-`, `_`, `.` or `@`"
        )))
    }
}

/// The timers and their state file.
#[derive(Debug)]
pub struct TimerStore {
    path: PathBuf,
    timers: BTreeMap<String, TimerRecord>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    timers: Vec<TimerRecord>,
}

impl TimerStore {
    /// Loads `<state_dir>/timers.json`. A missing file is an empty store; an unreadable one
    /// is kept aside as `timers.json.corrupt` (for inspection) and the store starts empty.
    pub fn open(state_dir: &Path) -> Result<(TimerStore, Option<String>), TimerError> {
        let path = state_dir.join("timers.json");
        let mut warning = None;
        let timers = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(file) => file
                    .timers
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect(),
                Err(e) => {
                    let aside = state_dir.join("timers.json.corrupt");
                    let _ = fs::rename(&path, &aside);
                    warning = Some(format!(
                        "{}: {e}; kept as {} and started empty",
                        path.display(),
                        aside.display()
                    ));
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(TimerError::Save { path, source }),
        };
        Ok((TimerStore { path, timers }, warning))
    }

    pub fn list(&self) -> impl Iterator<Item = &TimerRecord> {
        self.timers.values()
    }

    pub fn get(&self, name: &str) -> Option<&TimerRecord> {
        self.timers.get(name)
    }

    /// Adds a timer and saves before returning.
    pub fn add(
        &mut self,
        name: &str,
        spec: &str,
        action: &str,
        now: i64,
    ) -> Result<TimerRecord, TimerError> {
        validate_name(name)?;
        Schedule::parse(spec)?;
        Action::parse(action)?;
        if self.timers.contains_key(name) {
            return Err(TimerError::Exists(name.to_string()));
        }
        let record = TimerRecord {
            name: name.to_string(),
            spec: spec.trim().to_string(),
            action: action.trim().to_string(),
            created: now,
            last_fired: None,
            last_result: String::new(),
            fire_count: 0,
        };
        self.timers.insert(name.to_string(), record.clone());
        if let Err(e) = self.save() {
            self.timers.remove(name);
            return Err(e);
        }
        Ok(record)
    }

    pub fn remove(&mut self, name: &str) -> Result<TimerRecord, TimerError> {
        let record = self
            .timers
            .remove(name)
            .ok_or_else(|| TimerError::NotFound(name.to_string()))?;
        if let Err(e) = self.save() {
            self.timers.insert(name.to_string(), record);
            return Err(e);
        }
        Ok(record)
    }

    /// The timers due at `now`, marked fired and saved before they are handed out.
    pub fn take_due(&mut self, now: i64) -> Result<Vec<TimerRecord>, TimerError> {
        let due: Vec<String> = self
            .timers
            .values()
            .filter(|t| t.next_elapse(now).is_some_and(|at| at <= now))
            .map(|t| t.name.clone())
            .collect();
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut fired = Vec::new();
        for name in &due {
            if let Some(t) = self.timers.get_mut(name) {
                t.last_fired = Some(now);
                t.fire_count += 1;
                t.last_result = "running".into();
                fired.push(t.clone());
            }
        }
        self.save()?;
        Ok(fired)
    }

    /// Records how a firing went.
    pub fn set_result(&mut self, name: &str, result: String) -> Result<(), TimerError> {
        if let Some(t) = self.timers.get_mut(name) {
            t.last_result = result;
            self.save()?;
        }
        Ok(())
    }

    /// The earliest next elapse of all timers.
    pub fn next_wakeup(&self, now: i64) -> Option<i64> {
        self.timers
            .values()
            .filter_map(|t| t.next_elapse(now))
            .min()
    }

    fn save(&self) -> Result<(), TimerError> {
        let err = |source| TimerError::Save {
            path: self.path.clone(),
            source,
        };
        let file = StateFile {
            version: 1,
            timers: self.timers.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| err(io::Error::other(e)))?;
        steppps::state::write_atomic(&self.path, &bytes).map_err(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000; // 2026-09-21 14:13:20 UTC

    #[test]
    fn schedules_are_told_apart() {
        assert!(matches!(
            Schedule::parse("daily").unwrap(),
            Schedule::Calendar(_)
        ));
        assert!(matches!(
            Schedule::parse("Mon..Fri 9:00").unwrap(),
            Schedule::Calendar(_)
        ));
        assert!(matches!(
            Schedule::parse("12-25").unwrap(),
            Schedule::Calendar(_)
        ));
        assert_eq!(
            Schedule::parse("every 10min").unwrap(),
            Schedule::Every(Duration::from_secs(600))
        );
        assert_eq!(
            Schedule::parse("5min").unwrap(),
            Schedule::Once(Duration::from_secs(300))
        );
        assert_eq!(
            Schedule::parse("in 1h").unwrap(),
            Schedule::Once(Duration::from_secs(3600))
        );
        let err = Schedule::parse("Mon 25:00").unwrap_err().to_string();
        assert!(err.contains("position 5"), "{err}");
    }

    #[test]
    fn actions_only_call_quantumos() {
        let a = Action::parse("call space org.quantumos.Dimension1.Health").unwrap();
        assert!(
            matches!(a, Action::Call { target, ref method, .. } if target.name == "space" && method == "Health")
        );
        assert!(Action::parse("call manager org.quantumos.Manager1.Restart space").is_ok());
        assert!(Action::parse("workflow nightly-backup").is_ok());
        for bad in [
            "call space org.freedesktop.systemd1.Manager.StartUnit x",
            "call nowhere org.quantumos.X1.Y",
            "call space Health",
            "call space org.quantumos.Space1.Get;rm",
            "call space org.quantumos.Space1.X a b c d",
            "run rm -rf /",
        ] {
            assert!(Action::parse(bad).is_err(), "{bad}");
        }
    }

    fn store() -> (tempfile::TempDir, TimerStore) {
        let dir = tempfile::tempdir().unwrap();
        let (store, warning) = TimerStore::open(dir.path()).unwrap();
        assert!(warning.is_none());
        (dir, store)
    }

    #[test]
    fn once_timer_fires_once_and_survives_a_restart() {
        let (dir, mut s) = store();
        s.add(
            "soon",
            "5min",
            "call space org.quantumos.Dimension1.Health",
            T0,
        )
        .unwrap();
        assert!(s.take_due(T0 + 299).unwrap().is_empty());
        // The daemon was down at T0+300 and starts at T0+1000: it fires once.
        let (mut s, _) = TimerStore::open(dir.path()).unwrap();
        assert_eq!(s.next_wakeup(T0 + 1000), Some(T0 + 300));
        assert_eq!(s.take_due(T0 + 1000).unwrap().len(), 1);
        assert!(s.take_due(T0 + 2000).unwrap().is_empty());
        let (s, _) = TimerStore::open(dir.path()).unwrap();
        assert_eq!(s.get("soon").unwrap().fire_count, 1, "firing was saved");
        assert_eq!(s.next_wakeup(T0 + 3000), None);
    }

    #[test]
    fn missed_calendar_elapses_fire_once_on_start() {
        let (_dir, mut s) = store();
        s.add(
            "hourly",
            "hourly UTC",
            "call space org.quantumos.Dimension1.Health",
            T0,
        )
        .unwrap();
        // Ten hours later: ten elapses missed, one firing.
        let fired = s.take_due(T0 + 36_000).unwrap();
        assert_eq!(fired.len(), 1);
        assert!(s.take_due(T0 + 36_001).unwrap().is_empty());
        let next = s.next_wakeup(T0 + 36_001).unwrap();
        assert_eq!(next % 3600, 0, "next firing is on the hour");
        assert!(next > T0 + 36_000 && next <= T0 + 36_000 + 3600);
    }

    #[test]
    fn every_timer_repeats_after_each_firing() {
        let (_dir, mut s) = store();
        s.add(
            "tick",
            "every 10min",
            "call space org.quantumos.Dimension1.Health",
            T0,
        )
        .unwrap();
        assert_eq!(s.next_wakeup(T0), Some(T0 + 600));
        assert_eq!(s.take_due(T0 + 600).unwrap().len(), 1);
        assert_eq!(s.next_wakeup(T0 + 600), Some(T0 + 1200));
    }

    #[test]
    fn bad_input_is_refused_and_nothing_is_saved() {
        let (dir, mut s) = store();
        assert!(s.add("bad name!", "daily", "workflow x", T0).is_err());
        assert!(s.add("x", "Mon 25:00", "workflow x", T0).is_err());
        assert!(s.add("x", "daily", "nonsense", T0).is_err());
        s.add("x", "daily", "workflow x", T0).unwrap();
        assert!(matches!(
            s.add("x", "daily", "workflow x", T0),
            Err(TimerError::Exists(_))
        ));
        assert!(matches!(s.remove("y"), Err(TimerError::NotFound(_))));
        let (s, _) = TimerStore::open(dir.path()).unwrap();
        assert_eq!(s.list().count(), 1);
    }

    #[test]
    fn corrupt_state_file_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("timers.json"), b"{ not json").unwrap();
        let (s, warning) = TimerStore::open(dir.path()).unwrap();
        assert_eq!(s.list().count(), 0);
        assert!(warning.unwrap().contains("timers.json.corrupt"));
        assert!(dir.path().join("timers.json.corrupt").exists());
    }
}
