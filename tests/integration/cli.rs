//! The command line as an operator uses it: `check-config` names every problem in one run, each
//! with its key and where its value came from; `healthcheck` tells a container runtime whether
//! the broker is ready.

use crate::process::{Baton, run};

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, config).expect("write");
    let (code, text) = run(
        &["check-config", "--config", path.to_str().expect("utf-8")],
        env,
    )
    .finish();
    (code.expect("exit code"), text)
}

const GOOD: &str = "[server]\npublic_origin = \"https://broker.example.com\"\n[trust]\norigins = [\"https://shop.example.com\"]\n[[handoff.keys]]\nkid = \"k\"\nsecret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n";

#[test]
fn a_valid_config_passes_and_prints_what_partners_need() {
    let (code, text) = check(GOOD, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "valid (1 trusted origin pattern(s), public origin https://broker.example.com)"
        ),
        "{text}"
    );
    assert!(text.contains("integrity: sha384-"), "{text}");
}

/// Issue 20, finding 4: every form a Redis credential can take (userinfo user and password, the
/// query), for one Redis, the sentinels and the cluster nodes, is masked where `check-config`
/// prints the store; and a problem in those keys never quotes the value.
#[test]
fn check_config_never_prints_a_redis_credential() {
    let store = |keys: &str| format!("{GOOD}[store]\nbackend = \"redis\"\n{keys}\n");
    for (keys, shown) in [
        (
            "redis_url = \"redis://alice-s3cret:pw-s3cret@r:6379/0?password=q-s3cret\"",
            "store: redis redis://***:***@r:6379/0?password=*** prefix",
        ),
        (
            "redis_sentinels = [\"redis://:pw-s3cret@s:26379?user=u-s3cret\"]\nredis_master_name = \"m\"",
            "store: redis sentinel \"m\" via [redis://:***@s:26379?user=***]",
        ),
        (
            "redis_cluster_nodes = [\"redis://u-s3cret:pw-s3cret@c:7000\", \"redis://c:7001?password=q-s3cret\"]",
            "store: redis cluster [redis://***:***@c:7000, redis://c:7001?password=***]",
        ),
    ] {
        let (code, text) = check(&store(keys), &[]);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains(shown), "missing {shown:?} in:\n{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
    for keys in [
        "redis_sentinels = \"redis://:pw-s3cret@s:26379\"\nredis_master_name = \"m\"",
        "redis_cluster_nodes = [\"redis://:pw-s3cret@c:7000\", 7]",
        "redis_url = \"http://u:pw-s3cret@r:6379?password=q-s3cret\"",
    ] {
        let (code, text) = check(&store(keys), &[]);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("store.redis_"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[test]
fn every_problem_in_one_run_with_its_key_and_its_source() {
    let config = "[server]\npublic_origin = \"https://broker.example.com\"\nlisten = \"nowhere\"\n\n[session]\nmax_values = \"64\"\n\n[handoff]\nttl_secs = 60\n";
    let (code, text) = check(config, &[("BATON_SESSION__IDLE_TIMEOUT_SECS", "soon")]);
    assert_eq!(code, 2, "{text}");
    for expected in [
        "4 problem(s)",
        "server.listen (",
        "line 3): \"nowhere\" is not an address:port such as \"127.0.0.1:8080\"",
        "session.max_values (",
        "line 6): invalid type: string \"64\", expected usize",
        "BATON_SESSION__IDLE_TIMEOUT_SECS (session.idle_timeout_secs): invalid type: string \"soon\"",
        "trust.origins: missing",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn no_handoff_key_on_https_is_an_error_unless_handoff_is_turned_off() {
    let without = "[server]\npublic_origin = \"https://broker.example.com\"\n[trust]\norigins = [\"https://shop.example.com\"]\n";
    let (code, text) = check(without, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("handoff.keys: none, on an https deployment"),
        "{text}"
    );
    let (code, text) = check(&format!("{without}[handoff]\nenabled = false\n"), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning: handoff.enabled = false"), "{text}");
}

#[test]
fn check_config_reads_baton_config() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("from-env.toml");
    std::fs::write(&path, GOOD).expect("write");
    let (code, text) = run(
        &["check-config"],
        &[("BATON_CONFIG", path.to_str().expect("utf-8"))],
    )
    .finish();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("from-env.toml: valid"), "{text}");
}

#[tokio::test]
async fn healthcheck_follows_readiness() {
    let baton = Baton::start(
        "[server]\npublic_origin = \"http://broker.localhost:9000\"\n[trust]\norigins = []\n[store]\nsqlite_path = \":memory:\"\n",
        &[],
    )
    .await;
    let ready = baton.url("/readyz");
    let (code, text) = run(&["healthcheck", "--url", &ready], &[]).finish();
    assert_eq!(code, Some(0), "ready: {text}");
    let (code, text) = run(&["healthcheck", "--url", &baton.url("/nowhere")], &[]).finish();
    assert_eq!(code, Some(1), "404 is not ready: {text}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/readyz", closed.local_addr().expect("addr"));
    drop(closed);
    let (code, text) = run(&["healthcheck", "--url", &url], &[]).finish();
    assert_eq!(code, Some(1), "nothing listening: {text}");
}

#[test]
fn an_unusable_sqlite_path_names_its_key_and_the_os_reason_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("no-such-dir");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_origin = \"http://broker.localhost:9000\"\n[trust]\norigins = []\n[store]\nsqlite_path = \"{}\"\n[log]\nformat = \"json\"\n",
        missing.join("baton.db").display()
    );
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, config).expect("write");
    let (code, text) = run(&["serve", "--config", path.to_str().expect("utf-8")], &[]).finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("store.sqlite_path: cannot open"), "{text}");
    assert!(
        text.contains("No such file or directory"),
        "the OS's reason: {text}"
    );
    assert!(
        !missing.exists(),
        "no directory is created behind the operator's back"
    );
}

/// An empty (or blank) `store.sqlite_path` is a config problem, not what SQLite would make of it:
/// a private temporary database per connection, deleted on close, so every session would be lost
/// and the read connections would see none of them.
#[test]
fn an_empty_sqlite_path_is_a_problem_named_by_check_config() {
    for empty in ["", "  "] {
        let (code, text) = check(
            &format!("{GOOD}[store]\nbackend = \"sqlite\"\nsqlite_path = \"{empty}\"\n"),
            &[],
        );
        assert_eq!(code, 2, "sqlite_path = {empty:?}: {text}");
        assert!(text.contains("1 problem(s)"), "{text}");
        // The key, where its value came from (the line of `sqlite_path`), and the rule.
        assert!(
            text.contains("store.sqlite_path (")
                && text.contains("line 10): must name a file (or \":memory:\" for tests)"),
            "{text}"
        );
    }
}
