//! `qos-ctl event …`: the event dimension's records, live tail, audit chain verification
//! (over the bus, or offline on a copy of the chain directory) and counters.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Local, TimeZone};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use steppps::api::EVENT;
use steppps::api::event::{Event1Proxy, EventFilter, EventRecord, EventStats, VerifyResult};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table::{self, bytes};

#[derive(Debug, Clone, Subcommand)]
pub enum EventCommand {
    /// List the latest records (newest last)
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many records
        #[arg(short = 'n', long, default_value_t = LIST_LINES)]
        lines: u32,
        /// Only records before this sequence number (page back with the first seq shown)
        #[arg(long, value_name = "SEQ")]
        before: Option<u64>,
    },
    /// Show the latest records, then follow new ones as they are captured (Ctrl-C stops)
    Tail {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many past records to show first
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u32,
    },
    /// Show one record with all its fields and its hash
    Show {
        /// The record's sequence number, as `qos-ctl event list` shows it
        seq: u64,
    },
    /// Verify the audit chain: every hash, Merkle root, signature and the head (exit status
    /// 1 when it does not verify)
    ///
    /// Without PATH the event daemon verifies its chain. With PATH (a chain directory, e.g.
    /// a copy of /var/lib/quantumos/event/chain) it is verified here, without the daemon.
    Verify {
        /// A chain directory to verify offline
        path: Option<PathBuf>,
        /// A trusted copy of the public key (default: PATH/signing.pub)
        #[arg(long, value_name = "FILE", requires = "path")]
        key: Option<PathBuf>,
    },
    /// Capture, chain and rule counters, and what was shed and why
    Stats,
}

/// How many records `event list` shows unless told.
const LIST_LINES: u32 = 20;

/// `qos-ctl event` alone lists the latest records, as `event list` does.
impl Default for EventCommand {
    fn default() -> Self {
        EventCommand::List {
            filter: FilterArgs::default(),
            lines: LIST_LINES,
            before: None,
        }
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Source (`journal`, `units`, `udev`, `bus`, `rules`, …); `*` wildcards
    #[arg(long)]
    source: Option<String>,
    /// Kind (`unit.failed`, `device.*`, …); `*` wildcards
    #[arg(long)]
    kind: Option<String>,
    /// This severity or more severe (emerg, alert, crit, err, warning, notice, info, debug)
    #[arg(long, short = 'p')]
    severity: Option<String>,
    /// A field that must match, KEY=VALUE (`*` wildcards); repeatable
    #[arg(long = "field", short = 'f', value_name = "KEY=VALUE")]
    fields: Vec<String>,
    /// Only records from this time on: `2026-11-24 10:00`, `10:00`, `today`, `yesterday`,
    /// `1h ago`, `-30min`, `@EPOCH`, or SECONDS back from now (as in journalctl)
    #[arg(long, short = 'S', value_name = "TIME", value_parser = crate::when::arg)]
    since: Option<DateTime<Local>>,
    /// Only records before this time (the same spellings as --since)
    #[arg(long, short = 'U', value_name = "TIME", value_parser = crate::when::arg)]
    until: Option<DateTime<Local>>,
}

impl FilterArgs {
    fn to_filter(&self) -> Result<EventFilter, Failure> {
        let mut fields = HashMap::new();
        for f in &self.fields {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Failure::Other(anyhow::anyhow!("--field wants KEY=VALUE, not `{f}`"))
            })?;
            fields.insert(k.to_string(), v.to_string());
        }
        Ok(EventFilter {
            source: self.source.clone().unwrap_or_default(),
            kind: self.kind.clone().unwrap_or_default(),
            severity: self.severity.clone().unwrap_or_default(),
            fields,
            since_usec: self.since.map_or(0, crate::when::usec),
            until_usec: self.until.map_or(0, crate::when::usec),
            ..EventFilter::default()
        })
    }
}

/// The command line that shows the page before this one: the same one with `--before SEQ`,
/// so a filtered list pages back through the same filter (`qos-ctl event` is `event list`).
fn page_back(args: &[String], seq: u64) -> String {
    let has_list = args.iter().any(|a| a == "list");
    let mut words = vec!["qos-ctl".to_string()];
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        if a == "--before" {
            rest.next();
            continue;
        }
        if a.starts_with("--before=") {
            continue;
        }
        words.push(shell_word(a));
        if a == "event" && !has_list {
            words.push("list".into());
        }
    }
    words.push(format!("--before {seq}"));
    words.join(" ")
}

