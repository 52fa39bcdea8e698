//! Hostile input against `securescore scan`: YAML tricks, files, gates, output safety.

use securescore::inventory::manifests::parse_documents;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "../support/corpus.rs"]
mod corpus;
#[path = "../support/tools.rs"]
mod tools;
use corpus::corpus;

const NOW: &str = "2026-11-27T12:00:00Z";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/hostile/yaml")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn scan_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the securescore binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(bytes).expect("write stdin");
    }
    let out = child.wait_with_output().expect("securescore finishes");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn scan(args: &[&str]) -> Run {
    scan_in(root(), args, None)
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

/// The row of one action in the first target's status.
fn action<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"][0]["status"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("action {name} in the status"))
}

// ---------------------------------------------------------------- reading YAML as kubectl does

#[test]
fn a_privileged_container_behind_a_merge_key_is_judged_privileged() {
    let file = fixtures().join("merge-key-privileged.yaml");
    let r = scan(&[
        file.to_str().expect("utf-8"),
        "--format",
        "json",
        "--now",
        NOW,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list = json(&r);
    let row = action(&list, "pss-privileged-containers");
    assert_eq!(row["applicable"], 1, "{row}");
    assert_eq!(row["compliant"], 0, "{row}");
    assert_eq!(row["nonCompliant"], 1, "{row}");
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let r = scan_in(
        root(),
        &["-", "--format", "json", "--now", NOW],
        Some(&std::fs::read(fixtures().join("bom.yaml")).expect("fixture")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The ConfigMap (its implied Namespace is not judged).
    assert_eq!(json(&r)["items"][0]["status"]["evaluatedResources"], 1);
}

/// What kubectl's client-side reading makes of `path` (a file or a directory, recursively):
/// `kubectl annotate --local -o json` parses exactly as `kubectl apply` does before sending
/// (the resource builder: YAML split into documents, sigs.k8s.io/yaml to JSON, List kinds
/// flattened), with no server. The marker annotation it adds is taken off again.
fn kubectl_objects(path: &Path) -> Vec<Value> {
    const MARK: &str = "securescore.io/differential";
    let kubectl = tools::tool("kubectl", "kubectl-and-helm");
    let out = Command::new(kubectl)
        .args(["annotate", "--local", "-R", "-o", "json", "-f"])
        .arg(path)
        .arg(format!("{MARK}=x"))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl annotate --local -f {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stream = serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>();
    stream
        .map(|v| {
            let mut v = v.expect("kubectl prints JSON objects");
            let meta = v["metadata"].as_object_mut().expect("metadata");
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(MARK);
            }
            normalise(v)
        })
        .collect()
}

/// Empty or null annotations mean the same to the server; kubectl's marker leaves an empty map.
fn normalise(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
        && meta
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty()))
    {
        meta.remove("annotations");
    }
    v
}

/// What scan reads from the same files: every document of every .yaml/.yml/.json file,
/// List kinds flattened.
fn scan_objects(path: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    collect(path, &mut files);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let (docs, errors) = parse_documents(&f.display().to_string(), &text);
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        for (doc, _) in docs {
            let is_list = doc["kind"].as_str().is_some_and(|k| k.ends_with("List"))
                && doc["items"].is_array();
            if is_list {
                let items = doc["items"].as_array().expect("items").clone();
                out.extend(items.into_iter().map(normalise));
            } else {
                out.push(normalise(doc));
            }
        }
    }
    out
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, files);
        }
    } else if path
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| ["yaml", "yml", "json"].contains(&x))
    {
        files.push(path.to_path_buf());
    }
}

/// Objects only one side read: (only kubectl, only scan), with the number each read.
fn differences(path: &Path) -> (Vec<String>, Vec<String>, usize, usize) {
    let mut theirs: Vec<String> = kubectl_objects(path).iter().map(Value::to_string).collect();
    let mut ours: Vec<String> = scan_objects(path).iter().map(Value::to_string).collect();
    theirs.sort();
    ours.sort();
    let only_kubectl = theirs
        .iter()
        .filter(|t| !ours.contains(t))
        .cloned()
        .collect();
    let only_scan = ours
        .iter()
        .filter(|o| !theirs.contains(o))
        .cloned()
        .collect();
    (only_kubectl, only_scan, theirs.len(), ours.len())
}

