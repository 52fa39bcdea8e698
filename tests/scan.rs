//! `securescore scan` and `securescore catalog`, driven through the real binary: golden
//! outputs for examples/, exit codes, every bad-input message, stdin, List kinds, directory
//! recursion, custom actions, SARIF validity, and that scan writes exactly the status the
//! engine (and so the operator) computes.

use securescore::api::{ImprovementAction, SecureScoreTarget, SecureScoreTargetStatus};
use securescore::engine::{CompiledAction, Inventory, TargetInput, evaluate};
use securescore::inventory::manifests::load_text;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

const NOW: &str = "2026-11-27T12:00:00Z";
/// The example application, its targets and its custom action (examples/helm is not ours).
const EXAMPLES: [&str; 3] = ["examples/shop", "examples/targets", "examples/actions"];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

#[path = "support/corpus.rs"]
mod corpus;
use corpus::corpus;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    run_env(dir, args, stdin, &[("COLUMNS", "100")])
}

/// Run with extra environment (e.g. COLUMNS: the table's width; outputs never depend on the
/// test runner's terminal).
fn run_env(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the securescore binary runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("securescore finishes");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn run(args: &[&str]) -> Run {
    run_in(root(), args, None)
}

fn scan_examples(extra: &[&str]) -> Run {
    // The example's custom action is trusted: passed with --actions, not found in the input.
    let mut args = vec!["scan", EXAMPLES[0], EXAMPLES[1], "--actions", EXAMPLES[2]];
    args.extend(["--now", NOW]);
    args.extend(extra);
    run(&args)
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

/// Compare with tests/golden/NAME, or rewrite it when UPDATE_GOLDEN=1.
fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("mkdir golden");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run UPDATE_GOLDEN=1 cargo test --test scan)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the output ({} vs {} lines); first differences:\n{}\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test scan",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write test file");
    path
}

const POD_ROOT: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: root-pod, labels: {team: a}}\nspec:\n  containers: [{name: c, image: nginx:1.27}]\n";

// ---------------------------------------------------------------- golden outputs

#[test]
fn golden_table_for_the_examples() {
    let r = scan_examples(&[]);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    golden("examples.table.txt", &r.stdout);
}

#[test]
fn golden_json_for_the_examples() {
    let r = scan_examples(&["--format", "json"]);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    golden("examples.json", &r.stdout);
}

#[test]
fn golden_sarif_for_the_examples() {
    let r = scan_examples(&["--format", "sarif"]);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    golden("examples.sarif", &r.stdout);
}

#[test]
fn the_readme_command_scores_examples() {
    let r = run(&["scan", "examples/", "--now", NOW]);
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("Target shop/team-shop: ") && l.contains("points (")),
        "{}",
        r.stdout
    );
}

// ---------------------------------------------------------------- JSON contract

#[test]
fn json_is_a_target_list_with_one_item_per_declared_target() {
    let v = json(&scan_examples(&["--format", "json"]));
    assert_eq!(v["apiVersion"], "securescore.io/v1alpha1");
    assert_eq!(v["kind"], "SecureScoreTargetList");
    let items = v["items"].as_array().expect("items");
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cluster", "team-shop"]);
    let shop = &items[1];
    assert_eq!(shop["kind"], "SecureScoreTarget");
    assert_eq!(shop["spec"]["goal"], 80);
    let exemptions: Vec<(&str, &str)> = shop["status"]["exemptions"]
        .as_array()
        .expect("exemptions")
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        exemptions,
        [
            ("legacy-admin-runs-as-root", "Active"),
            ("admin-nodeport-behind-firewall", "Active"),
            ("admin-ingress-tls", "Active"),
        ]
    );
    // The custom action from examples/actions is evaluated with the built-in catalog.
    let custom = shop["status"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "workloads-have-team-label")
        .expect("custom action row");
    assert_eq!(
        (custom["compliant"].as_u64(), custom["applicable"].as_u64()),
        (Some(3), Some(4))
    );
}

/// Load a directory's manifests the way a test would by hand: one file at a time.
fn manual_inventory(
    dirs: &[&str],
) -> (
    Vec<Arc<securescore::engine::Resource>>,
    Vec<ImprovementAction>,
    Vec<SecureScoreTarget>,
) {
    let mut objects = Vec::new();
    let mut actions = Vec::new();
    let mut targets = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("examples dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read example");
            let (loaded, errors) = load_text(&f.display().to_string(), &text, "default");
            assert!(errors.is_empty(), "{errors:?}");
            for r in loaded {
                match (r.group.as_str(), r.kind.as_str()) {
                    ("securescore.io", "ImprovementAction") => {
                        actions.push(serde_json::from_value(r.object.clone()).expect("action"))
                    }
                    ("securescore.io", "SecureScoreTarget") => {
                        targets.push(serde_json::from_value(r.object.clone()).expect("target"))
                    }
                    // load_text synthesises implied Namespaces per file; examples/shop
                    // declares its Namespace, so only the declared objects are kept.
                    _ if r.source.is_none() => {}
                    _ => objects.push(r),
                }
            }
        }
    }
    (objects, actions, targets)
}

#[test]
fn json_status_is_exactly_what_the_engine_computes_for_the_same_objects() {
    let v = json(&scan_examples(&["--format", "json"]));
    let (objects, custom, targets) = manual_inventory(&EXAMPLES);
    let inventory = Inventory::complete(objects);
    // `scan` leaves out the built-in actions over other products' reports unless --product.
    let mut actions: Vec<Arc<CompiledAction>> = securescore::catalog::builtin()
        .expect("catalog")
        .iter()
        .filter(|a| {
            a.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(securescore::api::PRODUCT_LABEL))
        })
        .chain(custom.iter())
        .map(|a| Arc::new(CompiledAction::compile(a)))
        .collect();
    actions.sort_by(|a, b| a.name.cmp(&b.name));
    for target in &targets {
        let expected = evaluate(&TargetInput {
            target,
            actions: &actions,
            inventory: &inventory,
            now: NOW.parse().expect("now"),
            previous: None,
            wide_scope_allowed: true,
        })
        .status;
        let item = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == target.metadata.name.as_deref().unwrap())
            .expect("target in the list");
        let actual: SecureScoreTargetStatus =
            serde_json::from_value(item["status"].clone()).expect("status deserializes");
        assert_eq!(actual, expected, "{:?}", target.metadata.name);
    }
}

