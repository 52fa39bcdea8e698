//! External tools the tests need (helm, promtool, ...), installed by `scripts/install/*.sh`.

use std::path::{Path, PathBuf};

/// A tool from `$REPO/.tools/bin`, else from PATH; panics (fails the test) when neither has it:
/// a missing tool never skips a test.
pub fn tool(name: &str, installer: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/bin")
        .join(name);
    if local.is_file() {
        return local;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "`{name}` is not installed (neither in .tools/bin nor on PATH): run scripts/install/{installer}.sh"
    );
}
