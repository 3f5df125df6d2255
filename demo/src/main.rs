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
    /// SQLite file for the demo's sessions (default: in a directory of this user's own, under
    /// $XDG_RUNTIME_DIR or the system's temporary directory).
    #[arg(long)]
    db: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let db = match args.db {
        Some(db) => db,
        None => match baton_demo::default_db() {
            Ok(db) => db,
            Err(e) => {
                eprintln!(
                    "baton-demo: cannot make a directory for the demo's database: {e}; choose a file with --db"
                );
                std::process::exit(1);
            }
        },
    };
    std::process::exit(baton_demo::run(args.listen, &db));
}
