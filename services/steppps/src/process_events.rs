//! Process lifecycle events from the `steppps` kernel module: the record ABI of `/dev/steppps`
//! (`modules/steppps/steppps_abi.h`, version 1), a parser that accepts any bytes without
//! panicking, a non-blocking reader for tokio, and the module's counters in
//! `/sys/kernel/steppps/`.
//!
//! The kernel writes records in its own byte order; this reader runs on the same machine, so
//! fields are read in native order. Every record says its size and version: a reader refuses
//! a version it does not know rather than misreading it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where the module's device and counters are.
pub const DEVICE: &str = "/dev/steppps";
pub const SYSFS_DIR: &str = "/sys/kernel/steppps";

/// `STEPPPS_ABI_VERSION` and `STEPPPS_RECORD_SIZE` of the header this reader follows.
pub const ABI_VERSION: u8 = 1;
pub const RECORD_SIZE: usize = 128;
const COMM_LEN: usize = 16;
const FILENAME_LEN: usize = 48;

/// `STEPPPS_F_*`.
pub const F_THREAD: u32 = 1 << 0;
pub const F_GROUP_DEAD: u32 = 1 << 1;
pub const F_TRUNCATED: u32 = 1 << 2;

/// What happened (`enum steppps_event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Fork,
    Exec,
    Exit,
    /// The reader fell behind and the kernel overwrote records: `Record::lost` of them.
    Lost,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fork => "fork",
            Kind::Exec => "exec",
            Kind::Exit => "exit",
            Kind::Lost => "lost",
        }
    }
}

/// One record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub cpu: u32,
    /// Position in that CPU's ring (for `Lost`: the first record missed).
    pub seq: u64,
    /// CLOCK_MONOTONIC, nanoseconds.
    pub time_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub cgroup_id: u64,
    /// Exit: the wait(2) status; exec: the tid before exec (a thread that called exec becomes
    /// the leader); fork: 0.
    pub exit_code: i32,
    pub flags: u32,
    /// Task start, CLOCK_MONOTONIC nanoseconds; with `pid` it names a process uniquely.
    pub start_ns: u64,
    pub comm: String,
    /// Exec: the program's path as given to exec (cut at 47 bytes: `F_TRUNCATED`).
    pub filename: String,
}

impl Record {
    /// For `Lost`, how many records this reader missed.
    pub fn lost(&self) -> u64 {
        if self.kind == Kind::Lost {
            self.start_ns
        } else {
            0
        }
    }

    /// A thread rather than a process (fork and exit of threads are recorded too).
    pub fn is_thread(&self) -> bool {
        self.flags & F_THREAD != 0
    }

    /// Exit of the last task of its process: the process is gone.
    pub fn process_ended(&self) -> bool {
        self.kind == Kind::Exit && self.flags & F_GROUP_DEAD != 0
    }

    /// For exits: the exit status, or the signal that ended the process.
    pub fn exit_status(&self) -> ExitStatus {
        let code = self.exit_code;
        if code & 0x7f == 0 {
            ExitStatus::Code((code >> 8) & 0xff)
        } else {
            ExitStatus::Signal(code & 0x7f)
        }
    }
}

/// How a process ended, decoded from the wait(2) status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0} bytes is not a whole number of {RECORD_SIZE}-byte records")]
    Length(usize),
    #[error("record size {0}, this reader knows {RECORD_SIZE}: a newer module ABI")]
    Size(u16),
    #[error("record ABI version {0}, this reader knows {ABI_VERSION}: update the reader")]
    Version(u8),
    #[error("unknown event type {0}")]
    Type(u8),
}

