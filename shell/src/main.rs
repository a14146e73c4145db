//! qsh, the QuantumOS smart shell. Ordinary command lines run through the system shell with
//! the user's environment; a request in words (detected, or forced with a leading `?`) becomes
//! a proposed command with its explanation and a coloured risk badge, run only after the user
//! confirms. Translation comes from the prompt dimension (org.quantumos.Prompt1), or from the
//! model in-process with `--offline`; each command and its exit status goes to the psychology
//! dimension when it is there. Without the daemons, qsh is a plain shell.

mod backend;
mod complete;
mod nl;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use reedline::{
    ColumnarMenu, DefaultHinter, DefaultPrompt, DefaultPromptSegment, EditCommand, Emacs,
    FileBackedHistory, KeyCode, KeyModifiers, MenuBuilder, Reedline, ReedlineEvent, ReedlineMenu,
    Signal, default_emacs_keybindings,
};

use backend::{Backend, Suggestion};
use nl::Line;

/// qsh: a shell that also understands requests in plain words.
#[derive(Debug, Parser)]
#[command(version, disable_help_flag = false)]
struct Args {
    /// Run TEXT (a command line, or a request in words: asks before running) and exit
    #[arg(short = 'c', value_name = "TEXT")]
    command: Option<String>,
    /// Print the best command for a request in words and exit (nothing is run)
    #[arg(long, value_name = "TEXT")]
    suggest: Option<String>,
    /// Translate with the model in-process instead of the prompt daemon
    #[arg(long)]
    offline: bool,
    /// Accepted for compatibility with login(1) and sshd; qsh is interactive when its input is
    /// a terminal
    #[arg(short = 'l', long = "login")]
    login: bool,
    /// Accepted for compatibility: read commands from standard input
    #[arg(short = 's', hide = true)]
    stdin: bool,
    /// Accepted for compatibility: interactive
    #[arg(short = 'i', hide = true)]
    interactive: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One worker thread keeps the bus connection alive while the line editor blocks.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qsh: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    // Ctrl-C while a command runs interrupts the command, not qsh: qsh handles SIGINT (the
    // child gets the default action back at exec) and the terminal sends it to both.
    let _sigint = {
        let _g = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    };
    let _sigquit = {
        let _g = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::quit()).ok()
    };
    let backend = Backend::new(&runtime, args.offline);

    if let Some(text) = &args.suggest {
        return match backend.translate(&runtime, text, 1) {
            Ok(found) => match found.first() {
                Some(s) => {
                    println!("{}", s.command);
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("qsh: no suggestion for this request");
                    ExitCode::from(3)
                }
            },
            Err(e) => {
                eprintln!("qsh: {e}");
                ExitCode::from(2)
            }
        };
    }
    let mut shell = Shell {
        runtime,
        backend,
        last_status: 0,
        editor: None,
    };
    if let Some(text) = &args.command {
        let status = shell.handle(text);
        return ExitCode::from(status as u8);
    }
    if !std::io::stdin().is_terminal() {
        // A script on standard input: each line as a command.
        let mut status = 0;
        for line in std::io::stdin().lines().map_while(Result::ok) {
            status = shell.handle(&line);
        }
        return ExitCode::from(status as u8);
    }
    let _ = args.login || args.stdin || args.interactive;
    shell.interactive();
    ExitCode::from(shell.last_status as u8)
}

struct Shell {
    runtime: tokio::runtime::Runtime,
    backend: Backend,
    last_status: i32,
    editor: Option<Reedline>,
}

const RESET: &str = "\x1b[0m";

fn badge(risk: &str) -> String {
    let colour = match risk {
        "read-only" => "\x1b[30;42m",
        "network" => "\x1b[30;46m",
        "changes-files" => "\x1b[30;43m",
        "privileged" => "\x1b[97;45m",
        _ => "\x1b[97;41m",
    };
    if std::io::stdout().is_terminal() {
        format!("{colour} {risk} {RESET}")
    } else {
        format!("[{risk}]")
    }
}

fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let dir = base.join("qsh");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

impl Shell {
    fn interactive(&mut self) {
        let mut keybindings = default_emacs_keybindings();
        keybindings.add_binding(
            KeyModifiers::NONE,
            KeyCode::Tab,
            ReedlineEvent::UntilFound(vec![
                ReedlineEvent::Menu("completion_menu".to_string()),
                ReedlineEvent::MenuNext,
            ]),
        );
        let completer =
            complete::ShellCompleter::new(self.backend.psychology(), self.runtime.handle().clone());
        let mut editor = Reedline::create()
            .with_completer(Box::new(completer))
            .with_menu(ReedlineMenu::EngineCompleter(Box::new(
                ColumnarMenu::default().with_name("completion_menu"),
            )))
            .with_hinter(Box::new(DefaultHinter::default()))
            .with_edit_mode(Box::new(Emacs::new(keybindings)));
        if let Some(path) = history_path()
            && let Ok(h) = FileBackedHistory::with_file(10_000, path)
        {
            editor = editor.with_history(Box::new(h));
        }
        self.editor = Some(editor);
        if self.backend.describe().is_some() {
            println!(
                "qsh: type commands, or ask in words (start with ? to force it). {}",
                self.backend.describe().unwrap_or_default()
            );
        }
        loop {
            let prompt = DefaultPrompt::new(
                DefaultPromptSegment::WorkingDirectory,
                DefaultPromptSegment::Empty,
            );
            let Some(editor) = self.editor.as_mut() else {
                break;
            };
            match editor.read_line(&prompt) {
                Ok(Signal::Success(line)) => {
                    self.handle(&line);
                }
                Ok(Signal::CtrlC) => continue,
                Ok(Signal::CtrlD) => break,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("qsh: terminal error: {e}");
                    break;
                }
            }
        }
    }

    /// Handles one line; returns its exit status.
    fn handle(&mut self, line: &str) -> i32 {
        let status = match nl::classify(line, complete::is_runnable) {
            Line::Empty => return self.last_status,
            Line::Command(c) => self.run(&c),
            Line::Request(r) => self.request(&r),
        };
        self.last_status = status;
        status
    }

    fn request(&mut self, text: &str) -> i32 {
        let found = match self.backend.translate(&self.runtime, text, 3) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("qsh: {e}");
                return 127;
            }
        };
        let Some(best) = found.first().cloned() else {
            println!(
                "qsh: no suggestion: I do not know a command for that. Try other words, or `man -k WORD`."
            );
            return 1;
        };
        show(&best);
        for other in found.iter().skip(1) {
            println!("    also: {}  {}", other.command, badge(&other.risk));
        }
        let strong = best.risk == "destructive" || best.risk == "privileged";
        let question = if strong {
            "Run it? This one needs an explicit \"yes\" [yes/N/e]: "
        } else {
            "Run it? [y/N/e]: "
        };
        let answer = self.ask(question);
        let answer = answer.trim().to_lowercase();
        match answer.as_str() {
            "yes" => self.run(&best.command),
            "y" if !strong => self.run(&best.command),
            "e" | "edit" => match self.edit(&best.command) {
                Some(edited) if !edited.trim().is_empty() => self.run(&edited),
                _ => 1,
            },
            "y" => {
                println!("qsh: not run: type \"yes\" for a {} command", best.risk);
                1
            }
            _ => {
                println!("qsh: not run");
                1
            }
        }
    }

    fn ask(&mut self, question: &str) -> String {
        print!("{question}");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return String::new();
        }
        answer
    }

    fn edit(&mut self, command: &str) -> Option<String> {
        let editor = self.editor.as_mut()?;
        editor.run_edit_commands(&[
            EditCommand::Clear,
            EditCommand::InsertString(command.to_string()),
        ]);
        let prompt = DefaultPrompt::new(
            DefaultPromptSegment::Basic("edit".into()),
            DefaultPromptSegment::Empty,
        );
        match editor.read_line(&prompt) {
            Ok(Signal::Success(line)) => Some(line),
            _ => None,
        }
    }

    /// Runs a command line through the system shell; `cd`, `exit` and `export` act on qsh.
    fn run(&mut self, line: &str) -> i32 {
        let words = shell_words_split(line);
        match words.first().map(String::as_str) {
            Some("exit") if words.len() <= 2 => {
                let code = words
                    .get(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(self.last_status);
                std::process::exit(code);
            }
            Some("cd") if words.len() <= 2 => return cd(words.get(1).map(String::as_str)),
            Some("export") if words.len() >= 2 && words[1..].iter().all(|w| w.contains('=')) => {
                for w in &words[1..] {
                    if let Some((k, v)) = w.split_once('=') {
                        set_env(k, v);
                    }
                }
                return 0;
            }
            _ => {}
        }
        let shell = if std::path::Path::new("/bin/bash").exists() {
            "/bin/bash"
        } else {
            "/bin/sh"
        };
        let start = Instant::now();
        let status = match std::process::Command::new(shell)
            .arg("-c")
            .arg(line)
            .status()
        {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(c), _) => c,
                    (None, Some(sig)) => {
                        if sig == 2 {
                            println!();
                        }
                        128 + sig
                    }
                    _ => 1,
                }
            }
            Err(e) => {
                eprintln!("qsh: cannot run {shell}: {e}");
                127
            }
        };
        self.backend
            .record(&self.runtime, line, status, start.elapsed());
        status
    }
}

