//! The PSYCHOLOGY dimension: learns from the commands each user runs and predicts the next
//! one, or completes a prefix. All data stays on the machine, in one SQLite database the
//! user can inspect (`Export`, `Stats`) and erase (`Forget`, `EraseAll`); each user's model is
//! keyed by the uid the bus vouches for, so no user reaches another's.
//!
//! [`model`] is the predictor (pure, in memory), [`store`] the durable history it is rebuilt
//! from, [`history`] the readers of foreign histories (bash, the UCI traces), [`bus`] the
//! `org.quantumos.Psychology1` interface.

pub mod bus;
mod entry;
pub mod history;
pub mod model;
pub mod store;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use steppps::api::psychology::{Context, HistoryEntry, HistoryPage, Stats, Suggestion};
use steppps::daemon::Vitals;

use crate::history::MAX_COMMAND_LEN;
use crate::model::{Model, Params, Query};
use crate::store::{Store, StoreError};

/// `/etc/quantumos/psychology.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The newest entries kept per user; older ones are dropped.
    pub max_entries_per_user: u64,
    /// Like bash's `HISTCONTROL=ignorespace`: a command line that starts with a space is not
    /// learned (the way to run something without it being remembered).
    pub ignore_space: bool,
    /// Models kept in memory at once (the least recently used is dropped and rebuilt from the
    /// database when needed again).
    pub loaded_models: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_entries_per_user: 100_000,
            ignore_space: true,
            loaded_models: 8,
        }
    }
}

/// The largest `k` a prediction or completion may ask for.
pub const MAX_K: u32 = 50;
/// The most lines one `ImportHistory` call takes.
pub const MAX_IMPORT_LINES: usize = 1_000_000;

