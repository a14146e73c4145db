//! The command line: every command, option and help text in one place, so `--help`, the man
//! page and the shell completions cannot drift apart.

use crate::commands::event::EventCommand;
use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   success; for `status`, every expected dimension is ready and healthy
  1   the system is degraded, or a daemon refused or failed the request
  2   a daemon could not be reached (bus down, service not running, timeout)
  64  the command line was wrong";

/// Drive the QuantumOS daemons over D-Bus.
///
/// Without a command: `status`. A group without one runs its listing (`qos-ctl event` is
/// `qos-ctl event list`), as systemd's tools do.
#[derive(Debug, Parser)]
#[command(name = "qos-ctl", version, after_long_help = EXIT_STATUS_HELP)]
pub struct Cli {
    /// Print machine-readable JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,

    /// D-Bus address to use instead of the system bus
    #[arg(
        long,
        global = true,
        value_name = "ADDRESS",
        env = "DBUS_SYSTEM_BUS_ADDRESS"
    )]
    pub bus: Option<String>,

    /// Seconds to wait for a daemon's answer [default: 10; 120 for `prompt`, whose first
    /// request after boot loads the language model; 600 for `event verify`, which reads the
    /// whole chain]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `--timeout`, or the command's default.
    pub fn timeout(&self) -> f64 {
        self.timeout.unwrap_or(match self.command {
            // Loading all-MiniLM-L6-v2 and the catalog takes seconds on hardware and minutes
            // under emulation; later requests take milliseconds.
            Some(Command::Prompt(_)) => 120.0,
            // A pass over every record and seal: its time grows with the chain (over 10 s
            // for 7,400 records in a booted image under TCG), and the daemon answers other
            // calls meanwhile.
            Some(Command::Event {
                command: Some(EventCommand::Verify { .. }),
            }) => 600.0,
            _ => 10.0,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every dimension: state, health, version, pid (exit status 1 when degraded)
    Status,
    /// List the dimensions the manager knows and where they live on the bus
    Dimensions,
    /// Show the hardware and resource inventory (the space dimension)
    Space {
        /// One part of the inventory [default: a summary of all]
        #[arg(value_enum)]
        view: Option<SpaceView>,
    },
    /// Timers, process classes and quantum-or-classical decisions (the time dimension)
    ///
    /// Without a command: `timers`.
    Time {
        #[command(subcommand)]
        command: Option<crate::commands::time::TimeCommand>,
    },
    /// What the system learned from your commands: stats, predictions, forgetting (the psychology dimension)
    ///
    /// Without a command: `stats`.
    Psychology {
        #[command(subcommand)]
        command: Option<crate::commands::psychology::PsychologyCommand>,
    },
    /// Displays, brightness, ambient light and display power policy (the pixel dimension)
    ///
    /// Without a command: `outputs`.
    Pixel {
        #[command(subcommand)]
        command: Option<crate::commands::pixel::PixelCommand>,
    },
    /// Events, the audit chain and its verification (the event dimension)
    ///
    /// Without a command: `list`.
    Event {
        #[command(subcommand)]
        command: Option<crate::commands::event::EventCommand>,
    },
    /// Natural language to shell commands, and what a command does (the prompt dimension)
    #[command(subcommand)]
    Prompt(crate::commands::prompt::PromptCommand),
    /// BPMN workflows: deploy, start, list, show, cancel, user tasks, incidents (the script dimension)
    ///
    /// Without a command: `list`.
    Workflow {
        #[command(subcommand)]
        command: Option<crate::commands::workflow::WorkflowCommand>,
    },
    /// Restart a dimension's unit through systemd (needs root or polkit authorization)
    Restart {
        /// The dimension, by its short name
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(steppps::api::dimension_names()))]
        dimension: String,
    },
    /// Quantum jobs, devices and circuits (quantumd): `job`, `device`, `circuit`
    #[command(flatten)]
    Quantum(crate::commands::quantum::QuantumCommand),
    /// Write the man pages or shell completions (for packagers)
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpaceView {
    /// OS, kernel, hostname, uptime
    Os,
    /// CPU model, cores, frequency, flags, load
    Cpu,
    /// Memory and swap
    Memory,
    /// File systems and block devices
    #[value(alias = "storage")]
    Disks,
    /// Network interfaces and addresses
    #[value(alias = "network")]
    Net,
    /// PCI and USB devices
    Devices,
    /// Temperatures
    Thermal,
    /// Batteries and power supplies
    Power,
    /// Pressure stall information (CPU, memory, I/O)
    Pressure,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// The man pages, in roff: qos-ctl(1) to standard output, or with --dir one page per
    /// command (qos-ctl.1, qos-ctl-job.1, qos-ctl-job-submit.1, …) into a directory
    Man {
        /// Write every page into this directory (created if missing) instead
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Completions for a shell
    Completions {
        /// The shell to write them for
        shell: Shell,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(args: &[&str]) -> f64 {
        let cli = Cli::try_parse_from(std::iter::once("qos-ctl").chain(args.iter().copied()));
        cli.map(|c| c.timeout()).unwrap_or(f64::NAN)
    }

    #[test]
    fn space_views_take_the_words_people_use() {
        let view = |word: &str| match Cli::try_parse_from(["qos-ctl", "space", word]) {
            Ok(Cli {
                command: Some(Command::Space { view }),
                ..
            }) => view,
            _ => None,
        };
        assert!(matches!(view("storage"), Some(SpaceView::Disks)));
        assert!(matches!(view("disks"), Some(SpaceView::Disks)));
        assert!(matches!(view("network"), Some(SpaceView::Net)));
        assert!(view("warp").is_none());
    }

    #[test]
    fn prompt_waits_for_the_model_to_load_unless_told_otherwise() {
        assert_eq!(timeout(&["status"]), 10.0);
        assert_eq!(timeout(&["prompt", "translate", "list files"]), 120.0);
        assert_eq!(
            timeout(&["--timeout", "5", "prompt", "translate", "x"]),
            5.0
        );
        assert_eq!(
            timeout(&["prompt", "translate", "x", "--timeout", "2.5"]),
            2.5
        );
        assert_eq!(timeout(&["--timeout", "30", "status"]), 30.0);
        assert_eq!(timeout(&["event", "verify"]), 600.0);
        assert_eq!(timeout(&["event", "list"]), 10.0);
    }
}

#[cfg(test)]
mod man_page_tests {
    use super::*;
    use clap::CommandFactory;

    /// Each command's man page (`qos-ctl generate man --dir`) lists its arguments with their
    /// help text: an argument without one shows as a bare `<FILE>` there and in `--help`.
    #[test]
    fn every_argument_says_what_it_is() {
        fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if !arg.is_hide_set() && arg.get_help().is_none() {
                    out.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut missing = Vec::new();
        undocumented(&cli, "qos-ctl", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
