//! The QuantumOS PROMPT dimension: turns a request in natural language into ranked, safe,
//! runnable shell commands, offline. A sentence-embedding model ([`model`]) places the request
//! next to the phrasings of a build-time command catalog ([`catalog`]); the nearest intents
//! have their placeholders filled from the request and shell-quoted ([`slots`]), are re-ranked
//! ([`rank`]) and carry a risk class ([`risk`]). No D-Bus types here: `bus.rs` is the edge,
//! and qsh uses this library in-process with `--offline`.

pub mod bus;
pub mod catalog;
mod entry;
pub mod model;
pub mod rank;
pub mod risk;
pub mod slots;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steppps::daemon::Vitals;
use steppps::error::Error;

pub use rank::{Engine, Suggestion};
pub use risk::Risk;

/// Requests longer than this are refused (a sentence, not a document).
pub const MAX_REQUEST_BYTES: usize = 2048;
/// At most this many suggestions per request.
pub const MAX_RESULTS: u32 = 20;

/// `/etc/quantumos/prompt.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Model directory (config.json, tokenizer.json, model.safetensors).
    pub model_dir: Option<PathBuf>,
    /// Built catalog directory (catalog.json, catalog.emb).
    pub catalog_dir: Option<PathBuf>,
    /// Unload the model after this many seconds without a request (0: never).
    pub idle_unload_sec: u64,
    /// Log request texts (off by default: what people type is private).
    pub log_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            model_dir: None,
            catalog_dir: None,
            idle_unload_sec: 300,
            log_requests: false,
        }
    }
}

/// Cleans a request: refuses empty and oversized text, turns control characters into spaces.
pub fn sanitize(text: &str) -> Result<String, Error> {
    if text.len() > MAX_REQUEST_BYTES {
        return Err(Error::InvalidArgument(format!(
            "request too long ({} bytes; at most {MAX_REQUEST_BYTES}): ask in one sentence",
            text.len()
        )));
    }
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        return Err(Error::InvalidArgument(
            "empty request: say what you want to do".into(),
        ));
    }
    Ok(cleaned)
}

/// Lossy decoding for byte input (qsh, the command line): invalid UTF-8 becomes U+FFFD.
pub fn from_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The dimension's state: the engine, loaded on first use and dropped when idle.
#[derive(Debug)]
pub struct Prompt {
    model_dir: PathBuf,
    catalog_dir: PathBuf,
    idle: Duration,
    engine: Mutex<Option<Arc<Engine>>>,
    last_used: Mutex<Instant>,
    stats: Mutex<Stats>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    requests: u64,
    no_suggestion: u64,
    loads: u64,
    last_load_ms: f64,
    last_error: Option<String>,
}

impl Prompt {
    pub fn new(config: &Config) -> Self {
        Self {
            model_dir: config
                .model_dir
                .clone()
                .unwrap_or_else(model::default_model_dir),
            catalog_dir: config
                .catalog_dir
                .clone()
                .unwrap_or_else(catalog::default_catalog_dir),
            idle: Duration::from_secs(config.idle_unload_sec),
            engine: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            stats: Mutex::new(Stats::default()),
        }
    }

    pub fn with_dirs(model_dir: &Path, catalog_dir: &Path) -> Self {
        Self::new(&Config {
            model_dir: Some(model_dir.to_path_buf()),
            catalog_dir: Some(catalog_dir.to_path_buf()),
            ..Config::default()
        })
    }

    /// The engine, loading it if needed.
    pub fn engine(&self) -> Result<Arc<Engine>, Error> {
        *lock(&self.last_used) = Instant::now();
        let mut slot = lock(&self.engine);
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let start = Instant::now();
        match Engine::load(&self.model_dir, &self.catalog_dir) {
            Ok(e) => {
                let e = Arc::new(e);
                *slot = Some(e.clone());
                let mut s = lock(&self.stats);
                s.loads += 1;
                s.last_load_ms = start.elapsed().as_secs_f64() * 1e3;
                s.last_error = None;
                Ok(e)
            }
            Err(err) => {
                let msg = format!("{err:#}");
                lock(&self.stats).last_error = Some(msg.clone());
                Err(Error::Failed(format!(
                    "cannot load the prompt model: {msg}"
                )))
            }
        }
    }

