//! Security tasks (attestations), hand-computed: a task is worth its points while the latest
//! valid attestation is younger than `every` (due soon in its last 14 days), nothing when it is
//! missing or stale; exemptions apply as for any action; what a CRD rule cannot check (the
//! clock, other objects) is enforced by the engine, naming spec.attestations[i] and the action.
//!
//! Every test runs at NOW = 2026-11-27T12:00:00Z with a 9-point CEL action (`non-root`, 2 of 3
//! pods compliant: 6 points) and an 8-point task (`restore-test`, every 90d).

mod common;
use common::*;
use securescore::api::{
    ActionState, AttestationState, ExemptionState, ImprovementAction, SecureScoreTarget, TaskState,
};
use securescore::engine::attestations;
use securescore::engine::transitions::{Transition, transitions};
use securescore::engine::{CompiledAction, Verdict};
use securescore::metrics::{ActionSeries, Metrics, TargetSeries};
use std::sync::Arc;

const TASK: &str = "restore-test";

fn task_yaml(name: &str, points: u32, every: &str, preview: bool) -> String {
    format!(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {{name: {name}}}
spec:
  title: Restore a backup
  category: Data
  maxScore: {points}
  preview: {preview}
  check:
    scoring: Binary
    attestation: {{every: {every}}}
"#
    )
}

fn task(points: u32) -> Arc<CompiledAction> {
    action_yaml(&task_yaml(TASK, points, "90d", false))
}

fn actions() -> Vec<Arc<CompiledAction>> {
    vec![non_root_action("non-root", 9, "Proportional"), task(8)]
}

/// `(action, attestedAt)` pairs as YAML under `spec.attestations`.
fn attested(entries: &[(&str, &str)]) -> String {
    let mut out = String::from("  attestations:\n");
    for (i, (action, at)) in entries.iter().enumerate() {
        out.push_str(&format!(
            "    - action: {action}\n      attestedBy: sre-{i}\n      attestedAt: \"{at}\"\n      evidence: https://wiki.example.com/restore/{i}\n"
        ));
    }
    out
}

fn run(spec: &str) -> securescore::engine::TargetEvaluation {
    eval(&team_target(spec), &actions(), &three_pods())
}

#[test]
fn a_fresh_attestation_earns_the_task_all_its_points() {
    // Attested 2026-10-01: due 2026-12-30 (90 days later), 32.5 days after NOW: fresh.
    let e = run(&attested(&[(TASK, "2026-10-01T00:00:00Z")]));
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::Completed);
    assert_eq!((r.score, r.max_score, r.points_to_gain), (8.0, 8.0, 0.0));
    assert_eq!((r.applicable, r.compliant, r.non_compliant), (1, 1, 0));
    let t = r
        .attestation
        .as_ref()
        .expect("a task row has its attestation");
    assert_eq!(t.state, TaskState::Fresh);
    assert_eq!(t.attested_at.as_deref(), Some("2026-10-01T00:00:00Z"));
    assert_eq!(t.attested_by.as_deref(), Some("sre-0"));
    assert_eq!(
        t.evidence.as_deref(),
        Some("https://wiki.example.com/restore/0")
    );
    assert_eq!(t.due_at.as_deref(), Some("2026-12-30T00:00:00Z"));
    assert_eq!(t.every, "90d");
    // Target: 6 (non-root) + 8 (task) of 9 + 8.
    assert_eq!(e.status.score, Some(14.0));
    assert_eq!(e.status.max_score, Some(17.0));
    assert_eq!(e.status.percentage, Some(82.35));
    assert_eq!(e.status.attestations[0].state, AttestationState::Current);
}

