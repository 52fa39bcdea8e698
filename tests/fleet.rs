//! The fleet view: the recording rules for fleet KPIs (charts/securescore/files/
//! prometheus-fleet-rules.yaml) and the fleet overview dashboard (files/grafana-fleet-dashboard.json).
//! `promtool test rules` proves the rules on hand-computed series (tests/prometheus/fleet_test.yaml);
//! the dashboard's own queries, variables filled in as Grafana's "All" does, are run by promtool on
//! seven days of synthetic series with hand-computed answers; a real Prometheus scrapes the series
//! `securescore scan --format prometheus` writes for three targets and records the KPIs the scan's
//! JSON implies; the chart renders both. Needs `prometheus`, `promtool`
//! (scripts/install/prometheus.sh) and `helm` (scripts/install/kubectl-and-helm.sh).

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::apiserver::eventually;
use support::prometheus::Prometheus;
use support::tools::tool;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const FLEET_RULES: &str = "charts/securescore/files/prometheus-fleet-rules.yaml";
const FLEET_DASHBOARD: &str = "charts/securescore/files/grafana-fleet-dashboard.json";
const WAIT: Duration = Duration::from_secs(60);

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new(tool("promtool", "prometheus"))
        .args(args)
        .current_dir(REPO)
        .output()
        .expect("promtool runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(Path::new(REPO).join(FLEET_DASHBOARD)).expect("dashboard");
    serde_json::from_str(&text).expect("dashboard JSON")
}

/// The queries of the panel titled `title`, by refId.
fn panel_queries(d: &Value, title: &str) -> BTreeMap<String, String> {
    let panel = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title}"));
    panel["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["refId"].as_str().expect("refId").to_string(),
                t["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect()
}

/// Every panel query of the dashboard.
fn all_queries(d: &Value) -> Vec<String> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// A query as Grafana sends it with both variables on "All" (allValue `.*`), or on one value.
fn filled(expr: &str, namespace: &str, target: &str) -> String {
    expr.replace("$namespace", namespace)
        .replace("$target", target)
}

#[test]
fn fleet_recording_rules_pass_promtool_and_their_unit_tests() {
    let (ok, out) = promtool(&["check", "rules", FLEET_RULES]);
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("5 rules found"), "{out}");
    let (ok, out) = promtool(&["test", "rules", "tests/prometheus/fleet_test.yaml"]);
    assert!(ok, "promtool test rules:\n{out}");
}

