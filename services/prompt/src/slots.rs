//! Slot filling: finds the values a request names (quoted strings, paths, globs, numbers with
//! units, ports, hosts, users, units, packages, processes) and puts them into an intent's
//! template. Every value from the request is shell-quoted, so no request can add a second
//! command, a substitution or a glob to the line; only the catalog's own defaults (trusted
//! literals) go in unquoted.

use std::path::Path;

use crate::catalog::{Part, parse_template};

/// The values found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub quoted: Vec<String>,
    pub paths: Vec<String>,
    pub globs: Vec<String>,
    pub urls: Vec<String>,
    pub hosts: Vec<String>,
    pub ports: Vec<String>,
    pub counts: Vec<String>,
    pub sizes: Vec<String>,
    /// (number, unit) with unit one of `min`, `hour`, `day`.
    pub durations: Vec<(String, &'static str)>,
    pub modes: Vec<String>,
    pub units: Vec<String>,
    /// QuantumOS dimensions the request names: (the word as written, the dimension's short
    /// name). `quantumd`, `steppps-pixel.service`, `org.quantumos.Pixel1`, or a short name
    /// where the words around it say it is one (`the pixel dimension`, `restart pixel`).
    pub dimensions: Vec<(String, &'static str)>,
    /// Words that follow a keyword: `(keyword class, word)`.
    pub after: Vec<(&'static str, String)>,
    /// Words the catalog's phrasings never use, last first (`bounce apache2` → `apache2`,
    /// `bounce`): the likely names of things when no keyword points at one. Set by
    /// `Extracted::refine`.
    pub leftovers: Vec<String>,
}

impl Extracted {
    /// Sharpens what `extract` found with the catalog's vocabulary: `catalog_words` are the
    /// words its phrasings and commands use, except program names (`folder`, `install`, but not
    /// `ssh`). A word outside that vocabulary that nothing else claimed is kept as a leftover.
    /// An adverb after a keyword (`start automatically`) is not a name.
    pub fn refine(&mut self, text: &str, catalog_words: &std::collections::HashSet<String>) {
        let adverb = |w: &str| w.len() > 4 && w.to_lowercase().ends_with("ly");
        self.after.retain(|(_, w)| !adverb(w));
        let claimed = |w: &str| {
            self.paths.iter().any(|p| p == w)
                || self.hosts.iter().any(|h| h == w)
                || self.units.iter().any(|u| u == w)
                || self.quoted.iter().any(|q| q == w)
        };
        let mut leftovers = Vec::new();
        for raw in text.split_whitespace() {
            let w = raw
                .trim_end_matches(['.', ',', '?', '!', ';', ':', ')'])
                .trim_start_matches('(');
            let lower = w.to_lowercase();
            if is_name(w)
                && w.len() > 1
                && !w.chars().all(|c| c.is_ascii_digit())
                && !w.contains('\'')
                && !STOP.contains(&lower.as_str())
                && !PLAIN_WORDS.contains(&lower.as_str())
                && !catalog_words.contains(&lower)
                && !adverb(w)
                && !claimed(w)
                && !leftovers.contains(&w.to_string())
            {
                leftovers.push(w.to_string());
            }
        }
        leftovers.reverse();
        self.leftovers = leftovers;
    }
}

const NUMBER_WORDS: &[(&str, &str)] = &[
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("twenty", "20"),
    ("fifty", "50"),
    ("hundred", "100"),
    ("dozen", "12"),
];

/// Everyday English a request is phrased in, never the name of a package, process, unit or
/// user when no keyword points at it (`what package does this file come from`: not `come`).
const PLAIN_WORDS: &[&str] = &[
    "come",
    "comes",
    "came",
    "go",
    "goes",
    "going",
    "gone",
    "give",
    "gives",
    "take",
    "takes",
    "make",
    "makes",
    "made",
    "know",
    "see",
    "look",
    "looking",
    "tell",
    "let",
    "like",
    "put",
    "keep",
    "still",
    "yet",
    "ever",
    "never",
    "always",
    "really",
    "actually",
    "maybe",
    "thing",
    "things",
    "stuff",
    "something",
    "anything",
    "nothing",
    "way",
    "much",
    "many",
    "more",
    "less",
    "very",
    "too",
    "so",
    "if",
    "when",
    "why",
    "how",
    "because",
    "about",
    "after",
    "before",
    "since",
    "until",
    "while",
    "during",
    "without",
    "within",
    "between",
    "inside",
    "outside",
    "belong",
    "belongs",
    "happen",
    "happens",
    "happened",
    "mine",
    "our",
    "your",
    "their",
    "his",
    "her",
    "thanks",
    "thank",
    "ok",
    "okay",
    "hey",
    "hi",
    "hello",
    "oh",
];

/// Words never taken as a name after a keyword.
const STOP: &[&str] = &[
    "the",
    "a",
    "an",
    "my",
    "this",
    "that",
    "these",
    "all",
    "any",
    "some",
    "of",
    "for",
    "to",
    "in",
    "on",
    "named",
    "called",
    "package",
    "packages",
    "service",
    "services",
    "unit",
    "user",
    "process",
    "processes",
    "program",
    "file",
    "files",
    "directory",
    "folder",
    "branch",
    "new",
    "with",
    "from",
    "into",
    "is",
    "are",
    "it",
    "its",
    "and",
    "or",
    "group",
    "daemon",
    "current",
    "which",
    "what",
    "who",
    "me",
    "please",
    "now",
    "here",
    "there",
    "everything",
    "every",
    "text",
    "word",
    "string",
    "pattern",
    "lines",
    "line",
    "port",
    "host",
    "server",
    "by",
    "as",
    "at",
    "up",
    "out",
    "down",
    "running",
    "installed",
    "whose",
    "where",
    "than",
    "bigger",
    "larger",
    "smaller",
    "older",
    "newer",
    "last",
    "first",
    "recent",
    "latest",
    "top",
    "most",
    "biggest",
    "largest",
    "free",
    "used",
    "open",
    "tcp",
    "udp",
    "system",
    "logs",
    "log",
    "do",
    "does",
    "did",
    "i",
    "you",
    "we",
    "can",
    "could",
    "should",
    "would",
    "will",
    "was",
    "were",
    "be",
    "been",
    "has",
    "have",
    "had",
    "need",
    "want",
    "get",
    "anymore",
    "again",
    "right",
    "only",
    "just",
    "also",
    "then",
    "them",
    "they",
    "one",
    "dir",
];

/// Keyword classes: the word after one of these is a candidate for the slot kinds listed in
/// `slot_keywords`.
const KEYWORDS: &[(&str, &[&str])] = &[
    (
        "package",
        &[
            "install",
            "uninstall",
            "remove",
            "purge",
            "package",
            "reinstall",
            "upgrade",
        ],
    ),
    (
        "unit",
        &[
            "restart", "start", "stop", "enable", "disable", "reload", "status", "service", "unit",
            "mask", "unmask",
        ],
    ),
    ("user", &["user", "account", "owner", "owned"]),
    ("group", &["group"]),
    (
        "process",
        &[
            "kill", "process", "program", "named", "called", "pgrep", "pid",
        ],
    ),
    (
        "host",
        &[
            "ping", "host", "server", "to", "reach", "resolve", "lookup", "domain", "ssh",
            "connect",
        ],
    ),
    ("name", &["named", "called", "name"]),
    ("branch", &["branch", "checkout", "switch", "merge"]),
    (
        "text",
        &[
            "for",
            "containing",
            "contains",
            "word",
            "string",
            "text",
            "pattern",
            "matching",
            "mentioning",
            "mention",
            "say",
            "says",
        ],
    ),
];

/// The request with the values it names replaced by what they are (`show the end of
/// /var/log/syslog` → `show the end of a file`), so that the model compares what is asked,
/// not the particular names: a path called `hostname` must not pull in `hostname`.
pub fn delexicalize(text: &str, x: &Extracted) -> String {
    let mut out = text.to_string();
    let mut replace = |values: &[String], with: &str, quoted: bool| {
        for v in values {
            if v.is_empty() {
                continue;
            }
            for q in ['"', '\'', '`'] {
                if quoted {
                    out = out.replace(&format!("{q}{v}{q}"), with);
                }
            }
            out = out.replace(v.as_str(), with);
        }
    };
    replace(&x.urls, "a url", false);
    replace(&x.quoted, "some text", true);
    replace(&x.hosts, "a host", false);
    for unit in &x.units {
        let kind = unit.rsplit_once('.').map_or("service", |(_, k)| k);
        out = out.replace(unit.as_str(), &format!("a {kind}"));
    }
    // `restart the pixel dimension` reads like the catalog's `restart a quantumos dimension`.
    for (word, _) in &x.dimensions {
        out = out.replace(word.as_str(), "quantumos");
    }
    // `my home` became the path `~`: to the model it is a folder like any other.
    if x.paths.iter().any(|p| p == "~") {
        for home in [
            "my home directory",
            "my home folder",
            "my home dir",
            "the home directory",
            "the home folder",
            "my home",
        ] {
            out = out.replace(home, "a folder");
        }
    }
    let names = x.after.iter().filter(|(c, _)| *c == "name").map(|(_, n)| n);
    for path in x.paths.iter().chain(names) {
        out = out.replace(path.as_str(), &what_file(path));
    }
    out
}

/// `backup.tar.gz` → `a tar.gz file`, `notes.txt` → `a txt file`, `/etc` → `a file`: the
/// kind of file says which command fits (`unzip` for a zip file).
fn what_file(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    for double in ["tar.gz", "tar.xz", "tar.bz2", "tar.zst"] {
        if lower.ends_with(&format!(".{double}")) {
            return format!("a {double} file");
        }
    }
    match lower.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && FILE_EXTS.contains(&ext) => {
            format!("a {ext} file")
        }
        _ => "a file".to_string(),
    }
}

/// Extracts values from a request. `cwd` is used to recognize names of existing files.
pub fn extract(text: &str, cwd: Option<&Path>) -> Extracted {
    let mut x = Extracted::default();
    // Quoted strings first; the rest is scanned word by word.
    let mut rest = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' || c == '“' || c == '‘' {
            let close = match c {
                '“' => '”',
                '‘' => '’',
                c => c,
            };
            // An apostrophe inside a word (don't) is not a quote.
            if c == '\'' && rest.chars().last().is_some_and(|p| p.is_alphanumeric()) {
                rest.push(c);
                continue;
            }
            let mut q = String::new();
            let mut closed = false;
            for d in chars.by_ref() {
                if d == close {
                    closed = true;
                    break;
                }
                q.push(d);
            }
            if closed && !q.is_empty() {
                x.quoted.push(q);
                rest.push_str(" \u{1} ");
            } else {
                rest.push(' ');
                rest.push_str(&q);
            }
        } else {
            rest.push(c);
        }
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let clean = |w: &str| -> String {
        w.trim_end_matches(['.', ',', '?', '!', ';', ':', ')'])
            .trim_start_matches('(')
            .to_string()
    };
    for (i, raw) in words.iter().enumerate() {
        let w = clean(raw);
        let lower = w.to_lowercase();
        let next = words.get(i + 1).map(|n| clean(n).to_lowercase());
        let prev = if i > 0 {
            Some(clean(words[i - 1]).to_lowercase())
        } else {
            None
        };
        if w.is_empty() || w == "\u{1}" {
            continue;
        }
        if let Some(d) = dimension_named(&lower, prev.as_deref(), next.as_deref()) {
            x.dimensions.push((w.clone(), d));
            continue;
        }
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("ftp://")
        {
            x.urls.push(w.clone());
            if let Some(h) = w
                .split("://")
                .nth(1)
                .and_then(|r| r.split(['/', ':']).next())
            {
                x.hosts.push(h.to_string());
            }
            continue;
        }
        if w.contains('*') || w.contains('?') && w.len() > 1 {
            x.globs.push(w.clone());
            continue;
        }
        if let Some(p) = w.strip_prefix(':')
            && p.parse::<u16>().is_ok_and(|p| p > 0)
        {
            x.ports.push(p.to_string());
            continue;
        }
        if let Some(u) = unit_name(&w) {
            x.units.push(u);
            continue;
        }
        if is_ipv4(&w) || is_domain(&w) {
            x.hosts.push(w.clone());
            continue;
        }
        if w.starts_with('/')
            || w.starts_with("~/")
            || w == "~"
            || w.starts_with("./")
            || w.starts_with("../")
            || (w.contains('/') && !w.contains("//"))
        {
            x.paths.push(w.clone());
            continue;
        }
        // `in one line`, `one per line`: a layout, not a count (`git log in one line` is not
        // `git log -n 1`).
        if lower == "one"
            && (next.as_deref() == Some("per")
                || (matches!(prev.as_deref(), Some("in" | "on"))
                    && next.as_deref().is_some_and(|n| n.starts_with("line"))))
        {
            continue;
        }
        if let Some(n) = number(&lower) {
            // A mode: three or four octal digits after chmod-like words.
            if (n.len() == 3 || n.len() == 4)
                && n.chars().all(|c| ('0'..='7').contains(&c))
                && lower == n
                && words.iter().any(|w| {
                    let w = w.to_lowercase();
                    w.starts_with("perm") || w.starts_with("chmod") || w.starts_with("mode")
                })
            {
                x.modes.push(n.clone());
                continue;
            }
            if prev.as_deref() == Some("port") || next.as_deref() == Some("port") {
                x.ports.push(n);
                continue;
            }
            if let Some(unit) = next.as_deref().and_then(size_unit) {
                x.sizes.push(format!("{n}{unit}"));
                continue;
            }
            if let Some(unit) = next.as_deref().and_then(duration_unit) {
                x.durations.push((n, unit));
                continue;
            }
            if prev.as_deref() == Some("pid") || prev.as_deref() == Some("process") {
                x.after.push(("process", n.clone()));
            }
            x.counts.push(n);
            continue;
        }
        // `the past week`, `in the last hour`: one of that unit.
        if matches!(prev.as_deref(), Some("past" | "last" | "this"))
            && let Some(unit) = duration_unit(&lower)
            && lower.len() > 2
        {
            x.durations.push(("1".into(), unit));
            continue;
        }
        if let Some(s) = inline_size(&lower) {
            x.sizes.push(s);
            continue;
        }
        if let Some(d) = inline_duration(&lower) {
            x.durations.push(d);
            continue;
        }
        if let Some(ext) = extension_word(&lower, next.as_deref()) {
            x.globs.push(format!("*.{ext}"));
        }
        // `in my home`, `my home directory`, `the home folder`: the user's home, `~`.
        if lower == "home"
            && (prev.as_deref() == Some("my")
                || matches!(next.as_deref(), Some("directory" | "folder" | "dir")))
        {
            x.paths.push("~".into());
            continue;
        }
        // `a file named notes.txt`: a name to look for, not a path to act on.
        if matches!(prev.as_deref(), Some("named" | "called")) && !w.contains('/') && is_name(&w) {
            x.after.push(("name", w.clone()));
            continue;
        }
        if looks_like_file(&w)
            || cwd.is_some_and(|d| {
                w.len() > 1 && !STOP.contains(&lower.as_str()) && d.join(&w).exists()
            })
        {
            x.paths.push(w.clone());
            continue;
        }
        // A keyword is not a name (`user account for alice`: not `account`).
        let keyword = KEYWORDS
            .iter()
            .any(|(_, keys)| keys.contains(&lower.as_str()));
        for (class, keys) in KEYWORDS {
            if prev.as_deref().is_some_and(|p| keys.contains(&p))
                && !keyword
                && !STOP.contains(&lower.as_str())
                && is_name(&w)
            {
                x.after.push((class, w.clone()));
            }
        }
        // `the folder photos`, `the build directory`: a path that need not exist yet.
        let folder = |w: Option<&str>| matches!(w, Some("folder" | "directory" | "dir"));
        // `logs` asks for the journal elsewhere, but `the logs folder` is a folder's name.
        let folder_name = folder(next.as_deref()) && matches!(lower.as_str(), "logs" | "log");
        if (folder(prev.as_deref()) || folder(next.as_deref()))
            && !keyword
            && (folder_name || !STOP.contains(&lower.as_str()))
            && is_name(&w)
        {
            x.after.push(("path", w.clone()));
        }
        // `the nginx service`, `user alice's files`
        if matches!(next.as_deref(), Some("service" | "unit" | "daemon"))
            && !STOP.contains(&lower.as_str())
            && is_name(&w)
        {
            x.units.push(w.clone());
        }
        if matches!(next.as_deref(), Some("package"))
            && !STOP.contains(&lower.as_str())
            && is_name(&w)
        {
            x.after.push(("package", w.clone()));
        }
        if matches!(next.as_deref(), Some("process" | "processes"))
            && !STOP.contains(&lower.as_str())
            && is_name(&w)
        {
            x.after.push(("process", w.clone()));
        }
        if matches!(next.as_deref(), Some("group"))
            && !STOP.contains(&lower.as_str())
            && is_name(&w)
        {
            x.after.push(("group", w.clone()));
        }
        if matches!(next.as_deref(), Some("branch"))
            && !STOP.contains(&lower.as_str())
            && is_name(&w)
        {
            x.after.push(("branch", w.clone()));
        }
    }
    x
}

