//! The SQLite schema and its migrations: numbered steps, each run once, in order, at open.
//! Kept apart from the store (`super`), which only asks for the newest schema.

use rusqlite::{Connection, OptionalExtension};

use super::internal;
use crate::session::StoreError;

/// The schema, as numbered steps: step `n` takes a database at `PRAGMA user_version = n` to
/// `n + 1`, in one transaction with the version bump. Append a step for any change; never edit a
/// step that has shipped. Step 0 is the schema baton first shipped without a version, written so
/// that it also runs harmlessly on such a database.
const MIGRATIONS: &[&str] = &[
    "
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
",
    "
-- Identity links (issue 19): the keyed hash of a partner's customer id, never the id, and the
-- session it is linked to; deleted with the session (`end`, `adopt`, `sweep`) by the cascade.
CREATE TABLE identities (
    subject TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES sessions(uid) ON DELETE CASCADE
) STRICT;
CREATE INDEX identities_uid ON identities(uid);
",
    "
-- Flat cost with a million sessions (issue 23): the tables keyed by text become WITHOUT ROWID, so
-- a lookup by id or uid descends one B-tree instead of an index and then the table (a read by id
-- touched four trees, whose leaf pages are mostly outside the page cache); and handoffs get an
-- index on uid, so a session's delete no longer scans every pending token for its cascade.
-- Rebuilt the documented way (create, copy, drop, rename) with foreign keys off (`migrate`);
-- copied in key order, so the new trees are written by appending: full pages, not half-split ones.
CREATE TABLE sessions_v3 (
    uid TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    vals TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO sessions_v3 SELECT uid, created_at, last_seen, expires_at, vals FROM sessions ORDER BY uid;
DROP TABLE sessions;
ALTER TABLE sessions_v3 RENAME TO sessions;
CREATE INDEX sessions_expires_at ON sessions(expires_at);
CREATE TABLE session_ids_v3 (
    id_hash TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES sessions(uid) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO session_ids_v3 SELECT id_hash, uid FROM session_ids ORDER BY id_hash;
DROP TABLE session_ids;
ALTER TABLE session_ids_v3 RENAME TO session_ids;
CREATE INDEX session_ids_uid ON session_ids(uid);
CREATE TABLE identities_v3 (
    subject TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES sessions(uid) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
INSERT INTO identities_v3 SELECT subject, uid FROM identities ORDER BY subject;
DROP TABLE identities;
ALTER TABLE identities_v3 RENAME TO identities;
CREATE INDEX identities_uid ON identities(uid);
CREATE INDEX handoffs_uid ON handoffs(uid);
",
    "
-- A write touches no index (issue 23): every PUT and every touch moved `expires_at`, so each
-- rewrote two leaves of `sessions_expires_at` at random places beside its own leaf of `sessions`.
-- The sweep's index is now on `sweep_at`, the time the sweep next looks at a session: its
-- `expires_at` when it is created, and again each time a sweep finds it still live (a write only
-- moves `expires_at` later, and leaves `sweep_at` alone). `sweep_at <= expires_at` always, so no
-- expired session is missed; a session active for hours has its index entry rewritten once per
-- idle timeout instead of once per write. Rebuilt as step 2 was, copied in key order.
CREATE TABLE sessions_v4 (
    uid TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    sweep_at INTEGER NOT NULL,
    vals TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO sessions_v4 SELECT uid, created_at, last_seen, expires_at, expires_at, vals FROM sessions ORDER BY uid;
DROP TABLE sessions;
ALTER TABLE sessions_v4 RENAME TO sessions;
CREATE INDEX sessions_sweep_at ON sessions(sweep_at);
",
];

/// Brings the database to the newest schema. A database from a newer baton (a version past the
/// last step) is refused rather than written with rules it does not know.
///
/// Foreign keys are off while the steps run (`PRAGMA foreign_keys` is a no-op inside a
/// transaction, so it is set around them): a step that rebuilds a table drops the old one, and
/// with them on, that drop would first delete every row and cascade into the ids and handoffs. A
/// step commits only once `foreign_key_check` finds every reference whole.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(internal)?;
    let migrated = run_steps(conn);
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(internal)?;
    migrated
}

fn run_steps(conn: &mut Connection) -> Result<(), StoreError> {
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
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(internal)?;
        if let Some(table) = broken {
            return Err(StoreError::Internal(format!(
                "schema step {step}: a row of {table} refers to nothing; the database is unchanged"
            )));
        }
        tx.pragma_update(None, "user_version", step + 1)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        tracing::info!(version = step + 1, "sqlite schema migrated");
    }
    Ok(())
}
