//! The durable history: one SQLite database (WAL, `synchronous=FULL`) with every recorded
//! command of every user, keyed by uid. Each change is one transaction, committed before the
//! call returns, so a daemon killed at any moment loses nothing it acknowledged. The models
//! are rebuilt from it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use steppps::api::psychology::HistoryEntry;

#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StoreError {
    context: String,
    source: rusqlite::Error,
}

trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, what: impl Into<String>) -> Result<T, StoreError> {
        self.map_err(|source| StoreError {
            context: what.into(),
            source,
        })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    id          INTEGER PRIMARY KEY,
    uid         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    command     TEXT    NOT NULL,
    cwd         TEXT    NOT NULL,
    exit_status INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_uid ON history (uid, id);
";

#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        time_ms: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        command: row.get(1)?,
        cwd: row.get(2)?,
        exit_status: row.get(3)?,
        duration_ms: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
    })
}

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).context(format!("cannot open {shown}"))?;
        Self::setup(conn, &shown)
    }

    /// A database in memory (tests, evaluation).
    pub fn in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().context("cannot open a database in memory")?;
        Self::setup(conn, ":memory:")
    }

    fn setup(conn: Connection, shown: &str) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .context(format!("{shown}: cannot enable WAL"))?;
        // FULL: a commit is on disk (not only in the page cache) before the call returns.
        conn.pragma_update(None, "synchronous", "FULL")
            .context(format!("{shown}: cannot set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .context(format!("{shown}: cannot set the busy timeout"))?;
        conn.execute_batch(SCHEMA)
            .context(format!("{shown}: cannot create the schema"))?;
        Ok(Store { conn })
    }

    /// Appends one entry (one transaction).
    pub fn append(&mut self, uid: u32, e: &HistoryEntry) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO history (uid, time_ms, command, cwd, exit_status, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    uid,
                    sql_int(e.time_ms),
                    e.command,
                    e.cwd,
                    e.exit_status,
                    sql_int(e.duration_ms)
                ])
            })
            .context("cannot record the command")?;
        Ok(())
    }

    /// Appends many entries in one transaction: all or none.
    pub fn append_all(&mut self, uid: u32, entries: &[HistoryEntry]) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction()
            .context("cannot start a transaction")?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO history (uid, time_ms, command, cwd, exit_status, duration_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .context("cannot prepare the import")?;
            for e in entries {
                st.execute(params![
                    uid,
                    sql_int(e.time_ms),
                    e.command,
                    e.cwd,
                    e.exit_status,
                    sql_int(e.duration_ms)
                ])
                .context("cannot import")?;
            }
        }
        tx.commit().context("cannot commit the import")?;
        Ok(entries.len() as u64)
    }

    /// Calls `f` with every entry of `uid`, oldest first.
    pub fn for_each(&self, uid: u32, mut f: impl FnMut(HistoryEntry)) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT time_ms, command, cwd, exit_status, duration_ms FROM history
                 WHERE uid = ?1 ORDER BY id",
            )
            .context("cannot read the history")?;
        let rows = st
            .query_map([uid], entry)
            .context("cannot read the history")?;
        for row in rows {
            f(row.context("cannot read a history entry")?);
        }
        Ok(())
    }

    pub fn entries(&self, uid: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut all = Vec::new();
        self.for_each(uid, |e| all.push(e))?;
        Ok(all)
    }

    /// The entries of `uid` after the row `after`, oldest first, with their rows, for as long
    /// as `take(taken_so_far, entry)` says yes; and whether it said no (entries were left).
    pub fn entries_after(
        &self,
        uid: u32,
        after: u64,
        mut take: impl FnMut(usize, &HistoryEntry) -> bool,
    ) -> Result<(Vec<(u64, HistoryEntry)>, bool), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT time_ms, command, cwd, exit_status, duration_ms, id FROM history
                 WHERE uid = ?1 AND id > ?2 ORDER BY id",
            )
            .context("cannot read the history")?;
        let rows = st
            .query_map(params![uid, sql_int(after)], |row| {
                Ok((
                    u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                    entry(row)?,
                ))
            })
            .context("cannot read the history")?;
        let mut page = Vec::new();
        for row in rows {
            let (id, e) = row.context("cannot read a history entry")?;
            if !take(page.len(), &e) {
                return Ok((page, true));
            }
            page.push((id, e));
        }
        Ok((page, false))
    }

    /// Deletes the entries of `uid` whose command matches the GLOB `pattern`.
    pub fn forget(&mut self, uid: u32, pattern: &str) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM history WHERE uid = ?1 AND command GLOB ?2",
                params![uid, pattern],
            )
            .context("cannot forget")?;
        Ok(n as u64)
    }

    /// Deletes every entry of `uid`.
    pub fn erase(&mut self, uid: u32) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM history WHERE uid = ?1", [uid])
            .context("cannot erase")?;
        Ok(n as u64)
    }

    /// Keeps the newest `keep` entries of `uid`; returns how many were dropped.
    pub fn trim(&mut self, uid: u32, keep: u64) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM history WHERE uid = ?1 AND id <= (
                     SELECT id FROM history WHERE uid = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![uid, sql_int(keep)],
            )
            .context("cannot trim the history")?;
        Ok(n as u64)
    }

    pub fn count(&self, uid: u32) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM history WHERE uid = ?1", [uid], |r| {
                r.get(0)
            })
            .context("cannot count")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// First and last time (ms) of `uid`'s entries.
    pub fn span(&self, uid: u32) -> Result<Option<(u64, u64)>, StoreError> {
        self.conn
            .query_row(
                "SELECT min(time_ms), max(time_ms) FROM history WHERE uid = ?1 HAVING count(*) > 0",
                [uid],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .context("cannot read the history's span")
            .map(|o| o.map(|(a, b)| (u64::try_from(a).unwrap_or(0), u64::try_from(b).unwrap_or(0))))
    }

    /// The most used lines of `uid` with their counts, and the failure rate.
    pub fn top(&self, uid: u32, n: usize) -> Result<(Vec<(String, u64)>, f64), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT command, count(*) AS c FROM history WHERE uid = ?1
                 GROUP BY command ORDER BY c DESC, max(id) DESC LIMIT ?2",
            )
            .context("cannot rank commands")?;
        let top = st
            .query_map(params![uid, sql_int(n as u64)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })
            .context("cannot rank commands")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot rank commands")?;
        let rate: f64 = self
            .conn
            .query_row(
                "SELECT coalesce(avg(exit_status != 0), 0.0) FROM history WHERE uid = ?1",
                [uid],
                |r| r.get(0),
            )
            .context("cannot compute the failure rate")?;
        Ok((top, rate))
    }

    /// Users with at least one entry.
    pub fn users(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(DISTINCT uid) FROM history", [], |r| r.get(0))
            .context("cannot count users")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(command: &str, status: i32) -> HistoryEntry {
        HistoryEntry {
            time_ms: 1000,
            command: command.into(),
            cwd: "/".into(),
            exit_status: status,
            duration_ms: 5,
        }
    }

    #[test]
    fn users_are_kept_apart_and_globs_forget() {
        let mut s = Store::in_memory().unwrap();
        s.append(1000, &e("ls", 0)).unwrap();
        s.append(1000, &e("export TOKEN=abc", 0)).unwrap();
        s.append(1001, &e("export TOKEN=xyz", 1)).unwrap();
        assert_eq!(s.forget(1000, "*TOKEN*").unwrap(), 1);
        assert_eq!(s.entries(1000).unwrap(), vec![e("ls", 0)]);
        assert_eq!(s.count(1001).unwrap(), 1);
        assert_eq!(s.top(1001, 5).unwrap().1, 1.0);
        assert_eq!(s.users().unwrap(), 2);
        assert_eq!(s.erase(1001).unwrap(), 1);
        assert_eq!(s.span(1001).unwrap(), None);
    }

    #[test]
    fn trim_keeps_the_newest() {
        let mut s = Store::in_memory().unwrap();
        let all: Vec<_> = (0..10).map(|i| e(&format!("c{i}"), 0)).collect();
        s.append_all(7, &all).unwrap();
        assert_eq!(s.trim(7, 4).unwrap(), 6);
        let left: Vec<_> = s
            .entries(7)
            .unwrap()
            .into_iter()
            .map(|e| e.command)
            .collect();
        assert_eq!(left, ["c6", "c7", "c8", "c9"]);
        assert_eq!(s.trim(7, 100).unwrap(), 0);
    }
}
