//! Hostile input against pod-template de-duplication and declared resolutions: forged owner
//! references, cross-namespace owners, and empty exemption filters that pretend to name
//! resources.

use crate::common::{eval, exemption, inventory, non_root_action, row, team_target, three_pods};
use securescore::api::ActionState;
use serde_json::{Value, json};

/// A hardened (runAsNonRoot) ReplicaSet `web-7d9` in `ns`, with a uid unless `uid` is None.
fn replica_set(ns: &str, uid: Option<&str>) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9", "namespace": ns, "uid": uid},
        "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    })
}

/// A Pod running as root in `ns` whose only controller reference is `reference`.
fn root_pod(ns: &str, name: &str, reference: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-pod-{ns}-{name}"),
            "ownerReferences": [reference]},
        "spec": {"securityContext": {"runAsNonRoot": false},
            "containers": [{"name": "c", "image": "nginx:1.27"}]}
    })
}

fn controller(api_version: &str, kind: &str, name: &str, uid: Option<&str>) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true})
}

/// (applicable, non-compliant, kinds/names of the findings) for the non-root action.
fn judged(objects: Vec<Value>, target_spec: &str) -> (u64, u64, Vec<String>) {
    let e = eval(
        &team_target(target_spec),
        &[non_root_action("non-root", 9, "Proportional")],
        &inventory(objects),
    );
    let r = row(&e, "non-root");
    let findings = r
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} {}/{}",
                f.kind,
                f.namespace.as_deref().unwrap_or(""),
                f.name
            )
        })
        .collect();
    (r.applicable, r.non_compliant, findings)
}

#[test]
fn an_honest_owner_counts_its_pods_once() {
    // The baseline the forgeries below are measured against: the pod is skipped.
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-a",
            "web-7d9-x",
            controller("apps/v1", "ReplicaSet", "web-7d9", Some("uid-rs")),
        ),
    ];
    assert_eq!(judged(objects, ""), (1, 0, vec![]));
}

#[test]
fn an_owner_reference_carrying_a_hardened_owners_uid_under_another_name_is_judged_itself() {
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-a",
            "evil",
            controller("apps/v1", "ReplicaSet", "not-web", Some("uid-rs")),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

#[test]
fn an_owner_reference_with_the_right_name_and_a_wrong_uid_is_judged_itself() {
    // The garbage collector treats a uid mismatch as an absent owner.
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-a",
            "evil",
            controller("apps/v1", "ReplicaSet", "web-7d9", Some("uid-forged")),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

#[test]
fn an_owner_in_another_namespace_is_not_an_owner() {
    // Same name, kind and uid, but the owner lives in team-a and the pod in team-b: Kubernetes
    // looks namespaced owners up in the dependent's namespace only.
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-b",
            "evil",
            controller("apps/v1", "ReplicaSet", "web-7d9", Some("uid-rs")),
        ),
    ];
    let both = "  scope: {namespaces: {names: [team-a, team-b]}}\n";
    assert_eq!(
        judged(objects, both),
        (2, 1, vec!["Pod team-b/evil".to_string()])
    );
}

