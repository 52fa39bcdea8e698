//! The `securescore` command line: one file per subcommand.

mod crds;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Secure Score for Kubernetes: one explainable security score per team, from a catalog of
/// improvement actions checked with Kubernetes CEL.
#[derive(Parser, Debug)]
#[command(name = "securescore", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions (ImprovementAction, SecureScoreTarget) as YAML.
    Crds,
}

/// Run a parsed command line; the exit code follows the subcommand's contract.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => crds::run(),
    }
}
