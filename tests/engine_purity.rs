//! The engine is pure: it never imports a Kubernetes client, the controller runtime, tokio,
//! or reads the clock. The operator and `securescore scan` give the same answer because of it.

#[test]
fn the_engine_imports_no_client_runtime_async_or_clock() {
    let forbidden = [
        "kube::Client",
        "kube::runtime",
        "kube::api",
        "tokio",
        "async fn",
        ".await",
        "Timestamp::now",
        "SystemTime",
        "Instant::now",
        "chrono::Utc::now",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for f in forbidden {
            assert!(!text.contains(f), "{} uses {f}", path.display());
        }
        checked += 1;
    }
    assert!(
        checked >= 8,
        "expected the engine's modules, found {checked}"
    );
}
