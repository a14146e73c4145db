//! One module per command. Each prints its result (a table, or JSON with `--json`) and returns
//! the exit status for success paths; failures travel as [`crate::client::Failure`].

pub mod event;
pub mod pixel;
pub mod prompt;
pub mod psychology;
pub mod quantum;
pub mod restart;
pub mod space;
pub mod status;
pub mod time;
pub mod workflow;

use std::path::Path;

use serde::Serialize;

use crate::client::Failure;

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Other(e.into()))?;
    println!("{text}");
    Ok(())
}

/// Refuses a file whose text a D-Bus string cannot carry: one with a NUL byte, which no
/// JobSpec, circuit, BPMN file or shell history has (a binary file given by mistake).
/// Sent anyway, dbus-daemon would disconnect us and the user would see only "lost the bus".
pub fn refuse_nul(path: &Path, text: &str) -> Result<(), Failure> {
    match text.find('\0') {
        None => Ok(()),
        Some(at) => Err(Failure::Other(anyhow::anyhow!(
            "{}: not a text file (a NUL byte on line {})",
            path.display(),
            text[..at].matches('\n').count() + 1
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_byte_is_refused_with_its_line() {
        let path = Path::new("history");
        assert!(refuse_nul(path, "ls\ncd /tmp\n").is_ok());
        for (text, line) in [("\0", 1), ("ls\n\0x\n", 2), ("a\nb\nc\0", 3)] {
            let err = refuse_nul(path, text).expect_err(text).to_string();
            assert!(
                err.contains(&format!(
                    "history: not a text file (a NUL byte on line {line})"
                )),
                "{text:?}: {err}"
            );
        }
    }
}
