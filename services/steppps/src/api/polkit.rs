//! The part of polkit's `org.freedesktop.PolicyKit1.Authority` we use.

use std::collections::HashMap;

use zbus::{Variant, proxy};

/// `(kind, details)`: for a D-Bus caller, `("system-bus-name", {"name": ":1.42"})`.
pub type Subject<'a> = (&'a str, HashMap<&'a str, Variant<'a>>);

/// `(is_authorized, is_challenge, details)`.
pub type AuthorizationResult = (bool, bool, HashMap<String, String>);

/// `CheckAuthorization` flag: let polkit ask the user for a password.
pub const ALLOW_USER_INTERACTION: u32 = 1;

#[proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
pub trait Authority {
    fn check_authorization(
        &self,
        subject: &Subject<'_>,
        action_id: &str,
        details: HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<AuthorizationResult>;

    #[zbus(property)]
    fn backend_name(&self) -> zbus::Result<String>;
}
