//! `org.quantumos.Prompt1`: converts calls into [`Prompt`] operations and results into wire
//! types. Model work runs on the blocking pool so the bus keeps answering while a request is
//! embedded. Request texts are not logged unless `log_requests` is set.

use std::path::PathBuf;
use std::sync::Arc;

use steppps::api::prompt::{Explanation, Suggestion};
use steppps::auth::authorize;
use steppps::error::Error;
use tracing::{debug, info};
use zbus::message::Header;
use zbus::{Connection, interface};

use crate::Prompt;

/// polkit action for `Reload`.
pub const RELOAD: &str = "org.quantumos.prompt.reload";

#[derive(Debug)]
pub struct PromptInterface {
    prompt: Arc<Prompt>,
    log_requests: bool,
}

impl PromptInterface {
    pub fn new(prompt: Arc<Prompt>, log_requests: bool) -> Self {
        Self {
            prompt,
            log_requests,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Prompt) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let prompt = self.prompt.clone();
        tokio::task::spawn_blocking(move || f(&prompt))
            .await
            .map_err(|e| Error::failed(format!("internal error: {e}")))?
    }
}

pub fn to_wire(s: crate::Suggestion) -> Suggestion {
    Suggestion {
        command: s.command,
        explanation: s.explanation,
        risk: s.risk.as_str().to_string(),
        confidence: s.confidence,
        intent: s.intent,
        missing: s.missing,
    }
}

#[interface(name = "org.quantumos.Prompt1")]
impl PromptInterface {
    async fn translate(
        &self,
        text: String,
        cwd: String,
        max: u32,
    ) -> Result<Vec<Suggestion>, Error> {
        if self.log_requests {
            info!(request = %text, "translate");
        } else {
            debug!(bytes = text.len(), "translate");
        }
        let cwd = (!cwd.is_empty())
            .then(|| PathBuf::from(cwd))
            .filter(|p| p.is_absolute());
        let out = self
            .blocking(move |p| p.translate(&text, max, cwd.as_deref()))
            .await?;
        Ok(out.into_iter().map(to_wire).collect())
    }

    async fn explain(&self, command: String) -> Result<Explanation, Error> {
        let e = self.blocking(move |p| p.explain(&command)).await?;
        Ok(Explanation {
            risk: e.risk.as_str().to_string(),
            parts: e.parts,
        })
    }

    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        authorize(connection, &header, RELOAD).await?;
        self.blocking(|p| p.reload()).await?;
        info!("model and catalog reloaded");
        Ok(())
    }
}
