//! The shared store: every broker node talks to one Redis (one server, a Sentinel-watched
//! primary, or a Redis Cluster: `redis_conn.rs`), so any node can serve any request.
//!
//! Keys, all under the configured prefix `P`, and all of one session under its slot tag `{T}`
//! (see `session::new_uid_in`: the uid is `T.<hex>`, each id and page key starts with `T`, each
//! handoff jti is `T.<hex>`), so that on Redis Cluster every script's keys are in one hash slot:
//! - `P{T}s:<uid>`: the session, a hash: `c` (created_at), `l` (last_seen), `v:<key>` (each value);
//! - `P{T}id:<id hash>`: the uid an id reaches; `P{T}ids:<uid>`: every id that reaches it
//!   (`T:<id hash>`), so `end` can delete them all;
//! - `P{T}h:<jti>`: a handoff record, a hash `u` (uid), `e` (expires_at); `P{T}hs:<uid>`: its jtis.
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
//! on that connection; otherwise 503. A failover promotes the replica with the most data, so an
//! acknowledged write survives the loss of the primary (`RedisStore::run`).
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
//! the others write the same thing again (a retried `set_value` or `load_and_set` finds its key
//! already there, a retried `adopt` finds the empty sessions already ended), and `take_handoff`
//! marks the record with a claim unique to the call, so only the same call gets the uid a second
//! time. For the same reason a call that timed out and still runs in Redis later does no harm:
//! 503 means "not acknowledged", not "not applied" (a redeem retried by the browser is a new call
//! and answers `invalid_token`, which fails safe).
//!
//! Durability is Redis's: an `Ok` has reached Redis's memory and, with `appendfsync always`, its
//! disk, and with `replica_acks = N` that of N replicas. See docs/deployment.md.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind, Value};

use super::redis_conn::{Conn, Connector, Topology};
use super::{
    AdoptOutcome, IdHash, Session, SessionStore, SetOutcome, StoreError, Timeouts, Timestamp,
    Values, new_uid, new_uid_in, slot_tag,
};

/// Session hashes examined per `SCAN` step and steps per `sweep`: the sweep is a safety net (see
/// `sweep`), so each run does a bounded slice of the keyspace and the next run continues.
const SWEEP_SCAN_COUNT: u64 = 500;
const SWEEP_STEPS: usize = 8;

/// Shared by every script. ARGV: 1 prefix, 2 now, 3 idle_ms, 4 absolute_ms, 5 '1' when names
/// from before slot tags are looked up too (not on Cluster: their keys are in other slots); then
/// the script's own. Where a session's keys are: `base(uid)` (module doc).
const PRELUDE: &str = r#"
local P = ARGV[1]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local absolute = tonumber(ARGV[4])
local legacy = ARGV[5] == '1'

-- The slot tag of a uid or jti ('<4 characters>.<hex>'), or nil for a name from before tags.
local function tagof(name)
  return string.match(name, '^([%w_%-][%w_%-][%w_%-][%w_%-])%.')
end
local function base(name)
  local t = tagof(name)
  if t then return P .. '{' .. t .. '}' end
  return P
end
local function skey(uid) return base(uid) .. 's:' .. uid end
local function idskey(uid) return base(uid) .. 'ids:' .. uid end
local function hskey(uid) return base(uid) .. 'hs:' .. uid end
local function hkey(jti) return base(jti) .. 'h:' .. jti end
-- An id as the store names it: '<tag>:<hash>', or '<hash>' (a member of an ids set from before
-- tags); its key.
local function idkey(m)
  local t, h = string.match(m, '^([^:]+):(%x+)$')
  if t then return P .. '{' .. t .. '}id:' .. h end
  return P .. 'id:' .. m
end

-- The uid id `m` reaches and the key that says so; nil when none.
local function find(m)
  local k = idkey(m)
  local uid = redis.call('GET', k)
  if not uid and legacy then
    local h = string.match(m, ':(%x+)$')
    if h then
      k = P .. 'id:' .. h
      uid = redis.call('GET', k)
    end
  end
  if uid then return uid, k end
  return nil
end

-- Deletes session `uid` and every key that leads to it.
local function kill(uid)
  local ids, hs = idskey(uid), hskey(uid)
  for _, m in ipairs(redis.call('SMEMBERS', ids)) do redis.call('DEL', idkey(m)) end
  for _, j in ipairs(redis.call('SMEMBERS', hs)) do redis.call('DEL', hkey(j)) end
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

-- Sets `field` to `value` in the live session `uid` (created at `c`), touching it in the same
-- HSET, unless the field is new and the session already holds `max` values: then false, nothing
-- written.
local function put(uid, c, field, value, max)
  local s = skey(uid)
  if redis.call('HEXISTS', s, field) == 0 and value_count(uid) >= max then return false end
  redis.call('HSET', s, 'l', ARGV[2], field, value)
  redis.call('PEXPIRE', s, math.min(idle, c + absolute - now))
  return true
