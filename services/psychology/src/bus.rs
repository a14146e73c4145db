//! `org.quantumos.Psychology1`: finds out who is calling (the uid the bus vouches for), calls
//! [`Psychology`] for that user, and maps errors. Nothing else.

use std::sync::Arc;

use steppps::Error;
use steppps::api::psychology::{Context, HistoryEntry, HistoryPage, Stats, Suggestion};
use steppps::auth::{authorize, caller_uid};
use zbus::message::Header;
use zbus::{Connection, interface};

use crate::Psychology;

/// polkit action for reading another user's history (`Export` of a uid not the caller's),
/// shipped in `org.quantumos.psychology.policy`.
pub const INSPECT_ACTION: &str = "org.quantumos.psychology.inspect";

#[derive(Debug)]
pub struct PsychologyInterface {
    psychology: Arc<Psychology>,
}

impl PsychologyInterface {
    pub fn new(psychology: Arc<Psychology>) -> Self {
        PsychologyInterface { psychology }
    }
}

fn map(e: crate::Error) -> Error {
    match e {
        crate::Error::InvalidArgument(m) => Error::invalid_argument(m),
        crate::Error::Storage(e) => Error::failed(format!("history database: {e}")),
    }
}

#[interface(name = "org.quantumos.Psychology1")]
impl PsychologyInterface {
    async fn record(
        &self,
        command: &str,
        cwd: &str,
        exit_status: i32,
        duration_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology
            .record(uid, command, cwd, exit_status, duration_ms)
            .map_err(map)
    }

    async fn predict(
        &self,
        context: Context,
        k: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<Suggestion>, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.predict(uid, &context, k).map_err(map)
    }

    async fn complete(
        &self,
        prefix: &str,
        k: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<Suggestion>, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.complete(uid, prefix, k).map_err(map)
    }

    async fn stats(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Stats, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.stats(uid).map_err(map)
    }

    /// A user reads their own history; another user's needs root or polkit.
    async fn export(
        &self,
        uid: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<HistoryEntry>, Error> {
        may_read_history_of(uid, connection, &header).await?;
        self.psychology.export(uid).map_err(map)
    }

    async fn export_page(
        &self,
        uid: u32,
        after: u64,
        limit: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<HistoryPage, Error> {
        may_read_history_of(uid, connection, &header).await?;
        self.psychology.export_page(uid, after, limit).map_err(map)
    }

    async fn forget(
        &self,
        pattern: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u64, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.forget(uid, pattern).map_err(map)
    }

    async fn erase_all(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u64, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.erase_all(uid).map_err(map)
    }

    async fn import_history(
        &self,
        lines: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<u64, Error> {
        let uid = caller_uid(connection, &header).await?;
        self.psychology.import_history(uid, &lines).map_err(map)
    }
}

/// A user reads their own history; another user's needs root or polkit.
async fn may_read_history_of(
    uid: u32,
    connection: &Connection,
    header: &Header<'_>,
) -> Result<(), Error> {
    let caller = caller_uid(connection, header).await?;
    if caller == uid {
        return Ok(());
    }
    authorize(connection, header, INSPECT_ACTION)
        .await
        .map_err(|e| match e {
            Error::PermissionDenied(why) => Error::permission_denied(format!(
                "uid {caller} may not read the history of uid {uid}: {why}"
            )),
            other => other,
        })
}
