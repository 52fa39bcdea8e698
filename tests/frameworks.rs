//! The frameworks view (`status.frameworks[]`, `securescore_framework_*`, `scan --framework`):
//! hand-computed controls, metric values, and a cross-check on the real corpus.

mod common;
#[path = "support/corpus.rs"]
mod corpus;
use common::*;
use securescore::api::{ActionState, FrameworkStatus};
use securescore::engine::CompiledAction;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A podSpec action on `runAsNonRoot` (pods `web`, `api` pass, `db` fails) or on the `app` label
/// (every pod passes), covering the given `(framework, control)` pairs.
fn covering(
    name: &str,
    check: &str,
    kinds: &str,
    refs: &[(&str, &str)],
    preview: bool,
) -> Arc<CompiledAction> {
    let references: String = refs
        .iter()
        .map(|(f, c)| {
            format!(
                "\n    - {{framework: \"{f}\", control: \"{c}\", url: \"https://example.com\"}}"
            )
        })
        .collect();
    let expression = match check {
        "non-root" => {
            "has(object.spec.securityContext) && object.spec.securityContext.runAsNonRoot == true"
        }
        "labelled" => "has(object.metadata.labels) && 'app' in object.metadata.labels",
        other => panic!("{other}"),
    };
    action_yaml(&action_manifest(
        &format!("name: {name}"),
        name,
        "Apps",
        5,
        &format!(
            r#"  userImpact: Low
  implementationCost: Low
  preview: {preview}
  references:{references}
  check:
    resources: [{kinds}]
    validations:
      - expression: "{expression}"
"#
        ),
    ))
}

const PODS: &str = "{apiGroup: '', kind: Pod}";
const SERVICES: &str = "{apiGroup: '', kind: Service}";

fn framework<'a>(e: &'a securescore::engine::TargetEvaluation, name: &str) -> &'a FrameworkStatus {
    e.status
        .frameworks
        .iter()
        .find(|f| f.framework == name)
        .unwrap_or_else(|| panic!("no framework {name} in {:?}", e.status.frameworks))
}

#[test]
fn a_control_covered_by_two_actions_fails_when_one_fails_and_unapplied_controls_are_not_counted() {
    let actions = [
        // Covers C1 and C2, passes on every pod.
        covering(
            "labels",
            "labelled",
            PODS,
            &[("F", "C1"), ("F", "C2")],
            false,
        ),
        // Covers C1 too, fails on db.
        covering("non-root", "non-root", PODS, &[("F", "C1")], false),
        // Covers C3, applies to Services: there are none.
        covering("services", "labelled", SERVICES, &[("F", "C3")], false),
    ];
    let e = eval(&team_target(""), &actions, &three_pods());
    let f = framework(&e, "F");
    assert_eq!(
        (f.passed, f.failed, f.total, f.not_applicable),
        (1, 1, 2, 1)
    );
    assert_eq!(f.percentage, Some(50.0));
    assert_eq!(f.failed_controls, vec!["C1"]);
}

#[test]
fn resolved_actions_pass_their_controls_and_accepted_risks_fail_them() {
    let actions = [covering(
        "non-root",
        "non-root",
        PODS,
        &[("F", "C1")],
        false,
    )];
    let third_party = team_target(&exemption(
        "ResolvedThirdParty",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(&third_party, &actions, &three_pods());
    assert_eq!(row(&e, "non-root").state, ActionState::ResolvedThirdParty);
    assert_eq!(
        (framework(&e, "F").passed, framework(&e, "F").failed),
        (1, 0)
    );
    assert_eq!(framework(&e, "F").percentage, Some(100.0));

    let accepted = team_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2027-01-01T00:00:00Z",
    ));
    let e = eval(&accepted, &actions, &three_pods());
    assert_eq!(row(&e, "non-root").state, ActionState::RiskAccepted);
    assert_eq!(
        (framework(&e, "F").passed, framework(&e, "F").failed),
        (0, 1)
    );
    assert_eq!(framework(&e, "F").percentage, Some(0.0));

    let planned = team_target(&exemption("Planned", Some("db"), "2027-01-01T00:00:00Z"));
    let e = eval(&planned, &actions, &three_pods());
    assert_eq!(row(&e, "non-root").state, ActionState::Planned);
    assert_eq!(framework(&e, "F").failed, 1);
}

