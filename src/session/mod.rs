//! Sessions: the secret id a browser holds, the record the broker keeps, and the storage contract.
//!
//! A browser proves its session with a `SessionId`: 256 random bits from the OS, sent only in the
//! `__Host-` cookies. The store never sees it: it is keyed by `IdHash` (SHA-256 of the id), so a
//! leaked database or Redis dump holds nothing a browser could replay. One server-side session
//! (named by an internal `uid`) can be reached through several ids: a handoff binds a fresh id,
//! for the destination site's cookies, to the same session.

pub mod metered;
pub mod redis;
pub mod sqlite;
pub mod store_config;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use crate::identity::SubjectHash;

use crate::clock::Timestamp;
use crate::random::{self, hex};

/// The secret a browser holds. `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

const ID_BYTES: usize = 32;
/// Length of the base64url text of `ID_BYTES` bytes.
const ID_LEN: usize = 43;

impl SessionId {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random::bytes::<ID_BYTES>()))
    }

    /// A fresh id for the session `uid`: random, except that it starts with the session's slot
    /// tag (`slot_tag`), so that the store keeps it in the session's Redis Cluster hash slot. A
    /// session from before tags has none: the id is then wholly random. The tag is 24 bits the
    /// session's ids share; the other 39 characters (234 bits) are random.
    pub fn generate_for(uid: &Uid) -> Self {
        let mut id = Self::generate();
        if let Some(tag) = uid.slot_tag() {
            id.0.replace_range(..TAG_LEN, tag);
        }
        id
    }

    /// Accepts only what `generate` produces, so junk from a cookie never reaches the store.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> IdHash {
        IdHash {
            hash: hex(&Sha256::digest(self.0.as_bytes())),
            tag: self.0[..TAG_LEN].to_owned(),
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// The credential a partner page holds where the browser lets the broker keep no cookie at all
/// (WebKit's default, Firefox blocking every third-party cookie): kept in the page's own
/// first-party storage and sent by the iframe with each call.
///
/// It is a secret of the same shape as `SessionId` but never one: a fresh random value bound to
/// one partner origin. The store keys it by SHA-256 of origin and key together, so the same key
/// presented for any other origin reaches nothing, and it is reached, expired and ended exactly
/// like a cookie id (the contract of `SessionStore` holds for it unchanged).
#[derive(Clone, PartialEq, Eq)]
pub struct PageKey(SessionId);

impl PageKey {
    pub fn generate() -> Self {
        Self(SessionId::generate())
    }

    /// A fresh key for the session `uid`, in its slot (see `SessionId::generate_for`).
    pub fn generate_for(uid: &Uid) -> Self {
        Self(SessionId::generate_for(uid))
    }

    /// Accepts only what `generate` produces.
    pub fn parse(raw: &str) -> Option<Self> {
        SessionId::parse(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// What the store keys this key by, for pages of `origin` only.
    pub fn hash(&self, origin: &crate::origin::Origin) -> IdHash {
        let mut h = Sha256::new();
        h.update(b"page-key\n");
        h.update(origin.as_str().as_bytes());
        h.update(b"\n");
        h.update(self.0.as_str().as_bytes());
        IdHash {
            hash: hex(&h.finalize()),
            tag: self.0.as_str()[..TAG_LEN].to_owned(),
        }
    }
}

impl fmt::Debug for PageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageKey(<redacted>)")
    }
}

/// What the store keys ids by: hex SHA-256 of the id, and the id's slot tag (its first
/// characters, not secret: see `slot_tag`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdHash {
    hash: String,
    tag: String,
}

impl IdHash {
    /// The hash, the whole key of SQLite (and of Redis before slot tags).
    pub fn as_str(&self) -> &str {
        &self.hash
    }

