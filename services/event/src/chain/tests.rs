//! The chain's promises, tested on real files: continuity across reopen and rotation, and
//! each kind of damage found and named.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::segment::list_segments;
use super::*;

fn entry(i: u64) -> Entry {
    Entry {
        time_usec: 1_000 + i,
        severity: 6,
        source: "test".into(),
        kind: "tick".into(),
        fields: vec![("i".into(), i.to_string())],
    }
}

fn fill(chain: &mut AuditChain, from: u64, n: u64, per_commit: u64) {
    for i in from..from + n {
        chain.append(&entry(i)).unwrap();
        if (i + 1) % per_commit == 0 {
            chain.commit().unwrap();
        }
    }
    chain.commit().unwrap();
}

fn last_segment(dir: &Path) -> PathBuf {
    list_segments(dir).unwrap().last().unwrap().1.clone()
}

/// Offset (in the last segment) of record `seq`'s frame, and the segment's bytes.
fn record_in_last_segment(dir: &Path, seq: u64) -> (PathBuf, usize, Vec<u8>) {
    let seg = last_segment(dir);
    let (offset, _) = frames(&seg)
        .into_iter()
        .find(|(_, f)| matches!(f, Frame::Record(r) if r.seq == seq))
        .unwrap();
    let data = fs::read(&seg).unwrap();
    (seg, offset, data)
}

/// Flips the first byte of record `seq`'s time field, so its stored hash no longer matches.
fn damage_record_time(dir: &Path, seq: u64) {
    let (seg, offset, mut data) = record_in_last_segment(dir, seq);
    data[offset + 5 + 8] ^= 0xff;
    fs::write(&seg, &data).unwrap();
}

/// Byte offsets of every frame in a segment: (offset, frame).
fn frames(path: &Path) -> Vec<(usize, Frame)> {
    let data = fs::read(path).unwrap();
    let mut pos = segment::HEADER_LEN;
    let mut out = Vec::new();
    while pos < data.len() {
        let (f, n) = record::decode_frame(&data[pos..]).unwrap();
        out.push((pos, f));
        pos += n;
    }
    out
}

#[test]
fn appends_survive_reopen_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, report) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    assert_eq!(report.next_seq, 1);
    fill(&mut chain, 0, 100, 10);
    assert_eq!(chain.head().seq, 100);
    drop(chain);
    let (mut chain, report) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    assert_eq!(report.next_seq, 101);
    assert!(report.torn_tail.is_none());
    fill(&mut chain, 100, 5, 5);
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!((r.records, r.first_seq, r.last_seq), (105, 1, 105));
    let mut seen = Vec::new();
    read_records(dir.path(), 50, |r| {
        seen.push(r.seq);
        r.seq < 60
    })
    .unwrap();
    assert_eq!(seen, (50..=60).collect::<Vec<_>>());
}

#[test]
fn flipped_byte_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    fill(&mut chain, 0, 50, 7);
    drop(chain);
    let (seg, offset, mut data) = record_in_last_segment(dir.path(), 23);
    // A byte inside the `kind` text of record 23.
    let at = offset + 5 + 8 + 8 + 1 + 2 + 4 + 2;
    assert_eq!(data[at], b't');
    data[at] = b'T';
    fs::write(&seg, &data).unwrap();
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(!r.ok);
    let p = r.problem.unwrap();
    assert_eq!((p.kind(), p.seq()), ("bad-record", 23), "{p}");
    assert!(p.to_string().contains("record 23"), "{p}");
}

#[test]
fn deleting_the_last_block_is_reported_as_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    fill(&mut chain, 0, 40, 10);
    drop(chain);
    let seg = last_segment(dir.path());
    let seals: Vec<usize> = frames(&seg)
        .into_iter()
        .filter(|(_, f)| matches!(f, Frame::Seal(_)))
        .map(|(o, f)| {
            let Frame::Seal(s) = f else { unreachable!() };
            o + 5 + s.signature.len() + 8 + 8 + 4 + 32 * 3 + 8 + 1 + 32
        })
        .collect();
    // Cut right after the second-to-last seal: the last block (records and seal) is gone,
    // and what is left is a perfectly consistent chain.
    let cut = seals[seals.len() - 2];
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let r = verify_dir(dir.path(), None).unwrap();
    let p = r.problem.unwrap();
    assert_eq!(p.kind(), "truncated", "{p}");
    assert!(p.to_string().contains("ending at record 40"), "{p}");
}

#[test]
fn torn_tail_is_cut_at_the_last_whole_record_and_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    fill(&mut chain, 0, 20, 20);
    // Three whole records written but not committed, then half a record.
    for i in 20..23 {
        chain.append(&entry(i)).unwrap();
    }
    chain.flush().unwrap();
    let seg = last_segment(dir.path());
    std::mem::forget(chain); // a crash: no commit at drop
    let mut half = Vec::new();
    record::encode_record(&mut half, 24, &entry(24), &[0; 32]);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &half[..half.len() / 2]).unwrap();
    drop(f);
    let (chain, report) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    let torn = report.torn_tail.unwrap();
    assert_eq!(torn.bytes_cut, (half.len() / 2) as u64);
    assert_eq!(report.resealed, 3);
    assert_eq!(chain.head().seq, 23);
    drop(chain);
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.last_seq, 23);
}

