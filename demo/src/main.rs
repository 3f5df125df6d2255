//! `baton-demo`: the broker with two demo partner sites on one port. Development only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Run the broker with two demo partner sites (shop and support) on one port, and print the URL to
/// open. Development only: it trusts *.localhost sites and generates its handoff key.
#[derive(Parser, Debug)]
#[command(name = "baton-demo", version)]
struct Args {
    /// Address to listen on; the sites are http://{broker,shop,support}.localhost:PORT.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite file for the demo's sessions.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("baton-demo.db"))]
    db: PathBuf,
}

fn main() {
    let args = Args::parse();
    std::process::exit(baton_demo::run(args.listen, &args.db));
}
