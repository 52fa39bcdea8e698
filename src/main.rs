use clap::Parser;

// Evaluation allocates and frees many small CEL values on every core; mimalloc does that about
// twice as fast as glibc's malloc here (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = securescore::cli::Cli::parse();
    securescore::cli::run(cli)
}
