//! The shared store: every broker node talks to one Redis (one server, a Sentinel-watched
//! primary, or a Redis Cluster: `conn`), so any node can serve any request. This module holds
//! `RedisStore` and its `SessionStore` impl; beside it: `config` (the `[store]` settings),
//! `conn` (the three topologies), `errors` (which failure is a 503), `scripts` (the Lua, one file
//! each), `reply` (reading scripts' answers) and `sweep`.
//!
//! Keys, all under the configured prefix `P`, and all of one session under its slot tag `{T}`
//! (see `session::Uid`: the uid is `T.<hex>`, each id and page key starts with `T`, each
//! handoff jti is `T.<hex>`), so that on Redis Cluster every script's keys are in one hash slot:
//! - `P{T}s:<uid>`: the session, a hash: `c` (created_at), `l` (last_seen), `v:<key>` (each value),
//!   `iT:<h>` (each id that reaches it, so `end` can delete them all);
//! - `P{T}i:<h>`: the uid an id reaches, where `<h>` is the first 128 bits of its hash in
//!   base64url (22 characters), named here (`IdArgs`) and passed to the scripts beside the id's
//!   hex: done in Lua, that conversion took as much of Redis's CPU as the rest of a read
//!   (bench/README.md, "Redis CPU per call");
//! - `P{T}h:<jti>`: a handoff record, a hash `u` (uid), `e` (expires_at); `P{T}hs:<uid>`: its jtis.
//! - `P{S}sub:<subject hash>`: an identity link, the uid a customer's session is (issue 19), under
//!   the subject's own tag `S` (`SubjectHash::slot_tag`), since one customer's sessions come and
//!   go in any slot. It expires at the session's absolute deadline, set when linked.
//!
//! Identity links are the one place where a call is several scripts on every topology (on Cluster
//! the link and the session are in different slots, and one code path for all is one path
//! tested): `load_identity` reads the link, then loads the session it names, and drops the link
//! (only if it still names that uid) when the session is dead; `link_identity` touches the session
//! and learns its deadline, then writes the link. Each step is safe to repeat, and a link left
//! pointing at a dead session (an `end` or a sweep between two steps, or at any time: `end`
//! cannot reach the link's slot) is never followed and expires by itself.
//!
//! Two keys per session at rest, and a hash small enough for Redis's listpack encoding (fields and
//! values under `hash-max-listpack-value`, 64 bytes): 498 bytes of Redis memory for a session with
//! one 36-byte value, where the layout before (a key `P{T}id:<whole hash>` per id and a set
//! `P{T}ids:<uid>` of them) took 853 (`bench/scale.py --memory`). Sessions written in that layout
//! are read, touched and ended as before, with no migration: a lookup tries the old id key only
//! when the new one is missing, `end` deletes both kinds, and binding an id moves it to the new
//! layout.
//!
//! Data written before slot tags (`P s:<uid>`, `P id:<hash>`, ... with 32-hex uids and jtis) keeps
//! working on one Redis and on Sentinel: a lookup that finds no tagged id key tries the untagged
//! one, in the same script, and every key of such a session is found from its untagged uid. On
//! Cluster there is no such fallback (those keys are in other slots): sessions are not carried
//! from a single Redis into a Cluster (docs/deployment.md).
//!
//! Every trait call is one Lua script, which Redis runs atomically: no interleaving can lose a
//! write, and a handoff record is read and deleted in the same step, so it is used at most once.
//! `WATCH`/`MULTI` would need a connection per caller; the multiplexed connection shares one.
//! One exception on Cluster: an `adopt` that reaches sessions in other slots than the adopted
//! one's is a few single-slot steps (`RedisStore::absorb_foreign` says what atomicity remains).
//!
//! Replica acknowledgements (`replica_acks`): each script is followed by `WAIT` in the same
//! pipeline, so the answer stands only once that many replicas have every write sent before it
//! on that connection; otherwise 503. `WAIT` holds its connection until then, so such a node
//! takes its calls in turn over a few connections (`conn::Pool`) rather than one. A failover promotes the replica with the most data, so an
//! acknowledged write survives the loss of the primary (`RedisStore::run`).
//!
//! Time: liveness is always judged against the stored `created_at`/`last_seen` and the caller's
//! `now` (the app clock, which tests control), exactly as in SQLite. Redis's own expiry is only
//! the garbage collector, and it is set as a duration (`PEXPIRE expires_at - now`) rather than
//! an instant (`PEXPIREAT expires_at`): Redis's clock and the app's then never meet, so a node
//! clock running behind Redis's cannot make Redis drop a live session early, and a test clock in
//! any year gives sane expiries. The session hash expires with the session (slid on every touch);
//! its id keys expire at the absolute deadline, set once, so a touch costs the same
//! however many ids a session has; once the hash is gone they lead nowhere and are deleted when
//! next read or at that deadline.
//!
//! Failing fast: each call is bounded by `timeout_ms` (the `tokio` timeout around it, and the
//! same connect and response timeouts inside the connection manager), and a timeout, a refused
//! or dropped connection, or Redis loading its data after a restart is `StoreError::Unavailable`
//! (503 `store_unavailable`, `/readyz` not ready). The connection manager is created lazily, so a
//! node starts while Redis is down.
//!
//! Reconnecting: the connection manager (redis 1.x) notices a dropped connection only when a
//! call fails on it: it hands that call the error (`is_connection_dropped`: broken pipe, reset,
//! EOF, refused...) and starts a new connection in the background. A node idle while Redis
//! restarted would so fail its first call after the restart, and one asked while Redis was down
//! holds a failed connection until a call fails on it. So a call that fails that way is sent once
//! more, on the new connection, within the same `timeout_ms` (`RedisStore::bounded`). That is
//! safe because every call here may run twice: `create` names its uid before the first attempt,
//! the others write the same thing again (a retried `set_value` or `load_and_set` finds its key
//! already there, a retried `adopt` finds the empty sessions already ended), and `take_handoff`
//! marks the record with a claim unique to the call, so only the same call gets the uid a second
//! time. For the same reason a call that timed out and still runs in Redis later does no harm:
//! 503 means "not acknowledged", not "not applied" (a redeem retried by the browser is a new call
//! and answers `invalid_token`, which fails safe).
//!
//! Durability is Redis's: an `Ok` has reached Redis's memory and, with `appendfsync always`, its
//! disk, and with `replica_acks = N` that of N replicas. See docs/deployment.md.

