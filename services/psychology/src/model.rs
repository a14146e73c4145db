//! The next-command model of one user: pure state in memory, fed one command at a time and
//! asked for the most likely next command lines, or the lines that complete a prefix.
//!
//! A candidate's score blends five pieces of evidence, each a probability in 0..1:
//!
//! - **transition**: how often it followed the previous command line (bigram), the two
//!   previous lines (trigram), and the previous *program* (the first word of the previous
//!   line, which generalises across arguments);
//! - **directory**: how often it ran in the current working directory;
//! - **frequency**: how often it ran at all;
//! - **recency**: `exp(-age / τ)`, age counted in commands since it last ran.
//!
//! Every count decays exponentially with the number of commands run since (a half-life of a
//! few thousand commands), so habits that changed fade. Commands that failed are damped.
//! Time is counted in commands, not seconds: a model fed the same history scores the same,
//! and a user away for a month comes back to the habits he left.
//!
//! Predicting scores only a few hundred candidates (the rows of the context and the recent and
//! frequent lines), so a prediction costs microseconds whatever the history's length.

use std::collections::{HashMap, VecDeque};

/// How the pieces of evidence are weighed. [`Params::default`] holds the values tuned on the
/// training users of the UCI traces (see `ci/eval-psychology` and docs/psychology.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Half-life of counts, in commands.
    pub half_life: f64,
    /// Time constant of the recency term, in commands.
    pub recency_tau: f64,
    pub w_bigram: f64,
    pub w_trigram: f64,
    pub w_program: f64,
    pub w_directory: f64,
    pub w_frequency: f64,
    pub w_recency: f64,
    /// How much a command that always failed is damped (0: not at all, 1: to nothing).
    pub failure_penalty: f64,
    /// Pseudo-count added to a row's total, so a row seen once does not claim certainty.
    pub smoothing: f64,
}

impl Default for Params {
    /// Tuned by coordinate ascent on the UCI training users (USER0–USER3) only
    /// (`ci/eval-psychology`, `eval --tune`). The unconditional frequency term came out at 0:
    /// frequency already counts through every conditional table, and on its own it only
    /// pushed `ls`/`cd` ahead of what the context said.
    fn default() -> Self {
        Params {
            half_life: 1000.0,
            recency_tau: 32.0,
            w_bigram: 0.5,
            w_trigram: 1.2,
            w_program: 0.8,
            w_directory: 0.5,
            w_frequency: 0.0,
            w_recency: 0.25,
            failure_penalty: 0.5,
            smoothing: 2.0,
        }
    }
}

/// A count that decays exponentially with the model's clock.
#[derive(Debug, Clone, Copy, Default)]
struct Decayed {
    value: f64,
    at: u64,
}

impl Decayed {
    fn get(self, now: u64, lambda: f64) -> f64 {
        self.value * (-lambda * now.saturating_sub(self.at) as f64).exp()
    }

    fn bump(&mut self, now: u64, lambda: f64) {
        self.value = self.get(now, lambda) + 1.0;
        self.at = now;
    }
}

/// What followed one context (a previous line, a program, a directory).
#[derive(Debug, Default)]
struct Row {
    total: Decayed,
    next: HashMap<u32, Decayed>,
    /// The row's strongest entries (at most [`ROW_TOP`] after a refresh, plus those bumped
    /// since): the only ones a prediction considers, so a row that grew to thousands of
    /// entries (the home directory, `cd`) costs no more than a small one.
    top: Vec<u32>,
    bumps_since_refresh: u32,
}

/// Entries of a row kept as candidates.
const ROW_TOP: usize = 32;

impl Row {
    fn bump(&mut self, id: u32, now: u64, lambda: f64) {
        self.total.bump(now, lambda);
        self.next.entry(id).or_default().bump(now, lambda);
        if !self.top.contains(&id) {
            self.top.push(id);
        }
        self.bumps_since_refresh += 1;
        if self.top.len() > 2 * ROW_TOP
            || (self.bumps_since_refresh >= 64 && self.next.len() > ROW_TOP)
        {
            self.refresh_top(now, lambda);
        }
    }

    /// Re-ranks the row's entries (amortised: once per 64 bumps or 32 new entries).
    fn refresh_top(&mut self, now: u64, lambda: f64) {
        self.bumps_since_refresh = 0;
        let mut all: Vec<(f64, u32)> = self
            .next
            .iter()
            .map(|(&id, d)| (d.get(now, lambda), id))
            .collect();
        if all.len() > ROW_TOP {
            all.select_nth_unstable_by(ROW_TOP - 1, |a, b| b.0.total_cmp(&a.0));
            all.truncate(ROW_TOP);
        }
        self.top = all.into_iter().map(|(_, id)| id).collect();
    }

