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

    checks.extend(prompt_checks(&result["prompt"]));
    checks.extend(classify_check(&result["classify"]));
    checks.extend(exec_classify_check(&result["exec_classify"]));
    checks.extend(self_healing_check(&result["self_healing"]));
    checks.extend(event_sources_check(&result["event_sources"]));
    checks.extend(live_user_job_check(&result["live_user_job"]));
    checks.extend(live_user_sudo_check(&result["live_user_sudo"]));
    checks.extend(apt_sources_check(&result["apt"]));
    checks.extend(man_pages_check(&result["man_pages"]));
    checks.extend(storage_check(&result["storage"]));
    checks.extend(hostname_check(&result["hostname"]));
    checks.extend(pci_names_check(&result["pci_devices"]));
    checks.extend(quantum_memory_check(&result["quantum_memory"]));

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
    checks.extend(module_checks(&result["module"], &result["module_bench"]));

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

/// The prompt dimension in the guest: a request in words answered with an `ls` command from
/// the image's own model and catalog, and qsh as the live user's registered login shell.
/// No checks when the image has no qsh (the guest then reports no `prompt` object).
fn prompt_checks(prompt: &Value) -> Vec<Check> {
    if !prompt.is_object() || prompt["login_shell"].as_str().unwrap_or("").is_empty() {
        return Vec::new();
    }
    let first = prompt["translate"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|s| s["command"].as_str());
    let shell = prompt["login_shell"].as_str().unwrap_or("");
    let listed = prompt["shell_listed"].as_bool().unwrap_or(false);
    vec![
        Check {
            name: "prompt: translates a request".into(),
            ok: first.is_some_and(|c| c.starts_with("ls")),
            detail: match first {
                Some(c) => format!("\"list the files in this folder\" → {c}"),
                None => format!(
                    "no suggestion: {} {}",
                    prompt["translate"],
                    prompt["raw"].as_str().unwrap_or("").trim()
                ),
            },
        },
        Check {
            name: "qsh is the live user's login shell".into(),
            ok: shell == "/usr/bin/qsh" && listed,
            detail: format!(
                "{shell}{}",
                if listed { "" } else { " (not in /etc/shells)" }
            ),
        },
    ]
}

/// The steppps kernel module in the guest (qos-module-check): loaded, and the event
/// dimension counted the events of 10,000 short processes as the module did. The cost
/// figures (qos-bench-module) are reported, not judged: they are a benchmark. No checks when
/// the guest reports no `module` object (an image without the module).
fn module_checks(module: &Value, bench: &Value) -> Vec<Check> {
    if module.is_null() {
        return Vec::new();
    }
    let name = "steppps module: events counted alike".to_string();
    if module["loaded"] != Value::Bool(true) {
        return vec![Check {
            name,
            ok: false,
            detail: format!("not loaded: {}", value_text(&module["why"])),
        }];
    }
    let mut detail = format!(
        "{} processes: module {} events, event dimension {}, drops {}; \
         module - dimension {} before, {} after (tolerance {}); source {}",
        value_text(&module["processes"]),
        value_text(&module["module_events"]),
        value_text(&module["dimension_events"]),
        value_text(&module["drops"]),
        value_text(&module["difference_before"]),
        value_text(&module["difference_after"]),
        value_text(&module["tolerance"]),
        value_text(&module["source"]),
    );
    if bench.is_object() {
        detail.push_str(&format!(
            "; fork+exec/s (medians) without {}, loaded {} ({}), reading {} ({}); \
             spread of the rounds {} / {} / {}",
            value_text(&bench["rate_per_s"]["without"]),
            value_text(&bench["rate_per_s"]["loaded"]),
            value_text(&bench["ratio"]["loaded"]),
            value_text(&bench["rate_per_s"]["reading"]),
            value_text(&bench["ratio"]["reading"]),
            value_text(&bench["spread"]["without"]),
            value_text(&bench["spread"]["loaded"]),
            value_text(&bench["spread"]["reading"]),
        ));
    }
    vec![Check {
        name,
        ok: module["match"] == Value::Bool(true),
        detail,
    }]
}

