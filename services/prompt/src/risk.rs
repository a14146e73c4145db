//! Risk classes of command lines. Every suggestion carries one, so a shell can ask for a plain
//! "y" before a read-only command and for an explicit "yes" before a destructive or privileged
//! one. The class of a command line is the worst class of any of its simple commands; curated
//! intents may state a worse class than the classifier finds, never a milder one.

use serde::{Deserialize, Serialize};

/// What running a command can do, from harmless to dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Only reads: listing, searching, showing.
    ReadOnly,
    /// Talks to other machines (downloads, connections).
    Network,
    /// Creates or changes files the user owns.
    ChangesFiles,
    /// Needs root: package installs, units, users, anything through sudo.
    Privileged,
    /// Deletes or overwrites data, or kills processes; may not be undone.
    Destructive,
}

impl Risk {
    /// The wire and display name: `read-only`, `network`, `changes-files`, `privileged`,
    /// `destructive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::ReadOnly => "read-only",
            Risk::Network => "network",
            Risk::ChangesFiles => "changes-files",
            Risk::Privileged => "privileged",
            Risk::Destructive => "destructive",
        }
    }

    /// Parses a wire name (also accepts `read_only` and `changes_files`).
    pub fn parse(s: &str) -> Option<Risk> {
        Some(match s.replace('_', "-").as_str() {
            "read-only" => Risk::ReadOnly,
            "network" => Risk::Network,
            "changes-files" => Risk::ChangesFiles,
            "privileged" => Risk::Privileged,
            "destructive" => Risk::Destructive,
            _ => return None,
        })
    }

    /// Whether a shell should ask for an explicit "yes" rather than "y".
    pub fn needs_explicit_yes(self) -> bool {
        matches!(self, Risk::Privileged | Risk::Destructive)
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const DESTRUCTIVE: &[&str] = &[
    "rm", "rmdir", "shred", "dd", "mkfs", "wipefs", "fdisk", "sfdisk", "parted", "kill", "pkill",
    "killall", "truncate", "reboot", "poweroff", "shutdown", "halt", "userdel", "deluser",
];
const PRIVILEGED: &[&str] = &[
    "sudo", "su", "doas", "pkexec", "useradd", "adduser", "usermod", "groupadd", "passwd", "mount",
    "umount", "modprobe", "insmod", "rmmod", "sysctl", "iptables", "nft", "ufw", "chown", "chgrp",
    "visudo", "swapon", "swapoff",
];
const NETWORK: &[&str] = &[
    "curl",
    "wget",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "ping",
    "traceroute",
    "tracepath",
    "nc",
    "ncat",
    "telnet",
    "ftp",
    "dig",
    "nslookup",
    "host",
    "whois",
    "nmap",
    "mtr",
];
/// Programs that create or change the user's files; editors among them, since they open a
/// file to change it.
const CHANGES: &[&str] = &[
    "mv", "cp", "mkdir", "touch", "chmod", "ln", "tar", "zip", "unzip", "gzip", "gunzip", "xz",
    "unxz", "bzip2", "bunzip2", "zstd", "sed", "tee", "split", "install", "rename", "patch",
    "crontab", "nano", "vi", "vim", "nvim", "emacs", "micro", "ed", "editor",
];

/// Classifies a command line (as a shell would split it into simple commands).
pub fn classify(command: &str) -> Risk {
    let mut worst = Risk::ReadOnly;
    // Output redirection overwrites or creates files.
    if has_redirection(command) {
        worst = Risk::ChangesFiles;
    }
    for segment in simple_commands(command) {
        worst = worst.max(classify_simple(&segment));
    }
    worst
}

fn has_redirection(command: &str) -> bool {
    let mut quote = None;
    let b = command.as_bytes();
    let mut escaped = false;
    for (i, &c) in b.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (None | Some(b'"'), b'\\') => escaped = true,
            (None, b'\'' | b'"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => {
                // `2>/dev/null` and `>&2` only move output around.
                let rest = &command[i + 1..];
                let rest = rest.trim_start_matches('>').trim_start();
                if !(rest.starts_with("/dev/null") || rest.starts_with('&')) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Splits on `|`, `;`, `&&`, `||`, `&` and `$(`…`)` boundaries outside quotes, into word lists.
pub fn simple_commands(command: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            // A backslash outside single quotes takes the next character literally.
            (None | Some('"'), '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, '|' | ';' | '&' | '(' | ')' | '`' | '\n') => {
                out.push(std::mem::take(&mut cur));
            }
            (Some('"'), '`') => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .filter_map(|s| {
            let words = shell_words::split(&s)
                .unwrap_or_else(|_| s.split_whitespace().map(str::to_string).collect());
            (!words.is_empty()).then_some(words)
        })
        .collect()
}

fn classify_simple(words: &[String]) -> Risk {
    // Skip environment assignments (`LANG=C sort`) and wrappers that do not change the risk.
    let mut i = 0;
    while i < words.len()
        && (words[i].contains('=') && !words[i].starts_with('-')
            || matches!(
                words[i].as_str(),
                "env" | "nice" | "time" | "nohup" | "xargs" | "command"
            ))
    {
        i += 1;
    }
    let Some(first) = words.get(i) else {
        return Risk::ReadOnly;
    };
    let name = first.rsplit('/').next().unwrap_or(first);
    let args = &words[i + 1..];
    let has = |w: &str| args.iter().any(|a| a == w);
    if PRIVILEGED.contains(&name) {
        // `sudo rm …` is destructive and privileged: destructive wins the badge.
        let inner = classify_simple(args);
        return inner.max(Risk::Privileged);
    }
    if DESTRUCTIVE
        .iter()
        .any(|d| name == *d || name.starts_with("mkfs."))
    {
        return Risk::Destructive;
    }
    match name {
        "find" if has("-delete") || has("-exec") || has("-execdir") => Risk::Destructive,
        "apt" | "apt-get" | "dpkg" | "aptitude" => {
            let read = [
                "list", "search", "show", "policy", "depends", "rdepends", "-l", "-L", "-S", "-s",
            ];
            if args.iter().any(|a| read.contains(&a.as_str())) && !has("install") {
                Risk::ReadOnly
            } else if has("remove") || has("purge") || has("autoremove") || has("-r") || has("-P") {
                Risk::Destructive
            } else {
                Risk::Privileged
            }
        }
        "systemctl" => {
            let read = [
                "status",
                "list-units",
                "list-unit-files",
                "list-timers",
                "is-active",
                "is-enabled",
                "is-failed",
                "cat",
                "show",
                "list-dependencies",
                "--failed",
            ];
            if args.is_empty() || args.iter().any(|a| read.contains(&a.as_str())) {
                Risk::ReadOnly
            } else if has("--user") {
                Risk::ChangesFiles
            } else {
                Risk::Privileged
            }
        }
        "journalctl" if has("--vacuum-size") || has("--vacuum-time") || has("--rotate") => {
            Risk::Privileged
        }
        "git" => match args.first().map(String::as_str) {
            Some("clone" | "pull" | "push" | "fetch") => Risk::Network,
            Some("reset" | "clean") if has("--hard") || has("-f") || has("-fd") => {
                Risk::Destructive
            }
            Some("status" | "log" | "diff" | "show" | "branch" | "remote" | "blame") | None => {
                Risk::ReadOnly
            }
            _ => Risk::ChangesFiles,
        },
        "sed" if !args.iter().any(|a| a.starts_with("-i")) => Risk::ReadOnly,
        "tar"
            if args
                .first()
                .is_some_and(|a| a.contains('t') && !a.contains('x') && !a.contains('c')) =>
        {
            Risk::ReadOnly
        }
        "qos-ctl" => match args.first().map(String::as_str) {
            Some("status" | "space" | "dimensions") | None => Risk::ReadOnly,
            _ if args.iter().any(|a| {
                matches!(
                    a.as_str(),
                    "list"
                        | "show"
                        | "stats"
                        | "get"
                        | "translate"
                        | "explain"
                        | "predict"
                        | "complete"
                        | "verify"
                        | "tail"
                        | "classes"
                        | "timers"
                        | "export"
                        | "inventory"
                        | "cpu"
                        | "memory"
                        | "disks"
                        | "pressure"
                )
            }) =>
            {
                Risk::ReadOnly
            }
            _ => Risk::Privileged,
        },
        _ if NETWORK.contains(&name) => Risk::Network,
        _ if CHANGES.contains(&name) => Risk::ChangesFiles,
        _ => Risk::ReadOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(classify("ls -la"), Risk::ReadOnly);
        assert_eq!(classify("du -ah . | sort -rh | head -n 5"), Risk::ReadOnly);
        assert_eq!(classify("rm -rf build"), Risk::Destructive);
        assert_eq!(classify("sudo apt install htop"), Risk::Privileged);
        assert_eq!(classify("sudo rm /etc/x"), Risk::Destructive);
        assert_eq!(classify("apt search htop"), Risk::ReadOnly);
        assert_eq!(classify("systemctl status ssh"), Risk::ReadOnly);
        assert_eq!(classify("systemctl restart ssh"), Risk::Privileged);
        assert_eq!(classify("curl -O https://x"), Risk::Network);
        assert_eq!(classify("echo hi > file"), Risk::ChangesFiles);
        assert_eq!(classify("ls 2>/dev/null"), Risk::ReadOnly);
        assert_eq!(classify("find . -name '*.tmp' -delete"), Risk::Destructive);
        assert_eq!(classify("ls; rm x"), Risk::Destructive);
        assert_eq!(classify("echo $(rm x)"), Risk::Destructive);
        assert_eq!(classify("echo 'rm x'"), Risk::ReadOnly);
        assert_eq!(classify("tar -tf a.tar"), Risk::ReadOnly);
        assert_eq!(classify("tar -czf a.tgz dir"), Risk::ChangesFiles);
        assert_eq!(classify("git push"), Risk::Network);
        assert_eq!(classify("echo \\'; rm x"), Risk::Destructive);
        assert_eq!(classify("echo \\> x"), Risk::ReadOnly);
        assert_eq!(classify("nano /etc/hosts"), Risk::ChangesFiles);
    }

    #[test]
    fn wire_names_round_trip() {
        for r in [
            Risk::ReadOnly,
            Risk::Network,
            Risk::ChangesFiles,
            Risk::Privileged,
            Risk::Destructive,
        ] {
            assert_eq!(Risk::parse(r.as_str()), Some(r));
        }
        assert!(Risk::Destructive.needs_explicit_yes());
        assert!(!Risk::ChangesFiles.needs_explicit_yes());
    }
}
