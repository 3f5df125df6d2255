//! The embedded store: one SQLite file, nothing to install.
//!
//! WAL journal with `synchronous = FULL`: a write is acknowledged only once it is in the WAL and
//! synced, so a `kill -9` (or a power cut) never loses an acknowledged session.
//!
//! **Writes: one writer thread, group commit.** Every write is a job for one thread that owns the
//! write connection. It takes every job waiting, runs them in one transaction, each inside its own
//! savepoint (a job that fails is rolled back alone), commits once, and only then answers each
//! job. So concurrent writes share one sync (measured: one synced commit per write held durable
//! `PUT`s to about 4,000 a second on this machine's disk), and none is acknowledged before the
//! sync that makes it durable. A job sees the writes of the jobs before it in its group.
//!
//! **Reads: WAL readers beside the writer.** A read (`load` that need not touch, `ping`) runs on
//! one of a few read-only connections, on the calling task itself: it never waits for the writer
//! (WAL readers see the last commit), and it is a primary-key lookup that takes microseconds from
//! the page cache, less than handing it to another thread would cost. Statements are prepared once
//! per connection (`prepare_cached`). An in-memory database (`:memory:`, tests) cannot be shared
//! between connections, so there every call goes to the writer.
//!
//! **Closing: readers first, the writer last, awaited.** `close` (the application calls it when it
//! stops) drops the read connections, then has the writer finish the writes already queued and
//! close its connection, and returns only then. The writer is the last connection, so its close
//! checkpoints the WAL into the database and removes the `-wal` and `-shm` files: after `close`
//! the directory holds one quiescent file, which a backup (or a test) can read.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    AdoptOutcome, IdHash, Jti, Session, SessionStore, SetOutcome, StoreError, SubjectHash,
    Timeouts, Uid, Values,
};
use crate::clock::Timestamp;

mod schema;

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