// ---------------------------------------------------------------- SARIF

#[test]
fn sarif_is_valid_against_the_sarif_2_1_0_schema() {
    let r = scan_examples(&["--format", "sarif"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "scan.sarif", &r.stdout);
    // Installed by scripts/install/sarif-validate.sh (scripts/test.sh runs it).
    let tools = root().join(".tools/bin/sarif-validate");
    let validator = if tools.exists() {
        tools
    } else {
        PathBuf::from("sarif-validate")
    };
    let out = Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/install/sarif-validate.sh (the schema test needs it)",
                validator.display()
            )
        });
    assert!(
        out.status.success(),
        "SARIF schema violations:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sarif_has_one_rule_per_action_and_results_located_with_suppressions_for_exemptions() {
    let v = json(&scan_examples(&["--format", "sarif"]));
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "securescore");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    // Opt-in product actions are left out unless `--product` names them.
    let builtin = securescore::catalog::builtin()
        .expect("catalog")
        .iter()
        .filter(|a| {
            a.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(securescore::api::PRODUCT_LABEL))
        })
        .count();
    assert_eq!(
        rules.len(),
        builtin + 1,
        "the built-in actions and the custom one"
    );
    let rule = rules
        .iter()
        .find(|r| r["id"] == "pss-run-as-non-root")
        .expect("rule");
    assert_eq!(
        rule["shortDescription"]["text"],
        "Require containers to run as non-root (runAsNonRoot)"
    );
    assert!(
        rule["help"]["markdown"]
            .as_str()
            .unwrap()
            .contains("```yaml")
    );
    assert_eq!(rule["properties"]["category"], "Apps");
    assert_eq!(rule["properties"]["maxScore"], 7);
    let results = run["results"].as_array().expect("results");
    let root_result = |target: &str| {
        results
            .iter()
            .find(|r| {
                r["ruleId"] == "pss-run-as-non-root"
                    && r["properties"]["target"] == target
                    && r["properties"]["resource"] == "Deployment shop/legacy-admin"
            })
            .unwrap_or_else(|| panic!("result for {target}"))
    };
    // maxScore 7: error. Team-shop accepted the risk: suppressed; the cluster target did not.
    let accepted = root_result("shop/team-shop");
    assert_eq!(accepted["level"], "error");
    assert_eq!(accepted["suppressions"][0]["kind"], "external");
    assert_eq!(
        accepted["suppressions"][0]["justification"],
        "RiskAccepted declared by exemption legacy-admin-runs-as-root of target shop/team-shop"
    );
    assert!(
        root_result("securescore-system/cluster")
            .get("suppressions")
            .is_none()
    );
    let loc = &accepted["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        "examples/shop/legacy-admin.yaml"
    );
    assert_eq!(loc["region"]["startLine"], 4);
    // A 1-point action is a warning; compliant resources have no result.
    let cpu = results
        .iter()
        .find(|r| r["ruleId"] == "container-cpu-limits")
        .expect("cpu limits result");
    assert_eq!(cpu["level"], "warning");
    assert!(
        !results
            .iter()
            .any(|r| r["properties"]["resource"] == "Deployment shop/api"
                && r["ruleId"] == "pss-run-as-non-root")
    );
}

// ---------------------------------------------------------------- exit codes

#[test]
fn min_score_exits_1_below_and_0_at_or_above() {
    // The examples score 86.39% (team-shop) and 83.05% (cluster).
    let below = scan_examples(&["--min-score", "90"]);
    assert_eq!(below.code, 1, "{}", below.stderr);
    assert!(
        below
            .stderr
            .contains("shop/team-shop: 86.39% is below --min-score 90"),
        "{}",
        below.stderr
    );
    assert_eq!(scan_examples(&["--min-score", "80"]).code, 0);
}

#[test]
fn min_score_exits_1_when_there_is_nothing_to_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    let r = run_in(
        dir.path(),
        &[
            "scan",
            "cm.yaml",
            "--now",
            NOW,
            "--no-builtin",
            "--actions",
            &root().join("examples/actions").display().to_string(),
            "--min-score",
            "1",
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("default/scan: nothing to evaluate"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("nothing to evaluate"), "{}", r.stdout);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["scan"],
        vec!["scan", "examples/shop", "--min-score", "150"],
        vec!["scan", "examples/shop", "--format", "xml"],
        vec!["scan", "examples/shop", "--now", "yesterday"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
}

// ---------------------------------------------------------------- bad input, one by one

/// Scan one file in a temporary directory; returns the run (paths in messages are relative).
fn scan_file(name: &str, text: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), name, text);
    write(dir.path(), "good.yaml", POD_ROOT);
    // Actions in these files are the subject of the tests: used, as with --actions.
    let mut args = vec![
        "scan",
        name,
        "good.yaml",
        "--allow-input-actions",
        "--now",
        NOW,
        "--format",
        "json",
    ];
    args.extend(extra);
    run_in(dir.path(), &args, None)
}

