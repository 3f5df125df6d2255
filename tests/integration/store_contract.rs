//! The `SessionStore` contract, run against every backend: the same suite, written once.
//! Each backend gets a module from `store_contract!` with a factory that makes a fresh, isolated
//! store (SQLite: in memory, and on a file in a temporary directory; Redis: a fresh key prefix)
//! for the given timeouts.

use std::sync::Arc;

use baton::session::{
    AdoptOutcome, IdHash, Jti, Session, SessionId, SessionStore, SetOutcome, StoreError,
    SubjectHash, Timeouts, Uid,
};

pub const T0: i64 = 1_800_000_000_000;
pub const TIMEOUTS: Timeouts = Timeouts {
    idle_ms: 60_000,
    absolute_ms: 300_000,
};

pub fn id() -> IdHash {
    SessionId::generate().hash()
}

/// An id as the broker mints it for the existing session `uid` (to bind, or to adopt with): in
/// its slot (`SessionId::generate_for`), which Redis Cluster requires.
pub fn id_for(uid: &Uid) -> IdHash {
    SessionId::generate_for(uid).hash()
}

/// A fresh handoff `jti`, as the broker mints it for session `uid`: in its slot.
pub fn jti_for(uid: &Uid) -> Jti {
    Jti::new_for(uid)
}

/// A uid the broker could have minted but no store holds: a session that never was.
pub fn nope() -> Uid {
    Uid::new_in(Some(id().tag()))
}

/// Far more values than any test writes: `set` is never refused for the count.
pub const ROOM: usize = 1000;

/// `set_value` with `ROOM`: the session written, or `None` when it is missing or expired.
pub async fn set(
    store: &dyn SessionStore,
    uid: &Uid,
    key: &str,
    value: &str,
    now: i64,
) -> Option<Session> {
    match store
        .set_value(uid, key, value, now, ROOM)
        .await
        .expect("set")
    {
        SetOutcome::Done(session) => Some(session),
        SetOutcome::Missing => None,
        SetOutcome::Full => panic!("{ROOM} values is never full"),
    }
}

pub async fn create_then_load(store: Arc<dyn SessionStore>) {
    let id = id();
    let created = store.create(&id, T0).await.expect("create");
    assert!(created.values.is_empty());
    assert_eq!((created.created_at, created.last_seen), (T0, T0));
    let loaded = store
        .load(&id, T0 + 1000)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(loaded.uid, created.uid);
    assert_eq!(loaded.created_at, T0);
    assert_eq!(loaded.last_seen, T0 + 1000, "load touches the session");
}

/// Reads move `last_seen` in steps (`Timeouts::touch_due`), writes always.
pub async fn reads_touch_in_steps(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let step = (TIMEOUTS.idle_ms / 60).clamp(1, 30_000);
    let early = store
        .load(&id, T0 + step - 1)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(early.last_seen, T0, "a read before the step writes nothing");
    let due = store
        .load(&id, T0 + step)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(due.last_seen, T0 + step);
    let w = set(&*store, &s.uid, "k", "v", T0 + step + 1)
        .await
        .expect("live");
    assert_eq!(w.last_seen, T0 + step + 1, "a write always touches");
}

pub async fn missing_id_is_none(store: Arc<dyn SessionStore>) {
    assert!(store.load(&id(), T0).await.expect("load").is_none());
    assert!(set(&*store, &nope(), "k", "v", T0).await.is_none());
    assert!(
        store
            .remove_value(&nope(), "k", T0)
            .await
            .expect("rm")
            .is_none()
    );
    let never = nope();
    assert!(!store.bind(&never, &id_for(&never), T0).await.expect("bind"));
    store
        .end(&nope())
        .await
        .expect("end of a missing session is fine");
}

pub async fn values_round_trip(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let v = "ünïcödé \"quoted\" \n 🎉".repeat(10);
    let after = set(&*store, &s.uid, "chat", &v, T0).await.expect("live");
    assert_eq!(after.values.get("chat"), Some(&v));
    set(&*store, &s.uid, "other", "2", T0).await.expect("live");
    set(&*store, &s.uid, "chat", "replaced", T0)
        .await
        .expect("live");
    let loaded = store.load(&id, T0).await.expect("load").expect("live");
    assert_eq!(loaded.values.len(), 2);
    assert_eq!(loaded.values["chat"], "replaced");
    let after = store
        .remove_value(&s.uid, "chat", T0)
        .await
        .expect("rm")
        .expect("live");
    assert!(!after.values.contains_key("chat"));
    let loaded = store.load(&id, T0).await.expect("load").expect("live");
    assert_eq!(loaded.values.keys().collect::<Vec<_>>(), vec!["other"]);
}

pub async fn idle_timeout_slides(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    // Used every 50 s: never idle for 60 s, so alive at T0 + 200 s.
    for step in 1..=4 {
        let now = T0 + step * 50_000;
        assert!(
            store.load(&id, now).await.expect("load").is_some(),
            "alive at step {step}"
        );
    }
    set(&*store, &s.uid, "k", "v", T0 + 210_000)
        .await
        .expect("live");
    // Then left alone for exactly the idle timeout: gone, and stays gone.
    let idle_end = T0 + 210_000 + TIMEOUTS.idle_ms;
    assert!(store.load(&id, idle_end - 1).await.expect("load").is_some());
    assert!(
        store
            .load(&id, idle_end + TIMEOUTS.idle_ms)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        set(&*store, &s.uid, "k", "v", idle_end + TIMEOUTS.idle_ms)
            .await
            .is_none()
    );
}

pub async fn expired_is_never_revived(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let late = T0 + TIMEOUTS.idle_ms;
    assert!(
        store.load(&id, late).await.expect("load").is_none(),
        "idle timeout is exclusive"
    );
    assert!(set(&*store, &s.uid, "k", "v", late).await.is_none());
    assert!(
        !store
            .bind(&s.uid, &id_for(&s.uid), late)
            .await
            .expect("bind")
    );
    // Even asked with an earlier clock afterwards, an expired session may be gone for good; but it
    // must never come back at a later time.
    assert!(store.load(&id, late + 1).await.expect("load").is_none());
}

pub async fn absolute_timeout_caps_busy_sessions(store: Arc<dyn SessionStore>) {
    let id = id();
    store.create(&id, T0).await.expect("create");
    let mut now = T0;
    while now + 30_000 < T0 + TIMEOUTS.absolute_ms {
        now += 30_000;
        assert!(
            store.load(&id, now).await.expect("load").is_some(),
            "alive at {now}"
        );
    }
    assert!(
        store
            .load(&id, T0 + TIMEOUTS.absolute_ms)
            .await
            .expect("load")
            .is_none()
    );
}

pub async fn bind_shares_the_session(store: Arc<dyn SessionStore>) {
    let a = id();
    let s = store.create(&a, T0).await.expect("create");
    let b = id_for(&s.uid);
    set(&*store, &s.uid, "chat", "1", T0).await.expect("live");
    assert!(store.bind(&s.uid, &b, T0 + 1000).await.expect("bind"));
    let via_b = store
        .load(&b, T0 + 2000)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(via_b.uid, s.uid);
    assert_eq!(via_b.values["chat"], "1");
    assert_eq!(
        via_b.created_at, T0,
        "binding does not restart the absolute timeout"
    );
    set(&*store, &s.uid, "chat", "2", T0 + 3000)
        .await
        .expect("live");
    assert_eq!(
        store
            .load(&a, T0 + 4000)
            .await
            .expect("load")
            .expect("live")
            .values["chat"],
        "2"
    );
    assert!(
        store
            .load(&b, T0 + TIMEOUTS.absolute_ms)
            .await
            .expect("load")
            .is_none()
    );
}

pub async fn end_removes_every_id_and_handoff(store: Arc<dyn SessionStore>) {
    let a = id();
    let s = store.create(&a, T0).await.expect("create");
    let (b, jti) = (id_for(&s.uid), jti_for(&s.uid));
    assert!(store.bind(&s.uid, &b, T0).await.expect("bind"));
    store
        .put_handoff(&jti, &s.uid, T0 + 60_000)
        .await
        .expect("put");
    store.end(&s.uid).await.expect("end");
    assert!(store.load(&a, T0).await.expect("load").is_none());
    assert!(store.load(&b, T0).await.expect("load").is_none());
    assert!(store.take_handoff(&jti, T0).await.expect("take").is_none());
    store.end(&s.uid).await.expect("ending twice is fine");
}

