//! The `securescore` command line: one file per subcommand.

mod catalog;
mod crds;
pub mod output;
pub mod scan;

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
    /// Print the built-in ImprovementActions: YAML ready for `kubectl apply -f -`, or a table.
    Catalog(catalog::CatalogArgs),
    /// Score Kubernetes manifests offline (files, directories, `-` for stdin) with the
    /// built-in catalog plus any ImprovementActions and SecureScoreTargets in the input;
    /// exit 1 below --min-score, 2 when input was skipped.
    Scan(scan::ScanArgs),
}

/// Run a parsed command line; the exit code follows the subcommand's contract.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => crds::run(),
        Command::Catalog(args) => catalog::run(args),
        Command::Scan(args) => scan::run(args),
    }
}
