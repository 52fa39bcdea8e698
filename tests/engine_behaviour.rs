//! Exemption governance, inventory completeness, history and changes, scope, and the CEL
//! bindings, as the SPEC states them.

mod common;
use common::*;
use securescore::api::{ActionState, ExemptionState};
use securescore::engine::transitions::{Transition, transitions};
use securescore::engine::{KindStatus, Outcome, Resource, TargetInput, evaluate};
use std::collections::HashMap;
use std::sync::Arc;

fn restricted_action(policy: &str) -> Arc<securescore::engine::CompiledAction> {
    action_yaml(&format!(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {{name: non-root}}
spec:
  title: Run as non-root
  category: Apps
  maxScore: 9
  exemptionPolicy: {policy}
  check:
    podSpec: true
    validations:
      - expression: "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot"
"#
    ))
}

#[test]
fn a_resolution_the_policy_forbids_is_invalid_and_ignored() {
    let a = restricted_action("{allowedResolutions: [Planned]}");
    let t = team_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(&t, &[a], &three_pods());
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Invalid);
    assert!(
        e.status.exemptions[0]
            .message
            .as_deref()
            .unwrap()
            .contains("does not allow ResolvedThirdParty")
    );
    assert_eq!(e.status.score, Some(6.0));
}

#[test]
fn an_exemption_longer_than_max_days_is_invalid() {
    let a = restricted_action("{maxDays: 30}");
    // approved 2026-11-01, expires 2027-01-01: 61 days
    let t = team_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(&t, &[a], &three_pods());
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Invalid);
    assert!(
        e.status.exemptions[0]
            .message
            .as_deref()
            .unwrap()
            .contains("61 days"),
        "{:?}",
        e.status.exemptions[0]
    );
    assert_eq!(e.status.score, Some(6.0));
}

#[test]
fn open_ended_exemptions_need_the_policy_to_allow_them() {
    let ex = "  exemptions:\n    - name: forever\n      action: non-root\n      resolution: ResolvedAlternate\n      owner: a\n      reason: b\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      openEnded: true\n";
    let e = eval(&team_target(ex), &[restricted_action("{}")], &three_pods());
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Invalid);
    assert!(
        e.status.exemptions[0]
            .message
            .as_deref()
            .unwrap()
            .contains("open-ended")
    );
    let e = eval(
        &team_target(ex),
        &[restricted_action("{allowOpenEnded: true}")],
        &three_pods(),
    );
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Active);
    assert_eq!(e.status.exemptions[0].days_left, None);
    assert_eq!(e.status.score, Some(9.0));
}

#[test]
fn an_exemption_for_an_unknown_action_or_with_a_bad_timestamp_is_invalid() {
    let ex = "  exemptions:\n    - name: a\n      action: nope\n      resolution: RiskAccepted\n      owner: a\n      reason: b\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n    - name: b\n      action: non-root\n      resolution: RiskAccepted\n      owner: a\n      reason: b\n      approvedAt: \"yesterday\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n";
    let e = eval(
        &team_target(ex),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Invalid);
    assert!(
        e.status.exemptions[0]
            .message
            .as_deref()
            .unwrap()
            .contains("\"nope\"")
    );
    assert_eq!(e.status.exemptions[1].state, ExemptionState::Invalid);
    assert!(
        e.status.exemptions[1]
            .message
            .as_deref()
            .unwrap()
            .contains("approvedAt")
    );
}

#[test]
fn a_planned_exemption_past_its_due_date_is_overdue_and_still_planned() {
    let ex = exemption("Planned", Some("db"), "2027-01-01T00:00:00Z")
        .replace("2026-12-31T00:00:00Z", "2026-11-20T00:00:00Z");
    let e = eval(
        &team_target(&ex),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Overdue);
    assert_eq!(row(&e, "non-root").state, ActionState::Planned);
}

#[test]
fn precedence_named_beats_whole_action_beats_action_resolution_and_least_generous_wins() {
    let with_resolution = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: non-root}