end

-- Makes id `m` reach the live session `uid` (created at `c`) until its absolute deadline.
local function link(uid, m, c)
  local ttl = c + absolute - now
  local k = idkey(m)
  local old = redis.call('GET', k)
  if old and old ~= uid then redis.call('SREM', idskey(old), m) end
  redis.call('SET', k, uid, 'PX', ttl)
  local ids = idskey(uid)
  redis.call('SADD', ids, m)
  redis.call('PEXPIRE', ids, ttl)
end
"#;

/// ARGV 6 uid, 7 id.
const CREATE: &str = r#"
local uid = ARGV[6]
redis.call('HSET', skey(uid), 'c', ARGV[2], 'l', ARGV[2])
redis.call('PEXPIRE', skey(uid), math.min(idle, absolute))
link(uid, ARGV[7], now)
return 1
"#;

/// ARGV 6 id, 7 touch step (ms). Returns {uid, HGETALL...} or nil.
const LOAD: &str = r#"
local uid, k = find(ARGV[6])
if not uid then return false end
if not touch(uid, tonumber(ARGV[7])) then
  redis.call('DEL', k)
  return false
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
return r
"#;

/// ARGV 6 uid, 7 key, 8 value, 9 max values. Returns {'done', HGETALL...}, {'full'} (nothing
/// written, nothing touched) or nil (missing).
const SET_VALUE: &str = r#"
local uid = ARGV[6]
local c = live(uid)
if not c then return false end
if not put(uid, c, 'v:' .. ARGV[7], ARGV[8], tonumber(ARGV[9])) then return {'full'} end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
"#;

/// ARGV 6 id, 7 key, 8 value, 9 max values, 10 touch step (ms): `LOAD` then `SET_VALUE` on the
/// session found, in one step. Returns {'done', uid, HGETALL...}, {'full'} (nothing written; only
/// `LOAD`'s touch) or nil (the id reaches no live session).
const LOAD_AND_SET: &str = r#"
local uid, k = find(ARGV[6])
if not uid then return false end
local c = live(uid)
if not c then
  redis.call('DEL', k)
  return false
end
if not put(uid, c, 'v:' .. ARGV[7], ARGV[8], tonumber(ARGV[9])) then
  touch(uid, tonumber(ARGV[10]))
  return {'full'}
end
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, uid)
table.insert(r, 1, 'done')
return r
"#;

/// ARGV 6 uid, 7 key. Returns HGETALL or nil.
const REMOVE_VALUE: &str = r#"
if not touch(ARGV[6]) then return false end
redis.call('HDEL', skey(ARGV[6]), 'v:' .. ARGV[7])
return redis.call('HGETALL', skey(ARGV[6]))
"#;

/// ARGV 6 uid.
const END: &str = r#"
kill(ARGV[6])
return 1
"#;

/// ARGV 6 uid, 7 id. Returns 1 when bound, 0 when the session is gone.
const BIND: &str = r#"
local c = touch(ARGV[6])
if not c then return 0 end
link(ARGV[6], ARGV[7], c)
return 1
"#;

/// ARGV 6 uid, 7 id, 8... the ids the request reached (on Cluster only those in `uid`'s slot:
/// see `adopt`). Returns {'done', HGETALL...}, {'conflict'} or nil (missing); only 'done'
/// changes anything.
const ADOPT: &str = r#"
local uid = ARGV[6]
if not live(uid) then return false end
local others, seen = {}, {}
for i = 8, #ARGV do
  local other = find(ARGV[i])
  if other and other ~= uid and not seen[other] and live(other) then
    if value_count(other) > 0 then return {'conflict'} end
    seen[other] = true
    table.insert(others, other)
  end
end
for _, other in ipairs(others) do kill(other) end
link(uid, ARGV[7], touch(uid))
local r = redis.call('HGETALL', skey(uid))
table.insert(r, 1, 'done')
return r
"#;

/// ARGV 6 id, 7 uid, 8 '1' to only look. On Cluster, an adopt's step for one id the request
/// reached in another slot than `uid`: 'conflict' when it reaches a live session other than
/// `uid` that holds a value; otherwise 'ok', after ending the (empty) session it reaches, unless
/// only looking.
const ABSORB: &str = r#"
local other = find(ARGV[6])
if not other or other == ARGV[7] or not live(other) then return 'ok' end
if value_count(other) > 0 then return 'conflict' end
if ARGV[8] ~= '1' then kill(other) end
return 'ok'
"#;

/// ARGV 6 uid. 1 when the session is live, else 0.
const ALIVE: &str = r#"
if live(ARGV[6]) then return 1 end
return 0
"#;