#[test]
fn an_unknown_action_fails_its_control_and_preview_actions_are_left_out() {
    let broken = {
        // A check that does not compile is Unknown for every target.
        let a: securescore::api::ImprovementAction = serde_yaml_ng::from_str(
            r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: broken}
spec:
  title: broken
  category: Apps
  maxScore: 5
  userImpact: Low
  implementationCost: Low
  references: [{framework: F, control: C1}]
  check:
    resources: [{apiGroup: '', kind: Pod}]
    validations: [{expression: "object.spec.("}]
"#,
        )
        .unwrap();
        Arc::new(CompiledAction::compile(&a))
    };
    let actions = [
        broken,
        covering(
            "labels",
            "labelled",
            PODS,
            &[("F", "C1"), ("F", "C2")],
            false,
        ),
        // Fails on db, but only in preview: C2 stays passed, C9 is never listed.
        covering(
            "preview",
            "non-root",
            PODS,
            &[("F", "C2"), ("F", "C9")],
            true,
        ),
    ];
    let e = eval(&team_target(""), &actions, &three_pods());
    assert_eq!(row(&e, "broken").state, ActionState::Unknown);
    let f = framework(&e, "F");
    assert_eq!(
        (f.passed, f.failed, f.total, f.not_applicable),
        (1, 1, 2, 0)
    );
    assert_eq!(f.failed_controls, vec!["C1"]);
}

#[test]
fn the_catalog_frameworks_come_first_in_their_order_then_others_by_name() {
    use securescore::catalog::{FRAMEWORK_CIS, FRAMEWORK_NSA_CISA, FRAMEWORK_PSS};
    let actions = [covering(
        "labels",
        "labelled",
        PODS,
        &[
            ("Zeta", "Z1"),
            (FRAMEWORK_NSA_CISA, "Namespaces"),
            ("Alpha", "A1"),
            (FRAMEWORK_PSS, "Baseline: Sysctls"),
            (FRAMEWORK_CIS, "5.7.4"),
        ],
        false,
    )];
    let e = eval(&team_target(""), &actions, &three_pods());
    let names: Vec<&str> = e
        .status
        .frameworks
        .iter()
        .map(|f| f.framework.as_str())
        .collect();
    assert_eq!(
        names,
        [
            FRAMEWORK_PSS,
            FRAMEWORK_CIS,
            FRAMEWORK_NSA_CISA,
            "Alpha",
            "Zeta"
        ]
    );
}

#[test]
fn an_action_with_nothing_applicable_leaves_the_framework_with_no_percentage() {
    let actions = [covering(
        "services",
        "labelled",
        SERVICES,
        &[("F", "C3")],
        false,
    )];
    let e = eval(&team_target(""), &actions, &three_pods());
    let f = framework(&e, "F");
    assert_eq!((f.total, f.not_applicable, f.percentage), (0, 1, None));
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// The value of the sample `name{labels...}` in a text exposition (our label values contain no
/// `"` or `,`).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let have: BTreeMap<&str, &str> = rest
                .trim_end_matches('}')
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            labels
                .iter()
                .all(|(k, v)| have.get(k) == Some(v))
                .then(|| value.parse::<f64>().expect("a number"))
        });
    let first = found.next();
    assert!(
        found.next().is_none(),
        "several samples match {name} {labels:?}"
    );
    first
}

