//! BPMN timer definitions: ISO 8601 durations (`PT30S`, `P1DT2H`), dates
//! (`2026-05-01T08:00:00Z`) and repeating cycles (`R3/PT10M`, `R/2026-05-01T08:00:00Z/P1D`),
//! as `timeDuration`, `timeDate` and `timeCycle` hold them. Times are milliseconds since the
//! Unix epoch, in UTC.
//!
//! A year counts as 365 days and a month as 30 (BPMN engines differ here; timers longer than
//! a month are better written as dates or cycles with a start).

use std::fmt;

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerError(pub String);

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimerError {}

/// A timer, resolved to numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// Fires once, `ms` after it is armed.
    After { ms: i64 },
    /// Fires once at an absolute time.
    At { unix_ms: i64 },
    /// Fires `repeat` times (`None`: forever), every `every_ms`, the first at `start_ms` or
    /// one period after arming.
    Cycle {
        repeat: Option<u32>,
        start_ms: Option<i64>,
        every_ms: i64,
    },
}

impl Schedule {
    /// When it first fires, armed at `now_ms`.
    pub fn first(&self, now_ms: i64) -> i64 {
        match *self {
            Schedule::After { ms } => now_ms.saturating_add(ms),
            Schedule::At { unix_ms } => unix_ms,
            Schedule::Cycle {
                start_ms, every_ms, ..
            } => start_ms.unwrap_or_else(|| now_ms.saturating_add(every_ms)),
        }
    }

    /// After a firing at `fired_ms` that was the `count`-th (1-based), the next one, if any.
    pub fn next(&self, fired_ms: i64, count: u32) -> Option<i64> {
        match *self {
            Schedule::Cycle {
                repeat, every_ms, ..
            } if repeat.is_none_or(|r| count < r) => Some(fired_ms.saturating_add(every_ms)),
            _ => None,
        }
    }
}

/// The three kinds of timer definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    Duration,
    Date,
    Cycle,
}

impl TimerKind {
    pub fn element(self) -> &'static str {
        match self {
            TimerKind::Duration => "timeDuration",
            TimerKind::Date => "timeDate",
            TimerKind::Cycle => "timeCycle",
        }
    }
}

/// Parses a timer's text as its kind says.
pub fn parse(kind: TimerKind, text: &str) -> Result<Schedule, TimerError> {
    let text = text.trim();
    match kind {
        TimerKind::Duration => Ok(Schedule::After {
            ms: parse_duration(text)?,
        }),
        TimerKind::Date => Ok(Schedule::At {
            unix_ms: parse_date(text)?,
        }),
        TimerKind::Cycle => parse_cycle(text),
    }
}

/// `PnYnMnWnDTnHnMnS` (fractions allowed on the last unit) in milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, TimerError> {
    let bad = |why: &str| {
        TimerError(format!(
            "`{text}` is not an ISO 8601 duration like PT30S or P1DT2H: {why}"
        ))
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| bad("it must start with P"))?;
    if rest.is_empty() || rest == "T" {
        return Err(bad("no amount"));
    }
    let mut total: f64 = 0.0;
    let mut in_time = false;
    let mut number = String::new();
    let mut units = 0;
    for c in rest.chars() {
        match c {
            'T' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                let n: f64 = number
                    .parse()
                    .map_err(|_| bad(&format!("no number before `{unit}`")))?;
                number.clear();
                let seconds = match (in_time, unit) {
                    (false, 'Y') => 365.0 * 86400.0,
                    (false, 'M') => 30.0 * 86400.0,
                    (false, 'W') => 7.0 * 86400.0,
                    (false, 'D') => 86400.0,
                    (true, 'H') => 3600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(bad(&format!("unexpected `{unit}`"))),
                };
                total += n * seconds;
                units += 1;
            }
        }
    }
    if !number.is_empty() || units == 0 {
        return Err(bad("a number without its unit"));
    }
    let ms = total * 1000.0;
    if !ms.is_finite() || ms > 1.0e15 {
        return Err(bad("too long"));
    }
    Ok(ms.round() as i64)
}

/// An RFC 3339 / ISO 8601 date and time; without an offset it is UTC.
pub fn parse_date(text: &str) -> Result<i64, TimerError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(TimerError(format!(
        "`{text}` is not an ISO 8601 date and time like 2026-05-01T08:00:00Z"
    )))
}

/// `R[n]/duration` or `R[n]/start/duration`.
pub fn parse_cycle(text: &str) -> Result<Schedule, TimerError> {
    let parts: Vec<&str> = text.split('/').collect();
    let repeat_text = parts.first().copied().unwrap_or("");
    let Some(count) = repeat_text.strip_prefix('R') else {
        let hint = if text.split_whitespace().count() >= 5 {
            " (cron expressions are not supported)"
        } else {
            ""
        };
        return Err(TimerError(format!(
            "`{text}` is not an ISO 8601 repeating interval like R3/PT10M or R/PT1H{hint}"
        )));
    };
    let repeat =
        if count.is_empty() {
            None
        } else {
            Some(count.parse::<u32>().map_err(|_| {
                TimerError(format!("`{text}`: `{repeat_text}` is not R or R<count>"))
            })?)
        };
    let (start_ms, every_ms) = match parts.as_slice() {
        [_, d] => (None, parse_duration(d)?),
        [_, s, d] => (Some(parse_date(s)?), parse_duration(d)?),
        _ => {
            return Err(TimerError(format!(
                "`{text}`: expected R[n]/duration or R[n]/start/duration"
            )));
        }
    };
    if every_ms <= 0 {
        return Err(TimerError(format!(
            "`{text}`: a cycle's period must be longer than zero"
        )));
    }
    Ok(Schedule::Cycle {
        repeat,
        start_ms,
        every_ms,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT30S").unwrap(), 30_000);
        assert_eq!(parse_duration("PT0.25S").unwrap(), 250);
        assert_eq!(
            parse_duration("P1DT2H3M").unwrap(),
            (86400 + 7200 + 180) * 1000
        );
        assert_eq!(parse_duration("P2W").unwrap(), 14 * 86400 * 1000);
        assert!(parse_duration("30S").is_err());
        assert!(parse_duration("PT").is_err());
        assert!(parse_duration("P1H").is_err(), "hours need T");
        assert!(parse_duration("PT5").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert_eq!(parse_date("1970-01-01T00:01").unwrap(), 60_000);
        assert!(parse_date("tomorrow").is_err());
    }

    #[test]
    fn cycles() {
        let c = parse_cycle("R3/PT10S").unwrap();
        assert_eq!(c.first(1000), 11_000);
        assert_eq!(c.next(11_000, 1), Some(21_000));
        assert_eq!(c.next(31_000, 3), None);
        let forever = parse_cycle("R/1970-01-01T00:00:05Z/PT1S").unwrap();
        assert_eq!(forever.first(0), 5000);
        assert_eq!(forever.next(5000, 1000), Some(6000));
        let e = parse_cycle("0 0/5 * * * ?").unwrap_err();
        assert!(e.0.contains("cron"), "{e}");
        assert!(parse_cycle("R/PT0S").is_err());
    }
}
