//! The shared store: every broker node talks to one Redis, so any node can serve any request.
//!
//! Keys, all under the configured prefix `P`:
//! - `P s:<uid>`: the session, a hash: `c` (created_at), `l` (last_seen), `v:<key>` (each value);
//! - `P id:<id hash>`: the uid an id reaches; `P ids:<uid>`: every id hash that reaches it, so
//!   `end` can delete them all;
//! - `P h:<jti>`: a handoff record, a hash `u` (uid), `e` (expires_at); `P hs:<uid>`: its jtis.
//!
//! Every trait call is one Lua script, which Redis runs atomically: no interleaving can lose a
//! write, and a handoff record is read and deleted in the same step, so it is used at most once.
//! `WATCH`/`MULTI` would need a connection per caller; the multiplexed connection shares one.
//! The scripts name keys they derive from others (an id's uid), so this works against one Redis
//! primary (replicas and failover behind one address), not Redis Cluster.
//!
//! Time: liveness is always judged against the stored `created_at`/`last_seen` and the caller's
//! `now` (the app clock, which tests control), exactly as in SQLite. Redis's own expiry is only
//! the garbage collector, and it is set as a duration (`PEXPIRE expires_at - now`) rather than
//! an instant (`PEXPIREAT expires_at`): Redis's clock and the app's then never meet, so a node
//! clock running behind Redis's cannot make Redis drop a live session early, and a test clock in
//! any year gives sane expiries. The session hash expires with the session (slid on every touch);
//! its id keys and id set expire at the absolute deadline, set once, so a touch costs the same
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
//! the others write the same thing again (a retried `set_value` finds its key already there, a
//! retried `adopt` finds the empty sessions already ended), and `take_handoff` marks the record
//! with a claim unique to the call, so only the same call gets the uid a second time. For the
//! same reason a call that timed out and still runs in Redis later does no harm: 503 means "not
//! acknowledged", not "not applied" (a redeem retried by the browser is a new call and answers
//! `invalid_token`, which fails safe).
//!
//! Durability is Redis's: an `Ok` has reached Redis's memory and, with `appendfsync always`, its
//! disk. See docs/deployment.md.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind};

use super::{
    AdoptOutcome, IdHash, Session, SessionStore, SetOutcome, StoreError, Timeouts, Timestamp,
    Values, new_uid,
};

/// Session hashes examined per `SCAN` step and steps per `sweep`: the sweep is a safety net (see
/// `sweep`), so each run does a bounded slice of the keyspace and the next run continues.
const SWEEP_SCAN_COUNT: u64 = 500;
const SWEEP_STEPS: usize = 8;

/// Reconnection inside one connection attempt: a few quick retries ride out a blip (a restart, a
/// failover) without making callers wait past `timeout_ms` for a Redis that stays down.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);

/// Shared by every script. ARGV: 1 prefix, 2 now, 3 idle_ms, 4 absolute_ms; then the script's own.
const PRELUDE: &str = r#"
local P = ARGV[1]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local absolute = tonumber(ARGV[4])

local function skey(uid) return P .. 's:' .. uid end

-- Deletes session `uid` and every key that leads to it.
local function kill(uid)
  local ids, hs = P .. 'ids:' .. uid, P .. 'hs:' .. uid
  for _, h in ipairs(redis.call('SMEMBERS', ids)) do redis.call('DEL', P .. 'id:' .. h) end
  for _, j in ipairs(redis.call('SMEMBERS', hs)) do redis.call('DEL', P .. 'h:' .. j) end
  redis.call('DEL', skey(uid), ids, hs)
end

