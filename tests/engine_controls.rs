//! The SecurityControls model (Defender for Cloud's secure score), one scenario per test, with
//! hand-computed numbers: a resource is healthy only when every applicable action of the
//! control judges it compliant (or resolved); control points = maxScore × healthy ÷ applicable.

mod common;
use common::*;
use securescore::api::{
    ActionState, ControlResult, ScoringModel, SecurityControl, SecurityControlSpec,
};
use securescore::engine::{
    CompiledAction, Inventory, TargetEvaluation, TargetInput, evaluate_with_controls,
};
use serde_json::json;
use std::sync::Arc;

/// A podSpec action named `name` that wants no container image tagged `:latest`.
fn no_latest_action(name: &str, points: u32) -> Arc<CompiledAction> {
    action_yaml(&action_manifest(
        &format!("name: {name}, labels: {{area: images}}"),
        "No latest tag",
        "Apps",
        points,
        NO_LATEST_CHECK,
    ))
}

/// An action on Services only (no Service in these inventories: it is NotApplicable).
fn service_action(name: &str) -> Arc<CompiledAction> {
    action_yaml(&action_manifest(
        &format!("name: {name}"),
        "No NodePort",
        "Infrastructure",
        4,
        r#"  check:
    resources: [{kind: Service}]
    validations:
      - expression: "object.spec.type != 'NodePort'"
"#,
    ))
}

/// An action whose check does not compile: Unknown for every target.
fn broken_action(name: &str) -> Arc<CompiledAction> {
    action_yaml(&action_manifest(
        &format!("name: {name}"),
        "Broken",
        "Apps",
        3,
        r#"  check:
    podSpec: true
    validations:
      - expression: "podSpec.containers.all(c, "
"#,
    ))
}

fn control(name: &str, max: u32, actions: &[&str]) -> Arc<SecurityControl> {
    Arc::new(SecurityControl::new(
        name,
        SecurityControlSpec {
            title: format!("Control {name}"),
            description: String::new(),
            max_score: max,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            action_selector: None,
        },
    ))
}

/// A pod in team-a, running as non-root or not, with image `nginx:<tag>`.
fn app(name: &str, non_root: bool, tag: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}")},
        "spec": {"securityContext": {"runAsNonRoot": non_root},
                 "containers": [{"name": "c", "image": format!("nginx:{tag}")}]}
    })
}

fn controls_target(extra: &str) -> securescore::api::SecureScoreTarget {
    team_target(&format!("  model: SecurityControls\n{extra}"))
}

fn eval_controls(
    target: &securescore::api::SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
    inv: &Inventory,
    controls: &[Arc<SecurityControl>],
) -> TargetEvaluation {
    evaluate_with_controls(
        &TargetInput {
            target,
            actions,
            inventory: inv,
            now: ts(NOW),
            previous: None,
            wide_scope_allowed: true,
        },
        controls,
    )
}

fn control_row<'a>(e: &'a TargetEvaluation, name: &str) -> &'a ControlResult {
    e.status
        .controls
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no control row {name}"))
}

fn two_actions() -> Vec<Arc<CompiledAction>> {
    vec![
        non_root_action("non-root", 9, "Proportional"),
        no_latest_action("no-latest", 5),
    ]
}

#[test]
fn a_resource_failing_one_of_two_actions_is_unhealthy() {
    // web passes both; db runs as root (fails non-root only): 1 healthy of 2 → 10 × 1/2 = 5.
    let inv = inventory(vec![app("web", true, "1.27"), app("db", false, "1.27")]);
    let e = eval_controls(
        &controls_target(""),
        &two_actions(),
        &inv,
        &[control("workloads", 10, &["non-root", "no-latest"])],
    );
    let c = control_row(&e, "workloads");
    assert_eq!((c.healthy, c.unhealthy, c.applicable), (1, 1, 2));
    assert_eq!((c.score, c.max_score, c.points_to_gain), (5.0, 10.0, 5.0));
    assert_eq!(c.state, ActionState::ToAddress);
    assert_eq!(c.actions, ["no-latest", "non-root"]);
    // The target is the sum of its controls; the actions' own points (4.5 + 5) are not used.
    assert_eq!(e.status.score, Some(5.0));
    assert_eq!(e.status.max_score, Some(10.0));
    assert_eq!(e.status.percentage, Some(50.0));
    assert!(
        e.status.categories.is_empty(),
        "categories sum actions' points"
    );
    // The action rows stay, for drill-down.
    assert_eq!(row(&e, "non-root").score, 4.5);
}

#[test]
fn three_of_four_healthy_on_an_eight_point_control_score_six() {
    let inv = inventory(vec![
        app("a", true, "1.27"),
        app("b", true, "1.27"),
        app("c", true, "1.27"),
        app("d", true, "latest"),
    ]);
    let e = eval_controls(
        &controls_target(""),
        &two_actions(),
        &inv,
        &[control("workloads", 8, &["non-root", "no-latest"])],
    );
    let c = control_row(&e, "workloads");
    assert_eq!((c.healthy, c.applicable, c.score), (3, 4, 6.0));
    let b = e.status.breakdown.as_ref().expect("breakdown");
    assert_eq!((b.achieved, b.to_address), (6.0, 2.0));
}