spec:
  title: Run as non-root
  category: Apps
  maxScore: 9
  resolution: {state: ResolvedThirdParty, owner: platform, reason: admission policy enforces it}
  check:
    podSpec: true
    validations: [{expression: "podSpec.securityContext.runAsNonRoot"}]
"#,
    );
    // Only the action's resolution: db is mitigated.
    let e = eval(
        &team_target(""),
        std::slice::from_ref(&with_resolution),
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(9.0));
    // A whole-action RiskAccepted in the target beats the action's ResolvedThirdParty.
    let t = team_target(&exemption("RiskAccepted", None, "2027-01-01T00:00:00Z"));
    let e = eval(&t, std::slice::from_ref(&with_resolution), &three_pods());
    assert_eq!(e.status.score, Some(6.0));
    // A named ResolvedAlternate beats the whole-action RiskAccepted.
    let named = exemption("RiskAccepted", None, "2027-01-01T00:00:00Z")
        + "    - name: named\n      action: non-root\n      resolution: ResolvedAlternate\n      resources: {names: [db]}\n      owner: a\n      reason: b\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n";
    let e = eval(
        &team_target(&named),
        std::slice::from_ref(&with_resolution),
        &three_pods(),
    );
    assert_eq!(e.status.score, Some(9.0));
    assert_eq!(e.status.exemptions[1].covered, 1);
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Unused);
    // Two named declarations: the least generous (RiskAccepted) wins.
    let two = named.replacen(
        "resolution: RiskAccepted\n",
        "resolution: RiskAccepted\n      resources: {names: [db]}\n",
        1,
    );
    let e = eval(&team_target(&two), &[with_resolution], &three_pods());
    assert_eq!(e.status.score, Some(6.0));
}

#[test]
fn missing_or_unsynced_kinds_make_the_action_unknown_and_the_target_degraded() {
    let ingress = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: ingress-tls}
spec:
  title: Ingress TLS
  category: Infrastructure
  maxScore: 5
  check:
    resources: [{apiGroup: networking.k8s.io, kind: Ingress}]
    validations: [{expression: "has(object.spec.tls)"}]
"#,
    );
    let pods: Vec<Arc<Resource>> = vec![pod("team-a", "web", true), pod("team-a", "db", false)]
        .into_iter()
        .map(|p| Arc::new(Resource::new(p, None).unwrap()))
        .collect();
    let mut kinds: HashMap<(String, String), KindStatus> =
        securescore::engine::check::POD_TEMPLATE_KINDS
            .iter()
            .map(|(g, k, _)| ((g.to_string(), k.to_string()), KindStatus::Synced))
            .collect();
    kinds.insert(
        ("networking.k8s.io".into(), "Ingress".into()),
        KindStatus::NotSynced,
    );
    let inv = securescore::engine::Inventory::with_kinds(pods.clone(), kinds.clone());
    let target = team_target("");
    let actions = [non_root_action("non-root", 9, "Proportional"), ingress];
    let e = evaluate(&TargetInput {
        target: &target,
        actions: &actions,
        inventory: &inv,
        now: ts(NOW),
        previous: None,
        wide_scope_allowed: false,
    });
    assert_eq!(e.outcome, Outcome::Degraded);
    let r = row(&e, "ingress-tls");
    assert_eq!(r.state, ActionState::Unknown);
    assert_eq!((r.score, r.max_score), (0.0, 5.0));
    assert_eq!(e.status.max_score, Some(14.0));
    assert_eq!(condition(&e, "Degraded").status, "True");
    assert_eq!(condition(&e, "Degraded").reason, "InventoryIncomplete");
    assert!(
        e.status.history.is_empty(),
        "a degraded evaluation records no history point"
    );
    let t = transitions(None, &e, Some(80));
    assert!(
        matches!(t.as_slice(), [Transition::Degraded { .. }]),
        "{t:?}"
    );
    // Once synced and empty, the action is NotApplicable.
    kinds.insert(
        ("networking.k8s.io".into(), "Ingress".into()),
        KindStatus::Synced,
    );
    let inv = securescore::engine::Inventory::with_kinds(pods, kinds);
    let e = evaluate(&TargetInput {
        target: &target,
        actions: &actions,
        inventory: &inv,
        now: ts(NOW),
        previous: None,
        wide_scope_allowed: false,
    });
    assert_eq!(e.outcome, Outcome::Evaluated);
    assert_eq!(row(&e, "ingress-tls").state, ActionState::NotApplicable);
    assert_eq!(e.status.history.len(), 1);
}