-- If session `uid` is live at `now`: its created_at and last_seen, unchanged. Otherwise false; a
-- dead one is deleted on the spot (dead is dead, whatever Redis's TTL says).
local function live(uid)
  local f = redis.call('HMGET', skey(uid), 'c', 'l')
  if not f[1] then return false end
  local c, l = tonumber(f[1]), tonumber(f[2])
  if not c or not l then error('corrupt session record') end
  if now >= math.min(l + idle, c + absolute) then
    kill(uid)
    return false
  end
  return c, l
end

-- If session `uid` is live at `now`: sets last_seen to now, slides its expiry, returns created_at.
-- With `step`, only when last_seen is at least that old (a read: see `Timeouts::touch_due`).
-- Otherwise false, as `live`.
local function touch(uid, step)
  local c, l = live(uid)
  if not c then return false end
  if step and now - l < step then return c end
  local s = skey(uid)
  redis.call('HSET', s, 'l', ARGV[2])
  redis.call('PEXPIRE', s, math.min(idle, c + absolute - now))
  return c
end

-- How many values session `uid` holds (its `v:` fields).
local function value_count(uid)
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', skey(uid))) do
    if string.sub(f, 1, 2) == 'v:' then n = n + 1 end
  end
  return n
end

-- Makes id hash `h` reach the live session `uid` (created at `c`) until its absolute deadline.
local function link(uid, h, c)
  local ttl = c + absolute - now
  local k = P .. 'id:' .. h
  local old = redis.call('GET', k)
  if old and old ~= uid then redis.call('SREM', P .. 'ids:' .. old, h) end
  redis.call('SET', k, uid, 'PX', ttl)
  local ids = P .. 'ids:' .. uid
  redis.call('SADD', ids, h)
  redis.call('PEXPIRE', ids, ttl)
end
"#;

/// ARGV 5 uid, 6 id hash.
const CREATE: &str = r#"
local uid = ARGV[5]
redis.call('HSET', skey(uid), 'c', ARGV[2], 'l', ARGV[2])
redis.call('PEXPIRE', skey(uid), math.min(idle, absolute))
link(uid, ARGV[6], now)
return 1
"#;

/// ARGV 5 id hash, 6 touch step (ms). Returns {uid, HGETALL...} or nil.
const LOAD: &str = r#"
local k = P .. 'id:' .. ARGV[5]
local uid = redis.call('GET', k)
if not uid then return false end
if not touch(uid, tonumber(ARGV[6])) then
  redis.call('DEL', k)
  return false
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
return r
"#;

/// ARGV 5 uid, 6 key, 7 value, 8 max values. Returns {'done', HGETALL...}, {'full'} (nothing
/// written, nothing touched) or nil (missing).
const SET_VALUE: &str = r#"
local uid, field = ARGV[5], 'v:' .. ARGV[6]
if not live(uid) then return false end
if redis.call('HEXISTS', skey(uid), field) == 0 and value_count(uid) >= tonumber(ARGV[8]) then
  return {'full'}
end
touch(uid)
redis.call('HSET', skey(uid), field, ARGV[7])
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
"#;

/// ARGV 5 uid, 6 key. Returns HGETALL or nil.
const REMOVE_VALUE: &str = r#"
if not touch(ARGV[5]) then return false end
redis.call('HDEL', skey(ARGV[5]), 'v:' .. ARGV[6])
return redis.call('HGETALL', skey(ARGV[5]))
"#;

/// ARGV 5 uid.
const END: &str = r#"
kill(ARGV[5])
return 1
"#;

/// ARGV 5 uid, 6 id hash. Returns 1 when bound, 0 when the session is gone.
const BIND: &str = r#"
local c = touch(ARGV[5])
if not c then return 0 end
link(ARGV[5], ARGV[6], c)
return 1
"#;

/// ARGV 5 uid, 6 id hash, 7... the id hashes the request reached. Returns {'done', HGETALL...},
/// {'conflict'} or nil (missing); only 'done' changes anything.
const ADOPT: &str = r#"
local uid = ARGV[5]
if not live(uid) then return false end
local others, seen = {}, {}
for i = 7, #ARGV do
  local other = redis.call('GET', P .. 'id:' .. ARGV[i])
  if other and other ~= uid and not seen[other] and live(other) then
    if value_count(other) > 0 then return {'conflict'} end
    seen[other] = true
    table.insert(others, other)
  end
end
for _, other in ipairs(others) do kill(other) end
link(uid, ARGV[6], touch(uid))
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
"#;

/// ARGV 5 jti, 6 uid, 7 expires_at. The record lives in Redis as long as its session could (it is
/// useless after that); `take` judges `expires_at` by the app clock. A record for a session that
/// is already gone is not written: it could never be redeemed.
const PUT_HANDOFF: &str = r#"
local ttl = redis.call('PTTL', skey(ARGV[6]))
if ttl == -2 then return 0 end
if ttl < 0 then ttl = absolute end
local k = P .. 'h:' .. ARGV[5]
redis.call('HSET', k, 'u', ARGV[6], 'e', ARGV[7])
redis.call('PEXPIRE', k, ttl)
local hs = P .. 'hs:' .. ARGV[6]
redis.call('SADD', hs, ARGV[5])
if redis.call('PTTL', hs) < ttl then redis.call('PEXPIRE', hs, ttl) end
return 1
"#;

/// ARGV 5 jti, 6 claim (unique to the call). Marks the record taken by this claim, whatever it
/// says, then returns its uid if not expired at `now`. A record already taken answers nil, except
/// to the same claim: the same call sent again after its connection dropped (its first reply may
/// have been lost) gets the same answer, and no other call ever gets the uid. The taken record
/// stays until its own expiry (the session's), or until `kill` deletes it with its session.
const TAKE_HANDOFF: &str = r#"
local k = P .. 'h:' .. ARGV[5]
local f = redis.call('HMGET', k, 'u', 'e', 't')
if not f[1] then return false end
if f[3] then
  if f[3] ~= ARGV[6] then return false end
else
  redis.call('HSET', k, 't', ARGV[6])
end
local e = tonumber(f[2])
if not e or now >= e then return false end
return f[1]
"#;

/// KEYS: session hashes found by `SCAN`. Deletes those dead at `now`; gives back an expiry to a
/// live one that has lost it. Returns how many sessions went.
const REAP: &str = r#"
local n = 0
for _, s in ipairs(KEYS) do
  local f = redis.call('HMGET', s, 'c', 'l')
  local c, l = tonumber(f[1]), tonumber(f[2])
  if c and l then
    local ends = math.min(l + idle, c + absolute)
    if now >= ends then
      kill(string.sub(s, #P + 3))
      n = n + 1
    elseif redis.call('PTTL', s) == -1 then
      redis.call('PEXPIRE', s, ends - now)
    end
  end
end
return n
"#;

struct Scripts {
    create: Script,
    load: Script,
    set_value: Script,
    remove_value: Script,
    end: Script,
    bind: Script,
    adopt: Script,
    put_handoff: Script,
    take_handoff: Script,
    reap: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            create: s(CREATE),
            load: s(LOAD),
            set_value: s(SET_VALUE),
            remove_value: s(REMOVE_VALUE),
            end: s(END),
            bind: s(BIND),
            adopt: s(ADOPT),
            put_handoff: s(PUT_HANDOFF),
            take_handoff: s(TAKE_HANDOFF),
            reap: s(REAP),
        }
    }
}

/// `[store]` with `backend = "redis"`.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:6379[/db]`, or `rediss://` for TLS.
    pub redis_url: String,
    /// Prefix of every key baton writes, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// A call that takes longer fails with 503 `store_unavailable`.
    pub timeout_ms: u64,
    pub sweep_interval_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_prefix: "baton:".into(),
            timeout_ms: 1000,
            sweep_interval_secs: 60,
        }
    }
}

