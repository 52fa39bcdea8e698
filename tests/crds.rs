//! The committed CRD YAML is generated from the Rust types; these tests fail when it drifts
//! and pin the admission rules the schema carries.

use securescore::api::{ImprovementAction, SecureScoreTarget};

const COMMITTED: &str = include_str!("../crds/securescore.io_crds.yaml");

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = securescore::api::crds_yaml();
    assert!(
        generated == COMMITTED,
        "crds/securescore.io_crds.yaml is stale: run `cargo run -- crds > crds/securescore.io_crds.yaml`"
    );
}

#[test]
fn every_array_and_string_is_bounded() {
    fn walk(path: &str, v: &serde_json::Value, problems: &mut Vec<String>) {
        let Some(obj) = v.as_object() else { return };
        match obj.get("type").and_then(|t| t.as_str()) {
            Some("array") if !obj.contains_key("maxItems") => {
                problems.push(format!("{path}: array without maxItems"))
            }
            Some("string")
                if !obj.contains_key("maxLength")
                    && !obj.contains_key("enum")
                    && obj.get("format").and_then(|f| f.as_str()) != Some("date-time") =>
            {
                problems.push(format!("{path}: string without maxLength"))
            }
            _ => {}
        }
        if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
            for (k, sub) in props {
                walk(&format!("{path}.{k}"), sub, problems);
            }
        }
        if let Some(items) = obj.get("items") {
            walk(&format!("{path}[]"), items, problems);
        }
    }
    let mut problems = Vec::new();
    for crd in securescore::api::crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        walk(
            &crd.metadata.name.clone().unwrap(),
            &schema["openAPIV3Schema"],
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn names_scopes_and_subresources() {
    let crds = securescore::api::crds();
    let ia = &crds[0];
    assert_eq!(ia.spec.scope, "Cluster");
    assert_eq!(
        ia.spec.names.short_names.as_deref(),
        Some(&["ia".to_string()][..])
    );
    let sst = &crds[1];
    assert_eq!(sst.spec.scope, "Namespaced");
    assert_eq!(
        sst.spec.names.short_names.as_deref(),
        Some(&["sst".to_string()][..])
    );
    for crd in &crds {
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
    }
    let cols: Vec<_> = sst.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Score", "Max", "Percent", "Goal", "Zone", "Age"]);
    let cols: Vec<_> = ia.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Category", "Max", "Ready", "Resolution", "Age"]);
}

fn target(exemption: serde_json::Value, goal: i64) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1",
        "kind": "SecureScoreTarget",
        "metadata": {"name": "team-a", "namespace": "team-a"},
        "spec": {"goal": goal, "exemptions": [exemption]}
    })
}

fn validate_target(v: serde_json::Value) -> Result<(), String> {
    let t: SecureScoreTarget = serde_json::from_value(v).map_err(|e| e.to_string())?;
    t.validate_cel().map_err(|e| format!("{e:?}"))
}

fn good_exemption() -> serde_json::Value {
    serde_json::json!({
        "name": "legacy-db", "action": "run-as-non-root", "resolution": "RiskAccepted",
        "owner": "team-a", "reason": "vendor image", "approvedAt": "2026-01-01T00:00:00Z",
        "expiresAt": "2026-06-01T00:00:00Z"
    })
}

#[test]
fn admission_accepts_a_complete_exemption() {
    validate_target(target(good_exemption(), 80)).unwrap();
}

