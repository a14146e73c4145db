//! `quantumos-daemons`: every QuantumOS daemon in one binary, run as the daemon its link is
//! named after (`/usr/libexec/quantumos/steppps-spaced` → `quantumos-daemons`), the way
//! busybox runs its applets. `quantumos-daemons steppps-spaced --help` works too.
//!
//! Why one binary and not nine: the daemons share most of their code (tokio, zbus, serde,
//! the steppps library). As nine binaries, each carried its own copy, read from the image
//! and translated by an emulator (or faulted into the page cache) nine times at boot. As one,
//! the shared pages are read and kept once for all of them (docs/benchmarks.md, "Boot").
//! Each daemon still runs as its own process, in its own unit and sandbox.
//!
//! No `#[global_allocator]`: the daemons run on glibc's allocator, as their own binaries do
//! (steppps-eventd's reasons are in docs/benchmarks.md, event section).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use steppps::api;

/// A daemon's entry point: its command line, with its name first.
type DaemonMain = fn(Vec<OsString>) -> ExitCode;

/// Each daemon by the name of its own binary, which is the name of its link in the image
/// (and `links` in Cargo.toml's `[package.metadata.quantumos]`).
const DAEMONS: [(&str, DaemonMain); 9] = [
    (api::MANAGER.binary, steppps_mgr::main),
    (api::SPACE.binary, steppps_space::main),
    (api::TIME.binary, steppps_time::main),
    (api::EVENT.binary, steppps_event::main),
    (api::PSYCHOLOGY.binary, steppps_psychology::main),
    (api::PIXEL.binary, steppps_pixel::main),
    (api::PROMPT.binary, steppps_prompt::main),
    (api::SCRIPT.binary, steppps_script::main),
    (api::QUANTUM.binary, quantumd::main),
];

const NAME: &str = "quantumos-daemons";

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .map(|a| Path::new(a).file_name().unwrap_or(a).to_os_string())
        .unwrap_or_default();
    if let Some(main) = daemon(&invoked) {
        return main(args);
    }
    if invoked != NAME {
        // A link by a name this binary does not know (a typo, a renamed unit).
        eprintln!(
            "{NAME}: run as {:?}, which is none of its daemons\n\n{}",
            invoked.to_string_lossy(),
            usage()
        );
        return ExitCode::from(2);
    }
    // Run by its own name: the daemon is the first argument.
    if let Some(main) = args.get(1).and_then(|name| daemon(name)) {
        args.remove(0);
        return main(args);
    }
    match args.get(1).map(OsString::as_os_str) {
        Some(flag) if flag == "--list" => {
            for (name, _) in DAEMONS {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Some(flag) if flag == "--help" || flag == "-h" => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        Some(flag) if flag == "--version" || flag == "-V" => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "{NAME}: no daemon is called {:?}\n\n{}",
                other.to_string_lossy(),
                usage()
            );
            ExitCode::from(2)
        }
        None => {
            eprintln!("{NAME}: which daemon?\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}

fn daemon(name: &OsStr) -> Option<DaemonMain> {
    DAEMONS
        .iter()
        .find(|(daemon, _)| OsStr::new(daemon) == name)
        .map(|(_, main)| *main)
}

fn usage() -> String {
    let names: Vec<&str> = DAEMONS.iter().map(|(name, _)| *name).collect();
    format!(
        "Every QuantumOS daemon in one binary. Run through a link named after a daemon, or as\n\
         \n    {NAME} DAEMON [ARGS…]    (e.g. {NAME} steppps-spaced --help)\n\
         \nDaemons: {}\n\
         \nOptions:\n  --list       print the daemons' names, one per line\n  -h, --help   print this help\n  -V, --version",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image links exactly the names this binary answers to (qos-image reads `links`).
    #[test]
    fn the_image_links_every_daemon_and_nothing_else() {
        let manifest: toml::Table =
            toml::from_str(include_str!("../Cargo.toml")).expect("Cargo.toml parses");
        let links: Vec<&str> = manifest["package"]["metadata"]["quantumos"]["links"]
            .as_array()
            .expect("links is a list")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let names: Vec<&str> = DAEMONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(links, names);
    }

    /// Every unit in the recipes that runs a daemon from /usr/libexec/quantumos runs one of
    /// these names, so no unit is left pointing at a binary the image no longer has.
    #[test]
    fn every_daemon_unit_runs_a_link_of_this_binary() {
        let units = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../recipes/quantumos/usr/lib/systemd/system");
        let mut checked = 0;
        for entry in std::fs::read_dir(&units).expect("the recipes' units") {
            let path = entry.expect("a unit").path();
            let text = std::fs::read_to_string(&path).expect("unit text");
            for line in text.lines() {
                let Some(command) = line.strip_prefix("ExecStart=") else {
                    continue;
                };
                let program = command.split_whitespace().next().unwrap_or("");
                let Some(name) = program.strip_prefix("/usr/libexec/quantumos/") else {
                    continue;
                };
                assert!(
                    daemon(OsStr::new(name)).is_some(),
                    "{} runs {program}, which quantumos-daemons does not provide",
                    path.display()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, DAEMONS.len(), "one unit per daemon");
    }

    /// The manager and every dimension it supervises are here.
    #[test]
    fn every_supervised_dimension_and_the_manager_are_here() {
        for dimension in api::DIMENSIONS.iter().chain([&api::MANAGER]) {
            assert!(
                daemon(OsStr::new(dimension.binary)).is_some(),
                "{} is missing",
                dimension.binary
            );
        }
    }

    #[test]
    fn names_that_are_not_daemons_are_refused() {
        assert!(daemon(OsStr::new("steppps-spaced")).is_some());
        assert!(daemon(OsStr::new("quantumos-daemons")).is_none());
        assert!(daemon(OsStr::new("sh")).is_none());
        assert!(daemon(OsStr::new("")).is_none());
    }
}
