//! What each fuzz target runs, shared with `tests/fuzz_regressions.rs` (which replays every
//! kept input through the same functions under a normal `cargo test`).
//!
//! Both take raw bytes and must never panic, whatever the bytes.

// Each fuzz target uses one of the two functions.
#![allow(dead_code)]

use securescore::api::ImprovementAction;
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::ownership::top_owner;
use securescore::engine::{CompiledAction, Inventory, Resource, TargetInput, evaluate};
use securescore::inventory::manifests::load_text;
use std::sync::Arc;

/// The manifest reader: the first byte picks a `.yaml` or `.json` file name, the rest is the
/// file's text (files that are not UTF-8 are refused before parsing, as `scan` does). The
/// objects then go through an inventory and the owner-chain walk. Returns (objects, errors).
pub fn manifests(data: &[u8]) -> (usize, usize) {
    let Some((&first, rest)) = data.split_first() else {
        return (0, 0);
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return (0, 0);
    };
    let file = if first % 2 == 0 {
        "fuzz.yaml"
    } else {
        "fuzz.json"
    };
    let (objects, errors) = load_text(file, text, "default");
    // The walk that reads large documents for their identity (any size here) agrees with the
    // reading it stands in for, or hands the document back.
    assert!(
        file.ends_with(".json") || securescore::inventory::manifests::identity_walk_agrees(text),
        "the identity walk and the identity reading disagree"
    );
    for e in &errors {
        // Every error names its file.
        assert!(e.to_string().starts_with(file), "{e}");
    }
    let inventory = Inventory::complete(objects.iter().cloned());
    for r in &objects {
        let top = top_owner(r, &inventory);
        assert_eq!(top.namespace, r.namespace, "an owner outside the namespace");
    }
    (objects.len(), errors.len())
}

/// A small Pod the expressions are evaluated over.
const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
    "labels": {"app": "web", "tier": "front"}, "annotations": {"note": "a b c"}},
  "spec": {"serviceAccountName": "web", "hostNetwork": false,
    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
    "containers": [
      {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}],
       "env": [{"name": "MODE", "value": "prod"}],
       "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
       "securityContext": {"privileged": false, "capabilities": {"drop": ["ALL"]}}},
      {"name": "side", "image": "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]}}"#;

/// The CEL layer through the engine's public API: the bytes (as UTF-8, lossily) are the
/// validation expression of a custom action applying to Pods; it is compiled, and when it
/// compiles, evaluated over a small Pod. Returns the action's state.
pub fn cel(data: &[u8]) -> String {
    let expression = String::from_utf8_lossy(data);
    let action: ImprovementAction = match serde_json::from_value(serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": "fuzz"},
        "spec": {"title": "Fuzz", "category": "Apps", "maxScore": 1,
            "check": {"resources": [{"apiGroup": "", "kind": "Pod"}],
                "validations": [{"expression": expression}]}}
    })) {
        Ok(a) => a,
        Err(e) => panic!("the action document is fixed but for a string: {e}"),
    };
    // The encoding the built-in catalog's parsed expressions are committed in gives back
    // any tree the parser makes (or refuses one deeper than it decodes).
    if let Ok(program) = securescore::engine::cel::cel::Program::compile(&expression) {
        let tree = program.expression();
        let encoding = securescore::engine::cel_parsed::encode(tree);
        match securescore::engine::cel_parsed::decode(&encoding) {
            Some(decoded) => assert!(&decoded == tree, "{expression:?}: the tree changed"),
            None => assert!(
                depth(tree) > securescore::engine::cel_parsed::MAX_DEPTH,
                "{expression:?}: a tree {} deep is refused",
                depth(tree)
            ),
        }
    }
    let compiled = Arc::new(CompiledAction::compile(&action));
    let pod: serde_json::Value = serde_json::from_str(POD).expect("fixed pod");
    let pod = Resource::new(pod, None).expect("fixed pod is an object");
    let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}});
    let namespace = Resource::new(namespace, None).expect("fixed namespace is an object");
    let inventory = Inventory::complete([Arc::new(namespace), Arc::new(pod)]);
    let target = implicit_cluster_target("fuzz", "default");
    let now = "2026-12-01T00:00:00Z".parse().expect("fixed time");
    let evaluation = evaluate(&TargetInput {
        target: &target,
        actions: &[compiled],
        inventory: &inventory,
        now,
        previous: None,
        wide_scope_allowed: true,
    });
    assert_eq!(evaluation.status.actions.len(), 1, "one action, one row");
    format!("{:?}", evaluation.status.actions[0].state)
}

/// How deep a parsed expression's tree is (a leaf is 1 deep).
fn depth(e: &securescore::engine::cel::cel::IdedExpr) -> u32 {
    use securescore::engine::cel::cel::common::ast::{EntryExpr, Expr};
    let entries = |entries: &[securescore::engine::cel::cel::common::ast::IdedEntryExpr]| {
        entries
            .iter()
            .map(|e| match &e.expr {
                EntryExpr::StructField(f) => depth(&f.value),
                EntryExpr::MapEntry(m) => depth(&m.key).max(depth(&m.value)),
            })
            .max()
            .unwrap_or(0)
    };
    1 + match &e.expr {
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 0,
        Expr::Call(c) => c
            .target
            .iter()
            .map(|t| depth(t))
            .chain(c.args.iter().map(depth))
            .max()
            .unwrap_or(0),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .map(depth)
        .max()
        .unwrap_or(0),
        Expr::List(l) => l.elements.iter().map(depth).max().unwrap_or(0),
        Expr::Map(m) => entries(&m.entries),
        Expr::Select(s) => depth(&s.operand),
        Expr::Struct(s) => entries(&s.entries),
    }
}
