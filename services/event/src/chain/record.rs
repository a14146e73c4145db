//! The on-disk frames of the audit chain and their codec.
//!
//! Every frame is `tag u8 | len u32 LE | payload[len] | hash[32]`. A record's hash is the
//! SHA-256 of its payload, and the payload ends with the previous record's hash, which is what
//! chains them. A seal's hash covers its payload up to (not including) the signature, and the
//! signature (ed25519, optional) signs that hash. Integers are little-endian; strings are
//! length-prefixed UTF-8.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash that precedes the first record of a new chain.
pub const GENESIS: Hash = [0; 32];

pub const TAG_RECORD: u8 = 0x01;
pub const TAG_SEAL: u8 = 0x02;
/// `tag` + `len`.
pub const FRAME_HEAD: usize = 5;
/// Bytes after the payload.
pub const FRAME_TAIL: usize = 32;

/// Limits that keep one record small enough to decode without trusting its length blindly.
pub const MAX_SOURCE: usize = 64;
pub const MAX_KIND: usize = 128;
pub const MAX_FIELDS: usize = 64;
pub const MAX_KEY: usize = 64;
pub const MAX_VALUE: usize = 8192;
/// Largest payload a frame may declare (a record within the limits above stays below it).
pub const MAX_PAYLOAD: usize = 1 << 20;

/// What to append: a record before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Microseconds since the Unix epoch.
    pub time_usec: u64,
    /// syslog severity: 0 (emergency) … 7 (debug).
    pub severity: u8,
    pub source: String,
    pub kind: String,
    /// Kept in the order given; callers that want a canonical form sort them.
    pub fields: Vec<(String, String)>,
}

/// A record as stored: the entry, its place and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub time_usec: u64,
    pub severity: u8,
    pub source: String,
    pub kind: String,
    pub fields: Vec<(String, String)>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl Record {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A block seal: the Merkle root of the block's record hashes, the chain head it ends at, the
/// previous seal (seals chain too), and an optional signature of its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub block: u64,
    pub first_seq: u64,
    pub count: u32,
    pub merkle_root: Hash,
    pub head_hash: Hash,
    pub prev_seal: Hash,
    pub time_usec: u64,
    /// 64 bytes when signed, empty otherwise.
    pub signature: Vec<u8>,
    /// SHA-256 of the payload without the signature.
    pub hash: Hash,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Record(Record),
    Seal(Seal),
}

/// Why an entry cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{what} is {len} bytes; at most {max} are allowed")]
    TooLong {
        what: String,
        len: usize,
        max: usize,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{count} fields; at most {MAX_FIELDS} are allowed")]
    TooManyFields { count: usize },
    #[error("severity {0} is out of range (0 emergency … 7 debug)")]
    Severity(u8),
    /// D-Bus strings cannot carry NUL: a record with one could never be read back.
    #[error("{0} contains a NUL character")]
    Nul(String),
}

impl Entry {
    /// Checks the limits of the record format.
    pub fn validate(&self) -> Result<(), EntryError> {
        // Lengths first, words only for an error: this runs for every record.
        fn too_long(what: String, len: usize, max: usize) -> EntryError {
            EntryError::TooLong { what, len, max }
        }
        if self.source.is_empty() {
            return Err(EntryError::Empty("source"));
        }
        if self.kind.is_empty() {
            return Err(EntryError::Empty("kind"));
        }
        if self.severity > 7 {
            return Err(EntryError::Severity(self.severity));
        }
        if self.source.len() > MAX_SOURCE {
            return Err(too_long("source".into(), self.source.len(), MAX_SOURCE));
        }
        if self.kind.len() > MAX_KIND {
            return Err(too_long("kind".into(), self.kind.len(), MAX_KIND));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(EntryError::TooManyFields {
                count: self.fields.len(),
            });
        }
        if self.source.contains('\0') || self.kind.contains('\0') {
            return Err(EntryError::Nul("the source or kind".into()));
        }
        for (k, v) in &self.fields {
            if k.contains('\0') || v.contains('\0') {
                return Err(EntryError::Nul(format!("field `{}`", prefix(k))));
            }
            if k.is_empty() {
                return Err(EntryError::Empty("a field name"));
            }
            if k.len() > MAX_KEY {
                return Err(too_long(
                    format!("field name `{}…`", prefix(k)),
                    k.len(),
                    MAX_KEY,
                ));
            }
            if v.len() > MAX_VALUE {
                return Err(too_long(
                    format!("field `{}`", prefix(k)),
                    v.len(),
                    MAX_VALUE,
                ));
            }
        }
        Ok(())
    }
}

