use clap::Parser;

fn main() {
    std::process::exit(baton::cli::run(baton::cli::Cli::parse()));
}