/// What a write job hands back once its group is committed: it sends its result, or the commit's
/// error.
type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs on the writer's connection inside the group's transaction (`None`: the group
/// could not begin, so it must not run); says whether it failed (its savepoint is then rolled
/// back) and how to deliver its answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Deliver) + Send>;

/// What the writer thread is sent: a write, or the last message, after which it closes its
/// connection and says so.
enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// Most jobs in one group: bounds the latency a group adds to its first job.
const MAX_GROUP: usize = 256;
/// Read-only connections beside the writer.
const READERS: usize = 4;
/// Writes that may wait for the writer before callers wait to queue more.
const QUEUE: usize = 4096;
/// The writer's page cache. A WAL reader drops its whole cache whenever another connection has
/// committed since its last read, so with writes going on, every read starts cold and a bigger
/// reader cache buys little while writes go on (measured: 64 MiB on every connection, no gain
/// under a mix with writes; but see `READER_CACHE_KIB`). The writer's own
/// commits never invalidate its cache, so there it keeps the inner pages of every tree and the
/// leaves of recently written sessions: with 10^6 sessions the inner pages alone are some 4 MB,
/// twice SQLite's default 2 MB cache, and a write then read most of its path from the file.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// Each reader's page cache: while no write commits (reads alone, or between commits) the
/// readers that do most reads (`Readers::with`) keep the inner pages and the hot leaves; pages
/// are allocated as they are read, and freed when a commit empties the cache.
const READER_CACHE_KIB: i64 = 16 * 1024;
/// A read that is due to touch its session (`Timeouts::touch_due`) queues the touch and answers
/// at once, without waiting for the touch's synced commit, while the session has more than this
/// long to live without it. A touch only moves `last_seen`: one lost to a crash before its commit
/// leaves the session live as long as it was (the next read touches it again); it is never
/// acknowledged to anyone. Closer to its end the read waits, so that a session a read has just
/// kept alive is never seen dead by the next read (on a reader) before the touch commits. Why:
/// with 10^6 live sessions and reads spread over 20,000 of them, most reads are due to touch (one
/// per session per step), each a write of a random page that the GET waited a synced commit for
/// (`bench/scale.py`: 0.44x the GET throughput of 10^3 sessions, 1.06x when the reads go to
/// 1,000 of the 10^6; queued, 0.54-0.76x in single runs, 0.67-0.70x in the two full
/// `bench/all.sh` runs since: what remains is counted in bench/README.md).
const QUEUED_TOUCH_MIN_LIFE_MS: i64 = 60_000;
/// Sessions one sweep job looks at, deleting the expired ones: a few milliseconds of the writer
/// (deleting a session touches pages all over its tables and indexes), so a live write queued
/// behind it waits little longer than behind a full group. Measured with 10^6 sessions expiring
/// at once beside live traffic on 1,000 (`bench/scale.py`, worst p99 while sweeping against the
/// median before): 200 a batch gave 2.54x and deleted some 5,000 a second, 50 gave 1.81x at
/// 3,700 a second, 25 gave 1.70x at 2,400 a second.
const SWEEP_BATCH: usize = 50;

pub struct SqliteStore {
    /// Before `jobs`: fields drop in order, so a store dropped without `close` also closes its
    /// readers before its writer, which is then the last connection and removes the WAL.
    readers: Option<Readers>,
    jobs: mpsc::Sender<Msg>,
    timeouts: Timeouts,
    /// Groups committed so far (each one sync).
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct Readers {
    /// `None` once closed.
    conns: Vec<Mutex<Option<Connection>>>,
    /// Whose turn it is to be waited for when every reader is busy.
    next: AtomicUsize,
}

impl Readers {
    /// Runs `f` on the first free read connection in order (or waits briefly for one, the
    /// connections taking turns). The first in order, not the next in turn: with as many
    /// runtime threads as cores, one or two readers do nearly every read and keep their caches
    /// warm (a cache is only as good as the share of reads that went through it since the last
    /// commit emptied it), where reads spread over every reader each found a colder one.
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let run = |conn: &Option<Connection>| match conn {
            Some(conn) => f(conn),
            None => Err(StoreError::Unavailable("the SQLite store is closed".into())),
        };
        for conn in &self.conns {
            if let Ok(conn) = conn.try_lock() {
                return run(&conn);
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        // A read holds its connection for microseconds: a poisoned lock held nothing half done.
        let conn = self.conns[turn].lock().unwrap_or_else(|p| p.into_inner());
        run(&conn)
    }

    /// Closes every read connection, each once the read on it (if any) has ended.
    fn close(&self) {
        for conn in &self.conns {
            conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Settings every connection gets.
fn prepare(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(internal)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(internal)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(internal)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Why `path` cannot be opened, in the operator's terms: the key, the path and the OS's reason.
fn cannot_open(path: &str, e: impl std::fmt::Display) -> StoreError {
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let reason = match std::fs::metadata(dir) {
        Err(e) => format!("its directory {} is not usable: {e}", dir.display()),
        Ok(m) if !m.is_dir() => format!("{} is not a directory", dir.display()),
        Ok(_) => match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Err(os) => os.to_string(),
            Ok(_) => e.to_string(),
        },
    };
    StoreError::Internal(format!("store.sqlite_path: cannot open {path}: {reason}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, whose directory must exist;
    /// `:memory:` gives a private in-memory one.
    pub fn open(path: &str, timeouts: Timeouts) -> Result<Self, StoreError> {
        let memory = path == ":memory:";
        let mut writer = if memory {
            Connection::open_in_memory().map_err(internal)?
        } else {
            Connection::open(path).map_err(|e| cannot_open(path, e))?
        };
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| cannot_open(path, e))?;
        prepare(&writer)?;
        // Negative: KiB. Only the writer's cache outlives a commit (see `WRITER_CACHE_KIB`).
        writer
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(internal)?;
        schema::migrate(&mut writer)?;
        let readers = if memory {
            None
        } else {
            let conns = (0..READERS)
                .map(|_| {
                    let conn = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(|e| cannot_open(path, e))?;
                    prepare(&conn)?;
                    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
                        .map_err(internal)?;
                    Ok(Mutex::new(Some(conn)))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Some(Readers {
                conns,
                next: AtomicUsize::new(0),
            })
        };
        let commits = std::sync::Arc::default();
        let (jobs, queue) = mpsc::channel(QUEUE);
        let counted = std::sync::Arc::clone(&commits);
        std::thread::Builder::new()
            .name("baton-sqlite-writer".into())
            .spawn(move || {
                let closing = write_loop(&writer, queue, &counted);
                if let Err((_, e)) = writer.close() {
                    tracing::warn!(error = %e, "closing the SQLite database failed");
                }
                if let Some(done) = closing {
                    let _ = done.send(());
                }
            })
            .map_err(internal)?;
        Ok(Self {
            readers,
            jobs,
            timeouts,
            commits,
        })
    }

    /// Runs `f` as a write: in the next group, acknowledged once that group is synced.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Timeouts) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, answer) = self.job(f);
        Self::submit(&self.jobs, Msg::Job(job), answer).await
    }

    /// Queues `job` (waiting while the queue is full) and waits for its `answer`.
    async fn submit<T>(
        jobs: &mpsc::Sender<Msg>,
        job: Msg,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        jobs.send(job)
            .await
            .map_err(|_| internal("the SQLite writer has stopped"))?;
        answer
            .await
            .map_err(|_| internal("the SQLite writer dropped a write"))?
    }

    /// `f` as a job for the writer, and where its result (or its group's commit error) arrives.
    fn job<T, F>(&self, f: F) -> (Job, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Timeouts) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let timeouts = self.timeouts;
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn, timeouts),
                None => Err(internal("the write could not begin")),
            };
            let failed = result.is_err();
            let deliver: Deliver = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (failed, deliver)
        });
        (job, rx)
    }

    /// Runs `f` as a read: on a read connection, or as a write where there is none (`:memory:`).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, Timeouts) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.readers {
            Some(readers) => readers.with(|conn| f(conn, self.timeouts)),
            None => self.write(f).await,
        }
    }

    /// A read of the live session `find` gives, touched when `Timeouts::touch_due` (the reads
    /// `load` and `load_identity`).
    async fn read_touched<F>(&self, find: F, now: Timestamp) -> Result<Option<Session>, StoreError>
    where
        F: FnOnce(&Connection) -> Result<Option<Session>, StoreError> + Send + 'static,
    {
        let found = self
            .read(move |conn, timeouts| {
                Ok(find(conn)?.map(|s| {
                    let due = timeouts.touch_due(s.last_seen, now);
                    (s, due)
                }))
            })
            .await?;
        match found {
            Some((mut session, true)) => {
                // The touch is a write: it goes to the writer, which reads the session again in
                // its own transaction (it may have changed or died meanwhile).
                let uid = session.uid.clone();
                let touch = move |conn: &Connection, timeouts: Timeouts| match live_by_uid(
                    conn, &uid, now,
                )? {
                    Some(s) if timeouts.touch_due(s.last_seen, now) => {
                        save(conn, s, now, timeouts).map(Some)
                    }
                    other => Ok(other),
                };
                let left = self
                    .timeouts
                    .expires_at(session.created_at, session.last_seen)
                    .saturating_sub(now);
                let (job, answer) = self.job(touch);
                let job = if left > QUEUED_TOUCH_MIN_LIFE_MS {
                    match self.jobs.try_send(Msg::Job(job)) {
                        Ok(()) => {
                            tokio::spawn(async move {
                                if let Ok(Err(e)) = answer.await {
                                    tracing::warn!(error = %e, "a queued touch of a session failed");
                                }
                            });
                            session.last_seen = now;
                            return Ok(Some(session));
                        }
                        // A full queue: this read waits its turn, as a write does.
                        Err(mpsc::error::TrySendError::Full(job)) => job,
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            return Err(internal("the SQLite writer has stopped"));
                        }
                    }
                } else {
                    Msg::Job(job)
                };
                Self::submit(&self.jobs, job, answer).await
            }
            other => Ok(other.map(|(session, _)| session)),
        }
    }
}

