//! Replays real command histories (the UCI "UNIX User Data" traces, one file per user) and
//! scores next-command prediction: before each command, the model and two baselines propose
//! their top 3, and a hit is the exact command line. `ci/eval-psychology` runs it.
//!
//! ```text
//! eval DIR [--train USER0,USER1,...] [--tune] [--prefix N]
//! ```
//!
//! Users listed in `--train` (default USER0–USER3) are the training split: `--tune` searches
//! the model's weights on them only. The others are held out and are what the report is on.
//! Baselines: "most frequent" (the user's k most frequent lines so far) and "most recent
//! with this prefix" (fish/zsh autosuggestions: the k most recent distinct lines that start
//! with what is typed — with nothing typed, the k most recent). `--prefix N` also scores
//! completion after the first N characters of each command are typed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use steppps_psychology::history::parse_uci_trace;
use steppps_psychology::model::{Model, Params, Query};

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    n: u64,
    top1: u64,
    top3: u64,
}

impl Score {
    fn add(&mut self, proposals: &[String], actual: &str) {
        self.n += 1;
        if proposals.first().is_some_and(|p| p == actual) {
            self.top1 += 1;
        }
        if proposals.iter().take(3).any(|p| p == actual) {
            self.top3 += 1;
        }
    }
    fn merge(&mut self, o: Score) {
        self.n += o.n;
        self.top1 += o.top1;
        self.top3 += o.top3;
    }
    fn pct(v: u64, n: u64) -> f64 {
        if n == 0 {
            0.0
        } else {
            100.0 * v as f64 / n as f64
        }
    }
    fn top1(&self) -> f64 {
        Self::pct(self.top1, self.n)
    }
    fn top3(&self) -> f64 {
        Self::pct(self.top3, self.n)
    }
}

/// The baselines' state: counts and recency of every line seen so far.
#[derive(Default)]
struct Baselines {
    count: HashMap<String, u64>,
    /// Distinct lines, most recent last.
    recent: Vec<String>,
    last_seen: HashMap<String, u64>,
    clock: u64,
}

impl Baselines {
    fn most_frequent(&self, prefix: &str, k: usize) -> Vec<String> {
        let mut all: Vec<(&String, &u64)> = self
            .count
            .iter()
            .filter(|(l, _)| l.starts_with(prefix) && l.len() > prefix.len())
            .collect();
        // Ties: the more recent first.
        all.sort_by(|a, b| {
            b.1.cmp(a.1)
                .then_with(|| self.last_seen[b.0].cmp(&self.last_seen[a.0]))
        });
        all.into_iter().take(k).map(|(l, _)| l.clone()).collect()
    }

    fn most_recent(&self, prefix: &str, k: usize) -> Vec<String> {
        self.recent
            .iter()
            .rev()
            .filter(|l| l.starts_with(prefix) && l.len() > prefix.len())
            .take(k)
            .cloned()
            .collect()
    }

    fn observe(&mut self, line: &str) {
        self.clock += 1;
        *self.count.entry(line.to_string()).or_default() += 1;
        self.last_seen.insert(line.to_string(), self.clock);
        if let Some(i) = self.recent.iter().position(|l| l == line) {
            self.recent.remove(i);
        }
        self.recent.push(line.to_string());
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Result3 {
    model: Score,
    frequent: Score,
    recent: Score,
}

impl Result3 {
    fn merge(&mut self, o: Result3) {
        self.model.merge(o.model);
        self.frequent.merge(o.frequent);
        self.recent.merge(o.recent);
    }
}

/// Replays one user's history; scores every command but the first of the history.
fn replay(lines: &[String], params: &Params, prefix_len: usize, baselines_too: bool) -> Result3 {
    let mut model = Model::new(params.clone());
    let mut base = Baselines::default();
    let mut out = Result3::default();
    for line in lines {
        if !model.is_empty() {
            let prefix: String = line.chars().take(prefix_len).collect();
            let proposals: Vec<String> = if prefix_len == 0 {
                model.predict(Query::default(), 3)
            } else {
                model.complete(&prefix, Query::default(), 3)
            }
            .into_iter()
            .map(|s| s.command)
            .collect();
            // With a prefix typed, only lines longer than it can be proposed (by every
            // method alike): a line equal to the prefix is not scored.
            if line.len() > prefix.len() {
                out.model.add(&proposals, line);
                if baselines_too {
                    out.frequent.add(&base.most_frequent(&prefix, 3), line);
                    out.recent.add(&base.most_recent(&prefix, 3), line);
                }
            }
        }
        model.observe(line, "", true);
        if baselines_too {
            base.observe(line);
        }
    }
    out
}

fn load(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut users: Vec<(String, Vec<String>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            eprintln!("eval: cannot read {}: {e}", dir.display());
            std::process::exit(2)
        })
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let lines: Vec<String> = parse_uci_trace(&text).into_iter().flatten().collect();
            (!lines.is_empty()).then_some((name, lines))
        })
        .collect();
    users.sort();
    users
}

