//! The engine's SQLite store: deployed definitions (their XML, so a restart parses exactly
//! what was deployed), one JSON document per instance (tokens, variables, tasks, timers,
//! subscriptions, incidents), the history, and the id counter. One transaction per step.
//!
//! WAL mode with `synchronous=NORMAL` by default: a committed step survives the daemon being
//! killed at any moment (the WAL is written before the commit returns); `FULL` also survives
//! a power cut, at a cost per step.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::engine::{HistoryEntry, Instance};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("workflow store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("workflow store: instance {0} cannot be read back: {1}")]
    Decode(u64, String),
}

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the daemon (SIGKILL, OOM).
    Process,
    /// Survives a crash of the machine too (fsync per step).
    Power,
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// What [`Store::load`] finds.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) definitions: Vec<(String, u32, String, i64)>,
    pub(crate) instances: Vec<Instance>,
    pub(crate) next_id: u64,
    pub(crate) start_timers: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS definitions(
    key TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, xml TEXT NOT NULL,
    deployed_ms INTEGER NOT NULL, PRIMARY KEY(key, version));
CREATE TABLE IF NOT EXISTS instances(
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
    ended_ms INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instances_by_state ON instances(state, ended_ms);
CREATE TABLE IF NOT EXISTS history(
    instance INTEGER NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL,
    activity_id TEXT NOT NULL, activity_name TEXT NOT NULL, event TEXT NOT NULL,
    detail TEXT NOT NULL, PRIMARY KEY(instance, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

impl Store {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, durability)
    }

    /// A store in memory: same code path, nothing on disk (benchmarks).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?, Durability::Process)
    }

    fn init(conn: Connection, durability: Durability) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Process => "NORMAL",
                Durability::Power => "FULL",
            },
        )?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    pub(crate) fn load(&self, keep_finished: usize) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        let mut stmt = self.conn.prepare(
            "SELECT key, version, xml, deployed_ms FROM definitions ORDER BY key, version",
        )?;
        out.definitions = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let rows: Vec<(u64, String)> = self
            .conn
            .prepare(
                "SELECT id, data FROM instances WHERE state = 'active'
                 UNION ALL
                 SELECT * FROM (SELECT id, data FROM instances WHERE state != 'active'
                                ORDER BY ended_ms DESC, id DESC LIMIT ?1)",
            )?
            .query_map([keep_finished as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, data) in rows {
            let inst: Instance =
                serde_json::from_str(&data).map_err(|e| StoreError::Decode(id, e.to_string()))?;
            out.instances.push(inst);
        }
        out.instances.sort_by_key(|i| i.id());
        out.next_id = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'next_id'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        out.start_timers = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'start_timers'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(out)
    }

    pub(crate) fn load_instance(&self, id: u64) -> Result<Option<Instance>, StoreError> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM instances WHERE id = ?1",
                [id as i64],
                |r| r.get(0),
            )
            .optional()?;
        data.map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Decode(id, e.to_string())))
            .transpose()
    }

    pub(crate) fn save_definitions(
        &mut self,
        xml: &str,
        rows: &[(String, u32, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (key, version, name) in rows {
            tx.execute(
                "INSERT OR REPLACE INTO definitions(key, version, name, xml, deployed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, version, name, xml, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes the instances that ended before `cutoff_ms`, and their history; returns how
    /// many.
    pub(crate) fn delete_ended_before(&mut self, cutoff_ms: i64) -> Result<usize, StoreError> {
        const ENDED: &str = "state IN ('completed', 'terminated', 'cancelled') AND ended_ms < ?1";
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!(
                "DELETE FROM history WHERE instance IN (SELECT id FROM instances WHERE {ENDED})"
            ),
            [cutoff_ms],
        )?;
        let deleted = tx.execute(&format!("DELETE FROM instances WHERE {ENDED}"), [cutoff_ms])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Writes one step: the instances it touched, their new history, the id counter.
    pub(crate) fn commit_step(
        &mut self,
        instances: &[&Instance],
        history: &[(u64, HistoryEntry)],
        next_id: u64,
        start_timers: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO instances(id, key, version, state, ended_ms, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for inst in instances {
                let data = serde_json::to_string(inst)
                    .map_err(|e| StoreError::Decode(inst.id(), e.to_string()))?;
                put.execute(params![
                    inst.id() as i64,
                    inst.key(),
                    inst.version(),
                    inst.state_str(),
                    inst.ended_ms(),
                    data
                ])?;
            }
            let mut add = tx.prepare_cached(
                "INSERT OR REPLACE INTO history(instance, seq, time_ms, activity_id, activity_name, event, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (id, h) in history {
                add.execute(params![
                    *id as i64,
                    h.seq as i64,
                    h.time_ms,
                    h.activity_id,
                    h.activity_name,
                    h.event,
                    h.detail
                ])?;
            }
            let mut meta =
                tx.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?;
            meta.execute(params!["next_id", next_id.to_string()])?;
            if let Some(t) = start_timers {
                meta.execute(params!["start_timers", t])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The last `limit` history entries of an instance, oldest first.
    pub(crate) fn history(&self, id: u64, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, time_ms, activity_id, activity_name, event, detail FROM history
             WHERE instance = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let mut rows: Vec<HistoryEntry> = stmt
            .query_map(params![id as i64, limit as i64], |r| {
                Ok(HistoryEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    activity_id: r.get(2)?,
                    activity_name: r.get(3)?,
                    event: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }
}
