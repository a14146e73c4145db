//! The job table in SQLite (WAL mode): every accepted job is a row before SubmitJob answers,
//! and every state change is committed before it is announced, so a SIGKILL loses nothing
//! that was acknowledged. On open, jobs that were RUNNING go back to QUEUED.

use std::path::Path;

use rusqlite::{Connection, params};
use steppps::api::quantum::JobStatus;

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub seq: u64,
    pub status: JobStatus,
    /// The JobSpec as JSON.
    pub spec: String,
    /// The compiled circuit as AQO (empty for variational jobs).
    pub compiled: String,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    device TEXT NOT NULL,
    submitted_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    spec TEXT NOT NULL,
    compiled TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
";

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        // WAL + synchronous=NORMAL: a committed transaction survives a process kill; only a
        // power loss may drop the last few.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    /// Inserts jobs in one transaction.
    pub fn insert(&mut self, jobs: &[StoredJob]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO jobs (seq, id, name, kind, state, priority, device, submitted_ms, updated_ms, message, depends_on, spec, compiled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for j in jobs {
                let s = &j.status;
                stmt.execute(params![
                    j.seq as i64,
                    s.id,
                    s.name,
                    s.kind,
                    s.state,
                    s.priority,
                    s.device,
                    s.submitted_ms as i64,
                    s.updated_ms as i64,
                    s.message,
                    s.depends_on.join(","),
                    j.spec,
                    j.compiled
                ])?;
            }
        }
        tx.commit()
    }

    /// Records a state change.
    pub fn set_state(&self, id: &str, state: &str, message: &str, updated_ms: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE jobs SET state = ?2, message = ?3, updated_ms = ?4 WHERE id = ?1",
            )?
            .execute(params![id, state, message, updated_ms as i64])?;
        Ok(())
    }

    /// Every job, oldest first, with RUNNING ones put back to QUEUED (their run was cut).
    pub fn load(&self) -> Result<Vec<StoredJob>> {
        self.conn.execute(
            "UPDATE jobs SET state = 'QUEUED', message = 'requeued: quantumd restarted during its run' WHERE state IN ('RUNNING', 'COMPILING')",
            [],
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT seq, id, name, kind, state, priority, device, submitted_ms, updated_ms, message, depends_on, spec, compiled FROM jobs ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            let deps: String = r.get(10)?;
            Ok(StoredJob {
                seq: r.get::<_, i64>(0)? as u64,
                status: JobStatus {
                    id: r.get(1)?,
                    name: r.get(2)?,
                    kind: r.get(3)?,
                    state: r.get(4)?,
                    priority: r.get(5)?,
                    device: r.get(6)?,
                    submitted_ms: r.get::<_, i64>(7)? as u64,
                    updated_ms: r.get::<_, i64>(8)? as u64,
                    message: r.get(9)?,
                    depends_on: deps
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                },
                spec: r.get(11)?,
                compiled: r.get(12)?,
            })
        })?;
        rows.collect()
    }
}
