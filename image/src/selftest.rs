//! The verdict of the boot test. The test profile's in-guest check
//! (`recipes/mkosi.profiles/test/mkosi.extra/usr/libexec/quantumos/qos-selftest`) prints
//! one line, `QOS-TEST-RESULT {json}`, on the serial console, and
//! `QOS-TEST-JOURNAL <unit>: …` lines with the journal of every unit that is not running.
//! This module turns that line into checks a person can read.

use anyhow::{Context, Result};
use serde_json::Value;

pub const RESULT_MARKER: &str = "QOS-TEST-RESULT ";
pub const JOURNAL_MARKER: &str = "QOS-TEST-JOURNAL ";

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug)]
pub struct Verdict {
    pub checks: Vec<Check>,
    /// (unit, exposure, rating) from `systemd-analyze security`.
    pub security: Vec<(String, String, String)>,
    pub times: Vec<(String, String)>,
    pub result: Value,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// Units the guest reported as not active or failed.
    pub fn bad_units(&self) -> Vec<String> {
        let mut units: Vec<String> = units(&self.result)
            .filter(|u| u["active"] != "active")
            .filter_map(|u| u["unit"].as_str().map(str::to_string))
            .collect();
        for failed in self.result["failed"].as_array().into_iter().flatten() {
            if let Some(name) = failed.as_str() {
                if !units.iter().any(|u| u == name) {
                    units.push(name.to_string());
                }
            }
        }
        units
    }
}

/// The JSON after the marker, when `line` carries it (anywhere in the line: the console may
/// prefix it).
pub fn result_json(line: &str) -> Option<&str> {
    line.find(RESULT_MARKER)
        .map(|i| line[i + RESULT_MARKER.len()..].trim())
}

fn units(result: &Value) -> impl Iterator<Item = &Value> {
    result["units"].as_array().into_iter().flatten()
}

pub fn evaluate(json: &str) -> Result<Verdict> {
    let result: Value = serde_json::from_str(json)
        .with_context(|| format!("the guest printed an unreadable result: {json}"))?;
    let mut checks = Vec::new();

    let target = result["steppps_target"].as_str().unwrap_or("missing");
    checks.push(Check {
        name: "steppps.target reached".into(),
        ok: target == "active",
        detail: format!("steppps.target is {target}"),
    });

    let all: Vec<&Value> = units(&result).collect();
    let inactive: Vec<String> = all
        .iter()
        .filter(|u| u["active"] != "active")
        .map(|u| {
            format!(
                "{} is {}/{}",
                u["unit"].as_str().unwrap_or("?"),
                u["active"].as_str().unwrap_or("?"),
                u["sub"].as_str().unwrap_or("?")
            )
        })
        .collect();
    checks.push(Check {
        name: "every QuantumOS unit active".into(),
        ok: !all.is_empty() && inactive.is_empty(),
        detail: if all.is_empty() {
            "steppps.target wants no units".into()
        } else if inactive.is_empty() {
            format!("{} units active", all.len())
        } else {
            inactive.join("; ")
        },
    });

    checks.push(ctl_check(&result["qos_ctl"]));

    let failed: Vec<&str> = result["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    checks.push(Check {
        name: "no failed units".into(),
        ok: failed.is_empty(),
        detail: if failed.is_empty() {
            "systemctl --failed lists nothing".into()
        } else {
            failed.join(", ")
        },
    });

    let security = all
        .iter()
        .map(|u| {
            (
                u["unit"].as_str().unwrap_or("?").to_string(),
                value_text(&u["exposure"]),
                value_text(&u["rating"]),
            )
        })
        .collect();
    let times = result["times"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    Ok(Verdict {
        checks,
        security,
        times,
        result,
    })
}

/// `qos-ctl status --json` inside the guest: exit 0, overall "ok", every expected
/// dimension ready.
fn ctl_check(ctl: &Value) -> Check {
    let name = "qos-ctl status: all ready".to_string();
    let exit = ctl["exit"].as_i64().unwrap_or(-1);
    let status = &ctl["output"];
    if !status.is_object() {
        let raw = ctl["raw"].as_str().unwrap_or("").trim();
        return Check {
            name,
            ok: false,
            detail: format!("exit {exit}, no JSON status: {raw}"),
        };
    }
    let not_ready: Vec<String> = status["dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["expected"].as_bool().unwrap_or(true))
        .filter(|d| d["state"] != "ready")
        .map(|d| {
            format!(
                "{} is {}",
                d["name"].as_str().unwrap_or("?"),
                d["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let overall = status["overall"].as_str().unwrap_or("?");
    Check {
        name,
        ok: exit == 0 && overall == "ok" && not_ready.is_empty(),
        detail: if not_ready.is_empty() {
            format!("exit {exit}, overall {overall}")
        } else {
            format!("exit {exit}, overall {overall}: {}", not_ready.join(", "))
        },
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"steppps_target":"active",
      "units":[{"unit":"steppps-mgr.service","active":"active","sub":"running","exposure":"2.1","rating":"OK"},
               {"unit":"steppps-space.service","active":"active","sub":"running","exposure":"1.9","rating":"OK"}],
      "qos_ctl":{"exit":0,"output":{"overall":"ok","dimensions":[
          {"name":"space","state":"ready","expected":true},
          {"name":"time","state":"absent","expected":false}]}},
      "failed":[],"times":{"multi_user_us":41000000}}"#;

    #[test]
    fn a_healthy_guest_passes() -> Result<()> {
        let verdict = evaluate(GOOD)?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        assert_eq!(verdict.security.len(), 2);
        assert!(verdict.bad_units().is_empty());
        Ok(())
    }

    #[test]
    fn a_dead_daemon_and_a_failed_unit_fail() -> Result<()> {
        let json = GOOD
            .replace(
                r#""active":"active","sub":"running","exposure":"1.9""#,
                r#""active":"failed","sub":"failed","exposure":"1.9""#,
            )
            .replace(r#""failed":[]"#, r#""failed":["steppps-space.service"]"#)
            .replace(r#""overall":"ok""#, r#""overall":"degraded""#);
        let verdict = evaluate(&json)?;
        assert!(!verdict.passed());
        let failing: Vec<_> = verdict
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failing,
            [
                "every QuantumOS unit active",
                "qos-ctl status: all ready",
                "no failed units"
            ]
        );
        assert_eq!(verdict.bad_units(), ["steppps-space.service"]);
        Ok(())
    }

    #[test]
    fn no_units_is_a_failure_not_a_pass() -> Result<()> {
        let verdict = evaluate(r#"{"steppps_target":"inactive","units":[],"failed":[]}"#)?;
        assert!(!verdict.passed());
        Ok(())
    }

    #[test]
    fn the_marker_is_found_after_console_noise() {
        assert_eq!(
            result_json("[  OK  ] x QOS-TEST-RESULT {\"a\":1}"),
            Some("{\"a\":1}")
        );
        assert_eq!(result_json("QOS-TEST-JOURNAL x: y"), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(evaluate("{not json").is_err());
    }
}
