//! The workspace being turned into an image: where it is, its version, the commit it was
//! built from (and so SOURCE_DATE_EPOCH), and which binaries go into the image.
//!
//! What to install is read from `cargo metadata`, never listed here: every binary target of a
//! workspace package whose Cargo.toml says
//! `[package.metadata.quantumos] install-dir = "/usr/libexec/quantumos"` goes to that
//! directory, with a symbolic link beside it for each name in `links` (the daemons are one
//! multi-call binary, `services/daemons`, run through links named after them). A new daemon
//! joins the image by joining that binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::run;

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// The workspace version, e.g. `0.1.0`.
    pub version: String,
    /// The HEAD commit, when the workspace is a git checkout.
    pub commit: Option<String>,
    /// Seconds since the epoch of the HEAD commit (or $SOURCE_DATE_EPOCH when set).
    pub source_date_epoch: u64,
    pub installables: Vec<Installable>,
}

/// A binary the image carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installable {
    pub package: String,
    pub binary: String,
    /// Absolute directory in the image, e.g. `/usr/libexec/quantumos`.
    pub install_dir: String,
    /// Names of symbolic links to the binary in the same directory: the names a multi-call
    /// binary answers to.
    pub links: Vec<String>,
}

impl Installable {
    /// The binary's path in the image.
    pub fn image_path(&self) -> String {
        self.path_of(&self.binary)
    }

    /// The paths of its links in the image.
    pub fn link_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.links.iter().map(|link| self.path_of(link))
    }

    /// Whether the image runs a program by this name through this binary.
    pub fn provides(&self, program: &str) -> bool {
        self.binary == program || self.links.iter().any(|link| link == program)
    }

    fn path_of(&self, name: &str) -> String {
        format!("{}/{}", self.install_dir.trim_end_matches('/'), name)
    }
}

impl Workspace {
    /// Finds the workspace containing `dir` and reads its metadata.
    pub fn discover(dir: &Path) -> Result<Workspace> {
        let text = run::output(
            Command::new("cargo")
                .args(["metadata", "--format-version", "1", "--no-deps"])
                .current_dir(dir),
        )
        .context("reading the workspace with `cargo metadata` (is this a QuantumOS checkout?)")?;
        let metadata: Value =
            serde_json::from_str(&text).context("`cargo metadata` printed invalid JSON")?;
        let root = PathBuf::from(
            metadata["workspace_root"]
                .as_str()
                .context("`cargo metadata` has no workspace_root")?,
        );
        let target_dir = PathBuf::from(
            metadata["target_directory"]
                .as_str()
                .context("`cargo metadata` has no target_directory")?,
        );
        if !root.join("recipes/mkosi.conf").is_file() {
            bail!(
                "{} has no recipes/mkosi.conf: run qos-image inside the QuantumOS repository",
                root.display()
            );
        }
        let version = workspace_version(&metadata)?;
        let installables = installables(&metadata)?;
        let commit = run::output(
            Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(&root),
        )
        .ok()
        .map(|s| s.trim().to_string());
        let source_date_epoch = source_date_epoch(&root)?;
        Ok(Workspace {
            root,
            target_dir,
            version,
            commit,
            source_date_epoch,
            installables,
        })
    }

    pub fn recipes(&self) -> PathBuf {
        self.root.join("recipes")
    }

    pub fn out_dir(&self) -> PathBuf {
        self.root.join("out")
    }

    /// `0.1` for version `0.1.0`: the os-release VERSION_ID.
    pub fn version_id(&self) -> String {
        version_id(&self.version)
    }

    /// The ISO 9660 volume label the initrd looks for (`root=live:CDLABEL=…`).
    pub fn iso_label(&self) -> String {
        format!("QUANTUMOS_{}", self.version_id().replace(['.', '-'], "_")).to_uppercase()
    }
}

/// The version of the `qos-image` package, which takes the workspace version.
fn workspace_version(metadata: &Value) -> Result<String> {
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "qos-image")
        .and_then(|p| p["version"].as_str())
        .map(str::to_string)
        .context("`cargo metadata` lists no qos-image package: is image/ a workspace member?")
}