/// ARGV 6 jti, 7 uid, 8 expires_at. The record lives in Redis as long as its session could (it is
/// useless after that); `take` judges `expires_at` by the app clock. A record for a session that
/// is already gone is not written: it could never be redeemed.
const PUT_HANDOFF: &str = r#"
local ttl = redis.call('PTTL', skey(ARGV[7]))
if ttl == -2 then return 0 end
if ttl < 0 then ttl = absolute end
local k = hkey(ARGV[6])
redis.call('HSET', k, 'u', ARGV[7], 'e', ARGV[8])
redis.call('PEXPIRE', k, ttl)
local hs = hskey(ARGV[7])
redis.call('SADD', hs, ARGV[6])
if redis.call('PTTL', hs) < ttl then redis.call('PEXPIRE', hs, ttl) end
return 1
"#;

/// ARGV 6 jti, 7 claim (unique to the call). Marks the record taken by this claim, whatever it
/// says, then returns its uid if not expired at `now`. A record already taken answers nil, except
/// to the same claim: the same call sent again after its connection dropped (its first reply may
/// have been lost) gets the same answer, and no other call ever gets the uid. The taken record
/// stays until its own expiry (the session's), or until `kill` deletes it with its session.
const TAKE_HANDOFF: &str = r#"
local k = hkey(ARGV[6])
local f = redis.call('HMGET', k, 'u', 'e', 't')
if not f[1] then return false end
if f[3] then
  if f[3] ~= ARGV[7] then return false end
else
  redis.call('HSET', k, 't', ARGV[7])
end
local e = tonumber(f[2])
if not e or now >= e then return false end
return f[1]
"#;

/// KEYS: session hashes found by `SCAN` (on Cluster one at a time: each is in its own slot).
/// Deletes those dead at `now`; gives back an expiry to a live one that has lost it. Returns how
/// many sessions went.
const REAP: &str = r#"
local n = 0
for _, s in ipairs(KEYS) do
  local f = redis.call('HMGET', s, 'c', 'l')
  local c, l = tonumber(f[1]), tonumber(f[2])
  if c and l then
    local ends = math.min(l + idle, c + absolute)
    if now >= ends then
      kill(string.match(s, 's:([^:]*)$'))
      n = n + 1
    elseif redis.call('PTTL', s) == -1 then
      redis.call('PEXPIRE', s, ends - now)
    end
  end
end
return n
"#;

/// A script: its text (sent with `EVAL` when the node does not know it yet: a new primary after
/// a failover has an empty script cache) and its SHA-1 (`EVALSHA`).
struct Lua {
    code: String,
    hash: String,
}

impl Lua {
    fn new(body: &str) -> Self {
        let code = format!("{PRELUDE}{body}");
        let hash = Script::new(&code).get_hash().to_owned();
        Self { code, hash }
    }
}

struct Scripts {
    create: Lua,
    load: Lua,
    set_value: Lua,
    load_and_set: Lua,
    remove_value: Lua,
    end: Lua,
    bind: Lua,
    adopt: Lua,
    absorb: Lua,
    alive: Lua,
    put_handoff: Lua,
    take_handoff: Lua,
    reap: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Lua::new(CREATE),
            load: Lua::new(LOAD),
            set_value: Lua::new(SET_VALUE),
            load_and_set: Lua::new(LOAD_AND_SET),
            remove_value: Lua::new(REMOVE_VALUE),
            end: Lua::new(END),
            bind: Lua::new(BIND),
            adopt: Lua::new(ADOPT),
            absorb: Lua::new(ABSORB),
            alive: Lua::new(ALIVE),
            put_handoff: Lua::new(PUT_HANDOFF),
            take_handoff: Lua::new(TAKE_HANDOFF),
            reap: Lua::new(REAP),
        }
    }
}

/// `[store]` with `backend = "redis"`: exactly one of `redis_url` (one Redis), `redis_sentinels`
/// with `redis_master_name` (Sentinel) or `redis_cluster_nodes` (Cluster).
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:6379[/db]`, or `rediss://` for TLS.
    pub redis_url: String,
    /// Sentinels, each `redis://[user:password@]host:26379` (or `rediss://`). The user, password,
    /// db and TLS of the first one also apply to the Redis nodes the sentinels name.
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the primary by (`sentinel monitor <name> ...`).
    pub redis_master_name: String,
    /// Some nodes of a Redis Cluster (the rest are discovered), each `redis://[user:password@]
    /// host:port` (or `rediss://`).
    pub redis_cluster_nodes: Vec<String>,
    /// Prefix of every key baton writes, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// A call that takes longer fails with 503 `store_unavailable`.
    pub timeout_ms: u64,
    pub sweep_interval_secs: u64,
    /// 0: a write is acknowledged once the primary has it. N > 0: only once N replicas have it
    /// too (`WAIT N replica_ack_timeout_ms`), else 503 `store_unavailable`; what each promises:
    /// docs/deployment.md.
    pub replica_acks: u32,
    /// How long a write waits for `replica_acks` replicas; below `timeout_ms`.
    pub replica_ack_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_sentinels: Vec::new(),
            redis_master_name: String::new(),
            redis_cluster_nodes: Vec::new(),
            redis_prefix: "baton:".into(),
            timeout_ms: 1000,
            sweep_interval_secs: 60,
            replica_acks: 0,
            replica_ack_timeout_ms: 500,
        }
    }
}

fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

/// `url` without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}

impl RedisConfig {
    pub(crate) fn problems(&self, out: &mut Vec<String>) {
        let single = !self.redis_url.is_empty();
        let sentinel = !self.redis_sentinels.is_empty();
        let cluster = !self.redis_cluster_nodes.is_empty();
        match (single, sentinel, cluster) {
            (false, false, false) => out.push("store.redis_url: backend = \"redis\" needs redis_url = \"redis://host:6379\" (or rediss:// for TLS), or redis_sentinels and redis_master_name (Sentinel), or redis_cluster_nodes (Cluster)".into()),
            (true, false, false) | (false, true, false) | (false, false, true) => {}
            _ => out.push("store.redis_url: set exactly one of redis_url, redis_sentinels, redis_cluster_nodes".into()),
        }
        if single && !is_redis_url(&self.redis_url) {
            out.push("store.redis_url: must start with redis:// or rediss:// (TLS)".into());
        }
        for (key, list) in [
            ("redis_sentinels", &self.redis_sentinels),
            ("redis_cluster_nodes", &self.redis_cluster_nodes),
        ] {
            if list.iter().any(|u| !is_redis_url(u)) {
                out.push(format!(
                    "store.{key}: each must start with redis:// or rediss:// (TLS)"
                ));
            }
        }
        if sentinel && self.redis_master_name.is_empty() {
            out.push("store.redis_master_name: redis_sentinels needs the name the sentinels monitor the primary by".into());
        }
        if !sentinel && !self.redis_master_name.is_empty() {
            out.push("store.redis_master_name: only with redis_sentinels".into());
        }
        if cluster && self.redis_prefix.contains(['{', '}']) {
            out.push("store.redis_prefix: must not contain { or } on Redis Cluster (they would choose the hash slot of every key)".into());
        }
        if self.timeout_ms == 0 {
            out.push("store.timeout_ms: must be at least 1".into());
        }
        if self.replica_acks > 0 && !(1..self.timeout_ms).contains(&self.replica_ack_timeout_ms) {
            out.push("store.replica_ack_timeout_ms: must be at least 1 and below timeout_ms (the whole call, the write and its wait, is bounded by timeout_ms)".into());
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.redis_url)
    }

    /// Where Redis is, without passwords, for logs.
    pub fn describe(&self) -> String {
        let list = |l: &[String]| l.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", ");
        if !self.redis_sentinels.is_empty() {
            format!(
                "sentinel {:?} via [{}]",
                self.redis_master_name,
                list(&self.redis_sentinels)
            )
        } else if !self.redis_cluster_nodes.is_empty() {
            format!("cluster [{}]", list(&self.redis_cluster_nodes))
        } else {
            self.redacted_url()
        }
    }

    fn topology(&self) -> Topology<'_> {
        if !self.redis_sentinels.is_empty() {
            Topology::Sentinel {
                sentinels: &self.redis_sentinels,
                master_name: &self.redis_master_name,
            }
        } else if !self.redis_cluster_nodes.is_empty() {
            Topology::Cluster(&self.redis_cluster_nodes)
        } else {
            Topology::Single(&self.redis_url)
        }
    }
}

pub struct RedisStore {
    connector: Connector,
    prefix: String,
    timeout: Duration,
    timeouts: Timeouts,
    scripts: Scripts,
    replica_acks: u32,
    replica_ack_timeout_ms: u64,
    /// Where the next `sweep` resumes its `SCAN` (0: from the start), per node ("" off Cluster).
    sweep_cursors: Mutex<HashMap<String, u64>>,
}

/// Whether a node answered as a replica.
fn is_demoted(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// Whether a failed call means the node may be gone or no longer the primary. Any failure of
/// the connection itself counts: in redis 1.x a timeout, a dropped connection and a refused one
/// are each an `ErrorKind::Io` error (`is_timeout`, `is_connection_dropped` and
/// `is_connection_refusal` only sort io errors further), so `is_io_error` covers them all.
fn node_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
}