pub async fn handoff_is_single_use(store: Arc<dyn SessionStore>) {
    let s = store.create(&id(), T0).await.expect("create");
    let (j1, j2) = (jti_for(&s.uid), jti_for(&s.uid));
    store
        .put_handoff(&j1, &s.uid, T0 + 60_000)
        .await
        .expect("put");
    assert_eq!(
        store.take_handoff(&j1, T0 + 1).await.expect("take"),
        Some(s.uid.clone())
    );
    assert_eq!(store.take_handoff(&j1, T0 + 2).await.expect("take"), None);
    store
        .put_handoff(&j2, &s.uid, T0 + 60_000)
        .await
        .expect("put");
    assert_eq!(
        store.take_handoff(&j2, T0 + 60_000).await.expect("take"),
        None,
        "expired"
    );
    assert_eq!(
        store
            .take_handoff(&jti_for(&s.uid), T0)
            .await
            .expect("take"),
        None
    );
}

pub async fn concurrent_takes_yield_one_winner(store: Arc<dyn SessionStore>) {
    let s = store.create(&id(), T0).await.expect("create");
    let jti = jti_for(&s.uid);
    store
        .put_handoff(&jti, &s.uid, T0 + 60_000)
        .await
        .expect("put");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let jti = jti.clone();
            tokio::spawn(async move { store.take_handoff(&jti, T0).await.expect("take") })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("join").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub async fn concurrent_writes_lose_nothing(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let uid = s.uid.clone();
            tokio::spawn(async move {
                set(&*store, &uid, &format!("k{i}"), "v", T0)
                    .await
                    .expect("live");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(
        store
            .load(&id, T0)
            .await
            .expect("load")
            .expect("live")
            .values
            .len(),
        20
    );
}

/// The value limit: a new key past it is refused and changes nothing (not even `last_seen`); a
/// replacement is never refused; room made by a removal is usable again.
pub async fn values_are_bounded(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let put = |key: &'static str, value: &'static str, now: i64| {
        let (store, uid) = (Arc::clone(&store), s.uid.clone());
        async move {
            store
                .set_value(&uid, key, value, now, 3)
                .await
                .expect("set")
        }
    };
    for key in ["a", "b", "c"] {
        assert!(
            matches!(put(key, "1", T0).await, SetOutcome::Done(_)),
            "{key}"
        );
    }
    assert_eq!(put("d", "1", T0 + 1000).await, SetOutcome::Full);
    match put("c", "replaced", T0 + 2000).await {
        SetOutcome::Done(after) => {
            assert_eq!(after.values.len(), 3);
            assert_eq!(after.values["c"], "replaced");
            assert_eq!(after.last_seen, T0 + 2000);
        }
        other => panic!("a replacement at the limit: {other:?}"),
    }
    assert_eq!(put("d", "1", T0 + 2000 + 59_000).await, SetOutcome::Full);
    let loaded = store
        .load(&id, T0 + 2000 + 59_000)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(
        loaded.values.keys().collect::<Vec<_>>(),
        vec!["a", "b", "c"],
        "nothing written"
    );
    store
        .remove_value(&s.uid, "a", T0 + 61_000)
        .await
        .expect("rm")
        .expect("live");
    assert!(matches!(
        put("d", "1", T0 + 61_000).await,
        SetOutcome::Done(_)
    ));
    assert_eq!(put("e", "1", T0 + 61_000).await, SetOutcome::Full);
    // Not refused for being full when it is missing: missing is missing.
    assert_eq!(
        store
            .set_value(&nope(), "k", "v", T0, 0)
            .await
            .expect("set"),
        SetOutcome::Missing
    );

    let lonely = store.create(&self::id(), T0).await.expect("create");
    assert_eq!(
        store
            .set_value(&lonely.uid, "k", "v", T0 + 1000, 0)
            .await
            .expect("set"),
        SetOutcome::Full
    );
    assert_eq!(
        store
            .set_value(&lonely.uid, "k", "v", T0 + 60_000, 1)
            .await
            .expect("set"),
        SetOutcome::Missing,
        "idle since creation: the refusal at T0 + 1 s did not touch it"
    );
}

/// The limit is checked in the same atomic step as the write: 40 new keys written at once into a
/// session holding 60 of at most 64 leave exactly 64, and exactly 4 writers are told `Done`;
/// replacements racing them all succeed.
/// `load_and_set` is `load` then `set_value` on the session found: `None` (nothing written) when
/// the id reaches no live session, a dead one never revived; the write touches; `Full` touches
/// only as `load` does, in steps.
pub async fn load_and_set_loads_then_sets(store: Arc<dyn SessionStore>) {
    let step = (TIMEOUTS.idle_ms / 60).clamp(1, 30_000);
    let put = |id: IdHash, key: &'static str, now: i64, max: usize| {
        let store = Arc::clone(&store);
        async move {
            store
                .load_and_set(&id, key, "v", now, max)
                .await
                .expect("load_and_set")
        }
    };
    assert_eq!(
        put(id(), "k", T0, ROOM).await,
        None,
        "an id that reaches nothing"
    );

    let a = id();
    let s = store.create(&a, T0).await.expect("create");
    match put(a.clone(), "k", T0 + 1000, 1).await {
        Some(SetOutcome::Done(after)) => {
            assert_eq!(after.uid, s.uid);
            assert_eq!(after.values["k"], "v");
            assert_eq!((after.created_at, after.last_seen), (T0, T0 + 1000));
        }
        other => panic!("a live session: {other:?}"),
    }
    assert!(matches!(
        put(a.clone(), "k", T0 + 1001, 1).await,
        Some(SetOutcome::Done(_))
    ));
    // A new key past the limit: refused, and touched only once a read would be.
    let early = T0 + 1001 + step - 1;
    assert_eq!(put(a.clone(), "x", early, 1).await, Some(SetOutcome::Full));
    let due = T0 + 1001 + step;
    assert_eq!(put(a.clone(), "x", due, 1).await, Some(SetOutcome::Full));
    let loaded = store.load(&a, due + 1).await.expect("load").expect("live");
    assert_eq!(loaded.last_seen, due, "the refused write touched as a read");
    assert_eq!(loaded.values.keys().collect::<Vec<_>>(), vec!["k"]);

    // Dead by the idle timeout: nothing written, never revived.
    let dead = due + TIMEOUTS.idle_ms;
    assert_eq!(put(a.clone(), "k", dead, ROOM).await, None);
    assert_eq!(store.load(&a, dead).await.expect("load"), None);
    assert_eq!(
        store
            .set_value(&s.uid, "k", "v", dead, ROOM)
            .await
            .expect("set"),
        SetOutcome::Missing
    );
}

pub async fn concurrent_new_keys_stop_at_the_limit(store: Arc<dyn SessionStore>) {
    const MAX: usize = 64;
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    for i in 0..60 {
        set(&*store, &s.uid, &format!("old{i}"), "v", T0)
            .await
            .expect("live");
    }
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let uid = s.uid.clone();
            // Every fifth writer replaces an existing key; the others add new ones.
            let key = if i % 5 == 0 {
                format!("old{i}")
            } else {
                format!("new{i}")
            };
            // Half of them reach the session by its id, as a PUT does.
            let id = id.clone();
            tokio::spawn(async move {
                let outcome = if i % 2 == 0 {
                    store.set_value(&uid, &key, "w", T0 + 1, MAX).await
                } else {
                    let found = store.load_and_set(&id, &key, "w", T0 + 1, MAX).await;
                    found.map(|o| o.expect("live"))
                };
                (key, outcome.expect("set"))
            })
        })
        .collect();
    let (mut added, mut full) = (0, 0);
    for t in tasks {
        let (key, outcome) = t.await.expect("join");
        match (key.starts_with("old"), outcome) {
            (true, SetOutcome::Done(_)) => {}
            (false, SetOutcome::Done(after)) => {
                assert!(after.values.len() <= MAX, "{}", after.values.len());
                added += 1;
            }
            (false, SetOutcome::Full) => full += 1,
            (_, other) => panic!("{key}: {other:?}"),
        }
    }
    let values = store
        .load(&id, T0 + 1)
        .await
        .expect("load")
        .expect("live")
        .values;
    assert_eq!(values.len(), MAX);
    assert_eq!((added, full), (4, 36));
    assert_eq!(values.values().filter(|v| *v == "w").count(), 10 + 4);
}

