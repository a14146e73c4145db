//! Authorization of state-changing calls: reading is open to everyone; changing state needs
//! root, or a polkit action (`org.quantumos.<dimension>.<verb>`) the caller is granted.
//!
//! Like systemd's daemons, a caller with uid 0 is allowed without asking polkit. Any other
//! caller is asked about through `org.freedesktop.PolicyKit1.Authority.CheckAuthorization`
//! (which may prompt an agent for a password). When polkit is not running, only root is allowed.

use std::collections::HashMap;

use tracing::debug;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::{Connection, Variant};

use crate::api::polkit::{ALLOW_USER_INTERACTION, AuthorityProxy};
use crate::error::Error;

/// Checks that the sender of the message `header` belongs to may perform `action`.
pub async fn authorize(
    connection: &Connection,
    header: &Header<'_>,
    action: &str,
) -> Result<(), Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::permission_denied("the call has no sender; refusing"))?;
    let uid = caller_uid(connection, header).await?;
    if uid == 0 {
        return Ok(());
    }

    let authority = AuthorityProxy::new(connection).await?;
    let subject = (
        "system-bus-name",
        HashMap::from([("name", Variant::from(sender.as_str()))]),
    );
    match authority
        .check_authorization(&subject, action, HashMap::new(), ALLOW_USER_INTERACTION, "")
        .await
    {
        Ok((true, _, _)) => Ok(()),
        Ok((false, challenge, _)) => Err(Error::permission_denied(if challenge {
            format!(
                "{action}: authentication is required (run it with an authentication agent, or as root)"
            )
        } else {
            format!("{action}: not authorized for uid {uid} (polkit)")
        })),
        Err(e) if polkit_absent(&e) => {
            debug!("polkit unavailable ({e}); only root may {action}");
            Err(Error::permission_denied(format!(
                "{action} needs root: polkit is not running, so only uid 0 is allowed (you are uid {uid})"
            )))
        }
        Err(e) => Err(Error::failed(format!(
            "cannot ask polkit about {action}: {e}"
        ))),
    }
}

/// The uid of the process that sent the message `header` belongs to, as the bus daemon
/// vouches for it (`GetConnectionUnixUser`): what per-user daemons key their data on.
pub async fn caller_uid(connection: &Connection, header: &Header<'_>) -> Result<u32, Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::permission_denied("the call has no sender; refusing"))?;
    let dbus = zbus::fdo::DBusProxy::new(connection).await?;
    Ok(dbus
        .get_connection_unix_user(BusName::Unique(sender.clone()))
        .await?)
}

fn polkit_absent(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(fdo) => matches!(
            **fdo,
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
        ),
        zbus::Error::MethodError(name, _, _) => {
            matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
            )
        }
        _ => false,
    }
}