/// A process classified `quantum` with qos-ctl under the guest's systemd lands in a scope of
/// `quantumos-quantum.slice`. No check for a guest that does not report it.
fn classify_check(classify: &Value) -> Option<Check> {
    let exit = classify["exit"].as_i64()?;
    let cgroup = classify["cgroup"].as_str().unwrap_or("");
    Some(Check {
        name: "time: a classified process moves into its class's slice".into(),
        ok: exit == 0 && cgroup.contains("/quantumos.slice/quantumos-quantum.slice/"),
        detail: format!(
            "qos-ctl time classify exit {exit} ({}); cgroup {cgroup}",
            classify["output"].as_str().unwrap_or("").trim()
        ),
    })
}

/// A program that a `time.toml` exe rule names (test profile: /run/qos-class-probe → hybrid)
/// is moved into its class's slice by the time dimension on its own, from the exec
/// notification, and the time dimension says it works at exec time. No check for a guest
/// that does not report it.
fn exec_classify_check(exec: &Value) -> Option<Check> {
    if !exec.is_object() {
        return None;
    }
    let cgroup = exec["cgroup"].as_str().unwrap_or("");
    let health = exec["health"].as_str().unwrap_or("");
    let placed = cgroup.contains("/quantumos.slice/quantumos-hybrid.slice/");
    let at_exec = health.contains("at exec time");
    let when = exec["ms"]
        .as_u64()
        .map_or("not within 10 s".to_string(), |ms| format!("after {ms} ms"));
    Some(Check {
        name: "time: an exe rule places a new program at exec time".into(),
        ok: placed && at_exec,
        detail: format!("cgroup {cgroup} ({when}); time dimension: {health}"),
    })
}

/// A circuit larger than the guest's memory, submitted to quantumd under its shipped sandbox:
/// refused with the simulator's memory error, and quantumd neither restarted nor replaced.
/// No check for a guest that does not report it.
fn quantum_memory_check(job: &Value) -> Option<Check> {
    let exit = job["exit"].as_i64()?;
    let output = job["output"].as_str().unwrap_or("").trim();
    let restarts = job["restarts"].as_i64().unwrap_or(-1);
    let same_pid = job["same_pid"].as_bool().unwrap_or(false);
    let active = job["active"].as_str().unwrap_or("?");
    let refused = exit != 0 && output.contains("of memory is available");
    Some(Check {
        name: "quantum: a circuit larger than memory is refused, quantumd keeps running".into(),
        ok: refused && restarts == 0 && same_pid && active == "active",
        detail: format!(
            "{} qubits: qos-ctl exit {exit} ({output}); quantumd {active}, {restarts} restarts, {}",
            job["qubits"],
            if same_pid {
                "same process"
            } else {
                "another process"
            }
        ),
    })
}

/// The live user submitted the shipped Bell example without sudo and got its answer: 1000
/// shots, all of them 00 or 11, both seen. No check for a guest that does not report it.
fn live_user_job_check(job: &Value) -> Option<Check> {
    let exit = job["exit"].as_i64()?;
    let output = job["output"].as_str().unwrap_or("").trim();
    let results: Value = serde_json::from_str(output).unwrap_or(Value::Null);
    let counts = results["counts"].as_object();
    let count = |bits: &str| counts.and_then(|c| c.get(bits)).and_then(Value::as_u64);
    let total: u64 = counts
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let bell = counts.is_some_and(|c| c.keys().all(|k| k == "00" || k == "11"))
        && count("00").unwrap_or(0) > 0
        && count("11").unwrap_or(0) > 0
        && total == 1000;
    Some(Check {
        name: "the live user runs the Bell example without sudo".into(),
        ok: exit == 0 && bell,
        detail: if counts.is_some() {
            format!(
                "qos-ctl exit {exit}; counts 00: {}, 11: {}, all outcomes: {total}",
                count("00").unwrap_or(0),
                count("11").unwrap_or(0)
            )
        } else {
            format!("qos-ctl exit {exit}: {output}")
        },
    })
}

/// `sudo` as the live user: no password asked and nothing printed. sudo looks its own host
/// name up and warns on every call when that fails. No check for a guest that does not report
/// it.
fn live_user_sudo_check(sudo: &Value) -> Option<Check> {
    let exit = sudo["exit"].as_i64()?;
    let output = sudo["output"].as_str().unwrap_or("").trim();
    let host = sudo["hostname"].as_str().unwrap_or("?");
    Some(Check {
        name: "the live user's sudo works quietly".into(),
        ok: exit == 0 && output.is_empty(),
        detail: if output.is_empty() {
            format!("sudo -n true: exit {exit}, no output (host name {host})")
        } else {
            format!("sudo -n true: exit {exit}: {output}")
        },
    })
}