/// `word` as a shell reads it back: quoted when it has anything the shell would act on.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:@+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `event verify PATH` needs no bus: run it before connecting. `None` for everything else.
pub fn run_offline(cmd: &EventCommand, json: bool) -> Option<Result<u8, Failure>> {
    let EventCommand::Verify {
        path: Some(path),
        key,
    } = cmd
    else {
        return None;
    };
    Some((|| {
        let key = key
            .as_deref()
            .map(steppps_event::chain::keys::read_public_key)
            .transpose()
            .map_err(|e| Failure::Other(e.into()))?;
        let report = steppps_event::chain::verify_dir(path, key.as_ref())
            .map_err(|e| Failure::Other(anyhow::anyhow!("{}: {e}", path.display())))?;
        show_verify(&steppps_event::verify_to_wire(&report), json)
    })())
}

pub async fn run(client: &Client, cmd: &EventCommand, json: bool) -> Result<u8, Failure> {
    let event = client
        .call(&EVENT, Event1Proxy::new(&client.connection))
        .await?;
    match cmd {
        EventCommand::List {
            filter,
            lines,
            before,
        } => {
            let filter = EventFilter {
                limit: *lines,
                newest: true,
                before_seq: before.unwrap_or(0),
                ..filter.to_filter()?
            };
            let page = client.call(&EVENT, event.query(filter)).await?;
            if json {
                print_json(&page)?;
            } else {
                print!("{}", render_records(&page.records));
                if page.more
                    && let Some(first) = page.records.first()
                {
                    let args: Vec<String> = std::env::args().skip(1).collect();
                    println!("(older records: {})", page_back(&args, first.seq));
                }
            }
            Ok(0)
        }
        EventCommand::Tail { filter, lines } => {
            let base = filter.to_filter()?;
            let mut captured = client.call(&EVENT, event.receive_captured()).await?;
            // The daemon sends Captured only while someone has subscribed; it forgets this
            // subscription when qos-ctl exits.
            client.call(&EVENT, event.subscribe()).await?;
            let page = client
                .call(
                    &EVENT,
                    event.query(EventFilter {
                        limit: (*lines).max(1),
                        newest: true,
                        ..base.clone()
                    }),
                )
                .await?;
            let mut last = 0;
            let shown: Vec<&EventRecord> = page
                .records
                .iter()
                .rev()
                .take(*lines as usize)
                .rev()
                .collect();
            for r in shown {
                last = r.seq;
                print_record_line(r, json)?;
            }
            let matcher = ClientMatcher::new(&base);
            while let Some(signal) = captured.next().await {
                let Ok(args) = signal.args() else { continue };
                let r = args.record();
                if r.seq > last && matcher.matches(r) {
                    last = r.seq;
                    print_record_line(r, json)?;
                }
            }
            Err(Failure::Unreachable(
                "the event daemon went away while following".into(),
            ))
        }
        EventCommand::Show { seq } => {
            let page = client
                .call(
                    &EVENT,
                    event.query(EventFilter {
                        after_seq: seq.saturating_sub(1),
                        limit: 1,
                        ..EventFilter::default()
                    }),
                )
                .await?;
            let Some(r) = page.records.into_iter().find(|r| r.seq == *seq) else {
                return Err(Failure::Refused {
                    name: None,
                    message: format!("no record {seq} in the chain"),
                });
            };
            if json {
                print_json(&r)?;
            } else {
                let mut keys: Vec<&String> = r.fields.keys().collect();
                keys.sort();
                println!("seq: {}", r.seq);
                println!("time: {}", when(r.time_usec));
                println!("source: {}", r.source);
                println!("kind: {}", r.kind);
                println!("severity: {}", r.severity);
                for k in keys {
                    println!("  {k}: {}", r.fields[k]);
                }
                println!("hash: {}", r.hash);
            }
            Ok(0)
        }
        EventCommand::Verify { .. } => {
            let result = client.call(&EVENT, event.verify()).await?;
            show_verify(&result, json)
        }
        EventCommand::Stats => {
            let stats = client.call(&EVENT, event.stats()).await?;
            if json {
                print_json(&stats)?;
            } else {
                print!("{}", render_stats(&stats));
            }
            Ok(0)
        }
    }
}

fn show_verify(result: &VerifyResult, json: bool) -> Result<u8, Failure> {
    if json {
        print_json(result)?;
    } else {
        if result.ok {
            println!(
                "ok: {} records ({}…{}) in {} blocks ({} signed), {} segments",
                result.records,
                result.first_seq,
                result.last_seq,
                result.blocks,
                result.signed_blocks,
                result.segments
            );
        } else {
            println!("FAILED ({}): {}", result.problem, result.message);
            println!(
                "verified before the problem: {} records in {} blocks",
                result.records, result.blocks
            );
        }
        for note in &result.notes {
            println!("note: {note}");
        }
    }
    Ok(if result.ok { 0 } else { 1 })
}