mod config;
mod conn;
mod errors;
mod reply;
mod scripts;
mod sweep;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::{Cmd, ErrorKind, FromRedisValue, ServerErrorKind, Value};

pub use self::config::RedisConfig;
use self::conn::{ACKED_CONNECTIONS, Conn, Pool};
use self::errors::{corrupt, is_demoted, node_lost, other_slot, store_error, wait_refused};
use self::reply::{Written, session, written};
use self::scripts::{Lua, Scripts};
use super::{
    AdoptOutcome, IdHash, Jti, Session, SessionStore, SetOutcome, StoreError, SubjectHash,
    Timeouts, Uid, Values, slot_tag,
};
use crate::clock::Timestamp;

pub struct RedisStore {
    connector: Pool,
    prefix: String,
    timeout: Duration,
    timeouts: Timeouts,
    scripts: Scripts,
    replica_acks: u32,
    replica_ack_timeout_ms: u64,
    /// Where the next `sweep` resumes its `SCAN` (0: from the start), per node ("" off Cluster).
    sweep_cursors: Mutex<HashMap<String, u64>>,
}

impl RedisStore {
    /// Prepares a store for `config` without connecting: only a malformed address (or
    /// `rediss://` in a build without TLS) is an error. Redis being down is not: the first calls
    /// answer `Unavailable` and the connection comes up by itself when Redis does. Call it
    /// inside the Tokio runtime (the connection manager spawns its reconnect task there).
    pub async fn open(config: &RedisConfig, timeouts: Timeouts) -> Result<Self, StoreError> {
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        // The error text of a bad URL never repeats the URL, which may hold a password.
        let size = if config.replica_acks > 0 {
            ACKED_CONNECTIONS
        } else {
            1
        };
        let connector = Pool::open(config.topology(), timeout, size)
            .map_err(|e| StoreError::Internal(format!("the redis address is not usable: {e}")))?;
        let store = Self {
            connector,
            prefix: config.redis_prefix.clone(),
            timeout,
            timeouts,
            scripts: Scripts::new(),
            replica_acks: config.replica_acks,
            replica_ack_timeout_ms: config.replica_ack_timeout_ms,
            sweep_cursors: Mutex::new(HashMap::new()),
        };
        Ok(store)
    }

