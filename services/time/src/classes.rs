//! AQUA process classes: classical, quantum, hybrid and framework work, each in its own
//! systemd slice (`quantumos-<class>.slice`) with cgroup v2 weights.
//!
//! Processes are placed by systemd, never behind its back: a process goes into a transient
//! scope in its class's slice (`StartTransientUnit`), a unit gets its class's weights
//! (`SetUnitProperties`). This module holds the classes, the rules that pick a class, and
//! what the kernel reports about each slice; `bus.rs` makes the systemd calls.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessClass {
    Classical,
    Quantum,
    Hybrid,
    Framework,
}

pub const CLASSES: [ProcessClass; 4] = [
    ProcessClass::Classical,
    ProcessClass::Quantum,
    ProcessClass::Hybrid,
    ProcessClass::Framework,
];

impl ProcessClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessClass::Classical => "classical",
            ProcessClass::Quantum => "quantum",
            ProcessClass::Hybrid => "hybrid",
            ProcessClass::Framework => "framework",
        }
    }

    /// The slice unit: a child of `quantumos.slice` (systemd nests slices by their dashes).
    pub fn slice(self) -> String {
        format!("quantumos-{}.slice", self.as_str())
    }

    /// The slice's directory below the cgroup v2 root.
    pub fn cgroup(self) -> PathBuf {
        Path::new("quantumos.slice").join(self.slice())
    }
}

impl fmt::Display for ProcessClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProcessClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CLASSES
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown class `{s}`; known: classical, quantum, hybrid, framework")
            })
    }
}

/// The cgroup v2 settings of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// `cpu.weight` (1–10000, systemd's default is 100).
    pub cpu_weight: u64,
    /// `io.weight` (1–10000).
    pub io_weight: u64,
    /// `memory.low` in bytes: memory protected from reclaim.
    pub memory_low: u64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            cpu_weight: 100,
            io_weight: 100,
            memory_low: 0,
        }
    }
}

/// The weights QuantumOS ships (and `recipes/` writes into the slice units): quantum work
/// (simulation) gets the CPU first, hybrid loops next, background frameworks last.
pub fn default_weights(class: ProcessClass) -> Weights {
    match class {
        ProcessClass::Classical => Weights {
            cpu_weight: 100,
            io_weight: 100,
            memory_low: 0,
        },
        ProcessClass::Quantum => Weights {
            cpu_weight: 400,
            io_weight: 100,
            memory_low: 256 << 20,
        },
        ProcessClass::Hybrid => Weights {
            cpu_weight: 200,
            io_weight: 100,
            memory_low: 128 << 20,
        },
        ProcessClass::Framework => Weights {
            cpu_weight: 50,
            io_weight: 50,
            memory_low: 0,
        },
    }
}

impl Weights {
    pub fn validate(&self, class: ProcessClass) -> Result<(), String> {
        for (name, v) in [
            ("cpu_weight", self.cpu_weight),
            ("io_weight", self.io_weight),
        ] {
            if !(1..=10_000).contains(&v) {
                return Err(format!(
                    "time.toml: classes.{class}.{name} must be 1..10000, not {v}"
                ));
            }
        }
        Ok(())
    }
}

/// A rule from `time.toml`: `[[rules]] exe = "/usr/bin/python3*"  class = "hybrid"` or
/// `unit = "quantumd.service"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(default)]
    pub exe: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    pub class: String,
}

#[derive(Debug, Clone)]
pub enum Rule {
    Exe(glob::Pattern, ProcessClass),
    Unit(String, ProcessClass),
}

impl Rule {
    pub fn from_config(index: usize, rule: &RuleConfig) -> Result<Rule, String> {
        let at = format!("time.toml: rules[{index}]");
        let class: ProcessClass = rule.class.parse().map_err(|e| format!("{at}: {e}"))?;
        match (&rule.exe, &rule.unit) {
            (Some(exe), None) => glob::Pattern::new(exe)
                .map(|p| Rule::Exe(p, class))
                .map_err(|e| format!("{at}: bad exe pattern `{exe}`: {e}")),
            (None, Some(unit)) => Ok(Rule::Unit(unit.clone(), class)),
            _ => Err(format!("{at}: give exactly one of `exe` or `unit`")),
        }
    }
}

/// Whether `pid` names a running process.
pub fn process_exists(proc_root: &Path, pid: u32) -> bool {
    pid > 0 && proc_root.join(pid.to_string()).is_dir()
}

