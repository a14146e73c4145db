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
use std::path::Path;

use crate::proc_connector::ProcConnector;
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
                Source::Module(dev) => execs(dev.next_batch().await?),
                Source::Connector(c) => execs(c.next_batch().await?.into_iter().map(Ok)),
            };
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }
}

/// The exec records of one batch; unreadable records count as missed.
fn execs(batch: impl IntoIterator<Item = Result<Record, ParseError>>) -> Vec<ExecEvent> {
    let mut events = Vec::new();
    for record in batch {
        match record {
            // The proc connector does not give the path (empty).
            Ok(r) if r.kind == Kind::Exec => events.push(ExecEvent::Exec {
                pid: r.pid,
                filename: (!r.filename.is_empty()).then_some(r.filename),
            }),
            Ok(r) if r.kind == Kind::Lost => events.push(ExecEvent::Missed { count: r.lost() }),
            Ok(_) => {}
            Err(_) => events.push(ExecEvent::Missed { count: 1 }),
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_execs_and_losses() {
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
        // What the proc connector gives: no path, and losses of unknown size.
        let connector_exec = Record {
            pid: 200,
            filename: String::new(),
            ..exec.clone()
        };
        let connector_lost = Record {
            kind: Kind::Lost,
            start_ns: 0,
            ..exec.clone()
        };
        let events = execs(vec![
            Ok(fork),
            Ok(exec),
            Err(ParseError::Version(9)),
            Ok(connector_exec),
            Ok(connector_lost),
        ]);
        assert_eq!(
            events,
            vec![
                ExecEvent::Exec {
                    pid: 100,
                    filename: Some("/usr/bin/python3".into())
                },
                ExecEvent::Missed { count: 1 },
                ExecEvent::Exec {
                    pid: 200,
                    filename: None
                },
                ExecEvent::Missed { count: 0 },
            ]
        );
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
