//! systemd calendar events (`systemd.time(7)`): `Mon..Fri *-*-* 09:00`, `*:0/15`, `*-02~03`,
//! `quarterly`. Parsed into per-component value sets, printed in systemd's normalized form,
//! and searched for the next elapse after a given time, with the same meaning as
//! `systemd-analyze calendar` (the tests compare against it).
//!
//! Supported: weekday names, lists and `..` ranges; `*`, numbers, lists, `a..b` ranges and
//! `/step` repetition in every date and time component; `~` for days counted from the end of
//! the month (`*-02~03`, `*-05~07/1`); the shorthands (`minutely` … `yearly`, `quarterly`,
//! `semiannually`); a trailing `UTC`. Not supported, and refused with a clear error:
//! fractional seconds and time zones other than UTC and local time.

use std::fmt;

use chrono::{
    Datelike, Duration, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};

/// Years outside this range are refused, as systemd does.
const YEAR_MIN: u32 = 1970;
const YEAR_MAX: u32 = 2199;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid calendar specification `{spec}` at position {position}: {message}")]
pub struct CalendarError {
    pub spec: String,
    /// 1-based character position of the offending part.
    pub position: usize,
    pub message: String,
}

/// One element of a component's list: `5`, `1..5`, `0/15`, `1..20/3`, `*/2`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    start: u32,
    end: Option<u32>,
    step: Option<u32>,
}

impl Item {
    /// For `~` days `value` counts from the end of the month (1 = last day) and a step walks
    /// towards the end: `~07/2` is the 7th, 5th, 3rd and last day from the end.
    fn matches(&self, value: u32, max: u32, from_end: bool) -> bool {
        match (self.end, self.step) {
            (None, None) => value == self.start,
            (Some(end), None) => (self.start..=end).contains(&value),
            (end, Some(step)) if from_end => {
                value <= self.start && value >= end.unwrap_or(1) && (self.start - value) % step == 0
            }
            (end, Some(step)) => {
                value >= self.start
                    && value <= end.unwrap_or(max)
                    && (value - self.start) % step == 0
            }
        }
    }
}

/// The values one component (year, month, day, hour, minute, second) may take.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Any,
    List(Vec<Item>),
}