    /// Connects now rather than on the first request, and tells the operator if Redis is not
    /// there yet; never waits for it.
    pub fn probe(self: &std::sync::Arc<Self>) {
        let store = self.clone();
        tokio::spawn(async move {
            match store.ping().await {
                Ok(()) => tracing::info!("connected to redis"),
                Err(e) => {
                    tracing::warn!(error = %e, "redis is not reachable yet; /readyz says not ready until it is")
                }
            }
        });
    }

    /// `CLUSTER <sub>` (`SLOTS`, `INFO`), bounded like every call.
    async fn cluster<T: FromRedisValue>(&self, sub: &'static str) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move {
            redis::cmd("CLUSTER").arg(sub).query_async(&mut conn).await
        })
        .await
    }

    /// Runs `call` on the current connection, all of it within `timeout`. When the connection
    /// turns out to be dropped (Redis restarted, a proxy or failover cut it, or the last attempt
    /// to reconnect failed while Redis was down), or with Sentinel the node is gone or no longer
    /// the primary, the call is sent once more, on a new connection (with Sentinel: to the
    /// primary the sentinels name now). Every call of this store is safe to repeat (module doc).
    async fn bounded<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // The generation of the connection last used, so a timeout can drop it too.
        let last = AtomicU64::new(u64::MAX);
        let connector = self.connector.pick();
        let attempt = || async {
            let lease = connector.lease().await?;
            last.store(lease.generation(), Ordering::Relaxed);
            let result = call(lease.conn.clone()).await;
            if let Err(e) = &result
                && node_lost(e)
            {
                connector.failed(lease.generation(), is_demoted(e) || e.is_timeout());
            }
            result
        };
        let sentinel = self.connector.is_sentinel();
        let attempts = async {
            match attempt().await {
                Err(e)
                    if e.is_connection_dropped()
                        || (sentinel && node_lost(&e))
                        || is_demoted(&e) =>
                {
                    tracing::info!(error = %e, "redis connection lost; sending again on a new one");
                    attempt().await
                }
                result => result,
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => {
                connector.failed(last.load(Ordering::Relaxed), true);
                Err(StoreError::Unavailable(format!(
                    "redis did not answer within {} ms",
                    self.timeout.as_millis()
                )))
            }
        }
    }

    /// Runs `lua` with the common ARGV (prefix, now, timeouts, legacy) followed by `args`. `keys`
    /// start with a key of the slot the script works in (the node that runs it on Cluster).
    ///
    /// With `replica_acks` set, every call waits for that many replicas (`WAIT`, sent on the
    /// same connection right behind the script, in one pipeline: it covers every write sent
    /// before it on that connection, this one included; on Cluster the pipeline goes to the node
    /// of the key). Reads too: their answer is then confirmed by a primary that has that many
    /// replicas in sync. A node that lost its data and came back believing it is still the
    /// primary (restarted without persistence before it learns of the failover) has none, so it
    /// cannot answer "no such session", which would make the broker start a new one and so lose
    /// the acknowledged writes of the old one for its browser.
    async fn run<T: FromRedisValue>(
        &self,
        lua: &Lua,
        now: Timestamp,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let legacy = if self.connector.is_cluster() {
            "0"
        } else {
            "1"
        };
        let invoke = |verb: &str, body: &str| {
            let mut c = redis::cmd(verb);
            c.arg(body).arg(keys.len()).arg(keys);
            c.arg(&self.prefix)
                .arg(now)
                .arg(self.timeouts.idle_ms)
                .arg(self.timeouts.absolute_ms)
                .arg(legacy);
            for arg in args {
                c.arg(*arg);
            }
            c
        };
        // The script's text (a few kB) is only copied into a command when the node asks for it.
        let (by_hash, invoke) = (&invoke("EVALSHA", &lua.hash), &invoke);
        let (acks, wait_ms) = (self.replica_acks, self.replica_ack_timeout_ms);
        let (value, acked) = self
            .bounded(|conn| async move {
                match send(conn.clone(), by_hash, acks, wait_ms).await {
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        send(conn, &invoke("EVAL", lua.code), acks, wait_ms).await
                    }
                    result => result,
                }
            })
            .await?;
        if let Some(acked) = acked
            && acked < i64::from(acks)
        {
            tracing::warn!(
                acked,
                wanted = acks,
                within_ms = wait_ms,
                "redis replicas did not acknowledge a write in time; answering 503 (the write may still be applied)"
            );
            return Err(StoreError::Unavailable(format!(
                "{acked} of {acks} redis replicas acknowledged the write within {wait_ms} ms"
            )));
        }
        T::from_redis_value(value).map_err(|e| corrupt(&format!("unexpected reply: {e}")))
    }

    /// Whether `name` (a uid or jti) cannot be on this Redis: on Cluster every one has a slot
    /// tag, and the keys of one without are in other slots than each other.
    fn absent(&self, name: &str) -> bool {
        self.connector.is_cluster() && slot_tag(name).is_none()
    }

    /// Keys of the slot of a uid or jti (where `base` puts them in the scripts).
    fn base(&self, name: &str) -> String {
        match slot_tag(name) {
            Some(tag) => format!("{}{{{tag}}}", self.prefix),
            None => self.prefix.clone(),
        }
    }

    fn session_key(&self, uid: &str) -> String {
        format!("{}s:{uid}", self.base(uid))
    }

    /// The key `idkey` names for an id (its short name's tag and 22 characters).
    fn id_key(&self, id: &IdArgs) -> String {
        format!("{}{{{}}}i:{}", self.prefix, id.tag(), id.name())
    }

    /// A subject's identity link, in the subject's own slot.
    fn subject_key(&self, subject: &SubjectHash) -> String {
        format!(
            "{}{{{}}}sub:{}",
            self.prefix,
            subject.slot_tag(),
            subject.to_hex()
        )
    }

    /// A Redis Cluster adopt: every id reached in another slot than `uid` is a step of its own
    /// (`ABSORB`), so the whole is not one atomic step (docs/deployment.md): first every such id
    /// is only looked at, and any session holding a value answers `Conflict` with nothing
    /// changed, and `uid` missing or expired answers `Missing` with nothing changed; then each
    /// empty session is ended, each atomically (a value written into one meanwhile makes it
    /// answer `Conflict` instead, and a write after its end finds it gone: no value is ever
    /// lost); then `ADOPT` does the rest in `uid`'s slot. Only a write or an expiry racing the
    /// adopt between those steps can so make a `Conflict` or `Missing` that has ended empty
    /// sessions. Every step is safe to repeat. `None`: go on; else the answer.
    async fn absorb_foreign(
        &self,
        uid: &str,
        foreign: &[&IdHash],
        now: Timestamp,
    ) -> Result<Option<AdoptOutcome>, StoreError> {
        for dry in ["1", "0"] {
            for id in foreign {
                let id = IdArgs::of(id);
                let reply: String = self
                    .run(
                        &self.scripts.absorb,
                        now,
                        &[self.id_key(&id)],
                        &[&id.member, &id.short, uid, dry],
                    )
                    .await?;
                if reply == "conflict" {
                    return Ok(Some(AdoptOutcome::Conflict));
                }
            }
            if dry == "1" {
                let alive: i64 = self
                    .run(&self.scripts.alive, now, &[self.session_key(uid)], &[uid])
                    .await?;
                if alive == 0 {
                    return Ok(Some(AdoptOutcome::Missing));
                }
            }
        }
        Ok(None)
    }
}