#[test]
fn a_task_due_within_fourteen_days_is_due_soon_and_keeps_its_points() {
    // Attested 2026-09-10: due 2026-12-09T00:00Z, 11.5 days after NOW.
    let e = run(&attested(&[(TASK, "2026-09-10T00:00:00Z")]));
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::Completed);
    assert_eq!(r.score, 8.0);
    let t = r.attestation.as_ref().unwrap();
    assert_eq!(t.state, TaskState::DueSoon);
    assert_eq!(t.due_at.as_deref(), Some("2026-12-09T00:00:00Z"));
    assert_eq!(e.status.score, Some(14.0));
    // Exactly 14 days before the due time is due soon; a second earlier is not.
    let at_edge = eval_at(
        &team_target(&attested(&[(TASK, "2026-09-10T00:00:00Z")])),
        &actions(),
        &three_pods(),
        "2026-11-25T00:00:00Z",
        None,
    );
    let before = eval_at(
        &team_target(&attested(&[(TASK, "2026-09-10T00:00:00Z")])),
        &actions(),
        &three_pods(),
        "2026-11-24T23:59:59Z",
        None,
    );
    let state = |e: &securescore::engine::TargetEvaluation| {
        row(e, TASK).attestation.as_ref().unwrap().state
    };
    assert_eq!(state(&at_edge), TaskState::DueSoon);
    assert_eq!(state(&before), TaskState::Fresh);
}

#[test]
fn a_stale_attestation_is_to_address_with_no_points() {
    // Attested 2026-08-01: due 2026-10-30, four weeks before NOW.
    let e = run(&attested(&[(TASK, "2026-08-01T00:00:00Z")]));
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::ToAddress);
    assert_eq!((r.score, r.max_score, r.points_to_gain), (0.0, 8.0, 8.0));
    assert_eq!((r.applicable, r.compliant, r.non_compliant), (1, 0, 1));
    assert_eq!(
        r.attestation.as_ref().unwrap().state,
        TaskState::Stale,
        "stale, not missing: it was attested"
    );
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        (f.kind.as_str(), f.namespace.as_deref(), f.name.as_str()),
        ("SecureScoreTarget", Some("team-a"), "team-a"),
        "the finding is on the target itself"
    );
    assert_eq!(
        f.message,
        "last attested at 2026-08-01T00:00:00Z by sre-0 (spec.attestations[0]): stale since 2026-10-30T00:00:00Z; attest it again every 90d"
    );
    // Exactly at the due time it is stale (fresh means attestedAt + every > now).
    let at_due = eval_at(
        &team_target(&attested(&[(TASK, "2026-08-01T00:00:00Z")])),
        &actions(),
        &three_pods(),
        "2026-10-30T00:00:00Z",
        None,
    );
    assert_eq!(row(&at_due, TASK).state, ActionState::ToAddress);
    // Target: 6 of 17; the task's 8 points are to address.
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.max_score, Some(17.0));
    assert_eq!(e.status.percentage, Some(35.29));
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!((b.achieved, b.to_address), (6.0, 11.0));
}

#[test]
fn a_missing_attestation_is_to_address_and_says_never_attested() {
    let e = run("");
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::ToAddress);
    assert_eq!((r.score, r.points_to_gain), (0.0, 8.0));
    let t = r.attestation.as_ref().unwrap();
    assert_eq!(t.state, TaskState::Missing);
    assert_eq!(
        (t.attested_at.as_deref(), t.due_at.as_deref()),
        (None, None)
    );
    assert_eq!(
        r.findings[0].message,
        "never attested: declare it in spec.attestations once done, and again every 90d"
    );
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.max_score, Some(17.0));
}

#[test]
fn the_latest_valid_attestation_counts_whatever_the_order() {
    let e = run(&attested(&[
        (TASK, "2026-10-01T00:00:00Z"),
        (TASK, "2026-06-01T00:00:00Z"),
    ]));
    let t = row(&e, TASK).attestation.clone().unwrap();
    assert_eq!(t.state, TaskState::Fresh);
    assert_eq!(t.index, Some(0));
    let states: Vec<_> = e.status.attestations.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [AttestationState::Current, AttestationState::Superseded]
    );
}