fn tune(train: &[&(String, Vec<String>)]) -> Params {
    let score = |p: &Params| -> f64 {
        let mut total = Result3::default();
        for (_, lines) in train {
            total.merge(replay(lines, p, 0, false));
        }
        // Top-3 first, top-1 as a tie-breaker.
        total.model.top3() + 0.25 * total.model.top1()
    };
    let mut best = Params::default();
    let mut best_score = score(&best);
    eprintln!("tune: start {best_score:.2}");
    // Coordinate ascent over a few multiplicative steps, three rounds.
    for round in 0..3 {
        for field in 0..9 {
            for factor in [0.0, 0.25, 0.5, 2.0, 4.0] {
                let mut p = best.clone();
                let f = match field {
                    0 => &mut p.w_bigram,
                    1 => &mut p.w_trigram,
                    2 => &mut p.w_program,
                    3 => &mut p.w_frequency,
                    4 => &mut p.w_recency,
                    5 => &mut p.recency_tau,
                    6 => &mut p.half_life,
                    7 => &mut p.smoothing,
                    _ => &mut p.w_directory,
                };
                if factor == 0.0 && matches!(field, 5 | 6) {
                    continue;
                }
                *f *= factor;
                let s = score(&p);
                if s > best_score + 0.01 {
                    best_score = s;
                    best = p;
                    eprintln!("tune: round {round} field {field} ×{factor} → {s:.2}");
                }
            }
        }
    }
    eprintln!("tune: best {best:?}");
    best
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir: Option<PathBuf> = None;
    let mut train_names: Vec<String> = ["USER0", "USER1", "USER2", "USER3"]
        .map(String::from)
        .to_vec();
    let mut do_tune = false;
    let mut prefix_len = 0usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--train" => {
                train_names = it
                    .next()
                    .map(|v| v.split(',').map(String::from).collect())
                    .unwrap_or_default()
            }
            "--tune" => do_tune = true,
            "--prefix" => prefix_len = it.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            other => dir = Some(PathBuf::from(other)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: eval DIR [--train USER0,USER1] [--tune] [--prefix N]");
        std::process::exit(64);
    };
    let users = load(&dir);
    let (train, held_out): (Vec<_>, Vec<_>) = users
        .iter()
        .partition(|(name, _)| train_names.contains(name));
    if held_out.is_empty() {
        eprintln!("eval: no held-out users in {}", dir.display());
        std::process::exit(2);
    }
    let params = if do_tune && !train.is_empty() {
        tune(&train)
    } else {
        Params::default()
    };
    let task = if prefix_len == 0 {
        "next command, nothing typed".to_string()
    } else {
        format!("completion after {prefix_len} typed character(s)")
    };
    println!("task: {task}; training users: {}", train_names.join(","));
    println!(
        "{:<8} {:>7}  {:>6} {:>6}  {:>6} {:>6}  {:>6} {:>6}",
        "user", "scored", "model1", "model3", "freq1", "freq3", "rec1", "rec3"
    );
    let mut total = Result3::default();
    for (name, lines) in &held_out {
        let r = replay(lines, &params, prefix_len, true);
        println!(
            "{name:<8} {:>7}  {:>6.1} {:>6.1}  {:>6.1} {:>6.1}  {:>6.1} {:>6.1}",
            r.model.n,
            r.model.top1(),
            r.model.top3(),
            r.frequent.top1(),
            r.frequent.top3(),
            r.recent.top1(),
            r.recent.top3()
        );
        total.merge(r);
    }
    println!(
        "{:<8} {:>7}  {:>6.1} {:>6.1}  {:>6.1} {:>6.1}  {:>6.1} {:>6.1}",
        "held-out",
        total.model.n,
        total.model.top1(),
        total.model.top3(),
        total.frequent.top1(),
        total.frequent.top3(),
        total.recent.top1(),
        total.recent.top3()
    );
    let margin = total.model.top3() - total.frequent.top3().max(total.recent.top3());
    println!("top-3 margin over the better baseline: {margin:+.1} points (goal: ≥ +10)");
}
