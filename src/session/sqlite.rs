//! The embedded store: one SQLite file, nothing to install.
//!
//! WAL journal with `synchronous = FULL`: a write is acknowledged only once it is in the WAL and
//! synced, so a `kill -9` (or a power cut) never loses an acknowledged session. One connection
//! behind a std `Mutex`, used from `spawn_blocking`: SQLite serialises writers anyway, calls
//! take microseconds, and a pool would only add lock contention on the file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AdoptOutcome, IdHash, Session, SessionStore, SetOutcome, StoreError, Timeouts, Timestamp,
    Values, new_uid,
};

/// `[store]` with `backend = "sqlite"`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteConfig {
    /// The database file (WAL files sit beside it); `:memory:` keeps nothing (tests only).
    pub sqlite_path: String,
    pub sweep_interval_secs: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            sqlite_path: "baton.db".into(),
            sweep_interval_secs: 60,
        }
    }
}

impl SqliteConfig {
    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        if self.sqlite_path.trim().is_empty() {
            out.push("store.sqlite_path: must name a file (or \":memory:\" for tests)".into());
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    timeouts: Timeouts,
}

/// The schema, as numbered steps: step `n` takes a database at `PRAGMA user_version = n` to
/// `n + 1`, in one transaction with the version bump. Append a step for any change; never edit a
/// step that has shipped. Step 0 is the schema baton first shipped without a version, written so
/// that it also runs harmlessly on such a database.
const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS sessions (
    uid TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    vals TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions(expires_at);
CREATE TABLE IF NOT EXISTS session_ids (
    id_hash TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES sessions(uid) ON DELETE CASCADE
) STRICT;
CREATE INDEX IF NOT EXISTS session_ids_uid ON session_ids(uid);
CREATE TABLE IF NOT EXISTS handoffs (
    jti TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES sessions(uid) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
"];

/// Brings the database to the newest schema. A database from a newer baton (a version past the
/// last step) is refused rather than written with rules it does not know.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(internal)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "the database is at schema version {version}, newer than this baton knows ({}): run the newer baton, or restore a backup",
            MIGRATIONS.len()
        )));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(internal)?;
        tx.execute_batch(sql).map_err(internal)?;
        tx.pragma_update(None, "user_version", step + 1)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        tracing::info!(version = step + 1, "sqlite schema migrated");
    }
    Ok(())
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; `:memory:` gives a private in-memory one.
    pub fn open(path: &str, timeouts: Timeouts) -> Result<Self, StoreError> {
        let mut conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(internal)?;
            }
            Connection::open(path)
        }
        .map_err(internal)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(internal)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(internal)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(internal)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(internal)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            timeouts,
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, Timeouts) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let timeouts = self.timeouts;
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-done transaction behind (SQLite
            // rolls it back), so a poisoned lock is safe to keep using.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard, timeouts)
        })
        .await
        .map_err(internal)?
    }
}