/// The short name of the dimension `word` (lower case) names. Its program, unit and bus names
/// always do; a short name only where the words around it say so (`the time dimension`,
/// `restart pixel`), since `space` and `time` are also ordinary words (`free disk space`).
fn dimension_named(word: &str, prev: Option<&str>, next: Option<&str>) -> Option<&'static str> {
    let by_name = steppps::api::DIMENSIONS.iter().find(|d| {
        [d.binary, d.unit, d.unit.trim_end_matches(".service")].contains(&word)
            || d.bus_name.eq_ignore_ascii_case(word)
    });
    let by_short_name = || {
        let said = matches!(next, Some("dimension" | "daemon" | "service"))
            || matches!(prev, Some("restart"));
        steppps::api::DIMENSIONS
            .iter()
            .find(|d| said && d.name == word)
    };
    by_name.or_else(by_short_name).map(|d| d.name)
}

fn is_name(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 64
        && w.chars()
            .all(|c| c.is_alphanumeric() || "-_.@+".contains(c))
        && w.chars().next().is_some_and(|c| c.is_alphanumeric())
}

fn number(w: &str) -> Option<String> {
    if !w.is_empty() && w.len() <= 12 && w.chars().all(|c| c.is_ascii_digit()) {
        return Some(w.trim_start_matches('0').to_string())
            .map(|s| if s.is_empty() { "0".into() } else { s });
    }
    NUMBER_WORDS
        .iter()
        .find(|(k, _)| *k == w)
        .map(|(_, v)| v.to_string())
}

