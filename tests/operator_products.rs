//! End-to-end: a product action in the operator, against the in-process API emulation
//! (tests/support). Without the product's CRD the action is Unknown, the target lists the
//! product as not detected and is not Degraded; once the CRD is installed (the operator looks a
//! kind the API did not serve up again every 30 s) the reports are judged.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::apiserver::{ApiServer, eventually};
use support::operator::Operator;

const WAIT: Duration = Duration::from_secs(30);
/// The operator retries discovery of a kind the API did not serve after 30 s.
const WAIT_FOR_NEW_KIND: Duration = Duration::from_secs(120);
const SST: (&str, &str) = ("securescore.io/v1alpha1", "securescoretargets");

fn pod(server: &ApiServer, name: &str, non_root: bool) {
    server.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": {"app": name}},
        "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
    }));
}

/// A built-in action as an API object.
fn builtin(name: &str) -> Value {
    let a = securescore::catalog::builtin()
        .unwrap()
        .into_iter()
        .find(|a| a.metadata.name.as_deref() == Some(name))
        .unwrap();
    let mut v = serde_json::to_value(&a).unwrap();
    v["apiVersion"] = json!("securescore.io/v1alpha1");
    v["kind"] = json!("ImprovementAction");
    v
}

/// The VulnerabilityReport CRD's identity as trivy-operator installs it
/// (deploy/helm/crds/aquasecurity.github.io_vulnerabilityreports.yaml): namespaced,
/// aquasecurity.github.io/v1alpha1. The schema is left open: the emulation checks none.
fn vulnerability_report_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "vulnerabilityreports.aquasecurity.github.io"},
        "spec": {
            "group": "aquasecurity.github.io",
            "names": {"kind": "VulnerabilityReport", "listKind": "VulnerabilityReportList",
                      "plural": "vulnerabilityreports", "singular": "vulnerabilityreport",
                      "shortNames": ["vuln", "vulns"], "categories": ["all"]},
            "scope": "Namespaced",
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

fn report(name: &str, critical: &[&str]) -> Value {
    let vulns: Vec<Value> = critical
        .iter()
        .map(|id| {
            json!({"vulnerabilityID": id, "severity": "CRITICAL", "resource": "libbsd0",
                         "installedVersion": "0.9.1-2", "fixedVersion": "", "title": ""})
        })
        .collect();
    json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
        "metadata": {"name": name, "namespace": "team-a"},
        "report": {"artifact": {"repository": "library/nginx", "tag": "1.16"},
                   "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.72.0"},
                   "summary": {"criticalCount": critical.len(), "highCount": 0, "mediumCount": 0, "lowCount": 0, "unknownCount": 0},
                   "vulnerabilities": vulns}
    })
}

fn row(status: &Value, action: &str) -> Option<Value> {
    status["actions"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == action)
        .cloned()
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_that_is_not_installed_is_unknown_without_degrading_until_its_crd_appears() {
    let server = ApiServer::start().await;
    for ns in ["securescore-system", "team-a"] {
        server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    pod(&server, "web", true);
    pod(&server, "api", true);
    pod(&server, "db", false);
    server
        .create(builtin("pss-run-as-non-root"))
        .expect("action created");
    server
        .create(builtin("trivy-no-critical-vulnerabilities"))
        .expect("product action created");
    server
        .create(json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "team", "namespace": "team-a"},
            "spec": {"interval": "10s", "actions": {"include": ["pss-run-as-non-root", "trivy-no-critical-vulnerabilities"]}}}))
        .unwrap();
    let op = Operator::start(&server, &[]);

    let status = eventually("the product listed as not detected", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        (st["productsNotDetected"] == json!(["trivy-operator"])).then_some(st)
    })
    .await;
    let trivy = row(&status, "trivy-no-critical-vulnerabilities").unwrap();
    assert_eq!(trivy["state"], "Unknown", "{}", op.logs());
    assert_eq!(
        (trivy["score"].as_f64(), trivy["maxScore"].as_f64()),
        (Some(0.0), Some(8.0))
    );
    assert!(
        trivy["message"].as_str()
            == Some(
                "ProductNotDetected: product trivy-operator is not installed: none of its report kinds is present (VulnerabilityReport.aquasecurity.github.io)"
            ),
        "{trivy}"
    );
    let non_root = row(&status, "pss-run-as-non-root").unwrap();
    let non_root_max = non_root["maxScore"].as_f64().unwrap();
    // pss-run-as-non-root: 2 of 3 pods; the product's 8 points stay in max.
    assert_eq!(status["maxScore"].as_f64(), Some(non_root_max + 8.0));
    assert_eq!(
        status["score"].as_f64(),
        Some(((non_root_max * 2.0 / 3.0) * 100.0).round() / 100.0)
    );
    assert_eq!(
        condition(&status, "Degraded")["status"],
        "False",
        "{status}"
    );
    assert_eq!(condition(&status, "Ready")["status"], "True");

    // The operator looks the kind up again (every 30 s) without repeating its warning: a product
    // that is not installed is a normal state, not one to log twice a minute.
    eventually("discovery retried", WAIT_FOR_NEW_KIND, || {
        op.logs()
            .lines()
            .any(|l| {
                l.contains("the API still does not serve this kind")
                    && l.contains("VulnerabilityReport.aquasecurity.github.io")
            })
            .then_some(())
    })
    .await;
    let warnings = op
        .logs()
        .lines()
        .filter(|l| {
            l.contains("\"WARN\"")
                && l.contains("the API does not serve this kind")
                && l.contains("VulnerabilityReport.aquasecurity.github.io")
        })
        .count();
    assert_eq!(warnings, 1, "{}", op.logs());

    // Trivy Operator is installed and writes two reports: one with critical vulnerabilities.
    server.put(vulnerability_report_crd());
    server.put(report("replicaset-web-5d8f9c-c", &["CVE-2019-20367"]));
    server.put(report("replicaset-api-7c9f8d-c", &[]));
    let status = eventually("the reports judged", WAIT_FOR_NEW_KIND, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        let r = row(&st, "trivy-no-critical-vulnerabilities")?;
        (r["state"] == "ToAddress").then_some(st)
    })
    .await;
    assert!(status.get("productsNotDetected").is_none(), "{status}");
    let trivy = row(&status, "trivy-no-critical-vulnerabilities").unwrap();
    assert_eq!(
        (trivy["compliant"].as_u64(), trivy["nonCompliant"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(trivy["score"].as_f64(), Some(4.0));
    assert_eq!(
        trivy["findings"][0]["message"],
        "1 critical vulnerability in library/nginx:1.16: CVE-2019-20367"
    );
    assert_eq!(condition(&status, "Degraded")["status"], "False");
}
