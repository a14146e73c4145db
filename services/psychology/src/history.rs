//! Reading command histories written by others: bash's `~/.bash_history`, and the UCI
//! "UNIX User Data" traces (Terran Lane) the evaluation replays.

/// The longest command line the daemon learns (longer ones are pasted text, not habits).
pub const MAX_COMMAND_LEN: usize = 4096;

/// One command of a shell history; `time` in seconds since the epoch when the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub time: Option<u64>,
    pub line: String,
}

/// Parses `~/.bash_history` lines: `#<epoch>` lines (written with `HISTTIMEFORMAT`) give the
/// time of the next command; empty lines and over-long ones are skipped.
pub fn parse_bash_history<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Command> {
    let mut out = Vec::new();
    let mut time = None;
    for raw in lines {
        let line = raw.trim_end_matches(['\r', '\n']).trim_end();
        if let Some(stamp) = line.strip_prefix('#') {
            if !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit()) {
                time = stamp.parse().ok();
                continue;
            }
        }
        if line.trim().is_empty() || line.len() > MAX_COMMAND_LEN {
            time = None;
            continue;
        }
        out.push(Command {
            time: time.take(),
            line: line.to_string(),
        });
    }
    out
}

/// A session of the UCI traces: the command lines between `**SOF**` and `**EOF**`.
pub type Session = Vec<String>;

/// Rebuilds command lines from a UCI "UNIX User Data" trace, which has one token per line
/// (`cd`, `<1>`, `-l`, `|`) with file names replaced by `<n>` and sessions framed by
/// `**SOF**` / `**EOF**`. A token starts a new command unless it is an argument: an option
/// (`-x`), a placeholder (`<1>`), a path-like word, an operator (`|`, `>`, `&`, `;`…), or the
/// word after a pipe or redirection.
pub fn parse_uci_trace(text: &str) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut session: Session = Vec::new();
    let mut line = String::new();
    let mut joined = false;
    let flush = |line: &mut String, session: &mut Session| {
        if !line.is_empty() {
            session.push(std::mem::take(line));
        }
    };
    for token in text.lines().map(str::trim).filter(|t| !t.is_empty()) {
        match token {
            "**SOF**" => {
                flush(&mut line, &mut session);
                if !session.is_empty() {
                    sessions.push(std::mem::take(&mut session));
                }
                continue;
            }
            "**EOF**" => {
                flush(&mut line, &mut session);
                sessions.push(std::mem::take(&mut session));
                continue;
            }
            _ => {}
        }
        let operator = matches!(token, "|" | ">" | ">>" | "<" | "&&" | "||" | ">&" | "|&");
        let argument = operator
            || joined
            || matches!(token, ";" | "&")
            || token.starts_with(['-', '<', '.', '/', '~', '$', '"', '\'', '+', '='])
            || token.bytes().all(|b| b.is_ascii_digit())
            || (token.contains('/') && !token.starts_with(char::is_alphabetic));
        if argument && !line.is_empty() {
            line.push(' ');
            line.push_str(token);
        } else {
            flush(&mut line, &mut session);
            line.push_str(token);
        }
        joined = operator;
        if matches!(token, ";" | "&") {
            flush(&mut line, &mut session);
            joined = false;
        }
    }
    flush(&mut line, &mut session);
    if !session.is_empty() {
        sessions.push(session);
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_history_with_timestamps() {
        let text = "#1700000000\nls -l\n\n#not-a-stamp\ncd /tmp\n#1700000100\n  \ngit status\n";
        let got = parse_bash_history(text.lines());
        assert_eq!(
            got,
            vec![
                Command {
                    time: Some(1_700_000_000),
                    line: "ls -l".into()
                },
                Command {
                    time: None,
                    line: "#not-a-stamp".into()
                },
                Command {
                    time: None,
                    line: "cd /tmp".into()
                },
                Command {
                    time: None,
                    line: "git status".into()
                },
            ]
        );
        let long = "x".repeat(MAX_COMMAND_LEN + 1);
        assert!(parse_bash_history([long.as_str()]).is_empty());
    }

    #[test]
    fn uci_tokens_become_lines() {
        let text = "**SOF**\ncd\n<1>\nls\n-laF\n|\nmore\nvi\n<1>\n&\nfg\n**EOF**\n**SOF**\nexit\n**EOF**\n";
        let sessions = parse_uci_trace(text);
        assert_eq!(
            sessions,
            vec![
                vec!["cd <1>", "ls -laF | more", "vi <1> &", "fg"],
                vec!["exit"]
            ]
        );
    }
}