fn size_unit(w: &str) -> Option<&'static str> {
    Some(match w {
        "k" | "kb" | "kib" | "kilobytes" | "kilobyte" => "k",
        "m" | "mb" | "mib" | "megabytes" | "megabyte" | "megs" | "meg" => "M",
        "g" | "gb" | "gib" | "gigabytes" | "gigabyte" | "gigs" | "gig" => "G",
        _ => return None,
    })
}

fn inline_size(w: &str) -> Option<String> {
    let split = w.find(|c: char| !c.is_ascii_digit())?;
    let (n, u) = w.split_at(split);
    if n.is_empty() {
        return None;
    }
    size_unit(u).map(|u| format!("{n}{u}"))
}

fn duration_unit(w: &str) -> Option<&'static str> {
    Some(match w {
        "min" | "mins" | "minute" | "minutes" | "m" => "min",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" => "week",
        _ => return None,
    })
}

fn inline_duration(w: &str) -> Option<(String, &'static str)> {
    let split = w.find(|c: char| !c.is_ascii_digit())?;
    let (n, u) = w.split_at(split);
    if n.is_empty() || matches!(u, "m") {
        return None;
    }
    duration_unit(u).map(|u| (n.to_string(), u))
}

fn unit_name(w: &str) -> Option<String> {
    const SUFFIXES: [&str; 6] = [
        ".service", ".timer", ".socket", ".target", ".mount", ".path",
    ];
    SUFFIXES
        .iter()
        .any(|s| w.ends_with(s) && w.len() > s.len())
        .then(|| w.to_string())
}