impl Field {
    fn matches(&self, value: u32, max: u32, from_end: bool) -> bool {
        match self {
            Field::Any => true,
            Field::List(items) => items.iter().any(|i| i.matches(value, max, from_end)),
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, width: usize) -> fmt::Result {
        match self {
            Field::Any => f.write_str("*"),
            Field::List(items) => {
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{:0width$}", item.start)?;
                    if let Some(end) = item.end {
                        write!(f, "..{end:0width$}")?;
                    }
                    if let Some(step) = item.step {
                        write!(f, "/{step}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A parsed calendar event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    /// Bit 0 is Monday; `None` means any day of the week.
    weekdays: Option<u8>,
    year: Field,
    month: Field,
    day: Field,
    /// The day component counts from the end of the month (`~`).
    day_from_end: bool,
    hour: Field,
    minute: Field,
    second: Field,
    utc: bool,
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];
const WEEKDAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn shorthand(word: &str) -> Option<&'static str> {
    Some(match word {
        "minutely" => "*-*-* *:*:00",
        "hourly" => "*-*-* *:00:00",
        "daily" => "*-*-* 00:00:00",
        "weekly" => "Mon *-*-* 00:00:00",
        "monthly" => "*-*-01 00:00:00",
        "quarterly" => "*-01,04,07,10-01 00:00:00",
        "semiannually" => "*-01,07-01 00:00:00",
        "yearly" | "annually" => "*-01-01 00:00:00",
        _ => return None,
    })
}

/// Parses with positions: every error names where in the original text it is.
struct Parser<'a> {
    spec: &'a str,
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> CalendarError {
        CalendarError {
            spec: self.spec.to_string(),
            position: self.spec[..offset.min(self.spec.len())].chars().count() + 1,
            message: message.into(),
        }
    }

    /// Parses a comma list of items of one component; `offset` is where `text` starts.
    fn field(
        &self,
        text: &str,
        offset: usize,
        what: &str,
        min: u32,
        max: u32,
    ) -> Result<Field, CalendarError> {
        if text == "*" {
            return Ok(Field::Any);
        }
        if text.is_empty() {
            return Err(self.error(offset, format!("the {what} is missing")));
        }
        let mut items = Vec::new();
        let mut at = offset;
        for part in text.split(',') {
            items.push(self.item(part, at, what, min, max)?);
            at += part.len() + 1;
        }
        Ok(Field::List(items))
    }

    fn item(
        &self,
        text: &str,
        offset: usize,
        what: &str,
        min: u32,
        max: u32,
    ) -> Result<Item, CalendarError> {
        let (range, step) = match text.split_once('/') {
            Some((range, step)) => {
                let step_at = offset + range.len() + 1;
                let step: u32 = self.number(step, step_at, what)?;
                if step == 0 {
                    return Err(
                        self.error(step_at, format!("the {what} repetition must be at least 1"))
                    );
                }
                (range, Some(step))
            }
            None => (text, None),
        };
        if range == "*" {
            return match step {
                // systemd refuses `*/N` too: the repetition needs a start.
                Some(step) => Err(self.error(
                    offset,
                    format!("`*/{step}` has no start; write {min}/{step}"),
                )),
                None => Ok(Item {
                    start: min,
                    end: Some(max),
                    step: None,
                }),
            };
        }
        let (start, end) = match range.split_once("..") {
            Some((a, b)) => {
                let start = self.value(a, offset, what, min, max)?;
                let end_at = offset + a.len() + 2;
                let end = self.value(b, end_at, what, min, max)?;
                if end < start {
                    return Err(
                        self.error(end_at, format!("the {what} range {start}..{end} is empty"))
                    );
                }
                (start, Some(end))
            }
            None => (self.value(range, offset, what, min, max)?, None),
        };
        Ok(Item { start, end, step })
    }

    fn value(
        &self,
        text: &str,
        offset: usize,
        what: &str,
        min: u32,
        max: u32,
    ) -> Result<u32, CalendarError> {
        let v = self.number(text, offset, what)?;
        // Two-digit years mean 1970–2069, as in systemd.
        let v = if what == "year" && text.len() == 2 {
            if v < 70 { v + 2000 } else { v + 1900 }
        } else {
            v
        };
        if !(min..=max).contains(&v) {
            return Err(self.error(offset, format!("{what} {v} is out of range {min}..{max}")));
        }
        Ok(v)
    }

    fn number(&self, text: &str, offset: usize, what: &str) -> Result<u32, CalendarError> {
        if text.contains('.') && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(self.error(offset, "fractional seconds are not supported"));
        }
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.error(
                offset,
                format!("expected a number for the {what}, found `{text}`"),
            ));
        }
        text.parse()
            .map_err(|_| self.error(offset, format!("{what} `{text}` is too large")))
    }

    fn weekdays(&self, text: &str, offset: usize) -> Result<u8, CalendarError> {
        let mut mask = 0u8;
        let mut at = offset;
        for part in text.split(',') {
            let (a, b) = match part.split_once("..") {
                Some((a, b)) => (a, Some(b)),
                None => (part, None),
            };
            let first = self.weekday(a, at)?;
            match b {
                Some(b) => {
                    let last = self.weekday(b, at + a.len() + 2)?;
                    if last < first {
                        // systemd refuses ranges that wrap around the week's end too.
                        return Err(self.error(
                            at,
                            format!(
                                "weekday range {a}..{b} runs backwards; write {a}..Sun,Mon..{b}"
                            ),
                        ));
                    }
                    for d in first..=last {
                        mask |= 1 << d;
                    }
                }
                None => mask |= 1 << first,
            }
            at += part.len() + 1;
        }
        Ok(mask)
    }

    fn weekday(&self, text: &str, offset: usize) -> Result<u32, CalendarError> {
        let lower = text.to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .position(|(short, long)| lower == *short || lower == *long)
            .map(|p| p as u32)
            .ok_or_else(|| {
                self.error(
                    offset,
                    format!("`{text}` is not a weekday (Mon, Tuesday, …)"),
                )
            })
    }
}

impl CalendarSpec {
    pub fn parse(spec: &str) -> Result<CalendarSpec, CalendarError> {
        // A shorthand stands for the whole date and time; only a time zone may follow it.
        let trimmed = spec.trim();
        let (first, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        if let Some(expanded) = shorthand(&first.to_ascii_lowercase()) {
            let mut parsed = Self::parse(expanded)?;
            match rest.trim() {
                "" => {}
                tz if tz.eq_ignore_ascii_case("utc") => parsed.utc = true,
                other => {
                    let at = spec.find(other).unwrap_or(0);
                    return Err(
                        Parser { spec }.error(at, format!("`{other}` cannot follow `{first}`"))
                    );
                }
            }
            return Ok(parsed);
        }
        let parser = Parser { spec };
        let mut tokens: Vec<(usize, &str)> = Vec::new();
        let mut rest = spec;
        let mut base = 0;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            let len = rest[start..]
                .find(char::is_whitespace)
                .unwrap_or(rest.len() - start);
            tokens.push((base + start, &rest[start..start + len]));
            base += start + len;
            rest = &rest[start + len..];
        }
        if tokens.is_empty() {
            return Err(parser.error(0, "the specification is empty"));
        }

        let mut out = CalendarSpec {
            weekdays: None,
            year: Field::Any,
            month: Field::Any,
            day: Field::Any,
            day_from_end: false,
            hour: Field::List(vec![Item {
                start: 0,
                end: None,
                step: None,
            }]),
            minute: Field::List(vec![Item {
                start: 0,
                end: None,
                step: None,
            }]),
            second: Field::List(vec![Item {
                start: 0,
                end: None,
                step: None,
            }]),
            utc: false,
        };
        let mut tokens = tokens.into_iter().peekable();
        if let Some(&(at, tok)) = tokens.peek()
            && tok.starts_with(|c: char| c.is_ascii_alphabetic())
            && !tok.eq_ignore_ascii_case("utc")
        {
            out.weekdays = Some(parser.weekdays(tok, at)?);
            tokens.next();
        }
        let (mut seen_date, mut seen_time) = (false, false);
        for (at, tok) in tokens {
            if tok.eq_ignore_ascii_case("utc") {
                out.utc = true;
            } else if tok.contains(':') {
                if seen_time {
                    return Err(parser.error(at, "a second time of day"));
                }
                seen_time = true;
                out.parse_time(&parser, tok, at)?;
            } else if tok.contains('-') || tok.contains('~') {
                if seen_date || seen_time {
                    return Err(parser.error(at, "the date must come before the time, once"));
                }
                seen_date = true;
                out.parse_date(&parser, tok, at)?;
            } else if tok.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(parser.error(
                    at,
                    format!("time zone `{tok}` is not supported; use UTC or local time"),
                ));
            } else {
                return Err(parser.error(
                    at,
                    format!("`{tok}` is neither a date (Y-M-D) nor a time (H:M[:S])"),
                ));
            }
        }
        Ok(out)
    }