#[test]
fn risk_accepted_keeps_a_stale_task_at_zero_and_not_to_address() {
    let spec = format!(
        "{}  exemptions:\n    - name: no-restore-env\n      action: {TASK}\n      resolution: RiskAccepted\n      owner: sre\n      reason: no scratch cluster this quarter\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n",
        attested(&[(TASK, "2026-08-01T00:00:00Z")])
    );
    let e = run(&spec);
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::RiskAccepted);
    assert_eq!((r.score, r.points_to_gain, r.exempt), (0.0, 0.0, 1));
    assert!(r.findings.is_empty(), "accepted: not listed to address");
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!(
        (b.accepted, b.to_address, b.achievable_score),
        (8.0, 3.0, 9.0)
    );
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Active);
    assert_eq!(e.status.exemptions[0].covered, 1);
}

#[test]
fn resolved_third_party_gives_a_missing_task_its_points_flagged_unverified() {
    let spec = "  exemptions:\n    - name: vendor-backups\n      action: restore-test\n      resolution: ResolvedThirdParty\n      owner: sre\n      reason: the managed service tests restores\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n";
    let e = run(spec);
    let r = row(&e, TASK);
    assert_eq!(r.state, ActionState::ResolvedThirdParty);
    assert_eq!((r.score, r.points_to_gain), (8.0, 0.0));
    assert!(r.unverified);
    assert_eq!(r.attestation.as_ref().unwrap().state, TaskState::Missing);
    let b = e.status.breakdown.as_ref().unwrap();
    assert_eq!((b.achieved, b.mitigated), (6.0, 8.0));
    assert_eq!(e.status.score, Some(14.0));
}

#[test]
fn an_exemption_never_touches_a_fresh_task() {
    // A compliant resource stays Compliant whatever is declared.
    let spec = format!(
        "{}  exemptions:\n    - name: accepted\n      action: {TASK}\n      resolution: RiskAccepted\n      owner: sre\n      reason: r\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n",
        attested(&[(TASK, "2026-10-01T00:00:00Z")])
    );
    let e = run(&spec);
    assert_eq!(row(&e, TASK).state, ActionState::Completed);
    assert_eq!(row(&e, TASK).score, 8.0);
    assert_eq!(e.status.exemptions[0].state, ExemptionState::Unused);
}

#[test]
fn an_attestation_in_the_future_is_invalid_and_ignored() {
    let e = run(&attested(&[
        (TASK, "2026-12-01T00:00:00Z"),
        (TASK, "2026-08-01T00:00:00Z"),
    ]));
    let a = &e.status.attestations[0];
    assert_eq!(a.state, AttestationState::Invalid);
    assert_eq!(
        a.message.as_deref(),
        Some(
            "spec.attestations[0].attestedAt: 2026-12-01T00:00:00Z is in the future (action \"restore-test\"): attest a task once it is done"
        )
    );
    assert_eq!(e.status.attestations[1].state, AttestationState::Current);
    // The stale one at index 1 is what counts: no points.
    let r = row(&e, TASK);
    assert_eq!(r.attestation.as_ref().unwrap().state, TaskState::Stale);
    assert_eq!(r.score, 0.0);
}

#[test]
fn an_attestation_of_a_check_or_an_unknown_action_is_invalid_and_harms_nothing_else() {
    let e = run(&attested(&[
        ("non-root", "2026-11-01T00:00:00Z"),
        ("no-such-action", "2026-11-01T00:00:00Z"),
        (TASK, "2026-10-01T00:00:00Z"),
    ]));
    let messages: Vec<_> = e
        .status
        .attestations
        .iter()
        .map(|a| (a.state, a.message.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        messages,
        [
            (
                AttestationState::Invalid,
                "spec.attestations[0].action: \"non-root\" is not a task (its check has no attestation): only tasks are attested".to_string()
            ),
            (
                AttestationState::Invalid,
                "spec.attestations[1].action: \"no-such-action\" is not an ImprovementAction this target evaluates".to_string()
            ),
            (AttestationState::Current, String::new()),
        ]
    );
    // non-root is judged on its pods as before (2 of 3), the task is fresh.
    assert_eq!(row(&e, "non-root").score, 6.0);
    assert_eq!(row(&e, "non-root").state, ActionState::ToAddress);
    assert_eq!(row(&e, TASK).score, 8.0);
    assert_eq!(e.status.score, Some(14.0));
}

#[test]
fn an_excluded_task_cannot_be_attested() {
    let spec = format!(
        "  actions: {{exclude: [{TASK}]}}\n{}",
        attested(&[(TASK, "2026-10-01T00:00:00Z")])
    );
    let e = run(&spec);
    assert!(e.status.actions.iter().all(|a| a.name != TASK));
    assert_eq!(e.status.attestations[0].state, AttestationState::Invalid);
    assert_eq!(e.status.max_score, Some(9.0));
}

#[test]
fn a_preview_task_is_reported_but_never_scored() {
    let preview = action_yaml(&task_yaml("drill", 5, "30d", true));
    let e = eval(
        &team_target(&attested(&[("drill", "2026-11-20T00:00:00Z")])),
        &[non_root_action("non-root", 9, "Proportional"), preview],
        &three_pods(),
    );
    let r = row(&e, "drill");
    assert!(r.preview);
    assert_eq!(r.state, ActionState::Completed);
    assert_eq!(r.score, 5.0);
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.max_score, Some(9.0));
}

