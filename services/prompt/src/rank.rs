//! Retrieval and re-ranking. The request's embedding is compared with every phrasing of the
//! catalog (an exact matrix-vector product: a few thousand rows of 384 floats); each intent
//! scores its best phrasing. The nearest intents are filled from the request and re-ranked: an
//! intent whose slots the request filled, and whose binaries are installed, moves up; one that
//! still needs values moves down. Below a confidence floor the answer is "no suggestion".

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Source};
use crate::model::{DIM, Embedder};
use crate::risk::{self, Risk};
use crate::slots;

/// Below this cosine similarity the best intent is not a suggestion.
pub const MIN_CONFIDENCE: f32 = 0.42;
/// How many nearest intents are filled and re-ranked.
const CANDIDATES: usize = 24;

/// Words by which a request asks for something to be deleted, overwritten, stopped or shut
/// down: only the user's own words may ask for a destructive command. Without one, a
/// destructive suggestion ranks below the others ("find all the log files here" once came out
/// as `find . -name '*.log' -type f -delete`, from the phrasing "remove all log files").
const DESTRUCTIVE_WORDS: &[&str] = &[
    "delete",
    "remove",
    "erase",
    "rm",
    "clean",
    "clear",
    "purge",
    "wipe",
    "shred",
    "discard",
    "undo",
    "revert",
    "reset",
    "forget",
    "kill",
    "terminate",
    "stop",
    "close",
    "end",
    "quit",
    "reboot",
    "restart",
    "shut",
    "shutdown",
    "power",
    "poweroff",
    "halt",
    "turn",
    "shrink",
    "vacuum",
    "free",
    "overwrite",
    "write",
    "put",
    "replace",
    "truncate",
    "empty",
    "drop",
    "destroy",
    "uninstall",
    "unlink",
    "prune",
    "trash",
    "cleanup",
];
/// What a destructive suggestion loses when the request has none of those words.
const UNASKED_DESTRUCTION: f32 = 0.12;

/// Words after which one of [`DESTRUCTIVE_WORDS`] is a noun or an adjective, not a request:
/// "since the last reboot", "the free space".
const NOT_A_VERB_AFTER: &[&str] = &[
    "the", "a", "an", "last", "since", "previous", "latest", "recent", "next", "after", "before",
    "each", "every", "first",
];

/// Whether `text` has one of [`DESTRUCTIVE_WORDS`], in any case and form ("Deleting",
/// "removed", "kills"), used as a verb.
fn asks_for_destruction(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.iter().enumerate().any(|(i, word)| {
        if i > 0 && NOT_A_VERB_AFTER.contains(&words[i - 1].as_str()) {
            return false;
        }
        DESTRUCTIVE_WORDS.iter().any(|verb| {
            // "delet-ing", "remov-ed": the verb without its final e takes endings too.
            let stem = verb.strip_suffix('e').unwrap_or(verb);
            [*verb, stem].iter().any(|base| {
                word.strip_prefix(base)
                    .is_some_and(|ending| ["", "s", "d", "ed", "es", "ing"].contains(&ending))
            })
        })
    })
}

/// What a state-changing suggestion loses when the request is a question about the system.
const QUESTION_ASKS_NO_CHANGE: f32 = 0.12;

/// Whether `text` asks about the system ("what did I change", "is docker installed", "which
/// process uses port 80") rather than for something to be done. "how do I…", "what command…",
/// "is there a way…" ask for a command of any kind, so they are not such questions.
fn asks_about_state(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .take(3)
        .map(str::to_lowercase)
        .collect();
    let (Some(first), second) = (words.first(), words.get(1).map(String::as_str)) else {
        return false;
    };
    let asks_for_a_command = matches!(
        (first.as_str(), second),
        (
            "how",
            Some("do" | "to" | "can" | "should" | "would" | "could")
        ) | ("what" | "what's" | "which", Some("command" | "commands"))
            | ("is", Some("there" | "it"))
    ) || words.iter().any(|w| w == "command");
    let question = matches!(
        first.as_str(),
        "what"
            | "what's"
            | "which"
            | "where"
            | "where's"
            | "who"
            | "when"
            | "is"
            | "are"
            | "does"
            | "did"
            | "has"
            | "have"
            | "how"
    );
    question && !asks_for_a_command
}