/// An id as the scripts take it, two arguments (prelude.lua): its member `<tag>:<hash>`, which
/// names it in the layout before (read on a miss only), and its short name `<tag>:<h>`, which
/// names its key and its field in the session hash. Computed here rather than in Lua, where the
/// hex to base64url loop doubled the Redis CPU time of a read (bench/README.md, "Redis CPU per
/// call").
struct IdArgs {
    member: String,
    short: String,
}

impl IdArgs {
    fn of(id: &IdHash) -> Self {
        Self {
            member: format!("{}:{}", id.tag(), id.as_str()),
            short: format!("{}:{}", id.tag(), short_name(id)),
        }
    }

    fn tag(&self) -> &str {
        self.short.split_once(':').map_or("", |(tag, _)| tag)
    }

    /// The 22 characters of the short name.
    fn name(&self) -> &str {
        self.short.split_once(':').map_or("", |(_, name)| name)
    }
}

/// The first 128 bits of `id`'s hash in base64url (22 characters).
fn short_name(id: &IdHash) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..16)
        .filter_map(|i| {
            let pair = id.as_str().get(2 * i..2 * i + 2)?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Sends `call` on `conn`, and with `acks` `WAIT` right behind it in one pipeline: its reply and,
/// with `acks`, how many replicas acknowledged (`RedisStore::run`).
async fn send(
    mut conn: Conn,
    call: &Cmd,
    acks: u32,
    wait_ms: u64,
) -> redis::RedisResult<(Value, Option<i64>)> {
    if acks == 0 {
        let value: Value = call.query_async(&mut conn).await?;
        return Ok((value, None));
    }
    let (value, acked): (Value, i64) = redis::pipe()
        .add_command(call.clone())
        .cmd("WAIT")
        .arg(acks)
        .arg(wait_ms)
        .query_async(&mut conn)
        .await
        .map_err(wait_refused)?;
    Ok((value, Some(acked)))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        // The session takes the slot tag of the id it is created with.
        let uid = Uid::new_in(Some(id.tag()));
        let id = IdArgs::of(id);
        self.run::<i64>(
            &self.scripts.create,
            now,
            &[self.session_key(uid.as_str())],
            &[uid.as_str(), &id.member, &id.short],
        )
        .await?;
        Ok(Session {
            uid,
            values: Values::new(),
            created_at: now,
            last_seen: now,
        })
    }

    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let step = self.timeouts.touch_step_ms().to_string();
        let id = IdArgs::of(id);
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.load,
                now,
                &[self.id_key(&id)],
                &[&id.member, &id.short, &step],
            )
            .await?;
        let Some(mut reply) = reply else {
            return Ok(None);
        };
        if reply.is_empty() {
            return Err(corrupt("empty reply"));
        }
        let uid = reply.remove(0);
        session(uid, reply).map(Some)
    }

    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        let uid = uid.as_str();
        if self.absent(uid) {
            return Ok(SetOutcome::Missing);
        }
        let max_values = max_values.to_string();
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.set_value,
                now,
                &[self.session_key(uid)],
                &[uid, key, value, &max_values],
            )
            .await?;
        match written(reply, Some(uid), "set_value reply")? {
            Written::Missing => Ok(SetOutcome::Missing),
            Written::Full => Ok(SetOutcome::Full),
            Written::Done(s) => Ok(SetOutcome::Done(s)),
            Written::Conflict => Err(corrupt("set_value reply")),
        }
    }

    async fn load_and_set(
        &self,
        id: &IdHash,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<Option<SetOutcome>, StoreError> {
        let (max_values, step) = (
            max_values.to_string(),
            self.timeouts.touch_step_ms().to_string(),
        );
        let id = IdArgs::of(id);
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.load_and_set,
                now,
                &[self.id_key(&id)],
                &[&id.member, &id.short, key, value, &max_values, &step],
            )
            .await?;
        // `Missing` cannot come from the script: it finds the session and writes in one step.
        match written(reply, None, "load_and_set reply")? {
            Written::Missing => Ok(None),
            Written::Full => Ok(Some(SetOutcome::Full)),
            Written::Done(s) => Ok(Some(SetOutcome::Done(s))),
            Written::Conflict => Err(corrupt("load_and_set reply")),
        }
    }

    async fn remove_value(
        &self,
        uid: &Uid,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let uid = uid.as_str();
        if self.absent(uid) {
            return Ok(None);
        }
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.remove_value,
                now,
                &[self.session_key(uid)],
                &[uid, key],
            )
            .await?;
        reply
            .map(|fields| session(uid.to_owned(), fields))
            .transpose()
    }

    async fn end(&self, uid: &Uid) -> Result<(), StoreError> {
        let uid = uid.as_str();
        if self.absent(uid) {
            return Ok(());
        }
        // `kill` does not look at the clock.
        self.run::<i64>(&self.scripts.end, 0, &[self.session_key(uid)], &[uid])
            .await?;
        Ok(())
    }

    async fn bind(&self, uid: &Uid, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        let uid = uid.as_str();
        if self.connector.is_cluster() {
            match slot_tag(uid) {
                None => return Ok(false),
                Some(tag) if tag != id.tag() => return Err(other_slot()),
                Some(_) => {}
            }
        }
        let id = IdArgs::of(id);
        let bound: i64 = self
            .run(
                &self.scripts.bind,
                now,
                &[self.session_key(uid)],
                &[uid, &id.member, &id.short],
            )
            .await?;
        Ok(bound == 1)
    }

    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        let uid = uid.as_str();
        let mut here: Vec<&IdHash> = reached.iter().collect();
        if self.connector.is_cluster() {
            match slot_tag(uid) {
                None => return Ok(AdoptOutcome::Missing),
                Some(tag) if tag != id.tag() => return Err(other_slot()),
                Some(_) => {}
            }
            let foreign: Vec<&IdHash>;
            (here, foreign) = reached.iter().partition(|r| r.tag() == id.tag());
            if !foreign.is_empty()
                && let Some(answer) = self.absorb_foreign(uid, &foreign, now).await?
            {
                return Ok(answer);
            }
        }
        let (id, reached): (IdArgs, Vec<IdArgs>) =
            (IdArgs::of(id), here.iter().map(|r| IdArgs::of(r)).collect());
        let mut args = vec![uid, id.member.as_str(), id.short.as_str()];
        for r in &reached {
            args.extend([r.member.as_str(), r.short.as_str()]);
        }
        let reply: Option<Vec<String>> = self
            .run(&self.scripts.adopt, now, &[self.session_key(uid)], &args)
            .await?;
        match written(reply, Some(uid), "adopt reply")? {
            Written::Missing => Ok(AdoptOutcome::Missing),
            Written::Conflict => Ok(AdoptOutcome::Conflict),
            Written::Done(s) => Ok(AdoptOutcome::Done(s)),
            Written::Full => Err(corrupt("adopt reply")),
        }
    }

    async fn put_handoff(
        &self,
        jti: &Jti,
        uid: &Uid,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let uid = uid.as_str();
        let jti = jti.as_str();
        if self.absent(uid) {
            return Ok(());
        }
        if self.connector.is_cluster() && slot_tag(jti) != slot_tag(uid) {
            return Err(other_slot());
        }
        let expires_at = expires_at.to_string();
        // The record's own expiry comes from the session's, not from `now` (this call has none).
        self.run::<i64>(
            &self.scripts.put_handoff,
            0,
            &[self.session_key(uid)],
            &[jti, uid, &expires_at],
        )
        .await?;
        Ok(())
    }

    async fn take_handoff(&self, jti: &Jti, now: Timestamp) -> Result<Option<Uid>, StoreError> {
        let jti = jti.as_str();
        // Chosen once, so that a repeat of this call (see `bounded`) is recognised as itself.
        if self.absent(jti) {
            return Ok(None);
        }
        let claim = crate::random::hex_128();
        let key = format!("{}h:{jti}", self.base(jti));
        // A write: a take lost in a failover could be redeemed again.
        let uid: Option<String> = self
            .run(&self.scripts.take_handoff, now, &[key], &[jti, &claim])
            .await?;
        uid.map(|uid| Uid::parse(&uid).ok_or_else(|| corrupt("handoff uid")))
            .transpose()
    }

    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let link = self.subject_key(subject);
        let uid: Option<String> = self
            .run(
                &self.scripts.identity_get,
                now,
                std::slice::from_ref(&link),
                &[],
            )
            .await?;
        let Some(uid) = uid else {
            return Ok(None);
        };
        let found: Option<Vec<String>> = if self.absent(&uid) {
            None
        } else {
            let step = self.timeouts.touch_step_ms().to_string();
            self.run(
                &self.scripts.load_uid,
                now,
                &[self.session_key(&uid)],
                &[&uid, &step],
            )
            .await?
        };
        match found {
            Some(fields) => session(uid, fields).map(Some),
            None => {
                self.run::<i64>(&self.scripts.identity_drop, now, &[link], &[&uid])
                    .await?;
                Ok(None)
            }
        }
    }

    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let uid = uid.as_str();
        if self.absent(uid) {
            return Ok(false);
        }
        let ttl: i64 = self
            .run(
                &self.scripts.link_target,
                now,
                &[self.session_key(uid)],
                &[uid],
            )
            .await?;
        if ttl <= 0 {
            return Ok(false);
        }
        let ttl = ttl.to_string();
        self.run::<i64>(
            &self.scripts.identity_set,
            now,
            &[self.subject_key(subject)],
            &[uid, &ttl],
        )
        .await?;
        Ok(true)
    }

    async fn detach(&self, uid: &Uid) -> Result<(), StoreError> {
        let uid = uid.as_str();
        if self.absent(uid) {
            return Ok(());
        }
        // `cut` does not look at the clock.
        self.run::<i64>(&self.scripts.detach, 0, &[self.session_key(uid)], &[uid])
            .await?;
        Ok(())
    }

    /// Ready when a call would be answered now: on one Redis and Sentinel, the primary answers
    /// (and with `replica_acks`, has that many replicas in sync: `WAIT` right behind `PING`); on
    /// Cluster, the cluster says its state is ok (every slot has a primary: with Redis's default
    /// `cluster-require-full-coverage yes`, it refuses every call otherwise).
    async fn ping(&self) -> Result<(), StoreError> {
        if self.connector.is_cluster() {
            let info: String = self.cluster("INFO").await?;
            return if info.contains("cluster_state:ok") {
                Ok(())
            } else {
                Err(StoreError::Unavailable(
                    "the redis cluster's state is not ok".into(),
                ))
            };
        }
        let (acks, wait_ms) = (self.replica_acks, self.replica_ack_timeout_ms);
        let acked: i64 = self
            .bounded(|mut conn| async move {
                if acks == 0 {
                    redis::cmd("PING").query_async::<()>(&mut conn).await?;
                    return Ok(0);
                }
                let ((), acked): ((), i64) = redis::pipe()
                    .cmd("PING")
                    .cmd("WAIT")
                    .arg(acks)
                    .arg(wait_ms)
                    .query_async(&mut conn)
                    .await
                    .map_err(wait_refused)?;
                Ok(acked)
            })
            .await?;
        if acked < i64::from(acks) {
            return Err(StoreError::Unavailable(format!(
                "{acked} of {acks} redis replicas in sync"
            )));
        }
        Ok(())
    }
    /// A bounded slice of the keyspace per call (`RedisStore::sweep_slice`).
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.sweep_slice(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id's short name, which names its key and its field (checked against Redis by
    /// `store_contract::redis_session_is_two_compact_keys`): 22 characters that are the first 16
    /// bytes of the hash, after the tag.
    #[test]
    fn an_id_key_is_named_by_128_bits_of_its_hash_in_base64url() {
        use base64::Engine as _;
        let id = crate::session::SessionId::parse("abcd56789012345678901234567890123456789012_")
            .expect("an id")
            .hash();
        let bytes: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&id.as_str()[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let short = short_name(&id);
        assert_eq!(short.len(), 22);
        let args = IdArgs::of(&id);
        assert_eq!(args.short, format!("abcd:{short}"));
        assert_eq!((args.tag(), args.name()), ("abcd", short.as_str()));
        assert_eq!(args.member, format!("abcd:{}", id.as_str()));
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&short)
                .expect("base64url"),
            bytes
        );
    }
}