/// A session that is live and holds one value, reached through the returned id.
async fn session_with_value(store: &dyn SessionStore, now: i64) -> (IdHash, Session) {
    let id = id();
    let s = store.create(&id, now).await.expect("create");
    let s = set(store, &s.uid, "chat", "kept", now).await.expect("live");
    (id, s)
}

/// `adopt` binds the new id and ends every empty session the request reached; ids that reach the
/// adopted session itself, nothing, or a dead session are passed over.
pub async fn adopt_replaces_the_empty_sessions_reached(store: Arc<dyn SessionStore>) {
    let (own, s) = session_with_value(&*store, T0).await;
    let (a, b, new) = (id(), id(), id_for(&s.uid));
    let ea = store.create(&a, T0).await.expect("create");
    store.create(&b, T0 + 1000).await.expect("create");
    let replaced = jti_for(&ea.uid);
    store
        .put_handoff(&replaced, &ea.uid, T0 + 60_000)
        .await
        .expect("put");
    let dead = id();
    let d = store.create(&dead, T0).await.expect("create");
    set(&*store, &d.uid, "old", "x", T0).await.expect("live");
    let now = T0 + TIMEOUTS.idle_ms;
    set(&*store, &s.uid, "chat", "kept", now - 1)
        .await
        .expect("live");
    store.load(&a, now - 1).await.expect("load").expect("live");
    store.load(&b, now - 1).await.expect("load").expect("live");

    let reached = [a.clone(), b.clone(), own.clone(), id(), dead, a.clone()];
    let AdoptOutcome::Done(adopted) = store
        .adopt(&s.uid, &new, &reached, now)
        .await
        .expect("adopt")
    else {
        panic!("nothing reached holds a value");
    };
    assert_eq!(adopted.uid, s.uid);
    assert_eq!(adopted.values["chat"], "kept");
    assert_eq!(
        adopted.created_at, T0,
        "adopting does not restart the absolute timeout"
    );
    assert_eq!(adopted.last_seen, now, "an adopt is a write");
    let via_new = store.load(&new, now).await.expect("load").expect("live");
    assert_eq!(via_new.uid, s.uid);
    assert_eq!(
        store
            .load(&own, now)
            .await
            .expect("load")
            .expect("live")
            .uid,
        s.uid
    );
    assert!(store.load(&a, now).await.expect("load").is_none(), "ended");
    assert!(store.load(&b, now).await.expect("load").is_none(), "ended");
    assert_eq!(
        store.take_handoff(&replaced, now).await.expect("take"),
        None,
        "ended as by `end`: its handoff records too"
    );
}

/// A live session reached that holds a value, winner or not, refuses the adopt, and nothing
/// changes: not the empty session checked before it, not the adopted one's `last_seen`.
pub async fn adopt_refuses_when_a_session_reached_holds_values(store: Arc<dyn SessionStore>) {
    let (_, s) = session_with_value(&*store, T0).await;
    let own = id_for(&s.uid);
    assert!(store.bind(&s.uid, &own, T0).await.expect("bind"));
    let (v, _) = session_with_value(&*store, T0).await;
    let (e, new) = (id(), id_for(&s.uid));
    store.create(&e, T0).await.expect("create");
    let now = T0 + 59_000;
    for reached in [vec![e.clone(), v.clone()], vec![v.clone(), e.clone()]] {
        assert_eq!(
            store
                .adopt(&s.uid, &new, &reached, now)
                .await
                .expect("adopt"),
            AdoptOutcome::Conflict
        );
    }
    assert!(store.load(&new, now).await.expect("load").is_none());
    assert!(
        store.load(&e, now).await.expect("load").is_some(),
        "not ended"
    );
    let valued = store.load(&v, now).await.expect("load").expect("live");
    assert_eq!(valued.values["chat"], "kept");
    assert!(
        store
            .load(&own, T0 + TIMEOUTS.idle_ms)
            .await
            .expect("load")
            .is_none(),
        "the refused adopt did not touch the session it would have adopted"
    );
}

/// Adopting a session that is gone is `Missing` and ends nothing.
pub async fn adopt_of_a_missing_session_changes_nothing(store: Arc<dyn SessionStore>) {
    let never = nope();
    let (e, new) = (id(), id_for(&never));
    store.create(&e, T0).await.expect("create");
    assert_eq!(
        store
            .adopt(&never, &new, std::slice::from_ref(&e), T0)
            .await
            .expect("adopt"),
        AdoptOutcome::Missing
    );
    let (_, s) = session_with_value(&*store, T0).await;
    let new = id_for(&s.uid);
    let late = T0 + TIMEOUTS.idle_ms;
    store.load(&e, late - 1).await.expect("load").expect("live");
    assert_eq!(
        store
            .adopt(&s.uid, &new, std::slice::from_ref(&e), late)
            .await
            .expect("adopt"),
        AdoptOutcome::Missing,
        "expired"
    );
    assert!(store.load(&new, late).await.expect("load").is_none());
    assert!(
        store.load(&e, late).await.expect("load").is_some(),
        "not ended"
    );
}

/// A value written into the empty session an adopt ends is never lost: either the write comes
/// first and the adopt answers `Conflict` (the value stays), or the adopt comes first and the
/// write answers `Missing` (nothing was acknowledged). Never both `Done`.
pub async fn adopt_racing_a_write_loses_nothing(store: Arc<dyn SessionStore>) {
    let (mut write_first, mut adopt_first) = (0, 0);
    for round in 0..40 {
        let now = T0 + round;
        let (_, s) = session_with_value(&*store, now).await;
        let (e, new) = (id(), id_for(&s.uid));
        let empty = store.create(&e, now).await.expect("create");
        let write = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .set_value(&empty.uid, "typed", "hello", now, ROOM)
                    .await
                    .expect("set")
            })
        };
        let adopt = {
            let (store, e) = (Arc::clone(&store), e.clone());
            tokio::spawn(async move { store.adopt(&s.uid, &new, &[e], now).await.expect("adopt") })
        };
        let (write, adopt) = (write.await.expect("join"), adopt.await.expect("join"));
        let after = store.load(&e, now).await.expect("load");
        match (&write, &adopt) {
            (SetOutcome::Done(_), AdoptOutcome::Conflict) => {
                assert_eq!(after.expect("kept").values["typed"], "hello");
                write_first += 1;
            }
            (SetOutcome::Missing, AdoptOutcome::Done(_)) => {
                assert!(after.is_none(), "ended");
                adopt_first += 1;
            }
            _ => panic!("round {round}: write {write:?}, adopt {adopt:?}: a value was lost"),
        }
    }
    eprintln!("write first {write_first}, adopt first {adopt_first}");
}

/// `sweep` deletes what has expired by `now` and says how many sessions went; what is live stays.
/// Reads already hide expired sessions, so the count is what shows that a sweep did its work (the
/// rows or keys themselves are checked per backend: `sqlite_sweep_and_end_delete_the_rows`,
/// `redis_keys_expire_by_themselves_and_sweep_reaps`).
pub async fn sweep_forgets_only_the_expired(store: Arc<dyn SessionStore>) {
    let (old, fresh) = (id(), id());
    store.create(&old, T0).await.expect("create");
    store.create(&fresh, T0 + 50_000).await.expect("create");
    let now = T0 + TIMEOUTS.idle_ms + 1;
    // A backend may do a bounded slice of the work per call (Redis scans part of its keyspace):
    // enough calls get to everything.
    let mut swept = 0;
    for _ in 0..1000 {
        swept += store.sweep(now).await.expect("sweep");
        if swept > 0 {
            break;
        }
    }
    assert_eq!(swept, 1, "the expired session, and only it");
    assert!(store.load(&old, now).await.expect("load").is_none());
    assert!(store.load(&fresh, now).await.expect("load").is_some());
    store.ping().await.expect("ping");
}