    fn parse_date(&mut self, p: &Parser<'_>, tok: &str, at: usize) -> Result<(), CalendarError> {
        let (left, day, day_at) = match tok.find('~') {
            Some(i) => {
                self.day_from_end = true;
                (&tok[..i], &tok[i + 1..], at + i + 1)
            }
            None => {
                let i = tok.rfind('-').unwrap_or(0);
                (&tok[..i], &tok[i + 1..], at + i + 1)
            }
        };
        let parts: Vec<&str> = left.split('-').collect();
        let (year, month) = match parts.as_slice() {
            [month] => (None, *month),
            [year, month] => (Some(*year), *month),
            _ => return Err(p.error(at, "a date is YEAR-MONTH-DAY or MONTH-DAY")),
        };
        let month_at = at + left.len() - month.len();
        if let Some(year) = year {
            self.year = p.field(year, at, "year", YEAR_MIN, YEAR_MAX)?;
        }
        self.month = p.field(month, month_at, "month", 1, 12)?;
        if self.day_from_end {
            self.day = p.field(day, day_at, "day", 1, 31)?;
            if let Field::List(items) = &self.day
                && items.iter().any(|i| i.end.is_some() && i.step.is_none())
            {
                return Err(p.error(day_at, "day ranges after `~` are not supported"));
            }
        } else {
            self.day = p.field(day, day_at, "day", 1, 31)?;
        }
        Ok(())
    }

