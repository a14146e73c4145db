//! The errors every QuantumOS daemon returns over D-Bus, as `org.quantumos.Error.<Kind>`.
//!
//! The message is for a person: it says what was wrong and, where it can, what to do
//! ("unknown dimension `spaec`; known: space, time, …").

use zbus::DBusError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.quantumos.Error")]
pub enum Error {
    /// A transport error from zbus itself (maps to its own D-Bus error name).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller passed something malformed or out of range.
    InvalidArgument(String),
    /// The named thing (dimension, job, timer…) does not exist.
    NotFound(String),
    /// The caller is not allowed to do this (polkit said no, or not root without polkit).
    PermissionDenied(String),
    /// The request conflicts with work in progress; try again later.
    Busy(String),
    /// This system cannot do it (e.g. systemd is not PID 1).
    NotSupported(String),
    /// It was allowed and well-formed but did not work.
    Failed(String),
}

impl From<zbus::fdo::Error> for Error {
    fn from(e: zbus::fdo::Error) -> Self {
        Error::ZBus(zbus::Error::FDO(Box::new(e)))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn permission_denied(msg: impl Into<String>) -> Self {
        Error::PermissionDenied(msg.into())
    }
    pub fn not_supported(msg: impl Into<String>) -> Self {
        Error::NotSupported(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }
}

/// The D-Bus error name and message of an error a client received, for `qos-ctl` to show.
pub fn describe_remote(err: &zbus::Error) -> (Option<String>, String) {
    match err {
        zbus::Error::MethodError(name, msg, _) => {
            (Some(name.to_string()), msg.clone().unwrap_or_default())
        }
        zbus::Error::FDO(fdo) => (None, fdo.to_string()),
        other => (None, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_quantumos_names() {
        let e = Error::invalid_argument("unknown dimension `x`");
        assert_eq!(e.name().as_str(), "org.quantumos.Error.InvalidArgument");
        assert_eq!(e.description(), Some("unknown dimension `x`"));
        assert_eq!(
            Error::not_supported("no systemd").name().as_str(),
            "org.quantumos.Error.NotSupported"
        );
    }
}
