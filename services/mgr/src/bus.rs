//! `org.quantumos.Manager1`: converts calls into manager operations and nothing else.

use std::sync::Arc;

use steppps::Error;
use steppps::api::DIMENSIONS;
use steppps::api::manager::{DimensionEntry, DimensionStatus, SystemStatus};
use steppps::auth::authorize;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::{Manager, restart};

/// polkit action for `Restart`, shipped in `org.quantumos.manager.policy`.
pub const RESTART_ACTION: &str = "org.quantumos.manager.restart";

#[derive(Debug)]
pub struct ManagerInterface {
    manager: Arc<Manager>,
}

impl ManagerInterface {
    pub fn new(manager: Arc<Manager>) -> Self {
        ManagerInterface { manager }
    }
}

#[interface(name = "org.quantumos.Manager1")]
impl ManagerInterface {
    fn list_dimensions(&self) -> Vec<DimensionEntry> {
        DIMENSIONS
            .iter()
            .map(|d| DimensionEntry {
                name: d.name.into(),
                bus_name: d.bus_name.into(),
                object_path: d.path.into(),
                unit: d.unit.into(),
            })
            .collect()
    }

    fn get_status(&self) -> SystemStatus {
        self.manager.registry().status()
    }

    async fn restart(
        &self,
        name: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        let id = restart::resolve(name)?;
        authorize(connection, &header, RESTART_ACTION).await?;
        restart::restart_unit(connection, id).await.map(drop)
    }

    #[zbus(signal)]
    pub async fn dimension_changed(
        emitter: &SignalEmitter<'_>,
        status: DimensionStatus,
    ) -> zbus::Result<()>;
}