/// `sweep`'s count is of the sessions it deleted, each once: three expired sessions (with more
/// than one id, and handoff records, which are not counted) make three, however many calls a
/// backend takes to get to them; once they are gone, further sweeps find nothing and say 0.
pub async fn sweep_counts_each_expired_session_once(store: Arc<dyn SessionStore>) {
    for _ in 0..3 {
        let s = store.create(&id(), T0).await.expect("create");
        assert!(store.bind(&s.uid, &id_for(&s.uid), T0).await.expect("bind"));
        store
            .put_handoff(&jti_for(&s.uid), &s.uid, T0 + 30_000)
            .await
            .expect("put");
    }
    let fresh = id();
    store.create(&fresh, T0 + 50_000).await.expect("create");
    let now = T0 + TIMEOUTS.idle_ms;
    assert_eq!(
        store.sweep(T0 + 1000).await.expect("sweep"),
        0,
        "nothing has expired yet"
    );
    let mut swept = 0;
    for _ in 0..1000 {
        swept += store.sweep(now).await.expect("sweep");
        if swept >= 3 {
            break;
        }
    }
    assert_eq!(swept, 3, "each of the three expired sessions, once");
    // As many calls again as it took (and more): the rest of the keyspace holds nothing to sweep.
    let mut again = 0;
    for _ in 0..20 {
        again += store.sweep(now).await.expect("sweep");
    }
    assert_eq!(again, 0, "a session is counted only when it is deleted");
    assert!(store.load(&fresh, now).await.expect("load").is_some());
}

/// A session written after it was created lives to its new expiry, and a sweep between its first
/// expiry and its new one leaves it (a backend may look at it then, as SQLite does where it
/// indexes sessions by the time to look at them); a sweep after its new expiry deletes it.
pub async fn sweep_spares_a_session_written_since_it_was_created(store: Arc<dyn SessionStore>) {
    let written = id();
    let s = store.create(&written, T0).await.expect("create");
    set(&*store, &s.uid, "chat", "later", T0 + 50_000)
        .await
        .expect("live");
    let first_expiry = T0 + TIMEOUTS.idle_ms;
    let mut swept = 0;
    for _ in 0..20 {
        swept += store.sweep(first_expiry + 1).await.expect("sweep");
    }
    assert_eq!(swept, 0, "written since: it has not expired");
    let s = store
        .load(&written, first_expiry + 1)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(s.values["chat"], "later");
    // That read touched it (its `last_seen` was a step old): its expiry moved on again.
    let new_expiry = first_expiry + 1 + TIMEOUTS.idle_ms;
    for _ in 0..20 {
        swept += store.sweep(new_expiry - 1).await.expect("sweep");
    }
    assert_eq!(swept, 0, "not a moment before its expiry");
    for _ in 0..1000 {
        swept += store.sweep(new_expiry).await.expect("sweep");
        if swept > 0 {
            break;
        }
    }
    assert_eq!(swept, 1, "deleted once its new expiry has passed");
    assert!(
        store
            .load(&written, new_expiry)
            .await
            .expect("load")
            .is_none()
    );
}

/// A customer's subject hash, as the broker keeps it (`identity::SubjectSecret::hash`).
pub fn subject(sub: &str) -> SubjectHash {
    baton::identity::SubjectSecret::new(vec![7; 32]).hash(sub)
}

/// `load_identity` finds the live session a subject is linked to, touched as `load` touches it;
/// a new link replaces the subject's old one; several subjects may share a session; a link to a
/// missing session is refused and changes nothing.
pub async fn identity_links_find_their_session(store: Arc<dyn SessionStore>) {
    let (alice, bob) = (subject("alice"), subject("bob"));
    assert!(
        store
            .load_identity(&alice, T0)
            .await
            .expect("load")
            .is_none(),
        "unlinked"
    );
    let (_, first) = session_with_value(&*store, T0).await;
    let second = store.create(&id(), T0).await.expect("create");
    assert!(
        store
            .link_identity(&alice, &first.uid, T0 + 10)
            .await
            .expect("link")
    );
    assert!(
        store
            .link_identity(&bob, &first.uid, T0 + 10)
            .await
            .expect("link")
    );
    let step = TIMEOUTS.touch_step_ms();
    let early = store
        .load_identity(&alice, T0 + 11)
        .await
        .expect("load")
        .expect("linked");
    assert_eq!(early.uid, first.uid);
    assert_eq!(early.values["chat"], "kept", "the session's values");
    assert_eq!(
        early.last_seen,
        T0 + 10,
        "link_identity touched it; a read before the step does not"
    );
    let due = store
        .load_identity(&alice, T0 + 10 + step)
        .await
        .expect("load")
        .expect("linked");
    assert_eq!(
        due.last_seen,
        T0 + 10 + step,
        "a read at the step touches, as load does"
    );
    assert!(
        store
            .link_identity(&alice, &second.uid, T0 + 20 + step)
            .await
            .expect("link")
    );
    let now = T0 + 30 + step;
    let found = |s: &SubjectHash| {
        let (store, s) = (Arc::clone(&store), *s);
        async move {
            store
                .load_identity(&s, now)
                .await
                .expect("load")
                .map(|s| s.uid)
        }
    };
    assert_eq!(
        found(&alice).await,
        Some(second.uid.clone()),
        "the new link replaced the old"
    );
    assert_eq!(
        found(&bob).await,
        Some(first.uid.clone()),
        "another subject's link is its own"
    );
    assert!(
        !store
            .link_identity(&alice, &nope(), now)
            .await
            .expect("link"),
        "missing session"
    );
    store.end(&first.uid).await.expect("end");
    assert!(
        !store
            .link_identity(&alice, &first.uid, now)
            .await
            .expect("link"),
        "ended session"
    );
    assert_eq!(
        found(&alice).await,
        Some(second.uid),
        "a refused link changes nothing"
    );
}

/// A link dies with its session: ended, expired (never revived by a later read), swept; the
/// subject can then be linked again.
pub async fn identity_link_dies_with_its_session(store: Arc<dyn SessionStore>) {
    let (ended, expired) = (subject("ended"), subject("expired"));
    let s = store.create(&id(), T0).await.expect("create");
    assert!(store.link_identity(&ended, &s.uid, T0).await.expect("link"));
    store.end(&s.uid).await.expect("end");
    assert!(
        store
            .load_identity(&ended, T0 + 1)
            .await
            .expect("load")
            .is_none(),
        "ended"
    );
    let t = store.create(&id(), T0).await.expect("create");
    assert!(
        store
            .link_identity(&expired, &t.uid, T0)
            .await
            .expect("link")
    );
    let late = T0 + TIMEOUTS.idle_ms;
    assert!(
        store
            .load_identity(&expired, late)
            .await
            .expect("load")
            .is_none(),
        "expired"
    );
    assert!(
        !store
            .link_identity(&expired, &t.uid, late)
            .await
            .expect("link"),
        "an expired session is never linked again"
    );
    for _ in 0..1000 {
        store.sweep(late).await.expect("sweep");
    }
    assert!(
        store
            .load_identity(&expired, late)
            .await
            .expect("load")
            .is_none(),
        "swept"
    );
    let fresh = store.create(&id(), late).await.expect("create");
    assert!(
        store
            .link_identity(&ended, &fresh.uid, late)
            .await
            .expect("link")
    );
    let again = store.load_identity(&ended, late + 1).await.expect("load");
    assert_eq!(
        again.map(|s| s.uid),
        Some(fresh.uid),
        "linked again to a new session"
    );
}

/// `detach` (a `forget()`): no id of the session reaches it any more, nor any handoff record;
/// the session, its values and its identity link stay, and a new id bound to it (an identify's
/// adopt) reaches it again. Idempotent; nothing for a missing session.
pub async fn detach_keeps_only_the_identity_link(store: Arc<dyn SessionStore>) {
    let who = subject("detached");
    let (first, s) = session_with_value(&*store, T0).await;
    let second = id_for(&s.uid);
    assert!(store.bind(&s.uid, &second, T0).await.expect("bind"));
    let jti = jti_for(&s.uid);
    store
        .put_handoff(&jti, &s.uid, T0 + 30_000)
        .await
        .expect("put");
    assert!(store.link_identity(&who, &s.uid, T0).await.expect("link"));
    let other = id();
    store.create(&other, T0).await.expect("create");

    store.detach(&s.uid).await.expect("detach");
    store.detach(&s.uid).await.expect("detach again");
    store
        .detach(&nope())
        .await
        .expect("detach of a missing session");
    let now = T0 + 1000;
    for reached in [&first, &second] {
        assert!(
            store.load(reached, now).await.expect("load").is_none(),
            "no id reaches it"
        );
    }
    assert_eq!(
        store.take_handoff(&jti, now).await.expect("take"),
        None,
        "no token either"
    );
    let kept = store
        .load_identity(&who, now)
        .await
        .expect("load")
        .expect("still linked");
    assert_eq!(
        (kept.uid.as_str(), kept.values["chat"].as_str()),
        (s.uid.as_str(), "kept")
    );
    assert!(
        store.load(&other, now).await.expect("load").is_some(),
        "other sessions untouched"
    );
    let back = id_for(&s.uid);
    match store
        .adopt(&s.uid, &back, std::slice::from_ref(&first), now)
        .await
        .expect("adopt")
    {
        AdoptOutcome::Done(again) => assert_eq!(again.values["chat"], "kept"),
        other => panic!("adopt after detach: {other:?}"),
    }
    let reached = store
        .load(&back, now)
        .await
        .expect("load")
        .expect("reached again");
    assert_eq!(reached.uid, s.uid);
}

