//! Other products' findings (`securescore.io/product`): the built-in Trivy Operator and Policy
//! Reports actions with and without their report kinds, hand-computed; offline through
//! `securescore scan`.

mod common;
use common::*;
use securescore::api::ActionState;
use securescore::engine::{CompiledAction, Inventory, KindStatus, Resource};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn builtin(name: &str) -> Arc<CompiledAction> {
    let a = securescore::catalog::builtin()
        .expect("built-in catalog")
        .into_iter()
        .find(|a| a.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no built-in action {name}"));
    let compiled = CompiledAction::compile(&a);
    assert!(compiled.problem.is_none(), "{name}: {:?}", compiled.problem);
    Arc::new(compiled)
}

/// non-root (9 points) plus trivy-no-critical-vulnerabilities (8 points).
fn actions() -> Vec<Arc<CompiledAction>> {
    vec![
        non_root_action("non-root", 9, "Proportional"),
        builtin("trivy-no-critical-vulnerabilities"),
    ]
}

/// A VulnerabilityReport as Trivy Operator writes it (docs/docs/crds/vulnerability-report.md).
fn vulnerability_report(ns: &str, name: &str, critical: &[&str]) -> Value {
    let vulns: Vec<Value> = critical
        .iter()
        .map(|id| {
            json!({"vulnerabilityID": id, "severity": "CRITICAL", "resource": "libbsd0",
                   "installedVersion": "0.9.1-2", "fixedVersion": "0.9.1-2+deb10u1", "title": ""})
        })
        .collect();
    json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
        "metadata": {"name": name, "namespace": ns, "labels": {
            "trivy-operator.resource.kind": "ReplicaSet", "trivy-operator.resource.name": "web-5d8f9c",
            "trivy-operator.container.name": "app"}},
        "report": {
            "artifact": {"repository": "library/nginx", "tag": "1.16"},
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.72.0"},
            "summary": {"criticalCount": critical.len(), "highCount": 0, "mediumCount": 0, "lowCount": 0, "unknownCount": 0},
            "vulnerabilities": vulns
        }
    })
}

fn resources(objects: Vec<Value>) -> Vec<Arc<Resource>> {
    objects
        .into_iter()
        .map(|o| Arc::new(Resource::new(o, None).expect("test object")))
        .collect()
}

/// A cluster inventory in which Pods are synced and the given kinds have the given status;
/// every other kind is not served.
fn cluster(objects: Vec<Value>, kinds: &[(&str, &str, KindStatus)]) -> Inventory {
    let mut map: HashMap<(String, String), KindStatus> = HashMap::new();
    map.insert((String::new(), "Pod".into()), KindStatus::Synced);
    for (g, k, s) in kinds {
        map.insert((g.to_string(), k.to_string()), *s);
    }
    for k in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
        map.insert(("apps".into(), k.into()), KindStatus::Synced);
    }
    for k in ["Job", "CronJob"] {
        map.insert(("batch".into(), k.into()), KindStatus::Synced);
    }
    map.insert((String::new(), "Namespace".into()), KindStatus::Synced);
    Inventory::with_kinds(resources(objects), map)
}

fn three_pods_json() -> Vec<Value> {
    vec![
        pod("team-a", "web", true),
        pod("team-a", "api", true),
        pod("team-a", "db", false),
    ]
}

fn degraded(e: &securescore::engine::TargetEvaluation) -> bool {
    condition(e, "Degraded").status == "True"
}