fn is_ipv4(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

const TLDS: &[&str] = &[
    "com", "org", "net", "io", "dev", "de", "fr", "uk", "edu", "gov", "local", "lan", "internal",
    "info", "eu",
];

fn is_domain(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && parts
            .last()
            .is_some_and(|t| TLDS.contains(&t.to_ascii_lowercase().as_str()))
}

const FILE_EXTS: &[&str] = &[
    "txt", "log", "md", "rs", "py", "c", "h", "cpp", "js", "ts", "json", "toml", "yaml", "yml",
    "conf", "cfg", "ini", "sh", "csv", "pdf", "png", "jpg", "jpeg", "gif", "mp3", "mp4", "tar",
    "gz", "tgz", "zip", "xz", "bz2", "zst", "iso", "img", "deb", "html", "css", "xml", "sql", "db",
    "bak", "tmp", "go", "java", "svg", "qasm", "bpmn", "doc", "docx", "odt", "service",
];

/// `nginx.conf`, not `/etc/nginx.conf`: a file's name, which a search may look for.
fn bare_file_name(w: &str) -> bool {
    looks_like_file(w) && !w.contains('/')
}

fn looks_like_file(w: &str) -> bool {
    // `a tar.gz`, `as tar.xz`: a format, not a file.
    if w.to_ascii_lowercase().starts_with("tar.") {
        return false;
    }
    match w.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty() && FILE_EXTS.contains(&ext.to_ascii_lowercase().as_str()) && is_name(w)
        }
        None => false,
    }
}

