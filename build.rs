//! Embeds the built-in catalog: every `charts/securescore/catalog/*.yaml`, the one source of
//! truth that the Helm chart renders too.

use std::io::Write;

fn main() {
    let dir = std::path::Path::new("charts/securescore/catalog");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("charts/securescore/catalog exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("catalog_files.rs");
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
