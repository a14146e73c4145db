//! Process lifecycle events (fork, exec, exit) from the `steppps` kernel module's
//! `/dev/steppps`, through [`steppps::process_events`]. Without the module there is no other
//! source of these here: the source says so in its state and waits for the device to appear
//! (the module may be loaded later).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use steppps::process_events::{Counters, Device, ExitStatus, Kind, Record, SYSFS_DIR};

use crate::chain::{Entry, now_usec};
use crate::{EventLog, Pending};

pub const SOURCE: &str = "process";

/// How often to look again for a missing device.
const RETRY: Duration = Duration::from_secs(10);

/// The event for one record (`None` for `Lost`, which is counted instead).
pub fn entry(r: &Record) -> Option<Entry> {
    let thread = r.is_thread();
    let kind = match (r.kind, thread) {
        (Kind::Fork, false) => "process.fork",
        (Kind::Fork, true) => "thread.start",
        (Kind::Exec, _) => "process.exec",
        (Kind::Exit, _) if r.process_ended() => "process.exit",
        (Kind::Exit, _) => "thread.exit",
        (Kind::Lost, _) => return None,
    };
    let mut severity = 6;
    let mut fields = vec![
        ("pid".to_string(), r.pid.to_string()),
        ("ppid".to_string(), r.ppid.to_string()),
        ("uid".to_string(), r.uid.to_string()),
        ("cgroup_id".to_string(), r.cgroup_id.to_string()),
        ("comm".to_string(), r.comm.clone()),
        ("kernel_time_ns".to_string(), r.time_ns.to_string()),
    ];
    if thread || r.kind == Kind::Exit {
        fields.push(("tid".to_string(), r.tid.to_string()));
    }
    match r.kind {
        Kind::Exec => fields.push(("filename".to_string(), r.filename.clone())),
        Kind::Exit => match r.exit_status() {
            ExitStatus::Code(c) => fields.push(("exit_code".to_string(), c.to_string())),
            ExitStatus::Signal(s) => {
                severity = 5;
                fields.push(("signal".to_string(), s.to_string()));
            }
        },
        _ => {}
    }
    fields.sort();
    Some(Entry {
        time_usec: now_usec(),
        severity,
        source: SOURCE.into(),
        kind: kind.into(),
        fields,
    })
}

/// Follows `device` (normally [`steppps::process_events::DEVICE`]) until it fails.
pub async fn follow(log: Arc<EventLog>, device: &Path) {
    let mut dev = loop {
        match Device::open(device) {
            Ok(d) => break d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => log.set_source_state(
                SOURCE,
                format!(
                    "unavailable: {} is missing (the steppps kernel module is not loaded); \
                     process events are not recorded",
                    device.display()
                ),
            ),
            Err(e) => {
                log.set_source_state(SOURCE, format!("unavailable: {}: {e}", device.display()));
                return;
            }
        }
        tokio::time::sleep(RETRY).await;
    };
    let abi = Counters::read(Path::new(SYSFS_DIR))
        .map(|c| format!(" (module ABI {})", c.abi_version))
        .unwrap_or_default();
    log.set_source_state(SOURCE, "on");
    tracing::info!("process events from {}{abi}", device.display());
    loop {
        let batch = match dev.next_batch().await {
            Ok(b) => b,
            Err(e) => {
                log.set_source_state(SOURCE, format!("stopped: {}: {e}", device.display()));
                return;
            }
        };
        for record in batch {
            match record {
                Ok(r) if r.kind == Kind::Lost => {
                    // The kernel overwrote records before we read them: counted, never silent.
                    log.count_shed_many("kernel ring overflow: process", r.lost());
                }
                Ok(r) => {
                    if let Some(e) = entry(&r) {
                        log.offer(Pending::new(e));
                    }
                }
                Err(e) => log.count_shed(&format!("unreadable kernel record: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steppps::process_events::{F_GROUP_DEAD, F_THREAD};

    fn record(kind: Kind, flags: u32, exit_code: i32) -> Record {
        Record {
            kind,
            cpu: 0,
            seq: 1,
            time_ns: 5,
            pid: 100,
            tid: 101,
            ppid: 1,
            uid: 0,
            cgroup_id: 9,
            exit_code,
            flags,
            start_ns: 3,
            comm: "sh".into(),
            filename: "/bin/sh".into(),
        }
    }

    fn field<'a>(e: &'a Entry, key: &str) -> Option<&'a str> {
        e.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn kinds() {
        let kind = |r: Record| entry(&r).map(|e| e.kind);
        assert_eq!(
            kind(record(Kind::Fork, 0, 0)).as_deref(),
            Some("process.fork")
        );
        assert_eq!(
            kind(record(Kind::Fork, F_THREAD, 0)).as_deref(),
            Some("thread.start")
        );
        assert_eq!(
            kind(record(Kind::Exit, F_GROUP_DEAD, 0)).as_deref(),
            Some("process.exit")
        );
        assert_eq!(
            kind(record(Kind::Exit, F_THREAD, 0)).as_deref(),
            Some("thread.exit")
        );
        assert_eq!(kind(record(Kind::Lost, 0, 0)), None);
    }

    #[test]
    fn exec_and_exit_fields() {
        let e = entry(&record(Kind::Exec, 0, 100)).expect("entry");
        assert_eq!(field(&e, "filename"), Some("/bin/sh"));
        assert_eq!(field(&e, "pid"), Some("100"));
        let e = entry(&record(Kind::Exit, F_GROUP_DEAD, 2 << 8)).expect("entry");
        assert_eq!((field(&e, "exit_code"), e.severity), (Some("2"), 6));
        let e = entry(&record(Kind::Exit, F_GROUP_DEAD, 9)).expect("entry");
        assert_eq!((field(&e, "signal"), e.severity), (Some("9"), 5));
        let mut sorted = e.fields.clone();
        sorted.sort();
        assert_eq!(sorted, e.fields);
    }
}
