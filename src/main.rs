use clap::Parser;

// Evaluation allocates and frees many small CEL values on every core; mimalloc does that about
// twice as fast as glibc's malloc here (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// No transparent huge pages for this process. mimalloc asks the kernel for them on its arenas
/// (`madvise(MADV_HUGEPAGE)`), so every first touch of an arena zeroes and maps 2 MiB at once:
/// a scan of ~2,000 real documents peaked at 62-93 MiB instead of ~43 MiB and spent about a
/// fifth of its time in the kernel clearing pages (docs/performance.md, "Engine at 100k").
/// Faults after this call get 4 KiB pages; the setting is inherited by nothing we spawn.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) takes no pointers and only sets a flag on
    // this process; a failure (an old kernel) leaves the default, which is only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = securescore::cli::Cli::parse();
    securescore::cli::run(cli)
}
