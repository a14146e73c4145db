//! "A program was just started": exec notifications for daemons that act on new processes
//! (the time dimension places them into their class's slice at exec time).
//!
//! Two kernel sources, tried in this order by [`ExecWatch::open`]:
//! 1. the steppps kernel module's `/dev/steppps` ([`crate::process_events`]), which QuantumOS
//!    loads at boot: a root-only device node, no capability needed beyond reading it;
//! 2. the kernel's process events connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`), present in
//!    every Debian kernel: subscribing needs `CAP_NET_ADMIN` in the initial network namespace.
//!
//! When neither can be opened the caller falls back to scanning `/proc`, and says so; the
//! error returned here explains why each source was refused.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{MsgFlags, NetlinkAddr, bind, recv, sendto};
use tokio::io::unix::AsyncFd;

use crate::process_events::{Device, Kind, ParseError, Record};

/// What [`ExecWatch::next`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Process `pid` (its thread-group id) has just executed a new program. `filename` is what
    /// the kernel module saw (possibly truncated); the proc connector does not say it.
    Exec { pid: u32, filename: Option<String> },
    /// Notifications were lost (`count` of them, 0 when the source cannot tell): the caller
    /// should look at every process again.
    Missed { count: u64 },
}

/// An open source of exec notifications.
#[derive(Debug)]
pub struct ExecWatch {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Module(Device),
    Connector(ProcConnector),
}

impl ExecWatch {
    /// Opens the module's `device` (normally [`crate::process_events::DEVICE`]), or else
    /// subscribes to the proc connector. Needs a tokio runtime with I/O enabled.
    pub fn open(device: &Path) -> Result<ExecWatch, String> {
        let module_error = match Device::open(device) {
            Ok(dev) => {
                return Ok(ExecWatch {
                    source: Source::Module(dev),
                });
            }
            Err(e) => format!("{}: {e}", device.display()),
        };
        match ProcConnector::subscribe() {
            Ok(c) => Ok(ExecWatch {
                source: Source::Connector(c),
            }),
            Err(e) => Err(format!(
                "{module_error}; proc connector: {e} (subscribing needs CAP_NET_ADMIN in the \
                 host's network namespace)"
            )),
        }
    }

    /// Names the source, for status lines and logs.
    pub fn source(&self) -> &'static str {
        match self.source {
            Source::Module(_) => "the steppps kernel module",
            Source::Connector(_) => "the kernel's proc connector",
        }
    }

    /// Waits for notifications and returns those one read gave (at least one, in order).
    /// An error means the source itself failed.
    pub async fn next(&mut self) -> io::Result<Vec<ExecEvent>> {
        loop {
            let events = match &mut self.source {
                Source::Module(dev) => module_execs(dev.next_batch().await?),
                Source::Connector(c) => c.next_batch().await?,
            };
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }
}

/// The exec records of one batch from the module; unreadable records count as missed.
fn module_execs(batch: Vec<Result<Record, ParseError>>) -> Vec<ExecEvent> {
    let mut events = Vec::new();
    for record in batch {
        match record {
            Ok(r) if r.kind == Kind::Exec => events.push(ExecEvent::Exec {
                pid: r.pid,
                filename: Some(r.filename),
            }),
            Ok(r) if r.kind == Kind::Lost => events.push(ExecEvent::Missed { count: r.lost() }),
            Ok(_) => {}
            Err(_) => events.push(ExecEvent::Missed { count: 1 }),
        }
    }
    events
}

// The proc connector's wire format (linux/netlink.h, linux/connector.h, linux/cn_proc.h).
// All fields are in the host's byte order: the kernel and this reader run on one machine.
const NETLINK_CONNECTOR: i32 = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_DONE: u16 = 3;
const NLMSG_HEADER_LEN: usize = 16;
const CN_MSG_HEADER_LEN: usize = 20;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
/// `struct proc_event`: what (u32), cpu (u32), timestamp_ns (u64), then the event's data;
/// for exec, process_pid and process_tgid.
const PROC_EVENT_DATA_OFFSET: usize = 16;