    fn probability(&self, id: u32, now: u64, lambda: f64, smoothing: f64) -> f64 {
        match self.next.get(&id) {
            Some(count) => count.get(now, lambda) / (self.total.get(now, lambda) + smoothing),
            None => 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Line {
    frequency: Decayed,
    count: u64,
    failures: u64,
    last: u64,
}

/// A proposed line with its score and the evidence that weighed most.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub command: String,
    pub score: f64,
    pub reason: String,
}

/// The context of a prediction: the working directory and the previous lines (oldest first).
/// When `previous` is empty, the model uses the last lines it was fed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    pub cwd: &'a str,
    pub previous: &'a [String],
}

/// How many distinct recent lines are always candidates.
const RECENT: usize = 24;
/// How many of the most frequent lines are always candidates.
const FREQUENT: usize = 24;
/// The frequent lines are re-ranked every this many commands.
const REFRESH_EVERY: u64 = 64;

#[derive(Debug)]
pub struct Model {
    params: Params,
    lambda: f64,
    clock: u64,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    lines: Vec<Line>,
    total: Decayed,
    bigram: HashMap<u32, Row>,
    trigram: HashMap<(u32, u32), Row>,
    program: HashMap<String, Row>,
    directory: HashMap<String, Row>,
    /// Distinct recent lines, most recent first.
    recent: VecDeque<u32>,
    frequent: Vec<u32>,
    previous: [Option<u32>; 2],
}

/// The first word of a command line: what "the previous program" means.
pub fn program_of(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

impl Model {
    pub fn new(params: Params) -> Model {
        let lambda = std::f64::consts::LN_2 / params.half_life.max(1.0);
        Model {
            params,
            lambda,
            clock: 0,
            names: Vec::new(),
            ids: HashMap::new(),
            lines: Vec::new(),
            total: Decayed::default(),
            bigram: HashMap::new(),
            trigram: HashMap::new(),
            program: HashMap::new(),
            directory: HashMap::new(),
            recent: VecDeque::with_capacity(RECENT + 1),
            frequent: Vec::new(),
            previous: [None, None],
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Commands fed so far.
    pub fn len(&self) -> u64 {
        self.clock
    }

    pub fn is_empty(&self) -> bool {
        self.clock == 0
    }

    pub fn distinct(&self) -> usize {
        self.names.len()
    }

    pub fn directories(&self) -> usize {
        self.directory.len()
    }

    fn intern(&mut self, command: &str) -> u32 {
        if let Some(&id) = self.ids.get(command) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(command.to_string());
        self.ids.insert(command.to_string(), id);
        self.lines.push(Line::default());
        id
    }

    /// Learns that `command` ran in `cwd` (may be empty) and succeeded or not.
    pub fn observe(&mut self, command: &str, cwd: &str, succeeded: bool) {
        self.clock += 1;
        let now = self.clock;
        let lambda = self.lambda;
        let id = self.intern(command);
        if let Some(line) = self.lines.get_mut(id as usize) {
            line.frequency.bump(now, lambda);
            line.count += 1;
            line.failures += u64::from(!succeeded);
            line.last = now;
        }
        self.total.bump(now, lambda);
        if let Some(p1) = self.previous[1] {
            self.bigram.entry(p1).or_default().bump(id, now, lambda);
            if let Some(p0) = self.previous[0] {
                self.trigram
                    .entry((p0, p1))
                    .or_default()
                    .bump(id, now, lambda);
            }
            let program = program_of(&self.names[p1 as usize]).to_string();
            self.program
                .entry(program)
                .or_default()
                .bump(id, now, lambda);
        }
        if !cwd.is_empty() {
            match self.directory.get_mut(cwd) {
                Some(row) => row.bump(id, now, lambda),
                None => {
                    let mut row = Row::default();
                    row.bump(id, now, lambda);
                    self.directory.insert(cwd.to_string(), row);
                }
            }
        }
        if let Some(at) = self.recent.iter().position(|&r| r == id) {
            self.recent.remove(at);
        }
        self.recent.push_front(id);
        self.recent.truncate(RECENT);
        self.previous = [self.previous[1], Some(id)];
        if now % REFRESH_EVERY == 1 || self.frequent.len() < FREQUENT {
            self.refresh_frequent();
        }
    }

    fn refresh_frequent(&mut self) {
        let (now, lambda) = (self.clock, self.lambda);
        let mut all: Vec<(f64, u32)> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.frequency.get(now, lambda), i as u32))
            .collect();
        let keep = FREQUENT.min(all.len());
        if keep == 0 {
            self.frequent.clear();
            return;
        }
        all.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
        self.frequent = all[..keep].iter().map(|&(_, i)| i).collect();
    }

    /// The previous lines of a query as ids (the model's own when the query gives none).
    fn context_ids(&self, previous: &[String]) -> [Option<u32>; 2] {
        if previous.is_empty() {
            return self.previous;
        }
        let id = |s: &String| self.ids.get(s.as_str()).copied();
        let last = previous.last().and_then(id);
        let before = previous.len().checked_sub(2).and_then(|i| previous.get(i));
        [before.and_then(id), last]
    }

    /// The `k` most likely next lines.
    pub fn predict(&self, query: Query<'_>, k: usize) -> Vec<Scored> {
        let ctx = self.context_ids(query.previous);
        let mut candidates: Vec<u32> = Vec::with_capacity(128);
        let mut push_row = |row: Option<&Row>| {
            if let Some(row) = row {
                candidates.extend(row.top.iter().copied());
            }
        };
        push_row(ctx[1].and_then(|p| self.bigram.get(&p)));
        if let (Some(p0), Some(p1)) = (ctx[0], ctx[1]) {
            push_row(self.trigram.get(&(p0, p1)));
        }
        let prev_program = self.previous_program(query.previous, ctx[1]);
        push_row(prev_program.and_then(|p| self.program.get(p)));
        push_row(self.directory.get(query.cwd));
        candidates.extend(self.recent.iter().copied());
        candidates.extend(self.frequent.iter().copied());
        candidates.sort_unstable();
        candidates.dedup();
        self.rank(candidates.into_iter(), ctx, prev_program, query.cwd, k)
    }

    /// The `k` most likely lines that start with `prefix` (the prefix itself excluded).
    pub fn complete(&self, prefix: &str, query: Query<'_>, k: usize) -> Vec<Scored> {
        let ctx = self.context_ids(query.previous);
        let prev_program = self.previous_program(query.previous, ctx[1]);
        let candidates = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, name)| name.len() > prefix.len() && name.starts_with(prefix))
            .map(|(i, _)| i as u32);
        self.rank(candidates, ctx, prev_program, query.cwd, k)
    }

