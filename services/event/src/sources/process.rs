//! Process lifecycle events (fork, exec, exit) from the `steppps` kernel module's
//! `/dev/steppps`, through [`steppps::process_events`]. Without the module, from the
//! kernel's proc connector ([`steppps::proc_connector`], which needs `CAP_NET_ADMIN`): the
//! same events, with the uid, name and program path read from `/proc` while the process is
//! there, and no cgroup id. With neither, the source says so in its state and waits for the
//! device to appear (the module may be loaded later).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use steppps::proc_connector::{ProcConnector, UNKNOWN_UID};
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
        ("kernel_time_ns".to_string(), r.time_ns.to_string()),
    ];
    // What the proc connector could not tell is left out rather than recorded as 0.
    if r.uid != UNKNOWN_UID {
        fields.push(("uid".to_string(), r.uid.to_string()));
    }
    if r.cgroup_id != 0 {
        fields.push(("cgroup_id".to_string(), r.cgroup_id.to_string()));
    }
    if !r.comm.is_empty() {
        fields.push(("comm".to_string(), r.comm.clone()));
    }
    if thread || r.kind == Kind::Exit {
        fields.push(("tid".to_string(), r.tid.to_string()));
    }
    match r.kind {
        Kind::Exec if !r.filename.is_empty() => {
            fields.push(("filename".to_string(), r.filename.clone()))
        }
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

/// Follows `device` (normally [`steppps::process_events::DEVICE`]), or the proc connector
/// while the device is missing, until the source fails.
pub async fn follow(log: Arc<EventLog>, device: &Path) {
    let dev = loop {
        match Device::open(device) {
            Ok(d) => break d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match ProcConnector::subscribe() {
                    Ok(connector) => return follow_connector(log, connector).await,
                    Err(refused) => log.set_source_state(
                        SOURCE,
                        format!(
                            "unavailable: {} is missing (the steppps kernel module is not \
                             loaded) and the proc connector refused ({refused}; it needs \
                             CAP_NET_ADMIN); process events are not recorded",
                            device.display()
                        ),
                    ),
                }
            }
            Err(e) => {
                log.set_source_state(SOURCE, format!("unavailable: {}: {e}", device.display()));
                return;
            }
        }
        tokio::time::sleep(RETRY).await;
    };
    follow_module(log, device, dev).await;
}

async fn follow_module(log: Arc<EventLog>, device: &Path, mut dev: Device) {
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

async fn follow_connector(log: Arc<EventLog>, mut connector: ProcConnector) {
    log.set_source_state(
        SOURCE,
        "on, from the kernel's proc connector (the steppps kernel module is not loaded)",
    );
    tracing::info!("process events from the kernel's proc connector");
    loop {
        let batch = match connector.next_batch().await {
            Ok(b) => b,
            Err(e) => {
                log.set_source_state(SOURCE, format!("stopped: the proc connector: {e}"));
                return;
            }
        };
        for mut r in batch {
            if r.kind == Kind::Lost {
                // The socket's buffer overflowed; the kernel does not say by how much.
                log.count_shed("proc connector overflow: process (count unknown)");
                continue;
            }
            complete_from_proc(&mut r, Path::new("/proc"));
            if let Some(e) = entry(&r) {
                log.offer(Pending::new(e));
            }
        }
    }
}

/// Fills in what the proc connector does not say, for a process fork or an exec, from
/// `proc` (normally `/proc`) while the process is still there: its name and real uid, and
/// for an exec the program's path. A process already gone keeps the fields empty.
fn complete_from_proc(r: &mut Record, proc: &Path) {
    let wanted = matches!(r.kind, Kind::Exec) || (r.kind == Kind::Fork && !r.is_thread());
    if !wanted {
        return;
    }
    let dir = proc.join(r.pid.to_string());
    if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
        for line in status.lines() {
            if let Some(name) = line.strip_prefix("Name:") {
                r.comm = name.trim().to_string();
            } else if let Some(uids) = line.strip_prefix("Uid:") {
                if let Some(Ok(uid)) = uids.split_whitespace().next().map(str::parse) {
                    r.uid = uid;
                }
            }
        }
    }
    if r.kind == Kind::Exec {
        if let Ok(exe) = std::fs::read_link(dir.join("exe")) {
            r.filename = exe.to_string_lossy().into_owned();
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

    #[test]
    fn what_the_connector_cannot_tell_is_left_out() {
        let mut r = record(Kind::Exec, 0, 0);
        r.uid = UNKNOWN_UID;
        r.cgroup_id = 0;
        r.comm.clear();
        r.filename.clear();
        let e = entry(&r).expect("entry");
        for absent in ["uid", "cgroup_id", "comm", "filename"] {
            assert_eq!(field(&e, absent), None, "{absent}");
        }
        assert_eq!(field(&e, "pid"), Some("100"));
    }

    #[test]
    fn connector_records_are_completed_from_proc() {
        // This very process, as an exec the connector reported.
        let me = std::process::id();
        let mut r = record(Kind::Exec, 0, 0);
        (r.pid, r.tid, r.uid) = (me, me, UNKNOWN_UID);
        r.comm.clear();
        r.filename.clear();
        complete_from_proc(&mut r, Path::new("/proc"));
        let exe = std::env::current_exe().expect("current exe");
        assert_eq!(r.filename, exe.to_string_lossy());
        assert!(
            !r.comm.is_empty()
                && exe
                    .to_string_lossy()
                    .contains(&r.comm[..8.min(r.comm.len())])
        );
        assert_eq!(r.uid, nix::unistd::getuid().as_raw());

        // A process already gone keeps its fields empty; a thread's fork is not looked up.
        let empty = tempfile::tempdir().expect("tempdir");
        let mut gone = record(Kind::Exec, 0, 0);
        gone.uid = UNKNOWN_UID;
        gone.comm.clear();
        gone.filename.clear();
        complete_from_proc(&mut gone, empty.path());
        assert_eq!(
            (gone.uid, gone.comm.as_str(), gone.filename.as_str()),
            (UNKNOWN_UID, "", "")
        );
        let mut thread = record(Kind::Fork, F_THREAD, 0);
        (thread.pid, thread.comm) = (me, String::new());
        complete_from_proc(&mut thread, Path::new("/proc"));
        assert_eq!(thread.comm, "");
    }
}
