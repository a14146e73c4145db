//! Reading segment files: a scan that finds where a segment's good part ends (used when the
//! chain is opened), and a record iterator for queries.

use std::fs;
use std::io;
use std::path::Path;

use super::record::{
    DecodeError, FRAME_HEAD, FRAME_TAIL, Frame, Hash, Record, TAG_RECORD, decode_frame,
    frame_extent,
};
use super::segment::{HEADER_LEN, SegmentHeader, list_segments, read_header};

/// Damage found at the end of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailDamage {
    /// Byte offset of the first bad frame.
    pub offset: u64,
    pub reason: String,
    /// Whether it looks like an interrupted write (nothing whole follows it) rather than
    /// damage to data written before.
    pub is_torn_tail: bool,
}

/// What a segment holds up to its first damage.
#[derive(Debug, Clone)]
pub struct SegmentScan {
    pub header: Result<SegmentHeader, String>,
    pub file_len: u64,
    pub all_zero: bool,
    /// End of the last whole, well-formed frame that continues the chain.
    pub valid_end: u64,
    pub next_seq: u64,
    pub head: Hash,
    pub next_block: u64,
    pub last_seal: Hash,
    /// Hashes of the whole records after the last seal.
    pub unsealed: Vec<Hash>,
    pub damage: Option<TailDamage>,
}

impl SegmentScan {
    pub fn all_zero_after(&self, _offset: u64) -> bool {
        self.all_zero
    }
}

/// Scans one segment file.
pub fn scan_segment(path: &Path) -> io::Result<SegmentScan> {
    let data = fs::read(path)?;
    let header = SegmentHeader::decode(&data);
    let mut scan = SegmentScan {
        header: header.clone(),
        file_len: data.len() as u64,
        all_zero: data.iter().all(|&b| b == 0),
        valid_end: 0,
        next_seq: 1,
        head: [0; 32],
        next_block: 0,
        last_seal: [0; 32],
        unsealed: Vec::new(),
        damage: None,
    };
    let Ok(header) = header else {
        return Ok(scan);
    };
    scan.next_seq = header.first_seq;
    scan.head = header.prev_hash;
    scan.next_block = header.first_block;
    scan.last_seal = header.prev_seal;
    let mut pos = HEADER_LEN;
    scan.valid_end = pos as u64;
    while pos < data.len() {
        let rest = &data[pos..];
        let damage = |reason: String, torn: bool| TailDamage {
            offset: pos as u64,
            reason,
            is_torn_tail: torn,
        };
        match decode_frame(rest) {
            Ok((Frame::Record(r), n)) => {
                if r.seq != scan.next_seq || r.prev_hash != scan.head {
                    scan.damage = Some(damage(
                        format!(
                            "record {} does not continue the chain after record {}",
                            r.seq,
                            scan.next_seq - 1
                        ),
                        false,
                    ));
                    break;
                }
                scan.head = r.hash;
                scan.next_seq += 1;
                scan.unsealed.push(r.hash);
                pos += n;
            }
            Ok((Frame::Seal(s), n)) => {
                if s.block != scan.next_block
                    || s.head_hash != scan.head
                    || s.count as usize != scan.unsealed.len()
                    || s.prev_seal != scan.last_seal
                {
                    scan.damage = Some(damage(
                        format!(
                            "seal of block {} does not match the records before it",
                            s.block
                        ),
                        false,
                    ));
                    break;
                }
                scan.last_seal = s.hash;
                scan.next_block += 1;
                scan.unsealed.clear();
                pos += n;
            }
            Err(DecodeError::Incomplete { have, need }) => {
                scan.damage = Some(damage(
                    format!("the last frame is incomplete ({have} of {need} bytes)"),
                    true,
                ));
                break;
            }
            Err(e) => {
                // Nothing whole after it: the write that produced it was interrupted.
                let torn = rest.iter().all(|&b| b == 0) || frame_reaches_end(rest);
                scan.damage = Some(damage(e.to_string(), torn));
                break;
            }
        }
        scan.valid_end = pos as u64;
    }
    Ok(scan)
}

/// Whether the frame starting `rest` (by its declared length) is the last thing in the file.
fn frame_reaches_end(rest: &[u8]) -> bool {
    if rest.len() < FRAME_HEAD {
        return true;
    }
    let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
    FRAME_HEAD.saturating_add(len).saturating_add(FRAME_TAIL) >= rest.len()
}

