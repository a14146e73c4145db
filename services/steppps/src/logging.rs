//! Logging with `tracing`: to the journal when the daemon runs under systemd (structured, with
//! `DIMENSION=` on every entry), to stderr otherwise. `QOS_LOG` sets the filter
//! (`debug`, `steppps=trace,info`), `info` by default.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Sets the global subscriber. `dimension` is the daemon's short name.
pub fn init(dimension: &str) {
    let filter = EnvFilter::try_from_env("QOS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // JOURNAL_STREAM is set by systemd when stderr goes to the journal: then log natively so
    // fields and priorities survive. Elsewhere (a terminal, a test) plain stderr is better.
    let journal = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten()
        .map(|layer| {
            layer
                .with_syslog_identifier(dimension.to_string())
                .with_custom_fields([("DIMENSION", dimension)])
        });
    let registry = tracing_subscriber::registry().with(filter);
    let result = match journal {
        Some(layer) => registry.with(layer).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