/// Bad input: exit 2, the exact message on stderr, and the good file still evaluated.
fn assert_skipped(r: &Run, message: &str) {
    assert_eq!(r.code, 2, "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l == message),
        "want line {message:?} in stderr:\n{}",
        r.stderr
    );
    let v = json(r);
    let evaluated = v["items"][0]["status"]["evaluatedResources"]
        .as_u64()
        .unwrap_or(0);
    assert!(evaluated >= 1, "the rest is still evaluated: {}", r.stdout);
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.yaml", POD_ROOT);
    let r = run_in(
        dir.path(),
        &[
            "scan",
            "missing.yaml",
            "good.yaml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
        None,
    );
    assert_skipped(&r, "missing.yaml: cannot read: No such file or directory");
}

#[test]
fn invalid_yaml_is_reported_with_its_line() {
    let r = scan_file(
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod: x\n",
        &[],
    );
    assert_skipped(
        &r,
        "bad.yaml:6: invalid YAML: mapping values are not allowed in this context",
    );
}

#[test]
fn a_document_without_api_version_or_kind_is_reported() {
    let r = scan_file("noapi.yaml", "kind: Pod\nmetadata: {name: a}\n", &[]);
    assert_skipped(
        &r,
        "noapi.yaml:1: not a Kubernetes object: apiVersion is missing",
    );
    let r = scan_file(
        "nokind.yaml",
        "# a comment\napiVersion: v1\nmetadata: {name: a}\n",
        &[],
    );
    assert_skipped(
        &r,
        "nokind.yaml:2: not a Kubernetes object: kind is missing",
    );
}

const ACTION_HEAD: &str = "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\n";

#[test]
fn an_action_whose_example_fails_is_not_ready() {
    let r = scan_file(
        "action.yaml",
        &format!(
            "{ACTION_HEAD}metadata: {{name: wrong-example}}\nspec:\n  title: t\n  category: Apps\n  maxScore: 3\n  check:\n    podSpec: true\n    validations: [{{expression: 'true'}}]\n    examples:\n    - object: {{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{containers: [{{name: c, image: i}}]}}}}\n      expect: NonCompliant\n"
        ),
        &[],
    );
    assert_skipped(
        &r,
        "action.yaml:1: ImprovementAction wrong-example is not Ready: ExampleFailed: spec.check.examples[0]: expected NonCompliant, got Compliant",
    );
    // As in a cluster, it is Unknown for the target: max kept, no points.
    let row = r.stdout.find("\"name\": \"wrong-example\"").expect("row");
    assert!(r.stdout[row..].contains("\"state\": \"Unknown\""));
}

#[test]
fn a_message_expression_reading_secret_data_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "action.yaml",
        &format!(
            "{ACTION_HEAD}metadata: {{name: secret-messages}}\nspec:\n  title: t\n  category: Data\n  maxScore: 3\n  check:\n    resources: [{{kind: Secret}}]\n    variables:\n    - {{name: values, expression: 'object.data'}}\n    - {{name: token, expression: \"variables.values['token']\"}}\n    validations:\n    - {{expression: 'false', messageExpression: \"'token ' + variables.token\"}}\n    - {{expression: 'false', messageExpression: \"'no type on ' + object.metadata.name\"}}\n    - {{expression: 'false', messageExpression: \"'raw ' + object.stringData['password']\"}}\n"
        ),
    );
    write(
        dir.path(),
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\ndata: {token: c2VjcmV0}\n",
    );
    let r = run_in(
        dir.path(),
        &[
            "scan",
            "secret.yaml",
            "--actions",
            "action.yaml",
            "--now",
            NOW,
        ],
        None,
    );
    // A warning: the action still loads and is scored.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warned: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("messageExpression reads Secret data"))
        .collect();
    assert_eq!(warned.len(), 2, "{}", r.stderr);
    for (line, i) in warned.iter().zip([0, 2]) {
        assert!(
            line.starts_with(&format!(
                "securescore scan: warning: action.yaml:1: ImprovementAction secret-messages: spec.check.validations[{i}].messageExpression reads Secret data"
            )),
            "{line}"
        );
    }
}

#[test]
fn an_action_with_an_invalid_expression_is_not_ready() {
    let r = scan_file(
        "action.yaml",
        &format!(
            "# custom\n{ACTION_HEAD}metadata: {{name: bad-cel}}\nspec:\n  title: t\n  category: Apps\n  maxScore: 3\n  check:\n    podSpec: true\n    validations: [{{expression: 'podSpec.nope('}}]\n"
        ),
        &[],
    );
    assert_eq!(r.code, 2);
    let first = r
        .stderr
        .lines()
        .find(|l| l.starts_with("action.yaml:2: "))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        first.starts_with("action.yaml:2: ImprovementAction bad-cel is not Ready: InvalidExpression: spec.check.validations[0].expression: "),
        "{first}"
    );
}

#[test]
fn an_action_breaking_a_crd_rule_is_skipped_with_its_field() {
    let r = scan_file(
        "action.yaml",
        &format!(
            "{ACTION_HEAD}metadata: {{name: zero}}\nspec:\n  title: t\n  category: Apps\n  maxScore: 0\n  check:\n    podSpec: true\n    validations: [{{expression: 'true'}}]\n"
        ),
        &[],
    );
    assert_skipped(
        &r,
        "action.yaml:1: ImprovementAction zero: spec.maxScore: 0 is below the minimum 1",
    );
    assert!(
        !r.stdout.contains("\"name\": \"zero\""),
        "skipped, not evaluated"
    );
}

const TARGET_HEAD: &str = "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: t, namespace: default}\n";

#[test]
fn a_target_exemption_breaking_a_crd_rule_skips_the_target() {
    let r = scan_file(
        "target.yaml",
        &format!(
            "{TARGET_HEAD}spec:\n  exemptions:\n  - {{name: x, action: pss-run-as-non-root, resolution: RiskAccepted, reason: r, approvedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-12-01T00:00:00Z'}}\n"
        ),
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.lines().any(|l| l == "target.yaml:1: SecureScoreTarget default/t: spec.exemptions[0]: an exemption needs an owner"),
        "{}",
        r.stderr
    );
    assert_eq!(
        json(&r)["items"].as_array().map(Vec::len),
        Some(0),
        "no implicit target either"
    );
}

#[test]
fn an_invalid_target_exemption_is_reported_and_ignored() {
    let r = scan_file(
        "target.yaml",
        &format!(
            "{TARGET_HEAD}spec:\n  exemptions:\n  - {{name: forever, action: pss-run-as-non-root, resolution: RiskAccepted, owner: o, reason: r, approvedAt: '2026-01-01T00:00:00Z', expiresAt: '2029-12-01T00:00:00Z'}}\n"
        ),
        &[],
    );
    assert_skipped(
        &r,
        "target.yaml:1: SecureScoreTarget default/t: spec.exemptions[0] (forever): Invalid: spans 1430 days, action \"pss-run-as-non-root\" allows at most 365",
    );
    let v = json(&r);
    assert_eq!(v["items"][0]["status"]["exemptions"][0]["state"], "Invalid");
}

