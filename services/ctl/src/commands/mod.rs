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

use serde::Serialize;

use crate::client::Failure;

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Other(e.into()))?;
    println!("{text}");
    Ok(())
}
