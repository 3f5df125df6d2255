//! The real `baton` binary as a child process, for tests that need the process itself (its logs,
//! its exit code, signals). It listens on port 0 and says where in its JSON start-up line, so no
//! test guesses a free port that another process could take first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `baton serve`; killed when dropped.
pub struct Baton {
    child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Baton {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line (so far) of `lines` that is JSON with `fields.message == message`.
fn find(lines: &[String], message: &str) -> Option<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == message)
}

/// A `baton` child process and every line it has written so far.
pub struct Run {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Run {
    /// Waits for the process to exit and for its last line to be read (the readers end at the
    /// pipes' end of file): the exit code and the whole output, with no sleep to guess it by.
    pub fn finish(mut self) -> (Option<i32>, String) {
        finish(&mut self.child, &mut self.readers, &self.lines)
    }
}

fn finish(
    child: &mut Child,
    readers: &mut Vec<std::thread::JoinHandle<()>>,
    lines: &Mutex<Vec<String>>,
) -> (Option<i32>, String) {
    let status = child.wait().expect("wait");
    for reader in readers.drain(..) {
        reader.join().expect("reader");
    }
    let text = lines.lock().expect("lines").join("\n");
    (status.code(), text)
}

/// Runs `baton` with `args` and `env` (no other `BATON_*` or `RUST_LOG` from the test's own
/// environment), collecting every line it writes to stdout and stderr.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_limited(args, env, None)
}

/// `run`, under an open-file limit of `nofile` (soft and hard, by `prlimit`) when given.
pub fn run_limited(args: &[&str], env: &[(&str, &str)], nofile: Option<u64>) -> Run {
    let baton = env!("CARGO_BIN_EXE_baton");
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(baton);
            c
        }
        None => Command::new(baton),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("BATON_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("spawn baton");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let readers = [out, err]
        .into_iter()
        .flatten()
        .map(|stream| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(line);
                }
            })
        })
        .collect();
    Run {
        child,
        lines,
        readers,
    }
}

impl Baton {
    /// Starts `baton serve` on `config` (TOML; `[server] listen` and `admin_listen` on port 0 are
    /// added, and `[log] format = "json"`) and waits for its start-up line.
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_limited(config, env, None).await
    }

    /// `start`, under an open-file limit of `nofile`.
    pub async fn start_limited(config: &str, env: &[(&str, &str)], nofile: Option<u64>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baton.toml");
        let text = format!(
            "{config}\n[log]\nformat = \"json\"\n",
            config = config.replacen(
                "[server]",
                "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
                1
            )
        );
        std::fs::write(&path, text).expect("write config");
        let path = path.to_str().expect("utf-8").to_owned();
        let Run {
            mut child,
            lines,
            readers,
        } = run_limited(&["serve", "--config", &path], env, nofile);
        let deadline = Instant::now() + Duration::from_secs(20);
        let started = loop {
            if let Some(line) = find(&lines.lock().expect("lines"), "baton is listening") {
                break line;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "baton exited with {status}:\n{}",
                    lines.lock().expect("lines").join("\n")
                );
            }
            assert!(Instant::now() < deadline, "baton did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let addr = |key: &str| {
            started["fields"][key]
                .as_str()
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        Self {
            addr: addr("listen").expect("the start-up line names the address"),
            admin: addr("admin"),
            child,
            lines,
            readers,
            _dir: dir,
        }
    }

    /// SIGTERM, as a container runtime stops it: waits for the graceful exit and the last line
    /// written, and gives the exit code and the whole output.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM");
        finish(&mut self.child, &mut self.readers, &self.lines)
    }

    /// SIGKILL: no shutdown hook, no flush; waits for the process to be gone.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The broker's process id (`prlimit` execs the broker, so it is the broker's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory in KiB (of `prlimit`'s child when started under a limit:
    /// `prlimit` execs the broker, so the pid is the broker's).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Waits (up to 5 s) for a JSON line whose message is `message`.
    pub async fn line(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(v) = find(&self.lines(), message) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} line in:\n{}",
                self.lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