/// `command` with each `<slot>` placeholder as a plain word: to the shell parser of
/// [`risk::classify`] `file <path>` would read from `path` and write to a file.
fn without_placeholders(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('>') {
            out.push_str(&rest[..open]);
            out.push_str(&after[..name_len]);
            rest = &after[name_len + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One proposed command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub command: String,
    pub explanation: String,
    pub risk: Risk,
    /// Cosine similarity of the request and the intent's nearest phrasing, 0…1.
    pub confidence: f64,
    /// The catalog intent (`files.biggest`, `tldr.find.2`).
    pub intent: String,
    /// Placeholders the request did not fill (`<path>`): the command needs editing.
    pub missing: u32,
}

/// What a command line does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub risk: Risk,
    /// One line per simple command: (the simple command, what it does).
    pub parts: Vec<(String, String)>,
}

/// A loaded model and catalog.
pub struct Engine {
    embedder: Embedder,
    catalog: Catalog,
    matrix: Tensor,
    /// Words of the phrasings and commands, less program names (see `Extracted::refine`).
    catalog_words: HashSet<String>,
    installed: Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("intents", &self.catalog.intents.len())
            .field("phrasings", &self.catalog.phrasings.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn load(model_dir: &Path, catalog_dir: &Path) -> anyhow::Result<Self> {
        let embedder = Embedder::load(model_dir)?;
        let catalog = Catalog::load(catalog_dir)?;
        Self::new(embedder, catalog)
    }

    pub fn new(embedder: Embedder, catalog: Catalog) -> anyhow::Result<Self> {
        let rows = catalog.phrasings.len();
        let matrix = Tensor::from_slice(&catalog.matrix, (rows, DIM), &Device::Cpu)?;
        let catalog_words = catalog_words(&catalog);
        Ok(Self {
            embedder,
            catalog,
            matrix,
            catalog_words,
            installed: Mutex::new(HashMap::new()),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Cosine similarity of `query` with every phrasing.
    fn scores(&self, query: &[f32]) -> anyhow::Result<Vec<f32>> {
        let q = Tensor::from_slice(query, (DIM, 1), &Device::Cpu)?;
        Ok(self.matrix.matmul(&q)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Ranked suggestions for an already sanitized request.
    pub fn translate(
        &self,
        text: &str,
        max: usize,
        cwd: Option<&Path>,
    ) -> anyhow::Result<Vec<Suggestion>> {
        let asked_for_destruction = asks_for_destruction(text);
        let asked_about_state = asks_about_state(text);
        let mut extracted = slots::extract(text, cwd);
        extracted.refine(text, &self.catalog_words);
        let query = self
            .embedder
            .embed(&slots::delexicalize(text, &extracted))?;
        let scores = self.scores(&query)?;
        let mut best: HashMap<u32, f32> = HashMap::new();
        for (p, s) in self.catalog.phrasings.iter().zip(&scores) {
            let e = best.entry(p.intent).or_insert(f32::MIN);
            if *s > *e {
                *e = *s;
            }
        }
        let mut nearest: Vec<(u32, f32)> = best.into_iter().collect();
        nearest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        nearest.truncate(CANDIDATES);
        if nearest.first().is_none_or(|(_, s)| *s < MIN_CONFIDENCE) {
            return Ok(Vec::new());
        }
        let mut ranked: Vec<(f32, Suggestion)> = Vec::new();
        for (idx, cos) in nearest {
            if cos < MIN_CONFIDENCE {
                break;
            }
            let intent = &self.catalog.intents[idx as usize];
            let filled = slots::fill(&intent.template, &extracted);
            let mut score = cos;
            if filled.filled > 0 {
                score += 0.03 * filled.filled.min(2) as f32;
            }
            score -= 0.06 * filled.missing.min(2) as f32;
            if !intent.needs.iter().all(|b| self.installed(b)) {
                score -= 0.05;
            }
            if intent.source == Source::Curated {
                score += 0.03;
            }
            if ranked.iter().any(|(_, s)| s.command == filled.command) {
                continue;
            }
            // The filled command's own class: a value can never make it milder than the intent's.
            let risk = intent
                .risk
                .max(risk::classify(&without_placeholders(&filled.command)));
            if risk == Risk::Destructive && !asked_for_destruction {
                score -= UNASKED_DESTRUCTION;
            }
            if asked_about_state && matches!(risk, Risk::ChangesFiles | Risk::Destructive) {
                score -= QUESTION_ASKS_NO_CHANGE;
            }
            ranked.push((
                score,
                Suggestion {
                    command: filled.command,
                    explanation: intent.explain.clone(),
                    risk,
                    confidence: f64::from(cos.clamp(0.0, 1.0)),
                    intent: intent.id.clone(),
                    missing: filled.missing as u32,
                },
            ));
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(ranked.into_iter().take(max).map(|(_, s)| s).collect())
    }

    /// Explains each simple command of `command` from the catalog (the intent whose template
    /// shares the most words with it), falling back to `whatis`.
    pub fn explain(&self, command: &str) -> Explanation {
        let risk = risk::classify(command);
        let mut parts = Vec::new();
        for words in risk::simple_commands(command) {
            let text = shell_words::join(&words);
            let Some(name) = words
                .iter()
                .find(|w| (!w.contains('=') || w.starts_with('-')) && *w != "sudo")
            else {
                continue;
            };
            let name = name.rsplit('/').next().unwrap_or(name).to_string();
            let mut best: Option<(usize, &str)> = None;
            for intent in &self.catalog.intents {
                let t_words: Vec<&str> = intent.template.split_whitespace().collect();
                if t_words
                    .iter()
                    .find(|w| **w != "sudo")
                    .is_none_or(|w| *w != name)
                {
                    continue;
                }
                let shared = words
                    .iter()
                    .skip(1)
                    .filter(|w| w.starts_with('-') && t_words.contains(&w.as_str()))
                    .count();
                let penalty = t_words
                    .iter()
                    .filter(|w| w.starts_with('-') && !words.iter().any(|x| x == *w))
                    .count();
                let score = (shared * 4 + 2).saturating_sub(penalty);
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, intent.explain.as_str()));
                }
            }
            let what = match best {
                Some((_, e)) => e.to_string(),
                None => whatis(&name)
                    .unwrap_or_else(|| format!("{name}: no description in the catalog")),
            };
            parts.push((text, what));
        }
        Explanation { risk, parts }
    }

    fn installed(&self, binary: &str) -> bool {
        let mut cache = self.installed.lock().unwrap_or_else(|p| p.into_inner());
        *cache
            .entry(binary.to_string())
            .or_insert_with(|| on_path(binary))
    }
}

/// The words the catalog's phrasings and command templates use, less the names of programs
/// (`ssh`, `git` stay possible values): what a request says that is not in here names a thing.
fn catalog_words(catalog: &Catalog) -> HashSet<String> {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let programs: HashSet<String> = catalog
        .intents
        .iter()
        .flat_map(|i| i.needs.iter().map(|n| n.to_lowercase()))
        .collect();
    // Our own intents only: tldr's examples name particular things (`firefox`).
    let curated = |i: &u32| catalog.intents[*i as usize].source == Source::Curated;
    let templates = catalog
        .intents
        .iter()
        .filter(|i| i.source == Source::Curated)
        .map(|i| i.template.as_str());
    let phrasings = catalog
        .phrasings
        .iter()
        .filter(|p| curated(&p.intent))
        .map(|p| p.text.as_str());
    templates
        .chain(phrasings)
        .flat_map(words)
        .filter(|w| !programs.contains(w))
        .collect()
}

/// Whether `binary` is an executable on `$PATH` (or a shell builtin we know).
pub fn on_path(binary: &str) -> bool {
    if matches!(
        binary,
        "cd" | "echo" | "export" | "alias" | "history" | "type" | "ulimit" | "umask"
    ) {
        return true;
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).any(|d| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(d.join(binary))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn whatis(name: &str) -> Option<String> {
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
    {
        return None;
    }
    let out = std::process::Command::new("whatis")
        .arg("--")
        .arg(name)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let (_, what) = line.split_once(" - ")?;
    Some(format!("{name}: {}", what.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_about_the_system_is_told_from_a_request_for_a_command() {
        for text in [
            "what did I change since the last commit",
            "is docker installed",
            "which process listens on port 80",
            "how much space do the logs take",
            "where's my config",
        ] {
            assert!(asks_about_state(text), "{text}");
        }
        for text in [
            "how do I undo the last commit",
            "how to delete a branch",
            "what command removes a package",
            "is there a way to rename many files",
            "undo the last commit",
            "",
        ] {
            assert!(!asks_about_state(text), "{text}");
        }
    }

    #[test]
    fn a_placeholder_is_a_word_not_a_redirection() {
        assert_eq!(without_placeholders("file <path>"), "file path");
        assert_eq!(
            without_placeholders("sort <path> | uniq -c > counts.txt"),
            "sort path | uniq -c > counts.txt"
        );
        assert_eq!(
            without_placeholders("wc -l < notes.txt"),
            "wc -l < notes.txt"
        );
        assert_eq!(
            risk::classify(&without_placeholders("file <path>")),
            Risk::ReadOnly
        );
    }

    #[test]
    fn destruction_is_asked_for_in_any_form_of_the_word() {
        for text in [
            "delete the log files",
            "Deleting old backups",
            "removed files",
            "kill firefox",
            "shut down the computer",
            "clean up my downloads",
        ] {
            assert!(asks_for_destruction(text), "{text}");
        }
        for text in [
            "find all the log files here",
            "show the biggest files",
            "which process listens on port 80",
            "what does rmdir do",
            "how long since the last reboot",
            "show the free space",
        ] {
            assert!(!asks_for_destruction(text), "{text}");
        }
    }
}