fn assert_same_objects(path: &Path) {
    let mut theirs: Vec<String> = kubectl_objects(path).iter().map(Value::to_string).collect();
    let mut ours: Vec<String> = scan_objects(path).iter().map(Value::to_string).collect();
    assert!(!ours.is_empty(), "{}: nothing read", path.display());
    theirs.sort();
    ours.sort();
    let only_kubectl: Vec<&String> = theirs.iter().filter(|t| !ours.contains(t)).collect();
    let only_scan: Vec<&String> = ours.iter().filter(|o| !theirs.contains(o)).collect();
    assert!(
        only_kubectl.is_empty() && only_scan.is_empty() && theirs.len() == ours.len(),
        "{}: {} objects from kubectl, {} from scan\nonly kubectl: {:.2000?}\nonly scan: {:.2000?}",
        path.display(),
        theirs.len(),
        ours.len(),
        only_kubectl.first(),
        only_scan.first()
    );
}

#[test]
fn scan_parses_the_hostile_fixtures_exactly_as_kubectl_does() {
    assert_same_objects(&fixtures());
}

#[test]
fn scan_parses_the_corpus_exactly_as_kubectl_does() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("list corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 8, "{dirs:?}");
    let mut failures = Vec::new();
    for dir in dirs {
        let (only_kubectl, only_scan, theirs, ours) = differences(&dir);
        if !only_kubectl.is_empty() || theirs != ours {
            failures.push(format!(
                "{}: {theirs} objects from kubectl, {ours} from scan, {} differ; first:\n  kubectl: {:.600}\n  scan:    {:.600}",
                dir.display(),
                only_kubectl.len(),
                only_kubectl.first().cloned().unwrap_or_default(),
                only_scan.first().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One file as `securescore scan` reads it, `whole` or with no body wanted (every document
/// read for its identity): the objects by identity and source, the errors and the skips, and
/// how many objects came without a `spec` they have when read whole.
fn read_as_scan(path: &Path, text: &str, whole: bool) -> (String, Vec<Value>) {
    use securescore::inventory::manifests::read_file;
    let name = path.display().to_string();
    let read = read_file(&name, text, "default", &|_| false, &|_, _| whole);
    let objects: Vec<String> = read
        .documents
        .objects
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {:?} {} {:?} {:?} {:?} {:?}",
                r.api_version,
                r.group,
                r.kind,
                r.namespace,
                r.name,
                r.uid,
                r.labels,
                r.controller,
                r.source
            )
        })
        .collect();
    let specs = read
        .documents
        .objects
        .iter()
        .map(|r| r.json()["spec"].clone())
        .collect();
    (
        format!(
            "{objects:#?}\n{:#?}\n{:#?}\n{:#?}",
            read.parse_errors, read.documents.errors, read.documents.not_objects
        ),
        specs,
    )
}

#[test]
fn documents_read_for_their_identity_give_the_same_objects_errors_and_skips() {
    let mut files = Vec::new();
    corpus::manifests(&corpus(), &mut files);
    corpus::manifests(&root().join("tests/fixtures"), &mut files);
    corpus::manifests(&root().join("examples"), &mut files);
    let mut differing = Vec::new();
    let (mut read, mut bodiless) = (0, 0);
    for f in &files {
        // Text that is not UTF-8 is refused before any YAML is read.
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let (whole, whole_specs) = read_as_scan(f, &text, true);
        let (identity, identity_specs) = read_as_scan(f, &text, false);
        if whole != identity {
            differing.push(format!(
                "{}:\nwhole:    {whole:.1500}\nidentity: {identity:.1500}",
                f.display()
            ));
        }
        read += whole_specs.len();
        bodiless += whole_specs
            .iter()
            .zip(&identity_specs)
            .filter(|(w, i)| !w.is_null() && i.is_null())
            .count();
    }
    assert!(differing.is_empty(), "{}", differing.join("\n"));
    // The identity reading did leave bodies out (CRDs and workloads of the corpus alike).
    assert!(
        read > 1000 && bodiless > 900,
        "{bodiless} of {read} objects"
    );
}

// ---------------------------------------------------------------- no gate bypass

const ALWAYS_PASSES: &str = "apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: pss-privileged-containers}
spec:
  title: Forged
  category: Device
  maxScore: 5
  check:
    podSpec: true
    validations: [{expression: 'true', message: forged}]
";

const PRIVILEGED_POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]
";

#[test]
fn an_action_in_the_scanned_input_cannot_replace_the_builtin_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("pr.yaml"),
        format!("{PRIVILEGED_POD}---\n{ALWAYS_PASSES}"),
    )
    .expect("write");
    let r = scan_in(
        dir.path(),
        &["pr.yaml", "--format", "json", "--now", NOW],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "pr.yaml:7: ImprovementAction pss-privileged-containers: ignored: actions and controls in the scanned input are used only with --allow-input-actions"
        ),
        "{}",
        r.stderr
    );
    let list = json(&r);
    let row = action(&list, "pss-privileged-containers");
    assert_eq!(row["nonCompliant"], 1, "the built-in still judges: {row}");

    // Opted in, the input's action is used (and the Pod passes the forged check).
    let r = scan_in(
        dir.path(),
        &[
            "pr.yaml",
            "--allow-input-actions",
            "--format",
            "json",
            "--now",
            NOW,
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        action(&json(&r), "pss-privileged-containers")["compliant"],
        1
    );
}