#[test]
fn binary_points_add_up_over_several_tasks() {
    // Three tasks worth 2, 3 and 5: the first fresh, the second stale, the third missing.
    let t = |name: &str, points| action_yaml(&task_yaml(name, points, "30d", false));
    let e = eval(
        &team_target(&attested(&[
            ("t2", "2026-11-20T00:00:00Z"),
            ("t3", "2026-10-01T00:00:00Z"),
        ])),
        &[t("t2", 2), t("t3", 3), t("t5", 5)],
        &three_pods(),
    );
    assert_eq!(
        [
            row(&e, "t2").score,
            row(&e, "t3").score,
            row(&e, "t5").score
        ],
        [2.0, 0.0, 0.0]
    );
    assert_eq!(e.status.score, Some(2.0));
    assert_eq!(e.status.max_score, Some(10.0));
    assert_eq!(e.status.percentage, Some(20.0));
    // Ranked by points to gain: t5 (5), t3 (3), then the completed t2.
    let names: Vec<_> = e.status.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["t5", "t3", "t2"]);
}

#[test]
fn a_task_that_is_not_well_formed_does_not_load_and_is_unknown() {
    let with_cel = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: mixed}
spec:
  title: Mixed
  category: Data
  maxScore: 4
  check:
    resources: [{kind: Pod}]
    attestation: {every: 30d}
"#,
    );
    let p = with_cel.problem.as_ref().expect("not Ready");
    assert_eq!(
        p.message,
        "spec.check.resources: a task (spec.check.attestation) applies to the target itself and has no resources"
    );
    let zero = action_yaml(&task_yaml("zero", 4, "0d", false));
    assert_eq!(
        zero.problem.as_ref().map(|p| p.message.as_str()),
        Some("spec.check.attestation.every: must be longer than zero")
    );
    let e = eval(&team_target(""), &[with_cel], &three_pods());
    let r = row(&e, "mixed");
    assert_eq!(r.state, ActionState::Unknown);
    assert_eq!((r.score, r.max_score), (0.0, 4.0));
}