/// `python files` → `py`, `log files` → `log`, `.txt` → `txt`.
fn extension_word(w: &str, next: Option<&str>) -> Option<&'static str> {
    const WORDS: &[(&str, &str)] = &[
        ("python", "py"),
        ("rust", "rs"),
        ("log", "log"),
        ("text", "txt"),
        ("markdown", "md"),
        ("pdf", "pdf"),
        ("png", "png"),
        ("jpeg", "jpg"),
        ("jpg", "jpg"),
        ("json", "json"),
        ("yaml", "yaml"),
        ("csv", "csv"),
        ("shell", "sh"),
        ("c", "c"),
        ("javascript", "js"),
        ("html", "html"),
        ("mp3", "mp3"),
        ("mp4", "mp4"),
        ("toml", "toml"),
        ("tmp", "tmp"),
        ("temporary", "tmp"),
        ("backup", "bak"),
        ("go", "go"),
        ("java", "java"),
        ("iso", "iso"),
        ("zip", "zip"),
        ("conf", "conf"),
        ("config", "conf"),
        ("txt", "txt"),
        ("svg", "svg"),
    ];
    if let Some(ext) = w.strip_prefix('.') {
        return FILE_EXTS.iter().find(|e| **e == ext).copied();
    }
    if !matches!(
        next,
        Some("files" | "file" | "scripts" | "documents" | "images" | "sources" | "logs")
    ) {
        return None;
    }
    WORDS.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

/// A rendered command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub command: String,
    /// Slots that took a value from the request.
    pub filled: usize,
    /// Slots without a value or a default: shown as `<kind>`; the command needs editing.
    pub missing: usize,
}

/// Which request values a slot kind takes, in preference order.
fn candidates(kind: &str, x: &Extracted, template_kinds: &[String]) -> Vec<String> {
    let after = |class: &str| -> Vec<String> {
        x.after
            .iter()
            .filter(|(c, _)| *c == class)
            .map(|(_, w)| w.clone())
            .collect()
    };
    let mut v: Vec<String> = match kind {
        "path" | "file" | "dir" | "src" | "dest" | "archive" => {
            let looks_for_a_name = template_kinds.iter().any(|k| k == "glob" || k == "name");
            // `where is nginx.conf`: in a command that looks for a name, a bare file name is
            // that name, not the directory to look in.
            let mut v: Vec<String> = x
                .paths
                .iter()
                .filter(|p| !(looks_for_a_name && bare_file_name(p)))
                .cloned()
                .collect();
            v.extend(after("path"));
            v.extend(
                x.quoted
                    .iter()
                    .filter(|q| !q.contains(' ') || q.contains('/'))
                    .cloned(),
            );
            // `a folder called projects` names the path, unless the command looks for a name.
            if !looks_for_a_name {
                v.extend(after("name"));
            }
            v
        }
        "glob" => {
            let mut v = x.globs.clone();
            v.extend(x.quoted.iter().cloned());
            v.extend(after("name"));
            v.extend(x.paths.iter().filter(|p| bare_file_name(p)).cloned());
            v
        }
        "pattern" | "text" | "message" => {
            let mut v = x.quoted.clone();
            v.extend(after("text"));
            v
        }
        "name" => {
            let mut v = x.quoted.clone();
            v.extend(after("name"));
            v.extend(x.paths.iter().cloned());
            v
        }
        "dimension" => x.dimensions.iter().map(|(_, d)| d.to_string()).collect(),
        "count" | "number" | "lines" => x.counts.clone(),
        "size" => x.sizes.clone(),
        "minutes" => x
            .durations
            .iter()
            .map(|(n, u)| to_unit(n, u, "min"))
            .collect(),
        "days" => x
            .durations
            .iter()
            .map(|(n, u)| to_unit(n, u, "day"))
            .collect(),
        "since" => x
            .durations
            .iter()
            .map(|(n, u)| {
                format!(
                    "{n} {} ago",
                    if *u == "min" {
                        "minutes"
                    } else {
                        if *u == "hour" {
                            "hours"
                        } else if *u == "week" {
                            "weeks"
                        } else {
                            "days"
                        }
                    }
                )
            })
            .collect(),
        "port" => {
            let mut v = x.ports.clone();
            v.extend(
                x.counts
                    .iter()
                    .filter(|n| {
                        n.parse::<u32>()
                            .is_ok_and(|p| (1..=65535).contains(&p) && p > 20)
                    })
                    .cloned(),
            );
            v
        }
        "host" => {
            let mut v = x.hosts.clone();
            v.extend(after("host"));
            v
        }
        "url" => x.urls.clone(),
        "user" | "owner" => {
            let mut v = after("user");
            v.extend(x.quoted.iter().cloned());
            v.extend(after("name"));
            v.extend(x.leftovers.iter().cloned());
            v
        }
        "group" => {
            let mut v = after("group");
            v.extend(x.leftovers.iter().cloned());
            v
        }
        "unit" => {
            let mut v = x.units.clone();
            v.extend(after("unit"));
            v.extend(x.leftovers.iter().cloned());
            v
        }
        "package" => {
            let mut v = after("package");
            v.extend(x.quoted.iter().cloned());
            v.extend(after("name"));
            v.extend(x.leftovers.iter().cloned());
            v
        }
        "process" => {
            let mut v = after("process");
            v.extend(x.quoted.iter().cloned());
            v.extend(after("name"));
            v.extend(x.leftovers.iter().cloned());
            v
        }
        "pid" => x
            .after
            .iter()
            .filter(|(c, w)| *c == "process" && w.chars().all(|c| c.is_ascii_digit()))
            .map(|(_, w)| w.clone())
            .collect(),
        "mode" => {
            let mut v = x.modes.clone();
            v.extend(
                x.counts
                    .iter()
                    .filter(|n| {
                        (3..=4).contains(&n.len()) && n.chars().all(|c| ('0'..='7').contains(&c))
                    })
                    .cloned(),
            );
            v
        }
        "branch" => {
            let mut v = after("branch");
            v.extend(x.quoted.iter().cloned());
            v.extend(after("name"));
            v.extend(x.leftovers.iter().cloned());
            v
        }
        _ => x.quoted.clone(),
    };
    v.dedup();
    v
}