#[test]
fn attestations_in_a_scanned_target_are_honoured_at_now_and_shown() {
    // NOW is 2026-11-27T12:00:00Z: the cluster-admin review (every 90d) attested on 10-01 is
    // fresh until 12-30; the restore test attested on 06-01 went stale on 08-30.
    let r = scan_file(
        "target.yaml",
        &format!(
            "{TARGET_HEAD}spec:\n  attestations:\n  - {{action: task-review-cluster-admin-bindings, attestedBy: platform, attestedAt: '2026-10-01T00:00:00Z', evidence: 'https://t/1'}}\n  - {{action: task-test-etcd-backup-restore, attestedBy: sre, attestedAt: '2026-06-01T00:00:00Z', evidence: 'https://t/2'}}\n"
        ),
        &[],
    );
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let v = json(&r);
    let rows = v["items"][0]["status"]["actions"].as_array().unwrap();
    let task = |name: &str| {
        rows.iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))
            .clone()
    };
    let review = task("task-review-cluster-admin-bindings");
    assert_eq!(review["state"], "Completed");
    assert_eq!(review["score"], 5.0);
    assert_eq!(review["attestation"]["state"], "Fresh");
    assert_eq!(review["attestation"]["attestedBy"], "platform");
    assert_eq!(review["attestation"]["evidence"], "https://t/1");
    assert_eq!(review["attestation"]["dueAt"], "2026-12-30T00:00:00Z");
    let restore = task("task-test-etcd-backup-restore");
    assert_eq!(restore["state"], "ToAddress");
    assert_eq!(restore["score"], 0.0);
    assert_eq!(restore["attestation"]["state"], "Stale");
    assert_eq!(
        task("task-rotate-credentials")["attestation"]["state"],
        "Missing"
    );
    // The table lists the tasks with their attestation.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "target.yaml",
        &format!(
            "{TARGET_HEAD}spec:\n  attestations:\n  - {{action: task-review-cluster-admin-bindings, attestedBy: platform, attestedAt: '2026-10-01T00:00:00Z', evidence: 'https://t/1'}}\n"
        ),
    );
    write(dir.path(), "good.yaml", POD_ROOT);
    let t = run_in(
        dir.path(),
        &["scan", "target.yaml", "good.yaml", "--now", NOW],
        None,
    );
    assert_eq!(t.code, 0, "{}", t.stderr);
    let line = t
        .stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("task-review-cluster-admin-bindings ")
        })
        .unwrap_or_else(|| panic!("no task line in\n{}", t.stdout));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "task-review-cluster-admin-bindings",
            "Completed",
            "(Fresh)*",
            "2026-10-01T00:00:00Z",
            "2026-12-30T00:00:00Z",
            "platform",
            "https://t/1"
        ]
    );
}

#[test]
fn an_attestation_in_the_future_or_of_a_check_is_reported_and_ignored() {
    let r = scan_file(
        "target.yaml",
        &format!(
            "{TARGET_HEAD}spec:\n  attestations:\n  - {{action: task-rotate-credentials, attestedBy: sre, attestedAt: '2026-12-01T00:00:00Z', evidence: 'https://t/1'}}\n  - {{action: pss-run-as-non-root, attestedBy: sre, attestedAt: '2026-11-01T00:00:00Z', evidence: 'https://t/2'}}\n"
        ),
        &[],
    );
    assert_skipped(
        &r,
        "target.yaml:1: SecureScoreTarget default/t: Invalid attestation: spec.attestations[0].attestedAt: 2026-12-01T00:00:00Z is in the future (action \"task-rotate-credentials\"): attest a task once it is done",
    );
    assert_skipped(
        &r,
        "target.yaml:1: SecureScoreTarget default/t: Invalid attestation: spec.attestations[1].action: \"pss-run-as-non-root\" is not a task (its check has no attestation): only tasks are attested",
    );
    let v = json(&r);
    let rows = v["items"][0]["status"]["actions"].as_array().unwrap();
    let rotate = rows
        .iter()
        .find(|a| a["name"] == "task-rotate-credentials")
        .unwrap();
    assert_eq!(rotate["attestation"]["state"], "Missing");
}

#[test]
fn a_wrong_kind_in_an_actions_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.yaml", POD_ROOT);
    write(dir.path(), "actions.yaml", POD_ROOT);
    let r = run_in(
        dir.path(),
        &[
            "scan",
            "good.yaml",
            "--actions",
            "actions.yaml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
        None,
    );
    assert_skipped(
        &r,
        "actions.yaml:1: Pod default/root-pod: --actions files hold ImprovementActions and SecurityControls (securescore.io/v1alpha1) only",
    );
}

#[test]
fn strict_aborts_before_evaluation() {
    let r = scan_file(
        "noapi.yaml",
        "kind: Pod\nmetadata: {name: a}\n",
        &["--strict"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("noapi.yaml:1: not a Kubernetes object: apiVersion is missing")
    );
    assert!(
        r.stderr.contains("nothing evaluated (--strict)"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- inputs

/// The custom action only: keeps the JSON small and the numbers obvious.
fn team_label_only<'a>() -> [&'a str; 3] {
    [
        "--no-builtin",
        "--actions",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/actions/custom-team-label.yaml"
        ),
    ]
}

fn team_label_row(v: &serde_json::Value) -> (u64, u64) {
    let row = &v["items"][0]["status"]["actions"][0];
    assert_eq!(row["name"], "workloads-have-team-label");
    (
        row["compliant"].as_u64().unwrap(),
        row["applicable"].as_u64().unwrap(),
    )
}

#[test]
fn stdin_is_read_with_dash() {
    let mut args = vec!["scan", "-", "--now", NOW, "--format", "json"];
    args.extend(team_label_only());
    let r = run_in(
        root(),
        &args,
        Some(&format!(
            "{POD_ROOT}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: unlabelled}}\nspec: {{containers: [{{name: c, image: i}}]}}\n"
        )),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(team_label_row(&v), (1, 2));
    assert_eq!(v["items"][0]["metadata"]["name"], "scan");
}

#[test]
fn list_kinds_are_flattened() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a, labels: {team: x}}, spec: {containers: [{name: c, image: i}]}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: i}]}}\n---\napiVersion: apps/v1\nkind: DeploymentList\nitems: []\n",
    );
    let mut args = vec!["scan", "list.yaml", "--now", NOW, "--format", "json"];
    args.extend(team_label_only());
    let r = run_in(dir.path(), &args, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(team_label_row(&json(&r)), (1, 2));
}

