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

/// The manifest files (`.yaml`, `.yml`, `.json`) below `dir`, recursively, in path order.
#[allow(dead_code)] // not every test including this module walks files
pub fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            manifests(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(p);
        }
    }
}