impl SqliteStore {
    /// How many groups of writes have been committed (each with one sync).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// The writer thread: groups of jobs, one transaction and one sync per group, until `close` (its
/// answer is returned, to send once the connection is closed) or until every sender is gone (the
/// store was dropped). The queue is dropped on return, so a write sent after `close` fails.
fn write_loop(
    conn: &Connection,
    mut queue: mpsc::Receiver<Msg>,
    commits: &std::sync::atomic::AtomicU64,
) -> Option<oneshot::Sender<()>> {
    while let Some(msg) = queue.blocking_recv() {
        let first = match msg {
            Msg::Job(job) => job,
            Msg::Close(done) => return Some(done),
        };
        let mut group = vec![first];
        let mut closing = None;
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(Msg::Job(job)) => group.push(job),
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        run_group(conn, group, commits);
        if closing.is_some() {
            return closing;
        }
    }
    None
}

/// Runs one group, counted in `commits` if it commits, before any of its jobs is answered (so a
/// caller that reads `commits` after its answer sees its own group counted).
fn run_group(conn: &Connection, group: Vec<Job>, commits: &std::sync::atomic::AtomicU64) {
    let step = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(internal)
    };
    if let Err(e) = step("BEGIN IMMEDIATE") {
        for job in group {
            // Never run: each is told why.
            let (_, deliver) = job(None);
            deliver(Err(e.clone()));
        }
        return;
    }
    let mut delivers = Vec::with_capacity(group.len());
    let mut broken = None;
    for job in group {
        if let Err(e) = step("SAVEPOINT job") {
            broken = Some(e);
        }
        let (failed, deliver) = job(Some(conn));
        let end = if failed {
            step("ROLLBACK TO job").and_then(|()| step("RELEASE job"))
        } else {
            step("RELEASE job")
        };
        if let Err(e) = end {
            broken = Some(e);
        }
        delivers.push(deliver);
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => step("COMMIT"),
    };
    if outcome.is_err() {
        let _ = step("ROLLBACK");
    }
    if outcome.is_ok() {
        commits.fetch_add(1, Ordering::Relaxed);
    }
    for deliver in delivers {
        deliver(outcome.clone());
    }
}

/// A uid or jti is stored as its text, as it always was; text the broker never minted, read
/// back, is corruption (a 500), never a session.
impl rusqlite::types::FromSql for Uid {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Uid::parse(value.as_str()?).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other("not a uid the broker mints".into())
        })
    }
}