/// The executable of a process: `/proc/<pid>/exe` when we may read it, else `argv[0]`.
pub fn executable(proc_root: &Path, pid: u32) -> Option<String> {
    let dir = proc_root.join(pid.to_string());
    if let Ok(target) = fs::read_link(dir.join("exe")) {
        return Some(target.to_string_lossy().into_owned());
    }
    let cmdline = fs::read(dir.join("cmdline")).ok()?;
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    (!argv0.is_empty()).then(|| String::from_utf8_lossy(argv0).into_owned())
}

/// Processes that exe rules put in a class, skipping those already in a QuantumOS slice.
pub fn match_processes(proc_root: &Path, rules: &[Rule]) -> Vec<(u32, ProcessClass)> {
    if !has_exe_rules(rules) {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, match_process(proc_root, rules, pid)?)))
        .collect()
}

/// The class the first matching exe rule gives process `pid`, unless it is already in a
/// QuantumOS slice or gone. Callers skip it when [`has_exe_rules`] is false (it would read
/// `/proc` for nothing).
pub fn match_process(proc_root: &Path, rules: &[Rule], pid: u32) -> Option<ProcessClass> {
    let exe = executable(proc_root, pid)?;
    let class = rules.iter().find_map(|r| match r {
        Rule::Exe(p, c) if p.matches(&exe) => Some(*c),
        _ => None,
    })?;
    (!in_quantumos_slice(proc_root, pid)).then_some(class)
}

/// Whether any rule classifies by executable (the others name units, placed at start).
pub fn has_exe_rules(rules: &[Rule]) -> bool {
    rules.iter().any(|r| matches!(r, Rule::Exe(..)))
}

fn in_quantumos_slice(proc_root: &Path, pid: u32) -> bool {
    fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
        .is_ok_and(|c| c.contains("/quantumos.slice/"))
}

/// What the kernel says about one class's slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceUsage {
    /// Processes anywhere below the slice.
    pub pids: Vec<u32>,
    /// Scopes and services directly below it.
    pub members: Vec<String>,
    pub cpu_usage_usec: u64,
    pub memory_bytes: u64,
}

/// Reads `cpu.stat`, `memory.current` and the processes of a class's slice below the cgroup
/// v2 root. A slice that does not exist yet (nothing placed in it) reads as empty.
pub fn slice_usage(cgroup_root: &Path, class: ProcessClass) -> SliceUsage {
    let dir = cgroup_root.join(class.cgroup());
    let mut usage = SliceUsage {
        cpu_usage_usec: fs::read_to_string(dir.join("cpu.stat"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("usage_usec ")
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0),
        memory_bytes: fs::read_to_string(dir.join("memory.current"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        ..SliceUsage::default()
    };
    collect_pids(&dir, &mut usage.pids, 0);
    usage.pids.sort_unstable();
    if let Ok(entries) = fs::read_dir(&dir) {
        usage.members = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().to_str()?.to_string();
                (e.path().is_dir() && (name.ends_with(".scope") || name.ends_with(".service")))
                    .then_some(name)
            })
            .collect();
        usage.members.sort();
    }
    usage
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                collect_pids(&e.path(), pids, depth + 1);
            }
        }
    }
}

/// The transient scope a classified process goes into.
pub fn scope_name(class: ProcessClass, pid: u32) -> String {
    format!("quantumos-{class}-{pid}.scope")
}

