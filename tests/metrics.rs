//! Prometheus metrics, alert rules and the Grafana dashboard, proven with the real tools:
//! the exposition of a known evaluation (exact values), `promtool check metrics` on a real
//! scrape of `securescore run` against the API emulation, `promtool check rules` and
//! `promtool test rules` (tests/prometheus/), a real Prometheus server scraping the operator,
//! every metric name the dashboard and the rules use present in a real scrape, and the chart
//! rendering both.
//!
//! Needs `prometheus`, `promtool` (scripts/install/prometheus.sh) and `helm`
//! (scripts/install/kubectl-and-helm.sh) in `.tools/bin` or on PATH. A missing tool fails the test.

mod common;
mod support;

use common::{eval, exemption, non_root_action, team_target, three_pods};
use securescore::metrics::{ActionSeries, Metrics, TargetSeries};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::apiserver::{ApiServer, eventually};
use support::operator::{Operator, http_get};
use support::prometheus::Prometheus;
use support::tools::tool;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const RULES: &str = "charts/securescore/files/prometheus-rules.yaml";
const DASHBOARD: &str = "charts/securescore/files/grafana-dashboard.json";
const WAIT: Duration = Duration::from_secs(30);
const SST: (&str, &str) = ("securescore.io/v1alpha1", "securescoretargets");

/// Every metric of the SPEC ("Prometheus metrics"), plus the leader gauge.
const SPEC_METRICS: [&str; 23] = [
    "securescore_score",
    "securescore_max_score",
    "securescore_ratio",
    "securescore_goal_ratio",
    "securescore_projected_score",
    "securescore_achievable_score",
    "securescore_evaluated_resources",
    "securescore_interval_seconds",
    "securescore_last_evaluation_timestamp_seconds",
    "securescore_degraded",
    "securescore_category_score",
    "securescore_category_max_score",
    "securescore_action_score",
    "securescore_action_max_score",
    "securescore_action_resources",
    "securescore_action_state",
    "securescore_exemption_expiry_timestamp_seconds",
    "securescore_evaluation_duration_seconds",
    "securescore_evaluations_total",
    "securescore_reconcile_errors_total",
    "securescore_build_info",
    "securescore_leader",
    // Only the TYPE line of a histogram names the family; its samples carry suffixes.
    "securescore_evaluation_duration_seconds_bucket",
];

// ---------------------------------------------------------------------------------------------
// The exposition format, parsed

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a text exposition (our label values never contain `"`, `,` or `}`).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// `# TYPE name type` lines: family name → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// The value of the one sample named `name` whose labels include `want`.
fn value(all: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = all
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "several samples match {name} {want:?}: {found:?}"
    );
    found.first().map(|s| s.value)
}

fn series_of<'a>(all: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    all.iter().filter(|s| s.name == name).collect()
}

// ---------------------------------------------------------------------------------------------
// Exposition of a known evaluation

fn exposition(targets: &[TargetSeries], actions: ActionSeries) -> String {
    Metrics::new().render(true, targets, actions)
}

fn series<'a>(
    evaluation: &'a securescore::engine::TargetEvaluation,
    namespace: &'a str,
    name: &'a str,
) -> TargetSeries<'a> {
    TargetSeries {
        namespace,
        name,
        evaluation,
        goal: Some(80),
        interval_seconds: 300.0,
        evaluated_at: common::ts("2026-11-27T12:00:00Z"),
    }
}