    fn parse_time(&mut self, p: &Parser<'_>, tok: &str, at: usize) -> Result<(), CalendarError> {
        let parts: Vec<&str> = tok.split(':').collect();
        let offsets: Vec<usize> = parts
            .iter()
            .scan(at, |pos, part| {
                let here = *pos;
                *pos += part.len() + 1;
                Some(here)
            })
            .collect();
        match parts.as_slice() {
            [h, m] => {
                self.hour = p.field(h, offsets[0], "hour", 0, 23)?;
                self.minute = p.field(m, offsets[1], "minute", 0, 59)?;
            }
            [h, m, s] => {
                self.hour = p.field(h, offsets[0], "hour", 0, 23)?;
                self.minute = p.field(m, offsets[1], "minute", 0, 59)?;
                self.second = p.field(s, offsets[2], "second", 0, 59)?;
            }
            _ => return Err(p.error(at, "a time is HOUR:MINUTE or HOUR:MINUTE:SECOND")),
        }
        Ok(())
    }

    fn date_matches(&self, date: NaiveDate) -> bool {
        if let Some(mask) = self.weekdays
            && mask & (1 << date.weekday().num_days_from_monday()) == 0
        {
            return false;
        }
        let day = if self.day_from_end {
            days_in_month(date) - date.day() + 1
        } else {
            date.day()
        };
        self.year.matches(date.year() as u32, YEAR_MAX, false)
            && self.month.matches(date.month(), 12, false)
            && self.day.matches(day, 31, self.day_from_end)
    }