#[test]
fn directories_are_read_recursively_yaml_yml_and_json_only() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |name: &str, team: bool| {
        format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {{\"name\": \"{name}\"{}}}, \"spec\": {{\"containers\": [{{\"name\": \"c\", \"image\": \"i\"}}]}}}}\n",
            if team {
                ", \"labels\": {\"team\": \"x\"}"
            } else {
                ""
            }
        )
    };
    write(dir.path(), "m/a.yaml", &pod("a", true));
    write(dir.path(), "m/deep/er/b.yml", &pod("b", false));
    write(dir.path(), "m/deep/c.json", &pod("c", true));
    write(dir.path(), "m/deep/notes.txt", "not: [yaml");
    write(dir.path(), "m/.hidden/d.yaml", "not: [yaml");
    let mut args = vec!["scan", "m", "--now", NOW, "--format", "json"];
    args.extend(team_label_only());
    let r = run_in(dir.path(), &args, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(team_label_row(&v), (2, 3));
    let findings = &v["items"][0]["status"]["actions"][0]["findings"];
    assert_eq!(findings[0]["name"], "b");
}

#[test]
fn no_builtin_with_actions_evaluates_only_the_given_actions() {
    let mut args = vec!["scan", "examples/shop", "--now", NOW, "--format", "json"];
    args.extend(team_label_only());
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    let rows = v["items"][0]["status"]["actions"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(team_label_row(&v), (3, 4));
    assert_eq!(v["items"][0]["status"]["percentage"], 75.0);
}

#[test]
fn an_input_action_overrides_the_builtin_one_of_the_same_name() {
    let builtin = securescore::catalog::files()
        .iter()
        .find(|(f, _)| *f == "pss-run-as-non-root.yaml")
        .expect("built-in file")
        .1;
    let cheaper = builtin.replace("maxScore: 7", "maxScore: 1");
    assert_ne!(cheaper, builtin);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.yaml", POD_ROOT);
    write(dir.path(), "override.yaml", &cheaper);
    let r = run_in(
        dir.path(),
        &[
            "scan",
            "good.yaml",
            "--actions",
            "override.yaml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    let row = v["items"][0]["status"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "pss-run-as-non-root")
        .expect("row")
        .clone();
    assert_eq!(row["maxScore"], 1.0);
}

#[test]
fn a_target_file_replaces_the_implicit_target() {
    let r = run(&[
        "scan",
        "examples/shop",
        "--target",
        "examples/targets/team-shop.yaml",
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    // The team's exemptions name actions that exist, but team-shop's custom action is absent: fine.
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-shop"]);
}

// ---------------------------------------------------------------- catalog

#[test]
fn catalog_yaml_is_the_builtin_actions_verbatim() {
    let r = run(&["catalog"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let docs: Vec<ImprovementAction> = serde_yaml_ng::Deserializer::from_str(&r.stdout)
        .map(|d| {
            serde::Deserialize::deserialize(d).expect("every document is an ImprovementAction")
        })
        .collect();
    let builtin = securescore::catalog::builtin().expect("catalog");
    assert_eq!(docs.len(), builtin.len());
    for (file, text) in securescore::catalog::files() {
        assert!(r.stdout.contains(text), "{file} is printed verbatim");
    }
}

#[test]
fn catalog_table_lists_every_action_with_category_and_points() {
    let r = run(&["catalog", "--format", "table"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let builtin = securescore::catalog::builtin().expect("catalog");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("pss-run-as-non-root "))
        .expect("row");
    let cols: Vec<&str> = line.split_whitespace().take(3).collect();
    assert_eq!(cols, ["pss-run-as-non-root", "Apps", "7"]);
    assert_eq!(
        r.stdout.lines().count(),
        builtin.len() + 2,
        "header, rows, total"
    );
}

#[test]
fn a_malformed_action_is_skipped_naming_the_field_path() {
    let r = scan_file(
        "action.yaml",
        &format!(
            "{ACTION_HEAD}metadata: {{name: shape}}\nspec:\n  title: t\n  category: Apps\n  maxScore: 3\n  check:\n    podSpec: true\n    validations: [{{message: hi}}]\n"
        ),
        &[],
    );
    assert_skipped(
        &r,
        "action.yaml:1: ImprovementAction shape: spec.check.validations[0].expression: Required value",
    );
}

// ---------------------------------------------------------------- real GitOps repositories (#12)

const GITOPS: &str = "tests/fixtures/gitops";

/// A repository as teams keep them: kustomizations, a Helm chart, a CI workflow, a compose file,
/// plain configuration, generateName objects and an overlay patch re-declaring a Deployment.
#[test]
fn a_gitops_repository_exits_0_and_counts_what_is_not_a_kubernetes_object() {
    let r = run_env(
        root(),
        &["scan", GITOPS, "--exclude", "platform", "-v", "--now", NOW],
        None,
        &[("COLUMNS", "80")],
    );
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert!(
        r.stderr
            .contains("skipped 6 files that are not Kubernetes objects (5 documents):"),
        "{}",
        r.stderr
    );
    for listed in [
        "skipped tests/fixtures/gitops/app/kustomization.yaml:1: tool configuration (kustomize.config.k8s.io/v1beta1 Kustomization)",
        "skipped tests/fixtures/gitops/ci/workflow.yml:1: CI workflow",
        "skipped tests/fixtures/gitops/compose.yaml:1: compose file",
        "skipped tests/fixtures/gitops/renovate.yaml:1: no apiVersion and kind: plain configuration",
    ] {
        assert!(
            r.stderr.lines().any(|l| l.trim() == listed),
            "{listed}\n{}",
            r.stderr
        );
    }
    // At 80 columns every action is one line.
    for line in r
        .stdout
        .lines()
        .skip_while(|l| !l.contains("TO GAIN  ACTION"))
    {
        if line.is_empty() {
            break;
        }
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    // generateName objects are scored under `prefix*`, located by file and line.
    assert!(
        r.stdout.contains("- Job shop/migrate-*: ") && r.stdout.contains("gitops/app/jobs.yaml:2"),
        "{}",
        r.stdout
    );
    golden("gitops.table.txt", &r.stdout);
    golden("gitops.stderr.txt", &r.stderr);
}

#[test]
fn without_verbose_the_skipped_files_are_only_counted() {
    let r = run(&["scan", GITOPS, "--now", NOW, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "skipped 6 files that are not Kubernetes objects (5 documents); --verbose lists them"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("  skipped "), "{}", r.stderr);
}

#[test]
fn a_document_that_looks_like_an_object_and_is_broken_still_exits_2() {
    let r = scan_file(
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {labels: {app: x}}\nspec: {}\n",
        &[],
    );
    assert_skipped(
        &r,
        "broken.yaml:1: not a Kubernetes object: metadata.name is missing",
    );
}

#[test]
fn the_same_object_declared_twice_is_scored_once_with_a_warning_naming_both_places() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", POD_ROOT);
    write(dir.path(), "b.yaml", &format!("# copy\n{POD_ROOT}"));
    let r = run_in(
        dir.path(),
        &["scan", ".", "--now", NOW, "--format", "json"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l
            == "warning: ./b.yaml:2: Pod default/root-pod is declared again (first at ./a.yaml:1): scored once, this one ignored"),
        "{}",
        r.stderr
    );
    // The Pod, once (its implied Namespace is not judged).
    assert_eq!(json(&r)["items"][0]["status"]["evaluatedResources"], 1);
}

#[test]
fn files_are_used_in_path_order_however_long_each_is() {
    // Files of different lengths finish parsing in any order on the cores; they are taken in
    // path order, so the first declaration is still the first path's.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..24 {
        let padding = "# padding\n".repeat(i * 50);
        write(
            dir.path(),
            &format!("m/{i:02}.yaml"),
            &format!("{padding}apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"),
        );
    }
    let r = run_in(
        dir.path(),
        &["scan", "m", "--now", NOW, "--format", "json"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().collect();
    let expected: Vec<String> = (1..24)
        .map(|i| {
            format!(
                "warning: m/{i:02}.yaml:{}: ConfigMap default/c is declared again (first at m/00.yaml:1): scored once, this one ignored",
                i * 50 + 1
            )
        })
        .collect();
    assert_eq!(warnings, expected);
}

#[test]
fn exclude_leaves_out_matching_paths() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app/pod.yaml", POD_ROOT);
    write(
        dir.path(),
        "vendor/other.yaml",
        &POD_ROOT.replace("root-pod", "vendored"),
    );
    write(
        dir.path(),
        "app/pod.tmpl.yaml",
        &POD_ROOT.replace("root-pod", "template"),
    );
    let r = run_in(
        dir.path(),
        &[
            "scan",
            ".",
            "--exclude",
            "vendor",
            "--exclude",
            "*.tmpl.yaml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)["items"][0]["status"]["evaluatedResources"], 1);
    let r = run_in(
        dir.path(),
        &["scan", ".", "--exclude", "[", "--now", NOW],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--exclude \"[\": not a glob"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- the whole CRD schema

fn action_yaml(name: &str, extra_spec: &str) -> String {
    format!(
        "{ACTION_HEAD}metadata: {{name: {name}}}\nspec:\n  title: T\n  category: Apps\n  maxScore: 3\n  check:\n    podSpec: true\n    validations: [{{expression: 'true', message: m}}]\n{extra_spec}"
    )
}

fn exemption(name: &str) -> String {
    format!(
        "  - {{name: {name}, action: pss-run-as-non-root, resolution: RiskAccepted, owner: o, reason: r, approvedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-12-01T00:00:00Z'}}\n"
    )
}

/// What the API server would reject is skipped input (exit 2), with file:line and field path.
#[test]
fn actions_and_targets_breaking_their_crd_schema_are_skipped_with_the_field() {
    let long_title = "x".repeat(165);
    let cases: Vec<(String, &str)> = vec![
        (
            action_yaml("too-long", "  exemptionPolicy: {maxDays: 40000}\n"),
            "action.yaml:1: ImprovementAction too-long: spec.exemptionPolicy.maxDays: 40000 is above the maximum 3650",
        ),
        (
            action_yaml("title", "").replace("title: T", &format!("title: {long_title}")),
            "action.yaml:1: ImprovementAction title: spec.title: Too long: may not be more than 128 characters (is 165)",
        ),
        (
            format!("{TARGET_HEAD}spec:\n  interval: forever\n"),
            "action.yaml:1: SecureScoreTarget default/t: spec.interval: \"forever\" does not match the pattern ^([0-9]+(ms|s|m|h))+$",
        ),
        (
            format!(
                "{TARGET_HEAD}spec:\n  exemptions:\n{}",
                exemption(&"e".repeat(71))
            ),
            "action.yaml:1: SecureScoreTarget default/t: spec.exemptions[0].name: Too long: may not be more than 63 characters (is 71)",
        ),
        (
            format!(
                "{TARGET_HEAD}spec:\n  exemptions:\n{}{}",
                exemption("same"),
                exemption("same")
            ),
            "action.yaml:1: SecureScoreTarget default/t: spec.exemptions[1]: Duplicate value: name=\"same\"",
        ),
        (
            format!(
                "{TARGET_HEAD}spec:\n  exemptions:\n{}",
                (0..201)
                    .map(|i| exemption(&format!("e{i}")))
                    .collect::<String>()
            ),
            "action.yaml:1: SecureScoreTarget default/t: spec.exemptions: Too many: 201: must have at most 200 items",
        ),
        (
            format!("{TARGET_HEAD}spec:\n  goal: 80\n  colour: red\n"),
            "action.yaml:1: SecureScoreTarget default/t: spec.colour: unknown field",
        ),
    ];
    let mut transcript = String::new();
    for (text, message) in cases {
        let r = scan_file("action.yaml", &text, &[]);
        // Skipped input: exit 2 and the located message (an invalid target is not evaluated).
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.lines().any(|l| l == message),
            "want line {message:?} in stderr:\n{}",
            r.stderr
        );
        transcript.push_str(&r.stderr);
    }
    golden("schema.stderr.txt", &transcript);
}

#[test]
fn two_targets_with_the_same_namespace_and_name_are_one_target() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pod.yaml", POD_ROOT);
    write(
        dir.path(),
        "t1.yaml",
        &format!("{TARGET_HEAD}spec: {{goal: 10}}\n"),
    );
    write(
        dir.path(),
        "t2.yaml",
        &format!("{TARGET_HEAD}spec: {{goal: 90}}\n"),
    );
    let r = run_in(
        dir.path(),
        &["scan", ".", "--now", NOW, "--format", "json"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["items"][0]["spec"]["goal"], 10);
    assert!(
        r.stderr.contains(
            "./t2.yaml:1: SecureScoreTarget default/t is declared again (first at ./t1.yaml:1)"
        ),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------- implied namespaces

#[test]
fn an_implied_namespace_is_not_judged_and_is_listed() {
    let app = format!("{GITOPS}/app");
    let r = run(&["scan", &app, "--now", NOW, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    let state = |v: &serde_json::Value, name: &str| {
        v["items"][0]["status"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["state"].clone())
            .unwrap()
    };
    assert_eq!(state(&v, "namespace-pod-security-enforce"), "NotApplicable");
    let table = run(&["scan", &app, "--now", NOW]);
    assert!(
        table.stdout.contains("  implied, not judged: namespace shop (declare the Namespace objects, or pass them with --namespaces PATH)"),
        "{}",
        table.stdout
    );
    // Declared with --namespaces, the Namespace is judged (and enforces a profile).
    let ns = format!("{GITOPS}/platform");
    let r = run(&[
        "scan",
        &app,
        "--namespaces",
        &ns,
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        state(&json(&r), "namespace-pod-security-enforce"),
        "Completed"
    );
}

// ---------------------------------------------------------------- explain

#[test]
fn explain_prints_the_check_the_failing_resources_and_an_exemption_that_is_accepted() {
    let r = run(&["explain", "pss-run-as-non-root", GITOPS, "--now", NOW]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for part in [
        "pss-run-as-non-root: ",
        "\nREMEDIATION\n",
        "\nCHECK (Kubernetes CEL)\n",
        "\nEXAMPLES\n",
        "\nFAILING IN THE INPUT (1)\n  - Job shop/migrate-*: ",
        "tests/fixtures/gitops/app/jobs.yaml:2",
        "    expiresAt: 2027-11-27T00:00:00Z   # the policy allows at most 365 days",
    ] {
        assert!(r.stdout.contains(part), "{part:?} in:\n{}", r.stdout);
    }
    golden("explain.txt", &r.stdout);
    // The exemption, pasted into a target, is valid and covers the failing Job.
    let block = r
        .stdout
        .split("spec.exemptions)\n")
        .nth(1)
        .expect("exemption block");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "target.yaml",
        &format!(
            "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {{name: t, namespace: shop}}\nspec:\n  exemptions:\n{block}"
        ),
    );
    let target = dir.path().join("target.yaml");
    let r = run(&[
        "scan",
        GITOPS,
        "--target",
        target.to_str().unwrap(),
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(
        v["items"][0]["status"]["exemptions"][0]["state"], "Active",
        "{}",
        v["items"][0]["status"]["exemptions"]
    );
    let unknown = run(&["explain", "no-such-action"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("no action named \"no-such-action\""),
        "{}",
        unknown.stderr
    );
}

/// The exemption `explain` prints for `action`, pasted under a new target's
/// `spec.exemptions` and scanned with `pod`: explain's output and the scanned target.
fn pasted_exemption(dir: &Path, action: &str, pod: &str) -> (String, serde_json::Value) {
    write(dir, "pod.yaml", pod);
    let r = run_in(
        dir,
        &[
            "explain",
            action,
            "pod.yaml",
            "--actions",
            "action.yaml",
            "--now",
            NOW,
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let block = r
        .stdout
        .split("spec.exemptions)\n")
        .nth(1)
        .expect("exemption block")
        .to_string();
    write(
        dir,
        "target.yaml",
        &format!(
            "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {{name: t, namespace: shop}}\nspec:\n  exemptions:\n{block}"
        ),
    );
    let scanned = run_in(
        dir,
        &[
            "scan",
            "pod.yaml",
            "--actions",
            "action.yaml",
            "--target",
            "target.yaml",
            "--now",
            NOW,
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(scanned.code, 0, "{}\n--- pasted:\n{block}", scanned.stderr);
    (r.stdout, json(&scanned)["items"][0].clone())
}

/// A YAML double-quoted scalar (a JSON string is one).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[test]
fn explain_writes_the_exemption_as_yaml_even_for_names_with_quotes_colons_and_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    // Pod names a YAML writer must quote (quotes, a colon, a comment sign, ESC, CR), which a
    // Rust `{:?}` would escape as `\u{1b}` (not YAML), and one YAML 1.1 (kubectl) reads as a
    // boolean. The action's own name is an RFC 1123 name (scan refuses any other).
    let action = "say-hi";
    write(
        dir.path(),
        "action.yaml",
        &format!(
            "{ACTION_HEAD}metadata: {{name: {}}}\nspec:\n  title: t\n  description: d\n  remediation: r\n  category: Apps\n  maxScore: 2\n  userImpact: Low\n  implementationCost: Low\n  threats: [Impact]\n  check:\n    podSpec: true\n    validations: [{{expression: 'false', message: never}}]\n",
            yaml_string(action)
        ),
    );
    for pod_name in ["p: \"q\" #r\u{1b}[0m\r", "on"] {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {}, namespace: shop}}\nspec:\n  containers: [{{name: c, image: nginx:1.27}}]\n",
            yaml_string(pod_name)
        );
        let (stdout, target) = pasted_exemption(dir.path(), action, &pod);
        let exemption = &target["status"]["exemptions"][0];
        let block = stdout
            .split("spec.exemptions)\n")
            .nth(1)
            .unwrap_or_default();
        let raw: Vec<char> = stdout
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(raw.is_empty(), "raw {raw:?} in:\n{stdout}");
        assert!(
            !block.contains("\\u{"),
            "a Rust escape is not YAML:\n{block}"
        );
        assert_eq!(
            exemption["state"], "Active",
            "{exemption}\n--- pasted:\n{block}"
        );
        assert_eq!(exemption["action"], action, "{exemption}");
        assert_eq!(exemption["covered"], 1, "{exemption}");
        assert_eq!(
            target["spec"]["exemptions"][0]["resources"]["names"],
            serde_json::json!([pod_name]),
            "{target}"
        );
    }
}

// ---------------------------------------------------------------- gates

fn two_targets(dir: &Path) {
    write(dir, "pod.yaml", POD_ROOT);
    write(
        dir,
        "targets.yaml",
        "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: easy, namespace: default}\nspec: {goal: 10}\n---\napiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: hard, namespace: default}\nspec: {goal: 95}\n",
    );
}

#[test]
fn several_targets_get_a_summary_first_and_fail_below_goal_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    two_targets(dir.path());
    let r = run_in(dir.path(), &["scan", ".", "--now", NOW], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let head: Vec<&str> = r.stdout.lines().take(3).collect();
    assert!(
        head[0].starts_with("TARGET ") && head[0].ends_with("MET"),
        "{head:?}"
    );
    assert!(
        head[1].starts_with("default/easy ") && head[1].ends_with("10%  yes"),
        "{head:?}"
    );
    assert!(
        head[2].starts_with("default/hard ") && head[2].ends_with("95%  no"),
        "{head:?}"
    );
    golden("targets.summary.txt", &head.join("\n"));
    let r = run_in(
        dir.path(),
        &["scan", ".", "--fail-below-goal", "--now", NOW],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("securescore scan: default/hard: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("misses its goal 95% (--fail-below-goal)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("default/easy"), "{}", r.stderr);
}

#[test]
fn baseline_fails_on_new_findings_and_a_lower_score_and_lists_exactly_those() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pod.yaml", POD_ROOT);
    let before = run_in(
        dir.path(),
        &["scan", ".", "--now", NOW, "--format", "json"],
        None,
    );
    assert_eq!(before.code, 0, "{}", before.stderr);
    write(dir.path(), "baseline.json", &before.stdout);
    let same = run_in(
        dir.path(),
        &[
            "scan",
            "pod.yaml",
            "--baseline",
            "baseline.json",
            "--now",
            NOW,
        ],
        None,
    );
    assert_eq!(same.code, 0, "{}", same.stderr);
    write(
        dir.path(),
        "new.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: priv}\nspec:\n  containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]\n",
    );
    let after = run_in(
        dir.path(),
        &[
            "scan",
            "pod.yaml",
            "new.yaml",
            "--baseline",
            "baseline.json",
            "--now",
            NOW,
        ],
        None,
    );
    assert_eq!(after.code, 1, "{}", after.stderr);
    let lines: Vec<&str> = after
        .stderr
        .lines()
        .filter(|l| l.contains("(--baseline)"))
        .collect();
    assert!(lines.contains(&"securescore scan: default/scan: new finding: pss-privileged-containers: Pod default/priv (v1) (--baseline)"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("securescore scan: default/scan: score dropped from ")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("root-pod")),
        "only what is new: {lines:#?}"
    );
    let bad = run_in(
        dir.path(),
        &["scan", "pod.yaml", "--baseline", "pod.yaml"],
        None,
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("--baseline pod.yaml: not a `securescore scan --format json` output"),
        "{}",
        bad.stderr
    );
}

// ---------------------------------------------------------------- the corpus

/// Every document of every corpus repository is either scored, skipped by design, or a
/// duplicate warned about: none lost, and the scan exits 0.
#[test]
fn the_corpus_scans_with_exit_0_and_every_document_accounted_for() {
    let corpus = corpus();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8);
    for dir in dirs {
        let r = run(&[
            "scan",
            dir.to_str().unwrap(),
            "-v",
            "--now",
            NOW,
            "--format",
            "json",
        ]);
        assert_eq!(r.code, 0, "{}: {}", dir.display(), r.stderr);
        let evaluated = json(&r)["items"][0]["status"]["evaluatedResources"]
            .as_u64()
            .unwrap();
        let skipped = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("  skipped ") && l.contains(".y"))
            .count() as u64;
        let duplicates = r
            .stderr
            .lines()
            .filter(|l| l.contains(" is declared again (first at "))
            .count() as u64;
        let mut documents = 0u64;
        let mut files = Vec::new();
        collect_manifests(&dir, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let (docs, errors) =
                securescore::inventory::manifests::parse_documents(&f.display().to_string(), &text);
            assert!(errors.is_empty(), "{errors:?}");
            for (d, _) in docs {
                documents += match d["items"].as_array() {
                    Some(items) if d["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                        items.len() as u64
                    }
                    _ => 1,
                };
            }
        }
        assert!(documents > 0, "{}", dir.display());
        assert_eq!(
            evaluated + skipped + duplicates,
            documents,
            "{}: {evaluated} scored + {skipped} skipped + {duplicates} duplicates != {documents} documents",
            dir.display()
        );
    }
}

fn collect_manifests(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            collect_manifests(&e.unwrap().path(), out);
        }
    } else if path
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| ["yaml", "yml", "json"].contains(&x))
    {
        out.push(path.to_path_buf());
    }
}