#[test]
fn exposition_of_a_known_evaluation_has_exact_values() {
    // Two of three pods run as non-root: 6 of 9 points; a RiskAccepted exemption on `db`.
    let target = team_target(&exemption(
        "RiskAccepted",
        Some("db"),
        "2026-12-27T00:00:00Z",
    ));
    let e = eval(
        &target,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    let text = exposition(&[series(&e, "team-a", "team-a")], ActionSeries::All);
    let all = samples(&text);
    let t = [("namespace", "team-a"), ("target", "team-a")];
    assert_eq!(value(&all, "securescore_score", &t), Some(6.0), "{text}");
    assert_eq!(value(&all, "securescore_max_score", &t), Some(9.0));
    let ratio = value(&all, "securescore_ratio", &t).expect("ratio");
    let percentage = e.status.percentage.expect("status percentage");
    assert_eq!(percentage, 66.67);
    assert!(
        (ratio - percentage / 100.0).abs() <= 0.00005,
        "ratio {ratio} vs percentage {percentage}"
    );
    assert_eq!(ratio, 6.0 / 9.0, "full precision, not the 2-decimal status");
    assert_eq!(value(&all, "securescore_goal_ratio", &t), Some(0.8));
    // RiskAccepted never raises the score; it lowers what is achievable.
    assert_eq!(value(&all, "securescore_projected_score", &t), Some(6.0));
    assert_eq!(value(&all, "securescore_achievable_score", &t), Some(6.0));
    assert_eq!(
        value(&all, "securescore_evaluated_resources", &t),
        Some(3.0)
    );
    assert_eq!(value(&all, "securescore_interval_seconds", &t), Some(300.0));
    assert_eq!(
        value(&all, "securescore_last_evaluation_timestamp_seconds", &t),
        Some(1_795_780_800.0)
    );
    assert_eq!(value(&all, "securescore_degraded", &t), Some(0.0));
    let apps = [
        ("namespace", "team-a"),
        ("target", "team-a"),
        ("category", "Apps"),
    ];
    assert_eq!(value(&all, "securescore_category_score", &apps), Some(6.0));
    assert_eq!(
        value(&all, "securescore_category_max_score", &apps),
        Some(9.0)
    );
    let a = [
        ("target", "team-a"),
        ("action", "non-root"),
        ("category", "Apps"),
    ];
    assert_eq!(value(&all, "securescore_action_score", &a), Some(6.0));
    assert_eq!(value(&all, "securescore_action_max_score", &a), Some(9.0));
    let results: BTreeMap<&str, f64> = ["compliant", "noncompliant", "error", "exempt"]
        .into_iter()
        .map(|r| {
            let mut l = a.to_vec();
            l.push(("result", r));
            (r, value(&all, "securescore_action_resources", &l).expect(r))
        })
        .collect();
    assert_eq!(
        results,
        BTreeMap::from([
            ("compliant", 2.0),
            ("error", 0.0),
            ("exempt", 1.0),
            ("noncompliant", 0.0)
        ])
    );
    let states = series_of(&all, "securescore_action_state");
    assert_eq!(states.len(), 1, "only the current state: {states:?}");
    assert_eq!(states[0].labels["state"], "RiskAccepted");
    assert_eq!(states[0].value, 1.0);
    let expiry = series_of(&all, "securescore_exemption_expiry_timestamp_seconds");
    assert_eq!(expiry.len(), 1);
    assert_eq!(expiry[0].labels["exemption"], "ex-riskaccepted");
    assert_eq!(expiry[0].labels["action"], "non-root");
    assert_eq!(expiry[0].labels["resolution"], "RiskAccepted");
    assert_eq!(
        expiry[0].value,
        common::ts("2026-12-27T00:00:00Z").as_second() as f64
    );
    // Process metrics are there too, and typed as the names say.
    let types = families(&text);
    assert_eq!(types["securescore_evaluations_total"], "counter");
    assert_eq!(types["securescore_reconcile_errors_total"], "counter");
    assert_eq!(
        types["securescore_evaluation_duration_seconds"],
        "histogram"
    );
    assert_eq!(types["securescore_build_info"], "gauge");
    assert_eq!(
        value(
            &all,
            "securescore_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(value(&all, "securescore_leader", &[]), Some(1.0));
    // Labels are small fixed sets: never a resource name.
    for s in &all {
        for v in s.labels.values() {
            assert!(
                !["web", "api", "db"].contains(&v.as_str()),
                "resource name in a label: {s:?}"
            );
        }
    }
}

#[test]
fn a_target_with_nothing_applicable_has_no_ratio_and_a_missing_goal_no_goal_ratio() {
    let target = team_target("");
    let e = eval(
        &target,
        &[non_root_action("non-root", 9, "Proportional")],
        &common::inventory(vec![]),
    );
    let mut s = series(&e, "team-a", "team-a");
    s.goal = None;
    let all = samples(&exposition(&[s], ActionSeries::All));
    assert!(
        series_of(&all, "securescore_ratio").is_empty(),
        "absent, not 0"
    );
    assert!(series_of(&all, "securescore_goal_ratio").is_empty());
    assert_eq!(
        value(&all, "securescore_max_score", &[("target", "team-a")]),
        Some(0.0)
    );
    let state = series_of(&all, "securescore_action_state");
    assert_eq!(state[0].labels["state"], "NotApplicable");
    assert_eq!(
        value(
            &all,
            "securescore_action_max_score",
            &[("action", "non-root")]
        ),
        Some(0.0)
    );
}

#[test]
fn metrics_actions_bounds_the_per_action_series() {
    let target = team_target("");
    let actions = [
        non_root_action("non-root", 9, "Proportional"),
        non_root_action("done", 2, "Proportional"),
    ];
    // `done` has nothing to gain once every pod is fixed; `non-root` still has 3 points.
    let e = eval(&target, &actions[..1], &three_pods());
    let fixed = eval(
        &target,
        &actions[1..],
        &common::inventory(vec![common::pod("team-a", "web", true)]),
    );
    let targets = [series(&e, "team-a", "a"), series(&fixed, "team-a", "b")];
    let per_action = |mode| {
        let all = samples(&exposition(&targets, mode));
        let mut names: BTreeSet<(String, String)> = BTreeSet::new();
        for s in all
            .iter()
            .filter(|s| s.name.starts_with("securescore_action_"))
        {
            names.insert((s.labels["target"].clone(), s.labels["action"].clone()));
        }
        (names, all)
    };
    let (all_mode, _) = per_action(ActionSeries::All);
    assert_eq!(
        all_mode,
        BTreeSet::from([("a".into(), "non-root".into()), ("b".into(), "done".into())])
    );
    let (nonzero, _) = per_action(ActionSeries::Nonzero);
    assert_eq!(nonzero, BTreeSet::from([("a".into(), "non-root".into())]));
    let (none, everything) = per_action(ActionSeries::None);
    assert!(none.is_empty());
    // Target and category series stay whatever the mode.
    assert_eq!(series_of(&everything, "securescore_score").len(), 2);
    assert_eq!(
        series_of(&everything, "securescore_category_score").len(),
        2
    );
}

#[test]
fn a_deleted_target_or_action_leaves_no_stale_series() {
    let metrics = Metrics::new();
    let target = team_target("");
    let two = [
        non_root_action("non-root", 9, "Proportional"),
        non_root_action("other", 3, "Proportional"),
    ];
    let a = eval(&target, &two, &three_pods());
    let b = eval(&target, &two[..1], &three_pods());
    let before = samples(&metrics.render(
        true,
        &[series(&a, "team-a", "a"), series(&a, "team-b", "b")],
        ActionSeries::All,
    ));
    assert!(
        series_of(&before, "securescore_score")
            .iter()
            .any(|s| s.labels["target"] == "b")
    );
    assert!(
        before
            .iter()
            .any(|s| s.labels.get("action").map(String::as_str) == Some("other"))
    );
    // The same registry, the next scrape: target b deleted, action `other` deleted.
    let after = samples(&metrics.render(true, &[series(&b, "team-a", "a")], ActionSeries::All));
    assert!(
        after
            .iter()
            .all(|s| s.labels.get("target").map(String::as_str) != Some("b")),
        "target b left series behind"
    );
    assert!(
        after
            .iter()
            .all(|s| s.labels.get("action").map(String::as_str) != Some("other")),
        "action `other` left series behind"
    );
    assert_eq!(series_of(&after, "securescore_score").len(), 1);
}

#[test]
fn a_standby_exports_process_metrics_only() {
    let target = team_target("");
    let e = eval(
        &target,
        &[non_root_action("non-root", 9, "Proportional")],
        &three_pods(),
    );
    let text = Metrics::new().render(false, &[series(&e, "team-a", "a")], ActionSeries::All);
    let all = samples(&text);
    assert!(
        all.iter().all(|s| !s.labels.contains_key("target")),
        "no per-target series on a standby: {text}"
    );
    assert_eq!(value(&all, "securescore_leader", &[]), Some(0.0));
    assert!(value(&all, "securescore_build_info", &[]).is_some());
    assert_eq!(
        value(
            &all,
            "securescore_evaluations_total",
            &[("result", "success")]
        ),
        Some(0.0),
        "counters start at zero so rate() and increase() see the first event"
    );
    assert_eq!(
        value(
            &all,
            "securescore_reconcile_errors_total",
            &[("kind", "SecureScoreTarget"), ("reason", "ApiError")]
        ),
        Some(0.0)
    );
}

#[test]
fn counters_and_the_histogram_count_what_the_controller_reports() {
    let m = Metrics::new();
    m.evaluation("success", 0.02);
    m.evaluation("degraded", 3.0);
    m.reconcile_error("SecureScoreTarget", "Conflict");
    let all = samples(&m.render(false, &[], ActionSeries::All));
    assert_eq!(
        value(
            &all,
            "securescore_evaluations_total",
            &[("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &all,
            "securescore_evaluations_total",
            &[("result", "degraded")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &all,
            "securescore_reconcile_errors_total",
            &[("kind", "SecureScoreTarget"), ("reason", "Conflict")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&all, "securescore_evaluation_duration_seconds_count", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &all,
            "securescore_evaluation_duration_seconds_bucket",
            &[("le", "0.05")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&all, "securescore_evaluation_duration_seconds_sum", &[]),
        Some(3.02)
    );
}

// ---------------------------------------------------------------------------------------------
// Tools

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(tool("promtool", "prometheus"))
        .args(args)
        .current_dir(REPO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to promtool");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let (ok, out) = promtool(&["check", "rules", RULES], None);
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
    let tests: Vec<String> = std::fs::read_dir(Path::new(REPO).join("tests/prometheus"))
        .expect("tests/prometheus")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(!tests.is_empty(), "no rule unit tests in tests/prometheus");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let (ok, out) = promtool(&args, None);
    assert!(ok, "promtool test rules:\n{out}");
    // Every alert of the rules file is exercised by some unit test.
    let rules_text = std::fs::read_to_string(Path::new(REPO).join(RULES)).expect("rules");
    let tests_text: String = tests
        .iter()
        .map(|t| std::fs::read_to_string(t).expect("test file"))
        .collect();
    for alert in alert_names(&rules_text) {
        assert!(
            tests_text.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "no unit test fires {alert}"
        );
        assert!(
            tests_text.contains(&format!("alertname: {alert}\n        exp_alerts: []")),
            "no unit test keeps {alert} silent"
        );
    }
}

fn alert_names(rules: &str) -> Vec<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(rules).expect("rules YAML");
    doc["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_alert_has_severity_summary_description_with_numbers_and_a_runbook_anchor() {
    let rules = std::fs::read_to_string(Path::new(REPO).join(RULES)).expect("rules");
    let docs = std::fs::read_to_string(Path::new(REPO).join("docs/metrics.md")).expect("docs");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rules).expect("rules YAML");
    let mut n = 0;
    for rule in doc["groups"][0]["rules"].as_sequence().expect("rules") {
        let alert = rule["alert"].as_str().expect("alert name");
        n += 1;
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["info", "warning", "critical"].contains(&severity),
            "{alert}"
        );
        let a = &rule["annotations"];
        assert!(
            a["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{alert}"
        );
        let description = a["description"].as_str().expect("description");
        assert!(description.contains("{{ $value"), "{alert}: the number");
        let runbook = a["runbook_url"].as_str().expect("runbook_url");
        let anchor = runbook
            .split_once("docs/metrics.md#")
            .map(|(_, a)| a)
            .unwrap_or_else(|| panic!("{alert}: runbook_url into docs/metrics.md"));
        assert_eq!(anchor, alert.to_lowercase());
        assert!(
            docs.contains(&format!("### {alert}\n")),
            "docs/metrics.md has no runbook section for {alert}"
        );
    }
    assert_eq!(n, 10);
}

// ---------------------------------------------------------------------------------------------
// The operator, for real scrapes

fn pod(server: &ApiServer, name: &str, non_root: bool) {
    server.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": {"app": name}},
        "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
    }));
}

fn action(name: &str, category: &str, points: u32, expression: &str) -> Value {
    json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": name},
        "spec": {"title": name, "category": category, "maxScore": points,
            "check": {"podSpec": true, "validations": [{"expression": expression, "message": "not compliant"}]}}
    })
}

/// team-a: pods web and api run as non-root, db as root; `non-root` (Apps, 9 points) scores
/// 6; `no-token` (Identity, 4 points) scores 0 and is RiskAccepted for 30 days.
/// The target `team`: score 6 of 13 (46.15%), goal 80.
fn scenario(server: &ApiServer) {
    for ns in ["securescore-system", "team-a"] {
        server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    pod(server, "web", true);
    pod(server, "api", true);
    pod(server, "db", false);
    server
        .create(action(
            "non-root",
            "Apps",
            9,
            "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot",
        ))
        .expect("action created");
    server
        .create(action(
            "no-token",
            "Identity",
            4,
            "has(podSpec.automountServiceAccountToken) && podSpec.automountServiceAccountToken == false",
        ))
        .expect("action created");
    // A task (preview: the scores above are unchanged), attested a day ago.
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
            "metadata": {"name": "restore-test"},
            "spec": {"title": "Test a restore", "category": "Data", "maxScore": 3, "preview": true,
                "check": {"scoring": "Binary", "attestation": {"every": "90d"}}}
        }))
        .expect("task created");
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let attested = jiff::Timestamp::from_second(now.as_second() - 86_400).expect("a time");
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "team", "namespace": "team-a"},
            "spec": {"goal": 80, "interval": "1h",
                "attestations": [{"action": "restore-test", "attestedBy": "sre",
                    "attestedAt": attested.to_string(), "evidence": "https://wiki/restore"}],
                "exemptions": [{
                "name": "token-accepted", "action": "no-token", "resolution": "RiskAccepted",
                "owner": "team-a", "reason": "legacy clients read the token", "ticket": "SEC-1",
                "approvedAt": (now - day).to_string(), "expiresAt": (now + day * 30).to_string()}]}
        }))
        .expect("target created");
}