/// About what `e` takes in a reply: its strings and D-Bus's framing, generously.
fn wire_size(e: &HistoryEntry) -> usize {
    e.command.len() + e.cwd.len() + 64
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn check_command(command: &str) -> Result<()> {
    if command.trim().is_empty() {
        return Err(invalid("the command is empty"));
    }
    if command.len() > MAX_COMMAND_LEN {
        return Err(invalid(format!(
            "the command is {} bytes long; at most {MAX_COMMAND_LEN} are learned",
            command.len()
        )));
    }
    Ok(())
}

fn check_cwd(cwd: &str) -> Result<()> {
    if !cwd.is_empty() && !cwd.starts_with('/') {
        return Err(invalid(format!(
            "the working directory `{cwd}` is not an absolute path (give an empty string when unknown)"
        )));
    }
    if cwd.len() > MAX_COMMAND_LEN {
        return Err(invalid("the working directory is too long"));
    }
    Ok(())
}

fn check_k(k: u32) -> Result<usize> {
    if k == 0 || k > MAX_K {
        return Err(invalid(format!(
            "k = {k}: ask for 1 to {MAX_K} suggestions"
        )));
    }
    Ok(k as usize)
}

#[derive(Debug)]
struct Loaded {
    model: Model,
    last_use: u64,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    models: HashMap<u32, Loaded>,
    uses: u64,
}

/// The psychology dimension's state: the history database and the loaded models.
#[derive(Debug)]
pub struct Psychology {
    inner: Mutex<Inner>,
    params: Params,
    config: Config,
    database: PathBuf,
    records: AtomicU64,
    predictions: AtomicU64,
    completions: AtomicU64,
}

impl Psychology {
    /// Opens the database at `database` (created if missing).
    pub fn open(database: &Path, config: Config) -> Result<Psychology> {
        let store = Store::open(database)?;
        Ok(Self::with_store(store, database, config))
    }

    pub fn with_store(store: Store, database: &Path, config: Config) -> Psychology {
        Psychology {
            inner: Mutex::new(Inner {
                store,
                models: HashMap::new(),
                uses: 0,
            }),
            params: Params::default(),
            config,
            database: database.to_path_buf(),
            records: AtomicU64::new(0),
            predictions: AtomicU64::new(0),
            completions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with `uid`'s model, rebuilding it from the database when it is not loaded.
    fn with_model<T>(
        &self,
        inner: &mut Inner,
        uid: u32,
        f: impl FnOnce(&mut Model) -> T,
    ) -> Result<T> {
        inner.uses += 1;
        let uses = inner.uses;
        if !inner.models.contains_key(&uid) {
            let mut model = Model::new(self.params.clone());
            inner.store.for_each(uid, |e| {
                model.observe(&e.command, &e.cwd, e.exit_status == 0)
            })?;
            if inner.models.len() >= self.config.loaded_models.max(1) {
                let oldest = inner
                    .models
                    .iter()
                    .min_by_key(|(_, l)| l.last_use)
                    .map(|(&uid, _)| uid);
                if let Some(oldest) = oldest {
                    inner.models.remove(&oldest);
                }
            }
            inner.models.insert(
                uid,
                Loaded {
                    model,
                    last_use: uses,
                },
            );
        }
        match inner.models.get_mut(&uid) {
            Some(loaded) => {
                loaded.last_use = uses;
                Ok(f(&mut loaded.model))
            }
            None => Err(invalid("internal: model not loaded")),
        }
    }

    /// Learns one command `uid` ran. Committed to disk before it returns.
    pub fn record(
        &self,
        uid: u32,
        command: &str,
        cwd: &str,
        exit_status: i32,
        duration_ms: u64,
    ) -> Result<()> {
        check_command(command)?;
        check_cwd(cwd)?;
        if self.config.ignore_space && command.starts_with(' ') {
            return Ok(());
        }
        let entry = HistoryEntry {
            time_ms: now_ms(),
            command: command.to_string(),
            cwd: cwd.to_string(),
            exit_status,
            duration_ms,
        };
        let mut inner = self.lock();
        // Load first: a model rebuilt after the append would see the entry twice.
        let len = self.with_model(&mut inner, uid, |m| m.len())?;
        inner.store.append(uid, &entry)?;
        self.with_model(&mut inner, uid, |m| {
            m.observe(command, cwd, exit_status == 0)
        })?;
        self.records.fetch_add(1, Ordering::Relaxed);
        // Trim in batches (a tenth over the limit), then rebuild the model lazily.
        let max = self.config.max_entries_per_user.max(1);
        if len + 1 > max + max / 10 {
            inner.store.trim(uid, max)?;
            inner.models.remove(&uid);
        }
        Ok(())
    }

    pub fn predict(&self, uid: u32, context: &Context, k: u32) -> Result<Vec<Suggestion>> {
        let k = check_k(k)?;
        check_cwd(&context.cwd)?;
        if context.previous.len() > 16 {
            return Err(invalid("give at most 16 previous commands"));
        }
        let mut inner = self.lock();
        let query = Query {
            cwd: &context.cwd,
            previous: &context.previous,
        };
        let out = self.with_model(&mut inner, uid, |m| m.predict(query, k))?;
        self.predictions.fetch_add(1, Ordering::Relaxed);
        Ok(out.into_iter().map(suggestion).collect())
    }

    pub fn complete(&self, uid: u32, prefix: &str, k: u32) -> Result<Vec<Suggestion>> {
        let k = check_k(k)?;
        if prefix.len() > MAX_COMMAND_LEN {
            return Err(invalid("the prefix is too long"));
        }
        let mut inner = self.lock();
        let out = self.with_model(&mut inner, uid, |m| m.complete(prefix, Query::default(), k))?;
        self.completions.fetch_add(1, Ordering::Relaxed);
        Ok(out.into_iter().map(suggestion).collect())
    }

    pub fn stats(&self, uid: u32) -> Result<Stats> {
        let mut inner = self.lock();
        let (distinct, directories) =
            self.with_model(&mut inner, uid, |m| (m.distinct(), m.directories()))?;
        let entries = inner.store.count(uid)?;
        let (first_ms, last_ms) = inner.store.span(uid)?.unwrap_or((0, 0));
        let (top, failure_rate) = inner.store.top(uid, 10)?;
        Ok(Stats {
            uid,
            entries,
            distinct_commands: distinct as u64,
            directories: directories as u64,
            first_ms,
            last_ms,
            failure_rate,
            top,
        })
    }

    /// The whole history of `uid`, when one D-Bus message can carry it.
    pub fn export(&self, uid: u32) -> Result<Vec<HistoryEntry>> {
        let entries = self.lock().store.entries(uid)?;
        let bytes: usize = entries.iter().map(wire_size).sum();
        // 100 000 entries of 4 KiB commands would be 400 MB.
        if bytes > steppps::api::MAX_REPLY_BYTES {
            return Err(invalid(format!(
                "uid {uid}'s history is {:.1} MiB, more than one reply may carry; page through \
                 it with ExportPage (as `qos-ctl psychology export` does)",
                bytes as f64 / f64::from(1 << 20)
            )));
        }
        Ok(entries)
    }

    /// One page of `uid`'s history after the cursor `after`: `limit` entries (0: 1000), or
    /// fewer when they would pass [`steppps::api::MAX_REPLY_BYTES`].
    pub fn export_page(&self, uid: u32, after: u64, limit: u32) -> Result<HistoryPage> {
        let limit = match limit {
            0 => 1000,
            n => n as usize,
        };
        let mut bytes = 0;
        // An entry refused (by count or size) is one more left: the page is not the last.
        let (rows, more) = self.lock().store.entries_after(uid, after, |taken, e| {
            bytes += wire_size(e);
            taken < limit && (taken == 0 || bytes <= steppps::api::MAX_REPLY_BYTES)
        })?;
        let next = if more {
            rows.last().map_or(0, |(id, _)| *id)
        } else {
            0
        };
        Ok(HistoryPage {
            entries: rows.into_iter().map(|(_, e)| e).collect(),
            next,
        })
    }

    /// Forgets `uid`'s entries matching the GLOB `pattern`; returns how many.
    pub fn forget(&self, uid: u32, pattern: &str) -> Result<u64> {
        if pattern.is_empty() {
            return Err(invalid(
                "the pattern is empty; give a GLOB such as `*password*` (EraseAll forgets everything)",
            ));
        }
        if pattern.len() > MAX_COMMAND_LEN {
            return Err(invalid("the pattern is too long"));
        }
        let mut inner = self.lock();
        let n = inner.store.forget(uid, pattern)?;
        if n > 0 {
            inner.models.remove(&uid);
        }
        Ok(n)
    }

    pub fn erase_all(&self, uid: u32) -> Result<u64> {
        let mut inner = self.lock();
        let n = inner.store.erase(uid)?;
        inner.models.remove(&uid);
        Ok(n)
    }

    /// Learns a bash history (lines oldest first); returns how many commands were imported.
    pub fn import_history(&self, uid: u32, lines: &[String]) -> Result<u64> {
        if lines.len() > MAX_IMPORT_LINES {
            return Err(invalid(format!(
                "{} lines: import at most {MAX_IMPORT_LINES} at once",
                lines.len()
            )));
        }
        let now = now_ms();
        let entries: Vec<HistoryEntry> =
            history::parse_bash_history(lines.iter().map(String::as_str))
                .into_iter()
                .filter(|c| !(self.config.ignore_space && c.line.starts_with(' ')))
                .map(|c| HistoryEntry {
                    time_ms: c.time.map_or(now, |s| s.saturating_mul(1000)),
                    command: c.line,
                    cwd: String::new(),
                    exit_status: 0,
                    duration_ms: 0,
                })
                .collect();
        let mut inner = self.lock();
        let n = inner.store.append_all(uid, &entries)?;
        inner.models.remove(&uid);
        let max = self.config.max_entries_per_user.max(1);
        if inner.store.count(uid)? > max {
            inner.store.trim(uid, max)?;
        }
        Ok(n)
    }

    pub fn database(&self) -> &Path {
        &self.database
    }
}

fn suggestion(s: model::Scored) -> Suggestion {
    Suggestion {
        command: s.command,
        score: s.score,
        reason: s.reason,
    }
}

impl Vitals for Psychology {
    fn health(&self) -> (bool, String) {
        let inner = self.lock();
        match inner.store.users() {
            Ok(users) => (
                true,
                format!(
                    "learning from {users} user{}; history in {}",
                    if users == 1 { "" } else { "s" },
                    self.database.display()
                ),
            ),
            Err(e) => (false, format!("cannot read the history database: {e}")),
        }
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let loaded = self.lock().models.len();
        HashMap::from([
            (
                "records".into(),
                self.records.load(Ordering::Relaxed) as f64,
            ),
            (
                "predictions".into(),
                self.predictions.load(Ordering::Relaxed) as f64,
            ),
            (
                "completions".into(),
                self.completions.load(Ordering::Relaxed) as f64,
            ),
            ("models_loaded".into(), loaded as f64),
        ])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn psy(config: Config) -> Psychology {
        Psychology::with_store(Store::in_memory().unwrap(), Path::new(":memory:"), config)
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let p = psy(Config::default());
        let bad = |r: Result<()>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad(p.record(1, "  ", "", 0, 0)).contains("empty"));
        assert!(bad(p.record(1, "ls", "relative/dir", 0, 0)).contains("absolute"));
        assert!(bad(p.record(1, &"x".repeat(5000), "", 0, 0)).contains("4096"));
        assert!(matches!(
            p.predict(1, &Context::default(), 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            p.complete(1, "l", 51),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(p.forget(1, ""), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn record_predict_forget_erase() {
        let p = psy(Config::default());
        for _ in 0..3 {
            p.record(1000, "make", "/src", 0, 10).unwrap();
            p.record(1000, "./test --all", "/src", 0, 10).unwrap();
        }
        p.record(1000, "make", "/src", 0, 10).unwrap();
        let ctx = Context {
            cwd: "/src".into(),
            previous: vec![],
        };
        assert_eq!(p.predict(1000, &ctx, 1).unwrap()[0].command, "./test --all");
        assert!(
            p.predict(1001, &ctx, 3).unwrap().is_empty(),
            "other users see nothing"
        );
        assert_eq!(
            p.complete(1000, "./", 3).unwrap()[0].command,
            "./test --all"
        );
        assert_eq!(p.stats(1000).unwrap().entries, 7);
        assert_eq!(p.forget(1000, "./test*").unwrap(), 3);
        assert!(p.complete(1000, "./", 3).unwrap().is_empty());
        assert_eq!(p.erase_all(1000).unwrap(), 4);
        assert_eq!(p.stats(1000).unwrap().entries, 0);
    }

    #[test]
    fn space_prefixed_commands_are_not_learned() {
        let p = psy(Config::default());
        p.record(5, " export SECRET=1", "", 0, 0).unwrap();
        assert_eq!(p.stats(5).unwrap().entries, 0);
    }

    #[test]
    fn history_is_trimmed_to_the_limit() {
        let p = psy(Config {
            max_entries_per_user: 10,
            ..Config::default()
        });
        for i in 0..30 {
            p.record(9, &format!("cmd {i}"), "", 0, 0).unwrap();
        }
        let n = p.stats(9).unwrap().entries;
        assert!((10..=11).contains(&n), "{n}");
        assert_eq!(p.export(9).unwrap().last().unwrap().command, "cmd 29");
    }

    #[test]
    fn import_reads_bash_history() {
        let p = psy(Config::default());
        let lines: Vec<String> = ["#1700000000", "ls", "", " secret", "git log"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(p.import_history(3, &lines).unwrap(), 2);
        let all = p.export(3).unwrap();
        assert_eq!(all[0].time_ms, 1_700_000_000_000);
        assert_eq!(all[1].command, "git log");
    }
}