fn when(usec: u64) -> String {
    let secs = i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX);
    let micros = (usec % 1_000_000) as u32;
    Local
        .timestamp_opt(secs, micros * 1000)
        .single()
        .map_or_else(
            || "-".into(),
            |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        )
}

fn fields_text(r: &EventRecord) -> String {
    let mut pairs: Vec<(&String, &String)> = r.fields.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v.chars().take(80).collect();
            format!("{k}={}", v.replace('\n', "⏎"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_records(records: &[EventRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                when(r.time_usec),
                r.severity.clone(),
                r.source.clone(),
                r.kind.clone(),
                fields_text(r),
            ]
        })
        .collect();
    table::render(
        &["SEQ", "TIME", "SEVERITY", "SOURCE", "KIND", "FIELDS"],
        &rows,
    )
}

fn print_record_line(r: &EventRecord, json: bool) -> Result<(), Failure> {
    if json {
        let line = serde_json::to_string(r).map_err(|e| Failure::Other(e.into()))?;
        println!("{line}");
    } else {
        println!(
            "{} {} {:<7} {} {} {}",
            r.seq,
            when(r.time_usec),
            r.severity,
            r.source,
            r.kind,
            fields_text(r)
        );
    }
    Ok(())
}

fn render_stats(s: &EventStats) -> String {
    let mut out = String::new();
    let sorted = |m: &HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    };
    out.push_str(&format!(
        "chain: {} records, head {}…, segment {}, {} blocks sealed, {} written\n",
        s.head_seq,
        s.head_hash.get(..16).unwrap_or(&s.head_hash),
        s.segment,
        s.blocks_sealed,
        bytes(s.bytes_written)
    ));
    out.push_str(&format!(
        "fsync: {}; signing: {}\n",
        s.fsync,
        if s.signing { "ed25519" } else { "off" }
    ));
    out.push_str(&format!(
        "rules: {} from {}; actions: {} done, {} failed\n",
        s.rules, s.rules_source, s.actions_taken, s.actions_failed
    ));
    let mut sources: Vec<(&String, &String)> = s.sources.iter().collect();
    sources.sort();
    let rows: Vec<Vec<String>> = sources
        .iter()
        .map(|(name, state)| vec![name.to_string(), state.to_string()])
        .collect();
    out.push_str(&table::render(&["SOURCE", "STATE"], &rows));
    let captured = sorted(&s.captured);
    let rows: Vec<Vec<String>> = captured
        .into_iter()
        .map(|(source, n)| vec![n.to_string(), source])
        .collect();
    out.push_str(&table::render(&["CAPTURED", "FROM"], &rows));
    let shed = sorted(&s.shed);
    if shed.is_empty() {
        out.push_str("shed: none\n");
    } else {
        let rows: Vec<Vec<String>> = shed
            .into_iter()
            .map(|(reason, n)| vec![n.to_string(), reason])
            .collect();
        out.push_str(&table::render(&["SHED", "REASON"], &rows));
    }
    out
}

/// The filter applied to `Captured` signals on this side (the daemon filters `Query`).
struct ClientMatcher<'f> {
    filter: &'f EventFilter,
    max_severity: u8,
}

impl<'f> ClientMatcher<'f> {
    fn new(filter: &'f EventFilter) -> Self {
        let max_severity = if filter.severity.is_empty() {
            7
        } else {
            steppps_event::rules::parse_severity(&filter.severity).unwrap_or(7)
        };
        ClientMatcher {
            filter,
            max_severity,
        }
    }

    fn matches(&self, r: &EventRecord) -> bool {
        use steppps_event::rules::{glob_match, parse_severity};
        let f = self.filter;
        let text = |p: &str, v: &str| p.is_empty() || glob_match(p, v);
        parse_severity(&r.severity).unwrap_or(7) <= self.max_severity
            && text(&f.source, &r.source)
            && text(&f.kind, &r.kind)
            && (f.since_usec == 0 || r.time_usec >= f.since_usec)
            && (f.until_usec == 0 || r.time_usec < f.until_usec)
            && f.fields
                .iter()
                .all(|(k, p)| r.fields.get(k).is_some_and(|v| glob_match(p, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn paging_back_keeps_the_filters() {
        assert_eq!(
            page_back(&args("event list --source units -n 5"), 40),
            "qos-ctl event list --source units -n 5 --before 40"
        );
        assert_eq!(
            page_back(&args("event"), 7),
            "qos-ctl event list --before 7"
        );
        assert_eq!(
            page_back(&args("event list --before 90 --kind unit.*"), 40),
            "qos-ctl event list --kind 'unit.*' --before 40"
        );
        assert_eq!(
            page_back(&args("event list --before=90 -f unit=a'b"), 3),
            r"qos-ctl event list -f 'unit=a'\''b' --before 3"
        );
    }
}
