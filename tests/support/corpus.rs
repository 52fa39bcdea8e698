//! `shared/corpus`: real third-party manifests (eight public projects) that the repository is
//! cloned beside (CI: `../shared/corpus`; a nested worktree: the nearest ancestor's), or
//! `$SECURESCORE_CORPUS`. Missing is a failure, never a skip.

use std::path::{Path, PathBuf};

pub fn corpus() -> PathBuf {
    if let Some(dir) = std::env::var_os("SECURESCORE_CORPUS").map(PathBuf::from) {
        assert!(
            dir.is_dir(),
            "SECURESCORE_CORPUS={} is not a directory",
            dir.display()
        );
        return dir;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpus"))
        .find(|c| c.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/corpus beside {} or above it: the repository is cloned next to a `shared/` copy holding corpus/ (or set SECURESCORE_CORPUS)",
                root.display()
            )
        })
}