#[test]
fn an_owner_reference_of_another_api_group_is_not_an_owner() {
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-a",
            "evil",
            controller(
                "extensions/v1beta1",
                "ReplicaSet",
                "web-7d9",
                Some("uid-rs"),
            ),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

#[test]
fn a_pod_naming_a_deployment_as_its_controller_is_judged_itself() {
    // No Kubernetes controller creates a Pod from a Deployment's template directly: the pod's
    // spec is whatever its author wrote, even with the Deployment's exact uid.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", "uid": "uid-deploy"},
        "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    });
    let objects = vec![
        deployment,
        root_pod(
            "team-a",
            "evil",
            controller("apps/v1", "Deployment", "web", Some("uid-deploy")),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

#[test]
fn a_second_controller_reference_makes_neither_believed() {
    // The API server accepts at most one controller reference.
    let mut pod = root_pod(
        "team-a",
        "evil",
        controller("apps/v1", "ReplicaSet", "web-7d9", Some("uid-rs")),
    );
    pod["metadata"]["ownerReferences"]
        .as_array_mut()
        .expect("references")
        .push(controller("batch/v1", "Job", "other", Some("uid-job")));
    let objects = vec![replica_set("team-a", Some("uid-rs")), pod];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

#[test]
fn manifests_without_uids_are_de_duplicated_by_namespace_kind_and_name() {
    // Manifests in Git carry no uids: a Deployment, its ReplicaSet and its pods written in one
    // file count once, through the Deployment.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"template": {"spec": {"securityContext": {"runAsNonRoot": false},
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    });
    let mut rs = replica_set("team-a", None);
    rs["metadata"]["ownerReferences"] = json!([controller("apps/v1", "Deployment", "web", None)]);
    let objects = vec![
        deployment,
        rs,
        root_pod(
            "team-a",
            "web-7d9-a",
            controller("apps/v1", "ReplicaSet", "web-7d9", None),
        ),
        root_pod(
            "team-a",
            "web-7d9-b",
            controller("apps/v1", "ReplicaSet", "web-7d9", None),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (1, 1, vec!["Deployment team-a/web".to_string()])
    );
}

#[test]
fn a_uid_on_one_side_only_cannot_be_checked_and_does_not_match() {
    let objects = vec![
        replica_set("team-a", None),
        root_pod(
            "team-a",
            "evil",
            controller("apps/v1", "ReplicaSet", "web-7d9", Some("uid-anything")),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
    let objects = vec![
        replica_set("team-a", Some("uid-rs")),
        root_pod(
            "team-a",
            "evil",
            controller("apps/v1", "ReplicaSet", "web-7d9", None),
        ),
    ];
    assert_eq!(
        judged(objects, ""),
        (2, 1, vec!["Pod team-a/evil".to_string()])
    );
}

/// An exemption for `non-root` with the given `resources:` line (None: absent).
fn exemption_with(name: &str, resolution: &str, resources: Option<&str>) -> String {
    let resources = resources
        .map(|r| format!("\n      resources: {r}"))
        .unwrap_or_default();
    format!(
        "    - name: {name}\n      action: non-root\n      resolution: {resolution}{resources}\n      owner: team-a\n      reason: vendor image\n      approvedAt: \"2026-11-01T00:00:00Z\"\n      expiresAt: \"2027-01-01T00:00:00Z\"\n"
    )
}

fn db_resolution(exemptions: &[String]) -> (ActionState, f64, u64) {
    let spec = format!("  exemptions:\n{}", exemptions.concat());
    let e = eval(
        &team_target(&spec),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    let r = row(&e, "non-root");
    (r.state, r.score, r.exempt)
}

#[test]
fn an_empty_resource_filter_does_not_outrank_a_whole_action_exemption() {
    // Both cover the whole action, so they are equals and the least generous wins: the
    // RiskAccepted one, which never raises the score (6 of 9 measured).
    for empty in ["{}", "{namespaces: [], names: []}", "{selector: {}}"] {
        let got = db_resolution(&[
            exemption_with("whole", "RiskAccepted", None),
            exemption_with("empty", "ResolvedThirdParty", Some(empty)),
        ]);
        assert_eq!(
            got,
            (ActionState::RiskAccepted, 6.0, 1),
            "resources: {empty}"
        );
    }
}

#[test]
fn a_resource_filter_naming_something_still_outranks_a_whole_action_exemption() {
    let got = db_resolution(&[
        exemption_with("whole", "RiskAccepted", None),
        exemption_with("named", "ResolvedThirdParty", Some("{names: [db]}")),
    ]);
    assert_eq!(got, (ActionState::ResolvedThirdParty, 9.0, 1));
    // The shared builder's whole-action form agrees.
    let whole = exemption("ResolvedThirdParty", None, "2027-01-01T00:00:00Z");
    let e = eval(
        &team_target(&whole),
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    assert_eq!(row(&e, "non-root").score, 9.0);
}