impl rusqlite::ToSql for Uid {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::ToSql for Jti {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// The session uid an id reaches, if any.
fn uid_of(conn: &Connection, id: &str) -> Result<Option<Uid>, StoreError> {
    conn.prepare_cached("SELECT uid FROM session_ids WHERE id_hash = ?1")
        .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
        .map_err(internal)
}

/// The live session id hash `id` reaches, or `None`: one statement, so one read transaction (each
/// takes the WAL's read lock).
fn live_by_id(conn: &Connection, id: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
    live_joined(
        conn,
        "SELECT s.uid, s.created_at, s.last_seen, s.vals FROM session_ids i \
         JOIN sessions s ON s.uid = i.uid WHERE i.id_hash = ?1 AND s.expires_at > ?2",
        id,
        now,
    )
}

/// The live session the identity `subject` (hex) is linked to, or `None`, as `live_by_id`.
fn live_by_subject(
    conn: &Connection,
    subject: &str,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    live_joined(
        conn,
        "SELECT s.uid, s.created_at, s.last_seen, s.vals FROM identities i \
         JOIN sessions s ON s.uid = i.uid WHERE i.subject = ?1 AND s.expires_at > ?2",
        subject,
        now,
    )
}

/// The live session `sql` (a join selecting uid, created_at, last_seen, vals by `?1` and
/// `now` as `?2`) finds.
fn live_joined(
    conn: &Connection,
    sql: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    let row = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(params![key, now], |r| {
                Ok((
                    r.get::<_, Uid>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .optional()
        })
        .map_err(internal)?;
    let Some((uid, created_at, last_seen, vals)) = row else {
        return Ok(None);
    };
    let values: Values = serde_json::from_str(&vals).map_err(internal)?;
    Ok(Some(Session {
        uid,
        values,
        created_at,
        last_seen,
    }))
}

/// The live session `uid`, or `None`.
fn live_by_uid(
    conn: &Connection,
    uid: &Uid,
    now: Timestamp,
) -> Result<Option<Session>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT created_at, last_seen, vals FROM sessions WHERE uid = ?1 AND expires_at > ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![uid, now], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
        })
        .map_err(internal)?;
    let Some((created_at, last_seen, vals)) = row else {
        return Ok(None);
    };
    let values: Values = serde_json::from_str(&vals).map_err(internal)?;
    Ok(Some(Session {
        uid: uid.clone(),
        values,
        created_at,
        last_seen,
    }))
}

/// Writes `session` back with `last_seen = now` and returns it.
fn save(
    conn: &Connection,
    mut session: Session,
    now: Timestamp,
    timeouts: Timeouts,
) -> Result<Session, StoreError> {
    session.last_seen = now;
    let vals = serde_json::to_string(&session.values).map_err(internal)?;
    let expires_at = timeouts.expires_at(session.created_at, now);
    // `sweep_at` is not set: this statement rewrites one leaf of `sessions` and no index page.
    exec(
        conn,
        "UPDATE sessions SET last_seen = ?2, expires_at = ?3, vals = ?4 WHERE uid = ?1",
        params![session.uid, now, expires_at, vals],
    )?;
    // Only when the timeouts were shortened since the session was last written (a restart with
    // a new configuration) can its expiry come before the sweep's next look: bring that forward,
    // so the first sweep after it expires still deletes it. Otherwise this matches no row and
    // writes nothing.
    exec(
        conn,
        "UPDATE sessions SET sweep_at = ?2 WHERE uid = ?1 AND sweep_at > ?2",
        params![session.uid, expires_at],
    )?;
    Ok(session)
}

/// Runs one statement (cached) with `args`; the number of rows it changed.
fn exec(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(args))
        .map_err(internal)
}

/// Applies `change` to the values of the live session `uid`: `Missing` when there is none, and
/// nothing is written when `change` answers `false` (`Full`). (A write job: its group's
/// transaction makes it atomic.)
fn update_values(
    conn: &Connection,
    timeouts: Timeouts,
    uid: &Uid,
    now: Timestamp,
    change: impl FnOnce(&mut Values) -> bool,
) -> Result<SetOutcome, StoreError> {
    let Some(mut session) = live_by_uid(conn, uid, now)? else {
        return Ok(SetOutcome::Missing);
    };
    if !change(&mut session.values) {
        return Ok(SetOutcome::Full);
    }
    Ok(SetOutcome::Done(save(conn, session, now, timeouts)?))
}

