//! Is a line a command or a request in words? A leading `?` forces a request. Otherwise a line
//! is a command when its first word is something the shell can run, unless the rest reads like
//! an English sentence with nothing shell-like in it ("find all the python files here"). A
//! sentence may name a path ("find all the log files in /var/log"): run as a command, that
//! line would hand `all`, `the`, … to find, and "rm all the old files in /tmp/build" would
//! remove /tmp/build.

/// Words that are common in requests and rare as command arguments.
const SENTENCE_WORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "all",
    "my",
    "me",
    "this",
    "that",
    "these",
    "which",
    "what",
    "how",
    "is",
    "are",
    "in",
    "on",
    "of",
    "for",
    "to",
    "from",
    "with",
    "every",
    "any",
    "files",
    "folder",
    "directory",
    "biggest",
    "largest",
    "here",
    "there",
    "please",
    "show",
    "list",
    "running",
    "installed",
    "where",
    "who",
    "using",
    "than",
    "bigger",
    "older",
    "last",
    "recent",
    "i",
    "do",
    "does",
    "can",
    "it",
    "its",
    "and",
    "or",
    "some",
    "process",
    "port",
    "service",
];

/// Characters that make a word shell syntax: operators, expansions, quoting, globs, paths.
const SHELL_CHARS: [char; 16] = [
    '|', '>', '<', ';', '&', '$', '`', '=', '(', ')', '{', '}', '\\', '/', '*', '"',
];

/// A path standing as a word of its own (`/var/log`, `~/src`, `./build`, `~`), with nothing
/// else shell-like in it: a request in words may name one.
fn is_plain_path(word: &str) -> bool {
    let word = word.trim_end_matches(['?', ',', '.', '!']);
    let rooted = ["/", "~/", "./", "../"]
        .iter()
        .any(|start| word.starts_with(start))
        || word == "~";
    rooted && !word.contains(|c: char| c != '/' && SHELL_CHARS.contains(&c))
}

/// What to do with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Empty,
    /// Run as is through the system shell.
    Command(String),
    /// Translate first (the text without the leading `?`).
    Request(String),
}

/// Classifies `line`; `is_command` says whether a word names something runnable.
pub fn classify(line: &str, is_command: impl Fn(&str) -> bool) -> Line {
    let t = line.trim();
    if t.is_empty() {
        return Line::Empty;
    }
    if let Some(rest) = t.strip_prefix('?') {
        let rest = rest.trim();
        return if rest.is_empty() {
            Line::Empty
        } else {
            Line::Request(rest.to_string())
        };
    }
    // Anything shell-like is a command: operators, expansions, options, assignments, and
    // paths inside other words. A plain path is a word a sentence can have.
    let shellish = t.split_whitespace().any(|w| {
        !is_plain_path(w)
            && (w.contains(SHELL_CHARS)
                || w.starts_with('-')
                || w.starts_with('~')
                || w.starts_with('.'))
    });
    let words: Vec<String> = t
        .split_whitespace()
        .filter(|w| !is_plain_path(w))
        .map(|w| w.trim_end_matches(['?', ',', '.', '!']).to_lowercase())
        .collect();
    let first = t.split_whitespace().next().unwrap_or("");
    // `words` leaves the paths out: "ls /tmp" is one word, not a sentence.
    let sentence_words = words
        .iter()
        .skip(1)
        .filter(|w| SENTENCE_WORDS.contains(&w.as_str()))
        .count();
    if is_command(first) {
        let english = !shellish && words.len() >= 3 && (sentence_words >= 2 || t.ends_with('?'));
        return if english {
            Line::Request(t.to_string())
        } else {
            Line::Command(t.to_string())
        };
    }
    if shellish && !t.ends_with('?') {
        return Line::Command(t.to_string());
    }
    if words.len() >= 2 || t.ends_with('?') {
        Line::Request(t.to_string())
    } else {
        // One unknown word: let the shell say "command not found".
        Line::Command(t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(w: &str) -> bool {
        ["ls", "find", "git", "kill", "echo", "du", "cd", "which"].contains(&w)
    }

    #[test]
    fn commands_stay_commands() {
        for l in [
            "ls -la",
            "git status",
            "find . -name '*.rs'",
            "echo hello world",
            "du -sh /var",
            "kill 1234",
            "cd",
            "foo",
            "ls | wc -l",
            "x=1",
            "which git",
            "ls /tmp",
            "cd ~",
            "cd ..",
            "du ~/src",
            "find /var/log",
            "ls /var/log/*.log",
            "ls the /var/log/syslog",
            "echo all the files > /tmp/list",
        ] {
            assert!(matches!(classify(l, cmd), Line::Command(_)), "{l}");
        }
    }

    /// A sentence that names a path is still a sentence: as a command it would hand its words
    /// to the program as arguments.
    #[test]
    fn a_request_may_name_a_path() {
        for l in [
            "find all the log files in /var/log",
            "find the biggest files in ~/Downloads",
            "show the files in ./build that are bigger than 10 MB",
            "remove the old files in /tmp/build",
            "what is using the space in /var?",
        ] {
            assert!(matches!(classify(l, cmd), Line::Request(_)), "{l}");
        }
    }

    #[test]
    fn requests_are_detected_or_forced() {
        for l in [
            "show the five biggest files here",
            "which process listens on port 8080",
            "find all the python files here",
            "what is my ip address?",
            "restart nginx",
        ] {
            assert!(matches!(classify(l, cmd), Line::Request(_)), "{l}");
        }
        assert_eq!(classify("? ls", cmd), Line::Request("ls".into()));
        assert_eq!(classify("?", cmd), Line::Empty);
        assert_eq!(classify("   ", cmd), Line::Empty);
    }
}