pub fn version_id(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Every binary target of the packages that declare an install directory.
pub fn installables(metadata: &Value) -> Result<Vec<Installable>> {
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or("?");
        let Some(dir) = package["metadata"]["quantumos"].get("install-dir") else {
            continue;
        };
        let dir = dir.as_str().with_context(|| {
            format!("{name}: [package.metadata.quantumos] install-dir must be a string")
        })?;
        if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
            bail!("{name}: install-dir {dir:?} must be an absolute path without `..`");
        }
        // Binaries the build itself runs (a catalog builder, an evaluator) stay out.
        let build_tools: Vec<&str> = package["metadata"]["quantumos"]["build-tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let links = links(name, &package["metadata"]["quantumos"])?;
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bin = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
            if let (true, Some(binary)) = (is_bin, target["name"].as_str())
                && !build_tools.contains(&binary)
            {
                found.push(Installable {
                    package: name.to_string(),
                    binary: binary.to_string(),
                    install_dir: dir.to_string(),
                    links: links.clone(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.binary.cmp(&b.binary));
    Ok(found)
}

/// `[package.metadata.quantumos] links`: plain file names, put beside the binary.
fn links(package: &str, quantumos: &Value) -> Result<Vec<String>> {
    let Some(value) = quantumos.get("links") else {
        return Ok(Vec::new());
    };
    let names = value.as_array().with_context(|| {
        format!("{package}: [package.metadata.quantumos] links must be a list of names")
    })?;
    names
        .iter()
        .map(|name| match name.as_str() {
            Some(n) if !n.is_empty() && n != "." && n != ".." && !n.contains('/') => {
                Ok(n.to_string())
            }
            _ => bail!("{package}: link {name} must be a file name (no `/`)"),
        })
        .collect()
}

/// $SOURCE_DATE_EPOCH if set, else the HEAD commit's time.
fn source_date_epoch(root: &Path) -> Result<u64> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    let text = run::output(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(root),
    )
    .context("reading the HEAD commit time; outside a git checkout set SOURCE_DATE_EPOCH")?;
    text.trim()
        .parse()
        .with_context(|| format!("git printed {text:?} as the commit time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn installables_come_from_package_metadata() -> Result<()> {
        let metadata = json!({"packages": [
            {"name": "steppps-mgr", "metadata": {"quantumos": {"install-dir": "/usr/libexec/quantumos"}},
             "targets": [{"name": "steppps-mgr", "kind": ["bin"]}, {"name": "steppps_mgr", "kind": ["lib"]}]},
            {"name": "steppps", "metadata": null, "targets": [{"name": "steppps", "kind": ["lib"]}]},
            {"name": "qos-ctl", "metadata": {"quantumos": {"install-dir": "/usr/bin"}},
             "targets": [{"name": "qos-ctl", "kind": ["bin"]}]},
            {"name": "steppps-prompt",
             "metadata": {"quantumos": {"install-dir": "/usr/libexec/quantumos", "build-tools": ["catalog-build"]}},
             "targets": [{"name": "steppps-promptd", "kind": ["bin"]}, {"name": "catalog-build", "kind": ["bin"]}]}
        ]});
        let found = installables(&metadata)?;
        assert_eq!(found.len(), 3, "build tools are not installed: {found:?}");
        assert_eq!(found[0].image_path(), "/usr/bin/qos-ctl");
        assert_eq!(found[1].image_path(), "/usr/libexec/quantumos/steppps-mgr");
        assert_eq!(
            found[2].image_path(),
            "/usr/libexec/quantumos/steppps-promptd"
        );
        Ok(())
    }

    #[test]
    fn a_multi_call_binary_brings_its_links() -> Result<()> {
        let metadata = json!({"packages": [
            {"name": "quantumos-daemons",
             "metadata": {"quantumos": {"install-dir": "/usr/libexec/quantumos", "links": ["steppps-spaced", "quantumd"]}},
             "targets": [{"name": "quantumos-daemons", "kind": ["bin"]}]}
        ]});
        let found = installables(&metadata)?;
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].link_paths().collect::<Vec<_>>(),
            [
                "/usr/libexec/quantumos/steppps-spaced",
                "/usr/libexec/quantumos/quantumd"
            ]
        );
        assert!(found[0].provides("quantumd") && found[0].provides("quantumos-daemons"));
        assert!(!found[0].provides("steppps-mgr"));
        Ok(())
    }

    #[test]
    fn a_link_that_is_not_a_file_name_is_refused() {
        for bad in [json!("../../bin/sh"), json!(""), json!(".."), json!(3)] {
            let metadata = json!({"packages": [
                {"name": "bad", "metadata": {"quantumos": {"install-dir": "/usr/libexec/quantumos", "links": [bad]}},
                 "targets": [{"name": "bad", "kind": ["bin"]}]}
            ]});
            let err = installables(&metadata).err().map(|e| e.to_string());
            assert!(
                err.is_some_and(|e| e.contains("file name")),
                "{bad} was taken"
            );
        }
    }

    #[test]
    fn a_relative_install_dir_is_refused() {
        let metadata = json!({"packages": [
            {"name": "bad", "metadata": {"quantumos": {"install-dir": "usr/bin"}},
             "targets": [{"name": "bad", "kind": ["bin"]}]}
        ]});
        let err = installables(&metadata).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("absolute")));
    }

    #[test]
    fn version_id_is_major_dot_minor() {
        assert_eq!(version_id("0.1.0"), "0.1");
        assert_eq!(version_id("2.10.3-rc1"), "2.10");
    }
}
