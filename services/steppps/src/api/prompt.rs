//! `org.quantumos.Prompt1`: natural language to shell commands, offline. Every call is
//! independent of the caller; request texts are not logged unless the administrator turns it
//! on in `/etc/quantumos/prompt.toml`.

use serde::{Deserialize, Serialize};
use zbus::{Type, proxy};

/// One proposed command, best first in a `Translate` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Suggestion {
    /// The command line, every value from the request shell-quoted.
    pub command: String,
    /// What it does, in words.
    pub explanation: String,
    /// read-only | network | changes-files | privileged | destructive
    pub risk: String,
    /// Similarity of the request and the catalog intent, 0…1.
    pub confidence: f64,
    /// The catalog intent (`files.biggest`, `tldr.find.2`).
    pub intent: String,
    /// Placeholders (`<path>`) the request did not fill; non-zero means: edit before running.
    pub missing: u32,
}

/// What a command line does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Explanation {
    /// The worst risk class of its simple commands.
    pub risk: String,
    /// (simple command, what it does), in order.
    pub parts: Vec<(String, String)>,
}

/// The proxy for `org.quantumos.Prompt1`.
#[proxy(
    interface = "org.quantumos.Prompt1",
    default_service = "org.quantumos.Prompt1",
    default_path = "/org/quantumos/Prompt1"
)]
pub trait Prompt1 {
    /// At most `max` (1…20) suggestions for `text`; empty when nothing is confident enough.
    /// `cwd` (may be empty) lets names of existing files count as paths.
    fn translate(&self, text: &str, cwd: &str, max: u32) -> zbus::Result<Vec<Suggestion>>;
    /// What `command` does, from the catalog and the manual pages.
    fn explain(&self, command: &str) -> zbus::Result<Explanation>;
    /// Loads the model and the catalog again from disk. Needs root or
    /// `org.quantumos.prompt.reload`.
    fn reload(&self) -> zbus::Result<()>;
}
