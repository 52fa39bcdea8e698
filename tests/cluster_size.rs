//! A score must not depend on the cluster's size (issue 16): the whole built-in catalog over a
//! seeded 100,000-object synthetic cluster and over the real manifests of `../shared/corpus`
//! stays within its evaluation budget on every object, and every result equals a run with the
//! limits lifted. (A correctness test: timings live in benches/.)

#[path = "support/corpus.rs"]
mod corpus;
#[path = "../benches/support/synth.rs"]
mod synth;

use securescore::engine::cel::{cel::budget::Limits, is_budget_message};
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::{CompiledAction, Inventory, Resource, TargetInput, Verdict, evaluate};
use std::sync::Arc;

const UNLIMITED: Limits = Limits {
    steps: u64::MAX,
    memory: u64::MAX,
};

fn catalog(budget: Option<Limits>) -> Vec<Arc<CompiledAction>> {
    securescore::catalog::builtin()
        .expect("built-in catalog")
        .iter()
        .map(|a| {
            Arc::new(match budget {
                Some(b) => CompiledAction::compile_with_budget(a, b),
                None => CompiledAction::compile(a),
            })
        })
        .collect()
}

/// Per action: every applicable resource with its verdict.
fn results(
    actions: &[Arc<CompiledAction>],
    inventory: &Inventory,
) -> Vec<(String, Vec<(String, Verdict)>)> {
    let target = implicit_cluster_target("scan", "default");
    let eval = evaluate(&TargetInput {
        target: &target,
        actions,
        inventory,
        now: "2026-11-27T12:00:00Z".parse().expect("timestamp"),
        previous: None,
        wide_scope_allowed: true,
    });
    let mut out: Vec<_> = eval
        .actions
        .iter()
        .map(|o| {
            let mut rows: Vec<_> = o
                .results
                .iter()
                .map(|r| (r.resource.display(), r.verdict.clone()))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let state = format!("{:?} {:?}", o.state, o.message);
            (format!("{} [{state}]", o.action.name), rows)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_within_budget_and_unchanged(inventory: &Inventory, what: &str) {
    let limited = results(&catalog(None), inventory);
    for (action, rows) in &limited {
        assert!(
            !action.contains("LimitExceeded"),
            "{what}: {action} exceeded its budget"
        );
        for (resource, verdict) in rows {
            if let Verdict::Error { message } = verdict {
                assert!(
                    !is_budget_message(message),
                    "{what}: {action} on {resource}: {message}"
                );
            }
        }
    }
    let applicable: usize = limited.iter().map(|(_, r)| r.len()).sum();
    assert!(applicable > 0, "{what}: nothing was judged");
    let lifted = results(&catalog(Some(UNLIMITED)), inventory);
    assert_eq!(limited.len(), lifted.len());
    for (a, b) in limited.iter().zip(&lifted) {
        assert_eq!(a.0, b.0, "{what}: same actions");
        assert!(a.1 == b.1, "{what}: {} differs with the limits lifted", a.0);
    }
}

#[test]
fn the_catalog_stays_within_budget_on_a_100k_object_cluster() {
    // As in the issue: 1,000 ClusterRoles and ClusterRoleBindings among 100k objects.
    let objects = synth::generate(synth::Config {
        cluster_roles: 1_000,
        ..synth::Config::new(100_000)
    });
    assert!(objects.len() >= 100_000, "{} objects", objects.len());
    let cluster_roles = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .count();
    assert!(cluster_roles >= 1_000, "{cluster_roles} ClusterRoles");
    let inventory = Inventory::complete(
        objects
            .into_iter()
            .map(|o| Arc::new(Resource::new(o, None).expect("synthetic object"))),
    );
    assert_within_budget_and_unchanged(&inventory, "synthetic 100k");
}

#[test]
fn the_catalog_stays_within_budget_on_the_corpus() {
    let corpus = corpus::corpus();
    let mut files = Vec::new();
    corpus::manifests(&corpus, &mut files);
    let mut objects = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let (loaded, _errors) = securescore::inventory::manifests::load_text(
            &f.display().to_string(),
            &text,
            "default",
        );
        objects.extend(loaded);
    }
    assert!(objects.len() > 500, "{} objects", objects.len());
    assert_within_budget_and_unchanged(&Inventory::complete(objects), "corpus");
}
