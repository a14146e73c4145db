//! The job table in SQLite (WAL mode): every accepted job is a row before SubmitJob answers,
//! and every state change is committed before it is announced, so a SIGKILL loses nothing
//! that was acknowledged. On open, jobs that were RUNNING go back to QUEUED, unless quantumd
//! already stopped during one of their runs before: a job that takes the daemon down (an
//! abort, the OOM killer) would otherwise take it down again at every start.

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

/// Runs of one job that quantumd may lose (stopped or killed while it ran) before the job is
/// failed instead of being run again.
pub const MAX_INTERRUPTED_RUNS: i64 = 2;

/// The message of a job failed because quantumd kept stopping while it ran.
pub const GIVEN_UP: &str = "quantumd stopped twice while running this job (a crash, a kill \
    or running out of memory: see journalctl -u quantumd); it is not run again";

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
    compiled TEXT NOT NULL,
    interrupted_runs INTEGER NOT NULL DEFAULT 0
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
        // Job tables from before interrupted_runs existed.
        let has_column: bool = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'interrupted_runs'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_column {
            conn.execute_batch(
                "ALTER TABLE jobs ADD COLUMN interrupted_runs INTEGER NOT NULL DEFAULT 0",
            )?;
        }
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

    /// Deletes jobs (finished ones the scheduler forgets), in one transaction.
    pub fn delete(&mut self, ids: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id])?;
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

    /// Every job, oldest first. Jobs whose run was cut (RUNNING or COMPILING when quantumd
    /// stopped) go back to QUEUED, or to ERROR once [`MAX_INTERRUPTED_RUNS`] runs were cut.
    pub fn load(&self) -> Result<Vec<StoredJob>> {
        const CUT: &str = "state IN ('RUNNING', 'COMPILING')";
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            &format!("UPDATE jobs SET interrupted_runs = interrupted_runs + 1 WHERE {CUT}"),
            [],
        )?;
        tx.execute(
            &format!(
                "UPDATE jobs SET state = 'ERROR', message = ?1 WHERE {CUT} AND interrupted_runs >= ?2"
            ),
            params![GIVEN_UP, MAX_INTERRUPTED_RUNS],
        )?;
        tx.execute(
            &format!(
                "UPDATE jobs SET state = 'QUEUED', message = 'requeued: quantumd restarted during its run' WHERE {CUT}"
            ),
            [],
        )?;
        tx.commit()?;
        // A finished job is only its status to the scheduler: its program and circuit (up to
        // 8 MiB each) are not read.
        let mut stmt = self.conn.prepare(
            "SELECT seq, id, name, kind, state, priority, device, submitted_ms, updated_ms, message, depends_on,
                    CASE WHEN state IN ('DONE', 'ERROR', 'CANCELLED') THEN '' ELSE spec END,
                    CASE WHEN state IN ('DONE', 'ERROR', 'CANCELLED') THEN '' ELSE compiled END
             FROM jobs ORDER BY seq",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(seq: u64, state: &str) -> StoredJob {
        StoredJob {
            seq,
            status: JobStatus {
                id: format!("job-{seq}"),
                name: format!("j{seq}"),
                kind: "circuit".into(),
                state: state.into(),
                device: "sim-statevector".into(),
                ..JobStatus::default()
            },
            spec: "{}".into(),
            compiled: String::new(),
        }
    }

    fn state_of(store: &Store, id: &str) -> (String, String) {
        let row = store
            .load()
            .unwrap()
            .into_iter()
            .find(|j| j.status.id == id)
            .unwrap();
        (row.status.state, row.status.message)
    }

    #[test]
    fn a_cut_run_is_retried_once_then_the_job_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite");
        let mut store = Store::open(&path).unwrap();
        store
            .insert(&[job(1, "RUNNING"), job(2, "QUEUED"), job(3, "DONE")])
            .unwrap();
        drop(store);

        // quantumd stopped during job 1's run: it runs again.
        let store = Store::open(&path).unwrap();
        let loaded = store.load().unwrap();
        let states: Vec<&str> = loaded.iter().map(|j| j.status.state.as_str()).collect();
        assert_eq!(states, ["QUEUED", "QUEUED", "DONE"]);
        assert!(loaded[0].status.message.contains("requeued"));

        // It was running again when quantumd stopped a second time: it fails, with why.
        store.set_state("job-1", "RUNNING", "", 5).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let (state, message) = state_of(&store, "job-1");
        assert_eq!(state, "ERROR");
        assert_eq!(message, GIVEN_UP);
        // The others are untouched, and loading again changes nothing.
        assert_eq!(state_of(&store, "job-2").0, "QUEUED");
        assert_eq!(state_of(&store, "job-1").0, "ERROR");
    }

    #[test]
    fn a_job_table_from_before_the_count_gains_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sqlite");
        let old_schema = SCHEMA.replace(",\n    interrupted_runs INTEGER NOT NULL DEFAULT 0", "");
        assert!(!old_schema.contains("interrupted_runs"));
        Connection::open(&path)
            .unwrap()
            .execute_batch(&old_schema)
            .unwrap();
        let mut store = Store::open(&path).unwrap();
        store.insert(&[job(1, "RUNNING")]).unwrap();
        assert_eq!(state_of(&store, "job-1").0, "QUEUED");
        drop(store);
        // Opening an up-to-date table again does not try to add the column twice.
        let store = Store::open(&path).unwrap();
        assert_eq!(state_of(&store, "job-1").0, "QUEUED");
    }
}