#[test]
fn history_keeps_one_point_per_utc_day_and_drops_the_oldest_past_the_limit() {
    let t = team_target("  historyLimit: 3\n");
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let inv = three_pods();
    let mut previous = None;
    for day in [
        "2026-11-20T08:00:00Z",
        "2026-11-20T20:00:00Z",
        "2026-11-21T01:00:00Z",
        "2026-11-23T10:00:00Z",
        "2026-11-24T10:00:00Z",
    ] {
        let e = eval_at(&t, &actions, &inv, day, previous.as_ref());
        previous = Some(e.status);
    }
    let dates: Vec<&str> = previous
        .as_ref()
        .unwrap()
        .history
        .iter()
        .map(|h| h.date.as_str())
        .collect();
    assert_eq!(
        dates,
        ["2026-11-21", "2026-11-23", "2026-11-24"],
        "one per day, missed days stay missing, oldest dropped"
    );
    let e = eval_at(
        &t,
        &actions,
        &inv,
        "2026-11-24T23:59:59Z",
        previous.as_ref(),
    );
    assert_eq!(e.status.history.len(), 3);
    assert_eq!(e.status.history.last().unwrap().date, "2026-11-24");
}

#[test]
fn changes_count_regressions_since_the_previous_day_but_never_a_catalog_change() {
    let t = team_target("");
    let v1 = [non_root_action("non-root", 9, "Proportional")];
    let good = inventory(vec![
        pod("team-a", "web", true),
        pod("team-a", "api", true),
        pod("team-a", "db", true),
    ]);
    let day1 = eval_at(&t, &v1, &good, "2026-11-26T10:00:00Z", None);
    assert!(day1.status.changes.is_none());
    // Next day, db regresses.
    let day2 = eval_at(
        &t,
        &v1,
        &three_pods(),
        "2026-11-27T10:00:00Z",
        Some(&day1.status),
    );
    let c = day2.status.changes.clone().unwrap();
    assert_eq!(c.since, "2026-11-26");
    assert_eq!((c.points_regressed, c.points_achieved), (3.0, 0.0));
    assert_eq!(c.regressed_actions, ["non-root"]);
    assert!(!c.catalog_changed);
    let t2 = transitions(Some(&day1.status), &day2, Some(80));
    assert!(
        t2.iter()
            .any(|t| matches!(t, Transition::Regressed { points, .. } if *points == 3.0)),
        "{t2:?}"
    );
    assert!(
        t2.iter()
            .any(|t| matches!(t, Transition::GoalMissed { .. })),
        "{t2:?}"
    );
    // Later the same day: the baseline stays, and the regression is not announced again.
    let later = eval_at(
        &t,
        &v1,
        &three_pods(),
        "2026-11-27T18:00:00Z",
        Some(&day2.status),
    );
    assert_eq!(later.status.changes.as_ref().unwrap().since, "2026-11-26");
    assert!(
        !transitions(Some(&day2.status), &later, Some(80))
            .iter()
            .any(|t| matches!(t, Transition::Regressed { .. }))
    );
    // A changed definition that scores lower is a catalog change, not a regression.
    let v2 = [non_root_action("non-root", 9, "Binary")];
    let changed = eval_at(
        &t,
        &v2,
        &three_pods(),
        "2026-11-27T10:00:00Z",
        Some(&day1.status),
    );
    let c = changed.status.changes.unwrap();
    assert!(c.catalog_changed);
    assert_eq!(c.points_regressed, 0.0);
}