fn prefix(s: &str) -> &str {
    let mut end = s.len().min(32);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a record frame for `entry` at `seq` after `prev` to `out`; returns its hash.
/// The entry must have passed [`Entry::validate`] (lengths are truncated to their prefix
/// widths otherwise).
pub fn encode_record(out: &mut Vec<u8>, seq: u64, entry: &Entry, prev: &Hash) -> Hash {
    let start = out.len();
    out.push(TAG_RECORD);
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&entry.time_usec.to_le_bytes());
    out.push(entry.severity);
    put_str16(out, &entry.source);
    put_str16(out, &entry.kind);
    out.extend_from_slice(&(entry.fields.len() as u16).to_le_bytes());
    for (k, v) in &entry.fields {
        put_str16(out, k);
        let v = v.as_bytes();
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out.extend_from_slice(prev);
    let len = (out.len() - body) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
    let hash: Hash = Sha256::digest(&out[body..]).into();
    out.extend_from_slice(&hash);
    hash
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&b[..len]);
}

/// The part of a seal its hash and signature cover.
pub fn seal_core(seal: &Seal) -> Vec<u8> {
    let mut core = Vec::with_capacity(8 + 8 + 4 + 32 * 3 + 8);
    core.extend_from_slice(&seal.block.to_le_bytes());
    core.extend_from_slice(&seal.first_seq.to_le_bytes());
    core.extend_from_slice(&seal.count.to_le_bytes());
    core.extend_from_slice(&seal.merkle_root);
    core.extend_from_slice(&seal.head_hash);
    core.extend_from_slice(&seal.prev_seal);
    core.extend_from_slice(&seal.time_usec.to_le_bytes());
    core
}

/// The hash of a seal (what its signature signs).
pub fn seal_hash(seal: &Seal) -> Hash {
    Sha256::digest(seal_core(seal)).into()
}

/// Appends a seal frame to `out`. `seal.hash` must be [`seal_hash`] of it.
pub fn encode_seal(out: &mut Vec<u8>, seal: &Seal) {
    let core = seal_core(seal);
    let sig_len = seal.signature.len().min(255);
    let len = (core.len() + 1 + sig_len) as u32;
    out.push(TAG_SEAL);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&core);
    out.push(sig_len as u8);
    out.extend_from_slice(&seal.signature[..sig_len]);
    out.extend_from_slice(&seal.hash);
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the frame does (a torn tail, or a frame being written).
    #[error("incomplete frame: {have} of {need} bytes")]
    Incomplete { have: usize, need: usize },
    /// The frame is whole but not well formed.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The frame is well formed but its stored hash does not match its contents.
    #[error("stored hash does not match the contents")]
    HashMismatch {
        /// The sequence number the frame claims (records) or its first (seals).
        seq: u64,
        tag: u8,
    },
}

/// Decodes the frame at the start of `buf`; returns it and how many bytes it took.
/// The tag and whole length of a frame, from its 5-byte head alone (no payload parsed, no
/// hash computed): for hopping over frames. `None` where [`decode_frame`] would fail on the
/// head: an unknown tag or an oversized frame. (Whether the file holds all of it is the
/// caller's to check.)
pub fn frame_extent(head: &[u8; FRAME_HEAD]) -> Option<(u8, usize)> {
    let tag = head[0];
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if (tag != TAG_RECORD && tag != TAG_SEAL) || len > MAX_PAYLOAD {
        return None;
    }
    Some((tag, FRAME_HEAD + len + FRAME_TAIL))
}