const BIND_ID: &str = "INSERT OR REPLACE INTO session_ids (id_hash, uid) VALUES (?1, ?2)";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        let id = id.as_str().to_owned();
        self.write(move |conn, timeouts| {
            let session = Session {
                uid: Uid::new_in(None),
                values: Values::new(),
                created_at: now,
                last_seen: now,
            };
            exec(
                conn,
                "INSERT INTO sessions (uid, created_at, last_seen, expires_at, sweep_at, vals) \
                 VALUES (?1, ?2, ?2, ?3, ?3, '{}')",
                params![session.uid, now, timeouts.expires_at(now, now)],
            )?;
            exec(conn, BIND_ID, params![id, session.uid])?;
            Ok(session)
        })
        .await
    }

    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let id = id.as_str().to_owned();
        self.read_touched(move |conn| live_by_id(conn, &id, now), now)
            .await
    }

    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let subject = subject.to_hex();
        self.read_touched(move |conn| live_by_subject(conn, &subject, now), now)
            .await
    }

    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (subject, uid) = (subject.to_hex(), uid.to_owned());
        self.write(move |conn, timeouts| {
            let Some(session) = live_by_uid(conn, &uid, now)? else {
                return Ok(false);
            };
            exec(
                conn,
                "INSERT OR REPLACE INTO identities (subject, uid) VALUES (?1, ?2)",
                params![subject, uid],
            )?;
            save(conn, session, now, timeouts)?;
            Ok(true)
        })
        .await
    }

    async fn detach(&self, uid: &Uid) -> Result<(), StoreError> {
        let uid = uid.to_owned();
        self.write(move |conn, _| {
            exec(conn, "DELETE FROM session_ids WHERE uid = ?1", params![uid])?;
            exec(conn, "DELETE FROM handoffs WHERE uid = ?1", params![uid]).map(|_| ())
        })
        .await
    }

    /// One write job: the lookup by id and the write, on the writer's connection, whose cache
    /// (unlike a reader's, emptied by every commit) holds the inner pages of both trees. Found
    /// live by id in the job's own transaction, the session cannot be `Missing` for the write.
    async fn load_and_set(
        &self,
        id: &IdHash,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<Option<SetOutcome>, StoreError> {
        let (id, key, value) = (id.as_str().to_owned(), key.to_owned(), value.to_owned());
        self.write(move |conn, timeouts| {
            let Some(mut session) = live_by_id(conn, &id, now)? else {
                return Ok(None);
            };
            if !session.values.contains_key(&key) && session.values.len() >= max_values {
                // Refused, but found: the touch `load` would have made.
                if timeouts.touch_due(session.last_seen, now) {
                    save(conn, session, now, timeouts)?;
                }
                return Ok(Some(SetOutcome::Full));
            }
            session.values.insert(key, value);
            Ok(Some(SetOutcome::Done(save(conn, session, now, timeouts)?)))
        })
        .await
    }

    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        let (uid, key, value) = (uid.to_owned(), key.to_owned(), value.to_owned());
        self.write(move |conn, timeouts| {
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
        uid: &Uid,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let (uid, key) = (uid.to_owned(), key.to_owned());
        self.write(move |conn, timeouts| {
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

    async fn end(&self, uid: &Uid) -> Result<(), StoreError> {
        let uid = uid.to_owned();
        self.write(move |conn, _| {
            // ON DELETE CASCADE removes its ids and handoff records in the same statement.
            exec(conn, "DELETE FROM sessions WHERE uid = ?1", params![uid]).map(|_| ())
        })
        .await
    }

    async fn bind(&self, uid: &Uid, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        let (uid, id) = (uid.to_owned(), id.as_str().to_owned());
        self.write(move |conn, timeouts| {
            let Some(session) = live_by_uid(conn, &uid, now)? else {
                return Ok(false);
            };
            exec(conn, BIND_ID, params![id, uid])?;
            save(conn, session, now, timeouts)?;
            Ok(true)
        })
        .await
    }

    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        let (uid, id) = (uid.to_owned(), id.as_str().to_owned());
        let reached: Vec<String> = reached.iter().map(|h| h.as_str().to_owned()).collect();
        self.write(move |conn, timeouts| {
            // Nothing is written before every check has passed: `Missing` and `Conflict` change
            // nothing.
            let Some(session) = live_by_uid(conn, &uid, now)? else {
                return Ok(AdoptOutcome::Missing);
            };
            let mut replaced: Vec<Uid> = Vec::new();
            for hash in &reached {
                let Some(other) =
                    uid_of(conn, hash)?.filter(|o| *o != uid && !replaced.contains(o))
                else {
                    continue;
                };
                let Some(found) = live_by_uid(conn, &other, now)? else {
                    continue;
                };
                if !found.values.is_empty() {
                    return Ok(AdoptOutcome::Conflict);
                }
                replaced.push(other);
            }
            for other in &replaced {
                // As `end`: ON DELETE CASCADE takes its ids and handoff records.
                exec(conn, "DELETE FROM sessions WHERE uid = ?1", params![other])?;
            }
            exec(conn, BIND_ID, params![id, uid])?;
            Ok(AdoptOutcome::Done(save(conn, session, now, timeouts)?))
        })
        .await
    }

    async fn put_handoff(
        &self,
        jti: &Jti,
        uid: &Uid,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (jti, uid) = (jti.to_owned(), uid.to_owned());
        self.write(move |conn, _| {
            exec(
                conn,
                "INSERT INTO handoffs (jti, uid, expires_at) VALUES (?1, ?2, ?3)",
                params![jti, uid, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn take_handoff(&self, jti: &Jti, now: Timestamp) -> Result<Option<Uid>, StoreError> {
        let jti = jti.to_owned();
        self.write(move |conn, _| {
            // DELETE ... RETURNING is the single atomic step that makes a record single use.
            conn.prepare_cached("DELETE FROM handoffs WHERE jti = ?1 RETURNING uid, expires_at")
                .and_then(|mut s| {
                    s.query_row(params![jti], |r| {
                        Ok((r.get::<_, Uid>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()
                })
                .map_err(internal)
                .map(|row| row.filter(|(_, exp)| *exp > now).map(|(uid, _)| uid))
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A read alone would answer from a reader connection even when no write can be made
        // (`SELECT 1` does not touch the file): the node is ready only while its writer runs.
        if self.jobs.is_closed() {
            return Err(StoreError::Unavailable(
                "the SQLite writer has stopped".into(),
            ));
        }
        self.read(|conn, _| {
            conn.prepare_cached("SELECT 1")
                .and_then(|mut s| s.query_row([], |_| Ok(())))
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
    }

    /// Readers first, so that the writer is the last connection: its close checkpoints the WAL
    /// and removes `-wal` and `-shm`. Returns once the writer thread has closed its connection
    /// (at once if it had already stopped).
    async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Msg::Close(done)).await.is_ok() {
            // An error here is the writer gone another way (a panic), its connection with it.
            let _ = closed.await;
        }
    }

    /// In batches of `SWEEP_BATCH` sessions due (`sweep_at <= now`), each a write job of its own
    /// followed by a pause as long as it took, so live writes take turns with the sweep and it
    /// has at most half the writer: one `DELETE` of a million sessions that expired together held
    /// the writer (and so every `PUT`) for seconds, and back-to-back batches of 1,000 made every
    /// `PUT` wait behind one (`bench/scale.py`). A session due is deleted when it has expired,
    /// and otherwise (written since: its `expires_at` moved on) due again at its expiry. Expired
    /// sessions are invisible to reads, so a slower sweep costs only disk space for a while (a
    /// million: about five minutes).
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |conn, _| {
            exec(
                conn,
                "DELETE FROM handoffs WHERE expires_at <= ?1",
                params![now],
            )
        })
        .await?;
        let mut swept = 0;
        loop {
            let started = std::time::Instant::now();
            let (due, deleted) = self
                .write(move |conn, _| sweep_batch(conn, now, SWEEP_BATCH))
                .await?;
            swept += deleted;
            if due < SWEEP_BATCH {
                return Ok(swept);
            }
            tokio::time::sleep(started.elapsed()).await;
        }
    }
}

/// One batch of the sweep: up to `limit` sessions due at `now`, each deleted if it has expired
/// (its ids, handoff records and identity links with it, by the cascade) or else made due at its
/// expiry. Every session it sees leaves the due range, so the next batch sees the next ones.
/// Returns how many were due and how many of them were deleted.
fn sweep_batch(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<(usize, u64), StoreError> {
    let due: Vec<(String, i64)> = conn
        .prepare_cached("SELECT uid, expires_at FROM sessions WHERE sweep_at <= ?1 LIMIT ?2")
        .and_then(|mut s| {
            s.query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(internal)?;
    let mut deleted = 0;
    for (uid, expires_at) in &due {
        if *expires_at <= now {
            deleted += exec(conn, "DELETE FROM sessions WHERE uid = ?1", params![uid])? as u64;
        } else {
            exec(
                conn,
                "UPDATE sessions SET sweep_at = ?2 WHERE uid = ?1",
                params![uid, expires_at],
            )?;
        }
    }
    Ok((due.len(), deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        idle_ms: 60_000,
        absolute_ms: 300_000,
    };

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Holds the writer (a job that waits) until the returned sender sends or drops.
    async fn hold_writer(store: &std::sync::Arc<SqliteStore>) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let s = std::sync::Arc::clone(store);
        tokio::spawn(async move {
            s.write(move |_, _| {
                let _ = started.send(());
                let _ = held.recv();
                Ok(())
            })
            .await
        });
        running.await.expect("the holding job runs");
        release
    }

    /// A read due to touch a session with long to live answers without waiting for the writer,
    /// `last_seen` moved, and the queued touch lands after; a read due to touch a session near
    /// its end (`QUEUED_TOUCH_MIN_LIFE_MS`) waits for its touch to commit.
    #[test]
    fn a_read_queues_its_touch_unless_the_session_is_near_its_end() {
        const LONG: Timeouts = Timeouts {
            idle_ms: 1_800_000,
            absolute_ms: 43_200_000,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.db");
        let store = std::sync::Arc::new(
            SqliteStore::open(path.to_str().expect("utf-8"), LONG).expect("open"),
        );
        let step = LONG.touch_step_ms();
        runtime().block_on(async {
            let id = crate::session::SessionId::generate().hash();
            store.create(&id, 0).await.expect("create");

            let release = hold_writer(&store).await;
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), store.load(&id, step))
                    .await
                    .expect("the read did not wait for the held writer")
                    .expect("load")
                    .expect("live");
            assert_eq!(read.last_seen, step, "answered as touched");
            drop(release);
            store
                .write(|_, _| Ok(()))
                .await
                .expect("a write after the touch");
            let later = store
                .load(&id, step + 1)
                .await
                .expect("load")
                .expect("live");
            assert_eq!(later.last_seen, step, "the queued touch committed");

            let release = hold_writer(&store).await;
            let near = step + LONG.idle_ms - QUEUED_TOUCH_MIN_LIFE_MS / 2;
            let s = std::sync::Arc::clone(&store);
            let id2 = id.clone();
            let mut read = tokio::spawn(async move { s.load(&id2, near).await });
            assert!(
                tokio::time::timeout(std::time::Duration::from_millis(200), &mut read)
                    .await
                    .is_err(),
                "near its end, the read waits for its touch"
            );
            drop(release);
            let read = read.await.expect("join").expect("load").expect("live");
            assert_eq!(read.last_seen, near);
            let later = store
                .load(&id, near + 1)
                .await
                .expect("load")
                .expect("live");
            assert_eq!(later.last_seen, near, "committed before the read answered");
        });
    }

    /// `ping` is what `/readyz` asks. A store whose writer thread is gone (a job panicked: a bug)
    /// cannot write anything: its ping must fail rather than report the node ready, on a file
    /// (whose readers could still answer) as in memory (where every call goes to the writer).
    #[test]
    fn ping_fails_once_the_writer_has_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("baton.db");
        for path in [":memory:", file.to_str().expect("utf-8")] {
            ping_fails_once_the_writer_has_stopped_on(path);
        }
    }

    fn ping_fails_once_the_writer_has_stopped_on(path: &str) {
        let store = SqliteStore::open(path, TIMEOUTS).expect("open");
        runtime().block_on(async {
            store.ping().await.expect("a working store answers");
            let died = store
                .write(|_, _| -> Result<(), StoreError> {
                    panic!("deliberate (test): a write job panics, and the writer thread with it")
                })
                .await;
            assert!(died.is_err(), "the panicking write is not acknowledged");
            // The write learns of the panic while the writer thread is still unwinding; its queue
            // closes when the unwinding ends, moments later. Polled, with a bound far beyond that.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let err = loop {
                match store.ping().await {
                    Err(e) => break e,
                    Ok(()) if std::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    Ok(()) => panic!("no writer for 5 s, and ping still says ready"),
                }
            };
            assert!(err.to_string().contains("SQLite writer"), "{err}");
        });
    }

    /// Why a path cannot be opened, in the operator's terms (`cannot_open`): the key, the path,
    /// and which part of it is wrong. Nothing is created on the way.
    #[test]
    fn an_unopenable_path_names_what_is_wrong_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open_err = |path: &Path| {
            SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS)
                .err()
                .expect("cannot be opened")
                .to_string()
        };

        // Its directory does not exist (yet): the directory is named, and not created.
        let missing = dir.path().join("no-such-dir");
        let err = open_err(&missing.join("baton.db"));
        assert!(
            err.contains(&format!(
                "store.sqlite_path: cannot open {}: its directory {} is not usable",
                missing.join("baton.db").display(),
                missing.display()
            )),
            "{err}"
        );
        assert!(!missing.exists(), "no directory is created");

        // Its "directory" is a file.
        let file = dir.path().join("a-file");
        std::fs::write(&file, "not a directory").expect("write");
        let err = open_err(&file.join("baton.db"));
        assert!(
            err.ends_with(&format!("{} is not a directory", file.display())),
            "{err}"
        );

        // Its directory is fine, but the path itself is a directory: the OS's own reason.
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).expect("mkdir");
        let err = open_err(&taken);
        assert!(
            err.starts_with(&format!(
                "store failure: store.sqlite_path: cannot open {}: ",
                taken.display()
            )),
            "{err}"
        );
        assert!(err.contains("Is a directory"), "the OS's reason: {err}");
        assert!(!err.contains("not a directory"), "{err}");
    }

    #[test]
    fn concurrent_writes_share_commits_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.db");
        let store = std::sync::Arc::new(
            SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS).expect("open"),
        );
        runtime().block_on(async {
            let id = crate::session::SessionId::generate().hash();
            let session = store.create(&id, 1_000).await.expect("create");
            let taken = crate::session::Jti::new_for(&session.uid);
            store
                .put_handoff(&taken, &session.uid, 2_000)
                .await
                .expect("first record");
            let before = store.commits();
            let mut tasks = Vec::new();
            for i in 0..64 {
                let (store, uid, taken) = (
                    std::sync::Arc::clone(&store),
                    session.uid.clone(),
                    taken.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    if i % 8 == 0 {
                        // A duplicate jti: this job's INSERT fails inside the group.
                        store.put_handoff(&taken, &uid, 2_000).await.map(|_| false)
                    } else {
                        let key = format!("k{}", i % 16);
                        store
                            .set_value(&uid, &key, "v", 1_000, 64)
                            .await
                            .map(|o| matches!(o, SetOutcome::Done(_)))
                    }
                }));
            }
            let mut done = 0;
            let mut failed = 0;
            for t in tasks {
                match t.await.expect("join") {
                    Ok(true) => done += 1,
                    Ok(false) => unreachable!("a set_value that did not write"),
                    Err(_) => failed += 1,
                }
            }
            assert_eq!((done, failed), (56, 8), "only the duplicates fail");
            let groups = store.commits() - before;
            assert!(groups >= 1, "the writes were committed, and counted");
            assert!(
                groups < 56,
                "{groups} commits for 56 concurrent writes: not grouped"
            );
            let stored = store.load(&id, 1_000).await.expect("load").expect("live");
            // Keys k1..k7 and k9..k15 (i % 8 == 0 went to the duplicates).
            assert_eq!(stored.values.len(), 14, "every good write landed");
        });
    }

    /// The files beside the database (`-wal`, `-shm`) are what an open database has and a closed
    /// one does not: `close` returns only once the writer, the last connection, has closed, so
    /// they are gone when it returns, and the written session is in the database file itself.
    #[test]
    fn close_returns_once_the_database_is_closed_and_its_wal_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.db");
        let names = || -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let store = SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS).expect("open");
        let id = crate::session::SessionId::generate().hash();
        runtime().block_on(async {
            let uid = store.create(&id, 1_000).await.expect("create").uid;
            store
                .set_value(&uid, "k", "v", 1_000, 8)
                .await
                .expect("set");
            assert!(names().len() > 1, "an open WAL database: {:?}", names());
            store.close().await;
            assert_eq!(names(), ["baton.db"], "closed: no -wal, no -shm");
            assert!(store.ping().await.is_err(), "a closed store is not ready");
            assert!(store.load(&id, 1_000).await.is_err(), "nor readable");
            assert!(store.create(&id, 1_000).await.is_err(), "nor writable");
        });
        let reopened = SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS).expect("open");
        let session = runtime()
            .block_on(reopened.load(&id, 1_000))
            .expect("load")
            .expect("the write is in the database file");
        assert_eq!(session.values.get("k").map(String::as_str), Some("v"));
    }

    /// Reader connections told apart by their database's `user_version`.
    fn numbered_readers() -> Readers {
        let conns = (0..READERS)
            .map(|i| {
                let conn = Connection::open_in_memory().expect("open");
                conn.pragma_update(None, "user_version", i).expect("number");
                Mutex::new(Some(conn))
            })
            .collect();
        Readers {
            conns,
            next: AtomicUsize::new(0),
        }
    }

    fn which(conn: &Connection) -> Result<usize, StoreError> {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(internal)
    }

    /// A read takes the first free reader in order, skipping a busy one; when every reader is
    /// busy it waits for the one its turn names rather than failing or picking out of range.
    #[test]
    fn a_read_takes_the_first_free_reader_and_waits_its_turn_when_all_are_busy() {
        let readers = numbered_readers();
        let busy = readers.conns[0].lock().expect("lock");
        assert_eq!(readers.with(which).expect("read"), 1, "reader 0 is busy");
        drop(busy);
        assert_eq!(
            readers.with(which).expect("read"),
            0,
            "reader 0 is free again"
        );
        assert_eq!(readers.with(which).expect("read"), 0, "and still the first");

        readers.next.store(6, Ordering::Relaxed);
        let conns = &readers.conns;
        std::thread::scope(|scope| {
            let (locked, all_busy) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let all: Vec<_> = conns.iter().map(|c| c.lock().expect("lock")).collect();
                locked.send(()).expect("send");
                std::thread::sleep(std::time::Duration::from_millis(50));
                drop(all);
            });
            all_busy.recv().expect("every reader busy");
            // Whether the read finds them all busy or already free, its turn (6) names reader 2.
            assert_eq!(readers.with(which).expect("read"), 6 % READERS);
        });
    }

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
        // The writer's connection, through a write job: the one whose commits are synced.
        let (journal, synchronous, foreign_keys) = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(store.write(|conn, _| {
                let get = |pragma: &str| -> Result<String, StoreError> {
                    conn.query_row(&format!("PRAGMA {pragma}"), [], |r| {
                        r.get::<_, rusqlite::types::Value>(0)
                    })
                    .map(|v| match v {
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                    .map_err(internal)
                };
                Ok((
                    get("journal_mode")?,
                    get("synchronous")?,
                    get("foreign_keys")?,
                ))
            }))
            .expect("pragmas");
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, "2", "FULL: the WAL is synced on every commit");
        assert_eq!(foreign_keys, "1", "ids and handoffs go with their session");
    }

    /// A sweep goes on batch after batch (each its own write job, so live writes take turns)
    /// until none is full: every expired session goes in one call, the live one stays; and so do
    /// more than a batch of sessions written since they were created, which are due for a look
    /// at their first expiry (`sweep_at`) but live: each batch makes them due again at their new
    /// expiry, and a later sweep deletes them then.
    #[test]
    fn a_sweep_deletes_every_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS).expect("open");
        let expired = 2 * SWEEP_BATCH + 7;
        let written = SWEEP_BATCH + 3;
        let idle = TIMEOUTS.idle_ms;
        runtime().block_on(async {
            for _ in 0..expired {
                let id = crate::session::SessionId::generate().hash();
                store.create(&id, 0).await.expect("create");
            }
            let mut kept = Vec::new();
            for _ in 0..written {
                let id = crate::session::SessionId::generate().hash();
                let uid = store.create(&id, 0).await.expect("create").uid;
                let done = store.set_value(&uid, "k", "v", idle - 1, 8).await;
                assert!(matches!(done, Ok(SetOutcome::Done(_))), "{done:?}");
                kept.push(id);
            }
            let live = crate::session::SessionId::generate().hash();
            store.create(&live, idle).await.expect("create");
            let swept = store.sweep(idle).await.expect("sweep");
            assert_eq!(swept, expired as u64);
            assert!(store.load(&live, idle).await.expect("load").is_some());
            for id in &kept {
                let s = store.load(id, idle).await.expect("load");
                assert!(s.is_some(), "written since it was created: live");
            }
            assert_eq!(store.sweep(idle).await.expect("sweep"), 0);
            // Each was written at `idle - 1` and read at `idle` (not yet a touch step later).
            let swept = store.sweep(2 * idle - 1).await.expect("sweep");
            assert_eq!(swept, written as u64);
        });
    }
}
