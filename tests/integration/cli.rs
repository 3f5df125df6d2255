//! The command line as an operator uses it: `check-config` names every problem in one run, each
//! with its key and where its value came from; `healthcheck` tells a container runtime whether
//! the broker is ready; a command whose reader has gone (`| head -0`) exits quietly.

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
        // Named by its variable; a value from the environment is never shown (it may be secret).
        "BATON_SESSION__IDLE_TIMEOUT_SECS (session.idle_timeout_secs): invalid type: string (value not shown), expected u64",
        "trust.origins: missing",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("soon"), "{text}");
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

/// A config with `baton identity keygen`'s own output in it (as an operator pastes it), trusting
/// the shop and the support site.
fn identity_config(dir: &std::path::Path) -> std::path::PathBuf {
    let (code, keygen) = run(&["identity", "keygen"], &[]).finish();
    assert_eq!(code, Some(0), "{keygen}");
    let path = dir.join("baton.toml");
    let config = GOOD.replace(
        "[trust]\norigins = [\"https://shop.example.com\"]",
        "[trust]\norigins = [\"https://shop.example.com\", \"https://support.example.org\"]",
    );
    std::fs::write(&path, format!("{config}\n{keygen}\n")).expect("write");
    path
}

#[test]
fn identity_token_output_verifies_with_the_config_for_its_page_only() {
    let dir = tempfile::tempdir().expect("dir");
    let path = identity_config(dir.path());
    let config = path.to_str().expect("utf-8");
    let (code, text) = run(&["check-config", "--config", config], &[]).finish();
    assert_eq!(
        code,
        Some(0),
        "keygen's output is a valid [identity]: {text}"
    );
    let (code, token) = run(
        &[
            "identity",
            "token",
            "--config",
            config,
            "--iss",
            "https://shop.example.com",
            "--sub",
            "customer-42",
            "--ttl",
            "120",
        ],
        &[],
    )
    .finish();
    assert_eq!(code, Some(0), "{token}");
    let token = token.trim();
    // The library, independently of the CLI's own verify, with the same config.
    let loaded = baton::config::Config::load(Some(&path), Vec::new()).expect("config");
    let keys = baton::identity::IdentityKeys::from_config(&loaded).expect("identity keys");
    let now = baton::clock::Clock::now(&baton::clock::SystemClock);
    let shop = baton::origin::Origin::parse("https://shop.example.com").expect("origin");
    let identity = keys
        .verify(token, &shop, &loaded.trust.origins, now)
        .expect("the minted assertion verifies");
    assert_eq!(identity.subject, keys.subject_secret().hash("customer-42"));
    assert!(
        !token.contains("customer-42"),
        "sub is base64url, not clear text"
    );

    let verify = |page: &str| {
        let (code, text) = run(
            &[
                "identity", "verify", "--config", config, "--page", page, token,
            ],
            &[],
        )
        .finish();
        let verdict: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        (code, verdict)
    };
    let (code, verdict) = verify("https://shop.example.com");
    assert_eq!(code, Some(0), "{verdict}");
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["subject"], identity.subject.to_hex());
    // A trusted site that is not the assertion's issuer.
    let (code, verdict) = verify("https://support.example.org");
    assert_eq!(code, Some(1), "{verdict}");
    assert_eq!(verdict["error"], "identity_issuer");
}

#[test]
fn identity_token_refuses_without_identity_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, GOOD).expect("write");
    let (code, text) = run(
        &[
            "identity",
            "token",
            "--config",
            path.to_str().expect("utf-8"),
            "--iss",
            "https://shop.example.com",
            "--sub",
            "c",
        ],
        &[],
    )
    .finish();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no [[identity.keys]]"), "{text}");
}

/// Runs `baton` with `args`, its stdout a pipe whose reader has already gone, and gives its exit
/// code and what it wrote to stderr. The pipe is the stdin of a process that has exited, so the
/// first write fails with `BrokenPipe` for certain (a reader closed after the spawn would race
/// with the write).
fn run_into_a_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    use std::process::{Command, Stdio};
    let mut gone = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn true");
    let pipe = gone.stdin.take().expect("its stdin");
    gone.wait()
        .expect("true exits, and with it the pipe's only reader");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
    for (name, _) in std::env::vars() {
        if name.starts_with("BATON_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(pipe))
        .stderr(Stdio::piped())
        .output()
        .expect("run baton");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `baton keygen | head -0` and the like: Rust ignores SIGPIPE, so a `println!` there panics
/// ("failed printing to stdout", status 101). Each printing command exits quietly instead, with
/// the status of its answer.
#[test]
fn a_command_whose_reader_has_gone_exits_quietly_with_its_status() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, GOOD).expect("write");
    let config = path.to_str().expect("utf-8");
    for args in [
        vec!["keygen"],
        vec!["check-config", "--config", config],
        vec!["assets", "--config", config],
        vec![
            "check-origin",
            "--config",
            config,
            "https://shop.example.com",
        ],
    ] {
        let (code, stderr) = run_into_a_closed_pipe(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
    }
}
