//! Verifying a chain directory from its files alone: every record's hash and link, every
//! block's Merkle root, seal chain and signature, segment continuity, and the head file, so
//! that a rewritten record, a removed segment and a cut-off tail are all found. Reports the
//! first problem, naming the record.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::keys::read_public_key;
use super::merkle::merkle_root;
use super::record::{DecodeError, Frame, Hash, decode_frame, hex};
use super::segment::{
    FLAG_AFTER_QUARANTINE, HEADER_LEN, Head, PUBLIC_KEY_FILE, SegmentHeader, list_segments,
};

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A record is altered, misplaced or unreadable.
    BadRecord {
        seq: u64,
        segment: String,
        offset: u64,
        reason: String,
    },
    /// A block seal does not match its records, or its signature is wrong.
    BadSeal {
        block: u64,
        segment: String,
        offset: u64,
        reason: String,
    },
    /// A segment is missing, unreadable or does not continue the previous one.
    BadSegment { segment: String, reason: String },
    /// Records the head file says were committed are gone.
    Truncated { reason: String },
    /// The head file is unreadable or does not match the chain.
    BadHead { reason: String },
}

impl Problem {
    /// A short machine-readable name: `bad-record`, `bad-seal`, `bad-segment`, `truncated`,
    /// `bad-head`.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::BadRecord { .. } => "bad-record",
            Problem::BadSeal { .. } => "bad-seal",
            Problem::BadSegment { .. } => "bad-segment",
            Problem::Truncated { .. } => "truncated",
            Problem::BadHead { .. } => "bad-head",
        }
    }

    /// The record the problem is at (0 when it is not about one record).
    pub fn seq(&self) -> u64 {
        match self {
            Problem::BadRecord { seq, .. } => *seq,
            _ => 0,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadRecord {
                seq,
                segment,
                offset,
                reason,
            } => write!(f, "record {seq} ({segment}, byte {offset}): {reason}"),
            Problem::BadSeal {
                block,
                segment,
                offset,
                reason,
            } => write!(f, "block {block} seal ({segment}, byte {offset}): {reason}"),
            Problem::BadSegment { segment, reason } => write!(f, "{segment}: {reason}"),
            Problem::Truncated { reason } => write!(f, "truncated: {reason}"),
            Problem::BadHead { reason } => write!(f, "head file: {reason}"),
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    pub segments: u64,
    pub records: u64,
    pub blocks: u64,
    pub signed_blocks: u64,
    /// First and last record verified.
    pub first_seq: u64,
    pub last_seq: u64,
    pub head_hash: Hash,
    /// Things worth knowing that are not failures (retention, a write in progress…).
    pub notes: Vec<String>,
    pub problem: Option<Problem>,
}

/// Verifies the chain in `dir`. Signatures are checked with `key`, or with the directory's
/// own `signing.pub` when no key is given (pass a trusted copy of the key to rule out a
/// replaced one).
pub fn verify_dir(dir: &Path, key: Option<&VerifyingKey>) -> io::Result<VerifyReport> {
    let own_key;
    let key = match key {
        Some(k) => Some(k),
        None => match read_public_key(&dir.join(PUBLIC_KEY_FILE)) {
            Ok(k) => {
                own_key = k;
                Some(&own_key)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        },
    };
    let mut v = Verifier_ {
        report: VerifyReport::default(),
        key,
        next_seq: 0,
        head: [0; 32],
        next_block: 0,
        last_seal: [0; 32],
        leaves: Vec::new(),
        block_first_seq: 0,
        seals: Vec::new(),
    };
    let head_file = Head::read(dir)?;
    let segments = list_segments(dir)?;
    if segments.is_empty() {
        v.report
            .notes
            .push("no segments: the chain is empty".into());
    }
    let count = segments.len();
    for (i, (index, path)) in segments.iter().enumerate() {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let data = fs::read(path)?;
        v.report.segments += 1;
        let problem = v.segment(i, *index, &name, &data, i + 1 == count);
        if let Some(p) = problem {
            v.report.problem = Some(p);
            return Ok(v.finish());
        }
    }
    v.report.last_seq = v.next_seq.saturating_sub(1);
    v.report.head_hash = v.head;
    if !v.leaves.is_empty() {
        v.report.notes.push(format!(
            "{} records after the last seal (a commit in progress, or sealed when the daemon next starts)",
            v.leaves.len()
        ));
    }
    v.report.problem = v.check_head(head_file);
    Ok(v.finish())
}

// Named with a trailing underscore: `Verifier` is ed25519's trait.
struct Verifier_<'k> {
    report: VerifyReport,
    key: Option<&'k VerifyingKey>,
    next_seq: u64,
    head: Hash,
    next_block: u64,
    last_seal: Hash,
    leaves: Vec<Hash>,
    block_first_seq: u64,
    /// (block, seal hash, last seq) of every seal seen, for the head check.
    seals: Vec<(u64, Hash, u64)>,
}

impl Verifier_<'_> {
    fn finish(mut self) -> VerifyReport {
        self.report.ok = self.report.problem.is_none();
        self.report
    }

    fn segment(
        &mut self,
        position: usize,
        index: u64,
        name: &str,
        data: &[u8],
        last: bool,
    ) -> Option<Problem> {
        let bad_segment = |reason: String| Problem::BadSegment {
            segment: name.to_string(),
            reason,
        };
        let header = match SegmentHeader::decode(data) {
            Ok(h) => h,
            Err(e) => return Some(bad_segment(e)),
        };
        if header.index != index {
            return Some(bad_segment(format!(
                "its header says it is segment {}",
                header.index
            )));
        }
        if position == 0 {
            self.next_seq = header.first_seq;
            self.head = header.prev_hash;
            self.next_block = header.first_block;
            self.last_seal = header.prev_seal;
            self.report.first_seq = header.first_seq;
            if header.flags & FLAG_AFTER_QUARANTINE != 0 {
                self.report.notes.push(format!(
                    "{name} was started after a damaged segment was set aside; verified from record {} on",
                    header.first_seq
                ));
            } else if header.first_seq > 1 {
                self.report.notes.push(format!(
                    "verified from record {} on ({name} is the oldest segment kept; older ones were removed by retention)",
                    header.first_seq
                ));
            }
        } else if header.flags & FLAG_AFTER_QUARANTINE != 0 {
            self.report.notes.push(format!(
                "{name} was started after a damaged segment was set aside (records {}…{} are in the quarantined file)",
                header.first_seq,
                self.next_seq.saturating_sub(1)
            ));
            if !self.leaves.is_empty() {
                self.leaves.clear();
            }
            self.next_seq = header.first_seq;
            self.head = header.prev_hash;
            self.next_block = header.first_block;
            self.last_seal = header.prev_seal;
        } else {
            if !self.leaves.is_empty() {
                return Some(bad_segment(format!(
                    "the previous segment ends with {} unsealed records",
                    self.leaves.len()
                )));
            }
            if header.first_seq != self.next_seq || header.prev_hash != self.head {
                return Some(bad_segment(format!(
                    "does not continue the chain: starts at record {} after {}, but the previous segment ends at record {} ({}); a segment is missing or was replaced",
                    header.first_seq,
                    short(&header.prev_hash),
                    self.next_seq.saturating_sub(1),
                    short(&self.head)
                )));
            }
            if header.first_block != self.next_block || header.prev_seal != self.last_seal {
                return Some(bad_segment(
                    "its header does not continue the previous segment's blocks".into(),
                ));
            }
        }

        let mut pos = HEADER_LEN;
        while pos < data.len() {
            let offset = pos as u64;
            let bad_record = |seq: u64, reason: String| Problem::BadRecord {
                seq,
                segment: name.to_string(),
                offset,
                reason,
            };
            match decode_frame(&data[pos..]) {
                Ok((Frame::Record(r), n)) => {
                    if r.seq != self.next_seq {
                        return Some(bad_record(
                            self.next_seq,
                            format!(
                                "found record {} where record {} belongs",
                                r.seq, self.next_seq
                            ),
                        ));
                    }
                    if r.prev_hash != self.head {
                        return Some(bad_record(
                            r.seq,
                            format!(
                                "its previous hash {} is not record {}'s hash {}: the chain is broken here",
                                short(&r.prev_hash),
                                r.seq.saturating_sub(1),
                                short(&self.head)
                            ),
                        ));
                    }
                    if self.leaves.is_empty() {
                        self.block_first_seq = r.seq;
                    }
                    self.leaves.push(r.hash);
                    self.head = r.hash;
                    self.next_seq += 1;
                    self.report.records += 1;
                    pos += n;
                }
                Ok((Frame::Seal(s), n)) => {
                    let bad_seal = |reason: String| Problem::BadSeal {
                        block: s.block,
                        segment: name.to_string(),
                        offset,
                        reason,
                    };
                    if s.block != self.next_block {
                        return Some(bad_seal(format!("expected block {}", self.next_block)));
                    }
                    if s.count as usize != self.leaves.len() || s.first_seq != self.block_first_seq
                    {
                        return Some(bad_seal(format!(
                            "it seals records {}+{} but the block holds {}+{}",
                            s.first_seq,
                            s.count,
                            self.block_first_seq,
                            self.leaves.len()
                        )));
                    }
                    if s.head_hash != self.head {
                        return Some(bad_seal("its head hash is not the last record's".into()));
                    }
                    if s.prev_seal != self.last_seal {
                        return Some(bad_seal("it does not follow the previous seal".into()));
                    }
                    if merkle_root(&self.leaves) != s.merkle_root {
                        return Some(bad_seal(
                            "the Merkle root does not match the records".into(),
                        ));
                    }
                    if !s.signature.is_empty() {
                        if let Some(key) = self.key {
                            let sig = <[u8; 64]>::try_from(s.signature.as_slice())
                                .map(|b| Signature::from_bytes(&b));
                            match sig {
                                Ok(sig) if key.verify(&s.hash, &sig).is_ok() => {
                                    self.report.signed_blocks += 1;
                                }
                                _ => {
                                    return Some(bad_seal(
                                        "its signature does not verify with the public key".into(),
                                    ));
                                }
                            }
                        }
                    } else if self.key.is_some() {
                        // Signing was off when this block was written.
                    }
                    self.seals.push((s.block, s.hash, self.next_seq - 1));
                    self.last_seal = s.hash;
                    self.next_block += 1;
                    self.leaves.clear();
                    self.report.blocks += 1;
                    pos += n;
                }
                Err(DecodeError::Incomplete { have, need }) if last => {
                    self.report.notes.push(format!(
                        "{name} ends in an incomplete frame ({have} of {need} bytes at byte {offset}): a write in progress, or a torn tail the daemon cuts when it starts"
                    ));
                    break;
                }
                Err(DecodeError::HashMismatch { seq, tag }) if tag == super::record::TAG_SEAL => {
                    return Some(Problem::BadSeal {
                        block: self.next_block,
                        segment: name.to_string(),
                        offset,
                        reason: format!(
                            "stored hash does not match the seal's contents (block of record {seq})"
                        ),
                    });
                }
                Err(DecodeError::HashMismatch { seq, .. }) => {
                    let claimed = if seq == self.next_seq {
                        String::new()
                    } else {
                        format!(" (it now claims to be record {seq})")
                    };
                    return Some(bad_record(
                        self.next_seq,
                        format!(
                            "stored hash does not match the record's contents: it was altered{claimed}"
                        ),
                    ));
                }
                Err(e) => {
                    return Some(bad_record(
                        self.next_seq,
                        format!("unreadable where record {} belongs: {e}", self.next_seq),
                    ));
                }
            }
        }
        None
    }

    fn check_head(&mut self, head: Option<Result<Head, String>>) -> Option<Problem> {
        let head = match head {
            None => {
                self.report
                    .notes
                    .push("no head file: a cut-off tail cannot be detected".into());
                return None;
            }
            Some(Err(e)) => return Some(Problem::BadHead { reason: e }),
            Some(Ok(h)) => h,
        };
        let last_seq = self.next_seq.saturating_sub(1);
        if head.block >= self.next_block || head.seq > last_seq {
            return Some(Problem::Truncated {
                reason: format!(
                    "the head file records block {} ending at record {} (hash {}), but the chain ends at record {} in block {}: records {}…{} are missing",
                    head.block,
                    head.seq,
                    short(&head.hash),
                    last_seq,
                    self.next_block as i64 - 1,
                    last_seq + 1,
                    head.seq
                ),
            });
        }
        match self.seals.iter().find(|(b, _, _)| *b == head.block) {
            Some((_, hash, seq)) if *hash == head.seal && *seq == head.seq => {}
            Some(_) => {
                return Some(Problem::BadHead {
                    reason: format!(
                        "block {}'s seal in the chain is not the one the head file recorded: the tail was rewritten",
                        head.block
                    ),
                });
            }
            None => self.report.notes.push(format!(
                "the head file names block {}, which is before the oldest segment kept",
                head.block
            )),
        }
        if let (Some(key), false) = (self.key, head.signature.is_empty()) {
            let ok = <[u8; 64]>::try_from(head.signature.as_slice())
                .map(|b| Signature::from_bytes(&b))
                .is_ok_and(|sig| key.verify(&head.seal, &sig).is_ok());
            if !ok {
                return Some(Problem::BadHead {
                    reason: "its signature does not verify with the public key".into(),
                });
            }
        }
        None
    }
}

fn short(h: &Hash) -> String {
    hex(&h[..6])
}
