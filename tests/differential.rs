//! Sharing values instead of copying them (the vendored cel patch: bound variables,
//! comprehension items and selected fields are `Arc`-shared; the engine binds each object's
//! converted value and each variable's result without converting them) changes no result.
//! Every input is evaluated twice, in the reference mode (every value deep-copied and
//! converted as upstream cel 0.13 does: `engine::cel::set_reference_mode`) and as the engine
//! runs; the whole status (scores, findings, messages) and every per-resource verdict must be
//! equal: on every catalog fixture, on `../shared/corpus` and on seeded synthetic clusters.

#[path = "support/corpus.rs"]
mod corpus;
#[path = "../benches/support/synth.rs"]
mod synth;

use securescore::engine::cel::{
    self as kcel, EvalError, cel::budget, compile, json_to_cel, root_context, set_reference_mode,
};
use securescore::engine::cel_fast;
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::{CompiledAction, Inventory, Resource, TargetInput, evaluate};
use securescore::inventory::manifests::load_text;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The reference mode is process-wide: the tests of this file take turns.
static MODE: Mutex<()> = Mutex::new(());

fn catalog() -> Vec<Arc<CompiledAction>> {
    securescore::catalog::builtin()
        .expect("built-in catalog")
        .iter()
        .map(|a| Arc::new(CompiledAction::compile(a)))
        .collect()
}

/// The status as JSON (scores, actions, findings and their messages) and, per action, every
/// applicable resource with its verdict.
fn outcome(actions: &[Arc<CompiledAction>], inventory: &Inventory) -> (String, Vec<String>) {
    let target = implicit_cluster_target("scan", "default");
    let eval = evaluate(&TargetInput {
        target: &target,
        actions,
        inventory,
        now: "2026-12-02T08:00:00Z".parse().expect("timestamp"),
        previous: None,
        wide_scope_allowed: true,
    });
    let status = serde_json::to_string_pretty(&eval.status).expect("status serialises");
    let verdicts = eval
        .actions
        .iter()
        .flat_map(|o| {
            o.results.iter().map(move |r| {
                format!(
                    "{} {} {:?} {:?}",
                    o.action.name,
                    r.resource.display(),
                    r.verdict,
                    r.resolution
                )
            })
        })
        .collect();
    (status, verdicts)
}

/// Evaluate `inventory` in the reference mode, then shared; both must agree. Returns the
/// number of verdicts compared and the evaluations the fast path (`engine::cel_fast`, off in
/// the reference mode) answered. A fresh catalog per run: an action keeps a count of budget
/// failures over its life.
fn assert_sharing_changes_nothing(inventory: &Inventory, what: &str) -> (usize, u64) {
    let _turn = MODE.lock().unwrap_or_else(|p| p.into_inner());
    cel_fast::count_hits(true);
    let before = cel_fast::hits();
    set_reference_mode(true);
    let reference = outcome(&catalog(), inventory);
    assert_eq!(
        cel_fast::hits(),
        before,
        "{what}: the fast path ran in the reference mode"
    );
    set_reference_mode(false);
    let shared = outcome(&catalog(), inventory);
    let fast = cel_fast::hits() - before;
    assert_eq!(
        reference.1.len(),
        shared.1.len(),
        "{what}: number of verdicts"
    );
    for (r, s) in reference.1.iter().zip(&shared.1) {
        assert_eq!(r, s, "{what}: a verdict differs");
    }
    assert!(
        reference.0 == shared.0,
        "{what}: the status differs:\n--- reference\n{}\n--- shared\n{}",
        reference.0,
        shared.0
    );
    (shared.1.len(), fast)
}

#[test]
fn the_reference_mode_copies_and_the_shared_mode_does_not() {
    // Guards the switch itself: without it the comparisons below would compare a path with
    // itself. An `all` over a list of maps copies every item in the reference mode (charged
    // to the budget as memory) and shares them otherwise.
    let _turn = MODE.lock().unwrap_or_else(|p| p.into_inner());
    let items: Vec<serde_json::Value> = (0..100)
        .map(
            |i| serde_json::json!({"name": format!("c{i}"), "image": "registry.example.com/app:1"}),
        )
        .collect();
    let object = json_to_cel(&serde_json::json!({ "items": items }));
    let check = compile(
        "object.items.all(c, c.image.startsWith('registry.'))",
        &[],
        &[],
    )
    .expect("compiles");
    // 4 KiB: far less than copying 100 two-entry maps, far more than anything else here.
    let limits = budget::Limits {
        steps: u64::MAX,
        memory: 4096,
    };
    let run = |reference: bool| {
        set_reference_mode(reference);
        let mut ctx = root_context().new_inner_scope();
        kcel::bind(&mut ctx, "object", &object.shared);
        let outcome = check.execute_within(&ctx, limits);
        set_reference_mode(false);
        outcome
    };
    match run(true) {
        Err(EvalError::BudgetExceeded(budget::Exceeded::Memory)) => {}
        other => panic!("the reference mode should copy past 4 KiB: {other:?}"),
    }
    assert_eq!(run(false).expect("evaluates"), kcel::cel::Value::Bool(true));
}

#[test]
fn sharing_changes_no_result_on_the_catalog_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog");
    let mut actions: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    actions.sort();
    assert!(actions.len() >= 60, "{} fixture directories", actions.len());
    let (mut compared, mut fast) = (0, 0);
    for action in &actions {
        for which in ["pass", "fail"] {
            let path = action.join(format!("{which}.yaml"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (objects, errors) = load_text(&path.display().to_string(), &text, "default");
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            let (verdicts, answered) = assert_sharing_changes_nothing(
                &Inventory::complete(objects),
                &path.display().to_string(),
            );
            compared += verdicts;
            fast += answered;
        }
    }
    assert!(compared > 120, "{compared} verdicts compared");
    // The comparison covers the fast path: the catalog's container checks take it.
    assert!(fast > 100, "the fast path answered {fast} evaluations");
}

#[test]
fn sharing_changes_no_result_on_the_corpus() {
    let mut files = Vec::new();
    corpus::manifests(&corpus::corpus(), &mut files);
    let mut objects = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let (loaded, _errors) = load_text(&f.display().to_string(), &text, "default");
        objects.extend(loaded);
    }
    assert!(objects.len() > 500, "{} objects", objects.len());
    let (compared, fast) = assert_sharing_changes_nothing(&Inventory::complete(objects), "corpus");
    assert!(compared > 1_000, "{compared} verdicts compared");
    assert!(fast > 1_000, "the fast path answered {fast} evaluations");
}

#[test]
fn sharing_changes_no_result_on_seeded_synthetic_clusters() {
    for (seed, insecure) in [(1, 0.2), (7, 0.5), (42, 0.9)] {
        let objects = synth::generate(synth::Config {
            seed,
            insecure,
            ..synth::Config::new(3_000)
        });
        let inventory = Inventory::complete(
            objects
                .into_iter()
                .map(|o| Arc::new(Resource::new(o, None).expect("synthetic object"))),
        );
        let (compared, fast) =
            assert_sharing_changes_nothing(&inventory, &format!("synthetic seed {seed}"));
        assert!(
            fast > 3_000,
            "seed {seed}: the fast path answered {fast} evaluations"
        );
        assert!(
            compared > 3_000,
            "seed {seed}: {compared} verdicts compared"
        );
    }
}