    /// The slot tag the id was minted with: the Redis store keeps the id under it.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// Characters of a slot tag.
pub const TAG_LEN: usize = 4;

/// The internal name of a server-side session; never sent to a browser as a credential.
///
/// Its text is `<tag>.<32 hex>`, or 32 hex for a session from before slot tags. Redis Cluster
/// runs a script only when all its keys are in one hash slot; the slot of a key is that of its
/// `{tag}`. So every key of one session (its hash, its ids, its handoff records) carries the
/// session's tag, and every name the store is later asked about carries it too: the uid, each id
/// and page key (their first `TAG_LEN` characters, see `SessionId::generate_for`), each handoff
/// [`Jti`]. A new session takes the tag of the random id it is created with. Names from before
/// tags have none and keep their old keys (docs/deployment.md).
///
/// Parsed once, where its text comes back from a store or a handoff record: [`Uid::parse`]
/// accepts only what [`Uid::new_in`] mints, so a store row that is not a broker's name is
/// corruption, never a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uid(String);

impl Uid {
    /// A fresh name in the slot `tag` (an id's tag), or a wholly random one without (`None`).
    pub fn new_in(tag: Option<&str>) -> Self {
        Self(tagged_name(tag))
    }

    /// Accepts only what `new_in` produces.
    pub fn parse(raw: &str) -> Option<Self> {
        is_name(raw).then(|| Self(raw.to_owned()))
    }