#[test]
fn a_product_that_is_not_installed_keeps_its_max_with_zero_points_and_does_not_degrade() {
    // In a cluster: the API does not serve VulnerabilityReport.
    let e = eval(
        &team_target(""),
        &actions(),
        &cluster(three_pods_json(), &[]),
    );
    // non-root: 2 of 3 × 9 = 6; the product action: Unknown, 0 of 8 kept in max.
    assert_eq!(e.status.score, Some(6.0));
    assert_eq!(e.status.max_score, Some(17.0));
    assert_eq!(e.status.percentage, Some(35.29));
    let r = row(&e, "trivy-no-critical-vulnerabilities");
    assert_eq!(r.state, ActionState::Unknown);
    assert_eq!((r.score, r.max_score, r.points_to_gain), (0.0, 8.0, 8.0));
    let message = r.message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("ProductNotDetected: product trivy-operator is not installed")
            && message.contains("VulnerabilityReport.aquasecurity.github.io"),
        "{message}"
    );
    assert!(!degraded(&e), "{:?}", condition(&e, "Degraded"));
    assert_eq!(e.outcome, securescore::engine::Outcome::Evaluated);
    assert_eq!(e.status.products_not_detected, vec!["trivy-operator"]);
}

#[test]
fn a_kind_of_an_ordinary_action_that_is_not_served_still_degrades() {
    // The contrast: the same missing kind read by an action without the product label.
    let mut plain = securescore::catalog::builtin()
        .unwrap()
        .into_iter()
        .find(|a| a.metadata.name.as_deref() == Some("trivy-no-critical-vulnerabilities"))
        .unwrap();
    plain.metadata.name = Some("custom-vulnerabilities".into());
    plain
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove("securescore.io/product");
    let plain = Arc::new(CompiledAction::compile(&plain));
    let e = eval(
        &team_target(""),
        &[non_root_action("non-root", 9, "Proportional"), plain],
        &cluster(three_pods_json(), &[]),
    );
    assert!(degraded(&e));
    assert_eq!(condition(&e, "Degraded").reason, "InventoryIncomplete");
    assert!(e.status.products_not_detected.is_empty());
}

#[test]
fn an_installed_product_whose_kind_cannot_be_read_degrades() {
    let e = eval(
        &team_target(""),
        &actions(),
        &cluster(
            three_pods_json(),
            &[(
                "aquasecurity.github.io",
                "VulnerabilityReport",
                KindStatus::Forbidden,
            )],
        ),
    );
    assert!(degraded(&e));
    assert!(e.status.products_not_detected.is_empty());
    let r = row(&e, "trivy-no-critical-vulnerabilities");
    assert_eq!(r.state, ActionState::Unknown);
    assert!(
        r.message
            .as_deref()
            .unwrap_or_default()
            .starts_with("InventoryIncomplete"),
        "{:?}",
        r.message
    );
}

#[test]
fn an_installed_product_without_reports_is_not_applicable() {
    let e = eval(
        &team_target(""),
        &actions(),
        &cluster(
            three_pods_json(),
            &[(
                "aquasecurity.github.io",
                "VulnerabilityReport",
                KindStatus::Synced,
            )],
        ),
    );
    assert_eq!(
        row(&e, "trivy-no-critical-vulnerabilities").state,
        ActionState::NotApplicable
    );
    assert_eq!((e.status.score, e.status.max_score), (Some(6.0), Some(9.0)));
    assert!(e.status.products_not_detected.is_empty());
    assert!(!degraded(&e));
}

