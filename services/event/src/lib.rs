//! The EVENT dimension: captures what happens on the system (the journal, systemd unit state
//! changes, kernel device events, the bus presence of the STEPPPS daemons, and events other
//! daemons send), writes it to a tamper-evident audit chain ([`chain`]), matches correlation
//! rules ([`rules`]) and carries out their self-healing actions. No D-Bus types here beyond
//! the wire structs of [`steppps::api::event`]; [`bus`] serves them as `org.quantumos.Event1`.
//!
//! Capture path: every source puts [`Pending`] events on one bounded queue. One writer thread
//! takes them in batches, appends a batch to the chain, commits it (seal, write, fsync per
//! policy), and only then acknowledges `Emit` callers, feeds the rules and publishes the
//! records for the `Captured` signal. A batch nobody waits for (no `Emit` caller, nothing of
//! severity warning or worse) is held up to `commit_delay_ms` for more to join it: one seal,
//! signature and fsync then covers a burst instead of each event of it. A source that would
//! overflow the queue sheds, and every shed event is counted with its reason in `Stats`;
//! `Emit` and the journal wait instead.

pub mod actions;
pub mod bus;
pub mod chain;
mod entry;
pub mod rules;
pub mod sources;
pub mod subscribers;

/// Runs the daemon with these command-line arguments (the first is its name).
pub use entry::main;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use steppps::api::event::{EventFilter, EventPage, EventRecord, EventStats, VerifyResult};
use steppps::daemon::Vitals;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{info, warn};

use crate::chain::{AuditChain, ChainOptions, Entry, FsyncPolicy, OpenReport, Record};
use crate::rules::{ActionRequest, RuleEngine, parse_severity, severity_name};
use crate::subscribers::Subscribers;

/// `fsync` in event.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncSetting {
    /// Every batch is fsync'ed before it is acknowledged (survives power loss).
    Batch,
    /// At most every `fsync_interval_ms` (power loss may lose that window).
    Interval,
    /// Never (survives a crash of the daemon, not power loss).
    None,
}

/// Which sources run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// The systemd journal, followed with `journalctl -o json --follow`, cursor kept.
    pub journal: bool,
    /// Unit state changes from systemd's D-Bus API (when systemd is on the bus).
    pub units: bool,
    /// Kernel device events (netlink uevents).
    pub udev: bool,
    /// STEPPPS daemons appearing on and leaving the bus.
    pub bus: bool,
    /// Process fork, exec and exit from the steppps kernel module (/dev/steppps).
    pub process: bool,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            journal: true,
            units: true,
            udev: true,
            bus: true,
            process: true,
        }
    }
}

/// `/etc/quantumos/event.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub fsync: FsyncSetting,
    pub fsync_interval_ms: u64,
    /// Sign every block seal with the ed25519 key in the state directory.
    pub sign: bool,
    pub max_block_records: usize,
    pub max_segment_mib: u64,
    /// Segments kept (0: all); older ones are deleted, the deletion recorded in the chain.
    pub max_segments: usize,
    /// The most of its file system the chain may take, in percent (0: no limit), as
    /// journald's `SystemMaxUse=` defaults to 10 %: older segments are deleted, recorded.
    pub max_use_percent: u8,
    /// Events waiting for the writer; sources that find it full shed (counted).
    pub queue_capacity: usize,
    /// Most events appended per commit.
    pub max_batch: usize,
    /// How long a batch nobody waits for may wait for more events before it is committed
    /// (0: at once). `Emit` and events of severity warning or worse are committed at once.
    pub commit_delay_ms: u64,
    /// Rules directories, later ones overriding files of the same name in earlier ones.
    pub rules_dirs: Vec<PathBuf>,
    /// Most actions (restarts, stops, alerts) per minute, all rules together.
    pub max_actions_per_minute: u32,
    pub sources: SourcesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fsync: FsyncSetting::Batch,
            fsync_interval_ms: 1000,
            sign: true,
            max_block_records: 4096,
            max_segment_mib: 64,
            max_segments: 0,
            max_use_percent: 10,
            queue_capacity: 65536,
            max_batch: 8192,
            commit_delay_ms: 100,
            rules_dirs: vec![
                PathBuf::from("/usr/share/quantumos/event.d"),
                PathBuf::from("/etc/quantumos/event.d"),
            ],
            max_actions_per_minute: 30,
            sources: SourcesConfig::default(),
        }
    }
}