impl RedisStore {
    /// Prepares a store for `config` without connecting: only a malformed address (or
    /// `rediss://` in a build without TLS) is an error. Redis being down is not: the first calls
    /// answer `Unavailable` and the connection comes up by itself when Redis does. Call it
    /// inside the Tokio runtime (the connection manager spawns its reconnect task there).
    pub async fn open(config: &RedisConfig, timeouts: Timeouts) -> Result<Self, StoreError> {
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        // The error text of a bad URL never repeats the URL, which may hold a password.
        let connector = Connector::open(config.topology(), timeout)
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
        let attempt = || async {
            let lease = self.connector.lease().await?;
            last.store(lease.generation(), Ordering::Relaxed);
            let result = call(lease.conn.clone()).await;
            if let Err(e) = &result
                && node_lost(e)
            {
                self.connector
                    .failed(lease.generation(), is_demoted(e) || e.is_timeout());
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
                self.connector.failed(last.load(Ordering::Relaxed), true);
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
                        send(conn, &invoke("EVAL", &lua.code), acks, wait_ms).await
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

    fn id_key(&self, id: &IdHash) -> String {
        format!("{}{{{}}}id:{}", self.prefix, id.tag(), id.as_str())
    }

    /// The id as the scripts name it (`idkey`).
    fn member(id: &IdHash) -> String {
        format!("{}:{}", id.tag(), id.as_str())
    }

    /// Whether `key` (found by `SCAN`) is a session hash: `P s:<uid>` or `P {tag}s:<uid>`.
    fn is_session_key(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let rest = match rest.strip_prefix('{') {
            Some(tagged) => match tagged.split_once('}') {
                Some((tag, rest)) if tag.len() == super::TAG_LEN => rest,
                _ => return false,
            },
            None => rest,
        };
        rest.strip_prefix("s:")
            .is_some_and(|uid| !uid.contains(':'))
    }

    /// One `SCAN` step on `node` (any node off Cluster): the next cursor and the session hashes.
    async fn scan(&self, node: &str, cursor: u64) -> Result<(u64, Vec<String>), StoreError> {
        let pattern = format!("{}*s:*", glob_escape(&self.prefix));
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SWEEP_SCAN_COUNT)
            .to_owned();
        let scan = &scan;
        let (next, keys): (u64, Vec<String>) = self
            .bounded(|conn| async move {
                match (conn, node.rsplit_once(':')) {
                    (Conn::Cluster(mut c), Some((host, port))) => {
                        let port = port.parse().unwrap_or_default();
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.to_owned(),
                            port,
                        });
                        let value = c.route_command(scan.clone(), route).await?;
                        Ok(FromRedisValue::from_redis_value(value)?)
                    }
                    (mut conn, _) => scan.query_async(&mut conn).await,
                }
            })
            .await?;
        Ok((
            next,
            keys.into_iter()
                .filter(|k| self.is_session_key(k))
                .collect(),
        ))
    }

