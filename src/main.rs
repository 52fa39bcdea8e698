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

/// mimalloc's `mi_option_purge_delay` (mimalloc.h: the 16th `mi_option_e`). Its default in the
/// bundled mimalloc 3 (libmimalloc-sys 0.1.49, src/options.c) is 1000 ms, which
/// [`purge_freed_memory_soon`] checks before changing it; `MIMALLOC_PURGE_DELAY` overrides both.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
const MI_DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

unsafe extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// A scan is a short burst of large temporary allocations (each big document's parser events,
/// several files at once on every core): mimalloc keeps freed pages for a second before giving
/// them back, longer than a whole scan of real repositories, so the process's peak is the sum
/// of what every thread ever freed. Giving them back at once (0: mimalloc.h, "use 0 for
/// immediate purging") keeps the peak near the live data: on ../shared/corpus 21.7-22.3 MiB
/// against 22.3-23.6 MiB after 1 ms, for the same CPU time within the noise
/// (docs/performance.md, "Scan: identity-only reading, purged memory" and "Scan at the speed
/// of parsing"). The operator keeps mimalloc's default.
fn purge_freed_memory_soon() {
    // SAFETY: both functions take and return plain integers; an option index mimalloc does not
    // know is ignored by it, and the value is only set when the index reads as the documented
    // default of the purge delay.
    unsafe {
        if mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = securescore::cli::Cli::parse();
    if matches!(
        cli.command,
        securescore::cli::Command::Scan(_) | securescore::cli::Command::Explain(_)
    ) {
        purge_freed_memory_soon();
    }
    securescore::cli::run(cli)
}
