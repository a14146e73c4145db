//! Running the long external steps (cargo, mkosi, mksquashfs, xorriso): each step shows a
//! spinner with its latest output line when stderr is a terminal, writes everything the
//! command prints to a log file, and on failure reports the log's tail and where the whole
//! log is, so the person reading a CI log knows what broke without rerunning.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// One named step of a build, timed, with a spinner on terminals.
#[derive(Debug)]
pub struct Step {
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Step {
    pub fn start(name: impl Into<String>) -> Step {
        let name = name.into();
        eprintln!("==> {name}");
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("    {spinner} [{elapsed_precise}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Step {
            name,
            started: Instant::now(),
            bar,
        }
    }

    /// Shows `message` next to the spinner (terminals only).
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Prints a line under the step without breaking the spinner.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("    {line}")),
            None => eprintln!("    {line}"),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step and prints how long it took.
    pub fn finish(self) -> Duration {
        let elapsed = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("    {}: done in {:.1} s", self.name, elapsed.as_secs_f64());
        elapsed
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `cmd` with stdout and stderr going to `log`, updating `step`'s spinner with the
/// latest line. A nonzero exit becomes an error carrying the log's last lines.
pub fn logged(cmd: &mut Command, log: &Path, step: &Step) -> Result<()> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating log directory {}", parent.display()))?;
    }
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let file2 = file.try_clone()?;
    let program = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(tail) = tail_lines(log, 1) {
            if let Some(last) = tail.last() {
                step.set_message(last);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if !status.success() {
        let tail = tail_lines(log, 40).unwrap_or_default();
        bail!(
            "{program} failed ({status}). Last lines of {}:\n{}\n(the whole log: {})",
            log.display(),
            tail.iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
            log.display()
        );
    }
    Ok(())
}

/// Runs `cmd` to completion and returns its stdout; a failure includes its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let program = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("{program}: output is not UTF-8"))
}

/// Runs `cmd` with inherited output (for steps a person should watch, like apt-get).
pub fn visible(cmd: &mut Command) -> Result<()> {
    let program = describe(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("{program} failed ({status})");
    }
    Ok(())
}

/// The last `n` lines of a text file (reads at most its last 64 KiB).
pub fn tail_lines(path: &Path, n: usize) -> Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    Ok(lines[lines.len().saturating_sub(n)..].to_vec())
}

/// Finds an executable in PATH, or in the sbin directories a non-root PATH may lack.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `program arg…` for messages, shortened.
fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args().take(3) {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    if cmd.get_args().len() > 3 {
        text.push_str(" …");
    }
    format!("`{text}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_non_empty_lines() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntwo\r\n\nthree\n")?;
        assert_eq!(tail_lines(&path, 2)?, vec!["two", "three"]);
        Ok(())
    }

    #[test]
    fn a_failing_command_reports_its_log() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("fail.log");
        let step = Step::start("failing on purpose");
        let err = logged(
            Command::new("sh").args(["-c", "echo the reason; exit 3"]),
            &log,
            &step,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("the reason"), "{err}");
        assert!(err.contains("fail.log"), "{err}");
        Ok(())
    }
}
