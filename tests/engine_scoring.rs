//! The scoring model of the SPEC, one scenario per test, with hand-computed numbers.

mod common;
use common::*;
use securescore::api::{ActionState, ExemptionState, Zone};

#[test]
fn two_of_three_compliant_on_a_nine_point_proportional_action_scores_six() {
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.max_score, Some(9.0));
    assert_eq!(e.status.percentage, Some(66.67));
    let r = row(&e, "non-root");
    assert_eq!((r.compliant, r.non_compliant, r.applicable), (2, 1, 3));
    assert_eq!(r.state, ActionState::ToAddress);
    assert_eq!(r.points_to_gain, 3.0);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].name, "db");
    assert_eq!(r.findings[0].message, "pod runs as root");
}

#[test]
fn binary_scoring_gives_nothing_unless_every_resource_is_awarded() {
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Binary")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(0.0));
    assert_eq!(e.status.max_score, Some(9.0));
    assert_eq!(row(&e, "non-root").points_to_gain, 9.0);
    let fixed = inventory(vec![pod("team-a", "web", true), pod("team-a", "db", true)]);
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Binary")],
        &fixed,
    );
    assert_eq!(e.status.score, Some(9.0));
    assert_eq!(row(&e, "non-root").state, ActionState::Completed);
}

#[test]
fn risk_accepted_never_awards_points_and_is_not_to_address() {
    let t = team_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(6.0));
    let r = row(&e, "non-root");
    assert_eq!(r.state, ActionState::RiskAccepted);
    assert_eq!(r.points_to_gain, 0.0);
    assert_eq!((r.exempt, r.non_compliant), (1, 0));
    assert!(
        r.findings.is_empty(),
        "accepted resources are not listed to address"
    );
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!((b.achieved, b.accepted, b.to_address), (6.0, 3.0, 0.0));
    assert_eq!(b.achievable_score, 6.0);
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Active);
    assert_eq!(e.status.exemptions[0].days_left, Some(34));
}

#[test]
fn resolved_third_party_awards_full_points_flagged_unverified() {
    let t = team_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(9.0));
    let r = row(&e, "non-root");
    assert!(r.unverified);
    assert_eq!(r.state, ActionState::ResolvedThirdParty);
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!((b.achieved, b.mitigated), (6.0, 3.0));
}

#[test]
fn resolved_alternate_awards_full_points_flagged_unverified() {
    let t = team_target(&exemption(
        "ResolvedAlternate",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(9.0));
    assert_eq!(row(&e, "non-root").state, ActionState::ResolvedAlternate);
    assert!(row(&e, "non-root").unverified);
}

#[test]
fn planned_keeps_measured_points_and_counts_toward_projected_score() {
    let t = team_target(&exemption("Planned", Some("db"), "2027-01-01T00:00:00Z"));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(6.0));
    let r = row(&e, "non-root");
    assert_eq!(r.state, ActionState::Planned);
    assert_eq!(r.points_to_gain, 3.0, "planned is still to address");
    assert_eq!(r.findings.len(), 1);
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!((b.to_address, b.projected_score), (3.0, 9.0));
}

#[test]
fn an_expired_exemption_stops_applying() {
    let t = team_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2026-11-26T12:00:00Z",
    ));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Expired);
    assert_eq!(row(&e, "non-root").state, ActionState::ToAddress);
}

#[test]
fn an_exemption_expiring_exactly_now_is_expired() {
    let t = team_target(&exemption("ResolvedThirdParty", Some("db"), NOW));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Expired);
    assert_eq!(e.status.score, Some(6.0));
}

#[test]
fn a_resolution_never_touches_a_compliant_resource() {
    // Whole-action RiskAccepted: the two compliant pods stay Compliant.
    let t = team_target(&exemption("RiskAccepted", None, "2027-01-01T00:00:00Z"));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    let r = row(&e, "non-root");
    assert_eq!((r.compliant, r.exempt), (2, 1));
    assert_eq!(e.status.exemptions[0].covered, 1);
}

#[test]
fn an_exemption_covering_no_non_compliant_resource_is_unused() {
    let t = team_target(&exemption(
        "RiskAccepted",
        Some("web"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Unused);
}

#[test]
fn no_applicable_resource_leaves_both_score_and_max() {
    let other = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: ingress-tls}
spec:
  title: Ingress uses TLS
  category: Infrastructure
  maxScore: 5
  check:
    resources: [{apiGroup: networking.k8s.io, kind: Ingress}]
    validations: [{expression: "has(object.spec.tls)"}]
"#,
    );
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional"), other],
        &three_pods(),
    );
    assert_eq!(e.status.max_score, Some(9.0));
    assert_eq!(e.status.score, Some(6.0));
    let r = row(&e, "ingress-tls");
    assert_eq!(r.state, ActionState::NotApplicable);
    assert_eq!((r.max_score, r.score), (0.0, 0.0));
}

#[test]
fn a_target_with_nothing_applicable_has_no_percentage() {
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &inventory(vec![]),
    );
    assert_eq!(e.status.percentage, None);
    assert_eq!(e.status.zone, None);
    assert_eq!(condition(&e, "Ready").reason, "NothingToEvaluate");
    assert_eq!(condition(&e, "GoalMet").status, "False");
}

fn deployment(name: &str, non_root: bool) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-deploy-{name}")},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": name}},
            "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "x:1"}]}}}
    })
}