    fn previous_program<'s>(
        &'s self,
        previous: &'s [String],
        last: Option<u32>,
    ) -> Option<&'s str> {
        match previous.last() {
            Some(line) => Some(program_of(line)),
            None => last.map(|id| program_of(&self.names[id as usize])),
        }
    }

    fn rank(
        &self,
        candidates: impl Iterator<Item = u32>,
        ctx: [Option<u32>; 2],
        prev_program: Option<&str>,
        cwd: &str,
        k: usize,
    ) -> Vec<Scored> {
        let p = &self.params;
        let (now, lambda) = (self.clock, self.lambda);
        let bigram = ctx[1].and_then(|id| self.bigram.get(&id));
        let trigram = match ctx {
            [Some(a), Some(b)] => self.trigram.get(&(a, b)),
            _ => None,
        };
        let program = prev_program.and_then(|name| self.program.get(name));
        let directory = self.directory.get(cwd);
        let total = self.total.get(now, lambda) + p.smoothing;
        let prob = |row: Option<&Row>, id| {
            row.map_or(0.0, |r| r.probability(id, now, lambda, p.smoothing))
        };

        let mut scored: Vec<(f64, u32, usize)> = candidates
            .filter_map(|id| {
                let line = self.lines.get(id as usize)?;
                let parts = [
                    p.w_bigram * prob(bigram, id),
                    p.w_trigram * prob(trigram, id),
                    p.w_program * prob(program, id),
                    p.w_directory * prob(directory, id),
                    p.w_frequency * line.frequency.get(now, lambda) / total,
                    p.w_recency
                        * (-(now.saturating_sub(line.last) as f64) / p.recency_tau.max(0.1)).exp(),
                ];
                let failure_rate = line.failures as f64 / line.count.max(1) as f64;
                let damp = 1.0 - p.failure_penalty * failure_rate;
                let (strongest, _) =
                    parts
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f64::MIN),
                            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                        );
                Some((parts.iter().sum::<f64>() * damp, id, strongest))
            })
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        // Ties go to the more recent line, so answers are stable.
        let order = |a: &(f64, u32, usize), b: &(f64, u32, usize)| {
            b.0.total_cmp(&a.0).then_with(|| {
                let la = self.lines[a.1 as usize].last;
                let lb = self.lines[b.1 as usize].last;
                lb.cmp(&la)
            })
        };
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_unstable_by(order);
        scored
            .into_iter()
            .map(|(score, id, strongest)| Scored {
                command: self.names[id as usize].clone(),
                score,
                reason: self.reason(strongest, ctx, prev_program, cwd),
            })
            .collect()
    }

    fn reason(
        &self,
        strongest: usize,
        ctx: [Option<u32>; 2],
        prev_program: Option<&str>,
        cwd: &str,
    ) -> String {
        let name = |id: Option<u32>| id.map_or("", |id| self.names[id as usize].as_str());
        match strongest {
            0 | 1 => format!("follows \"{}\"", name(ctx[1])),
            2 => format!("follows {}", prev_program.unwrap_or("")),
            3 => format!("often in {cwd}"),
            4 => "frequent".to_string(),
            _ => "recent".to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed(model: &mut Model, lines: &[&str]) {
        for l in lines {
            model.observe(l, "", true);
        }
    }

    fn top(model: &Model, query: Query<'_>) -> String {
        model.predict(query, 1).first().unwrap().command.clone()
    }

    #[test]
    fn transitions_beat_plain_frequency() {
        let mut m = Model::new(Params::default());
        for _ in 0..20 {
            feed(&mut m, &["ls", "ls", "ls", "make", "./a.out"]);
        }
        feed(&mut m, &["make"]);
        assert_eq!(top(&m, Query::default()), "./a.out");
        let after_ls = vec!["ls".to_string()];
        let q = Query {
            cwd: "",
            previous: &after_ls,
        };
        // After `ls`: `ls` again twice in three, `make` once.
        assert_eq!(top(&m, q), "ls");
    }

    #[test]
    fn directory_decides_between_equals() {
        let mut m = Model::new(Params::default());
        for _ in 0..10 {
            m.observe("cargo build", "/src/a", true);
            m.observe("git status", "/etc", true);
        }
        let q = |cwd| Query { cwd, previous: &[] };
        let none: Vec<String> = vec!["true".into()];
        let fresh = |cwd| Query {
            cwd,
            previous: &none,
        };
        assert_eq!(top(&m, fresh("/src/a")), "cargo build");
        assert_eq!(top(&m, fresh("/etc")), "git status");
        assert!(!m.predict(q("/elsewhere"), 5).is_empty());
    }

    #[test]
    fn old_habits_fade() {
        let mut m = Model::new(Params {
            half_life: 50.0,
            ..Params::default()
        });
        let mut history = vec!["vi"; 200];
        history.extend(vec!["nvim"; 60]);
        feed(&mut m, &history);
        feed(&mut m, &["ls"]);
        let ls = vec!["ls".to_string()];
        let q = Query {
            cwd: "",
            previous: &ls,
        };
        let _ = q;
        let out = m.predict(Query::default(), 3);
        let names: Vec<_> = out.iter().map(|s| s.command.as_str()).collect();
        let nvim = names.iter().position(|&n| n == "nvim").unwrap();
        let vi = names.iter().position(|&n| n == "vi").unwrap_or(usize::MAX);
        assert!(nvim < vi, "{out:?}");
    }

    #[test]
    fn failures_are_damped() {
        let mut m = Model::new(Params::default());
        for _ in 0..10 {
            m.observe("y", "", true);
            m.observe("git push", "", true);
            m.observe("y", "", true);
            // Equally often after `y`, and more recent: only the failures set it back.
            m.observe("git psuh", "", false);
        }
        let after_y = vec!["y".to_string()];
        let q = Query {
            cwd: "",
            previous: &after_y,
        };
        let out = m.complete("git p", q, 2);
        assert_eq!(out[0].command, "git push", "{out:?}");
        assert_eq!(out[1].command, "git psuh", "{out:?}");
    }

    #[test]
    fn completion_needs_the_prefix_and_excludes_it() {
        let mut m = Model::new(Params::default());
        feed(&mut m, &["git status", "git", "gcc a.c", "ls"]);
        let out = m.complete("gi", Query::default(), 10);
        let names: Vec<_> = out.iter().map(|s| s.command.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"git status") && names.contains(&"git"));
        assert!(
            m.complete("git", Query::default(), 10)
                .iter()
                .all(|s| s.command != "git")
        );
        assert!(m.complete("zz", Query::default(), 10).is_empty());
    }

    #[test]
    fn empty_model_predicts_nothing() {
        let m = Model::new(Params::default());
        assert!(m.predict(Query::default(), 3).is_empty());
        assert!(m.complete("", Query::default(), 3).is_empty());
    }

    #[test]
    fn reasons_name_the_evidence() {
        let mut m = Model::new(Params::default());
        for _ in 0..5 {
            m.observe("make", "/w", true);
            m.observe("./run", "/w", true);
        }
        m.observe("make", "/w", true);
        let out = m.predict(
            Query {
                cwd: "/w",
                previous: &[],
            },
            1,
        );
        assert_eq!(out[0].command, "./run");
        assert_eq!(out[0].reason, "follows \"make\"");
    }
}
