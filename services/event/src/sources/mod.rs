//! Event sources, one file each. Each runs as a task, reports its state with
//! [`crate::EventLog::set_source_state`], and hands events to the log: the journal waits
//! for room in the queue (the journal keeps what we have not read yet), the others shed and
//! count when the queue is full (their producers cannot be slowed down).

pub mod dimensions;
pub mod journal;
pub mod process;
pub mod udev;
pub mod units;

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn clip(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_keeps_characters_whole() {
        assert_eq!(clip("abc".into(), 10), "abc");
        let c = clip("ééééé".into(), 7);
        assert!(c.len() <= 7 && c.ends_with('…'), "{c}");
    }
}