#[test]
fn failing_both_actions_makes_one_unhealthy_resource_not_two() {
    // d fails both actions: still one resource of four.
    let inv = inventory(vec![
        app("a", true, "1.27"),
        app("b", true, "1.27"),
        app("c", true, "1.27"),
        app("d", false, "latest"),
    ]);
    let e = eval_controls(
        &controls_target(""),
        &two_actions(),
        &inv,
        &[control("workloads", 8, &["non-root", "no-latest"])],
    );
    let c = control_row(&e, "workloads");
    assert_eq!((c.healthy, c.unhealthy, c.score), (3, 1, 6.0));
}

#[test]
fn resolved_counts_healthy_and_risk_accepted_does_not() {
    let inv = inventory(vec![
        app("a", true, "1.27"),
        app("b", true, "1.27"),
        app("c", true, "1.27"),
        app("db", false, "1.27"),
    ]);
    let controls = [control("workloads", 8, &["non-root", "no-latest"])];
    let resolved = controls_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval_controls(&resolved, &two_actions(), &inv, &controls);
    let c = control_row(&e, "workloads");
    assert_eq!((c.healthy, c.score), (4, 8.0));
    assert_eq!(c.state, ActionState::ResolvedThirdParty);
    let b = e.status.breakdown.as_ref().expect("breakdown");
    assert_eq!((b.achieved, b.mitigated), (6.0, 2.0));

    let accepted = controls_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval_controls(&accepted, &two_actions(), &inv, &controls);
    let c = control_row(&e, "workloads");
    assert_eq!((c.healthy, c.unhealthy, c.score), (3, 1, 6.0));
    assert_eq!(c.state, ActionState::RiskAccepted);
    assert_eq!(c.points_to_gain, 0.0, "an accepted risk is not to address");
    let b = e.status.breakdown.as_ref().expect("breakdown");
    assert_eq!((b.accepted, b.achievable_score), (2.0, 6.0));
}

#[test]
fn a_risk_accepted_under_one_action_is_forgone_even_when_another_finding_is_open() {
    // db is accepted under non-root and fails no-latest: fixing the tag alone would not make it
    // healthy, so its points are forgone (accepted), not to address.
    let inv = inventory(vec![app("web", true, "1.27"), app("db", false, "latest")]);
    let t = controls_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval_controls(
        &t,
        &two_actions(),
        &inv,
        &[control("workloads", 10, &["non-root", "no-latest"])],
    );
    let b = e.status.breakdown.as_ref().expect("breakdown");
    assert_eq!((b.achieved, b.accepted, b.to_address), (5.0, 5.0, 0.0));
    assert_eq!(b.achievable_score, 5.0);
}

#[test]
fn an_unknown_action_makes_its_control_unknown_with_max_kept() {
    let actions = vec![
        non_root_action("non-root", 9, "Proportional"),
        broken_action("broken"),
    ];
    let inv = inventory(vec![app("web", true, "1.27")]);
    let e = eval_controls(
        &controls_target(""),
        &actions,
        &inv,
        &[
            control("mixed", 6, &["non-root", "broken"]),
            control("clean", 4, &["non-root"]),
        ],
    );
    let c = control_row(&e, "mixed");
    assert_eq!(c.state, ActionState::Unknown);
    assert_eq!((c.score, c.max_score, c.points_to_gain), (0.0, 6.0, 6.0));
    assert!(c.message.as_deref().unwrap_or("").contains("broken"));
    assert_eq!(control_row(&e, "clean").score, 4.0);
    assert_eq!(e.status.score, Some(4.0));
    assert_eq!(e.status.max_score, Some(10.0));
}

#[test]
fn a_control_with_nothing_applicable_leaves_score_and_max() {
    let actions = vec![
        non_root_action("non-root", 9, "Proportional"),
        service_action("no-nodeport"),
    ];
    let inv = inventory(vec![app("web", true, "1.27"), app("db", false, "1.27")]);
    let e = eval_controls(
        &controls_target(""),
        &actions,
        &inv,
        &[
            control("network", 4, &["no-nodeport"]),
            control("workloads", 6, &["non-root"]),
        ],
    );
    let c = control_row(&e, "network");
    assert_eq!(c.state, ActionState::NotApplicable);
    assert_eq!((c.score, c.max_score, c.applicable), (0.0, 0.0, 0));
    assert_eq!(e.status.score, Some(3.0));
    assert_eq!(e.status.max_score, Some(6.0));
}

#[test]
fn an_action_in_two_controls_counts_in_both_and_one_in_none_scores_nothing() {
    let inv = inventory(vec![app("web", true, "1.27"), app("db", false, "1.27")]);
    let e = eval_controls(
        &controls_target(""),
        &two_actions(),
        &inv,
        &[
            control("first", 4, &["non-root"]),
            control("second", 6, &["non-root"]),
        ],
    );
    assert_eq!(control_row(&e, "first").score, 2.0);
    assert_eq!(control_row(&e, "second").score, 3.0);
    assert_eq!(e.status.score, Some(5.0));
    assert_eq!(e.status.max_score, Some(10.0));
    assert_eq!(e.status.actions_not_in_controls, ["no-latest"]);
}