fn to_unit(n: &str, from: &str, to: &str) -> String {
    let n: u64 = n.parse().unwrap_or(0);
    let minutes = match from {
        "hour" => n * 60,
        "day" => n * 1440,
        "week" => n * 10080,
        _ => n,
    };
    match to {
        "day" => (minutes / 1440).max(1).to_string(),
        _ => minutes.to_string(),
    }
}

/// Renders `template` with the values in `x`. Slots of the same kind take successive values.
pub fn fill(template: &str, x: &Extracted) -> Filled {
    let parts = parse_template(template);
    let kinds: Vec<String> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Slot { kind, .. } => Some(kind.clone()),
            Part::Literal(_) => None,
        })
        .collect();
    let literal_text: String = parts
        .iter()
        .filter_map(|p| match p {
            Part::Literal(l) => Some(format!("{l} ")),
            Part::Slot { .. } => None,
        })
        .collect();
    let literal_words: Vec<&str> = literal_text.split_whitespace().collect();
    let mut taken: Vec<String> = Vec::new();
    let mut by_name: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut command = String::new();
    let (mut filled, mut missing) = (0, 0);
    for p in parts {
        match p {
            Part::Literal(s) => command.push_str(&s),
            Part::Slot {
                name,
                kind,
                default,
            } => {
                // The same placeholder twice (`tar -czf {{path}}.tar.gz {{path}}`) takes the
                // same value.
                if let Some(v) = by_name.get(&name) {
                    command.push_str(v);
                    continue;
                }
                let cands = candidates(&kind, x, &kinds);
                // A value that is one of the command's own words (`pkill kill`) is the
                // request naming the command, not its argument.
                let value = cands
                    .iter()
                    .find(|c| !taken.contains(c) && !literal_words.contains(&c.as_str()))
                    .cloned();
                match value {
                    Some(v) => {
                        let v = if v.len() > 1 {
                            v.trim_end_matches('/').to_string()
                        } else {
                            v
                        };
                        let q = quote_value(&kind, &v);
                        command.push_str(&q);
                        by_name.insert(name.clone(), q);
                        taken.push(v);
                        filled += 1;
                    }
                    None => match default {
                        Some(d) => {
                            command.push_str(&d);
                            by_name.insert(name.clone(), d);
                        }
                        None => {
                            command.push_str(&format!("<{name}>"));
                            by_name.insert(name.clone(), format!("<{name}>"));
                            missing += 1;
                        }
                    },
                }
            }
        }
    }
    Filled {
        command,
        filled,
        missing,
    }
}