/// Seven days and one hour of hourly series (a failover moves team-a to another pod midway):
///   team-a  0.5 → 0.875 at 168h, goal 0.75: met, change +0.375
///   team-b  0.875 → 0.5 at 168h, goal 0.75: missed, change −0.375 (the only regression)
///   team-c  0.75 throughout, no goal: change 0
///   team-d  0.25 from 166h only, no goal: no value 7 days ago, no change
/// At 169h: 4 targets; median of (0.25, 0.5, 0.75, 0.875) = 0.625; goal met by 1 of 2.
#[test]
fn the_dashboard_queries_give_the_hand_computed_fleet_values() {
    let d = dashboard();
    let all = |e: &str| filled(e, ".*", ".*");
    let series = |ns: &str, pod: &str, metric: &str, values: &str| json!({"series": format!("{metric}{{namespace=\"{ns}\",target=\"team\",pod=\"{pod}\"}}"), "values": values});
    let input = vec![
        series("team-a", "securescore-0", "securescore_ratio", "0.5x99"),
        series(
            "team-a",
            "securescore-1",
            "securescore_ratio",
            "_x100 0.5x66 0.875x2",
        ),
        series(
            "team-a",
            "securescore-0",
            "securescore_goal_ratio",
            "0.75x99",
        ),
        series(
            "team-a",
            "securescore-1",
            "securescore_goal_ratio",
            "_x100 0.75x69",
        ),
        series(
            "team-b",
            "securescore-0",
            "securescore_ratio",
            "0.875x167 0.5x2",
        ),
        series(
            "team-b",
            "securescore-0",
            "securescore_goal_ratio",
            "0.75x169",
        ),
        series("team-c", "securescore-0", "securescore_ratio", "0.75x169"),
        series(
            "team-d",
            "securescore-0",
            "securescore_ratio",
            "_x166 0.25x3",
        ),
        // Scored only: the variable's label_values() reads securescore_score.
        series("team-d", "securescore-0", "securescore_score", "_x166 1x3"),
    ];
    let one = |v: f64| json!([{"labels": "{}", "value": v}]);
    let per_target = |rows: &[(&str, f64)]| {
        Value::Array(
            rows.iter()
                .map(|(ns, v)| json!({"labels": format!("{{namespace=\"{ns}\",target=\"team\"}}"), "value": v}))
                .collect(),
        )
    };
    let table = panel_queries(&d, "All targets");
    let regressions = panel_queries(&d, "Biggest regressions (7 days)");
    let kpis = panel_queries(&d, "Fleet KPIs over time");
    let mut tests: Vec<(String, Value)> = vec![
        (all(&panel_queries(&d, "Targets")["A"]), one(4.0)),
        (all(&panel_queries(&d, "Median score")["A"]), one(0.625)),
        (all(&panel_queries(&d, "Meeting their goal")["A"]), one(0.5)),
        (all(&panel_queries(&d, "Missing their goal")["A"]), one(1.0)),
        (
            all(&table["A"]),
            per_target(&[
                ("team-a", 0.875),
                ("team-b", 0.5),
                ("team-c", 0.75),
                ("team-d", 0.25),
            ]),
        ),
        (
            all(&table["B"]),
            per_target(&[("team-a", 0.75), ("team-b", 0.75)]),
        ),
        (
            all(&table["C"]),
            per_target(&[("team-a", 1.0), ("team-b", 0.0)]),
        ),
        (
            all(&table["D"]),
            per_target(&[("team-a", 0.375), ("team-b", -0.375), ("team-c", 0.0)]),
        ),
        (all(&regressions["A"]), per_target(&[("team-b", -0.375)])),
        (all(&kpis["A"]), one(0.625)),
        (all(&kpis["B"]), one(0.5)),
        // One namespace selected: the panels follow the variable.
        (
            filled(&panel_queries(&d, "Targets")["A"], "team-b", ".*"),
            one(1.0),
        ),
        (
            filled(
                &panel_queries(&d, "Meeting their goal")["A"],
                "team-b",
                ".*",
            ),
            one(0.0),
        ),
    ];
    // The "Missing their goal" stat says 0, not "No data", when every target meets its goal.
    tests.push((
        filled(
            &panel_queries(&d, "Missing their goal")["A"],
            "team-a",
            ".*",
        ),
        one(0.0),
    ));
    let unit = json!({
        "evaluation_interval": "1h",
        "tests": [{
            "name": "the fleet dashboard's queries",
            "interval": "1h",
            "input_series": input,
            "promql_expr_test": tests.iter().map(|(expr, samples)| json!({
                "expr": expr, "eval_time": "169h", "exp_samples": samples
            })).collect::<Vec<_>>(),
        }]
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("fleet_dashboard_test.yaml");
    // JSON is YAML.
    std::fs::write(&file, serde_json::to_string_pretty(&unit).unwrap()).expect("test file");
    let (ok, out) = promtool(&["test", "rules", file.to_str().unwrap()]);
    assert!(ok, "promtool test rules:\n{out}");
}

/// Serves `body` as a Prometheus text exposition on a free loopback port until the test ends.
fn serve_metrics(body: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn scan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("scan")
        .args(args)
        .args(["--now", "2026-11-27T00:00:00Z"])
        .current_dir(REPO)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("securescore runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The examples' two targets plus a strict one (goal 99) over the shop namespace: a real
/// Prometheus scrapes their series, and the recorded KPIs equal what the scan's JSON implies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_records_the_fleet_kpis_of_scanned_targets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let strict = dir.path().join("strict.yaml");
    std::fs::write(
        &strict,
        "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata:\n  name: strict\n  namespace: shop\nspec:\n  goal: 99\n",
    )
    .expect("strict target");
    let inputs = [
        "examples/shop",
        "examples/targets",
        "examples/actions",
        strict.to_str().unwrap(),
    ];
    let json_text = scan(&[&inputs[..], &["--format", "json"]].concat());
    let list: Value = serde_json::from_str(&json_text).expect("JSON");
    let mut ratios = Vec::new();
    let (mut with_goal, mut met) = (0, 0);
    for item in list["items"].as_array().expect("items") {
        let ratio = item["status"]["percentage"].as_f64().expect("percentage") / 100.0;
        ratios.push(ratio);
        if let Some(goal) = item["spec"]["goal"].as_f64() {
            with_goal += 1;
            if ratio >= goal / 100.0 {
                met += 1;
            }
        }
    }
    assert_eq!(ratios.len(), 3, "three targets: {json_text}");
    assert_eq!((with_goal, met), (3, 2), "strict misses its goal of 99");
    ratios.sort_by(f64::total_cmp);
    let median = ratios[1];

    let metrics = serve_metrics(scan(&[&inputs[..], &["--format", "prometheus"]].concat()));
    let prom = Prometheus::start(metrics, &[&Path::new(REPO).join(FLEET_RULES)]);
    let count = eventually("Prometheus records the fleet's targets", WAIT, || {
        prom.one("securescore:fleet_targets:count")
    })
    .await;
    assert_eq!(count, 3.0, "{}", prom.logs());
    let share = eventually("the goal share", WAIT, || {
        prom.one("securescore:fleet_goal_met:ratio")
    })
    .await;
    assert!((share - 2.0 / 3.0).abs() < 1e-9, "{share}");
    let recorded_median = eventually("the median", WAIT, || {
        prom.one("securescore:fleet_ratio:median")
    })
    .await;
    assert!(
        (recorded_median - median).abs() <= 0.00005,
        "{recorded_median} vs {median}"
    );

    // Every dashboard query is valid PromQL for this server, with "All" or one value selected,
    // and the per-target table lists the three targets.
    let d = dashboard();
    for expr in all_queries(&d) {
        for (ns, target) in [(".*", ".*"), ("shop", "strict")] {
            let q = filled(&expr, ns, target);
            let answer = prom.query(&q).expect("Prometheus answers");
            assert_eq!(answer["status"], "success", "{q}: {answer}");
        }
    }
    let rows = prom
        .query(&filled(&panel_queries(&d, "All targets")["A"], ".*", ".*"))
        .expect("answer");
    assert_eq!(
        rows["data"]["result"].as_array().map(Vec::len),
        Some(3),
        "{rows}"
    );
    let strict_met = prom
        .one(&filled(
            &panel_queries(&d, "All targets")["C"],
            "shop",
            "strict",
        ))
        .expect("goal met of strict");
    assert_eq!(strict_met, 0.0);
}

#[test]
fn the_fleet_dashboard_is_stable_filters_every_query_and_is_documented() {
    let d = dashboard();
    assert_eq!(d["uid"], "securescore-fleet", "links depend on the uid");
    assert!(d.get("id").is_none_or(Value::is_null), "no instance id");
    let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| (v["name"].as_str().expect("name"), v))
        .collect();
    assert_eq!(vars["datasource"]["query"], "prometheus");
    for v in ["namespace", "target"] {
        assert_eq!(vars[v]["includeAll"], true, "{v} has All");
        assert_eq!(vars[v]["multi"], true, "{v}");
        assert_eq!(vars[v]["allValue"], ".*", "{v}");
    }
    // Every selector of a securescore_ series honours both variables (regex match, for All and
    // multi-value selections).
    for expr in all_queries(&d) {
        for part in expr.split("securescore_").skip(1) {
            let selector = part
                .split_once('{')
                .filter(|(name, _)| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(|(_, rest)| rest.split('}').next().unwrap_or_default());
            let Some(selector) = selector else {
                panic!("{expr}: a securescore_ series without a selector")
            };
            assert!(
                selector.contains("namespace=~\"$namespace\"")
                    && selector.contains("target=~\"$target\""),
                "{expr}"
            );
        }
    }
    let docs = std::fs::read_to_string(Path::new(REPO).join("docs/metrics.md")).expect("docs");
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("title");
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
            assert!(
                docs.contains(&format!("**{title}**")),
                "docs/metrics.md does not describe the fleet panel {title}"
            );
        }
    }
    for record in [
        "securescore:fleet_targets:count",
        "securescore:fleet_goal_met:ratio",
        "securescore:fleet_ratio:median",
    ] {
        assert!(docs.contains(record), "docs/metrics.md documents {record}");
    }
}

fn render(sets: &[&str]) -> Vec<serde_yaml_ng::Value> {
    let mut cmd = Command::new(tool("helm", "kubectl-and-helm"));
    cmd.args(["template", "securescore"])
        .arg(Path::new(REPO).join("charts/securescore"))
        .args(["--namespace", "securescore-system"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .filter(|d: &serde_yaml_ng::Value| !d.is_null())
        .collect()
}

fn named<'a>(
    docs: &'a [serde_yaml_ng::Value],
    kind: &str,
    name: &str,
) -> Option<&'a serde_yaml_ng::Value> {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
}

#[test]
fn the_chart_renders_the_fleet_dashboard_and_rules_when_enabled() {
    let docs = render(&[
        "prometheusRule.enabled=true",
        "prometheusRule.fleet.enabled=true",
        "grafanaDashboard.enabled=true",
    ]);
    let rule = named(&docs, "PrometheusRule", "securescore-fleet").expect("the fleet rules");
    let file: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(Path::new(REPO).join(FLEET_RULES)).expect("rules"),
    )
    .expect("rules YAML");
    assert_eq!(
        rule["spec"]["groups"], file["groups"],
        "the groups, unchanged"
    );
    assert!(
        named(&docs, "PrometheusRule", "securescore").is_some(),
        "the alert rules stay"
    );
    let cm = named(&docs, "ConfigMap", "securescore-fleet-dashboard").expect("the fleet dashboard");
    assert_eq!(
        cm["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );
    let rendered: Value =
        serde_json::from_str(cm["data"]["securescore-fleet.json"].as_str().expect("data"))
            .expect("rendered dashboard is JSON");
    assert_eq!(rendered, dashboard());

    // The fleet rules are opt-in; the fleet dashboard follows the dashboard unless turned off.
    let defaults = render(&[
        "prometheusRule.enabled=true",
        "grafanaDashboard.enabled=true",
    ]);
    assert!(named(&defaults, "PrometheusRule", "securescore-fleet").is_none());
    assert!(named(&defaults, "ConfigMap", "securescore-fleet-dashboard").is_some());
    let off = render(&[
        "grafanaDashboard.enabled=true",
        "grafanaDashboard.fleet=false",
    ]);
    assert!(named(&off, "ConfigMap", "securescore-fleet-dashboard").is_none());
    assert!(named(&off, "ConfigMap", "securescore-dashboard").is_some());
}
