//! `qos-ctl prompt …`: natural language to shell commands, and what a command does.

use clap::Subcommand;
use steppps::api::PROMPT;
use steppps::api::prompt::Prompt1Proxy;

use super::print_json;
use crate::client::{Client, Failure};

#[derive(Debug, Subcommand)]
pub enum PromptCommand {
    /// Propose shell commands for a request in plain words (nothing is run)
    Translate {
        /// The request, e.g. "show the five biggest files here"
        text: String,
        /// How many suggestions (1–20)
        #[arg(short = 'n', long = "max", default_value_t = 3)]
        max: u32,
    },
    /// Explain what a command line does, and its risk
    Explain {
        /// The command line, as one argument: qos-ctl prompt explain "tar -xzf a.tgz"
        command: String,
    },
    /// Load the model and the catalog again (needs root or polkit authorization)
    Reload,
}

pub async fn run(client: &Client, command: &PromptCommand, json: bool) -> Result<u8, Failure> {
    let prompt = client
        .call(&PROMPT, Prompt1Proxy::new(&client.connection))
        .await?;
    match command {
        PromptCommand::Translate { text, max } => {
            let cwd = std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            let found = client
                .call(&PROMPT, prompt.translate(text, &cwd, *max))
                .await?;
            if json {
                print_json(&found)?;
            } else if found.is_empty() {
                println!(
                    "no suggestion: the request is not close enough to anything in the catalog"
                );
                return Ok(3);
            } else {
                for (i, s) in found.iter().enumerate() {
                    println!("{}. {}", i + 1, s.command);
                    println!(
                        "   {} [{}, confidence {:.2}]",
                        s.explanation, s.risk, s.confidence
                    );
                    if s.missing > 0 {
                        println!("   (fill in the <placeholders> before running)");
                    }
                }
            }
        }
        PromptCommand::Explain { command } => {
            let e = client.call(&PROMPT, prompt.explain(command)).await?;
            if json {
                print_json(&e)?;
            } else {
                println!("risk: {}", e.risk);
                for (part, what) in &e.parts {
                    println!("{part}\n    {what}");
                }
            }
        }
        PromptCommand::Reload => {
            client.call(&PROMPT, prompt.reload()).await?;
            if json {
                print_json(&serde_json::json!({ "reloaded": true }))?;
            } else {
                println!("reloaded");
            }
        }
    }
    Ok(0)
}