#[test]
fn damage_in_the_middle_quarantines_the_segment_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    fill(&mut chain, 0, 30, 10);
    drop(chain);
    damage_record_time(dir.path(), 12);
    let (mut chain, report) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    let q = &report.quarantined[0];
    assert!(q.moved_to.exists(), "kept for forensics");
    assert!(q.reason.contains("hash"), "{}", q.reason);
    // The new segment continues after record 11 and says why.
    assert_eq!(chain.head().seq, 12);
    fill(&mut chain, 100, 3, 3);
    drop(chain);
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert!(
        r.notes.iter().any(|n| n.contains("set aside")),
        "{:?}",
        r.notes
    );
    let mut kinds = Vec::new();
    read_records(dir.path(), 0, |r| {
        kinds.push(r.kind);
        true
    })
    .unwrap();
    assert_eq!(kinds[0], "chain.quarantined");
}

#[test]
fn rotation_keeps_the_chain_and_a_missing_segment_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || ChainOptions {
        max_segment_bytes: 4096,
        ..ChainOptions::default()
    };
    let (mut chain, _) = AuditChain::open(dir.path(), opts()).unwrap();
    fill(&mut chain, 0, 300, 10);
    drop(chain);
    let segs = list_segments(dir.path()).unwrap();
    assert!(segs.len() > 3, "{}", segs.len());
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.records, 300);
    // Reopen continues in the last segment.
    let (chain, _) = AuditChain::open(dir.path(), opts()).unwrap();
    assert_eq!(chain.head().seq, 300);
    drop(chain);
    fs::remove_file(&segs[1].1).unwrap();
    let p = verify_dir(dir.path(), None).unwrap().problem.unwrap();
    assert_eq!(p.kind(), "bad-segment", "{p}");
}

#[test]
fn retention_removes_old_segments_and_the_rest_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(
        dir.path(),
        ChainOptions {
            max_segment_bytes: 4096,
            max_segments: 3,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    fill(&mut chain, 0, 300, 10);
    drop(chain);
    assert_eq!(list_segments(dir.path()).unwrap().len(), 3);
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert!(r.first_seq > 1);
}

#[test]
fn retention_by_size_keeps_the_newest_segments_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(
        dir.path(),
        ChainOptions {
            max_segment_bytes: 4096,
            max_use_bytes: 16 << 10,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    fill(&mut chain, 0, 300, 10);
    drop(chain);
    let segments = list_segments(dir.path()).unwrap();
    let total: u64 = segments
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    // Up to the limit plus the one segment written past it before it was closed.
    assert!(
        total <= (16 << 10) + 8192,
        "{total} bytes in {} segments",
        segments.len()
    );
    assert!(segments.len() >= 2, "only {} segment(s)", segments.len());
    let r = verify_dir(dir.path(), None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert!(r.first_seq > 1, "old records were deleted");
}

#[test]
fn signed_blocks_verify_and_a_foreign_key_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keys::load_or_create(&dir.path().join("signing.key")).unwrap();
    let chain_dir = dir.path().join("chain");
    let (mut chain, _) = AuditChain::open(
        &chain_dir,
        ChainOptions {
            signing_key: Some(key),
            ..ChainOptions::default()
        },
    )
    .unwrap();
    fill(&mut chain, 0, 30, 10);
    drop(chain);
    let r = verify_dir(&chain_dir, None).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.signed_blocks, r.blocks);
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let p = verify_dir(&chain_dir, Some(&other))
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(p.kind(), "bad-seal", "{p}");
}

#[test]
fn invalid_entries_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    let mut e = entry(1);
    e.source = "x".repeat(record::MAX_SOURCE + 1);
    assert!(chain.append(&e).is_err());
    assert_eq!(chain.head().seq, 0);
}

#[test]
fn newest_first_reads_back_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(
        dir.path(),
        ChainOptions {
            max_segment_bytes: 4096,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    fill(&mut chain, 0, 200, 10);
    drop(chain);
    assert!(list_segments(dir.path()).unwrap().len() > 3);
    let newest = |from: u64, before: u64, want: usize| {
        let mut seqs = Vec::new();
        read_records_newest_first(dir.path(), from, before, |r| {
            seqs.push(r.seq);
            seqs.len() < want
        })
        .unwrap();
        seqs
    };
    // 60 records back from 149: newest first, none missing at the segments' seams.
    assert_eq!(newest(1, 150, 60), (90..150).rev().collect::<Vec<_>>());
    // Bounded below too, and everything when the caller never stops.
    assert_eq!(
        newest(120, 150, usize::MAX),
        (120..150).rev().collect::<Vec<_>>()
    );
    assert_eq!(newest(1, u64::MAX, usize::MAX).len(), 200);
}

#[test]
fn newest_first_stops_at_the_newest_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chain, _) = AuditChain::open(dir.path(), ChainOptions::default()).unwrap();
    fill(&mut chain, 0, 30, 10);
    drop(chain);
    damage_record_time(dir.path(), 21);
    let mut seqs = Vec::new();
    read_records_newest_first(dir.path(), 1, u64::MAX, |r| {
        seqs.push(r.seq);
        true
    })
    .unwrap();
    assert_eq!(seqs, (22..=30).rev().collect::<Vec<_>>());
}