#[test]
fn the_crd_rules_reject_what_the_server_can_check() {
    let action = |check: &str| -> ImprovementAction {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\nmetadata: {{name: a}}\nspec:\n  title: T\n  category: Data\n  maxScore: 3\n  check: {check}\n"
        ))
        .expect("parses")
    };
    let messages = |a: &ImprovementAction| -> Vec<String> {
        a.validate_cel()
            .err()
            .map(|e| e.as_slice().iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    };
    assert!(messages(&action("{attestation: {every: 90d}}")).is_empty());
    let both = messages(&action(
        "{attestation: {every: 90d}, validations: [{expression: 'true'}]}",
    ));
    assert!(
        both.iter()
            .any(|m| m.contains("exactly one of validations (CEL) or attestation")),
        "{both:?}"
    );
    let neither = messages(&action("{podSpec: true}"));
    assert!(
        neither
            .iter()
            .any(|m| m.contains("exactly one of validations (CEL) or attestation")),
        "{neither:?}"
    );
    let with_resources = messages(&action(
        "{attestation: {every: 90d}, resources: [{kind: Pod}]}",
    ));
    assert!(
        with_resources
            .iter()
            .any(|m| m.contains("a task (attestation) applies to the target itself")),
        "{with_resources:?}"
    );

    let target = |evidence: &str| -> SecureScoreTarget {
        target_yaml(&format!(
            "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {{name: t, namespace: n}}\nspec:\n  attestations:\n    - {{action: {TASK}, attestedBy: sre, attestedAt: \"2026-10-01T00:00:00Z\", evidence: \"{evidence}\"}}\n"
        ))
    };
    assert!(target("https://wiki/1").validate_cel().is_ok());
    let blank = target("   ")
        .validate_cel()
        .err()
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    assert!(blank.contains("an attestation needs evidence"), "{blank}");
    // The schema (scan's offline check) requires evidence and a date-time attestedAt.
    let v = serde_json::json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
        "metadata": {"name": "t", "namespace": "n"},
        "spec": {"attestations": [{"action": TASK, "attestedBy": "sre", "attestedAt": "last tuesday"}]}});
    let violations: Vec<String> = securescore::api::schema::validate("SecureScoreTarget", &v)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        violations
            .iter()
            .any(|m| m.starts_with("spec.attestations[0].attestedAt:")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|m| m == "spec.attestations[0].evidence: Required value"),
        "{violations:?}"
    );
}

#[test]
fn due_soon_and_stale_are_announced_once_per_transition() {
    // Attested 2026-09-10: due 2026-12-09. Fresh on 11-20, due soon from 11-25, stale from 12-09.
    let target = team_target(&attested(&[(TASK, "2026-09-10T00:00:00Z")]));
    let at = |now: &str, prev: Option<&securescore::api::SecureScoreTargetStatus>| {
        eval_at(&target, &actions(), &three_pods(), now, prev)
    };
    let task_events =
        |e: &securescore::engine::TargetEvaluation,
         prev: Option<&securescore::api::SecureScoreTargetStatus>| {
            transitions(prev, e, None)
                .into_iter()
                .filter(|t| t.reason().starts_with("Attestation"))
                .collect::<Vec<_>>()
        };
    let fresh = at("2026-11-20T00:00:00Z", None);
    assert!(task_events(&fresh, None).is_empty());
    let soon = at("2026-11-26T00:00:00Z", Some(&fresh.status));
    let events = task_events(&soon, Some(&fresh.status));
    assert_eq!(
        events,
        [Transition::AttestationDueSoon {
            action: TASK.into(),
            due_at: "2026-12-09T00:00:00Z".into()
        }]
    );
    assert!(events[0].is_warning());
    assert_eq!(events[0].reason(), "AttestationDueSoon");
    assert_eq!(
        events[0].message(),
        "task restore-test is due at 2026-12-09T00:00:00Z: attest it again in spec.attestations before then"
    );
    // Still due soon a day later: no second Event.
    let later = at("2026-11-27T00:00:00Z", Some(&soon.status));
    assert!(task_events(&later, Some(&soon.status)).is_empty());
    let stale = at("2026-12-09T00:00:00Z", Some(&later.status));
    assert_eq!(
        task_events(&stale, Some(&later.status)),
        [Transition::AttestationStale {
            action: TASK.into(),
            due_at: "2026-12-09T00:00:00Z".into()
        }]
    );
    let still = at("2026-12-10T00:00:00Z", Some(&stale.status));
    assert!(task_events(&still, Some(&stale.status)).is_empty());
    // A task that was never attested announces nothing.
    let never = eval(&team_target(""), &actions(), &three_pods());
    assert!(task_events(&never, Some(&fresh.status)).is_empty());
}