impl Config {
    pub fn fsync_policy(&self) -> FsyncPolicy {
        match self.fsync {
            FsyncSetting::Batch => FsyncPolicy::EveryCommit,
            FsyncSetting::Interval => {
                FsyncPolicy::Interval(Duration::from_millis(self.fsync_interval_ms))
            }
            FsyncSetting::None => FsyncPolicy::Never,
        }
    }

    fn fsync_label(&self) -> String {
        match self.fsync {
            FsyncSetting::Batch => "batch".into(),
            FsyncSetting::Interval => format!("interval:{}ms", self.fsync_interval_ms),
            FsyncSetting::None => "none".into(),
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.queue_capacity > 0, "queue_capacity must be at least 1");
        anyhow::ensure!(self.max_batch > 0, "max_batch must be at least 1");
        anyhow::ensure!(
            self.commit_delay_ms <= MAX_COMMIT_DELAY_MS,
            "commit_delay_ms must be at most {MAX_COMMIT_DELAY_MS}"
        );
        anyhow::ensure!(
            self.max_block_records > 0,
            "max_block_records must be at least 1"
        );
        anyhow::ensure!(
            self.max_segment_mib > 0,
            "max_segment_mib must be at least 1"
        );
        anyhow::ensure!(
            self.max_use_percent <= 100,
            "max_use_percent must be 0 (no limit) to 100"
        );
        Ok(())
    }
}

/// Events held longer than this would be lost in numbers at a crash and show up late in
/// queries and `Captured`.
pub const MAX_COMMIT_DELAY_MS: u64 = 10_000;

/// Events of this severity (warning) or worse are committed at once, as journald syncs at
/// once for crit and worse: the rules react to failures (`unit.failed` is err, an unclean
/// `dimension.vanished` a warning), and a failure is what must not be lost.
const URGENT_SEVERITY: u8 = 4;

/// Answers an `Emit` caller with the record's seq once committed, or why not.
pub type Ack = oneshot::Sender<Result<u64, String>>;

/// An event on its way to the chain.
#[derive(Debug)]
pub struct Pending {
    pub entry: Entry,
    /// Answered with the record's seq once committed (`Emit`).
    pub ack: Option<Ack>,
    /// The journal cursor of this entry: persisted once the entry is committed.
    pub journal_cursor: Option<String>,
}

impl Pending {
    pub fn new(entry: Entry) -> Pending {
        Pending {
            entry,
            ack: None,
            journal_cursor: None,
        }
    }