/// Units classified through the API, kept so their weights come back after a reboot.
pub type UnitClasses = BTreeMap<String, ProcessClass>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing() {
        assert_eq!("quantum".parse::<ProcessClass>(), Ok(ProcessClass::Quantum));
        let err = "quantom".parse::<ProcessClass>().unwrap_err();
        assert!(
            err.contains("unknown class `quantom`") && err.contains("classical"),
            "{err}"
        );
        assert_eq!(ProcessClass::Hybrid.slice(), "quantumos-hybrid.slice");
        assert_eq!(
            ProcessClass::Hybrid.cgroup(),
            Path::new("quantumos.slice/quantumos-hybrid.slice")
        );
        assert_eq!(
            scope_name(ProcessClass::Quantum, 42),
            "quantumos-quantum-42.scope"
        );
    }

    #[test]
    fn rules_from_config() {
        let ok = RuleConfig {
            exe: Some("/usr/bin/python3*".into()),
            unit: None,
            class: "hybrid".into(),
        };
        assert!(matches!(
            Rule::from_config(0, &ok),
            Ok(Rule::Exe(_, ProcessClass::Hybrid))
        ));
        let both = RuleConfig {
            exe: Some("x".into()),
            unit: Some("y".into()),
            class: "hybrid".into(),
        };
        assert!(
            Rule::from_config(1, &both)
                .unwrap_err()
                .contains("rules[1]")
        );
        let bad = RuleConfig {
            exe: None,
            unit: Some("x.service".into()),
            class: "fast".into(),
        };
        assert!(
            Rule::from_config(2, &bad)
                .unwrap_err()
                .contains("unknown class `fast`")
        );
    }

    #[test]
    fn this_process_is_found_and_matched() {
        let proc_root = Path::new("/proc");
        let me = std::process::id();
        assert!(process_exists(proc_root, me));
        assert!(!process_exists(proc_root, u32::MAX - 1));
        let exe = executable(proc_root, me).unwrap();
        let rules = vec![Rule::Exe(
            glob::Pattern::new(&exe).unwrap(),
            ProcessClass::Framework,
        )];
        let matched = match_processes(proc_root, &rules);
        assert!(
            matched.contains(&(me, ProcessClass::Framework)),
            "{matched:?}"
        );
        // One pid, as an exec notification asks: the first matching rule wins; a process
        // that is gone or matches nothing gets no class.
        let first_wins = vec![
            Rule::Exe(
                glob::Pattern::new("/nowhere/*").unwrap(),
                ProcessClass::Quantum,
            ),
            Rule::Exe(glob::Pattern::new("/*").unwrap(), ProcessClass::Hybrid),
            Rule::Exe(glob::Pattern::new(&exe).unwrap(), ProcessClass::Framework),
        ];
        assert_eq!(
            match_process(proc_root, &first_wins, me),
            Some(ProcessClass::Hybrid)
        );
        assert_eq!(match_process(proc_root, &first_wins[..1], me), None);
        assert_eq!(match_process(proc_root, &rules, u32::MAX - 1), None);
        let units_only = [Rule::Unit("quantumd.service".into(), ProcessClass::Quantum)];
        assert!(!has_exe_rules(&units_only));
        assert_eq!(match_process(proc_root, &units_only, me), None);
    }

    #[test]
    fn a_process_already_in_a_quantumos_slice_is_left_alone() {
        let proc_root = tempfile::tempdir().unwrap();
        let pid_dir = proc_root.path().join("42");
        fs::create_dir_all(&pid_dir).unwrap();
        fs::write(pid_dir.join("cmdline"), b"/usr/bin/python3\0-c\0pass\0").unwrap();
        let rules = vec![Rule::Exe(
            glob::Pattern::new("/usr/bin/python3*").unwrap(),
            ProcessClass::Hybrid,
        )];
        fs::write(pid_dir.join("cgroup"), "0::/system.slice/x.service\n").unwrap();
        assert_eq!(
            match_process(proc_root.path(), &rules, 42),
            Some(ProcessClass::Hybrid)
        );
        fs::write(
            pid_dir.join("cgroup"),
            "0::/quantumos.slice/quantumos-quantum.slice/quantumos-quantum-42.scope\n",
        )
        .unwrap();
        assert_eq!(match_process(proc_root.path(), &rules, 42), None);
    }

    #[test]
    fn slice_usage_from_a_cgroup_tree() {
        let root = tempfile::tempdir().unwrap();
        let slice = root.path().join(ProcessClass::Quantum.cgroup());
        let scope = slice.join("quantumos-quantum-7.scope");
        fs::create_dir_all(&scope).unwrap();
        fs::write(
            slice.join("cpu.stat"),
            "usage_usec 123456\nuser_usec 100000\n",
        )
        .unwrap();
        fs::write(slice.join("memory.current"), "4096\n").unwrap();
        fs::write(slice.join("cgroup.procs"), "").unwrap();
        fs::write(scope.join("cgroup.procs"), "7\n9\n").unwrap();
        let usage = slice_usage(root.path(), ProcessClass::Quantum);
        assert_eq!(usage.cpu_usage_usec, 123_456);
        assert_eq!(usage.memory_bytes, 4096);
        assert_eq!(usage.pids, [7, 9]);
        assert_eq!(usage.members, ["quantumos-quantum-7.scope"]);
        assert_eq!(
            slice_usage(root.path(), ProcessClass::Hybrid),
            SliceUsage::default()
        );
    }
}
