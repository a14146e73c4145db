//! Correlation rules: TOML files in `/etc/quantumos/event.d/*.toml`, each with `[[rule]]`
//! tables. A rule matches records on source, kind, severity and fields (`*` wildcards),
//! counts them within a time window (optionally per value of a field), and when the count is
//! reached asks for an action, at most once per cooldown. The engine is pure: records in,
//! action requests out; the daemon carries them out and records each in the chain.
//!
//! ```toml
//! [[rule]]
//! name = "unit-flapping"
//! source = "units"
//! kind = "unit.started"
//! count = 3
//! within_sec = 60
//! group_by = "unit"
//! action = "stop-unit"
//! target = "{unit}"
//! alert = true
//! message = "{unit} started 3 times within a minute; stopped"
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::chain::Record;

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// The `Alert` signal and a warning in the journal.
    Alert,
    /// `RestartUnit` through systemd.
    RestartUnit,
    /// `StopUnit` through systemd (isolating a misbehaving unit).
    StopUnit,
    /// `Manager1.Restart(dimension)`: steppps-mgr restarts the dimension's unit.
    RestartDimension,
    /// `Script1.StartInstance`: the target is `<process> [NAME=VALUE…]`, the pairs becoming
    /// the instance's variables (with `rule` and `message`).
    RunWorkflow,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Alert => "alert",
            ActionKind::RestartUnit => "restart-unit",
            ActionKind::StopUnit => "stop-unit",
            ActionKind::RestartDimension => "restart-dimension",
            ActionKind::RunWorkflow => "run-workflow",
        }
    }
}

fn one() -> u32 {
    1
}
fn sixty() -> u64 {
    60
}
fn thirty() -> u64 {
    30
}

/// One `[[rule]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Source to match (`*` wildcards); any when absent.
    pub source: Option<String>,
    /// Kind to match (`*` wildcards); any when absent.
    pub kind: Option<String>,
    /// This severity or more severe (`warning` matches warning, err, crit, alert, emerg).
    pub severity: Option<String>,
    /// Fields that must be present and match (`*` wildcards).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// How many matches within `within_sec` fire the rule.
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "sixty")]
    pub within_sec: u64,
    /// Count separately per value of this field (per unit, per user…).
    pub group_by: Option<String>,
    pub action: ActionKind,
    /// Unit or dimension to act on; `{field}` is replaced from the record.
    pub target: Option<String>,
    /// Text of the alert and of the action's record; `{field}` as above.
    pub message: Option<String>,
    /// Also raise an alert when the action is not `alert` itself.
    #[serde(default)]
    pub alert: bool,
    /// After firing, the rule (per group) stays quiet this long.
    #[serde(default = "thirty")]
    pub cooldown_sec: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// A rules file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError(pub String);

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RulesError {}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub file: PathBuf,
    max_severity: u8,
}

/// What a firing rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub rule: String,
    pub action: ActionKind,
    /// The unit or dimension, templates filled in; empty for alerts.
    pub target: String,
    pub message: String,
    pub alert: bool,
    /// The record that completed the count.
    pub trigger_seq: u64,
    pub trigger_time_usec: u64,
}

/// Severity names as syslog has them, 0 … 7.
pub const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Parses a severity name (`err`, `error`, `warning`, `warn`, …) or digit.
pub fn parse_severity(s: &str) -> Option<u8> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    let alias = match s.as_str() {
        "emergency" | "panic" => "emerg",
        "critical" => "crit",
        "error" => "err",
        "warn" => "warning",
        "information" => "info",
        other => other,
    };
    SEVERITIES.iter().position(|n| *n == alias).map(|n| n as u8)
}

/// The name of severity `n` (`debug` past 7).
pub fn severity_name(n: u8) -> &'static str {
    SEVERITIES.get(n as usize).copied().unwrap_or("debug")
}