#[test]
fn the_next_change_is_when_a_task_becomes_due_soon_then_stale() {
    let due_at = |now: &str| {
        let e = eval_at(
            &team_target(&attested(&[(TASK, "2026-09-10T00:00:00Z")])),
            &actions(),
            &three_pods(),
            now,
            None,
        );
        let facts = e
            .actions
            .iter()
            .find(|o| o.action.name == TASK)
            .and_then(|o| o.attestation.clone())
            .expect("task facts");
        facts.next_change(ts(now)).map(|t| t.to_string())
    };
    assert_eq!(
        due_at("2026-11-01T00:00:00Z").as_deref(),
        Some("2026-11-25T00:00:00Z")
    );
    assert_eq!(
        due_at("2026-11-26T00:00:00Z").as_deref(),
        Some("2026-12-09T00:00:00Z")
    );
    assert_eq!(due_at("2026-12-10T00:00:00Z"), None);
}

#[test]
fn the_due_metric_is_the_unix_time_the_task_goes_stale() {
    let e = run(&attested(&[(TASK, "2026-10-01T00:00:00Z")]));
    let text = Metrics::new().render(
        true,
        &[TargetSeries {
            namespace: "team-a",
            name: "team-a",
            evaluation: &e,
            goal: Some(80),
            interval_seconds: 300.0,
            evaluated_at: ts(NOW),
        }],
        ActionSeries::None,
    );
    // 2026-12-30T00:00:00Z = 1798588800; exported even with --metrics-actions=none.
    let line = text
        .lines()
        .find(|l| l.starts_with("securescore_attestation_due_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no due series in\n{text}"));
    assert_eq!(
        line,
        "securescore_attestation_due_timestamp_seconds{action=\"restore-test\",namespace=\"team-a\",target=\"team-a\"} 1798588800"
    );
    assert_eq!(ts("2026-12-30T00:00:00Z").as_second(), 1_798_588_800);
    // Never attested: no series (the action's state says ToAddress).
    let never = run("");
    let text = Metrics::new().render(
        true,
        &[TargetSeries {
            namespace: "team-a",
            name: "team-a",
            evaluation: &never,
            goal: None,
            interval_seconds: 300.0,
            evaluated_at: ts(NOW),
        }],
        ActionSeries::All,
    );
    assert!(!text.contains("securescore_attestation_due_timestamp_seconds{"));
}

#[test]
fn the_task_verdict_is_on_the_target_resource_with_its_labels() {
    let mut target = team_target(&attested(&[(TASK, "2026-10-01T00:00:00Z")]));
    target.metadata.labels = Some([("team".to_string(), "shop".to_string())].into());
    let assessment = attestations::assess(&target, actions().iter().map(|a| a.as_ref()), ts(NOW));
    let (facts, judged) = attestations::judge(&task(8), &target, &assessment, ts(NOW)).unwrap();
    assert_eq!(facts.state, TaskState::Fresh);
    assert_eq!(judged.len(), 1);
    let (r, v) = &judged[0];
    assert_eq!(
        (r.kind.as_str(), r.group.as_str()),
        ("SecureScoreTarget", "securescore.io")
    );
    assert_eq!(r.labels.get("team").map(String::as_str), Some("shop"));
    assert_eq!(*v, Verdict::Compliant);
    assert!(attestations::judge(&actions()[0], &target, &assessment, ts(NOW)).is_none());
}

#[test]
fn an_object_with_the_targets_identity_does_not_move_a_task_incrementally() {
    use securescore::engine::Resource;
    use securescore::engine::incremental::Incremental;
    let target = team_target(&attested(&[(TASK, "2026-10-01T00:00:00Z")]));
    let mut inc = Incremental::new(target.clone(), actions(), three_pods(), ts(NOW), true);
    // An object that happens to share the task resource's identity (group, kind, namespace,
    // name), as a custom action reading SecureScoreTargets would bring into the inventory.
    let same = serde_json::json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
        "metadata": {"name": "team-a", "namespace": "team-a"}});
    inc.upsert(Arc::new(Resource::new(same, None).unwrap()));
    let e = inc.evaluation();
    let r = row(&e, TASK);
    assert_eq!(
        (r.state, r.applicable, r.score),
        (ActionState::Completed, 1, 8.0)
    );
    let full = eval(&target, &actions(), inc.inventory());
    assert_eq!(
        serde_json::to_value(&e.status).unwrap(),
        serde_json::to_value(&full.status).unwrap()
    );
}