#[test]
fn reports_are_judged_one_resource_each_with_findings_naming_report_and_cves() {
    let mut objects = three_pods_json();
    objects.push(vulnerability_report(
        "team-a",
        "replicaset-web-5d8f9c-app",
        &[
            "CVE-2019-20367",
            "CVE-2018-25009",
            "CVE-2023-1111",
            "CVE-2023-2222",
        ],
    ));
    objects.push(vulnerability_report(
        "team-a",
        "replicaset-api-7c9f8d-app",
        &[],
    ));
    let inv = cluster(
        objects,
        &[(
            "aquasecurity.github.io",
            "VulnerabilityReport",
            KindStatus::Synced,
        )],
    );
    let e = eval(&team_target(""), &actions(), &inv);
    // non-root 6 of 9; vulnerabilities: 1 of 2 reports clean × 8 = 4. 10 of 17.
    assert_eq!(
        (e.status.score, e.status.max_score),
        (Some(10.0), Some(17.0))
    );
    let r = row(&e, "trivy-no-critical-vulnerabilities");
    assert_eq!(r.state, ActionState::ToAddress);
    assert_eq!(
        (r.compliant, r.non_compliant, r.points_to_gain),
        (1, 1, 4.0)
    );
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        (f.kind.as_str(), f.name.as_str()),
        ("VulnerabilityReport", "replicaset-web-5d8f9c-app")
    );
    assert_eq!(
        f.message,
        "4 critical vulnerabilities in library/nginx:1.16: CVE-2019-20367, CVE-2018-25009, CVE-2023-1111 and 1 more"
    );
    // The same inventory offline: the report's presence is what detects the product.
    let offline = Inventory::complete(inv.iter().cloned());
    let off = eval(&team_target(""), &actions(), &offline);
    assert_eq!(off.status.score, e.status.score);
    assert!(off.status.products_not_detected.is_empty());
}

#[test]
fn offline_a_product_is_detected_by_any_of_its_report_kinds() {
    // A ConfigAuditReport only: Trivy Operator is there, it just found no vulnerabilities.
    let config_audit = json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "ConfigAuditReport",
        "metadata": {"name": "replicaset-web-5d8f9c", "namespace": "team-a"},
        "report": {"summary": {"criticalCount": 0, "highCount": 0, "mediumCount": 0, "lowCount": 0},
                   "checks": [{"checkID": "KSV017", "severity": "HIGH", "success": true}]}
    });
    let mut with_audit = actions();
    with_audit.push(builtin("trivy-no-severe-config-audit-failures"));
    let mut objects = three_pods_json();
    objects.push(config_audit);
    let e = eval(&team_target(""), &with_audit, &inventory(objects));
    assert_eq!(
        row(&e, "trivy-no-critical-vulnerabilities").state,
        ActionState::NotApplicable
    );
    assert_eq!(
        row(&e, "trivy-no-severe-config-audit-failures").state,
        ActionState::Completed
    );
    // 6 (non-root) + 6 (config audit) of 9 + 6.
    assert_eq!(
        (e.status.score, e.status.max_score),
        (Some(12.0), Some(15.0))
    );
    assert!(e.status.products_not_detected.is_empty());
    // Without any report kind: both Unknown, max kept: 6 of 9 + 8 + 6 = 23.
    let e = eval(&team_target(""), &with_audit, &three_pods());
    assert_eq!(
        (e.status.score, e.status.max_score),
        (Some(6.0), Some(23.0))
    );
    assert_eq!(e.status.products_not_detected, vec!["trivy-operator"]);
    let message = row(&e, "trivy-no-severe-config-audit-failures")
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        message.ends_with("none of its report kinds is present (ConfigAuditReport.aquasecurity.github.io, VulnerabilityReport.aquasecurity.github.io)"),
        "{message}"
    );
}

