//! systemd time spans (`systemd.time(7)`): `5min`, `1h 30min`, `2d12h`, `500ms`, `90` (seconds).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time span `{span}` at position {position}: {message}")]
pub struct TimespanError {
    pub span: String,
    pub position: usize,
    pub message: String,
}

/// Unit names and their length in microseconds, as systemd spells them.
const UNITS: &[(&[&str], u64)] = &[
    (&["usec", "us", "µs", "μs"], 1),
    (&["msec", "ms"], 1_000),
    (&["seconds", "second", "sec", "s"], 1_000_000),
    (&["minutes", "minute", "min", "m"], 60_000_000),
    (&["hours", "hour", "hr", "h"], 3_600_000_000),
    (&["days", "day", "d"], 86_400_000_000),
    (&["weeks", "week", "w"], 604_800_000_000),
    (&["months", "month", "M"], 2_629_800_000_000),
    (&["years", "year", "y"], 31_557_600_000_000),
];

/// Parses a time span. A number without a unit is seconds, as in systemd.
pub fn parse(span: &str) -> Result<Duration, TimespanError> {
    let error = |offset: usize, message: String| TimespanError {
        span: span.to_string(),
        position: span[..offset.min(span.len())].chars().count() + 1,
        message,
    };
    let mut total: u64 = 0;
    let mut rest = span;
    let mut seen = false;
    loop {
        let trimmed = rest.trim_start();
        let offset = span.len() - trimmed.len();
        if trimmed.is_empty() {
            break;
        }
        let digits = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        if digits == 0 {
            return Err(error(
                offset,
                format!(
                    "expected a number, found `{}`",
                    trimmed.chars().next().unwrap_or(' ')
                ),
            ));
        }
        let value: u64 = trimmed[..digits]
            .parse()
            .map_err(|_| error(offset, "number too large".into()))?;
        let after = trimmed[digits..].trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        let micros = if unit.is_empty() {
            1_000_000
        } else {
            UNITS
                .iter()
                .find(|(names, _)| names.contains(&unit))
                .map(|(_, us)| *us)
                .ok_or_else(|| {
                    error(
                        span.len() - after.len(),
                        format!("unknown unit `{unit}` (use us, ms, s, min, h, d, w, M, y)"),
                    )
                })?
        };
        total = value
            .checked_mul(micros)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| error(offset, "time span too long".into()))?;
        rest = &after[unit_len..];
        seen = true;
    }
    if !seen {
        return Err(error(0, "the time span is empty".into()));
    }
    Ok(Duration::from_micros(total))
}

/// Formats like systemd: `1h 30min`, `2d`, `500ms`.
pub fn format(d: Duration) -> String {
    let mut us = d.as_micros() as u64;
    if us == 0 {
        return "0".into();
    }
    let mut parts = Vec::new();
    for (names, len) in [
        ("y", 31_557_600_000_000u64),
        ("month", 2_629_800_000_000),
        ("w", 604_800_000_000),
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ] {
        if us >= len {
            parts.push(format!("{}{names}", us / len));
            us %= len;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse("5min").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h 30min").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2d12h").unwrap(), Duration::from_secs(216_000));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse(" 1 week ").unwrap(), Duration::from_secs(604_800));
        assert_eq!(format(Duration::from_secs(5400)), "1h 30min");
        assert_eq!(format(Duration::from_millis(1500)), "1s 500ms");
    }

    #[test]
    fn bad_spans_name_the_position() {
        let e = parse("5 fortnights").unwrap_err();
        assert_eq!(
            (e.position, e.message.contains("unknown unit `fortnights`")),
            (3, true),
            "{e}"
        );
        let e = parse("1h x").unwrap_err();
        assert_eq!(e.position, 4, "{e}");
        assert!(parse("").is_err());
        assert!(parse("99999999999999999999y").is_err());
    }
}
