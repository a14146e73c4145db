//! Restarting a dimension: through systemd's own D-Bus API (`RestartUnit`), never by killing
//! processes behind its back, so its journal, limits and dependencies stay right.

use steppps::Error;
use steppps::api::DimensionId;
use steppps::api::systemd::{Systemd1ManagerProxy, systemd_booted};
use tracing::info;
use zbus::Connection;

/// Finds a dimension by the name a user typed, or says which names exist.
pub fn resolve(name: &str) -> Result<&'static DimensionId, Error> {
    steppps::api::find_dimension(name).ok_or_else(|| {
        Error::invalid_argument(format!(
            "unknown dimension `{name}`; known: {}",
            steppps::api::dimension_names().join(", ")
        ))
    })
}

/// Asks systemd to restart the dimension's unit and returns the job's object path.
pub async fn restart_unit(connection: &Connection, id: &DimensionId) -> Result<String, Error> {
    if !systemd_booted() {
        return Err(Error::not_supported(format!(
            "cannot restart {}: this system does not run systemd as PID 1; restart {} by hand",
            id.name, id.binary
        )));
    }
    let systemd = Systemd1ManagerProxy::new(connection).await?;
    match systemd.restart_unit(id.unit, "replace").await {
        Ok(job) => {
            info!("restarting {} ({job})", id.unit);
            Ok(job.to_string())
        }
        Err(zbus::Error::MethodError(name, message, _))
            if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            Err(Error::not_found(format!(
                "{} is not installed on this system ({})",
                id.unit,
                message.unwrap_or_default()
            )))
        }
        Err(e) => Err(Error::failed(format!(
            "systemd could not restart {}: {e}",
            id.unit
        ))),
    }
}