#[test]
fn exposed_secret_findings_name_rule_and_file_but_never_the_matched_text() {
    let report = json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "ExposedSecretReport",
        "metadata": {"name": "replicaset-app-67b77f5965-app", "namespace": "team-a"},
        "report": {
            "artifact": {"repository": "myimagewithsecret", "tag": "v1.2.3"},
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.72.0"},
            "secrets": [
                {"category": "Stripe", "match": "secret_key: sk_live_51HxVERYSECRET", "ruleID": "stripe-access-token",
                 "severity": "HIGH", "target": "/app/config/secret.yaml", "title": "Stripe"},
                {"category": "AWS", "match": "AKIAIOSFODNN7EXAMPLE", "ruleID": "aws-access-key-id",
                 "severity": "CRITICAL", "target": "/root/.aws/credentials", "title": "AWS Access Key ID"}
            ],
            "summary": {"criticalCount": 1, "highCount": 1, "mediumCount": 0, "lowCount": 0}
        }
    });
    let e = eval(
        &team_target(""),
        &[builtin("trivy-no-exposed-secrets")],
        &inventory(vec![report]),
    );
    let r = row(&e, "trivy-no-exposed-secrets");
    assert_eq!(r.state, ActionState::ToAddress);
    let message = &r.findings[0].message;
    assert_eq!(
        message,
        "2 secrets exposed in myimagewithsecret:v1.2.3: stripe-access-token in /app/config/secret.yaml, aws-access-key-id in /root/.aws/credentials"
    );
    let everything = serde_json::to_string(&e.status).unwrap();
    for secret in ["sk_live_51HxVERYSECRET", "AKIAIOSFODNN7EXAMPLE"] {
        assert!(!everything.contains(secret), "the status quotes {secret}");
    }
}

#[test]
fn policy_reports_fail_on_fail_and_error_results_only() {
    let report = |name: &str, results: Value| {
        json!({
            "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
            "metadata": {"name": name, "namespace": "team-a"},
            "results": results
        })
    };
    let objects = vec![
        report(
            "cpol-ok",
            json!([{"policy": "require-labels", "rule": "check-team", "result": "warn"},
                   {"policy": "disallow-capabilities", "rule": "adding-capabilities", "result": "pass"},
                   {"policy": "disallow-host-path", "result": "skip"}]),
        ),
        report(
            "cpol-failing",
            json!([{"policy": "disallow-capabilities", "rule": "adding-capabilities", "result": "fail",
                    "resources": [{"apiVersion": "v1", "kind": "Pod", "name": "debug-tools", "namespace": "team-a"}]},
                   {"policy": "verify-images", "rule": "check-signature", "result": "error"}]),
        ),
        report("cpol-empty", json!([])),
    ];
    let e = eval(
        &team_target(""),
        &[builtin("policy-reports-no-failing-results")],
        &inventory(objects),
    );
    let r = row(&e, "policy-reports-no-failing-results");
    // 2 of 3 reports clean × 6 = 4.
    assert_eq!((r.compliant, r.non_compliant, r.score), (2, 1, 4.0));
    assert_eq!(
        r.findings[0].message,
        "2 failing policy results: disallow-capabilities/adding-capabilities on Pod debug-tools, verify-images/check-signature"
    );
}

#[test]
fn a_policy_report_whose_results_were_trimmed_fails_on_its_summary() {
    let trimmed = json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
        "metadata": {"name": "sample-cis-bench-api-server"},
        "summary": {"pass": 8, "fail": 2, "warn": 0, "error": 1, "skip": 0}
    });
    let e = eval(
        &implicit(),
        &[builtin("policy-reports-no-failing-results")],
        &inventory(vec![trimmed]),
    );
    let r = row(&e, "policy-reports-no-failing-results");
    assert_eq!(r.state, ActionState::ToAddress);
    assert_eq!(
        r.findings[0].message,
        "3 failing policy results (in summary)"
    );
}

fn implicit() -> securescore::api::SecureScoreTarget {
    securescore::engine::evaluate::implicit_cluster_target("scan", "default")
}

// ---------------------------------------------------------------------------------------------
// securescore scan

fn scan(args: &[&str], files: &[(&str, &str)]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("scan")
        .args(["--format", "json", "--now", "2026-11-27T12:00:00Z"])
        .args(args)
        .arg(dir.path())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: nginx:1.27}]\n";

fn action_row<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["actions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
}

