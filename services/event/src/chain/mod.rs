//! A tamper-evident, append-only audit log: SHA-256 hash-chained records, sealed in blocks
//! with a Merkle root, block heads optionally signed with ed25519.
//!
//! The chain lives in one directory of segment files (`0000000000000000.seg`, …), a `head`
//! file naming the last committed seal (so that a cut-off tail is noticed), and, when blocks
//! are signed, `signing.pub`. Nothing here knows about D-Bus or daemons.
//!
//! ```no_run
//! use steppps_event::chain::{AuditChain, ChainOptions, Entry, verify_dir};
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("/tmp/audit");
//! let (mut chain, report) = AuditChain::open(dir, ChainOptions::default())?;
//! assert!(report.torn_tail.is_none());
//! chain.append(&Entry { source: "demo".into(), kind: "hello".into(), ..Entry::default() })?;
//! chain.commit()?; // sealed, written and (by default) fsync'ed: now it is acknowledged
//! assert!(verify_dir(dir, None)?.ok);
//! # Ok(()) }
//! ```

pub mod keys;
pub mod merkle;
pub mod read;
pub mod record;
pub mod segment;
#[cfg(test)]
mod tests;
pub mod verify;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};

pub use self::read::{
    SegmentScan, TailDamage, read_records, read_records_newest_first, scan_segment,
};
pub use self::record::{Entry, EntryError, Frame, GENESIS, Hash, Record, Seal, hex};
pub use self::segment::Head;
pub use self::verify::{Problem, VerifyReport, verify_dir};

use self::merkle::merkle_root;
use self::record::{encode_record, encode_seal, seal_hash};
use self::segment::{
    FLAG_AFTER_QUARANTINE, HEADER_LEN, SegmentHeader, list_segments, segment_name,
};

/// When the chain's data reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` at every commit, before it returns: an acknowledged record survives power
    /// loss.
    EveryCommit,
    /// `fdatasync` at the first commit after this much time: up to that window may be lost on
    /// power loss (never on a crash of the process alone).
    Interval(Duration),
    /// Never: the kernel writes back when it likes. Survives a process crash, not power loss.
    Never,
}

/// How a chain is written.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// A block is sealed at every commit, or when it reaches this many records.
    pub max_block_records: usize,
    /// A new segment is started after a commit leaves the current one at least this large.
    pub max_segment_bytes: u64,
    /// Oldest segments beyond this many are deleted (0: keep all).
    pub max_segments: usize,
    /// Oldest segments are deleted while all of them take more than this (0: no limit); the
    /// segment being written is always kept.
    pub max_use_bytes: u64,
    pub fsync: FsyncPolicy,
    /// Signs every seal when set.
    pub signing_key: Option<SigningKey>,
    /// How often the head file is rewritten when `fsync` is not `EveryCommit`.
    pub head_interval: Duration,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            max_block_records: 4096,
            max_segment_bytes: 64 << 20,
            max_segments: 0,
            max_use_bytes: 0,
            fsync: FsyncPolicy::EveryCommit,
            signing_key: None,
            head_interval: Duration::from_secs(1),
        }
    }
}

/// Errors of the chain's own I/O.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Entry(#[from] EntryError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ChainError + '_ {
    move |source| ChainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A torn tail found and cut when the chain was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the last whole frame ended: the file was cut here.
    pub offset: u64,
    pub bytes_cut: u64,
    pub reason: String,
}

/// A segment set aside because it was damaged in its middle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the damaged file now is.
    pub moved_to: PathBuf,
    pub reason: String,
}

/// What opening the chain found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    pub torn_tail: Option<TornTail>,
    pub quarantined: Vec<Quarantined>,
    /// Whole records found after the last seal (written but never committed), now sealed.
    pub resealed: u64,
    pub next_seq: u64,
}

/// The place of the last record: what a commit acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    pub hash: Hash,
}

/// Counters of the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainStats {
    pub appended: u64,
    pub blocks_sealed: u64,
    pub commits: u64,
    pub fsyncs: u64,
    pub bytes_written: u64,
    pub segments_rotated: u64,
    pub segments_deleted: u64,
}

/// The writer of a chain directory. One per directory at a time.
#[derive(Debug)]
pub struct AuditChain {
    dir: PathBuf,
    opts: ChainOptions,
    file: File,
    /// Frames not yet written to the file.
    pending: Vec<u8>,
    segment: u64,
    segment_bytes: u64,
    next_seq: u64,
    head: Hash,
    next_block: u64,
    block_first_seq: u64,
    leaves: Vec<Hash>,
    last_seal: Hash,
    last_head: Option<Head>,
    head_written: Option<Instant>,
    last_sync: Instant,
    stats: ChainStats,
    /// Replaced by its successor segment: nothing left to do at drop.
    retired: bool,
}