#[test]
fn framework_metrics_carry_the_passed_and_failed_controls_and_the_ratio() {
    use securescore::metrics::{ActionSeries, Metrics, TargetSeries};
    let actions = [
        covering(
            "labels",
            "labelled",
            PODS,
            &[("F", "C1"), ("F", "C2"), ("G", "G1")],
            false,
        ),
        covering(
            "non-root",
            "non-root",
            PODS,
            &[("F", "C1"), ("F", "C3")],
            false,
        ),
        covering("services", "labelled", SERVICES, &[("G", "G2")], false),
    ];
    let e = eval(&team_target(""), &actions, &three_pods());
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
        ActionSeries::All,
    );
    let t = [("namespace", "team-a"), ("target", "team-a")];
    let at = |framework: &str, result: &str| {
        sample(
            &text,
            "securescore_framework_controls",
            &[t[0], t[1], ("framework", framework), ("result", result)],
        )
    };
    // F: C2 passes; C1 and C3 fail (non-root fails on db). G: G1 passes; G2 not counted.
    assert_eq!(at("F", "passed"), Some(1.0));
    assert_eq!(at("F", "failed"), Some(2.0));
    assert_eq!(at("G", "passed"), Some(1.0));
    assert_eq!(at("G", "failed"), Some(0.0));
    let ratio = |framework: &str| {
        sample(
            &text,
            "securescore_framework_ratio",
            &[t[0], t[1], ("framework", framework)],
        )
    };
    assert!(
        (ratio("F").unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{:?}",
        ratio("F")
    );
    assert_eq!(ratio("G"), Some(1.0));
    // A framework with nothing counted has controls at 0 and no ratio.
    let only_services = [covering(
        "services",
        "labelled",
        SERVICES,
        &[("H", "H1")],
        false,
    )];
    let e = eval(&team_target(""), &only_services, &three_pods());
    let text = Metrics::new().render(
        true,
        &[TargetSeries {
            namespace: "team-a",
            name: "team-a",
            evaluation: &e,
            goal: None,
            interval_seconds: 300.0,
            evaluated_at: ts(NOW),
        }],
        ActionSeries::All,
    );
    assert_eq!(
        sample(
            &text,
            "securescore_framework_controls",
            &[("framework", "H"), ("result", "passed")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "securescore_framework_ratio", &[("framework", "H")]),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// securescore scan

fn scan(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("scan")
        .args(["--now", "2026-11-27T12:00:00Z"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(action: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/catalog")
        .join(action)
        .join("fail.yaml")
        .display()
        .to_string()
}

#[test]
fn scan_framework_scores_only_the_actions_that_name_it() {
    use securescore::catalog::{FRAMEWORK_PSS, FRAMEWORKS};
    let input = fixture("pss-host-namespaces");
    let (code, all, err) = scan(&["--format", "json", &input]);
    assert_eq!(code, 0, "{err}");
    let (code, pss, err) = scan(&["--format", "json", "--framework", FRAMEWORK_PSS, &input]);
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&all).unwrap();
    let pss: Value = serde_json::from_str(&pss).unwrap();
    let rows = |v: &Value| -> Vec<String> {
        v["items"][0]["status"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let catalog = securescore::catalog::builtin().unwrap();
    let names_pss = |name: &str| {
        catalog
            .iter()
            .find(|a| a.metadata.name.as_deref() == Some(name))
            .is_some_and(|a| {
                a.spec
                    .references
                    .iter()
                    .any(|r| r.framework == FRAMEWORK_PSS)
            })
    };
    let kept = rows(&pss);
    assert!(kept.iter().all(|n| names_pss(n)), "{kept:?}");
    let expected: Vec<String> = rows(&all).into_iter().filter(|n| names_pss(n)).collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    let mut expected_sorted = expected;
    expected_sorted.sort();
    assert_eq!(kept_sorted, expected_sorted);
    assert!(kept.len() < rows(&all).len());
    // Only that framework is listed, with the same numbers as in the full scan.
    let frameworks = &pss["items"][0]["status"]["frameworks"];
    assert_eq!(frameworks.as_array().unwrap().len(), 1);
    let full_pss = all["items"][0]["status"]["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["framework"] == FRAMEWORK_PSS)
        .unwrap()
        .clone();
    assert_eq!(frameworks[0], full_pss);
    assert_eq!(
        frameworks[0]["failedControls"],
        json!(["Baseline: Host Namespaces"])
    );
    // Unknown framework: a usage error that names the valid ones.
    let (code, out, err) = scan(&["--framework", "SOC 2", &input]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    for f in FRAMEWORKS {
        assert!(err.contains(&format!("{f:?}")), "{err}");
    }
    assert!(err.contains("\"SOC 2\""), "{err}");
}

#[test]
fn table_and_html_show_the_frameworks_section() {
    let input = fixture("pss-host-namespaces");
    let (code, table, err) = scan(&["--format", "table", &input]);
    assert_eq!(code, 0, "{err}");
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("Pod Security Standards "))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // Pod Security Standards | passed failed total percent
    let numbers = &cells[cells.len() - 4..];
    let (code, json_out, _) = scan(&["--format", "json", &input]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    let pss = &v["items"][0]["status"]["frameworks"][0];
    assert_eq!(
        numbers,
        [
            pss["passed"].to_string(),
            pss["failed"].to_string(),
            pss["total"].to_string(),
            format!("{:.2}%", pss["percentage"].as_f64().unwrap())
        ]
    );
    let (code, html, _) = scan(&["--format", "html", &input]);
    assert_eq!(code, 0);
    let at = html
        .find("<tr data-framework=\"Pod Security Standards\">")
        .expect("a framework row");
    let row = &html[at..at + html[at..].find("</tr>").unwrap()];
    assert!(
        row.contains(&format!("data-field=\"failed\">{}<", pss["failed"])),
        "{row}"
    );
}

/// On every corpus project, the frameworks in the status agree with a recomputation from the
/// action rows and the catalog's references (an independent reading of the definition).
#[test]
fn on_the_corpus_frameworks_agree_with_the_action_rows() {
    let corpus = corpus::corpus();
    let catalog = securescore::catalog::builtin().unwrap();
    let mut projects = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        projects += 1;
        let (code, out, err) = scan(&["--format", "json", &dir.display().to_string()]);
        assert!(
            code == 0 || code == 1 || code == 2,
            "{}: {err}",
            dir.display()
        );
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        for item in v["items"].as_array().unwrap() {
            let status = &item["status"];
            let mut want: BTreeMap<String, BTreeMap<String, Option<bool>>> = BTreeMap::new();
            for r in status["actions"].as_array().unwrap() {
                if r["preview"] == true {
                    continue;
                }
                let Some(action) = catalog
                    .iter()
                    .find(|a| a.metadata.name.as_deref() == r["name"].as_str())
                else {
                    continue;
                };
                let ok = match r["state"].as_str().unwrap() {
                    "NotApplicable" => None,
                    "Completed" | "ResolvedThirdParty" | "ResolvedAlternate" => Some(true),
                    _ => Some(false),
                };
                for reference in &action.spec.references {
                    let slot = want
                        .entry(reference.framework.clone())
                        .or_default()
                        .entry(reference.control.clone().unwrap_or_default())
                        .or_insert(None);
                    *slot = match (*slot, ok) {
                        (s, None) => s,
                        (None, o) => o,
                        (Some(a), Some(b)) => Some(a && b),
                    };
                }
            }
            let got: BTreeMap<String, (u64, u64, u64)> = status["frameworks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["framework"].as_str().unwrap().to_string(),
                        (
                            f["passed"].as_u64().unwrap(),
                            f["failed"].as_u64().unwrap(),
                            f["notApplicable"].as_u64().unwrap(),
                        ),
                    )
                })
                .collect();
            let expected: BTreeMap<String, (u64, u64, u64)> = want
                .iter()
                .map(|(f, controls)| {
                    let count =
                        |v: Option<bool>| controls.values().filter(|c| **c == v).count() as u64;
                    (
                        f.clone(),
                        (count(Some(true)), count(Some(false)), count(None)),
                    )
                })
                .collect();
            assert_eq!(got, expected, "{}", dir.display());
        }
    }
    assert!(projects >= 8, "{projects} corpus projects");
}

#[test]
fn failed_controls_are_listed_in_numeric_order() {
    let actions = [covering(
        "non-root",
        "non-root",
        PODS,
        &[("F", "5.2.10"), ("F", "5.2.6"), ("F", "Named")],
        false,
    )];
    let e = eval(&team_target(""), &actions, &three_pods());
    assert_eq!(
        framework(&e, "F").failed_controls,
        ["5.2.6", "5.2.10", "Named"]
    );
}