/// Instantiates the whole suite for one backend. `$make` is an async expression giving an
/// `Arc<dyn SessionStore>` configured with `TIMEOUTS`, fresh for each test.
#[macro_export]
macro_rules! store_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            $crate::store_contract!(@names [@tests] $make);
        }
    };
    // The suite, once: every name goes to the arm `$arm`.
    (@names [$($arm:tt)*] $make:expr) => {
        $crate::store_contract!($($arm)* $make;
            create_then_load, reads_touch_in_steps, missing_id_is_none, values_round_trip, idle_timeout_slides,
            expired_is_never_revived, absolute_timeout_caps_busy_sessions,
            bind_shares_the_session, end_removes_every_id_and_handoff, handoff_is_single_use,
            concurrent_takes_yield_one_winner, concurrent_writes_lose_nothing,
            values_are_bounded, load_and_set_loads_then_sets, concurrent_new_keys_stop_at_the_limit,
            adopt_replaces_the_empty_sessions_reached,
            adopt_refuses_when_a_session_reached_holds_values,
            adopt_of_a_missing_session_changes_nothing, adopt_racing_a_write_loses_nothing,
            sweep_forgets_only_the_expired, sweep_counts_each_expired_session_once,
            sweep_spares_a_session_written_since_it_was_created,
            identity_links_find_their_session, identity_link_dies_with_its_session,
            detach_keeps_only_the_identity_link);
    };
    // One test per contract item.
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                super::$name(store).await;
            }
        )*
    };
    // Every item in turn, inside one test (a backend whose processes the test starts itself).
    (@inline $make:expr; $($name:ident),*) => {
        $(
            eprintln!("store contract: {}", stringify!($name));
            $crate::store_contract::$name($make.await).await;
        )*
    };
}

store_contract!(sqlite, async {
    Arc::new(baton::session::sqlite::SqliteStore::open(":memory:", TIMEOUTS).expect("open"))
        as Arc<dyn SessionStore>
});

// As deployed: a file (WAL, synced commits) in a temporary directory that lives as long as the
// store.
store_contract!(sqlite_file, async {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baton.db");
    let store = baton::session::sqlite::SqliteStore::open(path.to_str().expect("utf-8"), TIMEOUTS)
        .expect("open");
    Arc::new(Kept {
        store: Box::new(store),
        guard: dir,
    }) as Arc<dyn SessionStore>
});

/// SQLite on a file, read behind the store's back: `sweep` and `end` delete the rows themselves,
/// with every id, handoff record and identity link of the session (the foreign keys' ON DELETE CASCADE), and
/// `sweep` the expired handoff records of live sessions too, rather than only hiding them.
#[tokio::test]
async fn sqlite_sweep_and_end_delete_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baton.db");
    let path = path.to_str().expect("utf-8 path");
    let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("open");
    let old = store.create(&id(), T0).await.expect("create");
    assert!(store.bind(&old.uid, &id(), T0).await.expect("bind"));
    let fresh = store.create(&id(), T0 + 50_000).await.expect("create");
    let ended = store.create(&id(), T0 + 50_000).await.expect("create");
    for (uid, expires_at) in [
        (&old.uid, T0 + 60_000),
        (&fresh.uid, T0 + 55_000),
        (&fresh.uid, T0 + 110_000),
        (&ended.uid, T0 + 110_000),
    ] {
        store
            .put_handoff(&jti_for(uid), uid, expires_at)
            .await
            .expect("put");
    }
    // Linked when created (a link touches its session).
    for (sub, uid, at) in [
        ("old", &old.uid, T0),
        ("fresh", &fresh.uid, T0 + 50_000),
        ("ended", &ended.uid, T0 + 50_000),
    ] {
        assert!(
            store
                .link_identity(&subject(sub), uid, at)
                .await
                .expect("link")
        );
    }
    store.end(&ended.uid).await.expect("end");
    assert_eq!(
        store.sweep(T0 + TIMEOUTS.idle_ms + 1).await.expect("sweep"),
        1
    );

    let db = rusqlite::Connection::open(path).expect("open the file");
    let rows = |table: &str, uid: &str| -> i64 {
        db.query_row(
            &format!("SELECT count(*) FROM {table} WHERE uid = ?1"),
            [uid],
            |r| r.get(0),
        )
        .expect("count")
    };
    for (uid, want, what) in [
        (&old.uid, [0, 0, 0, 0], "swept"),
        (&ended.uid, [0, 0, 0, 0], "ended"),
        (&fresh.uid, [1, 1, 1, 1], "live, one handoff record left"),
    ] {
        let got =
            ["sessions", "session_ids", "handoffs", "identities"].map(|t| rows(t, uid.as_str()));
        assert_eq!(
            got, want,
            "{what}: rows in sessions, session_ids, handoffs, identities"
        );
    }
}

/// SQLite on a file: what was acknowledged is there after the store is closed and reopened.
#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baton.db");
    let path = path.to_str().expect("utf-8 path");
    let id = id();
    {
        let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("open");
        let s = store.create(&id, T0).await.expect("create");
        set(&store, &s.uid, "chat", "kept", T0).await.expect("live");
    }
    let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("reopen");
    let s = store
        .load(&id, T0 + 1000)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(s.values["chat"], "kept");
}

/// SQLite's schema is versioned: a database written before versions existed (the same tables,
/// `user_version` 0) is migrated in place with its sessions kept, and a database from a newer
/// baton is refused rather than written.
#[tokio::test]
async fn sqlite_schema_is_versioned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let path = path.to_str().expect("utf-8 path");
    {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "CREATE TABLE sessions (uid TEXT PRIMARY KEY, created_at INTEGER NOT NULL, \
             last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL, vals TEXT NOT NULL) STRICT;
             CREATE TABLE session_ids (id_hash TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE) STRICT;
             CREATE TABLE handoffs (jti TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE, expires_at INTEGER NOT NULL) STRICT;",
        )
        .expect("old schema");
        let expires = T0 + 60_000;
        // A uid as SQLite has always minted them: 32 hex.
        let uid = Uid::new_in(None);
        conn.execute(
            "INSERT INTO sessions VALUES (?3, ?1, ?1, ?2, '{\"chat\":\"old\"}')",
            rusqlite::params![T0, expires, uid.as_str()],
        )
        .expect("row");
        let id = id();
        conn.execute(
            "INSERT INTO session_ids VALUES (?1, ?2)",
            rusqlite::params![id.as_str(), uid.as_str()],
        )
        .expect("id");
        drop(conn);
        let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("migrates");
        let s = store
            .load(&id, T0 + 1000)
            .await
            .expect("load")
            .expect("kept");
        assert_eq!(s.values["chat"], "old");
    }
    let version: i64 = rusqlite::Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4, "every step, the sweep's own index the last");

    rusqlite::Connection::open(path)
        .expect("open")
        .pragma_update(None, "user_version", 99)
        .expect("from the future");
    let err = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS)
        .err()
        .expect("a newer schema is refused");
    assert!(err.to_string().contains("version 99"), "{err}");
}