fn owned(
    kind: &str,
    api: &str,
    name: &str,
    owner_kind: &str,
    owner_api: &str,
    owner: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut v = body;
    v["apiVersion"] = api.into();
    v["kind"] = kind.into();
    v["metadata"] = serde_json::json!({
        "name": name, "namespace": "team-a", "uid": format!("uid-{}-{name}", kind.to_lowercase()),
        "ownerReferences": [{"apiVersion": owner_api, "kind": owner_kind, "name": owner,
            "uid": format!("uid-{}-{owner}", if owner_kind == "Deployment" { "deploy".to_string() } else { owner_kind.to_lowercase() }), "controller": true}]
    });
    v
}

#[test]
fn a_deployment_with_replicas_and_its_pods_counts_once() {
    let spec = |nr: bool| serde_json::json!({"spec": {"securityContext": {"runAsNonRoot": nr}, "containers": [{"name": "c", "image": "x:1"}]}});
    let rs_body = serde_json::json!({"spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": false}, "containers": [{"name": "c", "image": "x:1"}]}}}});
    let mut objects = vec![
        deployment("web", false),
        owned(
            "ReplicaSet",
            "apps/v1",
            "web-7d9",
            "Deployment",
            "apps/v1",
            "web",
            rs_body,
        ),
    ];
    for i in 0..3 {
        objects.push(owned(
            "Pod",
            "v1",
            &format!("web-7d9-{i}"),
            "ReplicaSet",
            "apps/v1",
            "web-7d9",
            spec(false),
        ));
    }
    // A pod whose owner is not in the inventory counts on its own.
    objects.push(owned(
        "Pod",
        "v1",
        "orphan",
        "ReplicaSet",
        "apps/v1",
        "gone",
        spec(true),
    ));
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &inventory(objects),
    );
    let r = row(&e, "non-root");
    assert_eq!(r.applicable, 2, "the Deployment and the orphan pod: {r:?}");
    assert_eq!((r.compliant, r.non_compliant), (1, 1));
    assert_eq!(r.findings[0].kind, "Deployment");
    assert_eq!(e.status.score, Some(4.5));
}

#[test]
fn an_invalid_expression_in_one_action_leaves_the_others_untouched() {
    let broken = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: broken}
spec:
  title: Broken
  category: Apps
  maxScore: 4
  check:
    podSpec: true
    validations: [{expression: "podSpec.containers.all(c, c.image.nosuchfunction())"}]
"#,
    );
    assert!(!broken.is_ready());
    let alone = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    let both = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional"), broken],
        &three_pods(),
    );
    assert_eq!(row(&alone, "non-root"), row(&both, "non-root"));
    let b = row(&both, "broken");
    assert_eq!(b.state, ActionState::Unknown);
    assert_eq!((b.score, b.max_score, b.points_to_gain), (0.0, 4.0, 4.0));
    assert!(
        b.message
            .as_deref()
            .unwrap()
            .starts_with("InvalidExpression"),
        "{:?}",
        b.message
    );
    assert!(b.message.as_deref().unwrap().contains("nosuchfunction"));
    assert_eq!(both.status.max_score, Some(13.0));
    assert_eq!(both.status.score, Some(6.0));
}

#[test]
fn breakdown_always_adds_up_to_max_score() {
    // Thirds on 10 points exercise the rounding.
    let t = team_target(
        &(exemption("RiskAccepted", Some("db"), "2027-01-01T00:00:00Z")
            + "    - name: third\n      action: other\n      resolution: ResolvedAlternate\n      resources: {names: [api]}\n      owner: x\n      reason: y\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n"),
    );
    let other = non_root_action("other", 10, "Proportional");
    let inv = inventory(vec![
        pod("team-a", "web", true),
        pod("team-a", "api", false),
        pod("team-a", "db", false),
    ]);
    let e = eval(
        &t,
        &[non_root_action("non-root", 10, "Proportional"), other],
        &inv,
    );
    let b = e.status.breakdown.clone().unwrap();
    let sum = b.achieved + b.mitigated + b.accepted + b.to_address;
    assert!((sum - e.status.max_score.unwrap()).abs() < 1e-9, "{b:?}");
    assert_eq!(e.status.max_score, Some(20.0));
    // non-root: 1/3 achieved, api unresolved, db accepted. other: web achieved, api mitigated, db unresolved.
    assert_eq!(b.accepted, 3.33);
    assert_eq!(b.mitigated, 3.33);
    assert_eq!(b.achieved, 6.67);
    assert_eq!(b.to_address, 6.67);
    assert_eq!(e.status.score, Some(10.0));
    // ratio matches the status percentage within 0.00005
    assert!((e.ratio().unwrap() - e.status.percentage.unwrap() / 100.0).abs() <= 0.00005);
}

#[test]
fn zones_and_goal() {
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.zone, Some(Zone::Okay));
    assert_eq!(condition(&e, "GoalMet").status, "False");
    assert_eq!(condition(&e, "GoalMet").reason, "GoalMissed");
    let t = team_target("  zones: {good: 60, okay: 30}\n");
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.zone, Some(Zone::Good));
}

#[test]
fn preview_actions_are_reported_but_never_scored() {
    let preview = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: preview}
spec:
  title: Preview
  category: Apps
  maxScore: 10
  preview: true
  check:
    podSpec: true
    validations: [{expression: "false"}]
"#,
    );
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional"), preview],
        &three_pods(),
    );
    assert_eq!(e.status.max_score, Some(9.0));
    let r = row(&e, "preview");
    assert!(r.preview);
    assert_eq!(r.non_compliant, 3);
}
