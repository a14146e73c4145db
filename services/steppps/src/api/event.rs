//! `org.quantumos.Event1`: system events, the tamper-evident audit chain, correlation rules.
//!
//! Severities are syslog's, by name: `emerg`, `alert`, `crit`, `err`, `warning`, `notice`,
//! `info`, `debug` (0 … 7). Hashes are lower-case hex.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// One record of the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct EventRecord {
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub time_usec: u64,
    pub source: String,
    pub kind: String,
    pub severity: String,
    pub fields: HashMap<String, String>,
    pub hash: String,
}

/// What `Query` selects. Empty strings and zeros mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Type)]
pub struct EventFilter {
    /// Only records after this sequence number (the paging cursor going forward).
    pub after_seq: u64,
    /// Only records before this sequence number (0: no bound; the cursor going back).
    pub before_seq: u64,
    pub since_usec: u64,
    pub until_usec: u64,
    /// Exact source, or a prefix ending in `*`.
    pub source: String,
    /// Exact kind, or a prefix ending in `*`.
    pub kind: String,
    /// Only this severity and more severe ones (`warning` gives warning, err, crit, …).
    pub severity: String,
    /// Every listed field must match (a value ending in `*` matches a prefix).
    pub fields: HashMap<String, String>,
    /// Page size; 0 means 100, at most 10000 (and at most 16 MiB: `more` says when that cut it).
    pub limit: u32,
    /// The last `limit` matches instead of the first ones (still in chain order).
    pub newest: bool,
}

/// A page of `Query` results, in chain order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct EventPage {
    pub records: Vec<EventRecord>,
    /// Whether more records match beyond this page (after it, or before it with `newest`).
    pub more: bool,
}

/// `Verify`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct VerifyResult {
    pub ok: bool,
    pub records: u64,
    pub blocks: u64,
    pub signed_blocks: u64,
    pub segments: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// `""` when ok; else `bad-record`, `bad-seal`, `bad-segment`, `truncated`, `bad-head`.
    pub problem: String,
    /// The first bad record's sequence number (0 when the problem is not one record).
    pub bad_seq: u64,
    /// The problem in words, naming the record, segment and byte.
    pub message: String,
    pub notes: Vec<String>,
}

/// `Stats`: counters of capture, chain and rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct EventStats {
    pub head_seq: u64,
    pub head_hash: String,
    pub segment: u64,
    pub blocks_sealed: u64,
    pub bytes_written: u64,
    /// `batch`, `interval:<ms>` or `none`.
    pub fsync: String,
    pub signing: bool,
    /// Events captured per source since start.
    pub captured: HashMap<String, u64>,
    /// Events shed per reason since start (`queue full: journal`, `invalid: …`).
    pub shed: HashMap<String, u64>,
    /// Each source's state: `on`, `off`, or why it is not running.
    pub sources: HashMap<String, String>,
    pub rules: u32,
    pub rules_source: String,
    pub actions_taken: u64,
    pub actions_failed: u64,
}

#[proxy(
    interface = "org.quantumos.Event1",
    default_service = "org.quantumos.Event1",
    default_path = "/org/quantumos/Event1"
)]
pub trait Event1 {
    /// Records an event; returns its sequence number once it is committed to the chain.
    /// Needs uid 0 or `org.quantumos.event.emit`.
    fn emit(
        &self,
        source: &str,
        kind: &str,
        severity: &str,
        fields: HashMap<String, String>,
    ) -> zbus::Result<u64>;
    fn query(&self, filter: EventFilter) -> zbus::Result<EventPage>;
    /// Verifies the whole chain on disk.
    fn verify(&self) -> zbus::Result<VerifyResult>;
    fn stats(&self) -> zbus::Result<EventStats>;
    /// Reloads the rules directory; on error the previous rules stay. Needs uid 0 or
    /// `org.quantumos.event.reload`.
    fn reload_rules(&self) -> zbus::Result<u32>;

    /// Sends `Captured` from now until `unsubscribe` or until this connection closes.
    fn subscribe(&self) -> zbus::Result<()>;
    fn unsubscribe(&self) -> zbus::Result<()>;

    /// A record was committed to the chain (sent while some client has subscribed).
    #[zbus(signal)]
    fn captured(&self, record: EventRecord) -> zbus::Result<()>;
    /// A rule raised an alert (also in the chain and the journal).
    #[zbus(signal)]
    fn alert(&self, rule: &str, message: &str, seq: u64) -> zbus::Result<()>;
}
