//! The errors every QuantumOS daemon returns over D-Bus, as `org.quantumos.Error.<Kind>`.
//!
//! The message is for a person: it says what was wrong and, where it can, what to do
//! ("unknown dimension `spaec`; known: space, time, …").

use std::borrow::Cow;

use zbus::DBusError;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;

#[derive(Debug)]
pub enum Error {
    /// A transport error from zbus itself (sent as `org.freedesktop.zbus.Error`).
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

/// What zbus's derive names its own transport errors; kept so clients see the same name.
const ZBUS_ERROR: &str = "org.freedesktop.zbus.Error";

/// Our error kinds, for the way back from a name (a client's `zbus::Error`).
const KINDS: [fn(String) -> Error; 6] = [
    Error::InvalidArgument,
    Error::NotFound,
    Error::PermissionDenied,
    Error::Busy,
    Error::NotSupported,
    Error::Failed,
];

impl Error {
    /// The D-Bus error name and the message, for every kind but zbus's own.
    fn kind(&self) -> Option<(&'static str, &str)> {
        let (name, message) = match self {
            Error::ZBus(_) => return None,
            Error::InvalidArgument(m) => ("org.quantumos.Error.InvalidArgument", m),
            Error::NotFound(m) => ("org.quantumos.Error.NotFound", m),
            Error::PermissionDenied(m) => ("org.quantumos.Error.PermissionDenied", m),
            Error::Busy(m) => ("org.quantumos.Error.Busy", m),
            Error::NotSupported(m) => ("org.quantumos.Error.NotSupported", m),
            Error::Failed(m) => ("org.quantumos.Error.Failed", m),
        };
        Some((name, message.as_str()))
    }
}

// Written out rather than derived for one reason: the message goes through [`bus_text`].
// Messages quote what the caller sent, and a NUL decoded from an escape in it (`"\0"` in
// YAML, `\u0000` in JSON) would make dbus-daemon drop the daemon from the bus.
impl DBusError for Error {
    fn name(&self) -> ErrorName<'_> {
        ErrorName::from_static_str_unchecked(self.kind().map_or(ZBUS_ERROR, |(name, _)| name))
    }

    fn description(&self) -> Option<&str> {
        match self {
            Error::ZBus(e) => e.description(),
            _ => self.kind().map(|(_, message)| message),
        }
    }

    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        let message = match self {
            // A callee's message as it was; anything else as zbus words it in full.
            Error::ZBus(zbus::Error::MethodError(_, Some(desc), _)) => desc.clone(),
            Error::ZBus(e) => e.to_string(),
            _ => self.description().unwrap_or_default().to_string(),
        };
        Message::error(call, self.name()).build(&(message_text(&message).as_ref(),))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let description = self.description().unwrap_or("no description");
        write!(f, "{}: {description}", self.name())
    }
}

impl std::error::Error for Error {}

/// A failed call to another service becomes our error of the same kind, with its message
/// (a dimension that forwards a call passes the callee's answer on).
impl From<zbus::Error> for Error {
    fn from(e: zbus::Error) -> Self {
        let (name, message) = match &e {
            zbus::Error::MethodError(name, message, _) => (name.as_str(), message.as_deref()),
            _ => return Error::ZBus(e),
        };
        let message = message.unwrap_or_default().to_string();
        match KINDS.iter().find(|kind| kind(String::new()).name() == name) {
            Some(kind) => kind(message),
            None => Error::ZBus(e),
        }
    }
}

impl From<zbus::fdo::Error> for Error {
    fn from(e: zbus::fdo::Error) -> Self {
        Error::ZBus(zbus::Error::FDO(Box::new(e)))
    }
}