#[test]
fn condition_transition_time_only_moves_on_change() {
    let t = team_target("");
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let first = eval_at(&t, &actions, &three_pods(), "2026-11-27T10:00:00Z", None);
    let second = eval_at(
        &t,
        &actions,
        &three_pods(),
        "2026-11-27T11:00:00Z",
        Some(&first.status),
    );
    assert_eq!(
        condition(&first, "GoalMet").last_transition_time,
        condition(&second, "GoalMet").last_transition_time
    );
    let fixed = inventory(vec![pod("team-a", "web", true)]);
    let third = eval_at(
        &t,
        &actions,
        &fixed,
        "2026-11-27T12:00:00Z",
        Some(&second.status),
    );
    assert_eq!(condition(&third, "GoalMet").status, "True");
    assert_eq!(
        condition(&third, "GoalMet").last_transition_time.0,
        ts("2026-11-27T12:00:00Z")
    );
}

#[test]
fn a_target_asking_for_other_namespaces_without_permission_is_refused() {
    let t = team_target("  scope: {namespaces: {names: [team-b]}}\n");
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let inv = three_pods();
    let e = evaluate(&TargetInput {
        target: &t,
        actions: &actions,
        inventory: &inv,
        now: ts(NOW),
        previous: None,
        wide_scope_allowed: false,
    });
    assert_eq!(e.outcome, Outcome::ScopeNotAllowed);
    assert_eq!(condition(&e, "Ready").reason, "ScopeNotAllowed");
    assert_eq!(e.status.score, None);
    assert!(e.status.actions.is_empty());
    assert!(matches!(
        transitions(None, &e, None).as_slice(),
        [Transition::ScopeRefused { .. }]
    ));
}

#[test]
fn scope_is_names_and_selector_minus_exclude() {
    let mut objects = vec![
        pod("team-a", "a", false),
        pod("team-b", "b", true),
        pod("team-c", "c", false),
        pod("other", "o", false),
    ];
    for (ns, tier) in [
        ("team-a", "x"),
        ("team-b", "gold"),
        ("team-c", "gold"),
        ("other", "x"),
    ] {
        objects.push(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"tier": tier}}}));
    }
    let t = team_target(
        "  scope: {namespaces: {names: [team-a], selector: {matchLabels: {tier: gold}}, exclude: [team-c]}}\n",
    );
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional")],
        &inventory(objects),
    );
    let r = row(&e, "non-root");
    assert_eq!(
        (r.applicable, r.compliant),
        (2, 1),
        "team-a and team-b only"
    );
}

#[test]
fn a_suspended_target_keeps_its_last_values() {
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let first = eval(&team_target(""), &actions, &three_pods());
    let e = eval_at(
        &team_target("  suspend: true\n"),
        &actions,
        &inventory(vec![]),
        NOW,
        Some(&first.status),
    );
    assert_eq!(e.outcome, Outcome::Suspended);
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(condition(&e, "Ready").reason, "Suspended");
    assert_eq!(condition(&e, "Ready").status, "False");
}

#[test]
fn mandatory_actions_cannot_be_excluded() {
    let mandatory = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: must, labels: {securescore.io/mandatory: "true"}}
spec:
  title: Mandatory
  category: Apps
  maxScore: 2
  check: {podSpec: true, validations: [{expression: "true"}]}
"#,
    );
    let t = team_target("  actions: {exclude: [must, non-root]}\n");
    let e = eval(
        &t,
        &[non_root_action("non-root", 9, "Proportional"), mandatory],
        &three_pods(),
    );
    assert_eq!(e.status.excluded_actions, ["non-root"]);
    assert_eq!(e.status.actions.len(), 1);
    assert_eq!(e.status.max_score, Some(2.0));
}

