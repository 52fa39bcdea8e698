//! Builders for engine tests: actions, targets and objects from the YAML users would write.
#![allow(dead_code)]

use securescore::api::{ImprovementAction, SecureScoreTarget, SecureScoreTargetStatus};
use securescore::engine::{
    CompiledAction, Inventory, Resource, TargetEvaluation, TargetInput, evaluate,
};
use std::sync::Arc;

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("test timestamp")
}

#[path = "../support/actions.rs"]
mod actions;
pub use actions::*;

pub fn action_yaml(yaml: &str) -> Arc<CompiledAction> {
    let a: ImprovementAction = serde_yaml_ng::from_str(yaml).expect("test action parses");
    Arc::new(CompiledAction::compile(&a))
}

/// A podSpec action named `name` that wants `runAsNonRoot: true` on the pod.
pub fn non_root_action(name: &str, points: u32, scoring: &str) -> Arc<CompiledAction> {
    action_yaml(&action_manifest(
        &format!("name: {name}"),
        "Run as non-root",
        "Apps",
        points,
        &format!(
            r#"  userImpact: Low
  implementationCost: Low
  check:
    podSpec: true
    scoring: {scoring}
    validations:
      - expression: "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot == true"
        messageExpression: "'pod runs as root'"
"#
        ),
    ))
}

pub fn pod(ns: &str, name: &str, non_root: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "labels": {"app": name}},
        "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
    })
}

pub fn target_yaml(yaml: &str) -> SecureScoreTarget {
    serde_yaml_ng::from_str(yaml).expect("test target parses")
}

pub fn team_target(extra_spec: &str) -> SecureScoreTarget {
    target_yaml(&format!(
        "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {{name: team-a, namespace: team-a, generation: 1}}\nspec:\n  goal: 80\n{extra_spec}"
    ))
}

pub fn inventory(objects: Vec<serde_json::Value>) -> Inventory {
    Inventory::complete(
        objects
            .into_iter()
            .map(|o| Arc::new(Resource::new(o, None).expect("test object"))),
    )
}

pub const NOW: &str = "2026-11-27T12:00:00Z";

pub fn eval(
    target: &SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
    inv: &Inventory,
) -> TargetEvaluation {
    eval_at(target, actions, inv, NOW, None)
}

pub fn eval_at(
    target: &SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
    inv: &Inventory,
    now: &str,
    previous: Option<&SecureScoreTargetStatus>,
) -> TargetEvaluation {
    evaluate(&TargetInput {
        target,
        actions,
        inventory: inv,
        now: ts(now),
        previous,
        wide_scope_allowed: true,
    })
}

pub fn row<'a>(e: &'a TargetEvaluation, name: &str) -> &'a securescore::api::ActionResult {
    e.status
        .actions
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

pub fn condition<'a>(
    e: &'a TargetEvaluation,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    e.status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no condition {type_}"))
}

/// Three pods in team-a: two run as non-root, `db` does not.
pub fn three_pods() -> Inventory {
    inventory(vec![
        pod("team-a", "web", true),
        pod("team-a", "api", true),
        pod("team-a", "db", false),
    ])
}

pub fn exemption(resolution: &str, names: Option<&str>, expires: &str) -> String {
    let resources = names
        .map(|n| format!("\n      resources: {{names: [{n}]}}"))
        .unwrap_or_default();
    let due = if resolution == "Planned" {
        "\n      dueDate: \"2026-12-31T00:00:00Z\""
    } else {
        ""
    };
    format!(
        "  exemptions:\n    - name: ex-{}\n      action: non-root\n      resolution: {resolution}{resources}\n      owner: team-a\n      reason: vendor image\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"{expires}\"{due}\n",
        resolution.to_lowercase()
    )
}