/// `apt-cache policy` reads the image's sources without a warning: a suite listed twice (as
/// when mkosi's own list sits next to ours) warns on every apt command. No check for a guest
/// that does not report it.
fn apt_sources_check(apt: &Value) -> Option<Check> {
    let warnings = apt["warnings"].as_str()?.trim();
    let sources: Vec<&str> = apt["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    Some(Check {
        name: "apt reads its sources without a warning".into(),
        ok: warnings.is_empty(),
        detail: if warnings.is_empty() {
            format!("sources.list.d: {}", sources.join(", "))
        } else {
            format!("{warnings} (sources.list.d: {})", sources.join(", "))
        },
    })
}

/// `man qos-ctl`, `man qos-ctl-job-submit` (one of the per-command pages qos-ctl(1) lists),
/// `man qsh` and `man qos-install` in the guest: each page renders to more than a few lines. No check for a
/// guest that does not report them.
fn man_pages_check(pages: &Value) -> Option<Check> {
    let pages = pages.as_array()?;
    let lines = |p: &Value| p["lines"].as_u64().unwrap_or(0);
    let name = |p: &Value| p["page"].as_str().unwrap_or("?").to_string();
    let missing: Vec<String> = pages.iter().filter(|p| lines(p) < 20).map(name).collect();
    Some(Check {
        name: "man pages render".into(),
        ok: !pages.is_empty() && missing.is_empty(),
        detail: if missing.is_empty() {
            pages
                .iter()
                .map(|p| format!("{}: {} lines", name(p), lines(p)))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("no page (or a stub) for {}", missing.join(", "))
        },
    })
}

