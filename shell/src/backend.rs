//! Where translations come from and where commands are recorded: the prompt and psychology
//! daemons on the system bus, or the prompt library in-process (`--offline`). Every bus call
//! has a timeout, so a hung daemon never hangs the shell.

use std::path::Path;
use std::time::Duration;

use steppps::api::prompt::Prompt1Proxy;
use steppps::api::psychology::Psychology1Proxy;
use tokio::runtime::Runtime;

pub use steppps::api::prompt::Suggestion;

const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a translation may take in all. The prompt daemon loads its language model on the
/// first request after boot: a second or two on real hardware, a minute under emulation.
/// Past `CALL_TIMEOUT` qsh says what it waits for, and Ctrl-C stops the wait.
const MODEL_LOAD_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

pub struct Backend {
    prompt: Option<Prompt1Proxy<'static>>,
    psychology: Option<Psychology1Proxy<'static>>,
    offline: Option<steppps_prompt::Prompt>,
}

impl Backend {
    pub fn new(runtime: &Runtime, offline: bool) -> Self {
        let connection = runtime.block_on(async {
            tokio::time::timeout(CONNECT_TIMEOUT, steppps::daemon::connect(None))
                .await
                .ok()
                .and_then(Result::ok)
        });
        let (prompt, psychology) = match &connection {
            Some(c) => runtime.block_on(async {
                let prompt = if offline {
                    None
                } else {
                    Prompt1Proxy::new(c).await.ok()
                };
                (prompt, Psychology1Proxy::new(c).await.ok())
            }),
            None => (None, None),
        };
        let offline =
            offline.then(|| steppps_prompt::Prompt::new(&steppps_prompt::Config::default()));
        Backend {
            prompt,
            psychology,
            offline,
        }
    }

    pub fn describe(&self) -> Option<String> {
        if self.offline.is_some() {
            Some("(model in-process)".into())
        } else if self.prompt.is_some() {
            Some(String::new())
        } else {
            None
        }
    }

    pub fn psychology(&self) -> Option<Psychology1Proxy<'static>> {
        self.psychology.clone()
    }

    /// Suggestions for a request, best first; empty: no suggestion.
    pub fn translate(
        &self,
        runtime: &Runtime,
        text: &str,
        max: u32,
    ) -> Result<Vec<Suggestion>, String> {
        // A NUL (Ctrl-@ in some terminals) cannot travel in a D-Bus string: sent, it would
        // cost qsh its bus connection for the rest of the session.
        let text =
            steppps::error::bus_text(&steppps_prompt::from_bytes(text.as_bytes())).into_owned();
        let cwd = std::env::current_dir().ok();
        if let Some(p) = &self.offline {
            return p
                .translate(&text, max, cwd.as_deref())
                .map(|v| v.into_iter().map(steppps_prompt::bus::to_wire).collect())
                .map_err(|e| match e {
                    steppps::error::Error::InvalidArgument(m)
                    | steppps::error::Error::Failed(m) => m,
                    other => other.to_string(),
                });
        }
        let Some(proxy) = &self.prompt else {
            return Err("no prompt daemon on the bus (steppps-prompt.service); run qsh --offline to use the model in-process".into());
        };
        let cwd = cwd
            .as_deref()
            .map(Path::to_string_lossy)
            .unwrap_or_default()
            .into_owned();
        runtime.block_on(async {
            let call = proxy.translate(&text, &cwd, max);
            tokio::pin!(call);
            if let Ok(answer) = tokio::time::timeout(CALL_TIMEOUT, &mut call).await {
                return answer.map_err(|e| describe(&e));
            }
            eprintln!(
                "qsh: waiting for the prompt daemon (its first request after boot loads the \
                 language model; Ctrl-C stops waiting)…"
            );
            tokio::select! {
                answer = tokio::time::timeout(MODEL_LOAD_TIMEOUT - CALL_TIMEOUT, call) => match answer {
                    Ok(answer) => answer.map_err(|e| describe(&e)),
                    Err(_) => Err(format!(
                        "the prompt daemon did not answer within {} s (systemctl status steppps-prompt)",
                        MODEL_LOAD_TIMEOUT.as_secs()
                    )),
                },
                _ = tokio::signal::ctrl_c() => Err("stopped waiting for the prompt daemon".into()),
            }
        })
    }

    /// Tells the psychology dimension about a command (silently skipped without it).
    pub fn record(&self, runtime: &Runtime, command: &str, status: i32, took: Duration) {
        let Some(p) = &self.psychology else { return };
        if command.contains('\0') {
            return; // not a command any shell ran, and not sendable (see `translate`)
        }
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        runtime.block_on(async {
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                p.record(command, &cwd, status, ms),
            )
            .await;
        });
    }
}

fn describe(e: &zbus::Error) -> String {
    let (_, msg) = steppps::error::describe_remote(e);
    match e {
        zbus::Error::MethodError(name, _, _)
            if name.contains("ServiceUnknown") || name.contains("NameHasNoOwner") =>
        {
            "the prompt daemon is not running; run qsh --offline to use the model in-process".into()
        }
        _ => msg,
    }
}