#[test]
fn scan_evaluates_product_actions_only_when_asked() {
    let (code, out, err) = scan(&[], &[("app.yaml", DEPLOYMENT)]);
    assert_eq!(code, 0, "{err}");
    let status = &out["items"][0]["status"];
    assert!(action_row(status, "trivy-no-critical-vulnerabilities").is_none());
    assert!(status.get("productsNotDetected").is_none(), "{status}");
    let max_without = status["maxScore"].as_f64().unwrap();

    let (code, out, err) = scan(
        &["--product", "trivy-operator", "--product", "policy-reports"],
        &[("app.yaml", DEPLOYMENT)],
    );
    assert_eq!(code, 0, "not detected is not an input error: {err}");
    let status = &out["items"][0]["status"];
    assert_eq!(
        status["productsNotDetected"],
        json!(["policy-reports", "trivy-operator"])
    );
    let r = action_row(status, "trivy-no-exposed-secrets").expect("row");
    assert_eq!(r["state"], "Unknown");
    // 8 + 6 + 8 (Trivy) + 6 (Policy Reports) points kept in max, none earned.
    assert_eq!(status["maxScore"].as_f64().unwrap(), max_without + 28.0);
    let degraded = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap();
    assert_eq!(degraded["status"], "False");
}

#[test]
fn scan_scores_a_product_control_only_with_its_product_as_the_chart_renders_it() {
    let control_names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--model", "SecurityControls"];
        all.extend_from_slice(args);
        let (code, out, err) = scan(&all, &[("app.yaml", DEPLOYMENT)]);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains("groups no known"), "{err}");
        out["items"][0]["status"]["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let without = control_names(&[]);
    assert!(without.contains(&"remediate-security-configurations".to_string()));
    assert!(
        !without.contains(&"remediate-vulnerabilities".to_string()),
        "{without:?}"
    );
    assert!(
        !without.contains(&"resolve-policy-violations".to_string()),
        "{without:?}"
    );
    let trivy = control_names(&["--product", "trivy-operator"]);
    assert!(
        trivy.contains(&"remediate-vulnerabilities".to_string()),
        "{trivy:?}"
    );
    assert!(
        !trivy.contains(&"resolve-policy-violations".to_string()),
        "{trivy:?}"
    );
    assert_eq!(trivy.len(), without.len() + 1);
}

#[test]
fn scan_judges_the_reports_of_a_product_given_in_the_input() {
    let fixture = |name: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/catalog")
                .join(name)
                .join("fail.yaml"),
        )
        .unwrap()
    };
    let vulns = fixture("trivy-no-critical-vulnerabilities");
    let (code, out, err) = scan(
        &["--product", "trivy-operator"],
        &[("app.yaml", DEPLOYMENT), ("reports.yaml", &vulns)],
    );
    assert_eq!(code, 0, "{err}");
    let status = &out["items"][0]["status"];
    assert!(status.get("productsNotDetected").is_none(), "{status}");
    let r = action_row(status, "trivy-no-critical-vulnerabilities").unwrap();
    assert_eq!(r["state"], "ToAddress");
    assert_eq!(
        r["findings"][0]["message"],
        "2 critical vulnerabilities in library/nginx:1.16: CVE-2019-20367, CVE-2018-25009"
    );
    // Detected through VulnerabilityReport: the other Trivy kinds are simply absent.
    assert_eq!(
        action_row(status, "trivy-no-exposed-secrets").unwrap()["state"],
        "NotApplicable"
    );
}

#[test]
fn scan_rejects_an_unknown_product_listing_the_known_ones() {
    let (code, _, err) = scan(&["--product", "falco"], &[("app.yaml", DEPLOYMENT)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("\"falco\"") && err.contains("trivy-operator, policy-reports"),
        "{err}"
    );
}

#[test]
fn explain_knows_the_product_actions() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/catalog/trivy-no-exposed-secrets/fail.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securescore"))
        .args(["explain", "trivy-no-exposed-secrets"])
        .arg(&fixture)
        .args(["--now", "2026-11-27T12:00:00Z"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 secrets exposed in myimagewithsecret:v1.2.3: stripe-access-token in /app/config/secret.yaml"),
        "{stdout}"
    );
}