fn status_percentage(server: &ApiServer) -> Option<f64> {
    server
        .status(SST.0, SST.1, "team-a", "team")?
        .get("percentage")?
        .as_f64()
}

/// The metric names a PromQL expression uses (identifiers starting with `securescore_`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        let starts = expr[i..].starts_with("securescore_") && (i == 0 || !ident(bytes[i - 1]));
        if starts {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(expr.len(), |e| i + e);
            names.insert(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// Every PromQL expression of the dashboard (panel targets and template variables).
fn dashboard_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(REPO).join(DASHBOARD)).expect("dashboard");
    let d: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if let (true, Some(s)) = (k == "expr" || k == "definition", x.as_str()) {
                        out.push(s.to_string());
                    }
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&d, &mut out);
    out
}

fn rule_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(REPO).join(RULES)).expect("rules");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("rules YAML");
    doc["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .map(|r| r["expr"].as_str().expect("expr").to_string())
        .collect()
}

#[test]
fn the_tokenizer_finds_metric_names_in_promql() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(securescore_evaluation_duration_seconds_bucket[5m]))) / my_securescore_x + securescore_ratio{target=\"securescore_not\"}"
        ),
        BTreeSet::from([
            "securescore_evaluation_duration_seconds_bucket".to_string(),
            "securescore_ratio".to_string(),
            "securescore_not".to_string(),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scrape_passes_promtool_has_every_metric_and_drops_deleted_objects() {
    let server = ApiServer::start().await;
    scenario(&server);
    // A second target in the SecurityControls model, so that the control series exist too.
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "SecurityControl",
            "metadata": {"name": "workloads"},
            "spec": {"title": "Workloads", "maxScore": 8, "actions": ["non-root"]}
        }))
        .expect("control created");
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "team-controls", "namespace": "team-a"},
            "spec": {"model": "SecurityControls", "interval": "1h"}
        }))
        .expect("controls target created");
    let op = Operator::start(&server, &[]);
    eventually("the target's status", WAIT, || status_percentage(&server)).await;
    let body = eventually(
        "per-action and per-control series in a scrape",
        WAIT,
        || {
            let b = op.scrape();
            (b.contains("securescore_action_state{")
                && b.contains("securescore_exemption_expiry")
                && b.contains("securescore_attestation_due_timestamp_seconds{")
                && b.contains("securescore_control_score{"))
            .then_some(b)
        },
    )
    .await;

    let (ok, out) = promtool(&["check", "metrics"], Some(&body));
    assert!(ok, "promtool check metrics:\n{out}\n--- scrape:\n{body}");

    let types = families(&body);
    for name in SPEC_METRICS {
        let family = name.strip_suffix("_bucket").unwrap_or(name);
        assert!(
            types.contains_key(family),
            "{name} missing from a real scrape:\n{body}"
        );
    }
    // Every name the dashboard and the alert rules use exists (histograms by their family).
    let mut used = BTreeSet::new();
    for expr in dashboard_expressions()
        .iter()
        .chain(rule_expressions().iter())
    {
        used.extend(metric_names(expr));
    }
    assert!(
        used.len() >= 15,
        "the tokenizer found too few names: {used:?}"
    );
    for name in &used {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|base| types.get(*base).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "`{name}` (dashboard or rules) is not in a real scrape"
        );
    }
    let all = samples(&body);
    let t = [("namespace", "team-a"), ("target", "team")];
    let pct = status_percentage(&server).expect("percentage");
    let ratio = value(&all, "securescore_ratio", &t).expect("ratio");
    assert!((ratio - pct / 100.0).abs() <= 0.00005, "{ratio} vs {pct}");
    assert_eq!(value(&all, "securescore_leader", &[]), Some(1.0));
    // The task's due time is its attestation + 90 days, as its status row says.
    let status = server
        .status(SST.0, SST.1, "team-a", "team")
        .expect("status");
    let row = status["actions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "restore-test"))
        .expect("task row");
    let attested: jiff::Timestamp = row["attestation"]["attestedAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("attestedAt");
    let due: jiff::Timestamp = row["attestation"]["dueAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("dueAt");
    assert_eq!(due.as_second() - attested.as_second(), 90 * 86_400);
    assert_eq!(
        value(
            &all,
            "securescore_attestation_due_timestamp_seconds",
            &[
                ("namespace", "team-a"),
                ("target", "team"),
                ("action", "restore-test")
            ]
        ),
        Some(due.as_second() as f64)
    );
    for s in &all {
        for v in s.labels.values() {
            assert!(
                !["web", "api", "db"].contains(&v.as_str()),
                "resource name in {s:?}"
            );
        }
    }

    // Deleting an action removes its series; deleting the target removes all of its series.
    server.delete(
        "securescore.io/v1alpha1",
        "improvementactions",
        "",
        "no-token",
    );
    eventually("the no-token series gone", WAIT, || {
        let b = op.scrape();
        (!b.contains("action=\"no-token\"") && b.contains("action=\"non-root\"")).then_some(())
    })
    .await;
    server.delete(SST.0, SST.1, "team-a", "team");
    let body = eventually("the target's series gone", WAIT, || {
        let b = op.scrape();
        (!b.contains("target=\"team\"")).then_some(b)
    })
    .await;
    assert!(
        body.contains("securescore_build_info"),
        "process metrics stay: {body}\n{}",
        op.logs()
    );
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_operator_and_sees_the_score_rise_after_a_fix() {
    let _ = tool("prometheus", "prometheus");
    let server = ApiServer::start().await;
    scenario(&server);
    let op = Operator::start(&server, &[]);
    let before = eventually("the target's status", WAIT, || status_percentage(&server)).await;
    let prom = Prometheus::start(op.metrics, &[&Path::new(REPO).join(RULES)]);
    let ratio_query = r#"securescore_ratio{job="securescore",namespace="team-a",target="team"}"#;
    let scraped = eventually("Prometheus has the ratio", WAIT, || prom.one(ratio_query)).await;
    assert!(
        (scraped - before / 100.0).abs() <= 0.00005,
        "Prometheus has {scraped}, status says {before}%\n{}",
        prom.logs()
    );
    assert_eq!(before, 46.15, "6 of 13 points");

    // The rules load and evaluate against the real series: the goal is missed (pending, 15m).
    eventually("SecureScoreGoalMissed pending", WAIT, || {
        prom.one(r#"ALERTS{alertname="SecureScoreGoalMissed",alertstate="pending",namespace="team-a",target="team"}"#)
    })
    .await;
    let rules = prom.query_rules();
    assert_eq!(rules.len(), 10, "{rules:?}");
    for (name, health) in &rules {
        assert_eq!(health, "ok", "rule {name} evaluates with health {health}");
    }
    // Every dashboard expression is valid PromQL for this server (Grafana variables filled in).
    for expr in dashboard_expressions() {
        let filled = expr
            .replace("$__rate_interval", "5s")
            .replace("$__interval", "1m")
            .replace("$namespace", "team-a")
            .replace("$target", "team");
        let filled = if let Some(inner) = filled
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
        {
            inner.rsplit_once(',').map_or(inner, |(m, _)| m).to_string()
        } else {
            filled
        };
        let answer = prom.query(&filled).expect("Prometheus answers");
        assert_eq!(answer["status"], "success", "{filled}: {answer}");
    }
    // The ranked table and the exemptions table have rows from the real series.
    let table = prom
        .query(r#"sort_desc(max by (action, category, state) ((securescore_action_max_score{namespace="team-a",target="team"} - securescore_action_score{namespace="team-a",target="team"}) * ignoring (state) group_left (state) securescore_action_state{namespace="team-a",target="team"}))"#)
        .expect("answer");
    let rows = table["data"]["result"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{table}");
    assert_eq!(
        rows[0]["metric"]["action"], "no-token",
        "4 points to gain rank first"
    );
    assert_eq!(rows[0]["metric"]["state"], "RiskAccepted");
    assert_eq!(rows[1]["metric"]["action"], "non-root");
    assert_eq!(rows[1]["metric"]["state"], "ToAddress");
    assert_eq!(rows[2]["metric"]["action"], "restore-test");
    assert_eq!(rows[2]["metric"]["state"], "Completed");
    assert_eq!(
        rows[2]["value"][1], "0",
        "an attested task has nothing to gain"
    );
    // The task attested a day ago is due in 89 days: not due soon, no alert.
    let due_in = prom
        .one(r#"max by (action) (securescore_attestation_due_timestamp_seconds{namespace="team-a",target="team"}) - time()"#)
        .expect("the task's time left");
    assert!(
        due_in > 88.0 * 86400.0 && due_in <= 89.0 * 86400.0,
        "{due_in}"
    );
    let left = prom
        .one(r#"max by (exemption, action, resolution) (securescore_exemption_expiry_timestamp_seconds{namespace="team-a",target="team"}) - time()"#)
        .expect("the exemption's time left");
    assert!(left > 29.0 * 86400.0 && left <= 30.0 * 86400.0, "{left}");

    // Fix the workload: the scraped score rises to 9 of 13.
    pod(&server, "db", true);
    let after = eventually("Prometheus sees the score rise", WAIT, || {
        prom.one(r#"securescore_score{namespace="team-a",target="team"}"#)
            .filter(|s| *s > 6.0)
    })
    .await;
    assert_eq!(after, 9.0);
    let pct = eventually("status after the fix", WAIT, || {
        status_percentage(&server).filter(|p| *p > before)
    })
    .await;
    let ratio = eventually("Prometheus has the new ratio", WAIT, || {
        prom.one(ratio_query).filter(|r| *r > scraped)
    })
    .await;
    assert!((ratio - pct / 100.0).abs() <= 0.00005, "{ratio} vs {pct}");
    drop(prom);
    drop(op);
}

impl Prometheus {
    /// `/api/v1/rules`: (rule name, health) of every rule.
    fn query_rules(&self) -> Vec<(String, String)> {
        let (_, body) = http_get(self.port, "/api/v1/rules").expect("/api/v1/rules");
        let v: Value = serde_json::from_str(&body).expect("rules JSON");
        v["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r["health"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The chart

#[test]
fn the_chart_renders_these_rules_and_this_dashboard() {
    let chart = Path::new(REPO).join("charts/securescore");
    let out = Command::new(tool("helm", "kubectl-and-helm"))
        .args(["template", "securescore"])
        .arg(&chart)
        .args([
            "--namespace",
            "securescore-system",
            "--set",
            "prometheusRule.enabled=true",
            "--set",
            "grafanaDashboard.enabled=true",
        ])
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .filter(|d: &serde_yaml_ng::Value| !d.is_null())
        .collect();
    let kind = |k: &str| -> Vec<&serde_yaml_ng::Value> {
        docs.iter()
            .filter(|d| d["kind"].as_str() == Some(k))
            .collect()
    };
    let rule = kind("PrometheusRule");
    assert_eq!(rule.len(), 1);
    let file: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(Path::new(REPO).join(RULES)).expect("rules"),
    )
    .expect("rules YAML");
    assert_eq!(
        rule[0]["spec"]["groups"], file["groups"],
        "the groups, unchanged"
    );
    let dashboard = kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1"))
        .expect("the dashboard ConfigMap");
    let rendered: Value = serde_json::from_str(
        dashboard["data"]["securescore.json"]
            .as_str()
            .expect("data"),
    )
    .expect("rendered dashboard is JSON");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REPO).join(DASHBOARD)).expect("dashboard"),
    )
    .expect("dashboard JSON");
    assert_eq!(rendered, file);
}

#[test]
fn the_dashboard_is_stable_and_has_the_documented_panels_and_variables() {
    let text = std::fs::read_to_string(Path::new(REPO).join(DASHBOARD)).expect("dashboard");
    let d: Value = serde_json::from_str(&text).expect("dashboard JSON");
    assert_eq!(
        d["uid"], "securescore",
        "the uid stays stable: links depend on it"
    );
    assert_eq!(d["title"], "Secure Score");
    assert!(
        d.get("id").is_none_or(Value::is_null),
        "no instance id in the file"
    );
    let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| (v["name"].as_str().expect("name"), v))
        .collect();
    assert_eq!(vars["datasource"]["type"], "datasource");
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for v in ["namespace", "target"] {
        assert_eq!(vars[v]["type"], "query");
        assert!(
            vars[v]["definition"]
                .as_str()
                .is_some_and(|q| q.starts_with("label_values(securescore_score")),
            "{v}"
        );
    }
    let docs = std::fs::read_to_string(Path::new(REPO).join("docs/metrics.md")).expect("docs");
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "unique ids"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let title = p["title"].as_str().expect("title");
        assert!(
            docs.contains(&format!("**{title}**")),
            "docs/metrics.md does not describe the panel {title}"
        );
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

/// `securescore scan --format prometheus` writes the operator's per-target series for the same
/// objects: promtool accepts them, and the ratio equals the JSON status' percentage ÷ 100.
#[test]
fn scan_writes_the_same_series_in_the_prometheus_format() {
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_securescore"))
            .args([
                "scan",
                "examples/shop",
                "examples/targets",
                "examples/actions",
                "--format",
                format,
            ])
            .args(["--now", "2026-11-27T00:00:00Z"])
            .current_dir(REPO)
            .output()
            .expect("securescore runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let text = run("prometheus");
    let (ok, report) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics: {report}\n{text}");
    let list: Value = serde_json::from_str(&run("json")).unwrap();
    for item in list["items"].as_array().unwrap() {
        let ns = item["metadata"]["namespace"].as_str().unwrap();
        let name = item["metadata"]["name"].as_str().unwrap();
        let pct = item["status"]["percentage"].as_f64().unwrap();
        let prefix = format!("securescore_ratio{{namespace=\"{ns}\",target=\"{name}\"}} ");
        let ratio: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .parse()
            .unwrap();
        assert!(
            (ratio - pct / 100.0).abs() <= 0.00005,
            "{ns}/{name}: {ratio} vs {pct}"
        );
    }
    assert!(
        text.contains("securescore_action_state{"),
        "per-action series too"
    );
}

/// `(compliant, noncompliant, error, exempt)` of one action in a scrape of target `team`.
fn scraped_results(all: &[Sample], action: &str) -> Option<[u64; 4]> {
    let mut out = [0u64; 4];
    for (i, result) in ["compliant", "noncompliant", "error", "exempt"]
        .iter()
        .enumerate()
    {
        out[i] = value(
            all,
            "securescore_action_resources",
            &[("target", "team"), ("action", action), ("result", result)],
        )? as u64;
    }
    Some(out)
}

/// Every action row of the status against its scraped `action_resources{result}` values:
/// compliant and exempt equal, noncompliant + error = the row's nonCompliant, error at most the
/// row's errors, and the four add up to the row's applicable resources. Returns the mismatches.
fn rows_against_scrape(status: &Value, scrape: &str) -> Vec<String> {
    let all = samples(scrape);
    let mut wrong = Vec::new();
    for row in status["actions"].as_array().into_iter().flatten() {
        let name = row["name"].as_str().unwrap_or_default();
        let n = |k: &str| row[k].as_u64().unwrap_or(0);
        let Some([compliant, noncompliant, error, exempt]) = scraped_results(&all, name) else {
            wrong.push(format!("{name}: no action_resources series"));
            continue;
        };
        let ok = compliant == n("compliant")
            && noncompliant + error == n("nonCompliant")
            && error <= n("errors")
            && exempt == n("exempt")
            && compliant + noncompliant + error + exempt == n("applicable");
        if !ok {
            wrong.push(format!(
                "{name}: scraped compliant={compliant} noncompliant={noncompliant} error={error} exempt={exempt}, status row {row}"
            ));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_actions_scraped_resource_counts_equal_its_status_row() {
    let server = ApiServer::start().await;
    scenario(&server);
    // A third action that cannot be evaluated on the one-container pods (index out of range):
    // every applicable pod is an Error.
    server
        .create(action(
            "second-container",
            "Apps",
            2,
            "podSpec.containers[1].name != ''",
        ))
        .expect("action created");
    let op = Operator::start(&server, &[]);
    let expected = [
        ("non-root", [2, 1, 0, 0]),
        ("no-token", [0, 0, 0, 3]),
        ("second-container", [0, 0, 3, 0]),
        // The task's one resource, the target, is compliant (attested a day ago).
        ("restore-test", [1, 0, 0, 0]),
    ];
    let check = |expected: &[(&str, [u64; 4])]| {
        let status = server.status(SST.0, SST.1, "team-a", "team")?;
        let scrape = op.scrape();
        let all = samples(&scrape);
        let values_match = expected
            .iter()
            .all(|(a, want)| scraped_results(&all, a) == Some(*want));
        (values_match && status["actions"].as_array()?.len() == expected.len())
            .then_some((status, scrape))
    };
    let (status, scrape) = eventually("the four actions' resource series", WAIT, || {
        check(&expected)
    })
    .await;
    let wrong = rows_against_scrape(&status, &scrape);
    assert!(wrong.is_empty(), "{wrong:#?}\n{}", op.logs());

    // A change (db fixed, one more root pod) re-scores through the watch: the series follow.
    pod(&server, "db", true);
    pod(&server, "batch", false);
    let expected = [
        ("non-root", [3, 1, 0, 0]),
        ("no-token", [0, 0, 0, 4]),
        ("second-container", [0, 0, 4, 0]),
        ("restore-test", [1, 0, 0, 0]),
    ];
    let (status, scrape) =
        eventually("the series after the change", WAIT, || check(&expected)).await;
    let wrong = rows_against_scrape(&status, &scrape);
    assert!(wrong.is_empty(), "{wrong:#?}\n{}", op.logs());
}