fn cel_action(check: &str) -> Arc<securescore::engine::CompiledAction> {
    action_yaml(&format!(
        "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\nmetadata: {{name: x}}\nspec:\n  title: X\n  category: Infrastructure\n  maxScore: 4\n  check:\n{check}"
    ))
}

#[test]
fn a_message_listing_map_keys_lists_them_in_key_order_every_time() {
    // The built-in ingress-nginx and AppArmor actions list annotation keys this way. CEL leaves
    // map order unspecified; a hash map's order changes with every map built, which made a
    // status message (and the "and N more" cut) change between evaluations of one object.
    let a = cel_action(
        r#"    resources: [{kind: ConfigMap}]
    variables:
      - {name: keys, expression: "object.data.filter(k, k.startsWith('x-')).map(k, k.substring(2))"}
    validations:
      - expression: "size(variables.keys) == 0"
        messageExpression: "variables.keys.join(', ') + ' / ' + object.data.map(k, k).join(',')"
"#,
    );
    let data: serde_json::Map<String, serde_json::Value> = ["x-e", "x-a", "q", "x-d", "x-b", "x-c"]
        .iter()
        .map(|k| (k.to_string(), serde_json::json!("v")))
        .collect();
    let objects = vec![serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "team-a"}, "data": data})];
    for _ in 0..10 {
        let e = eval(
            &team_target(""),
            std::slice::from_ref(&a),
            &inventory(objects.clone()),
        );
        assert_eq!(
            row(&e, "x").findings[0].message,
            "a, b, c, d, e / q,x-a,x-b,x-c,x-d,x-e"
        );
    }
}

#[test]
fn lookups_see_only_the_objects_own_namespace() {
    let a = cel_action(
        r#"    resources: [{kind: Namespace}]
    lookups: [{name: policies, apiGroup: networking.k8s.io, kind: NetworkPolicy}]
    validations:
      - expression: "lookups.policies.exists(p, p.spec.podSelector == {} && 'Ingress' in p.spec.policyTypes)"
        message: namespace has no default-deny ingress policy
"#,
    );
    let objects = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}),
        serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "team-a"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    ];
    let t = team_target("  scope: {namespaces: {names: [team-a, team-b]}}\n");
    let e = eval(&t, &[a], &inventory(objects));
    let r = row(&e, "x");
    assert_eq!((r.compliant, r.non_compliant), (1, 1));
    assert_eq!(r.findings[0].name, "team-b");
    assert_eq!(
        r.findings[0].message,
        "namespace has no default-deny ingress policy"
    );
}

#[test]
fn variables_match_conditions_and_namespace_object() {
    let a = cel_action(
        r#"    resources: [{kind: Service}]
    variables:
      - {name: type, expression: "has(object.spec.type) ? object.spec.type : 'ClusterIP'"}
      - {name: exposed, expression: "variables.type == 'NodePort' || variables.type == 'LoadBalancer'"}
    matchConditions:
      - {name: not-system, expression: "!('system' in namespaceObject.metadata.labels)"}
    validations:
      - expression: "!variables.exposed"
        messageExpression: "'service is exposed as ' + variables.type"
"#,
    );
    let svc = |name: &str, ns: &str, ty: &str| serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": {"type": ty}});
    let objects = vec![
        svc("a", "team-a", "NodePort"),
        svc("b", "team-a", "ClusterIP"),
        svc("c", "kube-system", "NodePort"),
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {}}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "labels": {"system": "true"}}}),
    ];
    let t = team_target("  scope: {namespaces: {selector: {}}}\n");
    let e = eval(&t, &[a], &inventory(objects));
    let r = row(&e, "x");
    assert_eq!(
        r.applicable, 2,
        "kube-system excluded by the match condition"
    );
    assert_eq!(r.findings[0].message, "service is exposed as NodePort");
}