#[test]
fn admission_rejects_an_exemption_without_owner_or_reason() {
    for field in ["owner", "reason", "approvedAt"] {
        let mut e = good_exemption();
        e.as_object_mut().unwrap().remove(field);
        let err = validate_target(target(e, 80)).unwrap_err();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn admission_requires_expiry_unless_declared_open_ended() {
    let mut e = good_exemption();
    e.as_object_mut().unwrap().remove("expiresAt");
    let err = validate_target(target(e.clone(), 80)).unwrap_err();
    assert!(err.contains("expiresAt"), "{err}");
    e["openEnded"] = true.into();
    validate_target(target(e, 80)).unwrap();
}

#[test]
fn admission_rejects_expiry_before_approval_and_planned_without_due_date() {
    let mut e = good_exemption();
    e["expiresAt"] = "2025-01-01T00:00:00Z".into();
    assert!(
        validate_target(target(e, 80))
            .unwrap_err()
            .contains("after approvedAt")
    );
    let mut e = good_exemption();
    e["resolution"] = "Planned".into();
    assert!(
        validate_target(target(e.clone(), 80))
            .unwrap_err()
            .contains("dueDate")
    );
    e["dueDate"] = "2026-03-01T00:00:00Z".into();
    validate_target(target(e, 80)).unwrap();
}

#[test]
fn admission_rejects_a_goal_out_of_range() {
    assert!(
        validate_target(target(good_exemption(), 101))
            .unwrap_err()
            .contains("goal")
    );
    validate_target(target(good_exemption(), 0)).unwrap();
    validate_target(target(good_exemption(), 100)).unwrap();
}

fn action(max_score: i64, check: serde_json::Value) -> Result<(), String> {
    let v = serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": "run-as-non-root"},
        "spec": {"title": "Run as non-root", "category": "Apps", "maxScore": max_score, "check": check}
    });
    let a: ImprovementAction = serde_json::from_value(v).map_err(|e| e.to_string())?;
    a.validate_cel().map_err(|e| format!("{e:?}"))
}

#[test]
fn admission_checks_max_score_and_check_shape() {
    let check = serde_json::json!({"podSpec": true, "validations": [{"expression": "true"}]});
    action(10, check.clone()).unwrap();
    action(100, check.clone()).unwrap();
    assert!(action(0, check.clone()).unwrap_err().contains("maxScore"));
    assert!(action(101, check).unwrap_err().contains("maxScore"));
    let neither = serde_json::json!({"validations": [{"expression": "true"}]});
    assert!(
        action(5, neither)
            .unwrap_err()
            .contains("resources or podSpec")
    );
    let both = serde_json::json!({"podSpec": true, "resources": [{"kind": "Pod"}], "validations": [{"expression": "true"}]});
    assert!(action(5, both).unwrap_err().contains("mutually exclusive"));
}

#[test]
fn enum_values_only() {
    let v = serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "x"},
        "spec": {"title": "x", "category": "Network", "maxScore": 1, "check": {"podSpec": true, "validations": [{"expression": "true"}]}}
    });
    let err = serde_json::from_value::<ImprovementAction>(v)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Network"), "{err}");
}

#[test]
fn security_control_is_cluster_scoped_with_its_short_name_and_columns() {
    let crds = securescore::api::crds();
    let sc = crds
        .iter()
        .find(|c| c.spec.names.kind == "SecurityControl")
        .expect("a SecurityControl CRD");
    assert_eq!(sc.spec.scope, "Cluster");
    // `sc` is kubectl's short name for StorageClass: ours must not shadow it.
    assert_eq!(
        sc.spec.names.short_names.as_deref(),
        Some(&["secctl".to_string()][..])
    );
    let cols: Vec<_> = sc.spec.versions[0]
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Title", "Max", "Ready", "Age"]);
}

fn validate_control(spec: serde_json::Value) -> Result<(), String> {
    let c: securescore::api::SecurityControl = serde_json::from_value(serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "SecurityControl",
        "metadata": {"name": "c"}, "spec": spec
    }))
    .map_err(|e| e.to_string())?;
    c.validate_cel().map_err(|e| format!("{e:?}"))
}

#[test]
fn admission_requires_a_control_to_group_actions_by_name_or_selector() {
    let none = validate_control(serde_json::json!({"title": "T", "maxScore": 5}));
    assert!(
        none.as_ref()
            .is_err_and(|e| e.contains("actions (by name) or an actionSelector")),
        "{none:?}"
    );
    assert_eq!(
        validate_control(serde_json::json!({"title": "T", "maxScore": 5, "actions": ["a"]})),
        Ok(())
    );
    assert_eq!(
        validate_control(serde_json::json!({"title": "T", "maxScore": 5, "actionSelector": {}})),
        Ok(())
    );
    let big =
        validate_control(serde_json::json!({"title": "T", "maxScore": 101, "actions": ["a"]}));
    assert!(
        big.as_ref().is_err_and(|e| e.contains("between 1 and 100")),
        "{big:?}"
    );
}