    /// The first wall-clock time strictly after `after` (whole seconds) that matches.
    fn next_naive(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = after.with_nanosecond(0)? + Duration::seconds(1);
        // Each step moves to the start of the next year, month, day, hour or minute that might
        // match, so even a specification that never matches (Feb 30) ends quickly.
        for _ in 0..5_000_000 {
            if t.year() as u32 > YEAR_MAX {
                return None;
            }
            let date = t.date();
            if !self.year.matches(t.year() as u32, YEAR_MAX, false) {
                t = NaiveDate::from_ymd_opt(t.year() + 1, 1, 1)?.and_hms_opt(0, 0, 0)?;
            } else if !self.month.matches(t.month(), 12, false) {
                t = first_of_next_month(date)?.and_hms_opt(0, 0, 0)?;
            } else if !self.date_matches(date) {
                t = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if !self.hour.matches(t.hour(), 23, false) {
                t = date.and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
            } else if !self.minute.matches(t.minute(), 59, false) {
                t = date.and_hms_opt(t.hour(), t.minute(), 0)? + Duration::minutes(1);
            } else if !self.second.matches(t.second(), 59, false) {
                t += Duration::seconds(1);
            } else {
                return Some(t);
            }
        }
        None
    }

    /// The next elapse strictly after `after`, as seconds since the Unix epoch; `None` when
    /// the specification never matches again (a date in the past, February 30).
    pub fn next_elapse(&self, after_unix: i64) -> Option<i64> {
        if self.utc {
            let after = Utc.timestamp_opt(after_unix, 0).single()?.naive_utc();
            return self.next_naive(after).map(|n| n.and_utc().timestamp());
        }
        let mut after = Local.timestamp_opt(after_unix, 0).single()?.naive_local();
        // A local time that does not exist (skipped by a DST change) is passed over.
        loop {
            let candidate = self.next_naive(after)?;
            match Local.from_local_datetime(&candidate) {
                LocalResult::Single(t) => return Some(t.timestamp()),
                LocalResult::Ambiguous(earliest, _) => return Some(earliest.timestamp()),
                LocalResult::None => after = candidate,
            }
        }
    }
}

fn days_in_month(date: NaiveDate) -> u32 {
    first_of_next_month(date)
        .and_then(|next| next.pred_opt())
        .map_or(28, |last| last.day())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// systemd's normalized form: `Mon..Fri *-*-* 09:00:00`.
impl fmt::Display for CalendarSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mask) = self.weekdays {
            let days: Vec<usize> = (0..7).filter(|d| mask & (1 << d) != 0).collect();
            // Runs of three or more consecutive days print as ranges, as systemd does.
            let mut parts = Vec::new();
            let mut i = 0;
            while i < days.len() {
                let mut j = i;
                while j + 1 < days.len() && days[j + 1] == days[j] + 1 {
                    j += 1;
                }
                if j - i >= 2 {
                    parts.push(format!(
                        "{}..{}",
                        WEEKDAY_NAMES[days[i]], WEEKDAY_NAMES[days[j]]
                    ));
                } else {
                    parts.extend(days[i..=j].iter().map(|&d| WEEKDAY_NAMES[d].to_string()));
                }
                i = j + 1;
            }
            write!(f, "{} ", parts.join(","))?;
        }
        self.year.write(f, 4)?;
        f.write_str("-")?;
        self.month.write(f, 2)?;
        f.write_str(if self.day_from_end { "~" } else { "-" })?;
        self.day.write(f, 2)?;
        f.write_str(" ")?;
        self.hour.write(f, 2)?;
        f.write_str(":")?;
        self.minute.write(f, 2)?;
        f.write_str(":")?;
        self.second.write(f, 2)?;
        if self.utc {
            f.write_str(" UTC")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    fn show(t: i64) -> String {
        Utc.timestamp_opt(t, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// The next `n` elapses of `spec` (in UTC) after `base`.
    fn elapses(spec: &str, base: &str, n: usize) -> Vec<String> {
        let spec = CalendarSpec::parse(&format!("{spec} UTC")).unwrap();
        let mut t = utc(base);
        (0..n)
            .map(|_| {
                t = spec.next_elapse(t).unwrap();
                show(t)
            })
            .collect()
    }

    #[test]
    fn normalized_forms() {
        for (input, normalized) in [
            ("Mon..Fri *-*-* 9:00", "Mon..Fri *-*-* 09:00:00"),
            ("quarterly", "*-01,04,07,10-01 00:00:00"),
            ("*:0/15", "*-*-* *:00/15:00"),
            ("Sat,Sun 10:30", "Sat,Sun *-*-* 10:30:00"),
            ("*-02~03", "*-02~03 00:00:00"),
            ("2027-03-04 05:06", "2027-03-04 05:06:00"),
            ("mon,tue,wed 1:2:3", "Mon..Wed *-*-* 01:02:03"),
            ("daily", "*-*-* 00:00:00"),
        ] {
            assert_eq!(
                CalendarSpec::parse(input).unwrap().to_string(),
                normalized,
                "{input}"
            );
        }
    }

    #[test]
    fn next_elapses() {
        assert_eq!(
            elapses("*:0/15", "2026-01-01 00:00:00", 3),
            [
                "2026-01-01 00:15:00",
                "2026-01-01 00:30:00",
                "2026-01-01 00:45:00"
            ]
        );
        assert_eq!(
            elapses("Sat,Sun 10:30", "2026-01-01 00:00:00", 2),
            ["2026-01-03 10:30:00", "2026-01-04 10:30:00"]
        );
        // Third last day of February, leap and common years.
        assert_eq!(
            elapses("*-02~03", "2027-01-01 00:00:00", 2),
            ["2027-02-26 00:00:00", "2028-02-27 00:00:00"]
        );
        // The last Monday of May.
        assert_eq!(
            elapses("Mon *-05~07/1", "2026-11-23 00:00:00", 2),
            ["2027-05-31 00:00:00", "2028-05-29 00:00:00"]
        );
        assert_eq!(
            elapses("*-*-31", "2026-04-01 00:00:00", 2),
            ["2026-05-31 00:00:00", "2026-07-31 00:00:00"]
        );
        // A date in the past never elapses again; neither does February 30.
        let past = CalendarSpec::parse("2020-01-01 UTC").unwrap();
        assert_eq!(past.next_elapse(utc("2026-01-01 00:00:00")), None);
        let never = CalendarSpec::parse("*-02-30 UTC").unwrap();
        assert_eq!(never.next_elapse(utc("2026-01-01 00:00:00")), None);
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("Mon 25:00", 5, "hour 25 is out of range 0..23"),
            ("*-13-01", 3, "month 13"),
            ("Mon..Fry 9:00", 6, "`Fry` is not a weekday"),
            ("*-*-* 10:x", 10, "expected a number for the minute"),
            (
                "*-*-* 10:00 Europe/Berlin",
                13,
                "time zone `Europe/Berlin` is not supported",
            ),
            ("*:0/0", 5, "repetition must be at least 1"),
            ("*:*:1.5", 5, "fractional seconds"),
            ("", 1, "empty"),
        ];
        for (spec, position, message) in cases {
            let err = CalendarSpec::parse(spec).unwrap_err();
            assert_eq!(err.position, position, "{spec}: {err}");
            assert!(err.message.contains(message), "{spec}: {err}");
        }
    }
}
