//! Segment files: a fixed header that anchors the segment in the chain, then frames. And the
//! `head` file, which remembers the last committed seal so that a cut-off chain is noticed.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::record::{Hash, hex, unhex};

pub const MAGIC: &[u8; 8] = b"QOSCHAIN";
pub const VERSION: u32 = 1;
/// The segment was started after the previous one was quarantined as corrupt: its
/// `prev_hash` is the last good record before the damage, not the end of the previous file.
pub const FLAG_AFTER_QUARANTINE: u32 = 1;
pub const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 8 + 8 + 32 + 32 + 32;
pub const SEGMENT_SUFFIX: &str = ".seg";
pub const HEAD_FILE: &str = "head";
pub const PUBLIC_KEY_FILE: &str = "signing.pub";

/// Where a segment starts in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub flags: u32,
    pub index: u64,
    pub first_seq: u64,
    pub first_block: u64,
    /// The chain head before this segment's first record.
    pub prev_hash: Hash,
    /// The last seal before this segment.
    pub prev_seal: Hash,
}

impl SegmentHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
        b.extend_from_slice(&self.index.to_le_bytes());
        b.extend_from_slice(&self.first_seq.to_le_bytes());
        b.extend_from_slice(&self.first_block.to_le_bytes());
        b.extend_from_slice(&self.prev_hash);
        b.extend_from_slice(&self.prev_seal);
        let h: Hash = Sha256::digest(&b).into();
        b.extend_from_slice(&h);
        b
    }

    pub fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        if b.len() < HEADER_LEN {
            return Err(format!("header is {} bytes, want {HEADER_LEN}", b.len()));
        }
        if &b[..8] != MAGIC {
            return Err("not a QuantumOS audit segment (bad magic)".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let hash_at = |at: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&b[at..at + 32]);
            h
        };
        if u32_at(8) != VERSION {
            return Err(format!(
                "format version {} (this reads {VERSION})",
                u32_at(8)
            ));
        }
        let stored = hash_at(HEADER_LEN - 32);
        let actual: Hash = Sha256::digest(&b[..HEADER_LEN - 32]).into();
        if stored != actual {
            return Err("header hash does not match the header".into());
        }
        Ok(SegmentHeader {
            flags: u32_at(12),
            index: u64_at(16),
            first_seq: u64_at(24),
            first_block: u64_at(32),
            prev_hash: hash_at(40),
            prev_seal: hash_at(72),
        })
    }
}

/// The file name of segment `index`.
pub fn segment_name(index: u64) -> String {
    format!("{index:016}{SEGMENT_SUFFIX}")
}

/// The segments in `dir`, by index.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if let Ok(index) = stem.parse::<u64>() {
            out.push((index, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a segment's header only.
pub fn read_header(path: &Path) -> io::Result<Result<SegmentHeader, String>> {
    let mut b = [0u8; HEADER_LEN];
    let mut f = fs::File::open(path)?;
    let mut have = 0;
    while have < HEADER_LEN {
        let n = f.read(&mut b[have..])?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(SegmentHeader::decode(&b[..have]))
}

/// The last committed seal, as the writer last recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub segment: u64,
    pub seq: u64,
    pub hash: Hash,
    pub block: u64,
    pub seal: Hash,
    /// The seal's signature; empty when blocks are not signed.
    pub signature: Vec<u8>,
}

impl Head {
    pub fn to_text(&self) -> String {
        format!(
            "QOSCHAIN-HEAD 1\nsegment {}\nseq {}\nhash {}\nblock {}\nseal {}\nsignature {}\n",
            self.segment,
            self.seq,
            hex(&self.hash),
            self.block,
            hex(&self.seal),
            if self.signature.is_empty() {
                "-".to_string()
            } else {
                hex(&self.signature)
            }
        )
    }

    pub fn parse(text: &str) -> Result<Head, String> {
        let mut lines = text.lines();
        if lines.next() != Some("QOSCHAIN-HEAD 1") {
            return Err("not a head file (first line is not `QOSCHAIN-HEAD 1`)".into());
        }
        let mut get = |key: &str| -> Result<String, String> {
            let line = lines.next().ok_or_else(|| format!("`{key}` is missing"))?;
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| format!("expected `{key} …`, found `{line}`"))
        };
        let num = |s: String, key: &str| s.parse::<u64>().map_err(|_| format!("bad {key} `{s}`"));
        let hash = |s: String, key: &str| -> Result<Hash, String> {
            unhex(&s)
                .and_then(|v| <Hash>::try_from(v.as_slice()).ok())
                .ok_or_else(|| format!("bad {key} `{s}`"))
        };
        let segment = num(get("segment")?, "segment")?;
        let seq = num(get("seq")?, "seq")?;
        let h = hash(get("hash")?, "hash")?;
        let block = num(get("block")?, "block")?;
        let seal = hash(get("seal")?, "seal")?;
        let sig = get("signature")?;
        let signature = if sig == "-" {
            Vec::new()
        } else {
            unhex(&sig).ok_or_else(|| format!("bad signature `{sig}`"))?
        };
        Ok(Head {
            segment,
            seq,
            hash: h,
            block,
            seal,
            signature,
        })
    }

    pub fn read(dir: &Path) -> io::Result<Option<Result<Head, String>>> {
        match fs::read_to_string(dir.join(HEAD_FILE)) {
            Ok(text) => Ok(Some(Head::parse(&text))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the head file atomically (write a temporary file, optionally fsync it, rename).
    pub fn write(&self, dir: &Path, sync: bool) -> io::Result<()> {
        let tmp = dir.join(".head.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(self.to_text().as_bytes())?;
        if sync {
            f.sync_data()?;
        }
        drop(f);
        fs::rename(&tmp, dir.join(HEAD_FILE))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_and_head_round_trip() {
        let h = SegmentHeader {
            flags: FLAG_AFTER_QUARANTINE,
            index: 4,
            first_seq: 100,
            first_block: 7,
            prev_hash: [5; 32],
            prev_seal: [6; 32],
        };
        let b = h.encode();
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());

        let head = Head {
            segment: 1,
            seq: 2,
            hash: [3; 32],
            block: 4,
            seal: [5; 32],
            signature: vec![],
        };
        assert_eq!(Head::parse(&head.to_text()).unwrap(), head);
        assert!(Head::parse("garbage").is_err());
    }
}