#[test]
fn a_runtime_error_fails_closed_and_most_resources_failing_alike_is_reported() {
    let a = cel_action(
        "    podSpec: true\n    validations: [{expression: \"podSpec.nosuchfield == 1\"}]\n",
    );
    assert!(
        a.is_ready(),
        "no examples: the expression is valid, only the data lacks the field"
    );
    let e = eval(&team_target(""), &[a], &three_pods());
    let r = row(&e, "x");
    assert_eq!((r.errors, r.non_compliant, r.score), (3, 3, 0.0));
    assert!(
        r.findings[0].message.contains("no such key"),
        "{:?}",
        r.findings[0]
    );
    assert!(
        r.message
            .as_deref()
            .unwrap()
            .starts_with("EvaluationFailing")
    );
}

#[test]
fn examples_run_when_an_action_loads() {
    let ok = cel_action(
        r#"    podSpec: true
    validations: [{expression: "!has(podSpec.hostNetwork) || !podSpec.hostNetwork"}]
    examples:
      - {expect: Compliant, object: {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: []}}}
      - {expect: NonCompliant, object: {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {hostNetwork: true, containers: []}}}
      - {expect: NotApplicable, object: {apiVersion: v1, kind: Service, metadata: {name: a}}}
"#,
    );
    assert!(ok.is_ready(), "{:?}", ok.problem);
    let wrong = cel_action(
        r#"    podSpec: true
    validations: [{expression: "!has(podSpec.hostNetwork) || !podSpec.hostNetwork"}]
    examples:
      - {expect: Compliant, object: {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {hostNetwork: true, containers: []}}}
"#,
    );
    let p = wrong.problem.as_ref().unwrap();
    assert_eq!(p.reason.as_str(), "ExampleFailed");
    assert!(
        p.message
            .starts_with("spec.check.examples[0]: expected Compliant, got NonCompliant"),
        "{}",
        p.message
    );
    let deep = cel_action(
        "    podSpec: true\n    validations: [{expression: \"podSpec.containers.all(a, podSpec.containers.all(b, podSpec.containers.all(c, true)))\"}]\n",
    );
    assert_eq!(
        deep.problem.as_ref().unwrap().reason.as_str(),
        "LimitExceeded"
    );
}

#[test]
fn findings_are_the_first_ten_by_namespace_kind_name() {
    let objects: Vec<_> = (0..25)
        .rev()
        .map(|i| pod("team-a", &format!("p{i:02}"), false))
        .collect();
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional")],
        &inventory(objects),
    );
    let names: Vec<&str> = row(&e, "non-root")
        .findings
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09"
        ]
    );
}

#[test]
fn ranking_is_by_points_to_gain_then_impact_cost_and_name() {
    let a = non_root_action("b-nine", 9, "Proportional");
    let b = non_root_action("a-nine", 9, "Proportional");
    let c = non_root_action("big", 30, "Proportional");
    let e = eval(&team_target(""), &[a, b, c], &three_pods());
    let order: Vec<&str> = e.status.actions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["big", "a-nine", "b-nine"]);
}

#[test]
fn status_stays_under_256_kib() {
    let actions: Vec<_> = (0..300)
        .map(|i| {
            non_root_action(
                &format!("action-with-a-long-name-{i:03}"),
                5,
                "Proportional",
            )
        })
        .collect();
    let objects: Vec<_> = (0..40)
        .map(|i| {
            pod(
                "team-a",
                &format!("pod-with-a-rather-long-name-{i:03}"),
                i % 3 == 0,
            )
        })
        .collect();
    let e = eval(&team_target(""), &actions, &inventory(objects));
    let size = serde_json::to_vec(&e.status).unwrap().len();
    assert!(
        size <= securescore::engine::status::MAX_STATUS_BYTES,
        "{size}"
    );
    assert!(e.status.truncated);
    assert_eq!(
        e.status.score.unwrap(),
        300.0 * 5.0 * 14.0 / 40.0,
        "the numbers are not trimmed"
    );
}