impl RedisConfig {
    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        if !(self.redis_url.starts_with("redis://") || self.redis_url.starts_with("rediss://")) {
            out.push("store.redis_url: backend = \"redis\" needs redis_url = \"redis://host:6379\" (or rediss:// for TLS)".into());
        }
        if self.timeout_ms == 0 {
            out.push("store.timeout_ms: must be at least 1".into());
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.redis_url) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                u.to_string()
            }
            Err(_) => "<unparseable url>".into(),
        }
    }
}

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    timeouts: Timeouts,
    scripts: Scripts,
    /// Where the next `sweep` resumes its `SCAN` (0: from the start).
    sweep_cursor: Mutex<u64>,
}

impl RedisStore {
    /// Prepares a store for `url` without connecting: only a malformed URL (or `rediss://` in a
    /// build without TLS) is an error. Redis being down is not: the first calls answer
    /// `Unavailable` and the connection comes up by itself when Redis does. Call it inside the
    /// Tokio runtime (the connection manager spawns its reconnect task there).
    pub async fn open(
        url: &str,
        prefix: &str,
        timeout_ms: u64,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        // The error text of a bad URL never repeats the URL, which may hold a password.
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Internal(format!("store.redis_url is not usable: {e}")))?;
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(timeout / 2);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(store_error)?;
        let store = Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
            timeouts,
            scripts: Scripts::new(),
            sweep_cursor: Mutex::new(0),
        };
        // Connect now rather than on the first request, and tell the operator if Redis is not
        // there yet; never wait for it.
        let probe = store.conn.clone();
        tokio::spawn(async move {
            let mut conn = probe;
            let ping = redis::cmd("PING");
            match tokio::time::timeout(timeout, ping.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => tracing::info!("connected to redis"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "redis is not reachable yet; /readyz says not ready until it is")
                }
                Err(_) => tracing::warn!(
                    ?timeout,
                    "redis did not answer in time; /readyz says not ready until it does"
                ),
            }
        });
        Ok(store)
    }

    /// Runs `call` on the shared connection, all of it within `timeout`. When the connection
    /// turns out to be dropped (Redis restarted, a proxy or failover cut it, or the last attempt
    /// to reconnect failed while Redis was down), the manager has already started a new one: the
    /// call is sent once more, on it. Every call of this store is safe to repeat (module doc).
    async fn bounded<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempts = async {
            match call(self.conn.clone()).await {
                Err(e) if e.is_connection_dropped() => {
                    tracing::info!(error = %e, "redis connection dropped; sending again on a new one");
                    call(self.conn.clone()).await
                }
                result => result,
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// Runs `script` with the common ARGV (prefix, now, timeouts) followed by `args`.
    async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        now: Timestamp,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut call = script.prepare_invoke();
        call.arg(&self.prefix)
            .arg(now)
            .arg(self.timeouts.idle_ms)
            .arg(self.timeouts.absolute_ms);
        for key in keys {
            call.key(key);
        }
        for arg in args {
            call.arg(*arg);
        }
        let call = &call;
        self.bounded(|mut conn| async move { call.invoke_async(&mut conn).await })
            .await
    }
}