/// Schema step 3 rebuilds a step-2 database in place: its sessions, ids, identity links and
/// handoff records all still read (the rebuild drops the old tables, which with foreign keys on
/// would have cascaded every id and record away), and the tables keyed by text are now
/// `WITHOUT ROWID` (one B-tree per lookup) with handoffs indexed by uid.
#[tokio::test]
async fn sqlite_step_3_rebuilds_a_step_2_database_keeping_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.db");
    let path = path.to_str().expect("utf-8 path");
    let uid = Uid::new_in(None);
    let (id, sub, jti) = (id(), subject("customer-7"), jti_for(&uid));
    {
        // The schema exactly as steps 0 and 1 left it.
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "CREATE TABLE sessions (uid TEXT PRIMARY KEY, created_at INTEGER NOT NULL, \
             last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL, vals TEXT NOT NULL) STRICT;
             CREATE INDEX sessions_expires_at ON sessions(expires_at);
             CREATE TABLE session_ids (id_hash TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE) STRICT;
             CREATE INDEX session_ids_uid ON session_ids(uid);
             CREATE TABLE handoffs (jti TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE, expires_at INTEGER NOT NULL) STRICT;
             CREATE TABLE identities (subject TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE) STRICT;
             CREATE INDEX identities_uid ON identities(uid);
             PRAGMA user_version = 2;",
        )
        .expect("step-2 schema");
        conn.execute(
            "INSERT INTO sessions VALUES (?1, ?2, ?2, ?3, '{\"chat\":\"v2\"}')",
            rusqlite::params![uid.as_str(), T0, T0 + 60_000],
        )
        .expect("session");
        link_rows(&conn, &uid, &id, &sub, &jti, T0 + 30_000);
    }
    {
        let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("migrates");
        let s = store
            .load(&id, T0 + 1000)
            .await
            .expect("load")
            .expect("the session, by its id");
        assert_eq!((&s.uid, s.values["chat"].as_str()), (&uid, "v2"));
        let linked = store
            .load_identity(&sub, T0 + 1000)
            .await
            .expect("load_identity")
            .expect("the identity link");
        assert_eq!(linked.uid, uid);
        assert_eq!(
            store.take_handoff(&jti, T0 + 1000).await.expect("take"),
            Some(uid.clone()),
            "the handoff record"
        );
        store.close().await;
    }
    let conn = rusqlite::Connection::open(path).expect("open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4, "step 3, then step 4 after it");
    for table in ["sessions", "session_ids", "identities"] {
        let err = conn
            .prepare(&format!("SELECT rowid FROM {table}"))
            .err()
            .unwrap_or_else(|| panic!("{table} still has a rowid"));
        assert!(err.to_string().contains("rowid"), "{table}: {err}");
    }
    let uses_index: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN DELETE FROM handoffs WHERE uid = 'x'",
            [],
            |r| r.get(3),
        )
        .expect("plan");
    assert!(uses_index.contains("handoffs_uid"), "{uses_index}");
    assert_no_dangling_references(&conn);
}

/// `expires_at` and `sweep_at` of session `uid`, read behind the store's back (`None`: no row).
/// The rows an old schema holds for session `uid` besides its own: an id, an identity link and a
/// pending handoff (expiring at `handoff_expires`), the same in every schema step so far.
fn link_rows(
    conn: &rusqlite::Connection,
    uid: &Uid,
    id: &IdHash,
    sub: &SubjectHash,
    jti: &Jti,
    handoff_expires: i64,
) {
    conn.execute(
        "INSERT INTO session_ids VALUES (?1, ?2)",
        rusqlite::params![id.as_str(), uid.as_str()],
    )
    .expect("id");
    conn.execute(
        "INSERT INTO identities VALUES (?1, ?2)",
        rusqlite::params![sub.to_hex(), uid.as_str()],
    )
    .expect("identity");
    conn.execute(
        "INSERT INTO handoffs VALUES (?1, ?2, ?3)",
        rusqlite::params![jti.as_str(), uid.as_str(), handoff_expires],
    )
    .expect("handoff");
}

/// Fails when a row of a migrated database points at a session that is gone.
fn assert_no_dangling_references(conn: &rusqlite::Connection) {
    let problems: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .expect("check")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(problems.is_empty(), "dangling references: {problems:?}");
}

fn sqlite_times(path: &str, uid: &Uid) -> Option<(i64, i64)> {
    rusqlite::Connection::open(path)
        .expect("open the file")
        .query_row(
            "SELECT expires_at, sweep_at FROM sessions WHERE uid = ?1",
            [uid.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
}

/// SQLite's writes leave the sweep's index alone: a write moves `expires_at` (what reads go by)
/// but not `sweep_at` (the indexed time the sweep next looks at the session), so it rewrites no
/// index page. The sweep at `sweep_at` finds it live and makes it due at its new expiry, and
/// the sweep then deletes it.
#[tokio::test]
async fn sqlite_a_write_leaves_the_sweep_index_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baton.db");
    let path = path.to_str().expect("utf-8 path");
    let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("open");
    let s = store.create(&id(), T0).await.expect("create");
    let first = T0 + TIMEOUTS.idle_ms;
    assert_eq!(sqlite_times(path, &s.uid), Some((first, first)), "created");
    set(&store, &s.uid, "chat", "v", T0 + 50_000)
        .await
        .expect("live");
    let second = T0 + 50_000 + TIMEOUTS.idle_ms;
    assert_eq!(
        sqlite_times(path, &s.uid),
        Some((second, first)),
        "written: its expiry moved, its sweep time did not"
    );
    assert_eq!(store.sweep(first).await.expect("sweep"), 0, "live");
    assert_eq!(
        sqlite_times(path, &s.uid),
        Some((second, second)),
        "looked at by the sweep: due again at its expiry"
    );
    assert_eq!(store.sweep(second).await.expect("sweep"), 1);
    assert_eq!(sqlite_times(path, &s.uid), None, "deleted");
}

/// A session whose timeouts were shortened (a restart with a new configuration) is due for the
/// sweep by its new, earlier expiry as soon as it is written: the first sweep after that expiry
/// deletes it, as before the sweep had its own index.
#[tokio::test]
async fn sqlite_shorter_timeouts_bring_the_sweep_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("baton.db");
    let path = path.to_str().expect("utf-8 path");
    let uid = {
        let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("open");
        let s = store.create(&id(), T0).await.expect("create");
        store.close().await;
        s.uid
    };
    let shorter = Timeouts {
        idle_ms: 10_000,
        absolute_ms: 300_000,
    };
    let store = baton::session::sqlite::SqliteStore::open(path, shorter).expect("reopen");
    set(&store, &uid, "chat", "v", T0 + 1_000)
        .await
        .expect("live");
    assert_eq!(
        sqlite_times(path, &uid),
        Some((T0 + 11_000, T0 + 11_000)),
        "its sweep time follows its earlier expiry"
    );
    assert_eq!(store.sweep(T0 + 10_999).await.expect("sweep"), 0);
    assert_eq!(store.sweep(T0 + 11_000).await.expect("sweep"), 1);
}

/// Schema step 4 moves the sweep's index from `expires_at` to the new `sweep_at` on a step-3
/// database: every session, id, identity link and handoff record still reads, each session is
/// due at its expiry (so the first sweep after it still deletes it), and the old index is gone.
#[tokio::test]
async fn sqlite_step_4_gives_the_sweep_its_own_index_keeping_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v3.db");
    let path = path.to_str().expect("utf-8 path");
    let (live, gone) = (Uid::new_in(None), Uid::new_in(None));
    let (id, sub, jti) = (id(), subject("customer-8"), jti_for(&live));
    {
        // The schema exactly as step 3 left it.
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch(
            "CREATE TABLE sessions (uid TEXT PRIMARY KEY, created_at INTEGER NOT NULL, \
             last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL, vals TEXT NOT NULL) \
             STRICT, WITHOUT ROWID;
             CREATE INDEX sessions_expires_at ON sessions(expires_at);
             CREATE TABLE session_ids (id_hash TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE) STRICT, WITHOUT ROWID;
             CREATE INDEX session_ids_uid ON session_ids(uid);
             CREATE TABLE handoffs (jti TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE, expires_at INTEGER NOT NULL) STRICT;
             CREATE TABLE identities (subject TEXT PRIMARY KEY, uid TEXT NOT NULL \
             REFERENCES sessions(uid) ON DELETE CASCADE) STRICT, WITHOUT ROWID;
             CREATE INDEX identities_uid ON identities(uid);
             CREATE INDEX handoffs_uid ON handoffs(uid);
             PRAGMA user_version = 3;",
        )
        .expect("step-3 schema");
        for (uid, last_seen, vals) in [(&live, T0 + 50_000, "{\"chat\":\"v3\"}"), (&gone, T0, "{}")]
        {
            conn.execute(
                "INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    uid.as_str(),
                    T0,
                    last_seen,
                    last_seen + TIMEOUTS.idle_ms,
                    vals
                ],
            )
            .expect("session");
        }
        link_rows(&conn, &live, &id, &sub, &jti, T0 + 100_000);
    }
    let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("migrates");
    let now = T0 + 60_000;
    for uid in [&live, &gone] {
        let (expires_at, sweep_at) = sqlite_times(path, uid).expect("kept");
        assert_eq!(sweep_at, expires_at, "due at its expiry");
    }
    assert_eq!(store.sweep(now).await.expect("sweep"), 1, "the expired one");
    assert_eq!(sqlite_times(path, &gone), None);
    let s = store
        .load(&id, now)
        .await
        .expect("load")
        .expect("the session, by its id");
    assert_eq!((&s.uid, s.values["chat"].as_str()), (&live, "v3"));
    let linked = store
        .load_identity(&sub, now)
        .await
        .expect("load_identity")
        .expect("the identity link");
    assert_eq!(linked.uid, live);
    assert_eq!(
        store.take_handoff(&jti, now).await.expect("take"),
        Some(live.clone()),
        "the handoff record"
    );
    store.close().await;

    let conn = rusqlite::Connection::open(path).expect("open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4);
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('sessions') WHERE origin = 'c' ORDER BY name")
        .expect("indexes")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(indexes, ["sessions_sweep_at"]);
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT uid, expires_at FROM sessions WHERE sweep_at <= 1 LIMIT 1",
            [],
            |r| r.get(3),
        )
        .expect("plan");
    assert!(plan.contains("sessions_sweep_at"), "{plan}");
    assert_no_dangling_references(&conn);
}