/// The space dimension's file systems (`qos-ctl space disks`) as the live system has them,
/// though the daemon sees them through its sandbox: `/` writable (the sandbox makes every
/// mount read-only for the daemon), every one measured, and none of the directories the
/// sandbox covers (no mounts of their own on the live system). No check for a guest that
/// does not report them.
fn storage_check(filesystems: &Value) -> Option<Check> {
    let filesystems = filesystems.as_array()?;
    let point = |f: &Value| f["mount_point"].as_str().unwrap_or("?").to_string();
    let mut wrong = Vec::new();
    match filesystems.iter().find(|f| f["mount_point"] == "/") {
        None => wrong.push("no / listed".to_string()),
        Some(root) if root["read_only"] != false => wrong.push("/ read-only".to_string()),
        Some(_) => {}
    }
    for f in filesystems {
        if f["total_bytes"].as_u64().unwrap_or(0) == 0 {
            wrong.push(format!("{} not measured", point(f)));
        }
        if ["/home", "/root", "/usr/lib/modules"].contains(&point(f).as_str()) {
            wrong.push(format!("{} is the sandbox's", point(f)));
        }
    }
    Some(Check {
        name: "space dimension: the file systems as the system has them".into(),
        ok: wrong.is_empty(),
        detail: if wrong.is_empty() {
            filesystems
                .iter()
                .map(|f| {
                    let mode = if f["read_only"] == true { "ro" } else { "rw" };
                    format!("{} {mode}", point(f))
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            wrong.join("; ")
        },
    })
}

/// The space dimension reports a hostname set while it runs, in its inventory (`qos-ctl
/// space os`) and its `Hostname` property (busctl prints `s "NAME"`). No check for a guest
/// that does not report it.
fn hostname_check(hostname: &Value) -> Option<Check> {
    let set = hostname["set"].as_str()?;
    let os = hostname["os"].as_str().unwrap_or("");
    let property = hostname["property"].as_str().unwrap_or("").trim();
    let ok = !set.is_empty() && os == set && property == format!("s \"{set}\"");
    Some(Check {
        name: "space dimension: a new hostname shows at once".into(),
        ok,
        detail: format!("set {set}; space os: {os:?}; Hostname property: {property:?}"),
    })
}

/// The space dimension names the PCI devices it lists from pci.ids, as lspci would: the
/// database is there and read when devices get vendor names. Not every one need have one:
/// pci.ids lacks some (qemu's VGA, 1234:1111, which lspci also shows by id). No check for a
/// guest that does not report them.
fn pci_names_check(devices: &Value) -> Option<Check> {
    let devices = devices.as_array()?;
    let unnamed: Vec<&str> = devices
        .iter()
        .filter(|d| d["vendor_name"].as_str().unwrap_or("").is_empty())
        .map(|d| d["slot"].as_str().unwrap_or("?"))
        .collect();
    Some(Check {
        name: "space dimension: PCI devices named".into(),
        ok: unnamed.len() < devices.len(),
        detail: if devices.is_empty() {
            "no PCI device listed".into()
        } else {
            let first = &devices[0];
            format!(
                "{} of {} devices named; {}: {} {}{}",
                devices.len() - unnamed.len(),
                devices.len(),
                first["slot"].as_str().unwrap_or("?"),
                first["vendor_name"].as_str().unwrap_or(""),
                first["device_name"].as_str().unwrap_or(""),
                if unnamed.is_empty() {
                    String::new()
                } else {
                    format!("; not in pci.ids: {}", unnamed.join(", "))
                }
            )
        },
    })
}

/// The event dimension captures from every source it was configured with: in the booted
/// image each one (journal, units, udev, process, bus, emit) is `on`, not waiting or
/// unavailable. No check for a guest that does not report them.
fn event_sources_check(sources: &Value) -> Option<Check> {
    let sources = sources.as_object()?;
    let not_on: Vec<String> = sources
        .iter()
        .filter_map(|(name, state)| {
            let state = state.as_str().unwrap_or("?");
            let on = state == "on" || state.starts_with("on,");
            (!on).then(|| format!("{name}: {state}"))
        })
        .collect();
    Some(Check {
        name: "event dimension: every source on".into(),
        ok: !sources.is_empty() && not_on.is_empty(),
        detail: if not_on.is_empty() {
            let mut names: Vec<&str> = sources.keys().map(String::as_str).collect();
            names.sort_unstable();
            format!("{} sources on: {}", names.len(), names.join(", "))
        } else {
            not_on.join("; ")
        },
    })
}

/// steppps-spaced SIGKILLed in the guest: the event dimension recorded the unclean exit,
/// its `dimension-died` rule had steppps-mgr restart space (outcome ok), the new daemon came
/// back on the bus, and the chain still verifies. The detail gives the recovery time and
/// whether systemd's own Restart= was involved. No check for a guest that does not report it.
fn self_healing_check(heal: &Value) -> Option<Check> {
    if !heal.is_object() {
        return None;
    }
    let records: Vec<&Value> = heal["records"].as_array().into_iter().flatten().collect();
    let has = |kind: &str, field: &str, value: &str| {
        records
            .iter()
            .any(|r| r["kind"] == kind && r["fields"][field] == value)
    };
    let action = records
        .iter()
        .find(|r| r["kind"] == "action.restart-dimension" && r["fields"]["target"] == "space");
    let back_ms = heal["back_ms"].as_u64();
    let verify = heal["verify"].as_str().unwrap_or("");
    let mut missing = Vec::new();
    if !has("dimension.vanished", "clean", "no") {
        missing.push("no dimension.vanished (clean=no) record");
    }
    if action.is_none_or(|a| a["fields"]["outcome"] != "ok") {
        missing.push("no action.restart-dimension record with outcome=ok");
    }
    if !has("dimension.appeared", "dimension", "space") {
        missing.push("no dimension.appeared record for space");
    }
    if back_ms.is_none() {
        missing.push("space did not come back within 30 s");
    }
    if !verify.starts_with("ok:") {
        missing.push("the chain does not verify");
    }
    let detail = format!(
        "space back on the bus {} ms after SIGKILL; rule action {} ms after the vanishing ({}); \
         systemd automatic restarts: {}; verify: {verify}{}",
        back_ms.map_or("-".into(), |ms| ms.to_string()),
        action
            .and_then(|a| a["fields"]["since_trigger_ms"].as_str())
            .unwrap_or("-"),
        action
            .and_then(|a| a["fields"]["outcome"].as_str())
            .unwrap_or("none"),
        value_text(&heal["systemd_restarts"]),
        if missing.is_empty() {
            String::new()
        } else {
            format!("; {}", missing.join("; "))
        }
    );
    Some(Check {
        name: "event: a killed dimension is restarted by its rule and recorded".into(),
        ok: missing.is_empty(),
        detail,
    })
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

    /// GOOD with one more section, as a guest that reports it prints it.
    fn good_with(section: &str, json: &str) -> String {
        GOOD.replace(
            r#""failed":[]"#,
            &format!(r#""failed":[],"{section}":{json}"#),
        )
    }

    #[test]
    fn the_live_users_bell_job_must_be_allowed_and_right() -> Result<()> {
        let with = |exit: i64, output: &str| {
            good_with(
                "live_user_job",
                &serde_json::json!({"exit": exit, "output": output}).to_string(),
            )
        };
        let verdict = evaluate(&with(0, r#"{"id":"j1","counts":{"00":497,"11":503}}"#))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        for (exit, output) in [
            (
                1,
                "qos-ctl: org.quantumos.quantum.submit: authentication is required",
            ),
            (0, r#"{"id":"j1","counts":{"00":497,"01":3,"11":500}}"#),
            (0, r#"{"id":"j1","counts":{"00":1000}}"#),
        ] {
            let verdict = evaluate(&with(exit, output))?;
            assert!(!verdict.passed(), "{output} passed");
        }
        Ok(())
    }

    #[test]
    fn a_sudo_that_warns_fails_the_boot_test() -> Result<()> {
        let with = |sudo: &str| good_with("live_user_sudo", sudo);
        let verdict = evaluate(&with(r#"{"exit":0,"output":"","hostname":"quantumos"}"#))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let verdict = evaluate(&with(
            r#"{"exit":0,"output":"sudo: unable to resolve host quantumos: Name or service not known","hostname":"quantumos"}"#,
        ))?;
        assert!(!verdict.passed());
        let verdict = evaluate(&with(
            r#"{"exit":1,"output":"sudo: a password is required","hostname":"quantumos"}"#,
        ))?;
        assert!(!verdict.passed());
        Ok(())
    }

    #[test]
    fn apt_warning_about_its_sources_fails_the_boot_test() -> Result<()> {
        let with = |apt: &str| good_with("apt", apt);
        let verdict = evaluate(&with(r#"{"warnings":"","sources":["debian.sources"]}"#))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let verdict = evaluate(&with(
            r#"{"warnings":"W: Target Packages (main/binary-amd64/Packages) is configured multiple times in /etc/apt/sources.list.d/debian.sources:1 and /etc/apt/sources.list.d/trixie.sources:1","sources":["debian.sources","trixie.sources"]}"#,
        ))?;
        assert!(!verdict.passed());
        Ok(())
    }

    #[test]
    fn a_man_page_that_does_not_render_fails_the_boot_test() -> Result<()> {
        let with = |pages: &str| good_with("man_pages", pages);
        let verdict = evaluate(&with(
            r#"[{"page":"qos-ctl","lines":900},{"page":"qsh","lines":120}]"#,
        ))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let verdict = evaluate(&with(
            r#"[{"page":"qos-ctl","lines":900},{"page":"qsh","lines":0}]"#,
        ))?;
        assert!(!verdict.passed());
        Ok(())
    }

    #[test]
    fn a_hostname_the_space_dimension_does_not_see_fails_the_boot_test() -> Result<()> {
        let with = |os: &str, property: &str| {
            good_with(
                "hostname",
                &serde_json::json!({"set": "probe", "os": os, "property": property}).to_string(),
            )
        };
        let verdict = evaluate(&with("probe", "s \"probe\"\n"))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        // The name of the daemon's start (its own UTS namespace), or a cached property.
        assert!(!evaluate(&with("quantumos", "s \"probe\""))?.passed());
        assert!(!evaluate(&with("probe", "s \"quantumos\""))?.passed());
        assert!(!evaluate(&with("", ""))?.passed());
        Ok(())
    }

    #[test]
    fn unnamed_pci_devices_fail_the_boot_test() -> Result<()> {
        let with = |devices: &str| good_with("pci_devices", devices);
        let named = r#"[{"slot":"0000:00:00.0","vendor_name":"Intel Corporation","device_name":"82G33/G31/P35/P31 Express DRAM Controller"},{"slot":"0000:00:01.0","vendor_name":"","device_name":""}]"#;
        assert!(evaluate(&with(named))?.passed());
        let unnamed = r#"[{"slot":"0000:00:00.0","vendor_name":"","device_name":""}]"#;
        assert!(!evaluate(&with(unnamed))?.passed());
        assert!(!evaluate(&with("[]"))?.passed());
        Ok(())
    }

    #[test]
    fn the_sandboxes_view_of_storage_fails_the_boot_test() -> Result<()> {
        let with = |filesystems: &str| good_with("storage", filesystems);
        let verdict = evaluate(&with(
            r#"[{"mount_point":"/","read_only":false,"total_bytes":412160000},
                {"mount_point":"/run/initramfs/live","read_only":true,"total_bytes":386600000},
                {"mount_point":"/tmp","read_only":false,"total_bytes":1030000000}]"#,
        ))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        // What spaced showed before: / read-only, the placeholder over /home, the CD unmeasured.
        for filesystems in [
            r#"[{"mount_point":"/","read_only":true,"total_bytes":412160000}]"#,
            r#"[{"mount_point":"/","read_only":false,"total_bytes":412160000},
                {"mount_point":"/home","read_only":true,"total_bytes":412160000}]"#,
            r#"[{"mount_point":"/","read_only":false,"total_bytes":412160000},
                {"mount_point":"/run/initramfs/live","read_only":true,"total_bytes":0}]"#,
            r#"[]"#,
        ] {
            assert!(!evaluate(&with(filesystems))?.passed(), "{filesystems}");
        }
        Ok(())
    }

    #[test]
    fn an_event_source_that_is_not_on_fails_the_boot_test() -> Result<()> {
        let verdict = evaluate(&good_with(
            "event_sources",
            r#"{"journal":"on","units":"on","process":"on, the steppps module"}"#,
        ))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let verdict = evaluate(&good_with(
            "event_sources",
            r#"{"journal":"on","units":"unavailable: systemd is not on this bus"}"#,
        ))?;
        assert!(!verdict.passed());
        let check = verdict
            .checks
            .iter()
            .find(|c| c.name.starts_with("event dimension"))
            .expect("an event sources check");
        assert_eq!(
            check.detail,
            "units: unavailable: systemd is not on this bus"
        );
        Ok(())
    }

    #[test]
    fn the_module_counts_are_checked_when_the_guest_reports_them() -> Result<()> {
        let with = |module: &str| good_with("module", module);
        let good = with(
            r#"{"loaded":true,"processes":10000,"module_events":30021,"dimension_events":30021,"drops":0,"difference_before":5,"difference_after":5,"tolerance":16,"source":"on","match":true}"#,
        );
        let verdict = evaluate(&good)?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let check = verdict.checks.last().expect("a module check");
        assert!(
            check.detail.contains("module 30021 events"),
            "{}",
            check.detail
        );

        for bad in [
            r#"{"loaded":false,"why":"module not loaded"}"#,
            r#"{"loaded":true,"processes":10000,"module_events":30021,"dimension_events":20000,"match":false}"#,
        ] {
            let verdict = evaluate(&with(bad))?;
            assert!(!verdict.passed(), "{bad}");
        }
        Ok(())
    }

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
    fn the_prompt_dimension_is_checked_when_the_image_has_qsh() -> Result<()> {
        let with = |prompt: &str| good_with("prompt", prompt);
        let good = with(
            r#"{"translate":[{"command":"ls -la ."}],"login_shell":"/usr/bin/qsh","shell_listed":true}"#,
        );
        let verdict = evaluate(&good)?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        assert_eq!(verdict.checks.len(), 6);

        let bad = with(r#"{"translate":null,"login_shell":"/bin/bash","shell_listed":true}"#);
        let failing: Vec<String> = evaluate(&bad)?
            .checks
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failing,
            [
                "prompt: translates a request",
                "qsh is the live user's login shell"
            ]
        );

        let classified = with(
            r#"{"translate":[{"command":"ls -la ."}],"login_shell":"/usr/bin/qsh","shell_listed":true},
               "classify":{"exit":0,"output":"","cgroup":"/quantumos.slice/quantumos-quantum.slice/quantumos-quantum-42.scope"}"#,
        );
        assert!(evaluate(&classified)?.passed());
        let unclassified = classified.replace("quantumos-quantum.slice/", "user.slice/");
        assert!(!evaluate(&unclassified)?.passed());

        // An image without qsh reports no prompt object, and gets no prompt checks.
        assert_eq!(evaluate(GOOD)?.checks.len(), 4);
        Ok(())
    }

    #[test]
    fn exec_time_classes_need_the_slice_and_the_exec_source() -> Result<()> {
        let with = |exec: &str| good_with("exec_classify", exec);
        let placed = r#"{"cgroup":"/quantumos.slice/quantumos-hybrid.slice/quantumos-hybrid-77.scope","ms":180,
            "health":"3 timers; process classes applied at exec time (from the steppps kernel module); simulator limit 28 qubits on this machine"}"#;
        let verdict = evaluate(&with(placed))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let check = verdict.checks.iter().find(|c| c.name.contains("exec time"));
        assert!(
            check.is_some_and(|c| c.detail.contains("180 ms")),
            "{check:?}"
        );
        // Left where it started.
        let unplaced = placed
            .replace(
                "/quantumos.slice/quantumos-hybrid.slice/quantumos-hybrid-77.scope",
                "/system.slice/qos-selftest.service",
            )
            .replace(r#""ms":180"#, r#""ms":null"#);
        assert!(!evaluate(&with(&unplaced))?.passed());
        // Placed, but by the /proc scan: exec notifications did not work.
        let scanned = placed.replace(
            "at exec time (from the steppps kernel module)",
            "by scanning /proc every 5 s",
        );
        assert!(!evaluate(&with(&scanned))?.passed());
        Ok(())
    }

    #[test]
    fn a_circuit_larger_than_memory_must_be_refused_without_a_crash() -> Result<()> {
        let with = |job: &str| good_with("quantum_memory", job);
        let name = "quantum: a circuit larger than memory is refused, quantumd keeps running";
        let refused = with(
            r#"{"qubits":27,"exit":1,"output":"qos-ctl: job-1 failed: a 27-qubit state vector needs 2.0 GiB (2^27 amplitudes × 16 bytes), but only 1.5 GiB of memory is available; use fewer qubits","restarts":0,"same_pid":true,"active":"active"}"#,
        );
        let verdict = evaluate(&refused)?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        assert!(verdict.checks.iter().any(|c| c.name == name));

        // What a sandbox hiding /proc/meminfo did: the allocation aborted quantumd.
        let crashed = with(
            r#"{"qubits":27,"exit":1,"output":"qos-ctl: org.quantumos.Quantum1 did not answer: NoReply","restarts":1,"same_pid":false,"active":"activating"}"#,
        );
        let verdict = evaluate(&crashed)?;
        assert!(!verdict.passed());
        let check = verdict
            .checks
            .iter()
            .find(|c| c.name == name)
            .context("no quantum memory check")?;
        assert!(
            !check.ok && check.detail.contains("1 restarts"),
            "{}",
            check.detail
        );

        // Refused, but quantumd was restarted along the way: still a failure.
        let restarted = refused.replace(r#""restarts":0"#, r#""restarts":1"#);
        assert!(!evaluate(&restarted)?.passed());
        Ok(())
    }

    #[test]
    fn self_healing_needs_the_whole_incident_in_the_chain() -> Result<()> {
        let healed = r#"{"back_ms":412,"systemd_restarts":0,"verify":"ok: 90 records (1…90) in 3 blocks (3 signed), 1 segments",
          "records":[
            {"seq":80,"source":"bus","kind":"dimension.vanished","fields":{"dimension":"space","clean":"no"}},
            {"seq":81,"source":"rules","kind":"action.restart-dimension","fields":{"target":"space","outcome":"ok","since_trigger_ms":"35"}},
            {"seq":82,"source":"bus","kind":"dimension.appeared","fields":{"dimension":"space"}}]}"#;
        let with = |heal: &str| good_with("self_healing", heal);
        let verdict = evaluate(&with(healed))?;
        assert!(verdict.passed(), "{:?}", verdict.checks);
        let check = verdict.checks.iter().find(|c| c.name.starts_with("event:"));
        assert!(
            check.is_some_and(|c| c.detail.contains("412 ms") && c.detail.contains("35 ms")),
            "{check:?}"
        );
        let refused = healed.replace(r#""outcome":"ok""#, r#""outcome":"failed""#);
        assert!(!evaluate(&with(&refused))?.passed());
        let not_back = healed.replace(r#""back_ms":412"#, r#""back_ms":null"#);
        assert!(!evaluate(&with(&not_back))?.passed());
        let tampered = healed.replace("ok: 90", "FAILED (hash): record 12");
        assert!(!evaluate(&with(&tampered))?.passed());
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