/// `*` matches any run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Replaces `{name}` with the record's field `name` (or `source`, `kind`, `seq`); unknown
/// names are left as they are.
pub fn fill_template(template: &str, record: &Record) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = match name {
            "source" => Some(record.source.clone()),
            "kind" => Some(record.kind.clone()),
            "seq" => Some(record.seq.to_string()),
            _ => record.field(name).map(str::to_string),
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

impl Rule {
    fn matches(&self, r: &Record) -> bool {
        let s = &self.spec;
        s.source.as_deref().is_none_or(|p| glob_match(p, &r.source))
            && s.kind.as_deref().is_none_or(|p| glob_match(p, &r.kind))
            && r.severity <= self.max_severity
            && s.fields
                .iter()
                .all(|(k, p)| r.field(k).is_some_and(|v| glob_match(p, v)))
    }
}

/// The loaded rules and their counting state.
#[derive(Debug, Default)]
pub struct RuleEngine {
    rules: Vec<Rule>,
    /// What the rules came from, for `Stats`.
    pub origin: String,
    /// (rule index, group) → times of recent matches.
    windows: HashMap<(usize, String), VecDeque<u64>>,
    /// (rule index, group) → when it last fired.
    fired: HashMap<(usize, String), u64>,
    /// Requests refused by a cooldown.
    pub suppressed: u64,
}

/// Sources whose records rules never see: the engine's own action records would otherwise
/// feed back into it.
pub const UNMATCHED_SOURCES: [&str; 1] = ["rules"];

impl RuleEngine {
    pub fn new(rules: Vec<Rule>, origin: String) -> RuleEngine {
        RuleEngine {
            rules,
            origin,
            ..RuleEngine::default()
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Feeds one committed record; returns the actions it triggers.
    pub fn observe(&mut self, r: &Record) -> Vec<ActionRequest> {
        if UNMATCHED_SOURCES.contains(&r.source.as_str()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(r) {
                continue;
            }
            let s = &rule.spec;
            let group = s
                .group_by
                .as_deref()
                .map(|g| r.field(g).unwrap_or("").to_string())
                .unwrap_or_default();
            let key = (i, group);
            let window_usec = s.within_sec.saturating_mul(1_000_000);
            let times = self.windows.entry(key.clone()).or_default();
            times.push_back(r.time_usec);
            while times
                .front()
                .is_some_and(|&t| t.saturating_add(window_usec) < r.time_usec)
            {
                times.pop_front();
            }
            if times.len() < s.count as usize {
                continue;
            }
            times.clear();
            let cooldown = s.cooldown_sec.saturating_mul(1_000_000);
            if let Some(&last) = self.fired.get(&key)
                && r.time_usec < last.saturating_add(cooldown)
            {
                self.suppressed += 1;
                continue;
            }
            self.fired.insert(key, r.time_usec);
            let message = s.message.as_deref().map_or_else(
                || format!("rule {} matched {} {}", s.name, r.source, r.kind),
                |m| fill_template(m, r),
            );
            out.push(ActionRequest {
                rule: s.name.clone(),
                action: s.action,
                target: s
                    .target
                    .as_deref()
                    .map(|t| fill_template(t, r))
                    .unwrap_or_default(),
                message,
                alert: s.alert || s.action == ActionKind::Alert,
                trigger_seq: r.seq,
                trigger_time_usec: r.time_usec,
            });
        }
        out
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map_or(1, |at| text[..at].matches('\n').count() + 1)
}

/// Parses one rules file; `path` names it in errors.
pub fn parse_rules(path: &Path, text: &str) -> Result<Vec<Rule>, RulesError> {
    let file: RulesFile =
        steppps::config::parse(path, text).map_err(|e| RulesError(e.to_string()))?;
    let mut rules = Vec::new();
    for spec in file.rule {
        let line = line_of(text, &format!("\"{}\"", spec.name));
        let err = |why: String| {
            RulesError(format!(
                "{}: rule `{}` (line {line}): {why}",
                path.display(),
                spec.name
            ))
        };
        if spec.name.trim().is_empty() {
            return Err(err("`name` must not be empty".into()));
        }
        let max_severity = match spec.severity.as_deref() {
            None => 7,
            Some(s) => parse_severity(s).ok_or_else(|| {
                err(format!(
                    "unknown severity `{s}`; use one of {}",
                    SEVERITIES.join(", ")
                ))
            })?,
        };
        if spec.count == 0 {
            return Err(err("`count` must be at least 1".into()));
        }
        if spec.within_sec == 0 {
            return Err(err("`within_sec` must be at least 1".into()));
        }
        match (spec.action, spec.target.as_deref()) {
            (ActionKind::Alert, _) => {}
            (kind, None | Some("")) => {
                return Err(err(format!(
                    "action `{}` needs a `target` (a unit, dimension or workflow, `{{field}}` allowed)",
                    kind.as_str()
                )));
            }
            (ActionKind::RestartDimension, Some(t))
                if !t.contains('{') && steppps::api::find_dimension(t).is_none() =>
            {
                return Err(err(format!(
                    "unknown dimension `{t}`; known: {}",
                    steppps::api::dimension_names().join(", ")
                )));
            }
            _ => {}
        }
        rules.push(Rule {
            spec,
            file: path.to_path_buf(),
            max_severity,
        });
    }
    Ok(rules)
}

/// Loads every `*.toml` in `dirs`, in file name order; a file in a later directory replaces
/// the one with the same name in an earlier one (`/etc/quantumos/event.d/x.toml` overrides
/// `/usr/share/quantumos/event.d/x.toml`; an empty file disables it). Missing directories
/// are skipped. Any bad file fails the whole load, so the caller keeps what it had. Rule names
/// must be unique.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<Rule>, RulesError> {
    let mut files: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RulesError(format!("{}: {e}", dir.display()))),
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                files.insert(entry.file_name(), path);
            }
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    for file in files.into_values() {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| RulesError(format!("{}: {e}", file.display())))?;
        for rule in parse_rules(&file, &text)? {
            if let Some(other) = rules.iter().find(|r| r.spec.name == rule.spec.name) {
                return Err(RulesError(format!(
                    "{}: rule `{}` (line {}) is already defined in {}",
                    file.display(),
                    rule.spec.name,
                    line_of(&text, &format!("\"{}\"", rule.spec.name)),
                    other.file.display()
                )));
            }
            rules.push(rule);
        }
    }
    Ok(rules)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(seq: u64, secs: u64, kind: &str, fields: &[(&str, &str)]) -> Record {
        Record {
            seq,
            time_usec: secs * 1_000_000,
            severity: 6,
            source: "units".into(),
            kind: kind.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    const FLAP: &str = r#"
[[rule]]
name = "flap"
source = "units"
kind = "unit.started"
count = 3
within_sec = 60
group_by = "unit"
action = "stop-unit"
target = "{unit}"
message = "{unit} flapped"
cooldown_sec = 300
"#;

    #[test]
    fn counts_within_the_window_per_group_then_cools_down() {
        let rules = parse_rules(Path::new("flap.toml"), FLAP).unwrap();
        let mut engine = RuleEngine::new(rules, "test".into());
        let a = [("unit", "a.service")];
        let b = [("unit", "b.service")];
        assert!(engine.observe(&record(1, 0, "unit.started", &a)).is_empty());
        assert!(
            engine
                .observe(&record(2, 10, "unit.started", &b))
                .is_empty()
        );
        assert!(
            engine
                .observe(&record(3, 20, "unit.started", &a))
                .is_empty()
        );
        // Outside the window: the first one no longer counts.
        assert!(
            engine
                .observe(&record(4, 70, "unit.started", &a))
                .is_empty()
        );
        let fired = engine.observe(&record(5, 75, "unit.started", &a));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].target, "a.service");
        assert_eq!(fired[0].message, "a.service flapped");
        assert_eq!(fired[0].action, ActionKind::StopUnit);
        assert_eq!(fired[0].trigger_seq, 5);
        for i in 0..3 {
            assert!(
                engine
                    .observe(&record(6 + i, 80, "unit.started", &a))
                    .is_empty()
            );
        }
        assert_eq!(engine.suppressed, 1);
    }

    #[test]
    fn field_and_severity_matching() {
        let rules = parse_rules(
            Path::new("x.toml"),
            "[[rule]]\nname='x'\nseverity='warning'\nfields={ message = '*authentication failure*' }\naction='alert'\n",
        )
        .unwrap();
        let mut engine = RuleEngine::new(rules, String::new());
        let mut r = record(
            1,
            0,
            "sshd",
            &[("message", "pam_unix: authentication failure; user=x")],
        );
        assert!(
            engine.observe(&r).is_empty(),
            "info is less severe than warning"
        );
        r.severity = 4;
        assert_eq!(engine.observe(&r).len(), 1);
        r.source = "rules".into();
        assert!(
            engine.observe(&r).is_empty(),
            "own records are never matched"
        );
    }

    #[test]
    fn bad_rules_name_file_and_line() {
        let err = parse_rules(
            Path::new("/etc/quantumos/event.d/bad.toml"),
            "[[rule]]\nname = 'x'\naction = 'reboot'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/etc/quantumos/event.d/bad.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = parse_rules(
            Path::new("b.toml"),
            "\n\n[[rule]]\nname = \"r\"\naction = \"restart-unit\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("line 4") && err.contains("needs a `target`"),
            "{err}"
        );
        let err = parse_rules(
            Path::new("c.toml"),
            "[[rule]]\nname='r'\naction='alert'\nwithin = 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown field `within`") && err.contains("line 4"),
            "{err}"
        );
        let err = parse_rules(
            Path::new("d.toml"),
            "[[rule]]\nname='r'\naction='restart-dimension'\ntarget='spaec'\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown dimension `spaec`"), "{err}");
    }

    #[test]
    fn globs_and_templates() {
        assert!(glob_match("steppps-*.service", "steppps-space.service"));
        assert!(!glob_match("steppps-*.service", "steppps-space.socket"));
        assert!(glob_match("*fail*", "authentication failure"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b*c", "acb"));
        let r = record(9, 0, "k", &[("unit", "u.service")]);
        assert_eq!(
            fill_template("{unit} #{seq} {nope}", &r),
            "u.service #9 {nope}"
        );
        assert_eq!(parse_severity("Error"), Some(3));
        assert_eq!(parse_severity("9"), None);
    }

    #[test]
    fn shipped_rules_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../recipes/quantumos/usr/share/quantumos/event.d");
        let rules = load_dirs(&[dir]).unwrap();
        assert!(rules.len() >= 3, "{}", rules.len());
    }
}