/// Redis: the machine's server (or `BATON_TEST_REDIS_URL`), a fresh key prefix per test, deleted
/// when the test's store is dropped. An unreachable Redis fails the test: it never skips.
fn redis_url() -> String {
    std::env::var("BATON_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A one-Redis config of `url` and `prefix`, the other keys at their defaults.
pub fn redis_config(url: &str, prefix: &str) -> baton::session::redis::RedisConfig {
    baton::session::redis::RedisConfig {
        redis_url: url.into(),
        redis_prefix: prefix.into(),
        ..Default::default()
    }
}

/// A plain connection to the test Redis at `url`, for looking at or writing keys directly.
async fn raw_redis(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn redis_store() -> Arc<dyn SessionStore> {
    Arc::new(redis_cleanup().await)
}

async fn redis_cleanup() -> Kept<RedisKeys> {
    let url = redis_url();
    let prefix = format!("baton-test:{}:", baton::random::hex_128());
    let store = baton::session::redis::RedisStore::open(&redis_config(&url, &prefix), TIMEOUTS)
        .await
        .expect("open");
    if let Err(e) = store.ping().await {
        panic!(
            "Redis at {url} is unreachable ({e}): start redis-server or set BATON_TEST_REDIS_URL"
        );
    }
    Kept {
        store: Box::new(store),
        guard: RedisKeys { url, prefix },
    }
}

/// Deletes its prefix's keys when dropped, even when the test panicked.
struct RedisKeys {
    url: String,
    prefix: String,
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        // A plain blocking connection: this runs in `drop`, where nothing can be awaited. The keys
        // would expire by themselves within `TIMEOUTS.absolute_ms` anyway; this keeps Redis tidy.
        let Ok(mut conn) =
            ::redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        // Bounded: a SCAN over even a large keyspace ends long before this.
        for _ in 0..100_000 {
            let Ok((next, keys)): ::redis::RedisResult<(u64, Vec<String>)> = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: ::redis::RedisResult<()> = ::redis::cmd("DEL").arg(keys).query(&mut conn);
            }
            cursor = next;
            if cursor == 0 {
                return;
            }
        }
    }
}

/// A store with what must live exactly as long as it does (a temporary directory, the deletion
/// of a key prefix): `guard` is dropped after `store` (fields drop in declaration order).
struct Kept<G> {
    store: Box<dyn SessionStore>,
    guard: G,
}

#[async_trait::async_trait]
impl<G: Send + Sync + 'static> SessionStore for Kept<G> {
    async fn create(&self, id: &IdHash, now: i64) -> Result<Session, StoreError> {
        self.store.create(id, now).await
    }
    async fn load(&self, id: &IdHash, now: i64) -> Result<Option<Session>, StoreError> {
        self.store.load(id, now).await
    }
    async fn set_value(
        &self,
        uid: &Uid,
        key: &str,
        value: &str,
        now: i64,
        max_values: usize,
    ) -> Result<SetOutcome, StoreError> {
        self.store.set_value(uid, key, value, now, max_values).await
    }
    async fn load_and_set(
        &self,
        id: &IdHash,
        key: &str,
        value: &str,
        now: i64,
        max_values: usize,
    ) -> Result<Option<SetOutcome>, StoreError> {
        self.store
            .load_and_set(id, key, value, now, max_values)
            .await
    }
    async fn remove_value(
        &self,
        uid: &Uid,
        key: &str,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        self.store.remove_value(uid, key, now).await
    }
    async fn end(&self, uid: &Uid) -> Result<(), StoreError> {
        self.store.end(uid).await
    }
    async fn bind(&self, uid: &Uid, id: &IdHash, now: i64) -> Result<bool, StoreError> {
        self.store.bind(uid, id, now).await
    }
    async fn adopt(
        &self,
        uid: &Uid,
        id: &IdHash,
        reached: &[IdHash],
        now: i64,
    ) -> Result<AdoptOutcome, StoreError> {
        self.store.adopt(uid, id, reached, now).await
    }
    async fn put_handoff(&self, jti: &Jti, uid: &Uid, expires_at: i64) -> Result<(), StoreError> {
        self.store.put_handoff(jti, uid, expires_at).await
    }
    async fn take_handoff(&self, jti: &Jti, now: i64) -> Result<Option<Uid>, StoreError> {
        self.store.take_handoff(jti, now).await
    }
    async fn load_identity(
        &self,
        subject: &SubjectHash,
        now: i64,
    ) -> Result<Option<Session>, StoreError> {
        self.store.load_identity(subject, now).await
    }
    async fn link_identity(
        &self,
        subject: &SubjectHash,
        uid: &Uid,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.store.link_identity(subject, uid, now).await
    }
    async fn detach(&self, uid: &Uid) -> Result<(), StoreError> {
        self.store.detach(uid).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
    async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        self.store.sweep(now).await
    }
}

store_contract!(redis, redis_store());

/// What the suite cannot see: Redis forgets sessions by itself (every key the store writes has an
/// expiry, none past the absolute timeout), and `sweep` deletes what is dead by the app clock and
/// gives an expiry back to a live session that lost it.
#[tokio::test]
async fn redis_keys_expire_by_themselves_and_sweep_reaps() {
    let store = redis_cleanup().await;
    let mut conn = raw_redis(store.guard.url.as_str()).await;
    let (old, fresh) = (id(), id());
    let s = store.create(&old, T0).await.expect("create");
    assert!(store.bind(&s.uid, &id_for(&s.uid), T0).await.expect("bind"));
    store
        .put_handoff(&jti_for(&s.uid), &s.uid, T0 + 60_000)
        .await
        .expect("put");
    let f = store.create(&fresh, T0 + 50_000).await.expect("create");
    let read = store.load(&fresh, T0 + 50_500).await.expect("load");
    assert_eq!(
        read.expect("live").last_seen,
        T0 + 50_000,
        "a read before `Timeouts::touch_due` writes nothing back"
    );

    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}*", store.guard.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    // Two sessions (each hash lists its ids), three ids, a handoff record and its set.
    assert_eq!(keys.len(), 2 + 3 + 2, "{keys:?}");
    for key in &keys {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("pttl");
        assert!(
            0 < ttl && ttl <= TIMEOUTS.absolute_ms,
            "{key} expires in {ttl} ms"
        );
    }

    // The session hash, under the session's slot tag (src/session/redis/mod.rs, module doc).
    let tag = f.uid.slot_tag().expect("a new session has a slot tag");
    let fresh_hash = format!("{}{{{tag}}}s:{}", store.guard.prefix, f.uid);
    let _: () = ::redis::cmd("PERSIST")
        .arg(&fresh_hash)
        .query_async(&mut conn)
        .await
        .expect("persist");
    // Each sweep scans a bounded slice of the whole keyspace; a few runs cover a test Redis.
    let mut swept = 0;
    for _ in 0..1000 {
        swept += store.sweep(T0 + TIMEOUTS.idle_ms).await.expect("sweep");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&fresh_hash)
            .query_async(&mut conn)
            .await
            .expect("pttl");
        if swept == 1 && ttl > 0 {
            break;
        }
    }
    assert_eq!(swept, 1, "only the idle session goes");
    let left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}*", store.guard.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert_eq!(left.len(), 2, "the fresh session and its id: {left:?}");
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&fresh_hash)
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(ttl > 0, "sweep gave the live session its expiry back");
    assert!(
        store
            .load(&fresh, T0 + TIMEOUTS.idle_ms)
            .await
            .expect("load")
            .is_some()
    );
}

