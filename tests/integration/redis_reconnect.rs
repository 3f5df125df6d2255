//! Redis restarted under a store that was idle through it: the store's connection died with the
//! old server, and its first call afterwards must succeed all the same (reconnect, then retry
//! once), for every method of the contract. A private `redis-server`, restarted on its port.

use baton::session::redis::RedisStore;
use baton::session::{AdoptOutcome, Jti, SessionStore, SetOutcome, StoreError};

use crate::helpers::PrivateRedis;
use crate::store_contract::{T0, TIMEOUTS, id, redis_config};

/// What each call should answer, checked; the error text when it does not.
type Check = Result<(), String>;

fn check<T: std::fmt::Debug>(r: Result<T, StoreError>, ok: impl FnOnce(&T) -> bool) -> Check {
    match r {
        Ok(v) if ok(&v) => Ok(()),
        Ok(v) => Err(format!("unexpected answer {v:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_of_an_idle_store_after_a_redis_restart_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = PrivateRedis::new(dir.path());
    redis.start().await;
    let url = redis.url();
    let config = redis_config(&url, "baton-reconnect:");
    let open = || RedisStore::open(&config, TIMEOUTS);

    let setup = open().await.expect("open");
    let (a, e, x) = (id(), id(), id());
    let s = setup.create(&a, T0).await.expect("create");
    let written = setup
        .set_value(&s.uid, "chat", "kept", T0, 64)
        .await
        .expect("set");
    assert!(matches!(written, SetOutcome::Done(_)));
    setup.create(&e, T0).await.expect("create");
    let ending = setup.create(&x, T0).await.expect("create");
    let (jti_before, jti_after) = (Jti::new_for(&s.uid), Jti::new_for(&s.uid));
    setup
        .put_handoff(&jti_before, &s.uid, T0 + 60_000)
        .await
        .expect("put");

    // One store per method, connected, then idle while Redis restarts.
    const METHODS: [&str; 11] = [
        "load",
        "create",
        "set_value",
        "remove_value",
        "bind",
        "adopt",
        "put_handoff",
        "take_handoff",
        "end",
        "ping",
        "sweep",
    ];
    let mut stores = Vec::new();
    for _ in METHODS {
        let store = open().await.expect("open");
        store.ping().await.expect("connected before the restart");
        stores.push(store);
    }
    // And one that keeps being asked while Redis is down: its reconnection attempts fail.
    let busy = open().await.expect("open");
    busy.ping().await.expect("connected before the restart");

    redis.stop().await;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let down = busy.load(&a, T0).await;
        assert!(
            matches!(down, Err(StoreError::Unavailable(_))),
            "while Redis is down: {down:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1500),
            "bounded by timeout_ms even with the retry: {:?}",
            started.elapsed()
        );
    }
    // Long enough for the reconnection its last call started to have given up (a few quick
    // retries, each delay at most half of timeout_ms): what it holds now is a failed connection.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    redis.start().await;

    let now = T0 + 1000;
    let mut failed = Vec::new();
    for (method, store) in METHODS.into_iter().zip(&stores) {
        let result = match method {
            "load" => check(store.load(&a, now).await, |s| {
                s.as_ref().is_some_and(|s| s.values["chat"] == "kept")
            }),
            "create" => check(store.create(&id(), now).await, |_| true),
            "set_value" => check(store.set_value(&s.uid, "k", "v", now, 64).await, |o| {
                matches!(o, SetOutcome::Done(_))
            }),
            "remove_value" => check(store.remove_value(&s.uid, "k", now).await, Option::is_some),
            "bind" => check(store.bind(&s.uid, &id(), now).await, |b| *b),
            "adopt" => check(
                store
                    .adopt(&s.uid, &id(), std::slice::from_ref(&e), now)
                    .await,
                |o| matches!(o, AdoptOutcome::Done(_)),
            ),
            "put_handoff" => check(
                store.put_handoff(&jti_after, &s.uid, now + 60_000).await,
                |_| true,
            ),
            "take_handoff" => check(store.take_handoff(&jti_before, now).await, |u| {
                u.as_ref() == Some(&s.uid)
            }),
            "end" => check(store.end(&ending.uid).await, |_| true),
            "ping" => check(store.ping().await, |_| true),
            "sweep" => check(store.sweep(now).await, |_| true),
            other => unreachable!("{other}"),
        };
        if let Err(e) = result {
            failed.push(format!("{method}: {e}"));
        }
    }
    if let Err(e) = check(busy.load(&a, now).await, Option::is_some) {
        failed.push(format!("load on the store asked during the outage: {e}"));
    }
    assert!(
        failed.is_empty(),
        "first calls after the restart failed:\n{}",
        failed.join("\n")
    );

    // What they did is there, and the handoff record stays single use.
    let after = setup.load(&a, now).await.expect("load").expect("live");
    assert_eq!(after.values.len(), 1, "{:?}", after.values);
    assert!(setup.load(&x, now).await.expect("load").is_none(), "ended");
    assert!(
        setup.load(&e, now).await.expect("load").is_none(),
        "adopted over"
    );
    assert_eq!(
        setup.take_handoff(&jti_before, now).await.expect("take"),
        None
    );
    assert_eq!(
        setup.take_handoff(&jti_after, now).await.expect("take"),
        Some(s.uid.clone())
    );
}

/// A TCP proxy in front of Redis that, when armed, lets the next command through but swallows
/// its reply and cuts the connection: the command ran in Redis, and its caller never hears.
struct CuttingProxy {
    port: u16,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    async fn start(redis_port: u16) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trigger = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let trigger = trigger.clone();
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if trigger.swap(false, Ordering::SeqCst) {
                            break;
                        }
                        if client_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    // Dropping both halves closes the client's connection.
                    upstream.abort();
                });
            }
        });
        Self { port, armed }
    }

    fn cut_next_reply(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The reply to a call is lost after Redis ran it: the call is sent again on a new connection,
/// and the repeat is harmless. A handoff record taken by the first attempt is given to its repeat
/// (same call), and to no one else; a new key that filled the session is found there by the
/// repeat rather than refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_reply_is_lost_is_repeated_safely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut redis = PrivateRedis::new(dir.path());
    redis.start().await;
    let proxy = CuttingProxy::start(redis.port).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let store = RedisStore::open(&redis_config(&url, "baton-cut:"), TIMEOUTS)
        .await
        .expect("open");
    let a = id();
    let s = store.create(&a, T0).await.expect("create");
    let (warm_up, jti_cut) = (Jti::new_for(&s.uid), Jti::new_for(&s.uid));
    for jti in [&warm_up, &jti_cut] {
        store
            .put_handoff(jti, &s.uid, T0 + 60_000)
            .await
            .expect("put");
    }
    // Loads the script into Redis first, so that the cut reply is the script's own.
    assert!(
        store
            .take_handoff(&warm_up, T0)
            .await
            .expect("take")
            .is_some()
    );

    proxy.cut_next_reply();
    assert_eq!(
        store.take_handoff(&jti_cut, T0).await.expect("take"),
        Some(s.uid.clone()),
        "the repeat of the call that took the record"
    );
    assert_eq!(
        store.take_handoff(&jti_cut, T0).await.expect("take"),
        None,
        "any other call"
    );

    assert!(matches!(
        store
            .set_value(&s.uid, "first", "1", T0, 2)
            .await
            .expect("set"),
        SetOutcome::Done(_)
    ));
    proxy.cut_next_reply();
    match store
        .set_value(&s.uid, "second", "2", T0, 2)
        .await
        .expect("set")
    {
        SetOutcome::Done(after) => assert_eq!(after.values.len(), 2),
        other => panic!("the repeat found its own write: {other:?}"),
    }
}