#[test]
fn a_control_groups_actions_by_label_selector() {
    let inv = inventory(vec![app("web", true, "latest"), app("db", true, "1.27")]);
    let mut c = SecurityControl::new(
        "images",
        SecurityControlSpec {
            title: "Images".into(),
            description: String::new(),
            max_score: 6,
            actions: Vec::new(),
            action_selector: Some(
                serde_json::from_value(json!({"matchLabels": {"area": "images"}}))
                    .expect("selector"),
            ),
        },
    );
    c.metadata.labels = None;
    let e = eval_controls(&controls_target(""), &two_actions(), &inv, &[Arc::new(c)]);
    let row = control_row(&e, "images");
    assert_eq!(row.actions, ["no-latest"]);
    assert_eq!((row.healthy, row.applicable, row.score), (1, 2, 3.0));
    assert_eq!(e.status.actions_not_in_controls, ["non-root"]);
}

#[test]
fn preview_actions_are_left_out_of_controls() {
    let preview = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: preview-latest}
spec:
  title: No latest tag (preview)
  category: Apps
  maxScore: 5
  preview: true
  check:
    podSpec: true
    validations:
      - expression: "podSpec.containers.all(c, !c.image.endsWith(':latest'))"
"#,
    );
    let actions = vec![non_root_action("non-root", 9, "Proportional"), preview];
    let inv = inventory(vec![app("web", true, "latest")]);
    let e = eval_controls(
        &controls_target(""),
        &actions,
        &inv,
        &[control("workloads", 8, &["non-root", "preview-latest"])],
    );
    let c = control_row(&e, "workloads");
    assert_eq!(c.actions, ["non-root"]);
    assert_eq!((c.healthy, c.score), (1, 8.0));
}

#[test]
fn the_default_model_ignores_controls() {
    let inv = three_pods();
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let controls = [control("workloads", 8, &["non-root"])];
    let t = team_target("");
    assert_eq!(t.spec.model, ScoringModel::ImprovementActions);
    let with = eval_controls(&t, &actions, &inv, &controls);
    let without = eval(&t, &actions, &inv);
    assert!(with.status.controls.is_empty());
    assert!(with.controls.is_none());
    assert_eq!(with.status.score, Some(6.0));
    assert_eq!(
        serde_json::to_value(&with.status).expect("status"),
        serde_json::to_value(&without.status).expect("status")
    );
    // And the default model is not even written back into the spec.
    let spec = serde_json::to_value(&t.spec).expect("spec");
    assert!(spec.get("model").is_none(), "{spec}");
}

#[test]
fn controls_are_ranked_by_points_to_gain() {
    let inv = inventory(vec![app("web", true, "latest"), app("db", false, "1.27")]);
    let e = eval_controls(
        &controls_target(""),
        &two_actions(),
        &inv,
        &[
            control("a-small", 2, &["non-root"]),
            control("b-large", 10, &["no-latest"]),
        ],
    );
    let names: Vec<&str> = e.status.controls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["b-large", "a-small"]);
    assert_eq!(e.status.controls[0].points_to_gain, 5.0);
}

#[test]
fn builtin_controls_group_every_scored_builtin_action() {
    let actions = securescore::catalog::builtin().expect("catalog");
    let controls = securescore::catalog::builtin_controls().expect("controls");
    assert!(controls.len() >= 6, "{} controls", controls.len());
    for a in actions.iter().filter(|a| !a.spec.preview) {
        let name = a.metadata.name.as_deref().unwrap_or_default();
        let labels = a.metadata.labels.clone().unwrap_or_default();
        assert!(
            controls
                .iter()
                .any(|c| securescore::engine::controls::groups(c, name, &labels)),
            "built-in action {name} is in no built-in control"
        );
    }
    // Every name a built-in control lists is a built-in action.
    for c in &controls {
        for a in &c.spec.actions {
            assert!(
                actions
                    .iter()
                    .any(|x| x.metadata.name.as_deref() == Some(a)),
                "control {:?} names unknown action {a}",
                c.metadata.name
            );
        }
        assert!((1..=10).contains(&c.spec.max_score));
    }
}

#[test]
fn more_controls_than_the_status_holds_are_trimmed_but_all_scored() {
    let inv = inventory(vec![app("web", true, "1.27")]);
    let controls: Vec<Arc<SecurityControl>> = (0..300)
        .map(|i| control(&format!("c{i:03}"), 1, &["non-root"]))
        .collect();
    let e = eval_controls(&controls_target(""), &two_actions(), &inv, &controls);
    assert_eq!(e.status.controls.len(), 256);
    assert!(e.status.truncated);
    assert_eq!(e.status.score, Some(300.0));
    assert_eq!(e.status.max_score, Some(300.0));
}
