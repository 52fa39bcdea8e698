//! The `securescore` command line: one file per subcommand.

mod catalog;
mod crds;
mod explain;
mod gates;
pub mod output;
mod run;
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
    /// Run the operator against the cluster of the kubeconfig (or in-cluster).
    Run(run::RunArgs),
    /// Print the built-in ImprovementActions: YAML ready for `kubectl apply -f -`, or a table.
    Catalog(catalog::CatalogArgs),
    /// Score Kubernetes manifests offline (files, directories, `-` for stdin) with the
    /// built-in catalog plus any ImprovementActions and SecureScoreTargets in the input;
    /// exit 1 below --min-score, 2 when input was skipped.
    Scan(scan::ScanArgs),
    /// Explain an improvement action: what it checks (CEL), how to fix it, its examples, which
    /// resources of PATH fail it, and a ready-to-paste exemption within its policy.
    Explain(explain::ExplainArgs),
}

/// Run a parsed command line; the exit code follows the subcommand's contract.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => crds::run(),
        Command::Run(args) => run::run(args),
        Command::Catalog(args) => catalog::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Explain(args) => explain::run(args),
    }
}

/// Structured logs with `tracing`; `RUST_LOG` filters (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