/// Now, in microseconds since the Unix epoch.
pub fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl AuditChain {
    /// Opens (or creates) the chain in `dir`: finds the end of the last segment, cuts a torn
    /// tail, sets aside a segment damaged in its middle and starts a new one, and seals whole
    /// records that were written but never committed.
    pub fn open(dir: &Path, opts: ChainOptions) -> Result<(AuditChain, OpenReport), ChainError> {
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let mut report = OpenReport::default();
        if let Some(key) = &opts.signing_key {
            keys::write_public_key(dir, &key.verifying_key()).map_err(io_at(dir))?;
        }
        let mut segments = list_segments(dir).map_err(io_at(dir))?;
        // State to continue from, and what to do with the last segment.
        let mut quarantine_note: Option<Quarantined> = None;
        let state = loop {
            let Some((index, path)) = segments.last().cloned() else {
                break None;
            };
            let scan = scan_segment(&path).map_err(io_at(&path))?;
            match scan.header {
                Err(why) if scan.file_len < HEADER_LEN as u64 || scan.all_zero_after(0) => {
                    // A segment whose header never reached the disk: it holds nothing.
                    fs::remove_file(&path).map_err(io_at(&path))?;
                    report.torn_tail = Some(TornTail {
                        segment: path.clone(),
                        offset: 0,
                        bytes_cut: scan.file_len,
                        reason: format!("segment header incomplete ({why}); file removed"),
                    });
                    segments.pop();
                    continue;
                }
                Err(why) => {
                    let q = quarantine(&path, format!("segment header: {why}"))?;
                    segments.pop();
                    // Continue from the previous segment's end, flagged as after a quarantine.
                    quarantine_note = Some(q);
                    continue;
                }
                Ok(header) => break Some((index, path, header, scan)),
            }
        };
        report.segments = segments.len();

        let mut chain = match state {
            None => {
                // A new chain, or every segment was set aside: start one.
                let header = SegmentHeader {
                    flags: if quarantine_note.is_some() {
                        FLAG_AFTER_QUARANTINE
                    } else {
                        0
                    },
                    index: 0,
                    first_seq: 1,
                    first_block: 0,
                    prev_hash: GENESIS,
                    prev_seal: GENESIS,
                };
                let index = next_free_index(dir)?;
                Self::create_segment(dir, opts, SegmentHeader { index, ..header })?
            }
            Some((index, path, _header, scan)) => {
                let end = match &scan.damage {
                    None => scan.valid_end,
                    Some(d) if d.is_torn_tail => {
                        report.torn_tail = Some(TornTail {
                            segment: path.clone(),
                            offset: scan.valid_end,
                            bytes_cut: scan.file_len - scan.valid_end,
                            reason: d.reason.clone(),
                        });
                        scan.valid_end
                    }
                    Some(d) => {
                        // Damage in the middle: keep the file for forensics, continue after
                        // the last good record in a new segment.
                        let q = quarantine(&path, format!("{} at byte {}", d.reason, d.offset))?;
                        quarantine_note = Some(q);
                        scan.valid_end
                    }
                };
                if quarantine_note.is_some()
                    && scan.damage.as_ref().is_some_and(|d| !d.is_torn_tail)
                {
                    let header = SegmentHeader {
                        flags: FLAG_AFTER_QUARANTINE,
                        index: index + 1,
                        first_seq: scan.next_seq,
                        first_block: scan.next_block,
                        prev_hash: scan.head,
                        prev_seal: scan.last_seal,
                    };
                    Self::create_segment(dir, opts, header)?
                } else {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_at(&path))?;
                    if end < scan.file_len {
                        file.set_len(end).map_err(io_at(&path))?;
                        file.sync_data().map_err(io_at(&path))?;
                    }
                    drop(file);
                    let file = OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .map_err(io_at(&path))?;
                    let chain = AuditChain {
                        dir: dir.to_path_buf(),
                        opts,
                        file,
                        pending: Vec::with_capacity(1 << 20),
                        segment: index,
                        segment_bytes: end,
                        next_seq: scan.next_seq,
                        head: scan.head,
                        next_block: scan.next_block,
                        block_first_seq: scan.next_seq - scan.unsealed.len() as u64,
                        leaves: scan.unsealed.clone(),
                        last_seal: scan.last_seal,
                        last_head: None,
                        head_written: None,
                        last_sync: Instant::now(),
                        stats: ChainStats::default(),
                        retired: false,
                    };
                    report.resealed = chain.leaves.len() as u64;
                    chain
                }
            }
        };
        for q in quarantine_note.iter() {
            report.quarantined.push(q.clone());
        }
        if let Some(q) = &quarantine_note {
            chain.append(&Entry {
                time_usec: now_usec(),
                severity: 2,
                source: "chain".into(),
                kind: "chain.quarantined".into(),
                fields: vec![
                    ("file".into(), q.moved_to.display().to_string()),
                    ("reason".into(), q.reason.clone()),
                ],
            })?;
        }
        // Seal what was whole but uncommitted, and write the head.
        chain.commit_inner(true)?;
        report.next_seq = chain.next_seq;
        report.segments = list_segments(dir).map_err(io_at(dir))?.len();
        Ok((chain, report))
    }

    fn create_segment(
        dir: &Path,
        opts: ChainOptions,
        header: SegmentHeader,
    ) -> Result<AuditChain, ChainError> {
        let path = dir.join(segment_name(header.index));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        file.write_all(&header.encode()).map_err(io_at(&path))?;
        file.sync_data().map_err(io_at(&path))?;
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        sync_dir(dir);
        Ok(AuditChain {
            dir: dir.to_path_buf(),
            opts,
            file,
            pending: Vec::with_capacity(1 << 20),
            segment: header.index,
            segment_bytes: HEADER_LEN as u64,
            next_seq: header.first_seq,
            head: header.prev_hash,
            next_block: header.first_block,
            block_first_seq: header.first_seq,
            leaves: Vec::new(),
            last_seal: header.prev_seal,
            last_head: None,
            head_written: None,
            last_sync: Instant::now(),
            stats: ChainStats::default(),
            retired: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last record's place (seq 0 and the genesis hash for an empty chain).
    pub fn head(&self) -> Receipt {
        Receipt {
            seq: self.next_seq - 1,
            hash: self.head,
        }
    }

    pub fn segment(&self) -> u64 {
        self.segment
    }

    pub fn stats(&self) -> &ChainStats {
        &self.stats
    }

    pub fn options(&self) -> &ChainOptions {
        &self.opts
    }

    /// Appends one record (not yet durable: see [`AuditChain::commit`]).
    pub fn append(&mut self, entry: &Entry) -> Result<Receipt, ChainError> {
        entry.validate()?;
        Ok(self.append_valid(entry))
    }

    /// Appends records in order; stops at the first invalid one (the ones before it stay).
    pub fn append_batch<'a>(
        &mut self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<Receipt, ChainError> {
        for e in entries {
            e.validate()?;
            self.append_valid(e);
        }
        Ok(self.head())
    }

    fn append_valid(&mut self, entry: &Entry) -> Receipt {
        if self.leaves.is_empty() {
            self.block_first_seq = self.next_seq;
        }
        let seq = self.next_seq;
        let hash = encode_record(&mut self.pending, seq, entry, &self.head);
        self.head = hash;
        self.next_seq += 1;
        self.leaves.push(hash);
        self.stats.appended += 1;
        if self.leaves.len() >= self.opts.max_block_records {
            self.seal_block();
        }
        if self.pending.len() >= 4 << 20 {
            // Bound the memory of a huge batch; these bytes are not acknowledged yet.
            let _ = self.write_pending();
        }
        Receipt { seq, hash }
    }

    fn seal_block(&mut self) {
        if self.leaves.is_empty() {
            return;
        }
        let mut seal = Seal {
            block: self.next_block,
            first_seq: self.block_first_seq,
            count: self.leaves.len() as u32,
            merkle_root: merkle_root(&self.leaves),
            head_hash: self.head,
            prev_seal: self.last_seal,
            time_usec: now_usec(),
            signature: Vec::new(),
            hash: [0; 32],
        };
        seal.hash = seal_hash(&seal);
        if let Some(key) = &self.opts.signing_key {
            seal.signature = key.sign(&seal.hash).to_bytes().to_vec();
        }
        encode_seal(&mut self.pending, &seal);
        self.last_head = Some(Head {
            segment: self.segment,
            seq: self.next_seq - 1,
            hash: self.head,
            block: seal.block,
            seal: seal.hash,
            signature: seal.signature,
        });
        self.last_seal = seal.hash;
        self.next_block += 1;
        self.leaves.clear();
        self.stats.blocks_sealed += 1;
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        self.segment_bytes += self.pending.len() as u64;
        self.stats.bytes_written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Seals the open block, writes it, and syncs it as the fsync policy says. Every record
    /// appended before a successful commit is acknowledged: it survives a crash of this
    /// process, and power loss too under [`FsyncPolicy::EveryCommit`].
    pub fn commit(&mut self) -> Result<Receipt, ChainError> {
        self.commit_inner(false)
    }

    fn commit_inner(&mut self, force_head: bool) -> Result<Receipt, ChainError> {
        self.seal_block();
        let path = self.dir.join(segment_name(self.segment));
        self.write_pending().map_err(io_at(&path))?;
        self.stats.commits += 1;
        let synced = match self.opts.fsync {
            FsyncPolicy::EveryCommit => true,
            FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if synced {
            self.file.sync_data().map_err(io_at(&path))?;
            self.last_sync = Instant::now();
            self.stats.fsyncs += 1;
        }
        let head_due = force_head
            || synced
            || self
                .head_written
                .is_none_or(|t| t.elapsed() >= self.opts.head_interval);
        if head_due {
            self.write_head(synced)?;
        }
        if self.segment_bytes >= self.opts.max_segment_bytes {
            self.rotate()?;
        }
        Ok(self.head())
    }

    fn write_head(&mut self, sync: bool) -> Result<(), ChainError> {
        if let Some(head) = &self.last_head {
            head.write(&self.dir, sync).map_err(io_at(&self.dir))?;
        }
        self.head_written = Some(Instant::now());
        Ok(())
    }

    /// Writes everything appended to the file (without sealing or syncing), so readers of the
    /// segment files see it. Called before queries.
    pub fn flush(&mut self) -> Result<(), ChainError> {
        let path = self.dir.join(segment_name(self.segment));
        self.write_pending().map_err(io_at(&path))
    }

    /// Starts a new segment that continues the chain from the current head.
    pub fn rotate(&mut self) -> Result<(), ChainError> {
        self.seal_block();
        let path = self.dir.join(segment_name(self.segment));
        self.write_pending().map_err(io_at(&path))?;
        self.file.sync_data().map_err(io_at(&path))?;
        let header = SegmentHeader {
            flags: 0,
            index: self.segment + 1,
            first_seq: self.next_seq,
            first_block: self.next_block,
            prev_hash: self.head,
            prev_seal: self.last_seal,
        };
        let mut next = Self::create_segment(&self.dir, self.opts.clone(), header)?;
        next.stats = std::mem::take(&mut self.stats);
        next.stats.segments_rotated += 1;
        // The head still names the block that ended the previous segment.
        next.last_head = self.last_head.take();
        let mut old = std::mem::replace(self, next);
        old.retired = true;
        drop(old);
        self.write_head(true)?;
        self.apply_retention()
    }

    fn apply_retention(&mut self) -> Result<(), ChainError> {
        if self.opts.max_segments == 0 && self.opts.max_use_bytes == 0 {
            return Ok(());
        }
        let segments = list_segments(&self.dir).map_err(io_at(&self.dir))?;
        let by_count = match self.opts.max_segments {
            0 => 0,
            keep => segments.len().saturating_sub(keep),
        };
        // By size: the oldest first, never the last (the one being written).
        let mut by_size = 0;
        if self.opts.max_use_bytes > 0 {
            let sizes: Vec<u64> = segments
                .iter()
                .map(|(_, path)| fs::metadata(path).map_or(0, |m| m.len()))
                .collect();
            let mut total: u64 = sizes.iter().sum();
            while by_size + 1 < sizes.len() && total > self.opts.max_use_bytes {
                total -= sizes[by_size];
                by_size += 1;
            }
        }
        let excess = by_count.max(by_size);
        for (_, path) in segments.iter().take(excess) {
            fs::remove_file(path).map_err(io_at(path))?;
            self.stats.segments_deleted += 1;
            // The deletion itself is on the record.
            self.append(&Entry {
                time_usec: now_usec(),
                severity: 5,
                source: "chain".into(),
                kind: "chain.retention".into(),
                fields: vec![("deleted".into(), path.display().to_string())],
            })?;
        }
        Ok(())
    }
}

impl Drop for AuditChain {
    fn drop(&mut self) {
        // Best effort: a clean stop leaves everything sealed, written and the head current.
        if !self.retired {
            let _ = self.commit_inner(true);
        }
    }
}

fn quarantine(path: &Path, reason: String) -> Result<Quarantined, ChainError> {
    let stamp = now_usec() / 1_000_000;
    let moved_to = path.with_extension(format!("seg.corrupt-{stamp}"));
    fs::rename(path, &moved_to).map_err(io_at(path))?;
    Ok(Quarantined { moved_to, reason })
}

fn next_free_index(dir: &Path) -> Result<u64, ChainError> {
    // Quarantined files keep their index in their name: never reuse one.
    let mut max = None;
    for entry in fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(Ok(i)) = name.split('.').next().map(str::parse::<u64>) {
            max = Some(max.map_or(i, |m: u64| m.max(i)));
        }
    }
    Ok(max.map_or(0, |m| m + 1))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