    /// Whether the batch holding this event must be committed without waiting for more:
    /// someone waits for its acknowledgement, or it reports a failure.
    fn is_urgent(&self) -> bool {
        self.ack.is_some() || self.entry.severity <= URGENT_SEVERITY
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The dimension's state.
#[derive(Debug)]
pub struct EventLog {
    config: Config,
    chain: Mutex<AuditChain>,
    chain_dir: PathBuf,
    verifying_key: Option<VerifyingKey>,
    tx: mpsc::Sender<Pending>,
    captured: Mutex<HashMap<String, u64>>,
    shed: Mutex<HashMap<String, u64>>,
    sources: Mutex<HashMap<String, String>>,
    rules: Mutex<RuleEngine>,
    actions_taken: AtomicU64,
    actions_failed: AtomicU64,
    write_error: Mutex<Option<String>>,
    journal_cursor: Mutex<Option<String>>,
    /// Set at stop: the writer no longer holds batches for more events.
    stopping: AtomicBool,
    /// Wakes a writer that is holding a batch when `stopping` is set.
    stop_holding: Notify,
    open_report: OpenReport,
    /// Who asked for `Captured`: nobody at first.
    pub subscribers: Subscribers,
}

/// The receiving ends the daemon wires up: the writer's queue, committed records (for
/// `Captured`), and action requests (for the executor).
#[derive(Debug)]
pub struct Channels {
    pub queue: mpsc::Receiver<Pending>,
    pub committed: mpsc::Receiver<Vec<Record>>,
    pub committed_tx: mpsc::Sender<Vec<Record>>,
    pub actions: mpsc::Receiver<ActionRequest>,
    pub actions_tx: mpsc::Sender<ActionRequest>,
}

impl EventLog {
    /// Opens the chain under `state_dir/chain` (creating the signing key when signing is on),
    /// and loads the rules (a bad rules file is logged and leaves no rules: the daemon still
    /// captures).
    pub fn open(config: Config, state_dir: &Path) -> anyhow::Result<(Arc<EventLog>, Channels)> {
        config.validate()?;
        let chain_dir = state_dir.join("chain");
        let signing_key = if config.sign {
            let path = state_dir.join("signing.key");
            let (key, created) = chain::keys::load_or_create(&path)
                .with_context(|| format!("signing key {}", path.display()))?;
            if created {
                info!("created the chain signing key {}", path.display());
            }
            Some(key)
        } else {
            None
        };
        let verifying_key = signing_key.as_ref().map(|k| k.verifying_key());
        let max_use = max_use_bytes(state_dir, config.max_use_percent);
        let segment = segment_bytes(config.max_segment_mib << 20, max_use);
        if max_use > 0 {
            info!(
                "the chain keeps at most {} MiB ({} % of its file system), in segments of {} MiB",
                max_use >> 20,
                config.max_use_percent,
                segment >> 20
            );
        }
        let options = ChainOptions {
            max_block_records: config.max_block_records,
            max_segment_bytes: segment,
            max_segments: config.max_segments,
            max_use_bytes: max_use,
            fsync: config.fsync_policy(),
            signing_key,
            head_interval: Duration::from_millis(config.fsync_interval_ms.max(100)),
        };
        let (chain, open_report) = AuditChain::open(&chain_dir, options)
            .with_context(|| format!("cannot open the audit chain in {}", chain_dir.display()))?;
        if let Some(t) = &open_report.torn_tail {
            warn!(
                "torn tail in {}: cut {} bytes at byte {} ({})",
                t.segment.display(),
                t.bytes_cut,
                t.offset,
                t.reason
            );
        }
        for q in &open_report.quarantined {
            warn!(
                "damaged segment set aside as {} ({}); a new segment was started",
                q.moved_to.display(),
                q.reason
            );
        }
        let (tx, queue) = mpsc::channel(config.queue_capacity);
        let (committed_tx, committed) = mpsc::channel(256);
        let (actions_tx, actions) = mpsc::channel(256);
        let log = Arc::new(EventLog {
            chain: Mutex::new(chain),
            chain_dir,
            verifying_key,
            tx,
            captured: Mutex::default(),
            shed: Mutex::default(),
            sources: Mutex::default(),
            rules: Mutex::new(RuleEngine::default()),
            actions_taken: AtomicU64::new(0),
            actions_failed: AtomicU64::new(0),
            write_error: Mutex::new(None),
            journal_cursor: Mutex::new(None),
            stopping: AtomicBool::new(false),
            stop_holding: Notify::new(),
            open_report,
            subscribers: Subscribers::default(),
            config,
        });
        if let Err(e) = log.reload_rules() {
            warn!("no rules loaded: {e}");
        }
        let channels = Channels {
            queue,
            committed,
            committed_tx,
            actions,
            actions_tx,
        };
        Ok((log, channels))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn chain_dir(&self) -> &Path {
        &self.chain_dir
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Reloads the rules directories. On error the rules in force stay, and the error names
    /// the file and line.
    pub fn reload_rules(&self) -> Result<usize, rules::RulesError> {
        let loaded = rules::load_dirs(&self.config.rules_dirs)?;
        let origin = self
            .config
            .rules_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let n = loaded.len();
        *lock(&self.rules) = RuleEngine::new(loaded, origin);
        info!("{n} rules loaded");
        Ok(n)
    }

    /// Sets what `Stats` says about a source.
    pub fn set_source_state(&self, source: &str, state: impl Into<String>) {
        lock(&self.sources).insert(source.to_string(), state.into());
    }

    /// Counts an event that was not stored, and why.
    pub fn count_shed(&self, reason: &str) {
        *lock(&self.shed).entry(reason.to_string()).or_default() += 1;
    }

    /// Counts `n` events that were not stored, and why (a kernel buffer's overflow).
    pub fn count_shed_many(&self, reason: &str, n: u64) {
        *lock(&self.shed).entry(reason.to_string()).or_default() += n;
    }

    /// Queues an event from a source without waiting: when the queue is full the event is
    /// shed and counted (`queue full: <source>`). Returns whether it was queued.
    pub fn offer(&self, pending: Pending) -> bool {
        let source = pending.entry.source.clone();
        match self.tx.try_send(pending) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.count_shed(&format!("queue full: {source}"));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.count_shed(&format!("stopping: {source}"));
                false
            }
        }
    }

    /// Queues an event, waiting for room (the source slows down instead of losing events).
    pub async fn queue(&self, pending: Pending) -> Result<(), String> {
        self.tx
            .send(pending)
            .await
            .map_err(|_| "the event daemon is stopping".to_string())
    }

    /// Queues an event from a thread outside the runtime, waiting for room.
    pub fn queue_blocking(&self, pending: Pending) -> Result<(), String> {
        self.tx
            .blocking_send(pending)
            .map_err(|_| "the event daemon is stopping".to_string())
    }

    /// Stores an event and returns its seq once it is committed to the chain.
    pub async fn submit(&self, entry: Entry) -> Result<u64, String> {
        let (ack, answer) = oneshot::channel();
        self.queue(Pending {
            entry,
            ack: Some(ack),
            journal_cursor: None,
        })
        .await?;
        answer
            .await
            .map_err(|_| "the event was not committed (the writer stopped)".to_string())?
    }

    /// Builds an entry from `Emit`'s arguments, or says what is wrong with them.
    pub fn entry_from_emit(
        &self,
        source: &str,
        kind: &str,
        severity: &str,
        fields: HashMap<String, String>,
    ) -> Result<Entry, String> {
        let severity = if severity.is_empty() {
            6
        } else {
            parse_severity(severity).ok_or_else(|| {
                format!(
                    "unknown severity `{severity}`; use one of {}",
                    rules::SEVERITIES.join(", ")
                )
            })?
        };
        if source == "rules" || source == "chain" {
            return Err(format!(
                "source `{source}` is reserved for the event daemon's own records"
            ));
        }
        let mut fields: Vec<(String, String)> = fields.into_iter().collect();
        fields.sort();
        let entry = Entry {
            time_usec: chain::now_usec(),
            severity,
            source: source.to_string(),
            kind: kind.to_string(),
            fields,
        };
        entry.validate().map_err(|e| e.to_string())?;
        Ok(entry)
    }

    /// The writer: takes batches from the queue until it closes, appends and commits them,
    /// then acknowledges, runs the rules and publishes. Runs on its own thread (file I/O and
    /// fsync must not stall the bus), with a runtime of its own for the commit delay's timer.
    pub fn run_writer(
        self: &Arc<Self>,
        queue: mpsc::Receiver<Pending>,
        committed: mpsc::Sender<Vec<Record>>,
        actions: mpsc::Sender<ActionRequest>,
    ) {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime.block_on(self.write_until_closed(queue, &committed, &actions)),
            Err(e) => {
                let message = format!("cannot start the chain writer: {e}");
                warn!("{message}");
                *lock(&self.write_error) = Some(message);
            }
        }
        let _ = lock(&self.chain).commit();
    }

    async fn write_until_closed(
        &self,
        mut queue: mpsc::Receiver<Pending>,
        committed: &mpsc::Sender<Vec<Record>>,
        actions: &mpsc::Sender<ActionRequest>,
    ) {
        let delay = Duration::from_millis(self.config.commit_delay_ms);
        let mut batch: Vec<Pending> = Vec::with_capacity(self.config.max_batch);
        while let Some(first) = queue.recv().await {
            let mut urgent = first.is_urgent();
            batch.push(first);
            urgent |= self.take_queued(&mut queue, &mut batch);
            if !delay.is_zero() && !self.stopping.load(Ordering::Acquire) {
                let deadline = tokio::time::Instant::now() + delay;
                while !urgent && batch.len() < self.config.max_batch {
                    tokio::select! {
                        more = queue.recv() => match more {
                            Some(p) => {
                                urgent |= p.is_urgent();
                                batch.push(p);
                                urgent |= self.take_queued(&mut queue, &mut batch);
                            }
                            None => break,
                        },
                        () = tokio::time::sleep_until(deadline) => break,
                        () = self.stop_holding.notified() => break,
                    }
                }
            }
            self.write_batch(&mut batch, committed, actions);
        }
    }

    /// Moves what is queued into the batch, up to `max_batch`; whether any of it is urgent.
    fn take_queued(&self, queue: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) -> bool {
        let mut urgent = false;
        while batch.len() < self.config.max_batch {
            match queue.try_recv() {
                Ok(p) => {
                    urgent |= p.is_urgent();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        urgent
    }

    /// From now on the writer commits what it takes without waiting for more, and what it
    /// holds is committed now (at stop, so that nothing queued is left behind).
    pub fn commit_without_delay(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop_holding.notify_one();
    }

    fn write_batch(
        &self,
        batch: &mut Vec<Pending>,
        committed: &mpsc::Sender<Vec<Record>>,
        actions: &mpsc::Sender<ActionRequest>,
    ) {
        let mut records = Vec::with_capacity(batch.len());
        let mut acks: Vec<(Ack, Result<u64, String>)> = Vec::new();
        let mut cursor = None;
        let commit = {
            let mut chain = lock(&self.chain);
            for p in batch.drain(..) {
                let result = match chain.append(&p.entry) {
                    Ok(receipt) => {
                        if p.journal_cursor.is_some() {
                            cursor = p.journal_cursor;
                        }
                        let Entry {
                            time_usec,
                            severity,
                            source,
                            kind,
                            fields,
                        } = p.entry;
                        records.push(Record {
                            seq: receipt.seq,
                            time_usec,
                            severity,
                            source,
                            kind,
                            fields,
                            prev_hash: [0; 32],
                            hash: receipt.hash,
                        });
                        Ok(receipt.seq)
                    }
                    Err(e) => {
                        self.count_shed(&format!("invalid: {}", p.entry.source));
                        Err(e.to_string())
                    }
                };
                if let Some(ack) = p.ack {
                    acks.push((ack, result));
                }
            }
            chain.commit()
        };
        if let Err(e) = commit {
            let message = format!("cannot write the audit chain: {e}");
            warn!("{message}");
            *lock(&self.write_error) = Some(message.clone());
            *lock(&self.shed).entry("write failed".into()).or_default() += records.len() as u64;
            for (ack, _) in acks {
                let _ = ack.send(Err(message.clone()));
            }
            return;
        }
        if lock(&self.write_error).is_some() {
            *lock(&self.write_error) = None;
        }
        {
            let mut captured = lock(&self.captured);
            let mut run: Option<(&str, u64)> = None;
            for r in &records {
                match &mut run {
                    Some((source, n)) if *source == r.source => *n += 1,
                    _ => {
                        if let Some((source, n)) = run {
                            *captured.entry(source.to_string()).or_default() += n;
                        }
                        run = Some((&r.source, 1));
                    }
                }
            }
            if let Some((source, n)) = run {
                *captured.entry(source.to_string()).or_default() += n;
            }
        }
        if cursor.is_some() {
            *lock(&self.journal_cursor) = cursor;
        }
        for (ack, result) in acks {
            let _ = ack.send(result);
        }
        let requests: Vec<ActionRequest> = {
            let mut engine = lock(&self.rules);
            if engine.is_empty() {
                Vec::new()
            } else {
                records.iter().flat_map(|r| engine.observe(r)).collect()
            }
        };
        for request in requests {
            if actions.try_send(request).is_err() {
                self.count_shed("actions queue full");
            }
        }
        // Decided at commit, not at sending: a record committed before a client subscribed
        // is never sent to it, and one committed after `Subscribe` returned always is.
        if !self.subscribers.is_empty() && committed.try_send(records).is_err() {
            self.count_shed("Captured signals lagging");
        }
    }

    /// Commits whatever the writer appended (at stop).
    pub fn shutdown(&self) {
        if let Err(e) = lock(&self.chain).commit() {
            warn!("final commit failed: {e}");
        }
    }

    /// The last journal cursor whose entry is committed.
    pub fn journal_cursor(&self) -> Option<String> {
        lock(&self.journal_cursor).clone()
    }

    /// Counts an action's outcome.
    pub fn count_action(&self, ok: bool) {
        if ok {
            self.actions_taken.fetch_add(1, Ordering::Relaxed);
        } else {
            self.actions_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes out what the writer appended (not syncing), so files show it to readers.
    fn flush(&self) -> Result<(), String> {
        lock(&self.chain).flush().map_err(|e| e.to_string())
    }

    /// Records matching `filter`, in chain order, one page: `filter.limit` records, or fewer
    /// when they would make a reply over [`steppps::api::MAX_REPLY_BYTES`] (10 000 records of
    /// 8 KiB journal lines would; `more` is then set, as when the limit cut the page).
    pub fn query(&self, filter: &EventFilter) -> Result<EventPage, String> {
        let matcher = Matcher::new(filter)?;
        self.flush()?;
        let limit = match filter.limit {
            0 => 100,
            n => n.min(10_000) as usize,
        };
        let mut page: std::collections::VecDeque<Record> = std::collections::VecDeque::new();
        let mut bytes = 0;
        let mut more = false;
        // Whether the page has room for `r` (at least one record always fits).
        let mut room_for = |r: &Record, len: usize| {
            bytes += wire_size(r);
            len < limit && (len == 0 || bytes <= steppps::api::MAX_REPLY_BYTES)
        };
        let from = filter.after_seq.saturating_add(1);
        let before = if filter.before_seq == 0 {
            u64::MAX
        } else {
            filter.before_seq
        };
        let read = if filter.newest {
            // The latest matches: read back from the newest, stop once the page is full.
            chain::read_records_newest_first(&self.chain_dir, from, before, |r| {
                if !matcher.matches(&r) {
                    return true;
                }
                if !room_for(&r, page.len()) {
                    more = true;
                    return false;
                }
                page.push_front(r);
                true
            })
        } else {
            chain::read_records(&self.chain_dir, from, |r| {
                if r.seq >= before {
                    return false;
                }
                if !matcher.matches(&r) {
                    return true;
                }
                if !room_for(&r, page.len()) {
                    more = true;
                    return false;
                }
                page.push_back(r);
                true
            })
        };
        read.map_err(|e| format!("cannot read the chain: {e}"))?;
        Ok(EventPage {
            records: page.into_iter().map(|r| to_wire(&r)).collect(),
            more,
        })
    }

    /// Verifies the chain on disk, with the key this daemon signs with.
    pub fn verify(&self) -> Result<VerifyResult, String> {
        self.flush()?;
        let report = chain::verify_dir(&self.chain_dir, self.verifying_key.as_ref())
            .map_err(|e| format!("cannot read the chain: {e}"))?;
        Ok(verify_to_wire(&report))
    }

    pub fn stats(&self) -> EventStats {
        let (head, segment, chain_stats) = {
            let chain = lock(&self.chain);
            (chain.head(), chain.segment(), chain.stats().clone())
        };
        let rules = lock(&self.rules);
        let mut shed = lock(&self.shed).clone();
        if rules.suppressed > 0 {
            shed.insert("actions in cooldown".into(), rules.suppressed);
        }
        EventStats {
            head_seq: head.seq,
            head_hash: chain::hex(&head.hash),
            segment,
            blocks_sealed: chain_stats.blocks_sealed,
            bytes_written: chain_stats.bytes_written,
            fsync: self.config.fsync_label(),
            signing: self.verifying_key.is_some(),
            captured: lock(&self.captured).clone(),
            shed,
            sources: lock(&self.sources).clone(),
            rules: rules.len() as u32,
            rules_source: rules.origin.clone(),
            actions_taken: self.actions_taken.load(Ordering::Relaxed),
            actions_failed: self.actions_failed.load(Ordering::Relaxed),
        }
    }
}

/// `percent` of the file system that holds `dir` (0: no limit). On the live medium that is the
/// RAM-backed overlay, so the chain cannot fill memory either.
fn max_use_bytes(dir: &Path, percent: u8) -> u64 {
    if percent == 0 {
        return 0;
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(fs) => {
            let size = fs.blocks().saturating_mul(fs.fragment_size());
            size / 100 * u64::from(percent)
        }
        Err(e) => {
            warn!(
                "{}: cannot size its file system ({e}); no size limit",
                dir.display()
            );
            0
        }
    }
}

/// The segment size for a chain limited to `max_use` bytes (0: no limit): the configured one,
/// but at most a quarter of the limit and at least 1 MiB. Retention deletes whole segments, so
/// the chain keeps several and stays near its limit: the live medium's 394 MiB overlay allows
/// 39 MiB, which one 64 MiB segment alone would pass.
fn segment_bytes(configured: u64, max_use: u64) -> u64 {
    if max_use == 0 {
        return configured;
    }
    configured.min((max_use / 4).max(1 << 20))
}

/// About what `r` takes in a `Query` reply: its strings, the hash in hex, and D-Bus's
/// lengths, terminators and padding (generously, 16 bytes a string).
fn wire_size(r: &Record) -> usize {
    let strings: usize = r.fields.iter().map(|(k, v)| k.len() + v.len() + 32).sum();
    strings + r.source.len() + r.kind.len() + 64 + 128
}

/// A record as `Query` and `Captured` carry it.
pub fn to_wire(r: &Record) -> EventRecord {
    EventRecord {
        seq: r.seq,
        time_usec: r.time_usec,
        source: r.source.clone(),
        kind: r.kind.clone(),
        severity: severity_name(r.severity).to_string(),
        fields: r.fields.iter().cloned().collect(),
        hash: chain::hex(&r.hash),
    }
}

/// A verification report as `Verify` returns it.
pub fn verify_to_wire(report: &chain::VerifyReport) -> VerifyResult {
    VerifyResult {
        ok: report.ok,
        records: report.records,
        blocks: report.blocks,
        signed_blocks: report.signed_blocks,
        segments: report.segments,
        first_seq: report.first_seq,
        last_seq: report.last_seq,
        problem: report
            .problem
            .as_ref()
            .map_or_else(String::new, |p| p.kind().to_string()),
        bad_seq: report.problem.as_ref().map_or(0, chain::Problem::seq),
        message: report
            .problem
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        notes: report.notes.clone(),
    }
}

/// A compiled [`EventFilter`].
struct Matcher<'f> {
    filter: &'f EventFilter,
    max_severity: u8,
}

impl<'f> Matcher<'f> {
    fn new(filter: &'f EventFilter) -> Result<Matcher<'f>, String> {
        let max_severity = if filter.severity.is_empty() {
            7
        } else {
            parse_severity(&filter.severity).ok_or_else(|| {
                format!(
                    "unknown severity `{}`; use one of {}",
                    filter.severity,
                    rules::SEVERITIES.join(", ")
                )
            })?
        };
        Ok(Matcher {
            filter,
            max_severity,
        })
    }

    fn matches(&self, r: &Record) -> bool {
        let f = self.filter;
        let text =
            |pattern: &str, value: &str| pattern.is_empty() || rules::glob_match(pattern, value);
        (f.since_usec == 0 || r.time_usec >= f.since_usec)
            && (f.until_usec == 0 || r.time_usec < f.until_usec)
            && r.severity <= self.max_severity
            && text(&f.source, &r.source)
            && text(&f.kind, &r.kind)
            && f.fields
                .iter()
                .all(|(k, p)| r.field(k).is_some_and(|v| rules::glob_match(p, v)))
    }
}

impl Vitals for EventLog {
    fn health(&self) -> (bool, String) {
        if let Some(e) = lock(&self.write_error).clone() {
            return (false, e);
        }
        let head = lock(&self.chain).head();
        let sources = lock(&self.sources);
        let mut on: Vec<String> = sources
            .iter()
            .map(|(name, state)| {
                if state == "on" {
                    name.clone()
                } else {
                    format!("{name} ({state})")
                }
            })
            .collect();
        on.sort();
        let rules = lock(&self.rules).len();
        (
            true,
            format!(
                "{} records in the chain; sources: {}; {rules} rules",
                head.seq,
                if on.is_empty() {
                    "none".to_string()
                } else {
                    on.join(", ")
                }
            ),
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let stats = self.stats();
        HashMap::from([
            ("records".into(), stats.head_seq as f64),
            ("blocks_sealed".into(), stats.blocks_sealed as f64),
            (
                "captured".into(),
                stats.captured.values().sum::<u64>() as f64,
            ),
            ("shed".into(), stats.shed.values().sum::<u64>() as f64),
            ("actions_taken".into(), stats.actions_taken as f64),
            ("actions_failed".into(), stats.actions_failed as f64),
            ("captured_subscribers".into(), self.subscribers.len() as f64),
            (
                "captured_signals_sent".into(),
                self.subscribers.sent() as f64,
            ),
        ])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An event log in a temporary directory with its writer thread running.
    fn log_with_writer(commit_delay_ms: u64) -> (tempfile::TempDir, Arc<EventLog>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            commit_delay_ms,
            fsync: FsyncSetting::None,
            rules_dirs: Vec::new(),
            ..Config::default()
        };
        let (log, channels) = EventLog::open(config, dir.path()).unwrap();
        let writer = log.clone();
        // The thread ends with the test process (the log keeps its queue open).
        std::thread::spawn(move || {
            writer.run_writer(channels.queue, channels.committed_tx, channels.actions_tx)
        });
        (dir, log)
    }

    fn event(severity: u8) -> Entry {
        Entry {
            time_usec: chain::now_usec(),
            severity,
            source: "test".into(),
            kind: "test.event".into(),
            fields: vec![("n".into(), "1".into())],
        }
    }

    fn committed(log: &EventLog) -> u64 {
        log.stats().captured.values().sum()
    }

    /// Waits until `n` records are committed; false after 5 s, half the longest commit delay
    /// (what is waited for must not have been held).
    fn wait_committed(log: &EventLog, n: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while committed(log) < n {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    #[tokio::test]
    async fn a_burst_nobody_waits_for_joins_the_next_emit_in_one_block() {
        let (_dir, log) = log_with_writer(MAX_COMMIT_DELAY_MS);
        for _ in 0..5 {
            assert!(log.offer(Pending::new(event(6))));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(committed(&log), 0, "held for the commit delay");
        // An Emit caller waits for its record: it is committed at once, and the burst with it.
        let seq = tokio::time::timeout(Duration::from_secs(5), log.submit(event(6)))
            .await
            .expect("an Emit is not held for the commit delay")
            .unwrap();
        let stats = log.stats();
        assert_eq!((committed(&log), stats.blocks_sealed), (6, 1));
        assert_eq!(stats.head_seq, seq);
    }

    #[test]
    fn a_warning_is_committed_without_waiting() {
        let (_dir, log) = log_with_writer(MAX_COMMIT_DELAY_MS);
        assert!(log.offer(Pending::new(event(6))));
        assert!(log.offer(Pending::new(event(URGENT_SEVERITY))));
        assert!(wait_committed(&log, 2), "a warning is not held");
        assert_eq!(log.stats().blocks_sealed, 1);
    }

    #[test]
    fn held_events_are_committed_after_the_delay_or_at_stop() {
        let (_dir, log) = log_with_writer(50);
        assert!(log.offer(Pending::new(event(6))));
        assert!(wait_committed(&log, 1));

        let (_dir, log) = log_with_writer(MAX_COMMIT_DELAY_MS);
        assert!(log.offer(Pending::new(event(6))));
        log.commit_without_delay();
        assert!(
            wait_committed(&log, 1),
            "commit_without_delay ends the wait"
        );
        assert!(log.offer(Pending::new(event(6))));
        assert!(wait_committed(&log, 2), "and nothing is held after it");
    }

    #[test]
    fn commit_delay_is_bounded() {
        let config = Config {
            commit_delay_ms: MAX_COMMIT_DELAY_MS + 1,
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("commit_delay_ms"), "{error}");
    }

    #[test]
    fn segments_shrink_to_a_quarter_of_a_small_limit() {
        const MIB: u64 = 1 << 20;
        // No limit, or a large one: as configured.
        assert_eq!(segment_bytes(64 * MIB, 0), 64 * MIB);
        assert_eq!(segment_bytes(64 * MIB, 4096 * MIB), 64 * MIB);
        // The live medium: 10 % of a 394 MiB overlay.
        assert_eq!(segment_bytes(64 * MIB, 39 * MIB), 39 * MIB / 4);
        // Never below 1 MiB.
        assert_eq!(segment_bytes(64 * MIB, 2 * MIB), MIB);
    }
}
