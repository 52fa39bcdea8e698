//! `securescore scan` in the SecurityControls model: built-in controls, `--model`, targets with
//! `spec.model: SecurityControls`, SecurityControls in the input (trusted only with
//! --allow-input-actions, like actions) and in --actions files, and invalid controls skipped.

#[path = "support/actions.rs"]
mod actions;
use actions::{NO_LATEST_CHECK, action_manifest};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const NOW: &str = "2026-11-27T12:00:00Z";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn scan_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("scan")
        .args(args)
        .args(["--now", NOW])
        .current_dir(dir)
        .env("COLUMNS", "120")
        .output()
        .expect("the securescore binary runs");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8"),
    }
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

/// Four pods: three run as non-root with a pinned tag; `d` runs as root.
const PODS: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: team}, spec: {securityContext: {runAsNonRoot: true}, containers: [{name: c, image: "nginx:1.27"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: team}, spec: {securityContext: {runAsNonRoot: true}, containers: [{name: c, image: "nginx:1.27"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: c, namespace: team}, spec: {securityContext: {runAsNonRoot: true}, containers: [{name: c, image: "nginx:1.27"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: d, namespace: team}, spec: {securityContext: {runAsNonRoot: false}, containers: [{name: c, image: "nginx:1.27"}]}}
"#;

/// Two actions, grouped by [`CONTROL`] (by name and by label).
fn two_actions() -> String {
    let non_root = action_manifest(
        "name: non-root, labels: {area: workloads}",
        "Run as non-root",
        "Apps",
        9,
        r#"  check:
    podSpec: true
    validations:
      - expression: "has(podSpec.securityContext) && podSpec.securityContext.runAsNonRoot == true"
"#,
    );
    let no_latest = action_manifest(
        "name: no-latest",
        "No latest tag",
        "Apps",
        5,
        NO_LATEST_CHECK,
    );
    format!("{non_root}---\n{no_latest}")
}

/// A control of 8 points grouping both [`two_actions`].
const CONTROL: &str = r#"
apiVersion: securescore.io/v1alpha1
kind: SecurityControl
metadata: {name: workloads}
spec:
  title: Harden workloads
  maxScore: 8
  actions: [no-latest]
  actionSelector: {matchLabels: {area: workloads}}
"#;

/// [`PODS`], [`two_actions`] and [`CONTROL`] in `pods.yaml`, `actions.yaml`, `control.yaml`.
fn workloads_scenario() -> tempfile::TempDir {
    dir_with(&[
        ("pods.yaml", PODS),
        ("actions.yaml", &two_actions()),
        ("control.yaml", CONTROL),
    ])
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

#[test]
fn model_flag_scores_by_the_given_controls_three_of_four_healthy_is_six_of_eight() {
    let dir = workloads_scenario();
    let r = scan_in(
        dir.path(),
        &[
            "pods.yaml",
            "--no-builtin",
            "--actions",
            "actions.yaml",
            "--actions",
            "control.yaml",
            "--model",
            "SecurityControls",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let status = &json(&r)["items"][0]["status"];
    let c = &status["controls"][0];
    assert_eq!(c["name"], "workloads");
    assert_eq!(c["actions"], serde_json::json!(["no-latest", "non-root"]));
    assert_eq!(
        (c["healthy"].as_u64(), c["applicable"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(c["score"].as_f64(), Some(6.0));
    assert_eq!(status["score"].as_f64(), Some(6.0));
    assert_eq!(status["maxScore"].as_f64(), Some(8.0));
    assert_eq!(status["percentage"].as_f64(), Some(75.0));

    // The table shows the control with its healthy share.
    let r = scan_in(
        dir.path(),
        &[
            "pods.yaml",
            "--no-builtin",
            "--actions",
            "actions.yaml",
            "--actions",
            "control.yaml",
            "--model",
            "SecurityControls",
        ],
    );
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("workloads "))
        .unwrap_or_else(|| panic!("a control row in:\n{}", r.stdout));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        ["workloads", "6.00", "8.00", "2.00", "3/4", "ToAddress"]
    );
}

#[test]
fn without_a_model_the_output_has_no_controls() {
    let dir = workloads_scenario();
    let r = scan_in(
        dir.path(),
        &[
            "pods.yaml",
            "--no-builtin",
            "--actions",
            "actions.yaml",
            "--actions",
            "control.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let status = &json(&r)["items"][0]["status"];
    assert!(status.get("controls").is_none(), "{status}");
    // The actions' own points: 9 × 3/4 + 5 = 11.75 of 14.
    assert_eq!(status["score"].as_f64(), Some(11.75));
    assert_eq!(status["maxScore"].as_f64(), Some(14.0));
}

#[test]
fn a_control_in_the_input_is_used_only_with_allow_input_actions() {
    let dir = workloads_scenario();
    let args = [
        "pods.yaml",
        "control.yaml",
        "--no-builtin",
        "--actions",
        "actions.yaml",
        "--model",
        "SecurityControls",
        "--format",
        "json",
    ];
    let r = scan_in(dir.path(), &args);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains(
            "control.yaml:2: SecurityControl workloads: ignored: actions and controls in the scanned input are used only with --allow-input-actions"
        ),
        "{}",
        r.stderr
    );
    let status = &json(&r)["items"][0]["status"];
    assert!(status.get("controls").is_none(), "{status}");
    assert_eq!(
        status["actionsNotInControls"],
        serde_json::json!(["no-latest", "non-root"])
    );

    let mut trusted = args.to_vec();
    trusted.push("--allow-input-actions");
    let r = scan_in(dir.path(), &trusted);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(
        json(&r)["items"][0]["status"]["controls"][0]["score"].as_f64(),
        Some(6.0)
    );
}

#[test]
fn a_target_declaring_the_controls_model_uses_the_builtin_controls() {
    let target = "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: t, namespace: team}\nspec:\n  model: SecurityControls\n";
    let dir = dir_with(&[("pods.yaml", PODS), ("target.yaml", target)]);
    let r = scan_in(
        dir.path(),
        &["pods.yaml", "target.yaml", "--format", "json"],
    );
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let item = &json(&r)["items"][0];
    assert_eq!(item["spec"]["model"], "SecurityControls");
    let rows = item["status"]["controls"].as_array().expect("controls");
    // Every built-in control but those over an opt-in product's actions (no --product).
    let builtin = securescore::catalog::builtin_controls().expect("controls");
    let without_products = builtin
        .iter()
        .filter(|c| {
            c.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(securescore::api::PRODUCT_LABEL))
        })
        .count();
    assert_eq!(builtin.len() - without_products, 2, "two product controls");
    assert_eq!(rows.len(), without_products);
    // The score is the sum of the controls' points, the max that of the applicable ones.
    let sum: f64 = rows
        .iter()
        .map(|c| c["score"].as_f64().unwrap_or(0.0))
        .sum();
    let max: f64 = rows
        .iter()
        .map(|c| c["maxScore"].as_f64().unwrap_or(0.0))
        .sum();
    let score = item["status"]["score"].as_f64().expect("score");
    assert!((score - sum).abs() < 0.011, "{score} vs {sum}");
    assert_eq!(item["status"]["maxScore"].as_f64(), Some(max));
    // d runs as root: the privileged-workloads control cannot be complete.
    let privileged = rows
        .iter()
        .find(|c| c["name"] == "remediate-security-configurations")
        .expect("built-in control");
    assert!(privileged["unhealthy"].as_u64() >= Some(1), "{privileged}");
}

#[test]
fn an_invalid_control_is_skipped_with_its_field() {
    let bad = "apiVersion: securescore.io/v1alpha1\nkind: SecurityControl\nmetadata: {name: empty}\nspec:\n  title: Nothing\n  maxScore: 4\n";
    let dir = dir_with(&[("pods.yaml", PODS), ("bad.yaml", bad)]);
    let r = scan_in(
        dir.path(),
        &["pods.yaml", "--actions", "bad.yaml", "--format", "json"],
    );
    assert_eq!(r.code, 2, "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("bad.yaml:1: SecurityControl empty:")
            && r.stderr
                .contains("a control needs actions (by name) or an actionSelector"),
        "{}",
        r.stderr
    );
    let over = "apiVersion: securescore.io/v1alpha1\nkind: SecurityControl\nmetadata: {name: big}\nspec:\n  title: Big\n  maxScore: 500\n  actions: [x]\n";
    let dir = dir_with(&[("pods.yaml", PODS), ("bad.yaml", over)]);
    let r = scan_in(
        dir.path(),
        &["pods.yaml", "--actions", "bad.yaml", "--format", "json"],
    );
    assert_eq!(r.code, 2, "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.contains("SecurityControl big: spec.maxScore"),
        "{}",
        r.stderr
    );
    // The rest is still evaluated.
    assert!(json(&r)["items"][0]["status"]["evaluatedResources"].as_u64() >= Some(4));
}