pub fn decode_frame(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    if buf.len() < FRAME_HEAD {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need: FRAME_HEAD,
        });
    }
    let tag = buf[0];
    if tag != TAG_RECORD && tag != TAG_SEAL {
        return Err(DecodeError::Malformed(format!(
            "unknown frame tag {tag:#04x}"
        )));
    }
    let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(DecodeError::Malformed(format!(
            "frame declares {len} bytes (more than {MAX_PAYLOAD})"
        )));
    }
    let total = FRAME_HEAD + len + FRAME_TAIL;
    if buf.len() < total {
        return Err(DecodeError::Incomplete {
            have: buf.len(),
            need: total,
        });
    }
    let payload = &buf[FRAME_HEAD..FRAME_HEAD + len];
    let mut stored = [0u8; 32];
    stored.copy_from_slice(&buf[FRAME_HEAD + len..total]);
    let frame = match tag {
        TAG_RECORD => {
            let record = parse_record(payload, stored)?;
            let actual: Hash = Sha256::digest(payload).into();
            if actual != stored {
                return Err(DecodeError::HashMismatch {
                    seq: record.seq,
                    tag,
                });
            }
            Frame::Record(record)
        }
        _ => {
            let seal = parse_seal(payload, stored)?;
            if seal_hash(&seal) != stored {
                return Err(DecodeError::HashMismatch {
                    seq: seal.first_seq,
                    tag,
                });
            }
            Frame::Seal(seal)
        }
    };
    Ok((frame, total))
}

/// A bounds-checked little-endian reader over a payload.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(DecodeError::Malformed(format!(
                "{what} runs past the end of the frame"
            )));
        };
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn hash(&mut self, what: &str) -> Result<Hash, DecodeError> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32, what)?);
        Ok(h)
    }
    fn string(&mut self, len: usize, max: usize, what: &str) -> Result<String, DecodeError> {
        if len > max {
            return Err(DecodeError::Malformed(format!(
                "{what} is {len} bytes (at most {max})"
            )));
        }
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| DecodeError::Malformed(format!("{what} is not UTF-8")))
    }
    fn done(&self, what: &str) -> Result<(), DecodeError> {
        if self.at != self.buf.len() {
            return Err(DecodeError::Malformed(format!(
                "{} bytes left over after the {what}",
                self.buf.len() - self.at
            )));
        }
        Ok(())
    }
}

fn parse_record(payload: &[u8], hash: Hash) -> Result<Record, DecodeError> {
    let mut c = Cursor {
        buf: payload,
        at: 0,
    };
    let seq = c.u64("seq")?;
    let time_usec = c.u64("time")?;
    let severity = c.u8("severity")?;
    let n = c.u16("source length")? as usize;
    let source = c.string(n, MAX_SOURCE, "source")?;
    let n = c.u16("kind length")? as usize;
    let kind = c.string(n, MAX_KIND, "kind")?;
    let count = c.u16("field count")? as usize;
    if count > MAX_FIELDS {
        return Err(DecodeError::Malformed(format!("{count} fields")));
    }
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let n = c.u16("field name length")? as usize;
        let k = c.string(n, MAX_KEY, "field name")?;
        let n = c.u32("field value length")? as usize;
        let v = c.string(n, MAX_VALUE, "field value")?;
        fields.push((k, v));
    }
    let prev_hash = c.hash("previous hash")?;
    c.done("record")?;
    Ok(Record {
        seq,
        time_usec,
        severity,
        source,
        kind,
        fields,
        prev_hash,
        hash,
    })
}

fn parse_seal(payload: &[u8], hash: Hash) -> Result<Seal, DecodeError> {
    let mut c = Cursor {
        buf: payload,
        at: 0,
    };
    let block = c.u64("block")?;
    let first_seq = c.u64("first seq")?;
    let count = c.u32("count")?;
    let merkle_root = c.hash("Merkle root")?;
    let head_hash = c.hash("head hash")?;
    let prev_seal = c.hash("previous seal")?;
    let time_usec = c.u64("time")?;
    let sig_len = c.u8("signature length")? as usize;
    if sig_len != 0 && sig_len != 64 {
        return Err(DecodeError::Malformed(format!(
            "signature of {sig_len} bytes (want 0 or 64)"
        )));
    }
    let signature = c.take(sig_len, "signature")?.to_vec();
    c.done("seal")?;
    Ok(Seal {
        block,
        first_seq,
        count,
        merkle_root,
        head_hash,
        prev_seal,
        time_usec,
        signature,
        hash,
    })
}

