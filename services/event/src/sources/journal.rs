//! The systemd journal, followed through `journalctl -o json --follow` as a child process.
//! The cursor of the last committed entry is saved in the state directory every few seconds
//! and at stop, and the next start continues after it (`--after-cursor`), so entries written
//! while the daemon was down are captured too. After a crash, up to those few seconds of
//! entries may be captured twice; none is skipped.
//!
//! Why a child process and not libsystemd: no C library to build against, and journalctl
//! already handles journal rotation, vacuuming and file formats; the unit grants the
//! `systemd-journal` group so it may read every entry.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tracing::{debug, warn};

use super::clip;
use crate::chain::record::{MAX_KIND, MAX_VALUE};
use crate::chain::{Entry, now_usec};
use crate::{EventLog, Pending};

pub const SOURCE: &str = "journal";
const CURSOR_FILE: &str = "journal.cursor";
/// Our own log lines are not captured: that would feed back.
const OWN_UNIT: &str = "steppps-event.service";

/// One journal entry (a line of `journalctl -o json`) as an event and its cursor. `None`
/// for entries that are not captured (our own).
pub fn parse_line(line: &str) -> Result<Option<(Entry, Option<String>)>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let text = |key: &str| obj.get(key).and_then(journal_text);
    if text("_SYSTEMD_UNIT").as_deref() == Some(OWN_UNIT) {
        return Ok(None);
    }
    let identifier = text("SYSLOG_IDENTIFIER").or_else(|| text("_COMM"));
    let time_usec = text("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(now_usec);
    let severity = text("PRIORITY")
        .and_then(|p| p.parse::<u8>().ok())
        .filter(|p| *p <= 7)
        .unwrap_or(6);
    let mut fields = Vec::new();
    let mut binary = false;
    for (key, name) in [
        ("MESSAGE", "message"),
        ("_SYSTEMD_UNIT", "unit"),
        ("_PID", "pid"),
        ("_UID", "uid"),
        ("SYSLOG_IDENTIFIER", "identifier"),
        ("_COMM", "comm"),
    ] {
        let Some(raw) = obj.get(key) else { continue };
        if raw.is_array() && key == "MESSAGE" {
            binary = true;
        }
        if let Some(value) = journal_text(raw) {
            let value = steppps::error::bus_text(&value).into_owned();
            fields.push((name.to_string(), clip(value, MAX_VALUE)));
        }
    }
    if binary {
        fields.push(("message_encoding".into(), "binary (shown lossily)".into()));
    }
    fields.sort();
    let kind = clip(identifier.unwrap_or_else(|| "journal".into()), MAX_KIND);
    let entry = Entry {
        time_usec,
        severity,
        source: SOURCE.into(),
        kind: if kind.is_empty() {
            "journal".into()
        } else {
            kind
        },
        fields,
    };
    Ok(Some((entry, text("__CURSOR"))))
}

/// A journal field's value as text: strings as they are, byte arrays (what journalctl
/// prints for data that is not printable UTF-8) decoded lossily, several values joined with
/// newlines. Any process may log a NUL; the caller replaces it (a record must not carry one).
fn journal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| b.min(255) as u8)
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(journal_text).collect();
            Some(parts.join("\n"))
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn cursor_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CURSOR_FILE)
}

/// Saves the cursor of the last committed entry, when it changed.
pub fn save_cursor(log: &EventLog, state_dir: &Path, last: &mut Option<String>) {
    let cursor = log.journal_cursor();
    if cursor.is_some() && cursor != *last {
        if let Some(c) = &cursor
            && let Err(e) = steppps::state::write_atomic(&cursor_path(state_dir), c.as_bytes())
        {
            warn!("cannot save the journal cursor: {e}");
            return;
        }
        *last = cursor;
    }
}

/// Follows the journal until journalctl ends; then says why in the source state.
pub async fn follow(log: Arc<EventLog>, state_dir: PathBuf) {
    let saved = std::fs::read_to_string(cursor_path(&state_dir))
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let mut cmd = Command::new("journalctl");
    cmd.args(["--output=json", "--follow", "--no-pager", "--quiet"]);
    match &saved {
        Some(cursor) => cmd.arg(format!("--after-cursor={cursor}")),
        None => cmd.arg("--lines=0"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log.set_source_state(SOURCE, format!("unavailable: cannot run journalctl: {e}"));
            return;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        log.set_source_state(SOURCE, "unavailable: journalctl has no output");
        return;
    };
    log.set_source_state(SOURCE, "on");
    let saver = {
        let log = log.clone();
        let state_dir = state_dir.clone();
        tokio::spawn(async move {
            let mut last = saved;
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                save_cursor(&log, &state_dir, &mut last);
            }
        })
    };
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                warn!("reading journalctl: {e}");
                break;
            }
        };
        match parse_line(&line) {
            Ok(Some((entry, cursor))) => {
                let mut pending = Pending::new(entry);
                pending.journal_cursor = cursor;
                if log.queue(pending).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                debug!("skipping a journal line: {e}");
                log.count_shed("invalid: journal");
            }
        }
    }
    saver.abort();
    let status = child.wait().await;
    log.set_source_state(
        SOURCE,
        format!(
            "stopped: journalctl exited ({})",
            match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            }
        ),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn journal_json_becomes_an_event() {
        let line = r#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1700000000000000","PRIORITY":"3","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root","_PID":"42","_SYSTEMD_UNIT":"ssh.service"}"#;
        let (e, cursor) = parse_line(line).unwrap().unwrap();
        assert_eq!(cursor.as_deref(), Some("s=abc;i=1"));
        assert_eq!(
            (e.kind.as_str(), e.severity, e.time_usec),
            ("sshd", 3, 1_700_000_000_000_000)
        );
        assert!(
            e.fields
                .contains(&("message".into(), "Failed password for root".into()))
        );
        assert!(e.validate().is_ok());
    }

    #[test]
    fn binary_and_oversized_messages_are_kept_valid() {
        // journalctl prints non-UTF-8 data as an array of bytes.
        let line = r#"{"MESSAGE":[104,105,255,254],"SYSLOG_IDENTIFIER":"x"}"#;
        let (e, _) = parse_line(line).unwrap().unwrap();
        assert!(
            e.fields
                .iter()
                .any(|(k, v)| k == "message" && v.starts_with("hi"))
        );
        assert!(e.fields.iter().any(|(k, _)| k == "message_encoding"));
        // Any user can log a NUL (the native protocol carries binary data); journalctl prints
        // it as bytes. Kept, it would poison the chain: no list could ever send the record.
        let line = r#"{"MESSAGE":[97,0,98],"SYSLOG_IDENTIFIER":"x"}"#;
        let (e, _) = parse_line(line).unwrap().unwrap();
        assert!(
            e.fields
                .iter()
                .any(|(k, v)| k == "message" && v == "a\u{FFFD}b"),
            "{e:?}"
        );
        assert!(e.validate().is_ok());
        let big = format!(r#"{{"MESSAGE":"{}"}}"#, "x".repeat(MAX_VALUE * 2));
        let (e, _) = parse_line(&big).unwrap().unwrap();
        assert!(e.validate().is_ok());
        assert!(parse_line("{not json").is_err());
        let own = r#"{"_SYSTEMD_UNIT":"steppps-event.service","MESSAGE":"x"}"#;
        assert!(parse_line(own).unwrap().is_none());
    }
}
