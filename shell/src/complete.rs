//! Tab completion: command names from `$PATH`, paths, and the psychology dimension's
//! completions of the whole line when it is running.

use std::collections::BTreeSet;
use std::time::Duration;

use reedline::{Completer, CompletionResult, Span, Suggestion};
use steppps::api::psychology::Psychology1Proxy;

const BUILTINS: &[&str] = &["cd", "exit", "export"];

/// Whether `word` names something runnable: a builtin, a path to a file, or a `$PATH` entry.
pub fn is_runnable(word: &str) -> bool {
    if BUILTINS.contains(&word) || word.contains('=') {
        return true;
    }
    if word.contains('/') {
        return std::path::Path::new(word).exists();
    }
    steppps_prompt::rank::on_path(word)
        || matches!(
            word,
            "alias"
                | "echo"
                | "type"
                | "source"
                | "."
                | "set"
                | "unset"
                | "test"
                | "["
                | "true"
                | "false"
                | "printf"
                | "read"
                | "wait"
                | "umask"
                | "ulimit"
                | "history"
                | "jobs"
                | "fg"
                | "bg"
                | "time"
                | "for"
                | "while"
                | "if"
        )
}

pub struct ShellCompleter {
    commands: Option<BTreeSet<String>>,
    psychology: Option<Psychology1Proxy<'static>>,
    runtime: tokio::runtime::Handle,
}

impl ShellCompleter {
    pub fn new(
        psychology: Option<Psychology1Proxy<'static>>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            commands: None,
            psychology,
            runtime,
        }
    }

    fn commands(&mut self) -> &BTreeSet<String> {
        self.commands.get_or_insert_with(|| {
            let mut set: BTreeSet<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
            if let Some(path) = std::env::var_os("PATH") {
                for dir in std::env::split_paths(&path) {
                    if let Ok(entries) = std::fs::read_dir(dir) {
                        set.extend(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()));
                    }
                }
            }
            set
        })
    }

    fn predictions(&self, prefix: &str) -> Vec<String> {
        let Some(p) = &self.psychology else {
            return Vec::new();
        };
        self.runtime.block_on(async {
            match tokio::time::timeout(Duration::from_millis(300), p.complete(prefix, 5)).await {
                Ok(Ok(v)) => v.into_iter().map(|s| s.command).collect(),
                _ => Vec::new(),
            }
        })
    }
}

fn paths(word: &str) -> Vec<String> {
    let (dir, stem) = match word.rfind('/') {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let read = if dir.is_empty() { "." } else { dir };
    let expanded = match read.strip_prefix("~/") {
        Some(rest) => std::env::var("HOME")
            .map(|h| format!("{h}/{rest}"))
            .unwrap_or_else(|_| read.to_string()),
        None => read.to_string(),
    };
    let Ok(entries) = std::fs::read_dir(&expanded) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(stem) || (name.starts_with('.') && !stem.starts_with('.')) {
                return None;
            }
            let slash = if e.file_type().ok()?.is_dir() {
                "/"
            } else {
                ""
            };
            Some(format!("{dir}{name}{slash}"))
        })
        .collect();
    out.sort();
    out
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let pos = pos.min(line.len());
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let span = Span { start, end: pos };
        let mut values: Vec<(String, Option<String>, Span)> = Vec::new();
        if start == 0 && !word.contains('/') {
            values.extend(
                self.commands()
                    .range(word.to_string()..)
                    .take_while(|c| c.starts_with(word))
                    .take(200)
                    .map(|c| (c.clone(), None, span)),
            );
        } else {
            values.extend(paths(word).into_iter().map(|p| (p, None, span)));
        }
        if !before.trim().is_empty() {
            for p in self.predictions(before) {
                if p != before {
                    values.push((
                        p,
                        Some("from your history (psychology)".into()),
                        Span { start: 0, end: pos },
                    ));
                }
            }
        }
        let suggestions: Vec<Suggestion> = values
            .into_iter()
            .map(|(value, description, span)| Suggestion {
                append_whitespace: !value.ends_with('/'),
                value,
                description,
                span,
                ..Default::default()
            })
            .collect();
        CompletionResult::fresh(suggestions)
    }
}