/// `text` as a D-Bus string may carry it: NUL, the one character Rust strings allow and D-Bus
/// strings do not, becomes U+FFFD, as in a lossy decoding. dbus-daemon disconnects a peer
/// that sends a string with a NUL in it, so whatever a daemon sends that it decoded from
/// outside (an escape in the caller's YAML or JSON, bytes from the journal) goes through here.
pub fn bus_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The longest message an error reply carries. A message is for a person: one that quotes a
/// caller's input in full (a token of a multi-megabyte file) is cut here, so no error reply
/// comes near the bus's 32 MiB limit however large what it quotes.
pub const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// `text` as a message for a person over the bus: [`bus_text`], and at most
/// [`MAX_MESSAGE_BYTES`], cut at a character boundary with how much was left out.
pub fn message_text(text: &str) -> Cow<'_, str> {
    match bus_text(text) {
        Cow::Borrowed(text) => cut_text(text, MAX_MESSAGE_BYTES),
        Cow::Owned(text) => Cow::Owned(cut_text(&text, MAX_MESSAGE_BYTES).into_owned()),
    }
}

/// `text` cut to at most `max` bytes at a character boundary, saying how much was left out.
pub fn cut_text(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes)",
        &text[..end],
        text.len() - end
    ))
}

/// A value from the caller, quoted in a message: at most 64 characters, with control
/// characters (a NUL too) escaped, so that the message says which value without repeating
/// all of it.
pub fn quote(value: &str) -> String {
    const SHOWN: usize = 64;
    let mut out = String::new();
    for c in value.chars().take(SHOWN) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if value.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    format!("`{out}`")
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

    fn call() -> Message {
        Message::method_call("/org/quantumos/Test1", "Run")
            .build(&())
            .expect("a method call")
    }

    #[test]
    fn a_reply_never_carries_a_nul() {
        let call = call();
        let reply = Error::invalid_argument("name `x\0y` is not valid")
            .create_reply(&call.header())
            .expect("a reply");
        let text: String = reply.body().deserialize().expect("a string");
        assert_eq!(text, "name `x\u{FFFD}y` is not valid");
        assert_eq!(
            reply.header().error_name().map(|n| n.as_str()),
            Some("org.quantumos.Error.InvalidArgument")
        );
        assert_eq!(bus_text("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn a_long_message_is_cut_and_says_so() {
        let token = "é".repeat(1 << 20);
        let reply = Error::invalid_argument(format!("unknown gate `{token}`"))
            .create_reply(&call().header())
            .expect("a reply");
        let text: String = reply.body().deserialize().expect("a string");
        assert!(text.len() < MAX_MESSAGE_BYTES + 64, "{} bytes", text.len());
        assert!(text.starts_with("unknown gate `éé"));
        assert!(
            text.ends_with(" more bytes)"),
            "{}",
            &text[text.len() - 40..]
        );
        assert_eq!(message_text("short"), Cow::Borrowed("short"));
    }

    #[test]
    fn a_quoted_value_is_short_and_printable() {
        assert_eq!(quote("cx"), "`cx`");
        assert_eq!(quote("a\0b"), "`a\\0b`");
        assert_eq!(quote("it's \"x\""), "`it's \"x\"`");
        let long = quote(&"a".repeat(1000));
        assert_eq!(long, format!("`{}…`", "a".repeat(64)));
    }

    #[test]
    fn a_callee_error_keeps_its_kind_and_message() {
        for kind in KINDS {
            let name = kind(String::new()).name().to_string();
            let remote = zbus::Error::MethodError(
                ErrorName::try_from(name.as_str())
                    .expect("a valid name")
                    .into(),
                Some("the message".into()),
                call(),
            );
            let ours = Error::from(remote);
            assert_eq!(ours.name().as_str(), name);
            assert_eq!(ours.description(), Some("the message"));
        }
        let foreign = zbus::Error::MethodError(
            ErrorName::from_static_str_unchecked("org.freedesktop.DBus.Error.ServiceUnknown")
                .into(),
            Some("no such name".into()),
            call(),
        );
        let ours = Error::from(foreign);
        assert_eq!(ours.name().as_str(), ZBUS_ERROR);
        let reply = ours.create_reply(&call().header()).expect("a reply");
        let text: String = reply.body().deserialize().expect("a string");
        assert_eq!(text, "no such name");
    }
}
