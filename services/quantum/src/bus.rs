//! `org.quantumos.Quantum1`: converts calls into [`Quantum`] operations and scheduler events
//! into `JobUpdated` signals. Nothing else.

use std::collections::HashMap;
use std::sync::Arc;

use steppps::api::QUANTUM;
use steppps::api::quantum::{CompileResult, DeviceInfo, DeviceStatus, JobResults, JobStatus};
use steppps::auth::authorize;
use steppps::error::Error;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::warn;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::Quantum;
use crate::scheduler::{JobEvent, SchedError};

#[derive(Debug)]
pub struct QuantumInterface {
    quantum: Arc<Quantum>,
}

impl QuantumInterface {
    pub fn new(quantum: Arc<Quantum>) -> Self {
        QuantumInterface { quantum }
    }
}

fn map(e: SchedError) -> Error {
    match e {
        SchedError::Invalid(m) => Error::invalid_argument(m),
        SchedError::NotFound(m) => Error::not_found(m),
        SchedError::Busy(m) => Error::Busy(m),
        SchedError::Failed(m) => Error::failed(m),
    }
}

/// Runs blocking scheduler work (SQLite, compilation) off the event loop.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SchedError> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::failed(format!("internal error: {e}")))?
        .map_err(map)
}

#[interface(name = "org.quantumos.Quantum1")]
impl QuantumInterface {
    async fn submit_job(
        &self,
        spec: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<String>, Error> {
        authorize(connection, &header, "org.quantumos.quantum.submit").await?;
        let q = self.quantum.clone();
        blocking(move || q.scheduler.submit(&spec)).await
    }

    async fn get_job_status(&self, id: String) -> Result<JobStatus, Error> {
        self.quantum.scheduler.status(&id).map_err(map)
    }

    async fn cancel_job(
        &self,
        id: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), Error> {
        authorize(connection, &header, "org.quantumos.quantum.cancel").await?;
        let q = self.quantum.clone();
        blocking(move || q.scheduler.cancel(&id)).await.map(|_| ())
    }

    async fn get_job_results(&self, id: String) -> Result<JobResults, Error> {
        let q = self.quantum.clone();
        blocking(move || q.scheduler.results(&id)).await
    }

    async fn list_jobs(&self, state: String, limit: u32) -> Vec<JobStatus> {
        self.quantum.scheduler.list(&state, limit)
    }

    async fn list_devices(&self) -> Vec<DeviceInfo> {
        self.quantum.scheduler.devices()
    }

    async fn get_device_details(&self, name: String) -> Result<DeviceInfo, Error> {
        self.quantum.scheduler.device(&name).map_err(map)
    }

    async fn get_device_status(&self, name: String) -> Result<DeviceStatus, Error> {
        self.quantum.scheduler.device_status(&name).map_err(map)
    }

    async fn reserve_device(
        &self,
        name: String,
        seconds: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<String, Error> {
        authorize(connection, &header, "org.quantumos.quantum.reserve").await?;
        self.quantum.scheduler.reserve(&name, seconds).map_err(map)
    }

    async fn compile_circuit(
        &self,
        source: String,
        format: String,
        options: HashMap<String, String>,
    ) -> Result<CompileResult, Error> {
        let q = self.quantum.clone();
        blocking(move || q.compile(&source, &format, &options)).await
    }

    async fn validate_circuit(
        &self,
        source: String,
        format: String,
    ) -> Result<(bool, String, u32, u32), Error> {
        let q = self.quantum.clone();
        blocking(move || q.validate(&source, &format)).await
    }

    async fn optimize_circuit(
        &self,
        source: String,
        format: String,
    ) -> Result<CompileResult, Error> {
        let q = self.quantum.clone();
        blocking(move || q.optimize(&source, &format)).await
    }

    #[zbus(signal)]
    async fn job_updated(
        emitter: &SignalEmitter<'_>,
        id: &str,
        state: &str,
        message: &str,
    ) -> zbus::Result<()>;
}

/// Turns scheduler events into `JobUpdated` signals.
pub async fn emit_updates(connection: Connection, mut events: UnboundedReceiver<JobEvent>) {
    let emitter = match SignalEmitter::new(&connection, QUANTUM.path) {
        Ok(e) => e,
        Err(e) => {
            warn!("cannot emit signals: {e}");
            return;
        }
    };
    while let Some(e) = events.recv().await {
        if let Err(err) = QuantumInterface::job_updated(&emitter, &e.id, &e.state, &e.message).await
        {
            warn!("cannot emit JobUpdated for {}: {err}", e.id);
        }
    }
}
