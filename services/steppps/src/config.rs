//! Daemon configuration: defaults compiled in, overridden by `/etc/quantumos/<name>.toml`.
//!
//! A config struct derives `Deserialize` with `#[serde(default, deny_unknown_fields)]`, so a
//! typo is refused with the file, the key and the line named instead of silently ignored.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Where a daemon's configuration file lives unless `--config` says otherwise.
pub const CONFIG_DIR: &str = "/etc/quantumos";

/// Where a daemon keeps state when systemd does not say (`STATE_DIRECTORY=`).
pub const STATE_ROOT: &str = "/var/lib/quantumos";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {message}{location}")]
    Parse {
        path: PathBuf,
        message: String,
        /// ` (line N, column M)` when toml knows where.
        location: String,
    },
}

/// The default configuration path of a daemon: `/etc/quantumos/<name>.toml`.
pub fn default_path(name: &str) -> PathBuf {
    Path::new(CONFIG_DIR).join(format!("{name}.toml"))
}

/// Loads the configuration: `explicit` (from `--config`) must exist; the default path may be
/// missing, which means "all defaults".
pub fn load<T: DeserializeOwned + Default>(
    name: &str,
    explicit: Option<&Path>,
) -> Result<(T, Option<PathBuf>), ConfigError> {
    let path = explicit.map_or_else(|| default_path(name), Path::to_path_buf);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text).map(|c| (c, Some(path))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && explicit.is_none() => {
            Ok((T::default(), None))
        }
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}

/// Parses a configuration text; `path` only names the file in errors.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|span| {
                let (line, column) = line_and_column(text, span.start);
                format!(" (line {line}, column {column})")
            })
            .unwrap_or_default();
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().trim_end().to_string(),
            location,
        }
    })
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// The daemon's state directory: `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`; the
/// first entry when it lists several), else `/var/lib/quantumos/<name>`.
pub fn state_directory(name: &str) -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .and_then(|v| {
            v.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
        })
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new(STATE_ROOT).join(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        retention_days: u32,
        sources: Vec<String>,
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let err = parse::<Sample>(
            Path::new("/etc/quantumos/event.toml"),
            "sources = []\nretension = 4\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("/etc/quantumos/event.toml: "), "{err}");
        assert!(err.contains("unknown field `retension`"), "{err}");
        assert!(
            err.contains("retention_days"),
            "lists the valid keys: {err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse::<Sample>(Path::new("x.toml"), "retention_days = \"long\"").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn missing_default_file_means_defaults_but_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = load::<Sample>("sample", Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");

        let file = dir.path().join("sample.toml");
        fs::write(&file, "retention_days = 7").unwrap();
        let (cfg, from) = load::<Sample>("sample", Some(&file)).unwrap();
        assert_eq!(cfg.retention_days, 7);
        assert_eq!(from.as_deref(), Some(file.as_path()));
    }
}
