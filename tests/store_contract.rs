//! The `SessionStore` contract, run against every backend: the same suite, written once.
//! Each backend gets a module from `store_contract!` with a factory that makes a fresh, isolated
//! store (SQLite: in memory; Redis: a fresh key prefix) for the given timeouts.

use std::sync::Arc;

use baton::session::{IdHash, SessionId, SessionStore, Timeouts};

pub const T0: i64 = 1_800_000_000_000;
pub const TIMEOUTS: Timeouts = Timeouts {
    idle_ms: 60_000,
    absolute_ms: 300_000,
};

pub fn id() -> IdHash {
    SessionId::generate().hash()
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

pub async fn missing_id_is_none(store: Arc<dyn SessionStore>) {
    assert!(store.load(&id(), T0).await.expect("load").is_none());
    assert!(
        store
            .set_value("nope", "k", "v", T0)
            .await
            .expect("set")
            .is_none()
    );
    assert!(
        store
            .remove_value("nope", "k", T0)
            .await
            .expect("rm")
            .is_none()
    );
    assert!(!store.bind("nope", &id(), T0).await.expect("bind"));
    store
        .end("nope")
        .await
        .expect("end of a missing session is fine");
}

pub async fn values_round_trip(store: Arc<dyn SessionStore>) {
    let id = id();
    let s = store.create(&id, T0).await.expect("create");
    let v = "ünïcödé \"quoted\" \n 🎉".repeat(10);
    let after = store
        .set_value(&s.uid, "chat", &v, T0)
        .await
        .expect("set")
        .expect("live");
    assert_eq!(after.values.get("chat"), Some(&v));
    store
        .set_value(&s.uid, "other", "2", T0)
        .await
        .expect("set")
        .expect("live");
    store
        .set_value(&s.uid, "chat", "replaced", T0)
        .await
        .expect("set")
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
    store
        .set_value(&s.uid, "k", "v", T0 + 210_000)
        .await
        .expect("set")
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
        store
            .set_value(&s.uid, "k", "v", idle_end + TIMEOUTS.idle_ms)
            .await
            .expect("set")
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
    assert!(
        store
            .set_value(&s.uid, "k", "v", late)
            .await
            .expect("set")
            .is_none()
    );
    assert!(!store.bind(&s.uid, &self::id(), late).await.expect("bind"));
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
    let (a, b) = (id(), id());
    let s = store.create(&a, T0).await.expect("create");
    store
        .set_value(&s.uid, "chat", "1", T0)
        .await
        .expect("set")
        .expect("live");
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
    store
        .set_value(&s.uid, "chat", "2", T0 + 3000)
        .await
        .expect("set")
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
    let (a, b) = (id(), id());
    let s = store.create(&a, T0).await.expect("create");
    assert!(store.bind(&s.uid, &b, T0).await.expect("bind"));
    store
        .put_handoff("jti-end", &s.uid, T0 + 60_000)
        .await
        .expect("put");
    store.end(&s.uid).await.expect("end");
    assert!(store.load(&a, T0).await.expect("load").is_none());
    assert!(store.load(&b, T0).await.expect("load").is_none());
    assert!(
        store
            .take_handoff("jti-end", T0)
            .await
            .expect("take")
            .is_none()
    );
    store.end(&s.uid).await.expect("ending twice is fine");
}

pub async fn handoff_is_single_use(store: Arc<dyn SessionStore>) {
    let s = store.create(&id(), T0).await.expect("create");
    store
        .put_handoff("jti-1", &s.uid, T0 + 60_000)
        .await
        .expect("put");
    assert_eq!(
        store.take_handoff("jti-1", T0 + 1).await.expect("take"),
        Some(s.uid.clone())
    );
    assert_eq!(
        store.take_handoff("jti-1", T0 + 2).await.expect("take"),
        None
    );
    store
        .put_handoff("jti-2", &s.uid, T0 + 60_000)
        .await
        .expect("put");
    assert_eq!(
        store
            .take_handoff("jti-2", T0 + 60_000)
            .await
            .expect("take"),
        None,
        "expired"
    );
    assert_eq!(
        store.take_handoff("never-issued", T0).await.expect("take"),
        None
    );
}

pub async fn concurrent_takes_yield_one_winner(store: Arc<dyn SessionStore>) {
    let s = store.create(&id(), T0).await.expect("create");
    store
        .put_handoff("jti-race", &s.uid, T0 + 60_000)
        .await
        .expect("put");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_handoff("jti-race", T0).await.expect("take") })
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
                store
                    .set_value(&uid, &format!("k{i}"), "v", T0)
                    .await
                    .expect("set")
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

pub async fn sweep_forgets_only_the_expired(store: Arc<dyn SessionStore>) {
    let (old, fresh) = (id(), id());
    store.create(&old, T0).await.expect("create");
    store.create(&fresh, T0 + 50_000).await.expect("create");
    store.sweep(T0 + TIMEOUTS.idle_ms + 1).await.expect("sweep");
    assert!(
        store
            .load(&old, T0 + TIMEOUTS.idle_ms + 1)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        store
            .load(&fresh, T0 + TIMEOUTS.idle_ms + 1)
            .await
            .expect("load")
            .is_some()
    );
    store.ping().await.expect("ping");
}

/// Instantiates the whole suite for one backend. `$make` is an async expression giving an
/// `Arc<dyn SessionStore>` configured with `TIMEOUTS`, fresh for each test.
#[macro_export]
macro_rules! store_contract {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            store_contract!(@tests $make;
                create_then_load, missing_id_is_none, values_round_trip, idle_timeout_slides,
                expired_is_never_revived, absolute_timeout_caps_busy_sessions,
                bind_shares_the_session, end_removes_every_id_and_handoff, handoff_is_single_use,
                concurrent_takes_yield_one_winner, concurrent_writes_lose_nothing,
                sweep_forgets_only_the_expired);
        }
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                super::$name(store).await;
            }
        )*
    };
}

store_contract!(sqlite, async {
    Arc::new(baton::session::sqlite::SqliteStore::open(":memory:", TIMEOUTS).expect("open"))
        as Arc<dyn SessionStore>
});

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
        store
            .set_value(&s.uid, "chat", "kept", T0)
            .await
            .expect("set")
            .expect("live");
    }
    let store = baton::session::sqlite::SqliteStore::open(path, TIMEOUTS).expect("reopen");
    let s = store
        .load(&id, T0 + 1000)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(s.values["chat"], "kept");
}