    /// The text the stores keep (SQLite columns, Redis keys).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slot tag it was minted with, or `None` for a session from before tags.
    pub fn slot_tag(&self) -> Option<&str> {
        slot_tag(&self.0)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a single-use handoff record (a token's `jti`): the same shape as the [`Uid`] of
/// the session it leads to, in that session's slot. Only a jti the broker minted parses; any
/// other text a token carries was never issued.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jti(String);

impl Jti {
    /// A fresh name for a handoff to `uid`, in its slot.
    pub fn new_for(uid: &Uid) -> Self {
        Self(tagged_name(uid.slot_tag()))
    }

    /// Accepts only what `new_for` produces.
    pub fn parse(raw: &str) -> Option<Self> {
        is_name(raw).then(|| Self(raw.to_owned()))
    }

    /// The text the stores keep.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slot tag of its session, or `None` for one from before tags.
    pub fn slot_tag(&self) -> Option<&str> {
        slot_tag(&self.0)
    }
}

impl fmt::Display for Jti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<tag>.<32 hex>` with a tag, else 32 hex.
fn tagged_name(tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{tag}.{}", random::hex_128()),
        None => random::hex_128(),
    }
}

/// Whether `raw` is a name `tagged_name` makes: 32 lowercase hex, after a slot tag or not.
fn is_name(raw: &str) -> bool {
    let hex = match slot_tag(raw) {
        Some(_) => &raw[TAG_LEN + 1..],
        None => raw,
    };
    hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The slot tag of a name (uid, jti) minted with one, or `None` for a name from before tags:
/// `TAG_LEN` characters of `A-Z a-z 0-9 - _`, then a dot.
pub(crate) fn slot_tag(name: &str) -> Option<&str> {
    let tag = name.get(..TAG_LEN)?;
    let ok = name.as_bytes().get(TAG_LEN) == Some(&b'.')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(tag)
}

pub type Values = BTreeMap<String, String>;

/// The key rule: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, except `.` and `..`: a key is a
/// path segment (`/v1/session/{key}`), and URL parsers (`fetch` among them) resolve those two
/// away, so they could never reach their own path. The iframe and the library apply the same rule
/// before sending (`js/`); both sides are tested against `tests/data/keys.json`.
pub fn is_valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub uid: Uid,
    pub values: Values,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
}

/// When sessions die. Idle: no use for `idle_ms`. Absolute: `absolute_ms` after creation, however
/// busy; a handoff does not restart it, so a stolen session cannot be kept alive forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl Timeouts {
    pub fn expires_at(&self, created_at: Timestamp, last_seen: Timestamp) -> Timestamp {
        (last_seen.saturating_add(self.idle_ms)).min(created_at.saturating_add(self.absolute_ms))
    }

    pub fn is_live(&self, created_at: Timestamp, last_seen: Timestamp, now: Timestamp) -> bool {
        now < self.expires_at(created_at, last_seen)
    }

    /// Whether a read at `now` must write `last_seen` back. Reads are most of the traffic, and a
    /// write per read would cost a synced commit each; moving `last_seen` in steps of 1/60 of the
    /// idle timeout (at most 30 s) shortens a session's idle life by under 2%, never lengthens it.
    pub fn touch_due(&self, last_seen: Timestamp, now: Timestamp) -> bool {
        now.saturating_sub(last_seen) >= self.touch_step_ms()
    }

    /// The `last_seen` age from which a read writes it back (the one home of the step: the Redis
    /// script gets it as a number).
    pub fn touch_step_ms(&self) -> i64 {
        (self.idle_ms / 60).clamp(1, 30_000)
    }
}

/// What `SessionStore::set_value` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// Written: the session as it is now.
    Done(Session),
    /// The session is missing or expired: nothing written.
    Missing,
    /// The key is new and the session already holds `max_values` values: nothing written.
    Full,
}

/// What `SessionStore::adopt` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdoptOutcome {
    /// Bound, the empty sessions reached ended: the adopted session as it is now.
    Done(Session),
    /// The session to adopt is missing or expired: nothing changed.
    Missing,
    /// Another live session reached holds a value: nothing changed.
    Conflict,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached now (network, timeout, Redis down): 503, retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: corrupt data, a bug. 500.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Where sessions live. Every backend passes the same contract suite (`tests/integration/store_contract.rs`).
///
/// Contract:
/// - A session is *live* at `now` while `now < min(last_seen + idle, created_at + absolute)`
///   (`Timeouts::is_live`). A session that is not live is, for every method, the same as a
///   missing one: it is never returned, never changed, never revived. Backends may delete it at
///   any time after that (Redis expiry, `sweep`).
/// - Every successful write of a live session through `set_value`, `remove_value`, `bind`,
///   `adopt` or `link_identity` sets its `last_seen` to `now` (sliding idle timeout), and so do
///   `load` and `load_identity` when `Timeouts::touch_due(last_seen, now)`; `created_at` never
///   changes.
/// - All methods are atomic per call (but see `link_identity` on a link kept apart), and an `Ok` means durable: it survives a restart of the
///   broker (and, for SQLite, a `kill -9`).
/// - Handoff records are single use: `take_handoff` returns the session uid at most once, and
///   never after `expires_at`.
/// - The new `id` of `bind` and `adopt` and the `jti` of `put_handoff` are minted for the
///   session they join (`SessionId::generate_for`, `PageKey::generate_for`, `Jti::new_for`), as the
///   broker always does: a backend may refuse others (Redis Cluster keeps them in the session's
///   hash slot, and answers `Internal` for one of another slot).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Creates an empty live session reachable through `id`.
    async fn create(&self, id: &IdHash, now: Timestamp) -> Result<Session, StoreError>;

    /// The live session `id` reaches, touched; `None` when missing or expired.
    async fn load(&self, id: &IdHash, now: Timestamp) -> Result<Option<Session>, StoreError>;

    /// Sets `key` to `value` in the live session `uid`: `Done` with the session as it is now,
    /// `Missing` when it is missing or expired. A `key` the session does not hold yet is refused
    /// with `Full` when the session already holds `max_values` values; replacing a value never
    /// counts as new. The count is checked in the same atomic step as the write, so no number of
    /// concurrent writers takes a session past `max_values`. `Missing` and `Full` change nothing.
    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError>;

    /// A write that reaches its session by `id`: what `load(id, now)` and then, on the session
    /// found, `set_value(uid, key, value, now, max_values)` do. `None` when `id` reaches no live
    /// session (nothing changed, as `load`); otherwise the outcome of `set_value`, after the
    /// touch of `load`. A backend may do both in one atomic step (one round trip, on Redis),
    /// and then never answers `Missing`. Every wrapper of a store must pass this call on, or the
    /// inner store's own version is never used.
    async fn load_and_set(
        &self,
        id: &IdHash,
        key: &str,
        value: &str,
        now: Timestamp,
        max_values: usize,
    ) -> Result<Option<SetOutcome>, StoreError> {
        let Some(session) = self.load(id, now).await? else {
            return Ok(None);
        };
        self.set_value(&session.uid, key, value, now, max_values)
            .await
            .map(Some)
    }

    /// Removes `key` from the live session `uid`; `None` when it is missing or expired.
    async fn remove_value(
        &self,
        uid: &Uid,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;

    /// Deletes the session `uid`, every id that reaches it and its handoff records. Idempotent.
    async fn end(&self, uid: &Uid) -> Result<(), StoreError>;

    /// Makes the live session `uid` reachable through `id` too; `false` when it is gone.
    async fn bind(&self, uid: &Uid, id: &IdHash, now: Timestamp) -> Result<bool, StoreError>;

    /// A handoff's redeem: makes the live session `uid` reachable through `id` too, for a request
    /// that already reaches the sessions of the ids `reached` (its cookies and page key), in one
    /// atomic step:
    /// - `Missing` when `uid` is missing or expired;
    /// - `Conflict` when a live session reached through `reached`, other than `uid`, holds any
    ///   value (a token never replaces a session in use);
    /// - otherwise every live session reached other than `uid` (all empty) is ended as by `end`,
    ///   `id` is bound to `uid` as by `bind`, and `Done` gives `uid`'s session as it is now.
    ///
    /// `Missing` and `Conflict` change nothing. A write racing an adopt into a session the adopt
    /// would end is never lost: it is ordered either before the adopt, which then sees the value
    /// and answers `Conflict`, or after it, and then finds its session ended (`set_value` answers
    /// `Missing`, nothing written): a writer told `Missing` must report the failure, not put the
    /// value into a new session, which would silently replace the adopted one.
    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: Timestamp,
    ) -> Result<AdoptOutcome, StoreError>;

    /// Records a handoff `jti` for session `uid`, redeemable once until `expires_at`.
    async fn put_handoff(
        &self,
        jti: &Jti,
        uid: &Uid,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Consumes the handoff record `jti`: the session uid the first time before expiry, else `None`.
    async fn take_handoff(&self, jti: &Jti, now: Timestamp) -> Result<Option<Uid>, StoreError>;

    /// The live session the identity `subject` is linked to (`link_identity`), touched as `load`
    /// touches it; `None` when the subject is linked to nothing, or to a session that is missing
    /// or expired (a backend may then drop that link on the spot).
    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError>;

    /// Links `subject` to the live session `uid`, replacing any earlier link of that subject, and
    /// touches the session as a write does; `false`, nothing changed, when `uid` is missing or
    /// expired. A link dies with its session: once the session is ended (`end`, or by an
    /// `adopt`), expired or swept, `load_identity` finds nothing. Several subjects may be linked
    /// to one session; a subject is linked to at most one.
    ///
    /// A backend may keep the link apart from the session (Redis Cluster: another hash slot), so
    /// this need not be one atomic step with the session's liveness: a link that outlives its
    /// session is never followed (`load_identity` checks the session) and may be left to expire.
    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// A customer's `forget()`: the session `uid` becomes unreachable through every id bound to it
    /// (the cookie ids and page keys of every browser, on every site) and its handoff records are
    /// deleted, so no token minted before can bind it again; the session itself, its values and
    /// its identity links stay (`load_identity` still finds it). Idempotent, and nothing for a
    /// missing session.
    async fn detach(&self, uid: &Uid) -> Result<(), StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Deletes the sessions that have expired by `now`, with every id and handoff record of
    /// theirs; returns how many sessions went. A backend may do a bounded slice of the work per
    /// call and go on from there on the next, so every expired session is gone after enough
    /// calls. Expired handoff records of live sessions may be left to the backend's own expiry.
    async fn sweep(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Closes the store when the application stops: the writes already made are finished, then
    /// connections are closed; calls after it fail. Returns once that is done, so what the store
    /// leaves on disk is quiescent. The default does nothing, for a backend whose connections
    /// close when dropped and leave nothing to settle (Redis).
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let id = SessionId::generate();
        let key = PageKey::generate();
        let shown = format!("{id:?} {key:?} {:?}", Some(&id));
        assert!(!shown.contains(id.as_str()) && !shown.contains(key.as_str()));
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn ids_minted_for_a_session_carry_its_slot_tag() {
        let first = SessionId::generate();
        let uid = Uid::new_in(Some(first.hash().tag()));
        let tag = uid.slot_tag().expect("a tagged uid");
        assert_eq!(tag, &first.as_str()[..TAG_LEN]);
        assert_eq!(uid.as_str().len(), TAG_LEN + 1 + 32);
        assert_eq!(
            Jti::new_for(&uid).slot_tag(),
            Some(tag),
            "a jti in its session's slot"
        );
        for _ in 0..20 {
            let id = SessionId::generate_for(&uid);
            assert!(SessionId::parse(id.as_str()).is_some(), "still a valid id");
            assert_eq!(id.hash().tag(), tag);
            assert_ne!(id, SessionId::generate_for(&uid), "random past the tag");
            assert_eq!(PageKey::generate_for(&uid).as_str()[..TAG_LEN], *tag);
        }
        // Names from before tags (32 hex) have none: their ids are wholly random.
        let legacy = Uid::new_in(None);
        assert_eq!(legacy.slot_tag(), None);
        assert_eq!(Jti::new_for(&legacy).slot_tag(), None);
        assert_eq!(slot_tag("abc.def"), None);
        assert_eq!(slot_tag("ab{d.def"), None);
        assert_eq!(slot_tag("a-_9.x"), Some("a-_9"));
        let ids: std::collections::HashSet<String> = (0..20)
            .map(|_| SessionId::generate_for(&legacy).as_str()[..TAG_LEN].to_owned())
            .collect();
        assert!(ids.len() > 1, "no shared tag without one");
    }

    #[test]
    fn uids_and_jtis_parse_only_what_the_broker_mints_and_print_it_back() {
        let tagged = Uid::new_in(Some("a-_9"));
        let legacy = Uid::new_in(None);
        let jti = Jti::new_for(&tagged);
        for name in [tagged.as_str(), legacy.as_str(), jti.as_str()] {
            assert_eq!(
                Uid::parse(name).map(|u| u.to_string()).as_deref(),
                Some(name)
            );
            assert_eq!(
                Jti::parse(name).map(|j| j.to_string()).as_deref(),
                Some(name)
            );
        }
        let hex = "0123456789abcdef0123456789abcdef";
        for never in [
            "",
            "never-issued",
            "jti-1",
            &hex[1..],
            &format!("{hex}0"),
            &hex.to_uppercase(),
            &format!("abc.{hex}"),
            &format!("ab{{d.{hex}"),
            &format!("abcd.{hex}0"),
            &format!("abcd-{hex}"),
            &format!("abcd.{}", &hex[1..]),
            &format!("{}g", &hex[1..]),
        ] {
            assert_eq!(Uid::parse(never), None, "{never:?}");
            assert_eq!(Jti::parse(never), None, "{never:?}");
        }
        assert_eq!(
            Uid::parse(&format!("abcd.{hex}"))
                .and_then(|u| u.slot_tag().map(str::to_owned))
                .as_deref(),
            Some("abcd")
        );
    }

    #[test]
    fn the_key_rule_agrees_with_the_shared_corpus() {
        let corpus: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/keys.json")).expect("json");
        let list = |name: &str| -> Vec<String> {
            corpus[name]
                .as_array()
                .expect("array")
                .iter()
                .map(|k| k.as_str().expect("string").to_owned())
                .collect()
        };
        let (valid, invalid) = (list("valid"), list("invalid"));
        assert!(!valid.is_empty() && !invalid.is_empty());
        for k in &valid {
            assert!(is_valid_key(k), "{k:?} should be valid");
        }
        for k in &invalid {
            assert!(!is_valid_key(k), "{k:?} should be invalid");
        }
    }

    #[test]
    fn reads_touch_in_steps_of_a_sixtieth_of_idle_capped_at_30_s() {
        for (idle_ms, step) in [
            (1, 1),
            (59, 1),
            (60, 1),
            (6_000, 100),
            (1_800_000, 30_000),
            (86_400_000, 30_000),
        ] {
            let t = Timeouts {
                idle_ms,
                absolute_ms: idle_ms * 2,
            };
            assert_eq!(t.touch_step_ms(), step, "idle {idle_ms}");
            let last_seen = 1_800_000_000_000;
            assert!(t.touch_due(last_seen, last_seen + step), "idle {idle_ms}");
            assert!(
                !t.touch_due(last_seen, last_seen + step - 1),
                "idle {idle_ms}"
            );
        }
    }
}
