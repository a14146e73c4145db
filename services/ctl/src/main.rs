//! qos-ctl: the QuantumOS command line. Parses the command, connects to the bus, runs one
//! command and turns its outcome into an exit status scripts can use (see `--help`).

mod cli;
mod client;
mod commands;
mod table;
mod when;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, Generate};
use crate::client::{Client, Failure};

/// sysexits' EX_USAGE: the command line was wrong. (clap's own default, 2, would collide
/// with "daemon unreachable".)
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `qos-ctl event tail | head` panicked on the first write after
    // head left. With the default action it ends as coreutils do. The bus connection is not
    // affected: zbus sends with MSG_NOSIGNAL.
    sigpipe::reset();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    if let Some(Command::Generate { what }) = &cli.command {
        return generate(what);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qos-ctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("qos-ctl: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: &Cli) -> Result<u8, Failure> {
    if let Some(Command::Event {
        command: Some(command),
    }) = &cli.command
        && let Some(offline) = commands::event::run_offline(command, cli.json)
    {
        return offline;
    }
    let client = Client::connect(cli.bus.as_deref(), cli.timeout()).await?;
    // Without a command qos-ctl shows the status, and a group without one (`qos-ctl time`)
    // its listing (the group's Default), as systemd's tools do.
    let Some(command) = &cli.command else {
        return commands::status::status(&client, cli.json).await;
    };
    match command {
        Command::Status => commands::status::status(&client, cli.json).await,
        Command::Dimensions => commands::status::dimensions(&client, cli.json).await,
        Command::Space { view } => commands::space::space(&client, *view, cli.json).await,
        Command::Restart { dimension } => {
            commands::restart::restart(&client, dimension, cli.json).await
        }
        Command::Time { command } => {
            commands::time::run(&client, &command.clone().unwrap_or_default(), cli.json).await
        }
        Command::Psychology { command } => {
            let command = command.clone().unwrap_or_default();
            commands::psychology::run(&client, &command, cli.json).await
        }
        Command::Pixel { command } => {
            commands::pixel::run(&client, &command.clone().unwrap_or_default(), cli.json).await
        }
        Command::Event { command } => {
            commands::event::run(&client, &command.clone().unwrap_or_default(), cli.json).await
        }
        Command::Prompt(command) => commands::prompt::run(&client, command, cli.json).await,
        Command::Workflow { command } => {
            let command = command.clone().unwrap_or_default();
            commands::workflow::run(&client, &command, cli.json).await
        }
        Command::Quantum(command) => commands::quantum::run(&client, command, cli.json).await,
        Command::Generate { .. } => Ok(0),
    }
}

fn generate(what: &Generate) -> ExitCode {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    let result = match what {
        Generate::Man { dir: None } => man_page(man_pages_root(command)).render(&mut out),
        Generate::Man { dir: Some(dir) } => write_man_pages(command, dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        Generate::Completions { shell } => {
            clap_complete::generate(*shell, &mut command, "qos-ctl", &mut out);
            Ok(())
        }
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qos-ctl: cannot write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command tree as the man pages show it. qos-ctl(1) names a page for each command
/// ("qos-ctl-job(1)", and qos-ctl-job(1) "qos-ctl-job-submit(1)"); clap's `help` command
/// gets none, so it is left out of the lists. Building propagates the global options
/// (`--json`, `--bus`, `--timeout`) into every command's page.
fn man_pages_root(command: clap::Command) -> clap::Command {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    command
}

/// One command's page. The footer names the program and version for every page (clap_mangen
/// would put the subcommand's bare name there: "submit") and the date: SOURCE_DATE_EPOCH's
/// when the build sets it, so two builds write the same pages, else today's.
fn man_page(command: clap::Command) -> clap_mangen::Man {
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|epoch| chrono::DateTime::from_timestamp(epoch, 0))
        .unwrap_or_else(chrono::Utc::now);
    clap_mangen::Man::new(command)
        .date(date.format("%Y-%m-%d").to_string())
        .source(concat!("QuantumOS ", env!("CARGO_PKG_VERSION")))
        .manual("User Commands")
}

/// qos-ctl.1 and a page for every command below it, into `dir`.
fn write_man_pages(command: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    fn write(command: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            write(sub, dir)?;
        }
        man_page(command.clone()).generate_to(dir).map(drop)
    }
    std::fs::create_dir_all(dir)?;
    write(&man_pages_root(command), dir)
}