/// Lower-case hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses lower- or upper-case hex into bytes.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time_usec: 1_700_000_000_000_000,
            severity: 6,
            source: "test".into(),
            kind: "thing.happened".into(),
            fields: vec![
                ("unit".into(), "a.service".into()),
                ("n".into(), "é".into()),
            ],
        }
    }

    #[test]
    fn record_round_trips_and_chains() {
        let mut buf = Vec::new();
        let h1 = encode_record(&mut buf, 1, &entry(), &GENESIS);
        let first_len = buf.len();
        let h2 = encode_record(&mut buf, 2, &entry(), &h1);
        assert_ne!(h1, h2);
        let (frame, used) = decode_frame(&buf).unwrap();
        assert_eq!(used, first_len);
        let Frame::Record(r) = frame else { panic!() };
        assert_eq!((r.seq, r.hash, r.prev_hash), (1, h1, GENESIS));
        assert_eq!(r.field("n"), Some("é"));
        let (Frame::Record(r2), _) = decode_frame(&buf[used..]).unwrap() else {
            panic!()
        };
        assert_eq!(r2.prev_hash, h1);
    }

    #[test]
    fn a_nul_anywhere_is_refused() {
        assert!(entry().validate().is_ok());
        let mut e = entry();
        e.fields[1].1 = "a\0b".into();
        assert_eq!(e.validate(), Err(EntryError::Nul("field `n`".into())));
        let mut e = entry();
        e.kind = "thing\0".into();
        assert!(matches!(e.validate(), Err(EntryError::Nul(_))));
    }

    #[test]
    fn frame_extent_reads_only_the_head() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 1, &entry(), &GENESIS);
        let (_, used) = decode_frame(&buf).unwrap();
        let head = |buf: &[u8]| <[u8; FRAME_HEAD]>::try_from(&buf[..FRAME_HEAD]).unwrap();
        assert_eq!(frame_extent(&head(&buf)), Some((TAG_RECORD, used)));
        // A foreign tag or a length over the limit has no extent.
        let mut foreign = buf.clone();
        foreign[0] = 0x7f;
        assert_eq!(frame_extent(&head(&foreign)), None);
        let mut huge = buf.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(frame_extent(&head(&huge)), None);
    }

    #[test]
    fn flipped_byte_and_short_input_are_told_apart() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, &entry(), &GENESIS);
        for cut in 0..buf.len() {
            assert!(matches!(
                decode_frame(&buf[..cut]),
                Err(DecodeError::Incomplete { .. })
            ));
        }
        let at = buf.iter().position(|&b| b == b't').unwrap();
        buf[at] ^= 0x01;
        assert_eq!(
            decode_frame(&buf),
            Err(DecodeError::HashMismatch {
                seq: 7,
                tag: TAG_RECORD
            })
        );
    }

    #[test]
    fn seal_round_trips() {
        let mut seal = Seal {
            block: 3,
            first_seq: 10,
            count: 2,
            merkle_root: [1; 32],
            head_hash: [2; 32],
            prev_seal: [3; 32],
            time_usec: 5,
            signature: vec![9; 64],
            hash: [0; 32],
        };
        seal.hash = seal_hash(&seal);
        let mut buf = Vec::new();
        encode_seal(&mut buf, &seal);
        let (Frame::Seal(back), n) = decode_frame(&buf).unwrap() else {
            panic!()
        };
        assert_eq!(n, buf.len());
        assert_eq!(back, seal);
    }

    #[test]
    fn limits_are_enforced() {
        let mut e = entry();
        e.fields.push(("big".into(), "x".repeat(MAX_VALUE + 1)));
        assert!(matches!(e.validate(), Err(EntryError::TooLong { .. })));
        let mut e = entry();
        e.severity = 8;
        assert!(e.validate().is_err());
        assert!(entry().validate().is_ok());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00ab10").unwrap(), vec![0, 0xab, 0x10]);
        assert!(unhex("0g").is_none());
    }
}