/// A netlink socket subscribed to the proc connector's multicast group.
#[derive(Debug)]
struct ProcConnector {
    socket: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl ProcConnector {
    fn subscribe() -> io::Result<ProcConnector> {
        // nix has no SockProtocol for NETLINK_CONNECTOR; socket2 takes the number.
        let socket = socket2::Socket::new(
            socket2::Domain::from(nix::libc::AF_NETLINK),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::from(NETLINK_CONNECTOR)),
        )?;
        socket.set_nonblocking(true)?;
        // A burst of execs (a build, a boot) can outrun us; a large buffer makes loss rarer,
        // and a loss is reported (ENOBUFS) rather than silent.
        let _ = socket.set_recv_buffer_size(4 << 20);
        let socket = OwnedFd::from(socket);
        bind(socket.as_raw_fd(), &NetlinkAddr::new(0, CN_IDX_PROC))?;
        let listen = listen_request(std::process::id());
        sendto(
            socket.as_raw_fd(),
            &listen,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        // Tokio 1.54 deprecates the safe constructor for an `unsafe` one whose contract (the
        // fd stays valid and the same while registered) an OwnedFd moved into it keeps; the
        // workspace denies `unsafe` (as for the module's device).
        #[allow(deprecated)]
        let socket = AsyncFd::new(socket)?;
        Ok(ProcConnector {
            socket,
            buf: vec![0; 64 << 10],
        })
    }

    async fn next_batch(&mut self) -> io::Result<Vec<ExecEvent>> {
        loop {
            let mut guard = self.socket.readable_mut().await?;
            let buf = &mut self.buf;
            match guard.try_io(|s| {
                recv(s.get_ref().as_raw_fd(), buf, MsgFlags::empty()).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => return Ok(parse_datagram(&self.buf[..n])),
                // The socket's buffer overflowed: the kernel dropped notifications.
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                    return Ok(vec![ExecEvent::Missed { count: 0 }]);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The netlink message that subscribes `port` to process events.
fn listen_request(port: u32) -> Vec<u8> {
    let payload = PROC_CN_MCAST_LISTEN.to_ne_bytes();
    let total = NLMSG_HEADER_LEN + CN_MSG_HEADER_LEN + payload.len();
    let mut m = Vec::with_capacity(total);
    // nlmsghdr: length, type, flags, sequence, port
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&port.to_ne_bytes());
    // cn_msg: id (idx, val), seq, ack, len, flags
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&payload);
    m
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The exec notifications in one datagram from the proc connector. Anything else (other
/// events, the reply to the subscription, other connector users, malformed bytes) is skipped.
fn parse_datagram(mut b: &[u8]) -> Vec<ExecEvent> {
    let mut events = Vec::new();
    while let Some(len) = u32_at(b, 0) {
        let len = len as usize;
        if len < NLMSG_HEADER_LEN || len > b.len() {
            break;
        }
        if let Some(e) = parse_message(&b[..len]) {
            events.push(e);
        }
        // Netlink messages are 4-byte aligned.
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    events
}

fn parse_message(m: &[u8]) -> Option<ExecEvent> {
    let cn = m.get(NLMSG_HEADER_LEN..)?;
    if u32_at(cn, 0)? != CN_IDX_PROC || u32_at(cn, 4)? != CN_VAL_PROC {
        return None;
    }
    let data_len = usize::from(u16_at(cn, 16)?);
    let event = cn.get(CN_MSG_HEADER_LEN..CN_MSG_HEADER_LEN + data_len)?;
    if u32_at(event, 0)? != PROC_EVENT_EXEC {
        return None;
    }
    let tgid = u32_at(event, PROC_EVENT_DATA_OFFSET + 4)?;
    Some(ExecEvent::Exec {
        pid: tgid,
        filename: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel sends it for one exec of `tgid` (thread `pid`).
    fn exec_message(pid: u32, tgid: u32) -> Vec<u8> {
        let mut event = Vec::new();
        event.extend_from_slice(&PROC_EVENT_EXEC.to_ne_bytes());
        event.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        event.extend_from_slice(&123_456u64.to_ne_bytes()); // timestamp
        event.extend_from_slice(&pid.to_ne_bytes());
        event.extend_from_slice(&tgid.to_ne_bytes());
        let mut m = listen_request(0);
        m.truncate(NLMSG_HEADER_LEN + CN_MSG_HEADER_LEN);
        m[NLMSG_HEADER_LEN + 16..NLMSG_HEADER_LEN + 18]
            .copy_from_slice(&(event.len() as u16).to_ne_bytes());
        m.extend_from_slice(&event);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn exec_messages_are_read_and_everything_else_skipped() {
        let mut two = exec_message(41, 40);
        two.extend(exec_message(50, 50));
        assert_eq!(
            parse_datagram(&two),
            vec![
                ExecEvent::Exec {
                    pid: 40,
                    filename: None
                },
                ExecEvent::Exec {
                    pid: 50,
                    filename: None
                }
            ]
        );
        // A fork event (what = 1) and the subscription's own echo are not execs.
        let mut fork = exec_message(7, 7);
        fork[NLMSG_HEADER_LEN + CN_MSG_HEADER_LEN..][..4].copy_from_slice(&1u32.to_ne_bytes());
        assert!(parse_datagram(&fork).is_empty());
        assert!(parse_datagram(&listen_request(9)).is_empty());
        // Another connector user's message.
        let mut other = exec_message(7, 7);
        other[NLMSG_HEADER_LEN..][..4].copy_from_slice(&5u32.to_ne_bytes());
        assert!(parse_datagram(&other).is_empty());
    }

    #[test]
    fn malformed_datagrams_give_nothing_and_do_not_panic() {
        let good = exec_message(3, 3);
        for cut in 0..good.len() {
            assert!(parse_datagram(&good[..cut]).is_empty(), "cut at {cut}");
        }
        // A length field pointing past the end, or below the header size.
        let mut long = good.clone();
        long[..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert!(parse_datagram(&long).is_empty());
        let mut short = good.clone();
        short[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(parse_datagram(&short).is_empty());
        // A cn_msg claiming more data than the message holds.
        let mut claim = good;
        claim[NLMSG_HEADER_LEN + 16..][..2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert!(parse_datagram(&claim).is_empty());
    }

    #[test]
    fn module_records_become_execs_and_losses() {
        let exec = Record {
            kind: Kind::Exec,
            cpu: 0,
            seq: 1,
            time_ns: 5,
            pid: 100,
            tid: 100,
            ppid: 1,
            uid: 0,
            cgroup_id: 9,
            exit_code: 0,
            flags: 0,
            start_ns: 1,
            comm: "python3".into(),
            filename: "/usr/bin/python3".into(),
        };
        let fork = Record {
            kind: Kind::Fork,
            ..exec.clone()
        };
        let events = module_execs(vec![Ok(fork), Ok(exec), Err(ParseError::Version(9))]);
        assert_eq!(
            events,
            vec![
                ExecEvent::Exec {
                    pid: 100,
                    filename: Some("/usr/bin/python3".into())
                },
                ExecEvent::Missed { count: 1 }
            ]
        );
    }

    /// The real proc connector: a child we start is reported with its pid. Needs
    /// CAP_NET_ADMIN in the host's network namespace (root on CI and development machines);
    /// elsewhere the test says why it cannot run instead of passing silently.
    #[tokio::test]
    async fn the_proc_connector_reports_a_child_we_start() {
        let mut watch = match ProcConnector::subscribe() {
            Ok(w) => w,
            Err(e) if std::env::var_os("QOS_REQUIRE_PROC_CONNECTOR").is_none() => {
                eprintln!("SKIPPED: cannot subscribe to the proc connector here: {e}");
                return;
            }
            Err(e) => panic!("cannot subscribe to the proc connector: {e}"),
        };
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .expect("start sleep");
        let child_pid = child.id().expect("child pid");
        let seen = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            loop {
                let batch = watch.next_batch().await.expect("read the connector");
                if batch.contains(&ExecEvent::Exec {
                    pid: child_pid,
                    filename: None,
                }) {
                    return;
                }
            }
        })
        .await;
        let _ = child.kill().await;
        assert!(seen.is_ok(), "no exec notification for pid {child_pid}");
    }

    #[tokio::test]
    async fn open_without_the_module_names_the_missing_device() {
        let missing = Path::new("/nonexistent/steppps");
        match ExecWatch::open(missing) {
            // With CAP_NET_ADMIN the connector is the fallback.
            Ok(w) => assert_eq!(w.source(), "the kernel's proc connector"),
            Err(e) if std::env::var_os("QOS_REQUIRE_PROC_CONNECTOR").is_some() => {
                panic!("no fallback to the proc connector: {e}")
            }
            // Without it, the error names both sources and what is missing.
            Err(e) => assert!(
                e.contains("/nonexistent/steppps") && e.contains("CAP_NET_ADMIN"),
                "{e}"
            ),
        }
    }
}
