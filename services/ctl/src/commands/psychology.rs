//! `qos-ctl psychology …`: what the psychology dimension learned from you, its predictions,
//! and forgetting. Every command works on the caller's own history (the daemon keys it on
//! your uid); `import` reads your shell history here, as you, and sends its lines.

use std::path::PathBuf;

use chrono::{Local, TimeZone};
use clap::Subcommand;
use steppps::api::PSYCHOLOGY;
use steppps::api::psychology::{Context, HistoryEntry, Psychology1Proxy, Stats, Suggestion};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table;

/// `qos-ctl psychology` alone shows the stats.
#[derive(Debug, Clone, Default, Subcommand)]
pub enum PsychologyCommand {
    /// What it knows about you: entries, distinct commands, directories, most used
    #[default]
    Stats,
    /// Print your whole recorded history (or another user's, as root or with polkit)
    Export {
        /// Whose history [default: yours]
        #[arg(long)]
        uid: Option<u32>,
    },
    /// Predict your next command
    Predict {
        /// Working directory to predict for [default: the current one]
        #[arg(long, value_name = "DIR")]
        cwd: Option<String>,
        /// A previous command (repeat, oldest first) [default: the last ones you ran]
        #[arg(long = "after", value_name = "COMMAND")]
        previous: Vec<String>,
        /// How many suggestions
        #[arg(short, long, default_value_t = 5)]
        k: u32,
    },
    /// Complete a command line from its beginning
    Complete {
        /// The beginning of the command line, e.g. `git ch`
        prefix: String,
        /// How many suggestions
        #[arg(short, long, default_value_t = 5)]
        k: u32,
    },
    /// Forget every command line matching a pattern (`*` any text, `?` one character;
    /// the whole line must match: `*password*`, `ssh *`)
    Forget {
        /// The pattern, quoted so the shell leaves `*` alone
        pattern: String,
    },
    /// Forget everything about you
    Erase {
        /// Really erase (there is no undo)
        #[arg(long)]
        yes: bool,
    },
    /// Learn from a shell history file [default: $HISTFILE or ~/.bash_history]
    Import {
        /// The history file (bash's format, with or without `#` timestamps)
        file: Option<PathBuf>,
    },
}

/// Lines per ImportHistory call: well under the system bus's message size limit.
const IMPORT_CHUNK: usize = 20_000;

fn when(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    Local
        .timestamp_opt(secs, 0)
        .single()
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn render_suggestions(suggestions: &[Suggestion]) -> String {
    let rows: Vec<Vec<String>> = suggestions
        .iter()
        .map(|s| {
            vec![
                s.command.clone(),
                format!("{:.3}", s.score),
                s.reason.clone(),
            ]
        })
        .collect();
    table::render(&["COMMAND", "SCORE", "WHY"], &rows)
}

fn render_stats(s: &Stats) -> String {
    let mut out = format!(
        "uid {}: {} commands ({} distinct) in {} directories, {:.1}% failed\nfrom {} to {}\n",
        s.uid,
        s.entries,
        s.distinct_commands,
        s.directories,
        100.0 * s.failure_rate,
        when(s.first_ms),
        when(s.last_ms)
    );
    let rows: Vec<Vec<String>> = s
        .top
        .iter()
        .map(|(c, n)| vec![n.to_string(), c.clone()])
        .collect();
    out.push_str(&table::render(&["COUNT", "MOST USED"], &rows));
    out
}

fn render_history(entries: &[HistoryEntry]) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                when(e.time_ms),
                e.exit_status.to_string(),
                format!("{}ms", e.duration_ms),
                table::or_dash(&e.cwd),
                e.command.clone(),
            ]
        })
        .collect();
    table::render(&["TIME", "STATUS", "TOOK", "DIRECTORY", "COMMAND"], &rows)
}

fn history_file(file: Option<&PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(f) = file {
        return Ok(f.clone());
    }
    if let Some(h) = std::env::var_os("HISTFILE").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".bash_history"))
        .ok_or_else(|| {
            Failure::Other(anyhow::anyhow!(
                "HOME is not set: name the history file (qos-ctl psychology import FILE)"
            ))
        })
}

