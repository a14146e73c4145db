//! The system copy with progress. `cp --archive` keeps what an installed system needs
//! (ownership, modes, xattrs, ACLs, hard links, device nodes, sparse files); `--verbose`
//! makes it print one line per entry it created, which, counted against the entries the
//! source holds, is the progress: exact, and free of any polling of the target.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Entries (files, directories, links, device nodes) under each of `roots`, the roots
/// included, not crossing into other file systems (as `cp --one-file-system`).
pub fn count_entries(roots: &[PathBuf]) -> u64 {
    fn walk(dir: &Path, dev: u64) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut n = 0;
        for entry in entries.flatten() {
            n += 1;
            let path = entry.path();
            if let Ok(meta) = std::fs::symlink_metadata(&path)
                && meta.is_dir()
                && meta.dev() == dev
            {
                n += walk(&path, dev);
            }
        }
        n
    }
    roots
        .iter()
        .filter_map(|root| std::fs::symlink_metadata(root).ok().map(|m| (root, m)))
        .map(|(root, meta)| {
            1 + if meta.is_dir() {
                walk(root, meta.dev())
            } else {
                0
            }
        })
        .sum()
}

/// Copies `sources` into the directory `target` with `cp --archive --one-file-system
/// --sparse=always --verbose`, calling `progress(copied, total)` as entries arrive (`total`
/// is [`count_entries`]; `copied` can pass it by the few entries cp creates on its own, so
/// callers clamp). Returns the number of entries copied; on failure, cp's error output.
pub fn copy_with_progress(
    sources: &[PathBuf],
    target: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64> {
    let total = count_entries(sources);
    let mut child = Command::new("cp")
        .args([
            "--archive",
            "--one-file-system",
            "--sparse=always",
            "--verbose",
        ])
        .args(sources)
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cp")?;
    // stderr on its own thread: a cp that fills the pipe with errors must not block while we
    // read stdout.
    let mut stderr = child.stderr.take().context("cp's stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().context("cp's stdout")?;
    let mut copied = 0u64;
    progress(0, total);
    // Lines are split on '\n' as bytes: a file name need not be UTF-8.
    for line in BufReader::new(stdout).split(b'\n') {
        if line.is_err() {
            break;
        }
        copied += 1;
        progress(copied, total);
    }
    let status = child.wait().context("waiting for cp")?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        let first: Vec<&str> = errors.lines().take(20).collect();
        bail!("cp failed ({status}): {}", first.join("\n"));
    }
    Ok(copied)
}

/// How progress is shown: a line rewritten in place on a terminal; elsewhere (a log, the
/// journal) a line every 10 %.
#[derive(Debug)]
pub struct ProgressLine {
    terminal: bool,
    shown: Option<u64>,
}

impl ProgressLine {
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            shown: None,
        }
    }

    /// The text to print for `copied` of `total`, when it differs enough from the last one.
    pub fn update(&mut self, copied: u64, total: u64) -> Option<String> {
        let percent = (copied.min(total) * 100).checked_div(total).unwrap_or(100);
        let step = if self.terminal { 1 } else { 10 };
        let bucket = percent / step;
        if self.shown == Some(bucket) {
            return None;
        }
        self.shown = Some(bucket);
        let bar_width = 30;
        let filled = (percent * bar_width / 100) as usize;
        let text = format!(
            "  [{}{}] {percent:>3} %  {copied} of {total} entries",
            "#".repeat(filled),
            " ".repeat(bar_width as usize - filled),
            copied = copied.min(total),
        );
        Some(if self.terminal {
            format!("\r{text}")
        } else {
            text
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_tree_and_counts_every_entry() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("etc/sub"))?;
        std::fs::create_dir_all(src.join("usr/bin"))?;
        for i in 0..50 {
            std::fs::write(src.join(format!("usr/bin/tool{i}")), format!("#{i}"))?;
        }
        std::fs::write(src.join("etc/sub/conf"), "x = 1\n")?;
        std::os::unix::fs::symlink("../usr/bin/tool1", src.join("etc/link"))?;
        let target = dir.path().join("target");
        std::fs::create_dir(&target)?;
        let roots = vec![src.join("etc"), src.join("usr")];
        // etc, etc/sub, etc/sub/conf, etc/link, usr, usr/bin, 50 tools.
        assert_eq!(count_entries(&roots), 56);

        let mut seen = Vec::new();
        let copied = copy_with_progress(&roots, &target, |c, t| seen.push((c, t)))?;
        assert_eq!(copied, 56);
        assert_eq!(seen.first(), Some(&(0, 56)));
        assert_eq!(seen.last(), Some(&(56, 56)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            std::fs::read_to_string(target.join("usr/bin/tool49"))?,
            "#49"
        );
        assert_eq!(
            std::fs::read_link(target.join("etc/link"))?,
            Path::new("../usr/bin/tool1")
        );
        Ok(())
    }

    #[test]
    fn a_failed_copy_says_what_cp_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = copy_with_progress(&[dir.path().join("missing")], dir.path(), |_, _| {})
            .expect_err("copying nothing");
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn progress_lines_are_rate_limited() {
        let mut log = ProgressLine::new(false);
        let lines: Vec<String> = (0..=1000).filter_map(|c| log.update(c, 1000)).collect();
        // 0 %, 10 %, … 100 %: eleven lines for a log, not a thousand.
        assert_eq!(lines.len(), 11);
        assert!(lines[10].contains("100 %  1000 of 1000"), "{}", lines[10]);
        let mut tty = ProgressLine::new(true);
        let lines: Vec<String> = (0..=1000).filter_map(|c| tty.update(c, 1000)).collect();
        assert_eq!(lines.len(), 101);
        assert!(lines[50].starts_with('\r') && lines[50].contains(" 50 %"));
        // cp may create an entry or two more than were counted: never above 100 %.
        assert!(tty.update(1003, 1000).is_none());
        assert_eq!(
            ProgressLine::new(false)
                .update(0, 0)
                .map(|l| l.contains("100 %")),
            Some(true)
        );
    }
}
