use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = securescore::cli::Cli::parse();
    securescore::cli::run(cli)
}