/// Which Redis failures mean "not now" (503, retry) rather than "broken" (500).
fn store_error(e: RedisError) -> StoreError {
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                )
        )
        // Redis refusing writes it cannot persist or hold, or busy running a script.
        || matches!(
            e.code(),
            Some("MISCONF" | "OOM" | "NOREPLICAS" | "BUSY" | "NOAUTH" | "WRONGPASS")
        );
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Internal(e.to_string())
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("corrupt session record in redis: {what}"))
}

/// A session from its `HGETALL` reply (field, value, field, value...).
fn session(uid: String, fields: Vec<String>) -> Result<Session, StoreError> {
    let (mut created_at, mut last_seen) = (None, None);
    let mut values = Values::new();
    let mut it = fields.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        match field.as_str() {
            "c" => created_at = value.parse().ok(),
            "l" => last_seen = value.parse().ok(),
            other => {
                if let Some(key) = other.strip_prefix("v:") {
                    values.insert(key.to_owned(), value);
                }
            }
        }
    }
    Ok(Session {
        uid,
        values,
        created_at: created_at.ok_or_else(|| corrupt("created_at"))?,
        last_seen: last_seen.ok_or_else(|| corrupt("last_seen"))?,
    })
}

/// `SCAN MATCH` treats `* ? [ ] \` as pattern syntax; a prefix may contain them.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError> {
        let uid = new_uid();
        self.run::<i64>(&self.scripts.create, now, &[], &[&uid, id.as_str()])
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
        let reply: Option<Vec<String>> = self
            .run(&self.scripts.load, now, &[], &[id.as_str(), &step])
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
        uid: &str,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        let max_values = max_values.to_string();
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.set_value,
                now,
                &[],
                &[uid, key, value, &max_values],
            )
            .await?;
        let Some(mut reply) = reply else {
            return Ok(SetOutcome::Missing);
        };
        match reply.first().map(String::as_str) {
            Some("full") => Ok(SetOutcome::Full),
            Some("done") => {
                reply.remove(0);
                session(uid.to_owned(), reply).map(SetOutcome::Done)
            }
            _ => Err(corrupt("set_value reply")),
        }
    }

    async fn remove_value(
        &self,
        uid: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let reply: Option<Vec<String>> = self
            .run(&self.scripts.remove_value, now, &[], &[uid, key])
            .await?;
        reply
            .map(|fields| session(uid.to_owned(), fields))
            .transpose()
    }

    async fn end(&self, uid: &str) -> Result<(), StoreError> {
        // `kill` does not look at the clock.
        self.run::<i64>(&self.scripts.end, 0, &[], &[uid]).await?;
        Ok(())
    }

    async fn bind(&self, uid: &str, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        let bound: i64 = self
            .run(&self.scripts.bind, now, &[], &[uid, id.as_str()])
            .await?;
        Ok(bound == 1)
    }

    async fn adopt(
        &self,
        uid: &str,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError> {
        let mut args = vec![uid, id.as_str()];
        args.extend(reached.iter().map(IdHash::as_str));
        let reply: Option<Vec<String>> = self.run(&self.scripts.adopt, now, &[], &args).await?;
        let Some(mut reply) = reply else {
            return Ok(AdoptOutcome::Missing);
        };
        match reply.first().map(String::as_str) {
            Some("conflict") => Ok(AdoptOutcome::Conflict),
            Some("done") => {
                reply.remove(0);
                session(uid.to_owned(), reply).map(AdoptOutcome::Done)
            }
            _ => Err(corrupt("adopt reply")),
        }
    }

    async fn put_handoff(
        &self,
        jti: &str,
        uid: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let expires_at = expires_at.to_string();
        // The record's own expiry comes from the session's, not from `now` (this call has none).
        self.run::<i64>(&self.scripts.put_handoff, 0, &[], &[jti, uid, &expires_at])
            .await?;
        Ok(())
    }

    async fn take_handoff(&self, jti: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        // Chosen once, so that a repeat of this call (see `bounded`) is recognised as itself.
        let claim = new_uid();
        self.run(&self.scripts.take_handoff, now, &[], &[jti, &claim])
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(
            |mut conn| async move { redis::cmd("PING").query_async::<()>(&mut conn).await },
        )
        .await
    }

    /// Redis expires every key by itself, so this is a safety net for what its expiry cannot
    /// judge: sessions dead by the app clock while their Redis TTL still runs (a node clock ahead
    /// of the others, a test clock), which reads already treat as missing, and session records
    /// that lost their TTL (a `PERSIST`, a restore without expiries), which would stay forever.
    /// Each call scans a bounded slice of the keyspace and the next one continues from there, so
    /// it costs Redis little however many sessions there are.
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        let pattern = format!("{}s:*", glob_escape(&self.prefix));
        let mut cursor = *self.sweep_cursor.lock().unwrap_or_else(|p| p.into_inner());
        let mut swept = 0u64;
        for _ in 0..SWEEP_STEPS {
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SWEEP_SCAN_COUNT)
                .to_owned();
            let scan = &scan;
            let (next, keys): (u64, Vec<String>) = self
                .bounded(|mut conn| async move { scan.query_async(&mut conn).await })
                .await?;
            if !keys.is_empty() {
                let n: i64 = self.run(&self.scripts.reap, now, &keys, &[]).await?;
                swept += n.max(0) as u64;
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        *self.sweep_cursor.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(glob_escape("baton:"), "baton:");
        assert_eq!(glob_escape(r"a*b?[c]\"), r"a\*b\?\[c\]\\");
    }

    #[test]
    fn a_session_is_read_from_its_hash_fields() {
        let fields = ["c", "5", "v:chat", "hi", "l", "7", "other", "ignored"]
            .map(String::from)
            .to_vec();
        let s = session("u".into(), fields).expect("valid");
        assert_eq!((s.created_at, s.last_seen), (5, 7));
        assert_eq!(s.values.len(), 1);
        assert_eq!(s.values["chat"], "hi");
        assert!(session("u".into(), vec!["l".into(), "7".into()]).is_err());
    }
}