    /// Ranked suggestions for `text` (empty: no confident suggestion).
    pub fn translate(
        &self,
        text: &str,
        max: u32,
        cwd: Option<&Path>,
    ) -> Result<Vec<Suggestion>, Error> {
        let text = sanitize(text)?;
        let max = max.clamp(1, MAX_RESULTS) as usize;
        let engine = self.engine()?;
        let out = engine
            .translate(&text, max, cwd)
            .map_err(|e| Error::Failed(format!("translation failed: {e:#}")))?;
        let mut s = lock(&self.stats);
        s.requests += 1;
        if out.is_empty() {
            s.no_suggestion += 1;
        }
        Ok(out)
    }

    /// What a command line does.
    pub fn explain(&self, command: &str) -> Result<rank::Explanation, Error> {
        if command.len() > MAX_REQUEST_BYTES * 4 {
            return Err(Error::InvalidArgument(format!(
                "command too long ({} bytes; at most {})",
                command.len(),
                MAX_REQUEST_BYTES * 4
            )));
        }
        if command.trim().is_empty() {
            return Err(Error::InvalidArgument("empty command".into()));
        }
        let engine = self.engine()?;
        Ok(engine.explain(command))
    }

    /// Drops the engine and loads it again from disk (a rebuilt catalog, an updated model).
    pub fn reload(&self) -> Result<(), Error> {
        *lock(&self.engine) = None;
        self.engine().map(|_| ())
    }

    /// Drops the engine when it was not used for the idle time; true when it did.
    pub fn unload_if_idle(&self) -> bool {
        if self.idle.is_zero() || lock(&self.last_used).elapsed() < self.idle {
            return false;
        }
        lock(&self.engine).take().is_some()
    }

    pub fn loaded(&self) -> bool {
        lock(&self.engine).is_some()
    }

    pub fn idle_interval(&self) -> Duration {
        self.idle
    }
}

impl Vitals for Prompt {
    fn health(&self) -> (bool, String) {
        let s = lock(&self.stats).clone();
        if let Some(e) = s.last_error {
            return (false, e);
        }
        let files_ok = model::MODEL_FILES
            .iter()
            .all(|f| self.model_dir.join(f).is_file())
            && self.catalog_dir.join("catalog.json").is_file();
        if !files_ok {
            return (
                false,
                format!(
                    "model or catalog missing under {} / {}",
                    self.model_dir.display(),
                    self.catalog_dir.display()
                ),
            );
        }
        let state = if self.loaded() {
            "loaded"
        } else {
            "not loaded (loads on first request)"
        };
        (true, format!("model {state}; {} requests", s.requests))
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let s = lock(&self.stats).clone();
        HashMap::from([
            ("requests".into(), s.requests as f64),
            ("no_suggestion".into(), s.no_suggestion as f64),
            ("model_loads".into(), s.loads as f64),
            ("last_load_ms".into(), s.last_load_ms),
            ("model_loaded".into(), f64::from(u8::from(self.loaded()))),
        ])
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_refused_clearly() {
        assert!(matches!(sanitize(""), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            sanitize(" \t\n\u{7}"),
            Err(Error::InvalidArgument(_))
        ));
        let big = "a".repeat(1 << 20);
        assert!(matches!(sanitize(&big), Err(Error::InvalidArgument(m)) if m.contains("too long")));
        assert_eq!(
            sanitize("list\u{1b}[31m files\0 here").ok().as_deref(),
            Some("list [31m files here")
        );
        assert_eq!(
            from_bytes(b"list \xff\xfe files"),
            "list \u{fffd}\u{fffd} files"
        );
    }

    #[test]
    fn missing_model_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Prompt::with_dirs(dir.path(), dir.path());
        assert!(
            matches!(p.translate("list files", 3, None), Err(Error::Failed(m)) if m.contains("missing"))
        );
        assert!(!p.health().0);
    }
}
