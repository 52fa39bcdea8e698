//! Embeds the built-in catalog and security controls: every `charts/securescore/catalog/*.yaml`
//! and `charts/securescore/controls/*.yaml`, the one source of truth that the Helm chart
//! renders too.

use std::io::Write;

fn main() {
    embed("charts/securescore/catalog", "catalog_files.rs");
    embed("charts/securescore/controls", "control_files.rs");
}

/// Write `OUT_DIR/<out>`: `pub static FILES: &[(&str, &str)]`, `(file name, contents)` of
/// every `*.yaml` in `dir`, sorted by name.
fn embed(dir: &str, out: &str) {
    let dir = std::path::Path::new(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} exists: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(out);
    let mut f = std::fs::File::create(out).expect("OUT_DIR is writable");
    writeln!(f, "pub static FILES: &[(&str, &str)] = &[").unwrap();
    for p in files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let abs = std::fs::canonicalize(&p).unwrap();
        writeln!(
            f,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    writeln!(f, "];").unwrap();
}
