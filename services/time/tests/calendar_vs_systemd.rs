//! Our calendar specifications mean what systemd's mean: the normalized form and the next
//! elapses agree with `systemd-analyze calendar` (skipped where it is not installed).

#![allow(clippy::unwrap_used)]

use std::process::Command;

use chrono::{NaiveDateTime, TimeZone, Utc};
use steppps_time::calendar::CalendarSpec;

const BASE: &str = "2026-11-23 07:00:00";
const ITERATIONS: usize = 6;

const SPECS: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannually",
    "yearly",
    "Mon..Fri *-*-* 9:00",
    "Sat,Sun 10:30",
    "Fri..Sun,Mon 23:59:59",
    "*:0/15",
    "*:*:0/20",
    "*-*-* 1/5:00",
    "*-*-* 8..18/2:30",
    "*-02~03",
    "Mon *-05~07/1",
    "*-*~01",
    "*-*-31",
    "*-02-29 12:00",
    "2027-03-04 05:06",
    "27-03-04",
    "2026/2-01-01",
    "2026..2030-06-15 06:00",
    "*-1,4,7,10-1 0:0",
    "Wed 2026-*-* 3:4:5",
    "12-25",
];

fn systemd(spec: &str) -> Option<(String, Vec<String>)> {
    let out = Command::new("systemd-analyze")
        .env("TZ", "UTC")
        .args([
            "calendar",
            &format!("--iterations={ITERATIONS}"),
            &format!("--base-time={BASE} UTC"),
            spec,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let normalized = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Normalized form: "))?
        .to_string();
    let elapses = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("Next elapse: ").or_else(|| {
                l.split_once(": ")
                    // "Iter. #2:" (systemd 252) or "Iteration #2:" (later releases)
                    .filter(|(k, _)| k.starts_with("Iter"))
                    .map(|(_, v)| v)
            })
        })
        // "Thu 2026-01-01 00:15:00 UTC" → "2026-01-01 00:15:00"
        .map(|v| {
            v.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Some((normalized, elapses))
}

#[test]
fn agrees_with_systemd_analyze_calendar() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let base = NaiveDateTime::parse_from_str(BASE, "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc()
        .timestamp();
    let mut mismatches = Vec::new();
    for spec in SPECS {
        let utc_spec = format!("{spec} UTC");
        let (normalized, expected) =
            systemd(&utc_spec).unwrap_or_else(|| panic!("systemd-analyze rejected {spec}"));
        let ours = CalendarSpec::parse(&utc_spec).unwrap();
        let mut t = base;
        let elapses: Vec<String> = std::iter::from_fn(|| {
            t = ours.next_elapse(t)?;
            Some(
                Utc.timestamp_opt(t, 0)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            )
        })
        .take(ITERATIONS)
        .collect();
        if elapses != expected {
            mismatches.push(format!("{spec}: elapses {elapses:?}, systemd {expected:?}"));
        }
        if ours.to_string() != normalized {
            mismatches.push(format!(
                "{spec}: normalized `{ours}`, systemd `{normalized}`"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn what_systemd_refuses_we_refuse() {
    for spec in [
        "Mon 25:00",
        "*-13-01",
        "*-*-* 10:61",
        "Mon..Fry",
        "*-*-32",
        "*:0/0",
        "Fri..Mon",
        "*-*-* */5:00",
        "*-*-1..7 Mon 00:00",
    ] {
        assert!(
            CalendarSpec::parse(spec).is_err(),
            "{spec} should be refused"
        );
        if let Ok(out) = Command::new("systemd-analyze")
            .env("TZ", "UTC")
            .args(["calendar", spec])
            .output()
        {
            assert!(!out.status.success(), "systemd accepts {spec}");
        }
    }
}