fn u16_at(b: &[u8; RECORD_SIZE], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8; RECORD_SIZE], at: usize) -> u32 {
    let mut v = [0; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(v)
}

fn u64_at(b: &[u8; RECORD_SIZE], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(v)
}

/// A C string field: up to the first NUL (or the whole field), invalid UTF-8 replaced.
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Decodes one record (`struct steppps_record`).
pub fn parse_record(bytes: &[u8; RECORD_SIZE]) -> Result<Record, ParseError> {
    let size = u16_at(bytes, 0);
    if usize::from(size) != RECORD_SIZE {
        return Err(ParseError::Size(size));
    }
    let version = bytes[2];
    if version != ABI_VERSION {
        return Err(ParseError::Version(version));
    }
    let kind = match bytes[3] {
        1 => Kind::Fork,
        2 => Kind::Exec,
        3 => Kind::Exit,
        4 => Kind::Lost,
        t => return Err(ParseError::Type(t)),
    };
    Ok(Record {
        kind,
        cpu: u32_at(bytes, 4),
        seq: u64_at(bytes, 8),
        time_ns: u64_at(bytes, 16),
        pid: u32_at(bytes, 24),
        tid: u32_at(bytes, 28),
        ppid: u32_at(bytes, 32),
        uid: u32_at(bytes, 36),
        cgroup_id: u64_at(bytes, 40),
        exit_code: u32_at(bytes, 48) as i32,
        flags: u32_at(bytes, 52),
        start_ns: u64_at(bytes, 56),
        comm: c_string(&bytes[64..64 + COMM_LEN]),
        filename: c_string(&bytes[80..80 + FILENAME_LEN]),
    })
}

/// Decodes what one read() returned: whole records, each decoded on its own (one bad
/// record does not hide the others).
pub fn parse_records(bytes: &[u8]) -> Result<Vec<Result<Record, ParseError>>, ParseError> {
    if bytes.len() % RECORD_SIZE != 0 {
        return Err(ParseError::Length(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(RECORD_SIZE)
        .map(|c| {
            let mut r = [0u8; RECORD_SIZE];
            r.copy_from_slice(c);
            parse_record(&r)
        })
        .collect())
}

/// Encodes a record as the kernel would: for tests, fixtures and the fuzz target.
pub fn encode_record(r: &Record) -> [u8; RECORD_SIZE] {
    let mut b = [0u8; RECORD_SIZE];
    b[0..2].copy_from_slice(&(RECORD_SIZE as u16).to_ne_bytes());
    b[2] = ABI_VERSION;
    b[3] = match r.kind {
        Kind::Fork => 1,
        Kind::Exec => 2,
        Kind::Exit => 3,
        Kind::Lost => 4,
    };
    b[4..8].copy_from_slice(&r.cpu.to_ne_bytes());
    b[8..16].copy_from_slice(&r.seq.to_ne_bytes());
    b[16..24].copy_from_slice(&r.time_ns.to_ne_bytes());
    b[24..28].copy_from_slice(&r.pid.to_ne_bytes());
    b[28..32].copy_from_slice(&r.tid.to_ne_bytes());
    b[32..36].copy_from_slice(&r.ppid.to_ne_bytes());
    b[36..40].copy_from_slice(&r.uid.to_ne_bytes());
    b[40..48].copy_from_slice(&r.cgroup_id.to_ne_bytes());
    b[48..52].copy_from_slice(&r.exit_code.to_ne_bytes());
    b[52..56].copy_from_slice(&r.flags.to_ne_bytes());
    b[56..64].copy_from_slice(&r.start_ns.to_ne_bytes());
    // Keep a NUL at the end of each field, as the kernel's strscpy does.
    let comm = r.comm.as_bytes();
    let n = comm.len().min(COMM_LEN - 1);
    b[64..64 + n].copy_from_slice(&comm[..n]);
    let file = r.filename.as_bytes();
    let n = file.len().min(FILENAME_LEN - 1);
    b[80..80 + n].copy_from_slice(&file[..n]);
    b
}

/// An open `/dev/steppps`: sees every event from the moment it was opened.
#[derive(Debug)]
pub struct Device {
    file: tokio::io::unix::AsyncFd<File>,
    buf: Vec<u8>,
}

/// Records per read(): enough to drain a burst in few system calls.
const BATCH: usize = 256;

impl Device {
    /// Opens the device non-blocking (needs a tokio runtime with I/O enabled).
    pub fn open(path: &Path) -> io::Result<Device> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(path)?;
        // Tokio 1.54 deprecates the safe constructor for an `unsafe` one whose contract (the
        // fd stays valid and the same while registered) a `File` moved into it keeps; the
        // workspace denies `unsafe` (as in steppps-space's hotplug socket).
        #[allow(deprecated)]
        let file = tokio::io::unix::AsyncFd::new(file)?;
        Ok(Device {
            file,
            buf: vec![0; RECORD_SIZE * BATCH],
        })
    }

    /// Waits for records and returns those one read() gave (at least one).
    pub async fn next_batch(&mut self) -> io::Result<Vec<Result<Record, ParseError>>> {
        loop {
            let mut guard = self.file.readable_mut().await?;
            let buf = &mut self.buf;
            match guard.try_io(|f| f.get_mut().read(buf)) {
                Ok(Ok(0)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the device returned end of file",
                    ));
                }
                Ok(Ok(n)) => {
                    return parse_records(&self.buf[..n])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The module's counters (`/sys/kernel/steppps/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub abi_version: u64,
    pub events: u64,
    pub forks: u64,
    pub execs: u64,
    pub exits: u64,
    pub drops: u64,
    pub readers: u64,
    pub buffer_records: u64,
    pub buffer_bytes: u64,
}

impl Counters {
    /// Reads the counters from `dir` (normally [`SYSFS_DIR`]).
    pub fn read(dir: &Path) -> io::Result<Counters> {
        let get = |name: &str| -> io::Result<u64> {
            let path: PathBuf = dir.join(name);
            let text = std::fs::read_to_string(&path)?;
            text.trim().parse().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}: {:?}", path.display(), text.trim()),
                )
            })
        };
        Ok(Counters {
            abi_version: get("abi_version")?,
            events: get("events")?,
            forks: get("forks")?,
            execs: get("execs")?,
            exits: get("exits")?,
            drops: get("drops")?,
            readers: get("readers")?,
            buffer_records: get("buffer_records")?,
            buffer_bytes: get("buffer_bytes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec() -> Record {
        Record {
            kind: Kind::Exec,
            cpu: 1,
            seq: 42,
            time_ns: 1_000_000_007,
            pid: 4242,
            tid: 4242,
            ppid: 1,
            uid: 1000,
            cgroup_id: 7777,
            exit_code: 4242,
            flags: 0,
            start_ns: 999,
            comm: "true".into(),
            filename: "/usr/bin/true".into(),
        }
    }

    #[test]
    fn layout_matches_the_header() {
        // Offsets of struct steppps_record (steppps_abi.h), checked byte by byte.
        let b = encode_record(&exec());
        assert_eq!(u16_at(&b, 0), 128);
        assert_eq!(b[2], 1);
        assert_eq!(b[3], 2);
        assert_eq!(u32_at(&b, 4), 1);
        assert_eq!(u64_at(&b, 8), 42);
        assert_eq!(u32_at(&b, 24), 4242);
        assert_eq!(u64_at(&b, 40), 7777);
        assert_eq!(&b[64..69], b"true\0");
        assert_eq!(&b[80..94], b"/usr/bin/true\0");
    }

    #[test]
    fn round_trip() {
        let r = exec();
        assert_eq!(parse_record(&encode_record(&r)), Ok(r));
    }

    #[test]
    fn header_numbers_match() {
        // The C header is the source of truth: read its defines.
        let header = include_str!("../../../modules/steppps/steppps_abi.h");
        let define = |name: &str| -> Option<u64> {
            header.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("#define") && w.next() == Some(name))
                    .then(|| w.next().and_then(|v| v.parse().ok()))
                    .flatten()
            })
        };
        assert_eq!(define("STEPPPS_ABI_VERSION"), Some(u64::from(ABI_VERSION)));
        assert_eq!(define("STEPPPS_RECORD_SIZE"), Some(RECORD_SIZE as u64));
        assert_eq!(define("STEPPPS_COMM_LEN"), Some(COMM_LEN as u64));
        assert_eq!(define("STEPPPS_FILENAME_LEN"), Some(FILENAME_LEN as u64));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let mut b = encode_record(&exec());
        b[2] = 2;
        assert_eq!(parse_record(&b), Err(ParseError::Version(2)));
        let mut b = encode_record(&exec());
        b[0..2].copy_from_slice(&256u16.to_ne_bytes());
        assert_eq!(parse_record(&b), Err(ParseError::Size(256)));
        let mut b = encode_record(&exec());
        b[3] = 9;
        assert_eq!(parse_record(&b), Err(ParseError::Type(9)));
        assert_eq!(parse_records(&[0; 130]), Err(ParseError::Length(130)));
    }

    #[test]
    fn strings_without_nul_and_invalid_utf8() {
        let mut b = encode_record(&exec());
        b[64..80].copy_from_slice(&[b'x'; 16]);
        b[80] = 0xff;
        let r = parse_record(&b).expect("record");
        assert_eq!(r.comm, "x".repeat(16));
        assert!(r.filename.starts_with('\u{fffd}'));
    }

    #[test]
    fn exit_status_and_lost() {
        let mut r = exec();
        r.kind = Kind::Exit;
        r.exit_code = 3 << 8;
        r.flags = F_GROUP_DEAD;
        assert_eq!(r.exit_status(), ExitStatus::Code(3));
        assert!(r.process_ended());
        r.exit_code = 9;
        assert_eq!(r.exit_status(), ExitStatus::Signal(9));
        r.kind = Kind::Lost;
        r.start_ns = 17;
        assert_eq!(r.lost(), 17);
    }

    #[test]
    fn batch_keeps_good_records_around_a_bad_one() {
        let mut bytes = encode_record(&exec()).to_vec();
        let mut bad = encode_record(&exec());
        bad[3] = 0;
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&encode_record(&exec()));
        let got = parse_records(&bytes).expect("whole records");
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[1].is_err() && got[2].is_ok());
    }

    #[test]
    fn counters_from_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, v) in [
            ("abi_version", "1"),
            ("events", "30"),
            ("forks", "10"),
            ("execs", "10"),
            ("exits", "10"),
            ("drops", "0"),
            ("readers", "2"),
            ("buffer_records", "8192"),
            ("buffer_bytes", "1048576"),
        ] {
            std::fs::write(dir.path().join(name), format!("{v}\n")).expect("write");
        }
        let c = Counters::read(dir.path()).expect("counters");
        assert_eq!((c.events, c.readers, c.buffer_records), (30, 2, 8192));
        std::fs::write(dir.path().join("drops"), "many\n").expect("write");
        let e = Counters::read(dir.path()).expect_err("bad counter");
        assert!(e.to_string().contains("drops"), "{e}");
    }
}