/// One `sweep` call goes on through several `SCAN` steps until the keyspace is covered (or its
/// step budget is spent): with more keys than one step examines, it still finds every expired
/// session. On a Redis of the test's own, so the keyspace's size is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sweep_goes_past_one_scan_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = crate::helpers::PrivateRedis::new(dir.path());
    redis.start().await;
    let url = redis.url();
    let store = baton::session::redis::RedisStore::open(&redis_config(&url, "sweep:"), TIMEOUTS)
        .await
        .expect("open");
    // 1,500 other keys and 20 sessions (2 keys each): a hash table of 2,048 buckets, four times
    // what one SCAN step examines (500), within what one sweep examines (8 steps).
    let mut conn = raw_redis(url.as_str()).await;
    let mut fill = ::redis::cmd("MSET");
    for i in 0..1500 {
        fill.arg(format!("other:{i}")).arg("x");
    }
    let _: () = fill.query_async(&mut conn).await.expect("mset");
    for _ in 0..20 {
        store.create(&id(), T0).await.expect("create");
    }
    let swept = store.sweep(T0 + TIMEOUTS.idle_ms).await.expect("sweep");
    assert_eq!(swept, 20, "one sweep finds every expired session");
    redis.kill();
}

/// A session costs Redis two keys (its hash, which lists its ids, and one key per id) and its
/// hash keeps the compact listpack encoding: the layout that holds a session with one 36-byte
/// value to about 450 bytes (`bench/scale.py --memory`; three keys and 853 bytes before).
#[tokio::test]
async fn redis_session_is_two_compact_keys() {
    let store = redis_cleanup().await;
    let mut conn = raw_redis(store.guard.url.as_str()).await;
    let first = id();
    let s = store.create(&first, T0).await.expect("create");
    set(&store, &s.uid, "chat", &"v".repeat(36), T0 + 1)
        .await
        .expect("written");
    let mut keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}*", store.guard.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    keys.sort();
    let tag = s.uid.slot_tag().expect("tagged");
    // The id's key: the first 128 bits of its hash in base64url.
    let bits: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&first.as_str()[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    use base64::Engine as _;
    let short = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bits);
    let p = &store.guard.prefix;
    assert_eq!(
        keys,
        [
            format!("{p}{{{tag}}}i:{short}"),
            format!("{p}{{{tag}}}s:{}", s.uid)
        ],
    );
    let hash = format!("{}{{{tag}}}s:{}", store.guard.prefix, s.uid);
    let encoding: String = ::redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&hash)
        .query_async(&mut conn)
        .await
        .expect("encoding");
    assert_eq!(encoding, "listpack");
}

/// A session `uid` written by hand in an older Redis layout, holding `chat = "old"` and reached
/// by `old`: found by that id, written (`chat = "new"`), and bound to a fresh id, which is
/// returned.
async fn old_session_is_found_written_and_rebound(
    store: &dyn SessionStore,
    old: &IdHash,
    uid: &Uid,
) -> IdHash {
    let found = store
        .load(old, T0 + 1000)
        .await
        .expect("load")
        .expect("found by its old id");
    assert_eq!(
        (found.uid.as_str(), found.values["chat"].as_str()),
        (uid.as_str(), "old")
    );
    set(store, uid, "chat", "new", T0 + 2000)
        .await
        .expect("written");
    let new_id = id_for(uid);
    assert!(store.bind(uid, &new_id, T0 + 3000).await.expect("bind"));
    new_id
}

/// Sessions written in the layout before two-key sessions (`P{T}id:<whole hash>` per id, a set
/// `P{T}ids:<uid>` of them) keep working with no migration: found by their old id, written,
/// bound to a new id, and ended with every key of both layouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_from_before_two_key_sessions_keep_working() {
    let store = redis_cleanup().await;
    let p = store.guard.prefix.clone();
    let mut conn = raw_redis(store.guard.url.as_str()).await;
    let old_id = SessionId::generate();
    let hash = old_id.hash();
    let tag = hash.tag().to_owned();
    let uid = baton::session::Uid::new_in(Some(&tag));
    let mut pipe = ::redis::pipe();
    pipe.cmd("HSET")
        .arg(format!("{p}{{{tag}}}s:{uid}"))
        .arg("c")
        .arg(T0)
        .arg("l")
        .arg(T0)
        .arg("v:chat")
        .arg("old")
        .cmd("SET")
        .arg(format!("{p}{{{tag}}}id:{}", hash.as_str()))
        .arg(uid.as_str())
        .cmd("SADD")
        .arg(format!("{p}{{{tag}}}ids:{uid}"))
        .arg(format!("{tag}:{}", hash.as_str()));
    let _: () = pipe
        .query_async(&mut conn)
        .await
        .expect("write the old layout");

    let new_id = old_session_is_found_written_and_rebound(&store, &hash, &uid).await;
    for id in [&hash, &new_id] {
        let s = store
            .load(id, T0 + 4000)
            .await
            .expect("load")
            .expect("found by either id");
        assert_eq!(s.values["chat"], "new");
    }
    store.end(&uid).await.expect("end");
    assert!(store.load(&hash, T0).await.expect("load").is_none());
    assert!(store.load(&new_id, T0).await.expect("load").is_none());
    let left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{p}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(left.is_empty(), "end deletes every key: {left:?}");
}

/// Sessions written before slot tags (keys `P s:<uid>`, `P id:<hash>`, `P ids:<uid>`,
/// `P h:<jti>`, `P hs:<uid>`, with 32-hex uids and jtis) keep working after an upgrade on one
/// Redis: found by their old ids, written, bound to new ids, redeemed, ended with every key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_from_before_slot_tags_keep_working() {
    let store = redis_cleanup().await;
    let p = store.guard.prefix.clone();
    let mut conn = raw_redis(store.guard.url.as_str()).await;
    let old_id = SessionId::generate();
    let hash = old_id.hash().as_str().to_owned();
    // Names from before slot tags: 32 hex each.
    let uid = Uid::new_in(None);
    let jti = Jti::new_for(&uid);
    assert_eq!((uid.slot_tag(), jti.slot_tag()), (None, None));
    let mut pipe = ::redis::pipe();
    pipe.cmd("HSET")
        .arg(format!("{p}s:{uid}"))
        .arg("c")
        .arg(T0)
        .arg("l")
        .arg(T0)
        .arg("v:chat")
        .arg("old")
        .cmd("SET")
        .arg(format!("{p}id:{hash}"))
        .arg(uid.as_str())
        .cmd("SADD")
        .arg(format!("{p}ids:{uid}"))
        .arg(&hash)
        .cmd("HSET")
        .arg(format!("{p}h:{jti}"))
        .arg("u")
        .arg(uid.as_str())
        .arg("e")
        .arg(T0 + 60_000)
        .cmd("SADD")
        .arg(format!("{p}hs:{uid}"))
        .arg(jti.as_str());
    let _: () = pipe
        .query_async(&mut conn)
        .await
        .expect("write the old layout");

    let new_id = old_session_is_found_written_and_rebound(&store, &old_id.hash(), &uid).await;
    let via_new = store
        .load(&new_id, T0 + 4000)
        .await
        .expect("load")
        .expect("found by the new id");
    assert_eq!(via_new.values["chat"], "new");
    assert_eq!(
        store.take_handoff(&jti, T0 + 5000).await.expect("take"),
        Some(uid.clone())
    );
    store.end(&uid).await.expect("end");
    assert!(
        store
            .load(&old_id.hash(), T0)
            .await
            .expect("load")
            .is_none()
    );
    assert!(store.load(&new_id, T0).await.expect("load").is_none());
    let left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{p}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    assert!(left.is_empty(), "end deletes every key: {left:?}");
}