    /// The primaries of the cluster, `host:port` each; `[""]` (the one node) off Cluster.
    async fn sweep_nodes(&self) -> Result<Vec<String>, StoreError> {
        if !self.connector.is_cluster() {
            return Ok(vec![String::new()]);
        }
        let slots: Vec<Vec<Value>> = self.cluster("SLOTS").await?;
        let mut nodes: Vec<String> = Vec::new();
        for range in slots {
            // [start, end, [host, port, id, ...], replicas...]
            let primary = range.get(2).cloned().map(Vec::<Value>::from_redis_value);
            let Some(Ok(primary)) = primary else {
                return Err(corrupt("CLUSTER SLOTS reply"));
            };
            let host = primary.first().cloned().map(String::from_redis_value);
            let port = primary.get(1).cloned().map(u16::from_redis_value);
            let (Some(Ok(host)), Some(Ok(port))) = (host, port) else {
                return Err(corrupt("CLUSTER SLOTS reply"));
            };
            let node = format!("{host}:{port}");
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        Ok(nodes)
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
                let reply: String = self
                    .run(
                        &self.scripts.absorb,
                        now,
                        &[self.id_key(id)],
                        &[&Self::member(id), uid, dry],
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

/// A pipeline of a script and `WAIT` where only `WAIT` failed: the node is a replica (Redis
/// refuses `WAIT` there: a demoted primary, or a Cluster client routing to a replica while it
/// has no primary for the slot), so the script's answer is not one a primary confirmed. Told
/// apart as `READONLY`: a 503, and with Sentinel the next call asks the sentinels again.
fn wait_refused(e: RedisError) -> RedisError {
    let only_wait = e
        .clone()
        .into_server_errors()
        .is_some_and(|failed| !failed.is_empty() && failed.iter().all(|(i, _)| *i == 1));
    if only_wait {
        tracing::info!(error = %e, "redis refused WAIT: the node is not a primary");
        RedisError::from((
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "WAIT refused: the node is not a primary",
        ))
    } else {
        e
    }
}

/// Which Redis failures mean "not now" (503, retry) rather than "broken" (500).
fn store_error(e: RedisError) -> StoreError {
    // Any failure of the connection (a timeout, a drop, a refusal: each an Io error, see
    // `node_lost`), or Redis saying it cannot serve now.
    let unavailable = e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                // The sentinels know no reachable primary (mid-failover, or a wrong
                // `redis_master_name`: the log line says which).
                | ErrorKind::MasterNameNotFoundBySentinel
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::Moved
                        | ServerErrorKind::Ask
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

/// An id or jti not minted for the session's slot (`SessionId::generate_for`, `new_uid_in`):
/// Redis Cluster cannot write it in the same step as the session. The broker never asks this.
fn other_slot() -> StoreError {
    StoreError::Internal("an id or jti of another slot than its session's (Redis Cluster)".into())
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
        // The session takes the slot tag of the id it is created with.
        let uid = new_uid_in(Some(id.tag()));
        self.run::<i64>(
            &self.scripts.create,
            now,
            &[self.session_key(&uid)],
            &[&uid, &Self::member(id)],
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
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.load,
                now,
                &[self.id_key(id)],
                &[&Self::member(id), &step],
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
        uid: &str,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
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
        let reply: Option<Vec<String>> = self
            .run(
                &self.scripts.load_and_set,
                now,
                &[self.id_key(id)],
                &[&Self::member(id), key, value, &max_values, &step],
            )
            .await?;
        let Some(mut reply) = reply else {
            return Ok(None);
        };
        match reply.first().map(String::as_str) {
            Some("full") => Ok(Some(SetOutcome::Full)),
            Some("done") if reply.len() >= 2 => {
                let fields = reply.split_off(2);
                let uid = reply.swap_remove(1);
                session(uid, fields).map(|s| Some(SetOutcome::Done(s)))
            }
            _ => Err(corrupt("load_and_set reply")),
        }
    }

    async fn remove_value(
        &self,
        uid: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
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

    async fn end(&self, uid: &str) -> Result<(), StoreError> {
        if self.absent(uid) {
            return Ok(());
        }
        // `kill` does not look at the clock.
        self.run::<i64>(&self.scripts.end, 0, &[self.session_key(uid)], &[uid])
            .await?;
        Ok(())
    }

    async fn bind(&self, uid: &str, id: &IdHash, now: Timestamp) -> Result<bool, StoreError> {
        if self.connector.is_cluster() {
            match slot_tag(uid) {
                None => return Ok(false),
                Some(tag) if tag != id.tag() => return Err(other_slot()),
                Some(_) => {}
            }
        }
        let bound: i64 = self
            .run(
                &self.scripts.bind,
                now,
                &[self.session_key(uid)],
                &[uid, &Self::member(id)],
            )
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
        let (id_member, members): (String, Vec<String>) = (
            Self::member(id),
            here.iter().map(|r| Self::member(r)).collect(),
        );
        let mut args = vec![uid, id_member.as_str()];
        args.extend(members.iter().map(String::as_str));
        let reply: Option<Vec<String>> = self
            .run(&self.scripts.adopt, now, &[self.session_key(uid)], &args)
            .await?;
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

    async fn take_handoff(&self, jti: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        // Chosen once, so that a repeat of this call (see `bounded`) is recognised as itself.
        if self.absent(jti) {
            return Ok(None);
        }
        let claim = new_uid();
        let key = format!("{}h:{jti}", self.base(jti));
        // A write: a take lost in a failover could be redeemed again.
        self.run(&self.scripts.take_handoff, now, &[key], &[jti, &claim])
            .await
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

    /// Redis expires every key by itself, so this is a safety net for what its expiry cannot
    /// judge: sessions dead by the app clock while their Redis TTL still runs (a node clock ahead
    /// of the others, a test clock), which reads already treat as missing, and session records
    /// that lost their TTL (a `PERSIST`, a restore without expiries), which would stay forever.
    /// Each call scans a bounded slice of the keyspace (of each primary, on Cluster) and the
    /// next one continues from there, so it costs Redis little however many sessions there are.
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut swept = 0u64;
        for node in self.sweep_nodes().await? {
            let cursor = |cursors: &HashMap<String, u64>| cursors.get(&node).copied();
            let mut at =
                cursor(&self.sweep_cursors.lock().unwrap_or_else(|p| p.into_inner())).unwrap_or(0);
            for _ in 0..SWEEP_STEPS {
                let (next, keys) = self.scan(&node, at).await?;
                if self.connector.is_cluster() {
                    for key in keys {
                        let n: i64 = self.run(&self.scripts.reap, now, &[key], &[]).await?;
                        swept += n.max(0) as u64;
                    }
                } else if !keys.is_empty() {
                    let n: i64 = self.run(&self.scripts.reap, now, &keys, &[]).await?;
                    swept += n.max(0) as u64;
                }
                at = next;
                if at == 0 {
                    break;
                }
            }
            self.sweep_cursors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(node, at);
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error Redis would send as `line` (`-CODE detail`).
    fn server(line: &str) -> RedisError {
        let value = redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).expect("resp");
        value.extract_error().expect_err("an error reply")
    }

    fn io(kind: std::io::ErrorKind) -> RedisError {
        std::io::Error::new(kind, "test").into()
    }

    #[test]
    fn each_kind_of_redis_failure_is_a_503_or_a_500() {
        use std::io::ErrorKind as Io;
        let unavailable = [
            // Any failure of the connection itself, whatever its io kind.
            io(Io::Other),
            io(Io::TimedOut),
            io(Io::ConnectionRefused),
            io(Io::BrokenPipe),
            io(Io::UnexpectedEof),
            server("LOADING Redis is loading the dataset in memory"),
            server("TRYAGAIN Multiple keys request during rehashing of slot"),
            server("MASTERDOWN Link with MASTER is down"),
            server("CLUSTERDOWN The cluster is down"),
            server("READONLY You can't write against a read only replica."),
            server("MOVED 3999 127.0.0.1:6381"),
            server("ASK 3999 127.0.0.1:6381"),
            server("MISCONF Errors writing to the AOF file"),
            server("OOM command not allowed when used memory > 'maxmemory'."),
            server("NOREPLICAS Not enough good replicas to write."),
            server("BUSY Redis is busy running a script."),
            server("NOAUTH Authentication required."),
            server("WRONGPASS invalid username-password pair"),
            RedisError::from((
                ErrorKind::MasterNameNotFoundBySentinel,
                "no primary by that name",
            )),
        ];
        for e in unavailable {
            let shown = e.to_string();
            assert!(
                matches!(store_error(e), StoreError::Unavailable(_)),
                "{shown} should be 503"
            );
        }
        for e in [
            server("ERR user_script:1: corrupt session record"),
            server("WRONGTYPE Operation against a key holding the wrong kind of value"),
            server("NOSCRIPT No matching script."),
        ] {
            let shown = e.to_string();
            assert!(
                matches!(store_error(e), StoreError::Internal(_)),
                "{shown} should be 500"
            );
        }
    }

    /// Which failures make a node drop its connection and look for the primary again
    /// (`node_lost`), and which mean the node it reached is a replica (`is_demoted`): a script
    /// error or a wrong type is neither, so it never costs a reconnect.
    #[test]
    fn lost_and_demoted_nodes_are_told_from_other_failures() {
        use std::io::ErrorKind as Io;
        for e in [
            io(Io::Other),
            io(Io::TimedOut),
            io(Io::ConnectionRefused),
            io(Io::BrokenPipe),
            server("READONLY You can't write against a read only replica."),
            server("MASTERDOWN Link with MASTER is down"),
            server("LOADING Redis is loading the dataset in memory"),
        ] {
            assert!(node_lost(&e), "{e} means the node may be gone");
        }
        for e in [
            server("ERR user_script:1: corrupt session record"),
            server("WRONGTYPE Operation against a key holding the wrong kind of value"),
            server("NOSCRIPT No matching script."),
            server("OOM command not allowed when used memory > 'maxmemory'."),
        ] {
            assert!(!node_lost(&e), "{e} comes from a working primary");
        }
        assert!(is_demoted(&server(
            "READONLY You can't write against a read only replica."
        )));
        for e in [
            io(Io::BrokenPipe),
            server("MASTERDOWN Link with MASTER is down"),
            server("ERR user_script:1: corrupt session record"),
        ] {
            assert!(!is_demoted(&e), "{e} is not a replica's answer");
        }
    }

    /// Each mistake in `[store]` for Redis is named with its key; each valid shape passes.
    #[test]
    fn redis_settings_name_each_mistake() {
        let problems = |c: RedisConfig| {
            let mut out = Vec::new();
            c.problems(&mut out);
            out
        };
        let url = |u: &str| RedisConfig {
            redis_url: u.into(),
            ..RedisConfig::default()
        };
        for ok in [
            url("redis://redis.internal:6379"),
            url("rediss://redis.internal:6380"),
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into()],
                redis_master_name: "baton".into(),
                ..RedisConfig::default()
            },
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                ..RedisConfig::default()
            },
            // Without replica acks their timeout is not used, so it is not judged.
            RedisConfig {
                replica_ack_timeout_ms: 5000,
                ..url("redis://r:6379")
            },
            RedisConfig {
                replica_acks: 1,
                replica_ack_timeout_ms: 999,
                ..url("redis://r:6379")
            },
        ] {
            assert_eq!(problems(ok), Vec::<String>::new());
        }
        let one = |c: RedisConfig, says: &str| {
            let out = problems(c);
            assert!(
                out.len() == 1 && out[0].contains(says),
                "expected one problem saying {says:?}, got {out:?}"
            );
        };
        one(RedisConfig::default(), "needs redis_url");
        one(
            url("http://redis.internal:6379"),
            "must start with redis://",
        );
        one(url("redis.internal:6379"), "must start with redis://");
        one(
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                ..url("redis://r:6379")
            },
            "exactly one of",
        );
        one(
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into(), "tcp://s2:26379".into()],
                redis_master_name: "baton".into(),
                ..RedisConfig::default()
            },
            "store.redis_sentinels: each must start",
        );
        one(
            RedisConfig {
                redis_sentinels: vec!["redis://s1:26379".into()],
                ..RedisConfig::default()
            },
            "store.redis_master_name: redis_sentinels needs",
        );
        one(
            RedisConfig {
                redis_master_name: "baton".into(),
                ..url("redis://r:6379")
            },
            "only with redis_sentinels",
        );
        one(
            RedisConfig {
                redis_cluster_nodes: vec!["redis://r1:6379".into()],
                redis_prefix: "{baton}:".into(),
                ..RedisConfig::default()
            },
            "store.redis_prefix",
        );
        one(
            RedisConfig {
                timeout_ms: 0,
                ..url("redis://r:6379")
            },
            "store.timeout_ms",
        );
        for ack in [0, 1000, 2000] {
            one(
                RedisConfig {
                    replica_acks: 1,
                    replica_ack_timeout_ms: ack,
                    ..url("redis://r:6379")
                },
                "store.replica_ack_timeout_ms",
            );
        }
    }

    #[test]
    fn logs_never_show_a_password() {
        let config = RedisConfig {
            redis_url: "redis://user:s3cret@redis.internal:6379/2".into(),
            ..RedisConfig::default()
        };
        assert_eq!(
            config.redacted_url(),
            "redis://user:***@redis.internal:6379/2"
        );
        assert_eq!(config.describe(), config.redacted_url());
        let plain = RedisConfig {
            redis_url: "redis://redis.internal:6379".into(),
            ..RedisConfig::default()
        };
        assert_eq!(plain.redacted_url(), "redis://redis.internal:6379");
        let sentinel = RedisConfig {
            redis_sentinels: vec![
                "redis://:pw1@10.0.0.1:26379".into(),
                "rediss://10.0.0.2:26379".into(),
            ],
            redis_master_name: "baton".into(),
            ..RedisConfig::default()
        };
        let shown = sentinel.describe();
        assert_eq!(
            shown,
            "sentinel \"baton\" via [redis://:***@10.0.0.1:26379, rediss://10.0.0.2:26379]"
        );
        let cluster = RedisConfig {
            redis_cluster_nodes: vec!["redis://:pw@10.0.0.3:7000".into()],
            ..RedisConfig::default()
        };
        assert_eq!(cluster.describe(), "cluster [redis://:***@10.0.0.3:7000]");
    }

    fn problems(config: &RedisConfig) -> Vec<String> {
        let mut out = Vec::new();
        config.problems(&mut out);
        out
    }

    #[test]
    fn exactly_one_topology_with_what_it_needs() {
        let single = RedisConfig {
            redis_url: "redis://h:6379".into(),
            ..RedisConfig::default()
        };
        assert!(problems(&single).is_empty());
        assert!(!problems(&RedisConfig::default()).is_empty(), "none");
        let both = RedisConfig {
            redis_cluster_nodes: vec!["redis://h:7000".into()],
            ..single.clone()
        };
        assert!(problems(&both)[0].contains("exactly one"));
        let nameless = RedisConfig {
            redis_sentinels: vec!["redis://h:26379".into()],
            ..RedisConfig::default()
        };
        assert!(problems(&nameless)[0].contains("redis_master_name"));
        let braces = RedisConfig {
            redis_cluster_nodes: vec!["redis://h:7000".into()],
            redis_prefix: "{baton}:".into(),
            ..RedisConfig::default()
        };
        assert!(problems(&braces)[0].contains("redis_prefix"));
        let slow_acks = RedisConfig {
            replica_acks: 1,
            replica_ack_timeout_ms: 1000,
            ..single.clone()
        };
        assert!(problems(&slow_acks)[0].contains("replica_ack_timeout_ms"));
        let acks = RedisConfig {
            replica_acks: 1,
            replica_ack_timeout_ms: 999,
            ..single
        };
        assert!(problems(&acks).is_empty());
    }

    #[tokio::test]
    async fn sweep_reads_only_session_hashes() {
        let config = RedisConfig {
            redis_url: "redis://127.0.0.1:1".into(),
            redis_prefix: "p:".into(),
            ..RedisConfig::default()
        };
        let store = RedisStore::open(
            &config,
            Timeouts {
                idle_ms: 1,
                absolute_ms: 2,
            },
        )
        .await
        .expect("open");
        for key in ["p:s:0123abcd", "p:{a-_9}s:a-_9.0123abcd"] {
            assert!(store.is_session_key(key), "{key}");
        }
        for key in [
            "p:ids:0123abcd",
            "p:{a-_9}ids:a-_9.0123",
            "p:{a-_9}hs:a-_9.0123",
            "p:{a-_9}id:ff00",
            "p:{toolong}s:x",
            "q:s:0123",
            "p:{a-_9}s:a:b",
        ] {
            assert!(!store.is_session_key(key), "{key}");
        }
        assert_eq!(store.session_key("a-_9.0123"), "p:{a-_9}s:a-_9.0123");
        assert_eq!(store.session_key("0123"), "p:s:0123");
    }

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
