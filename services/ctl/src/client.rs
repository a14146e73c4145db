//! Talking to the daemons: one connection, a timeout on every call, and errors sorted into
//! what the exit status means (the daemon said no, or the daemon is not there).

use std::future::Future;
use std::time::Duration;

use steppps::api::DimensionId;
use zbus::Connection;

/// What went wrong, and so which exit status to use.
#[derive(Debug)]
pub enum Failure {
    /// The daemon answered with an error (exit 1).
    Refused {
        name: Option<String>,
        message: String,
    },
    /// The bus or the daemon could not be reached (exit 2).
    Unreachable(String),
    /// Anything on our side (exit 1).
    Other(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused { .. } | Failure::Other(_) => 1,
            Failure::Unreachable(_) => 2,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused {
                name: Some(name),
                message,
            } => write!(f, "{message} ({name})"),
            Failure::Refused {
                name: None,
                message,
            } => f.write_str(message),
            Failure::Unreachable(message) => f.write_str(message),
            Failure::Other(e) => f.write_str(&causes(e)),
        }
    }
}

/// An error and its causes, `: `-joined as anyhow's `{:#}` does, without a cause whose text
/// the message already ends with: zbus puts its I/O error into its own message and also
/// gives it as the source, which printed "No such file or directory (os error 2)" twice.
fn causes(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

pub struct Client {
    pub connection: Connection,
    timeout: Duration,
}

impl Client {
    pub async fn connect(bus: Option<&str>, timeout_secs: f64) -> Result<Client, Failure> {
        let timeout = Duration::try_from_secs_f64(timeout_secs).map_err(|_| {
            Failure::Other(anyhow::anyhow!(
                "--timeout must be a positive number of seconds"
            ))
        })?;
        let connection = steppps::daemon::connect(bus)
            .await
            .map_err(|e| Failure::Unreachable(causes(&e)))?;
        Ok(Client {
            connection,
            timeout,
        })
    }

    /// Runs one call against `target`, with the timeout, classifying its error.
    pub async fn call<T>(
        &self,
        target: &DimensionId,
        call: impl Future<Output = zbus::Result<T>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(target, e)),
            Err(_) => Err(Failure::Unreachable(format!(
                "{} did not answer within {:?}; is {} hung? (systemctl status {})",
                target.bus_name, self.timeout, target.binary, target.unit
            ))),
        }
    }
}

fn classify(target: &DimensionId, e: zbus::Error) -> Failure {
    let not_running = || {
        Failure::Unreachable(format!(
            "{} is not running ({} not on the bus); start it with `systemctl start {}`",
            target.binary, target.bus_name, target.unit
        ))
    };
    match &e {
        zbus::Error::FDO(fdo) => match **fdo {
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                not_running()
            }
            zbus::fdo::Error::NoReply(_) | zbus::fdo::Error::Timeout(_) => {
                Failure::Unreachable(format!("{} did not answer: {fdo}", target.bus_name))
            }
            _ => Failure::Refused {
                name: None,
                message: fdo.to_string(),
            },
        },
        zbus::Error::MethodError(name, _, _)
            if matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
            ) =>
        {
            not_running()
        }
        zbus::Error::MethodError(..) => {
            let (name, message) = steppps::error::describe_remote(&e);
            Failure::Refused { name, message }
        }
        zbus::Error::InputOutput(_) => Failure::Unreachable(format!("lost the bus: {e}")),
        _ => Failure::Other(anyhow::anyhow!("{}: {e}", target.bus_name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_ends_with_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let repeated = anyhow::Error::new(zbus::Error::InputOutput(io.into()))
            .context("cannot connect to the bus at `unix:path=/nowhere`");
        let text = causes(&repeated);
        assert_eq!(text.matches("entity not found").count(), 1, "{text}");
        assert!(text.starts_with("cannot connect to the bus at `unix:path=/nowhere`: "));

        let distinct = anyhow::anyhow!("disk full").context("cannot save the chain");
        assert_eq!(causes(&distinct), "cannot save the chain: disk full");
    }
}