// ---------------------------------------------------------------- files

fn evaluated(r: &Run) -> u64 {
    json(r)["items"][0]["status"]["evaluatedResources"]
        .as_u64()
        .expect("evaluatedResources")
}

#[test]
fn a_file_given_twice_or_reached_through_a_symlink_or_a_hard_link_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("app")).expect("mkdir");
    std::fs::write(dir.path().join("app/pod.yaml"), PRIVILEGED_POD).expect("write");
    std::os::unix::fs::symlink("app", dir.path().join("alias")).expect("symlink");
    std::fs::hard_link(
        dir.path().join("app/pod.yaml"),
        dir.path().join("linked.yaml"),
    )
    .expect("hard link");
    // A loop: app/loop -> .. (the directory holding app).
    std::os::unix::fs::symlink("..", dir.path().join("app/loop")).expect("symlink");
    let r = scan_in(
        dir.path(),
        &[
            "app/pod.yaml",
            "app/pod.yaml",
            ".",
            "--format",
            "json",
            "--now",
            NOW,
        ],
        None,
    );
    // One Pod (its implied Namespace is not judged).
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(evaluated(&r), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("declared again"), "{}", r.stderr);
}

#[test]
fn a_fifo_and_a_symlink_to_a_device_are_skipped_with_a_note_and_never_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pod.yaml"), PRIVILEGED_POD).expect("write");
    let fifo = dir.path().join("x.yaml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).expect("symlink");
    let r = scan_in(dir.path(), &[".", "--format", "json", "--now", NOW], None);
    assert_eq!(evaluated(&r), 1);
    // Skipped input: the rest is evaluated, and the gate sees it (exit 2, as --help says).
    assert_eq!(r.code, 2, "{}", r.stderr);
    for name in ["x.yaml", "zero.yaml"] {
        assert!(
            r.stderr.contains(&format!(
                "./{name}: not a regular file (FIFO, device or socket): skipped"
            )),
            "{name}: {}",
            r.stderr
        );
    }
    // Named explicitly too.
    let r = scan_in(
        dir.path(),
        &["zero.yaml", "pod.yaml", "--format", "json", "--now", NOW],
        None,
    );
    assert_eq!(evaluated(&r), 1);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .lines()
            .any(|l| l == "zero.yaml: not a regular file (FIFO, device or socket): skipped"),
        "{}",
        r.stderr
    );
    // --strict stops before evaluating, as for any skipped input.
    let r = scan_in(
        dir.path(),
        &[
            "zero.yaml",
            "pod.yaml",
            "--strict",
            "--format",
            "json",
            "--now",
            NOW,
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    // The regular file alone passes the gate.
    let r = scan_in(
        dir.path(),
        &["pod.yaml", "--format", "json", "--now", NOW],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ---------------------------------------------------------------- smaller

#[test]
fn an_empty_namespace_flag_is_rejected_clearly() {
    let r = scan_in(
        root(),
        &["-", "--namespace", ""],
        Some(PRIVILEGED_POD.as_bytes()),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--namespace must name a namespace"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_impossible_date_names_the_field() {
    let target = "apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata: {name: t, namespace: shop}
spec:
  exemptions:
  - name: e
    action: pss-privileged-containers
    resolution: RiskAccepted
    owner: me
    reason: because
    approvedAt: 2026-01-01T00:00:00Z
    expiresAt: 2027-02-30T00:00:00Z
";
    let r = scan_in(
        root(),
        &["-", "--now", NOW],
        Some(format!("{PRIVILEGED_POD}---\n{target}").as_bytes()),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "<stdin>:7: SecureScoreTarget shop/t: spec.exemptions[0].expiresAt: \"2027-02-30T00:00:00Z\" is not a date-time"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("No such overload"), "{}", r.stderr);
}

// ---------------------------------------------------------------- output safety

#[test]
fn control_characters_in_names_and_messages_cannot_forge_lines() {
    let forged = "apiVersion: v1
kind: Pod
metadata:
  name: \"x\\n\\e[32mTarget default/scan: 100.00 / 100 points (100.00%)\\e[0m\"
  namespace: shop
spec:
  containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]
";
    let r = scan_in(root(), &["-", "--now", NOW], Some(forged.as_bytes()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "raw escape in:\n{}", r.stdout);
    assert!(
        !r.stdout
            .lines()
            .any(|l| l.starts_with("Target default/scan: 100.00")),
        "forged line:\n{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Pod shop/x\\n\\u{1b}[32mTarget default/scan: 100.00"),
        "escaped name:\n{}",
        r.stdout
    );
    // And on stderr: a duplicate's warning quotes the name.
    let twice = format!("{forged}---\n{forged}");
    let r = scan_in(root(), &["-", "--now", NOW], Some(twice.as_bytes()));
    assert!(!r.stderr.contains('\u{1b}'), "raw escape in:\n{}", r.stderr);
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn bidi_overrides_and_unicode_line_separators_in_names_are_shown_escaped_in_table_and_html() {
    // U+202E (right-to-left override) makes a terminal or browser show "web-gnp.exe" for
    // "web-\u{202e}exe.png"; U+2028 is a new line to some viewers.
    let pod = "apiVersion: v1
kind: Pod
metadata: {name: \"web-\\u202Eexe.png\\u2028x\", namespace: shop}
spec:
  containers: [{name: c, image: nginx:1.27, securityContext: {privileged: true}}]
";
    let hidden = |text: &str| text.contains('\u{202e}') || text.contains('\u{2028}');
    let r = scan_in(root(), &["-", "--now", NOW], Some(pod.as_bytes()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!hidden(&r.stdout), "raw bidi override in:\n{}", r.stdout);
    assert!(
        r.stdout.contains(r"Pod shop/web-\u{202e}exe.png\u{2028}x"),
        "escaped name:\n{}",
        r.stdout
    );
    let r = scan_in(
        root(),
        &["-", "--format", "html", "--now", NOW],
        Some(pod.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!hidden(&r.stdout), "raw bidi override in the HTML report");
    assert!(r.stdout.contains(r"web-\u{202e}exe.png"), "escaped in HTML");
}

/// The control characters of an output other than its line ends: what would reach a terminal.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

#[test]
fn control_characters_in_attestations_cannot_forge_lines_in_the_task_table_or_stderr() {
    // attestedBy and evidence are shown in the TASK table; the second attestation is Invalid
    // (in the future), so its error reaches stderr; note is shown nowhere.
    let forged = r#""x\n\e[32mTarget default/scan: 100.00 / 100 points\e[0m\r""#;
    let target = format!(
        "apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata: {{name: t, namespace: shop}}
spec:
  attestations:
  - {{action: task-review-cluster-admin-bindings, attestedBy: {forged}, attestedAt: '2026-10-01T00:00:00Z', evidence: {forged}, note: {forged}}}
  - {{action: task-test-etcd-backup-restore, attestedBy: {forged}, attestedAt: '2030-01-01T00:00:00Z', evidence: {forged}, note: {forged}}}
"
    );
    let input = format!("{PRIVILEGED_POD}---\n{target}");
    let r = scan_in(root(), &["-", "--now", NOW], Some(input.as_bytes()));
    assert_eq!(
        r.code, 2,
        "the future attestation is skipped input: {}",
        r.stderr
    );
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        let raw = raw_controls(text);
        assert!(raw.is_empty(), "raw {raw:?} on {stream}:\n{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("Target default/scan")),
            "forged line on {stream}:\n{text}"
        );
    }
    let row = r
        .stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("task-review-cluster-admin-bindings ")
        })
        .unwrap_or_else(|| panic!("no task row in\n{}", r.stdout));
    assert!(
        row.ends_with(r"x\n\u{1b}[32mTarget default/scan: 100.00 / 100 points\u{1b}[0m\r"),
        "evidence shown escaped: {row}"
    );
    assert!(
        r.stderr
            .contains("spec.attestations[1].attestedAt: 2030-01-01T00:00:00Z is in the future"),
        "{}",
        r.stderr
    );
}

#[test]
fn sarif_file_uris_are_percent_encoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("a b#c")).expect("mkdir");
    std::fs::write(dir.path().join("a b#c/p?%.yaml"), PRIVILEGED_POD).expect("write");
    let r = scan_in(dir.path(), &[".", "--format", "sarif", "--now", NOW], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sarif = json(&r);
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|res| {
            res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str()
        })
        .collect();
    assert!(!uris.is_empty(), "{}", r.stdout);
    for uri in uris {
        assert_eq!(uri, "a%20b%23c/p%3F%25.yaml");
    }
}

#[test]
fn a_suspended_target_has_no_prometheus_series() {
    let target = "apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata: {name: paused, namespace: shop}
spec: {suspend: true}
---
apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata: {name: live, namespace: shop}
spec: {}
";
    let input = format!("{PRIVILEGED_POD}---\n{target}");
    let r = scan_in(
        root(),
        &["-", "--format", "prometheus", "--now", NOW],
        Some(input.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("target=\"live\""), "{}", r.stdout);
    assert!(!r.stdout.contains("target=\"paused\""), "{}", r.stdout);
}

/// A label value made of quotes, a backslash, a colon, a newline, ESC, CR and NUL. Object names
/// (targets, actions, controls) are RFC 1123 names, refused otherwise; framework and exemption
/// names are free text.
const HOSTILE_LABEL: &str = r#""x\"\\:\n\e[32mOK\r\0y""#;

/// The same value as `--format prometheus` writes it: control characters shown escaped (as in
/// the table) and the backslash doubled (so no other name can show the same), then `\` and `"`
/// escaped by the text format.
const HOSTILE_LABEL_EXPOSED: &str = r#"x\"\\\\:\\n\\u{1b}[32mOK\\r\\u{0}y"#;

#[test]
fn prometheus_label_values_from_hostile_input_are_valid_exposition_without_control_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let h = HOSTILE_LABEL;
    let action = format!(
        "apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {{name: hostile-labels}}
spec:
  title: {h}
  description: d
  remediation: r
  category: Apps
  maxScore: 2
  userImpact: Low
  implementationCost: Low
  threats: [Impact]
  references: [{{framework: {h}, control: {h}}}]
  check:
    podSpec: true
    validations: [{{expression: 'false', message: never}}]
"
    );
    std::fs::write(dir.path().join("action.yaml"), action).expect("write");
    let target = format!(
        "apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata: {{name: t, namespace: shop}}
spec:
  exemptions:
  - name: {h}
    action: hostile-labels
    resolution: RiskAccepted
    owner: me
    reason: because
    approvedAt: 2026-01-01T00:00:00Z
    expiresAt: 2027-01-01T00:00:00Z
"
    );
    let input = format!("{PRIVILEGED_POD}---\n{target}");
    let r = scan_in(
        dir.path(),
        &[
            "-",
            "--actions",
            "action.yaml",
            "--format",
            "prometheus",
            "--now",
            NOW,
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let raw = raw_controls(&r.stdout);
    assert!(
        raw.is_empty(),
        "raw control characters {raw:?} in:\n{}",
        r.stdout
    );
    for (family, label) in [
        ("securescore_framework_controls{", "framework"),
        ("securescore_framework_ratio{", "framework"),
        (
            "securescore_exemption_expiry_timestamp_seconds{",
            "exemption",
        ),
    ] {
        let wanted = format!("{label}=\"{HOSTILE_LABEL_EXPOSED}\"");
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(family) && l.contains(&wanted)),
            "no {family}…{wanted}… in:\n{}",
            r.stdout
        );
    }
    let mut promtool = Command::new(tools::tool("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    promtool
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(r.stdout.as_bytes())
        .expect("write to promtool");
    let checked = promtool.wait_with_output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
        r.stdout
    );
}