/// Reads the live session `uid` inside a transaction, or `None`.
fn live_by_uid(
    tx: &rusqlite::Transaction<'_>,
    uid: &str,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    let row = tx
        .query_row(
            "SELECT created_at, last_seen, vals FROM sessions WHERE uid = ?1 AND expires_at > ?2",
            params![uid, now],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((created_at, last_seen, vals)) = row else {
        return Ok(None);
    };
    let values: Values = serde_json::from_str(&vals).map_err(internal)?;
    Ok(Some(Session {
        uid: uid.to_owned(),
        values,
        created_at,
        last_seen,
    }))
}

/// Writes `session` back with `last_seen = now` and returns it.
fn save(
    tx: &rusqlite::Transaction<'_>,
    mut session: Session,
    now: Timestamp,
    timeouts: Timeouts,
) -> Result<Session, StoreError> {
    session.last_seen = now;
    let vals = serde_json::to_string(&session.values).map_err(internal)?;
    tx.execute(
        "UPDATE sessions SET last_seen = ?2, expires_at = ?3, vals = ?4 WHERE uid = ?1",
        params![
            session.uid,
            now,
            timeouts.expires_at(session.created_at, now),
            vals
        ],
    )
    .map_err(internal)?;
    Ok(session)
}

/// Applies `change` to the values of the live session `uid` in one transaction: `Missing` when
/// there is none, and nothing is written when `change` answers `false` (`Full`).
fn update_values(
    conn: &mut Connection,
    timeouts: Timeouts,
    uid: &str,
    now: Timestamp,
    change: impl FnOnce(&mut Values) -> bool,
) -> Result<SetOutcome, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let Some(mut session) = live_by_uid(&tx, uid, now)? else {
        return Ok(SetOutcome::Missing);
    };
    if !change(&mut session.values) {
        return Ok(SetOutcome::Full);
    }
    let session = save(&tx, session, now, timeouts)?;
    tx.commit().map_err(internal)?;
    Ok(SetOutcome::Done(session))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        let id = id.as_str().to_owned();
        self.with(move |conn, timeouts| {
            let session = Session {
                uid: new_uid(),
                values: Values::new(),
                created_at: now,
                last_seen: now,
            };
            let tx = conn.transaction().map_err(internal)?;
            tx.execute(
                "INSERT INTO sessions (uid, created_at, last_seen, expires_at, vals) VALUES (?1, ?2, ?2, ?3, '{}')",
                params![session.uid, now, timeouts.expires_at(now, now)],
            )
            .map_err(internal)?;
            tx.execute(
                "INSERT OR REPLACE INTO session_ids (id_hash, uid) VALUES (?1, ?2)",
                params![id, session.uid],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(session)
        })
        .await
    }

    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let id = id.as_str().to_owned();
        self.with(move |conn, timeouts| {
            let tx = conn.transaction().map_err(internal)?;
            let uid: Option<String> = tx
                .query_row(
                    "SELECT uid FROM session_ids WHERE id_hash = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)?;
            let Some(uid) = uid else { return Ok(None) };
            let Some(session) = live_by_uid(&tx, &uid, now)? else {
                return Ok(None);
            };
            if !timeouts.touch_due(session.last_seen, now) {
                return Ok(Some(session));
            }
            let session = save(&tx, session, now, timeouts)?;
            tx.commit().map_err(internal)?;
            Ok(Some(session))
        })
        .await
    }

    async fn set_value(
        &self,
        uid: &str,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        let (uid, key, value) = (uid.to_owned(), key.to_owned(), value.to_owned());
        self.with(move |conn, timeouts| {
            update_values(conn, timeouts, &uid, now, |v| {
                if !v.contains_key(&key) && v.len() >= max_values {
                    return false;
                }
                v.insert(key, value);
                true
            })
        })
        .await
    }

    async fn remove_value(
        &self,
        uid: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let (uid, key) = (uid.to_owned(), key.to_owned());
        self.with(move |conn, timeouts| {
            let removed = update_values(conn, timeouts, &uid, now, |v| {
                v.remove(&key);
                true
            })?;
            Ok(match removed {
                SetOutcome::Done(session) => Some(session),
                SetOutcome::Missing | SetOutcome::Full => None,
            })
        })
        .await
    }

    async fn end(&self, uid: &str) -> Result<(), StoreError> {
        let uid = uid.to_owned();
        self.with(move |conn, _| {
            // ON DELETE CASCADE removes its ids and handoff records in the same statement.
            conn.execute("DELETE FROM sessions WHERE uid = ?1", params![uid])
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn bind(&self, uid: &str, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        let (uid, id) = (uid.to_owned(), id.as_str().to_owned());
        self.with(move |conn, timeouts| {
            let tx = conn.transaction().map_err(internal)?;
            let Some(session) = live_by_uid(&tx, &uid, now)? else {
                return Ok(false);
            };
            tx.execute(
                "INSERT OR REPLACE INTO session_ids (id_hash, uid) VALUES (?1, ?2)",
                params![id, uid],
            )
            .map_err(internal)?;
            save(&tx, session, now, timeouts)?;
            tx.commit().map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn adopt(
        &self,
        uid: &str,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        let (uid, id) = (uid.to_owned(), id.as_str().to_owned());
        let reached: Vec<String> = reached.iter().map(|h| h.as_str().to_owned()).collect();
        self.with(move |conn, timeouts| {
            // Returning before `commit` rolls the transaction back: nothing changes.
            let tx = conn.transaction().map_err(internal)?;
            let Some(session) = live_by_uid(&tx, &uid, now)? else {
                return Ok(AdoptOutcome::Missing);
            };
            let mut replaced: Vec<String> = Vec::new();
            for hash in &reached {
                let other: Option<String> = tx
                    .query_row(
                        "SELECT uid FROM session_ids WHERE id_hash = ?1",
                        params![hash],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(internal)?;
                let Some(other) = other.filter(|o| *o != uid && !replaced.contains(o)) else {
                    continue;
                };
                let Some(found) = live_by_uid(&tx, &other, now)? else {
                    continue;
                };
                if !found.values.is_empty() {
                    return Ok(AdoptOutcome::Conflict);
                }
                replaced.push(other);
            }
            for other in &replaced {
                // As `end`: ON DELETE CASCADE takes its ids and handoff records.
                tx.execute("DELETE FROM sessions WHERE uid = ?1", params![other])
                    .map_err(internal)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO session_ids (id_hash, uid) VALUES (?1, ?2)",
                params![id, uid],
            )
            .map_err(internal)?;
            let session = save(&tx, session, now, timeouts)?;
            tx.commit().map_err(internal)?;
            Ok(AdoptOutcome::Done(session))
        })
        .await
    }

    async fn put_handoff(
        &self,
        jti: &str,
        uid: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (jti, uid) = (jti.to_owned(), uid.to_owned());
        self.with(move |conn, _| {
            conn.execute(
                "INSERT INTO handoffs (jti, uid, expires_at) VALUES (?1, ?2, ?3)",
                params![jti, uid, expires_at],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn take_handoff(&self, jti: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        let jti = jti.to_owned();
        self.with(move |conn, _| {
            // DELETE ... RETURNING is the single atomic step that makes a record single use.
            conn.query_row(
                "DELETE FROM handoffs WHERE jti = ?1 RETURNING uid, expires_at",
                params![jti],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(internal)
            .map(|row| row.filter(|(_, exp)| *exp > now).map(|(uid, _)| uid))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|conn, _| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
    }

    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.with(move |conn, _| {
            let tx = conn.transaction().map_err(internal)?;
            tx.execute("DELETE FROM handoffs WHERE expires_at <= ?1", params![now])
                .map_err(internal)?;
            let n = tx
                .execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])
                .map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What "synced on every commit" rests on, read from the store's own connection (`synchronous`
    /// and `foreign_keys` are per connection; another one would not see them), on a file: an
    /// in-memory database has no WAL at all.
    #[test]
    fn a_file_database_is_wal_synced_on_every_commit_with_foreign_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.db");
        let timeouts = Timeouts {
            idle_ms: 60_000,
            absolute_ms: 300_000,
        };
        let store = SqliteStore::open(path.to_str().expect("utf-8"), timeouts).expect("open");
        let conn = store.conn.lock().expect("lock");
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous");
        let foreign_keys: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "FULL: the WAL is synced on every commit");
        assert_eq!(foreign_keys, 1, "ids and handoffs go with their session");
    }
}
