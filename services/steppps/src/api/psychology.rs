//! `org.quantumos.Psychology1`: learns from the commands a user runs and predicts the next one
//! or completes a prefix.
//!
//! Every call works on the model of the calling user (the uid the bus vouches for); no call
//! reads or changes another user's data except `Export` of another uid, which needs root or
//! the polkit action `org.quantumos.psychology.inspect`.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// What the user is doing now: where, and what came just before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Context {
    /// The shell's working directory (absolute); empty when unknown.
    pub cwd: String,
    /// The commands run just before, oldest first (the last one is the most recent). Empty:
    /// the daemon uses the last commands the user recorded.
    pub previous: Vec<String>,
}

/// One proposed command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Suggestion {
    pub command: String,
    /// The model's score, higher is better; comparable only within one answer.
    pub score: f64,
    /// What weighed most, in words: `follows "make"`, `often in /src`, `frequent`, `recent`.
    pub reason: String,
}

/// What the daemon knows about the calling user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct Stats {
    pub uid: u32,
    /// Commands recorded (and not forgotten).
    pub entries: u64,
    /// Distinct command lines.
    pub distinct_commands: u64,
    /// Distinct working directories.
    pub directories: u64,
    /// Milliseconds since the Unix epoch of the first and last entry; 0 when there is none.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Share of recorded commands that exited with a non-zero status.
    pub failure_rate: f64,
    /// The most used command lines with their counts, most used first (10 at most).
    pub top: Vec<(String, u64)>,
}

/// One recorded command, as `Export` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct HistoryEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub command: String,
    /// Empty when the recorder did not know it.
    pub cwd: String,
    pub exit_status: i32,
    pub duration_ms: u64,
}

/// One page of `ExportPage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// The cursor for the next page (its `after`); 0 when this page is the last.
    pub next: u64,
}

/// The proxy for `org.quantumos.Psychology1`.
#[proxy(
    interface = "org.quantumos.Psychology1",
    default_service = "org.quantumos.Psychology1",
    default_path = "/org/quantumos/Psychology1"
)]
pub trait Psychology1 {
    /// Learns one command the caller ran (a shell calls it after each command).
    fn record(
        &self,
        command: &str,
        cwd: &str,
        exit_status: i32,
        duration_ms: u64,
    ) -> zbus::Result<()>;
    /// The `k` most likely next commands (1 ≤ k ≤ 50).
    fn predict(&self, context: &Context, k: u32) -> zbus::Result<Vec<Suggestion>>;
    /// The `k` most likely command lines starting with `prefix` (1 ≤ k ≤ 50).
    fn complete(&self, prefix: &str, k: u32) -> zbus::Result<Vec<Suggestion>>;
    fn stats(&self) -> zbus::Result<Stats>;
    /// Every entry of user `uid`, oldest first. Another user's needs root or polkit. A
    /// history too large for one D-Bus message is refused: page through it with `ExportPage`.
    fn export(&self, uid: u32) -> zbus::Result<Vec<HistoryEntry>>;
    /// User `uid`'s entries after the cursor `after` (0: from the first), oldest first: at
    /// most `limit` (0 means 1000), fewer when the page would pass 16 MiB.
    fn export_page(&self, uid: u32, after: u64, limit: u32) -> zbus::Result<HistoryPage>;
    /// Forgets every entry whose command line matches `pattern` (SQLite GLOB: `*`, `?`,
    /// `[a-z]`; case-sensitive; the whole line must match). Returns how many.
    fn forget(&self, pattern: &str) -> zbus::Result<u64>;
    /// Forgets everything about the caller. Returns how many entries were erased.
    fn erase_all(&self) -> zbus::Result<u64>;
    /// Learns a shell history (`~/.bash_history` lines, oldest first; `#<epoch>` lines give
    /// the time of the next command). Returns how many commands were imported.
    fn import_history(&self, lines: &[&str]) -> zbus::Result<u64>;
}