/// Splits history lines into chunks, never between a `#<epoch>` line and its command.
fn chunks(lines: &[String], size: usize) -> Vec<&[String]> {
    let stamp = |l: &String| {
        l.strip_prefix('#')
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let mut end = (start + size.max(2)).min(lines.len());
        if end < lines.len() && stamp(&lines[end - 1]) {
            end -= 1;
        }
        out.push(&lines[start..end]);
        start = end;
    }
    out
}

pub async fn run(client: &Client, command: &PsychologyCommand, json: bool) -> Result<u8, Failure> {
    let psy = client
        .call(&PSYCHOLOGY, Psychology1Proxy::new(&client.connection))
        .await?;
    match command {
        PsychologyCommand::Stats => {
            let stats = client.call(&PSYCHOLOGY, psy.stats()).await?;
            if json {
                print_json(&stats)?
            } else {
                print!("{}", render_stats(&stats))
            }
        }
        PsychologyCommand::Export { uid } => {
            let uid = uid.unwrap_or_else(nix_uid);
            // Page by page: a long history is more than one D-Bus message carries.
            let mut entries = Vec::new();
            let mut after = 0;
            loop {
                let page = client
                    .call(&PSYCHOLOGY, psy.export_page(uid, after, 0))
                    .await?;
                entries.extend(page.entries);
                match page.next {
                    0 => break,
                    next => after = next,
                }
            }
            if json {
                print_json(&entries)?
            } else {
                print!("{}", render_history(&entries))
            }
        }
        PsychologyCommand::Predict { cwd, previous, k } => {
            let cwd = match cwd {
                Some(c) => c.clone(),
                None => std::env::current_dir()
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let context = Context {
                cwd,
                previous: previous.clone(),
            };
            let out = client.call(&PSYCHOLOGY, psy.predict(&context, *k)).await?;
            if json {
                print_json(&out)?
            } else {
                print!("{}", render_suggestions(&out))
            }
        }
        PsychologyCommand::Complete { prefix, k } => {
            let out = client.call(&PSYCHOLOGY, psy.complete(prefix, *k)).await?;
            if json {
                print_json(&out)?
            } else {
                print!("{}", render_suggestions(&out))
            }
        }
        PsychologyCommand::Forget { pattern } => {
            let n = client.call(&PSYCHOLOGY, psy.forget(pattern)).await?;
            if json {
                print_json(&serde_json::json!({ "forgotten": n }))?
            } else {
                println!("forgot {n} command{}", if n == 1 { "" } else { "s" })
            }
        }
        PsychologyCommand::Erase { yes } => {
            if !yes {
                eprintln!(
                    "qos-ctl: this erases everything the psychology dimension learned from you; \
                     run `qos-ctl psychology erase --yes` to do it"
                );
                return Ok(64);
            }
            let n = client.call(&PSYCHOLOGY, psy.erase_all()).await?;
            if json {
                print_json(&serde_json::json!({ "erased": n }))?
            } else {
                println!("erased {n} command{}", if n == 1 { "" } else { "s" })
            }
        }
        PsychologyCommand::Import { file } => {
            let path = history_file(file.as_ref())?;
            let bytes = std::fs::read(&path).map_err(|e| {
                Failure::Other(anyhow::anyhow!("cannot read {}: {e}", path.display()))
            })?;
            let text = String::from_utf8_lossy(&bytes);
            super::refuse_nul(&path, &text)?;
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            let mut imported = 0u64;
            for chunk in chunks(&lines, IMPORT_CHUNK) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                imported += client.call(&PSYCHOLOGY, psy.import_history(&refs)).await?;
            }
            if json {
                print_json(&serde_json::json!({
                    "file": path.display().to_string(),
                    "imported": imported,
                }))?
            } else {
                println!("imported {imported} commands from {}", path.display())
            }
        }
    }
    Ok(0)
}

/// This process's uid (the owner of `/proc/self`): the uid the bus reports for us too.
fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_stamps_with_their_commands() {
        let lines: Vec<String> = ["a", "#100", "b", "c", "#200", "d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = chunks(&lines, 2);
        for chunk in &got {
            assert!(!chunk.last().is_some_and(|l| l.starts_with('#')), "{got:?}");
        }
        assert_eq!(got.concat(), lines);
    }
}