/// Shell-quotes a value. `~/x` keeps its tilde (the only expansion allowed) with the rest
/// quoted.
pub fn quote_value(kind: &str, v: &str) -> String {
    if matches!(kind, "path" | "file" | "dir" | "src" | "dest" | "archive") {
        if v == "~" {
            return "~".into();
        }
        if let Some(rest) = v.strip_prefix("~/")
            && !rest.is_empty()
        {
            return format!("~/{}", shell_words::quote(rest));
        }
        // A file named `-rf` must not become an option.
        if v.starts_with('-') {
            return shell_words::quote(&format!("./{v}")).into_owned();
        }
    }
    shell_words::quote(v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_sees_what_is_asked_not_the_names() {
        let d = |t: &str| delexicalize(t, &extract(t, None));
        assert_eq!(
            d("show the end of /var/log/syslog"),
            "show the end of a file"
        );
        assert_eq!(
            d("grep the project for \"unsafe\""),
            "grep the project for some text"
        );
        assert_eq!(d("ping example.com"), "ping a host");
        assert_eq!(d("download https://example.com/a.tar.gz"), "download a url");
        assert_eq!(d("list running processes"), "list running processes");
        assert_eq!(
            d("show disk usage of my home"),
            "show disk usage of a folder"
        );
    }

    #[test]
    fn a_bare_file_name_is_what_a_search_looks_for() {
        let fill_with = |template: &str, t: &str| fill(template, &extract(t, None)).command;
        let find = "find {{path=.}} -name {{glob}}";
        assert_eq!(
            fill_with(find, "where is nginx.conf"),
            "find . -name nginx.conf"
        );
        assert_eq!(
            fill_with(find, "find nginx.conf in /etc"),
            "find /etc -name nginx.conf"
        );
        // A command that acts on a file still takes it as its path.
        assert_eq!(
            fill_with("cat {{path}}", "show nginx.conf"),
            "cat nginx.conf"
        );
    }

    #[test]
    fn a_folder_may_be_called_logs() {
        let tar = "tar -czvf {{path}}.tar.gz {{path}}";
        assert_eq!(
            fill(
                tar,
                &extract("compress the logs folder into a tarball", None)
            )
            .command,
            "tar -czvf logs.tar.gz logs"
        );
    }

    #[test]
    fn a_dimension_is_named_by_its_program_unit_or_bus_name_or_by_context() {
        let restart = |t: &str| fill("qos-ctl restart {{dimension}}", &extract(t, None)).command;
        assert_eq!(
            restart("restart the pixel dimension"),
            "qos-ctl restart pixel"
        );
        assert_eq!(restart("restart the time daemon"), "qos-ctl restart time");
        assert_eq!(restart("restart quantumd"), "qos-ctl restart quantum");
        assert_eq!(
            restart("bounce steppps-event.service"),
            "qos-ctl restart event"
        );
        assert_eq!(
            restart("restart org.quantumos.Space1"),
            "qos-ctl restart space"
        );
        // Ordinary words stay ordinary: the disk's free space is not the space dimension.
        let x = extract("how much disk space is free", None);
        assert!(x.dimensions.is_empty(), "{:?}", x.dimensions);
        assert_eq!(restart("restart warp-drive"), "qos-ctl restart <dimension>");
        // The model reads the request as the catalog's own phrasing, and the unit stays a unit.
        let d = |t: &str| delexicalize(t, &extract(t, None));
        assert_eq!(
            d("restart the psychology dimension"),
            "restart the quantumos dimension"
        );
        assert!(!d("restart the nginx service").contains("quantumos"));
    }

    #[test]
    fn names_come_from_named_and_from_words_the_catalog_never_uses() {
        let vocabulary: std::collections::HashSet<String> = [
            "bounce", "restart", "start", "the", "server", "make", "at", "boot",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let mut x = extract("bounce apache2 please", None);
        x.refine("bounce apache2 please", &vocabulary);
        assert_eq!(x.leftovers, ["apache2"]);
        // Everyday words are not names, even where the catalog never uses them.
        let text = "what package does /etc/ssh/sshd_config come from";
        let mut plain = extract(text, None);
        plain.refine(text, &vocabulary);
        assert!(
            !plain.leftovers.contains(&"come".to_string()),
            "{:?}",
            plain.leftovers
        );
        assert_eq!(
            fill("sudo systemctl restart {{unit}}", &x).command,
            "sudo systemctl restart apache2"
        );
        // `named notes.txt` is what to look for; with no name slot, what to act on.
        let x = extract("look for files named notes.txt", None);
        assert_eq!(
            fill("find {{path=.}} -name {{glob}}", &x).command,
            "find . -name notes.txt"
        );
        let x = extract("create a folder called projects", None);
        assert_eq!(fill("mkdir -p {{path}}", &x).command, "mkdir -p projects");
        // An adverb after a keyword is not a unit; a leftover is.
        let mut x = extract("make ssh start automatically at boot", None);
        x.refine("make ssh start automatically at boot", &vocabulary);
        assert_eq!(
            fill("sudo systemctl enable --now {{unit}}", &x).command,
            "sudo systemctl enable --now ssh"
        );
        let mut x = extract("add alice to the docker group", None);
        x.refine("add alice to the docker group", &vocabulary);
        assert_eq!(
            fill("sudo usermod -aG {{group}} {{user}}", &x).command,
            "sudo usermod -aG docker alice"
        );
        let x = extract("files edited during the past week", None);
        assert_eq!(
            fill("find . -mtime -{{days=1}}", &x).command,
            "find . -mtime -7"
        );
        let x = extract("set 750 on the www directory recursively", None);
        assert_eq!(
            fill("chmod -R {{mode}} {{path}}", &x).command,
            "chmod -R 750 www"
        );
        // Only a plain name is ever a leftover: nothing with shell syntax in it.
        let text = "restart foo;reboot";
        let mut x = extract(text, None);
        x.refine(text, &vocabulary);
        assert!(x.leftovers.is_empty(), "{:?}", x.leftovers);
    }

    #[test]
    fn finds_values() {
        let x = extract("which process listens on port 8080", None);
        assert_eq!(x.ports, vec!["8080"]);
        let x = extract("show the five biggest files in /var/log", None);
        assert_eq!(x.counts, vec!["5"]);
        assert_eq!(x.paths, vec!["/var/log"]);
        let x = extract(
            "find files bigger than 100 MB modified in the last 3 days",
            None,
        );
        assert_eq!(x.sizes, vec!["100M"]);
        assert_eq!(x.durations, vec![("3".to_string(), "day")]);
        let x = extract("search for \"connection refused\" in all log files", None);
        assert_eq!(x.quoted, vec!["connection refused"]);
        assert_eq!(x.globs, vec!["*.log"]);
        let x = extract("restart the nginx service", None);
        assert_eq!(x.units, vec!["nginx"]);
        let x = extract("install htop", None);
        assert!(x.after.contains(&("package", "htop".to_string())));
        let x = extract("ping example.com", None);
        assert_eq!(x.hosts, vec!["example.com"]);
        let x = extract("make script.sh executable with permissions 755", None);
        assert_eq!(x.paths, vec!["script.sh"]);
        assert_eq!(x.modes, vec!["755"]);
    }

    #[test]
    fn one_line_is_a_layout_not_a_count() {
        for text in [
            "show the git log in one line",
            "list the files one per line",
            "print each commit on one line",
        ] {
            assert!(extract(text, None).counts.is_empty(), "{text}");
        }
        assert_eq!(extract("show one line of the file", None).counts, vec!["1"]);
        assert_eq!(extract("show the last one", None).counts, vec!["1"]);
    }

    #[test]
    fn my_home_is_the_tilde() {
        for text in [
            "find the pdf files in my home",
            "find big files in my home directory",
            "list the home folder",
        ] {
            assert_eq!(extract(text, None).paths, vec!["~"], "{text}");
        }
        // Not every home: a word after "home" that is no folder keeps it a word.
        assert!(extract("go home now", None).paths.is_empty());
    }

    #[test]
    fn fills_and_quotes() {
        let x = extract("show the five biggest files in '/tmp/my dir'", None);
        let f = fill("du -ah {{path=.}} | sort -rh | head -n {{count=10}}", &x);
        assert_eq!(f.command, "du -ah '/tmp/my dir' | sort -rh | head -n 5");
        assert_eq!((f.filled, f.missing), (2, 0));
        let f = fill(
            "cp {{path}} {{path2}}",
            &extract("copy a.txt to /tmp/b", None),
        );
        assert_eq!(f.command, "cp a.txt /tmp/b");
        let f = fill("kill {{pid}}", &Extracted::default());
        assert_eq!((f.command.as_str(), f.missing), ("kill <pid>", 1));
        assert_eq!(quote_value("path", "~/my file"), "~/'my file'");
        let f = fill(
            "tar -czvf {{path}}.tar.gz {{path}}",
            &extract("compress the folder docs/ into a tarball", None),
        );
        assert_eq!(f.command, "tar -czvf docs.tar.gz docs");
    }

    /// Whatever a request contains, a filled value stays one word of one simple command.
    #[test]
    fn injection_never_changes_the_structure() {
        let hostile = [
            "; rm -rf ~",
            "$(reboot)",
            "`reboot`",
            "a\nrm -rf /",
            "x' ; rm -rf / ; '",
            "\"; halt; \"",
            "*",
            "~/*",
            "a && b",
            "a || b",
            "a | sh",
            "$HOME",
            "${IFS}",
            "a > /etc/passwd",
            "<(id)",
            "\\",
            "!!",
            "-rf",
            "'",
            "\"",
            "\t",
            "a\rb",
            "~root",
        ];
        for h in hostile {
            for template in [
                "grep -rn {{pattern}} {{path=.}}",
                "find {{path=.}} -name {{glob}}",
                "cat {{path}}",
            ] {
                let x = Extracted {
                    quoted: vec![h.to_string()],
                    paths: vec![h.to_string()],
                    globs: vec![h.to_string()],
                    ..Default::default()
                };
                let f = fill(template, &x);
                let words = shell_words::split(&f.command).expect("a filled command always splits");
                let expected = parse_template(template)
                    .iter()
                    .map(|p| match p {
                        Part::Literal(s) => s.split_whitespace().count(),
                        Part::Slot { .. } => 1,
                    })
                    .sum::<usize>();
                assert_eq!(
                    words.len(),
                    expected,
                    "{template} with {h:?} gave {}",
                    f.command
                );
                let h = if h.len() > 1 {
                    h.trim_end_matches('/')
                } else {
                    h
                };
                let arrived = words.iter().any(|w| w == h || *w == format!("./{h}"));
                assert!(arrived, "{h:?} must arrive verbatim: {}", f.command);
                assert_eq!(
                    crate::risk::simple_commands(&f.command).len(),
                    1,
                    "{}",
                    f.command
                );
            }
        }
    }
}
