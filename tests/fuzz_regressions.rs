//! Every input kept under tests/fixtures/fuzz/<target>/ (seeds, and each crash the fuzzers
//! found, once fixed) replayed through the same functions the cargo fuzz targets in fuzz/ run,
//! under a normal `cargo test`: a crash found once stays fixed.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "{}: the kept inputs are missing",
        dir.display()
    );
    files
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn kept_manifest_inputs_load_without_panicking() {
    let mut objects = 0;
    for path in inputs("manifests") {
        let data = bytes(&path);
        let result = std::panic::catch_unwind(|| harness::manifests(&data));
        let (n, _) = result.unwrap_or_else(|_| panic!("{} panicked", path.display()));
        objects += n;
    }
    // The seeds hold real objects: the replay reaches the engine, not only the parser.
    assert!(objects > 0, "no kept manifest input produced an object");
}

#[test]
fn kept_cel_inputs_compile_and_evaluate_without_panicking() {
    let mut states = std::collections::BTreeSet::new();
    for path in inputs("cel") {
        let data = bytes(&path);
        let result = std::panic::catch_unwind(|| harness::cel(&data));
        states.insert(result.unwrap_or_else(|_| panic!("{} panicked", path.display())));
    }
    // The seeds include a compliant, a non-compliant and an invalid expression.
    for state in ["Completed", "ToAddress", "Unknown"] {
        assert!(
            states.contains(state),
            "no kept input ended {state}: {states:?}"
        );
    }
}