/// Calls `f` with every readable record of the chain in `dir` whose seq is at least
/// `from_seq`, in order, until `f` returns false. Reading stops at a segment's first damage
/// (`verify_dir` reports it).
pub fn read_records(
    dir: &Path,
    from_seq: u64,
    mut f: impl FnMut(Record) -> bool,
) -> io::Result<()> {
    let segments = list_segments(dir)?;
    let firsts: Vec<Option<u64>> = segments
        .iter()
        .map(|(_, p)| {
            read_header(p)
                .ok()
                .and_then(|h| h.ok())
                .map(|h| h.first_seq)
        })
        .collect();
    for (i, (_, path)) in segments.iter().enumerate() {
        if firsts
            .get(i + 1)
            .copied()
            .flatten()
            .is_some_and(|next| next <= from_seq)
        {
            continue;
        }
        if !read_segment(path, from_seq, &mut f)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Like [`read_records`], newest first: `f` gets the records with seq in
/// `from_seq..before_seq`, newest first, until it returns false. For "the latest N", which
/// then costs N decodes, not the chain's: see [`read_segment_newest_first`].
pub fn read_records_newest_first(
    dir: &Path,
    from_seq: u64,
    before_seq: u64,
    mut f: impl FnMut(Record) -> bool,
) -> io::Result<()> {
    let segments = list_segments(dir)?;
    for (_, path) in segments.iter().rev() {
        let first_seq = read_header(path)
            .ok()
            .and_then(Result::ok)
            .map(|h| h.first_seq);
        if first_seq.is_some_and(|first| first >= before_seq) {
            continue;
        }
        if !read_segment_newest_first(path, from_seq, before_seq, &mut f)? {
            return Ok(());
        }
        // The older segments hold only records before this one's first.
        if first_seq.is_some_and(|first| first <= from_seq) {
            return Ok(());
        }
    }
    Ok(())
}

/// Feeds one segment's records with seq in `from_seq..before_seq` to `f`, newest first;
/// false when `f` asked to stop. On the way to the end only each frame's 5-byte head is
/// read (through a small buffer: a full segment is 64 MiB); records are then read and
/// decoded, hashes checked, from the newest back, as far as `f` wants. Going back stops at
/// the newest damaged frame (where a forward read stops at the oldest; `verify_dir` reports
/// either).
fn read_segment_newest_first(
    path: &Path,
    from_seq: u64,
    before_seq: u64,
    f: &mut impl FnMut(Record) -> bool,
) -> io::Result<bool> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    use std::os::unix::fs::FileExt;

    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true), // retention
        Err(e) => return Err(e),
    };
    let file_len = file.metadata()?.len();
    let mut header = [0u8; HEADER_LEN];
    if file.read_exact_at(&mut header, 0).is_err() || SegmentHeader::decode(&header).is_err() {
        return Ok(true);
    }

    // Where each whole record frame is, up to the first frame whose head is not sound.
    let mut records: Vec<(u64, usize)> = Vec::new();
    let mut reader = BufReader::with_capacity(64 << 10, &file);
    let mut pos = reader.seek(SeekFrom::Start(HEADER_LEN as u64))?;
    let mut head = [0u8; FRAME_HEAD];
    while pos < file_len && reader.read_exact(&mut head).is_ok() {
        let Some((tag, len)) = frame_extent(&head) else {
            break;
        };
        if pos + len as u64 > file_len {
            break;
        }
        if tag == TAG_RECORD {
            records.push((pos, len));
        }
        reader.seek_relative((len - FRAME_HEAD) as i64)?;
        pos += len as u64;
    }

    let mut frame = Vec::new();
    for &(offset, len) in records.iter().rev() {
        frame.resize(len, 0);
        file.read_exact_at(&mut frame, offset)?;
        let Ok((Frame::Record(r), _)) = decode_frame(&frame) else {
            return Ok(true);
        };
        if r.seq >= before_seq {
            continue;
        }
        if r.seq < from_seq {
            return Ok(true);
        }
        if !f(r) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Feeds one segment's records from `from_seq` on to `f`; false when `f` asked to stop.
fn read_segment(
    path: &Path,
    from_seq: u64,
    f: &mut impl FnMut(Record) -> bool,
) -> io::Result<bool> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true), // retention
        Err(e) => return Err(e),
    };
    if SegmentHeader::decode(&data).is_err() {
        return Ok(true);
    }
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        match decode_frame(&data[pos..]) {
            Ok((Frame::Record(r), n)) => {
                pos += n;
                if r.seq >= from_seq && !f(r) {
                    return Ok(false);
                }
            }
            Ok((Frame::Seal(_), n)) => pos += n,
            Err(_) => break,
        }
    }
    Ok(true)
}