fn show(s: &Suggestion) {
    println!("  \x1b[1m{}\x1b[0m", s.command);
    println!(
        "  {}  {}  (confidence {:.2})",
        badge(&s.risk),
        s.explanation,
        s.confidence
    );
    if s.missing > 0 {
        println!("  fill in the <placeholders> first: answer e to edit");
    }
}

fn shell_words_split(line: &str) -> Vec<String> {
    // A line the builtins cannot parse goes to the system shell, which reports the error.
    shell_words::split(line).unwrap_or_else(|_| vec![String::from(":")])
}

fn cd(dir: Option<&str>) -> i32 {
    let target = match dir {
        None | Some("~") => std::env::var_os("HOME").map(PathBuf::from),
        Some("-") => std::env::var_os("OLDPWD").map(PathBuf::from),
        Some(d) => match d.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(rest)),
            None => Some(PathBuf::from(d)),
        },
    };
    let Some(target) = target else {
        eprintln!("qsh: cd: HOME not set");
        return 1;
    };
    let old = std::env::current_dir().ok();
    match std::env::set_current_dir(&target) {
        Ok(()) => {
            if let Some(old) = old {
                set_env("OLDPWD", &old.to_string_lossy());
            }
            if let Ok(now) = std::env::current_dir() {
                set_env("PWD", &now.to_string_lossy());
            }
            0
        }
        Err(e) => {
            eprintln!("qsh: cd: {}: {e}", target.display());
            1
        }
    }
}

/// Changes qsh's own environment (inherited by the commands it runs).
fn set_env(key: &str, value: &str) {
    if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: the only other thread is the runtime's worker, which runs bus I/O and never
    // reads the environment; POSIX shells change their environment the same way.
    unsafe {
        std::env::set_var(key, value)
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The manual page the image installs (shell/man/qsh.1) names every option `qsh --help`
    /// shows, so the two cannot drift apart unnoticed.
    #[test]
    fn the_man_page_documents_every_visible_option() {
        let page = include_str!("../man/qsh.1");
        let command = super::Args::command();
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(page.contains(&roff), "qsh.1 does not document --{long}");
            }
            if let Some(short) = arg.get_short() {
                let roff = format!("\\-{short}");
                assert!(page.contains(&roff), "qsh.1 does not document -{short}");
            }
        }
    }
}