#[test]
fn exemption_expiring_within_a_week_is_announced_once_and_expiry_announced() {
    let actions = [non_root_action("non-root", 9, "Proportional")];
    let t = team_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2026-12-01T00:00:00Z",
    ));
    let early = eval_at(&t, &actions, &three_pods(), "2026-11-20T00:00:00Z", None);
    assert!(
        !transitions(None, &early, Some(80))
            .iter()
            .any(|t| matches!(t, Transition::ExemptionExpiring { .. }))
    );
    let soon = eval_at(
        &t,
        &actions,
        &three_pods(),
        "2026-11-27T00:00:00Z",
        Some(&early.status),
    );
    let ts_soon = transitions(Some(&early.status), &soon, Some(80));
    assert!(
        ts_soon
            .iter()
            .any(|t| matches!(t, Transition::ExemptionExpiring { days_left: 4, .. })),
        "{ts_soon:?}"
    );
    let sooner = eval_at(
        &t,
        &actions,
        &three_pods(),
        "2026-11-28T00:00:00Z",
        Some(&soon.status),
    );
    assert!(
        !transitions(Some(&soon.status), &sooner, Some(80))
            .iter()
            .any(|t| matches!(t, Transition::ExemptionExpiring { .. }))
    );
    let after = eval_at(
        &t,
        &actions,
        &three_pods(),
        "2026-12-02T00:00:00Z",
        Some(&sooner.status),
    );
    assert!(
        transitions(Some(&sooner.status), &after, Some(80))
            .iter()
            .any(|t| matches!(t, Transition::ExemptionExpired { .. }))
    );
}

fn containers_action(
    name: &str,
    variable_expr: &str,
    validation: &str,
) -> Arc<securescore::engine::CompiledAction> {
    action_yaml(&format!(
        "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\nmetadata: {{name: {name}}}\nspec:\n  title: T\n  category: Apps\n  maxScore: 2\n  check:\n    podSpec: true\n    variables:\n      - {{name: allContainers, expression: \"{variable_expr}\"}}\n      - {{name: offenders, expression: \"variables.allContainers.filter(c, {validation})\"}}\n    validations:\n      - {{expression: \"size(variables.offenders) == 0\", messageExpression: \"'offenders: ' + variables.offenders.map(c, c.name).join(', ')\"}}\n"
    ))
}

#[test]
fn actions_sharing_a_variable_and_one_redefining_it_each_see_their_own() {
    let all = "podSpec.containers + (has(podSpec.initContainers) ? podSpec.initContainers : [])";
    let a = containers_action(
        "a-privileged",
        all,
        "has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged",
    );
    let b = containers_action("b-latest", all, "c.image.endsWith(':latest')");
    // Same variable name, different expression: only the init containers.
    let c = containers_action(
        "c-init-latest",
        "has(podSpec.initContainers) ? podSpec.initContainers : []",
        "c.image.endsWith(':latest')",
    );
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"containers": [{"name": "app", "image": "app:latest"}],
                 "initContainers": [{"name": "init", "image": "init:1", "securityContext": {"privileged": true}}]}
    });
    let e = eval(&team_target(""), &[a, b, c], &inventory(vec![pod]));
    assert_eq!(
        row(&e, "a-privileged").findings[0].message,
        "offenders: init"
    );
    assert_eq!(row(&e, "b-latest").findings[0].message, "offenders: app");
    assert_eq!(
        row(&e, "c-init-latest").state,
        ActionState::Completed,
        "its allContainers holds only init containers"
    );
}

#[test]
fn a_failing_shared_variable_is_an_error_in_every_action_using_it() {
    let broken = "podSpec.nosuchfield + podSpec.containers";
    let a = containers_action("a", broken, "true");
    let b = containers_action("b", broken, "true");
    let e = eval(&team_target(""), &[a, b], &three_pods());
    for name in ["a", "b"] {
        let r = row(&e, name);
        assert_eq!(r.errors, 3, "{r:?}");
        assert!(
            r.findings[0].message.contains("variable \"allContainers\""),
            "{:?}",
            r.findings[0]
        );
    }
}
