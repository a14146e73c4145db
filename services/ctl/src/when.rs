//! Points in time on the command line (`--since`, `--until`), spelled as journalctl and
//! `systemd.time(7)` spell them, in local time:
//!
//! - `now`, `today`, `yesterday`, `tomorrow` (the last three at midnight);
//! - `2026-11-24`, `2026-11-24 10:00`, `2026-11-24 10:00:30`, `10:00`, `10:00:30` (today);
//! - `@1795522961` (seconds since the epoch);
//! - a time span back from now: `1h ago`, `-1h`, or the span alone (`90`, `1h 30min`), which is
//!   how `--since SECONDS` always read; `+1h` is one hour from now.

use chrono::{DateTime, Days, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use steppps::timespan;

/// clap's parser for `--since`/`--until`: `text` relative to this moment.
pub fn arg(text: &str) -> Result<DateTime<Local>, String> {
    parse(text, Local::now())
}

/// `text` as a point in time, relative to `now`.
pub fn parse(text: &str, now: DateTime<Local>) -> Result<DateTime<Local>, String> {
    let t = text.trim();
    let midnight = |days_ahead: i64| {
        let date = if days_ahead >= 0 {
            now.date_naive()
                .checked_add_days(Days::new(days_ahead as u64))
        } else {
            now.date_naive()
                .checked_sub_days(Days::new(days_ahead.unsigned_abs()))
        };
        date.and_then(|d| local(d.and_time(NaiveTime::MIN)))
    };
    let found = match t {
        "now" => Some(now),
        "today" => midnight(0),
        "yesterday" => midnight(-1),
        "tomorrow" => midnight(1),
        _ => None,
    };
    if let Some(at) = found {
        return Ok(at);
    }
    if let Some(epoch) = t.strip_prefix('@') {
        return epoch
            .parse::<i64>()
            .ok()
            .and_then(|s| Local.timestamp_opt(s, 0).single())
            .ok_or_else(|| format!("`{text}`: `@` takes seconds since the epoch"));
    }
    if let Some(at) = absolute(t, now) {
        return Ok(at);
    }
    // A time span: back from now unless it says `+`.
    let (span, ahead) = if let Some(s) = t.strip_prefix('+') {
        (s, true)
    } else if let Some(s) = t.strip_prefix('-') {
        (s, false)
    } else {
        (t.strip_suffix("ago").unwrap_or(t), false)
    };
    let span = timespan::parse(span.trim()).map_err(|_| {
        format!(
            "`{text}` is not a time: use `2026-11-24 10:00`, `10:00`, `today`, `yesterday`, \
             `1h ago`, `-30min` or `@EPOCH`"
        )
    })?;
    let span = chrono::Duration::from_std(span).map_err(|_| format!("`{text}`: too far"))?;
    let at = if ahead {
        now.checked_add_signed(span)
    } else {
        now.checked_sub_signed(span)
    };
    at.ok_or_else(|| format!("`{text}`: too far"))
}

/// A date, a date and time, or a time of today, in local time.
fn absolute(t: &str, now: DateTime<Local>) -> Option<DateTime<Local>> {
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(t, format) {
            return local(at);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local(date.and_time(NaiveTime::MIN));
    }
    for format in ["%H:%M:%S", "%H:%M"] {
        if let Ok(time) = NaiveTime::parse_from_str(t, format) {
            return local(now.date_naive().and_time(time));
        }
    }
    None
}

/// A local wall-clock time; the earlier one when a clock change makes it ambiguous.
fn local(at: NaiveDateTime) -> Option<DateTime<Local>> {
    Local.from_local_datetime(&at).earliest()
}

/// Microseconds since the epoch, as the daemons count time.
pub fn usec(at: DateTime<Local>) -> u64 {
    u64::try_from(at.timestamp_micros()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        local(
            NaiveDate::from_ymd_opt(2026, 11, 24)
                .and_then(|d| d.and_hms_opt(13, 30, 0))
                .expect("a date"),
        )
        .expect("a local time")
    }

    fn at(text: &str) -> String {
        parse(text, now())
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn journalctl_spellings() {
        assert_eq!(at("now"), "2026-11-24 13:30:00");
        assert_eq!(at("today"), "2026-11-24 00:00:00");
        assert_eq!(at("yesterday"), "2026-11-23 00:00:00");
        assert_eq!(at("tomorrow"), "2026-11-25 00:00:00");
        assert_eq!(at("2026-11-20"), "2026-11-20 00:00:00");
        assert_eq!(at("2026-11-20 08:15"), "2026-11-20 08:15:00");
        assert_eq!(at("2026-11-20 08:15:09"), "2026-11-20 08:15:09");
        assert_eq!(at("09:05"), "2026-11-24 09:05:00");
        assert_eq!(at("1h ago"), "2026-11-24 12:30:00");
        assert_eq!(at("1 hour ago"), "2026-11-24 12:30:00");
        assert_eq!(at("-30min"), "2026-11-24 13:00:00");
        assert_eq!(at("+2h"), "2026-11-24 15:30:00");
        assert_eq!(
            at(&format!("@{}", now().timestamp())),
            "2026-11-24 13:30:00"
        );
    }

    #[test]
    fn a_bare_span_is_that_long_ago_as_seconds_always_were() {
        assert_eq!(at("90"), "2026-11-24 13:28:30");
        assert_eq!(at("1h 30min"), "2026-11-24 12:00:00");
    }

    #[test]
    fn nonsense_says_what_would_do() {
        for bad in ["soon", "2026-13-01", "25:00", "@x", "1 fortnight ago", ""] {
            let e = at(bad);
            assert!(
                e.contains("is not a time") || e.contains("`@` takes"),
                "{bad}: {e}"
            );
        }
    }
}
