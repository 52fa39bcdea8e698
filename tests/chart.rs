//! The Helm chart: it lints, renders, validates against the Kubernetes schemas offline, runs a
//! hardened pod, and grants exactly the read access its catalog needs.
//!
//! These tests need `helm` and `kubernetes-validate` (installed into `.tools/bin` by
//! `scripts/install/kubectl-and-helm.sh` and `scripts/install/kubernetes-validate.sh`, which
//! `scripts/test.sh` runs). A missing tool is a failure, never a skip.

#[path = "support/tools.rs"]
mod tools;

use k8s_openapi::Resource;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tools::tool;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const NAMESPACE: &str = "securescore-system";
const RELEASE: &str = "securescore";
const ALL_ON: &str = "ci/all-on-values.yaml";
/// What the dog-food scan (`helm template ... | securescore scan -`) renders with.
const DOGFOOD: &str = "ci/dogfood-values.yaml";

// ---------------------------------------------------------------------------------------------
// Tools and rendering

fn helm() -> PathBuf {
    tool("helm", "kubectl-and-helm")
}

fn run(program: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", program.display()))
}

fn chart_dir() -> PathBuf {
    Path::new(REPO).join("charts/securescore")
}

/// `helm template -n securescore-system --include-crds` with extra arguments; panics with helm's
/// stderr when it fails.
fn render(chart: &Path, extra: &[&str]) -> String {
    let out = try_render(chart, extra);
    assert!(
        out.status.success(),
        "helm template {} {extra:?} failed:\n{}",
        chart.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm output is UTF-8")
}

fn try_render(chart: &Path, extra: &[&str]) -> Output {
    let chart_arg = chart.to_str().expect("chart path is UTF-8");
    let mut args = vec![
        "template",
        RELEASE,
        chart_arg,
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    run(&helm(), &args, chart)
}

/// Every non-empty document of a multi-document YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .enumerate()
        .map(|(i, doc)| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("rendered document {i} is not YAML: {e}"))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn rendered(chart: &Path, extra: &[&str]) -> Vec<Value> {
    documents(&render(chart, extra))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {}",
        found.len()
    );
    found[0]
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A chart copy with a known catalog, so behaviour is tested whatever the real catalog holds

const FIXTURE_POD_ACTION: &str = r#"apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata:
  name: fixture-run-as-non-root
  labels:
    securescore.io/mandatory: "true"
spec:
  title: Run containers as non-root
  category: Apps
  maxScore: 8
  check:
    podSpec: true
    validations:
      - expression: "podSpec.securityContext.runAsNonRoot == true"
"#;

const FIXTURE_NAMESPACE_ACTION: &str = r#"apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata:
  name: fixture-default-deny
spec:
  title: Deny by default in every namespace
  category: Infrastructure
  maxScore: 6
  check:
    resources:
      - kind: Namespace
    lookups:
      - name: networkPolicies
        apiGroup: networking.k8s.io
        kind: NetworkPolicy
    validations:
      - expression: "lookups.networkPolicies.exists(p, p.spec.podSelector == {})"
"#;

const FIXTURE_INGRESS_ACTION: &str = r#"apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata:
  name: fixture-ingress-tls
spec:
  title: Serve ingresses over TLS
  category: Infrastructure
  maxScore: 4
  check:
    resources:
      - apiGroup: networking.k8s.io
        kind: Ingress
    lookups:
      - name: tlsSecrets
        kind: Secret
    validations:
      - expression: "has(object.spec.tls)"
"#;

const FIXTURE_RULES: &str = "groups:\n  - name: securescore\n    rules:\n      - alert: SecureScoreGoalMissed\n        expr: securescore_ratio < securescore_goal_ratio\n        for: 1h\n";
const FIXTURE_DASHBOARD: &str = r#"{"title": "Secure Score", "panels": []}"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create chart copy");
    for entry in std::fs::read_dir(from).expect("read chart dir") {
        let entry = entry.expect("chart dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy chart file");
        }
    }
}

/// A copy of the chart whose catalog is the three fixture actions, with or without the
/// monitoring files.
fn fixture_chart(with_monitoring_files: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = dir.path().join("securescore");
    copy_dir(&chart_dir(), &chart);
    let _ = std::fs::remove_dir_all(chart.join("catalog"));
    let _ = std::fs::remove_dir_all(chart.join("files"));
    std::fs::create_dir_all(chart.join("catalog")).expect("catalog dir");
    // The fixture catalog reads Secrets (fixture-ingress-tls), which needs the opt-in.
    let values = chart.join("values.yaml");
    let text = std::fs::read_to_string(&values).expect("values.yaml");
    let opted_in = text.replace("  secretsListWatch: false", "  secretsListWatch: true");
    assert_ne!(
        text, opted_in,
        "values.yaml has rbac.secretsListWatch: false"
    );
    std::fs::write(&values, opted_in).expect("write values.yaml");
    for (name, text) in [
        ("fixture-run-as-non-root", FIXTURE_POD_ACTION),
        ("fixture-default-deny", FIXTURE_NAMESPACE_ACTION),
        ("fixture-ingress-tls", FIXTURE_INGRESS_ACTION),
    ] {
        std::fs::write(chart.join(format!("catalog/{name}.yaml")), text).expect("write action");
    }
    if with_monitoring_files {
        std::fs::create_dir_all(chart.join("files")).expect("files dir");
        std::fs::write(chart.join("files/prometheus-rules.yaml"), FIXTURE_RULES).expect("rules");
        std::fs::write(
            chart.join("files/grafana-dashboard.json"),
            FIXTURE_DASHBOARD,
        )
        .expect("dashboard");
    }
    dir
}

fn fixture_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("securescore")
}

// ---------------------------------------------------------------------------------------------
// What RBAC should say, computed independently of the chart's templates

type ApiGroup = String;
type Plural = String;

/// (apiGroup, kind) -> resource plural, from k8s-openapi (generated from the API's own OpenAPI).
fn builtin_kinds() -> BTreeMap<(String, String), String> {
    macro_rules! kinds {
        ($($t:ty),* $(,)?) => {
            vec![$((<$t as Resource>::GROUP, <$t as Resource>::KIND, <$t as Resource>::URL_PATH_SEGMENT)),*]
        };
    }
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, apps::v1 as apps, autoscaling::v2 as autoscaling,
        batch::v1 as batch, certificates::v1 as certs, coordination::v1 as coord, core::v1 as core,
        discovery::v1 as discovery, networking::v1 as net, node::v1 as node, policy::v1 as policy,
        rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let table = kinds![
        core::Pod,
        core::Namespace,
        core::Service,
        core::ServiceAccount,
        core::ConfigMap,
        core::Secret,
        core::Node,
        core::PersistentVolume,
        core::PersistentVolumeClaim,
        core::Endpoints,
        core::LimitRange,
        core::ResourceQuota,
        core::ReplicationController,
        core::PodTemplate,
        core::Event,
        apps::Deployment,
        apps::StatefulSet,
        apps::DaemonSet,
        apps::ReplicaSet,
        apps::ControllerRevision,
        batch::Job,
        batch::CronJob,
        net::NetworkPolicy,
        net::Ingress,
        net::IngressClass,
        rbac::Role,
        rbac::ClusterRole,
        rbac::RoleBinding,
        rbac::ClusterRoleBinding,
        policy::PodDisruptionBudget,
        adm::ValidatingWebhookConfiguration,
        adm::MutatingWebhookConfiguration,
        adm::ValidatingAdmissionPolicy,
        adm::ValidatingAdmissionPolicyBinding,
        storage::StorageClass,
        storage::CSIDriver,
        storage::CSINode,
        storage::VolumeAttachment,
        certs::CertificateSigningRequest,
        autoscaling::HorizontalPodAutoscaler,
        scheduling::PriorityClass,
        discovery::EndpointSlice,
        node::RuntimeClass,
        coord::Lease,
        apiext::CustomResourceDefinition,
    ];
    // The report kinds of the products (opt-in actions), with the plurals their CRDs declare:
    // aquasecurity/trivy-operator deploy/helm/crds/aquasecurity.github.io_*.yaml and
    // kubernetes-sigs/wg-policy-prototypes policy-report/crd/v1alpha2/wgpolicyk8s.io_*.yaml.
    let products = [
        (
            "aquasecurity.github.io",
            "VulnerabilityReport",
            "vulnerabilityreports",
        ),
        (
            "aquasecurity.github.io",
            "ConfigAuditReport",
            "configauditreports",
        ),
        (
            "aquasecurity.github.io",
            "ExposedSecretReport",
            "exposedsecretreports",
        ),
        ("wgpolicyk8s.io", "PolicyReport", "policyreports"),
        (
            "wgpolicyk8s.io",
            "ClusterPolicyReport",
            "clusterpolicyreports",
        ),
    ];
    table
        .into_iter()
        .chain(products)
        .map(|(g, k, p)| ((g.to_owned(), k.to_owned()), p.to_owned()))
        .collect()
}

fn plural_of(
    kinds: &BTreeMap<(String, String), String>,
    group: &str,
    kind: &str,
    from: &str,
) -> String {
    kinds
        .get(&(group.to_owned(), kind.to_owned()))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{from}: kind {kind:?} in apiGroup {group:?} is not a built-in kind this test knows; \
                 add it to builtin_kinds() in tests/chart.rs (and check the chart's plural)"
            )
        })
}

/// Every (apiGroup, plural) the given catalog action documents read, plus namespaces.
fn kinds_needed_by(actions: &[(String, Value)]) -> BTreeSet<(ApiGroup, Plural)> {
    let table = builtin_kinds();
    let mut needed = BTreeSet::from([(String::new(), "namespaces".to_owned())]);
    for (from, action) in actions {
        let check = &action["spec"]["check"];
        for list in ["resources", "lookups"] {
            for item in check[list].as_sequence().into_iter().flatten() {
                let group = item["apiGroup"].as_str().unwrap_or("");
                let kind = item["kind"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{from}: spec.check.{list}[] without kind"));
                needed.insert((group.to_owned(), plural_of(&table, group, kind, from)));
            }
        }
        if check["podSpec"].as_bool() == Some(true) {
            for (group, plural) in [
                ("", "pods"),
                ("apps", "deployments"),
                ("apps", "statefulsets"),
                ("apps", "daemonsets"),
                ("apps", "replicasets"),
                ("batch", "jobs"),
                ("batch", "cronjobs"),
            ] {
                needed.insert((group.to_owned(), plural.to_owned()));
            }
        }
    }
    needed
}

/// The catalog files of a chart, parsed: (file name, document).
fn catalog_files(chart: &Path) -> Vec<(String, Value)> {
    let dir = chart.join("catalog");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Value)> = entries
        .map(|e| e.expect("catalog entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let doc: Value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", p.display()));
            (p.display().to_string(), doc)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// The catalog files the chart installs with default values: those over another product's
/// reports (label `securescore.io/product`) are opt-in under `products.*.enabled`.
fn installed_by_default(files: Vec<(String, Value)>) -> Vec<(String, Value)> {
    files
        .into_iter()
        .filter(|(_, a)| product_of(a).is_none())
        .collect()
}

fn product_of(action: &Value) -> Option<&str> {
    str_at(action, &["metadata", "labels", "securescore.io/product"])
}

fn action_name(action: &Value) -> &str {
    str_at(action, &["metadata", "name"]).expect("catalog action has metadata.name")
}

/// One RBAC grant: (apiGroup, resource) -> verbs, from every rule of a (Cluster)Role.
fn grants(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_sequence().expect("role has rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                out.entry((group.clone(), resource))
                    .or_default()
                    .extend(strings(&rule["verbs"]));
            }
        }
    }
    out
}

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| (*v).to_owned()).collect()
}

/// What the ClusterRole must grant for catalog actions (and extras) that read `needed`.
fn expected_cluster_role(
    needed: &BTreeSet<(ApiGroup, Plural)>,
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut expected: BTreeMap<(String, String), BTreeSet<String>> = needed
        .iter()
        .map(|(g, r)| {
            let v = if r == "secrets" && g.is_empty() {
                verbs(&["list", "watch"])
            } else {
                verbs(&["get", "list", "watch"])
            };
            ((g.clone(), r.clone()), v)
        })
        .collect();
    for r in [
        "improvementactions",
        "securescoretargets",
        "securitycontrols",
    ] {
        expected.insert(
            ("securescore.io".into(), r.into()),
            verbs(&["get", "list", "watch"]),
        );
        expected.insert(
            ("securescore.io".into(), format!("{r}/status")),
            verbs(&["patch", "update"]),
        );
    }
    expected.insert(
        ("events.k8s.io".into(), "events".into()),
        verbs(&["create", "patch"]),
    );
    expected.insert(
        (String::new(), "events".into()),
        verbs(&["create", "patch"]),
    );
    expected
}

fn assert_cluster_role(docs: &[Value], needed: &BTreeSet<(ApiGroup, Plural)>, context: &str) {
    let role = one(docs, "ClusterRole");
    let actual = grants(role);
    let expected = expected_cluster_role(needed);
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .collect();
    let extra: Vec<_> = actual
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(*v))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: ClusterRole differs from what the catalog needs.\n  missing or different: {missing:?}\n  not needed: {extra:?}"
    );
    for rule in role["rules"].as_sequence().expect("rules") {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                !strings(&rule[field]).iter().any(|s| s == "*"),
                "{context}: wildcard in ClusterRole {field}: {rule:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lint, CRDs, schema

#[test]
fn chart_lints_with_default_values_and_with_every_option_on() {
    let fixture = fixture_chart(true);
    for chart in [chart_dir(), fixture_path(&fixture)] {
        let chart_arg = chart.to_str().expect("UTF-8 path");
        for extra in [vec![], vec!["--values", ALL_ON], vec!["--values", DOGFOOD]] {
            let mut args = vec!["lint", "--strict", chart_arg, "--namespace", NAMESPACE];
            args.extend(extra.iter().copied());
            let out = run(&helm(), &args, &chart);
            assert!(
                out.status.success(),
                "helm {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let chart = std::fs::read(chart_dir().join("crds/securescore.io_crds.yaml"))
        .expect("charts/securescore/crds/securescore.io_crds.yaml exists");
    let generated =
        std::fs::read(Path::new(REPO).join("crds/securescore.io_crds.yaml")).expect("crds/");
    assert!(
        chart == generated,
        "charts/securescore/crds/securescore.io_crds.yaml differs from crds/securescore.io_crds.yaml: \
         cp crds/securescore.io_crds.yaml charts/securescore/crds/"
    );
    let docs = rendered(&chart_dir(), &[]);
    let names: BTreeSet<_> = of_kind(&docs, "CustomResourceDefinition")
        .into_iter()
        .filter_map(|c| str_at(c, &["metadata", "name"]))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "improvementactions.securescore.io",
            "securescoretargets.securescore.io",
            "securitycontrols.securescore.io"
        ])
    );
}

/// name -> spec of the SecurityControls a render holds.
fn shipped_controls(docs: &[Value]) -> BTreeMap<String, Value> {
    of_kind(docs, "SecurityControl")
        .into_iter()
        .map(|c| {
            (
                str_at(c, &["metadata", "name"]).expect("name").to_string(),
                c["spec"].clone(),
            )
        })
        .collect()
}

#[test]
fn chart_ships_the_built_in_controls_the_binary_embeds() {
    let all_products = [
        "--set",
        "products.trivyOperator.enabled=true",
        "--set",
        "products.policyReports.enabled=true",
    ];
    let shipped = shipped_controls(&rendered(&chart_dir(), &all_products));
    let embedded = securescore::catalog::builtin_controls().expect("built-in controls");
    assert_eq!(shipped.len(), embedded.len());
    for c in &embedded {
        let name = c.metadata.name.clone().expect("name");
        let spec: Value = serde_yaml_ng::to_value(&c.spec).expect("spec");
        assert_eq!(shipped.get(&name), Some(&spec), "control {name}");
    }
    // A control over one product's opt-in actions comes with the product, never as a control
    // grouping nothing (Ready=False NoActions).
    let product_only = [
        (
            "products.trivyOperator.enabled=true",
            "remediate-vulnerabilities",
        ),
        (
            "products.policyReports.enabled=true",
            "resolve-policy-violations",
        ),
    ];
    let default: BTreeSet<String> = shipped_controls(&rendered(&chart_dir(), &[]))
        .into_keys()
        .collect();
    let mut expected: BTreeSet<String> = shipped.keys().cloned().collect();
    for (_, control) in product_only {
        expected.remove(control);
    }
    assert_eq!(default, expected);
    for (set, control) in product_only {
        let with = shipped_controls(&rendered(&chart_dir(), &["--set", set]));
        assert!(with.contains_key(control), "{set}: {control}");
        assert_eq!(with.len(), default.len() + 1, "{set}");
    }
    let off = rendered(&chart_dir(), &["--set", "controls.enabled=false"]);
    assert!(of_kind(&off, "SecurityControl").is_empty());
    let one_off = rendered(
        &chart_dir(),
        &["--set", "controls.disabled={protect-secrets}"],
    );
    assert_eq!(
        of_kind(&one_off, "SecurityControl").len(),
        default.len() - 1
    );
    let bad = try_render(&chart_dir(), &["--set", "controls.disabled={bogus}"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("controls.disabled: \"bogus\" is not a built-in SecurityControl"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn values_schema_rejects_unknown_keys_and_bad_values() {
    for (set, why) in [
        ("replicaCount=2", "unknown top-level key"),
        ("image.digest=latest", "digest that is not sha256:<hex>"),
        ("operator.logFormat=xml", "log format outside json|text"),
        ("catalog.bogus=true", "unknown key under catalog"),
    ] {
        let out = try_render(&chart_dir(), &["--set", set]);
        assert!(!out.status.success(), "--set {set} ({why}) was accepted");
        let key = set
            .split('=')
            .next()
            .and_then(|k| k.rsplit('.').next())
            .unwrap_or(set);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("schema") && err.contains(key),
            "--set {set}: the schema should reject it, naming {key}:\n{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The operator's pod

fn operator_container(docs: &[Value]) -> &Value {
    let deployment = one(docs, "Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

#[test]
fn operator_pod_is_hardened_with_default_and_all_on_values() {
    for extra in [vec![], vec!["--values", ALL_ON]] {
        let docs = rendered(&chart_dir(), &extra);
        let deployment = one(&docs, "Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "{extra:?}");
        assert_eq!(psc["runAsUser"].as_u64(), Some(65532), "{extra:?}");
        assert_eq!(
            str_at(psc, &["seccompProfile", "type"]),
            Some("RuntimeDefault")
        );
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            assert_ne!(pod[field].as_bool(), Some(true), "{field}");
        }
        let sa = pod["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName");
        assert_ne!(
            sa, "default",
            "the pod must not run as the default ServiceAccount"
        );
        assert!(
            of_kind(&docs, "ServiceAccount")
                .iter()
                .any(|s| str_at(s, &["metadata", "name"]) == Some(sa)),
            "ServiceAccount {sa} is rendered"
        );

        let c = operator_container(&docs);
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
        assert_eq!(sc["runAsUser"].as_u64(), Some(65532));
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_ne!(sc["privileged"].as_bool(), Some(true));
        assert_eq!(strings(&sc["capabilities"]["drop"]), vec!["ALL"]);
        assert!(sc["capabilities"]["add"].is_null(), "no capability added");
        assert_eq!(
            str_at(sc, &["seccompProfile", "type"]),
            Some("RuntimeDefault")
        );
        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(
                    !c["resources"][kind][res].is_null(),
                    "resources.{kind}.{res} is set"
                );
            }
        }
        assert_eq!(
            str_at(c, &["livenessProbe", "httpGet", "path"]),
            Some("/healthz")
        );
        assert_eq!(
            str_at(c, &["readinessProbe", "httpGet", "path"]),
            Some("/readyz")
        );
        let ports = c["ports"].as_sequence().expect("ports");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["containerPort"].as_u64(), Some(8080));
        assert_eq!(ports[0]["name"].as_str(), Some("http-metrics"));
        for probe in ["livenessProbe", "readinessProbe"] {
            let port = &c[probe]["httpGet"]["port"];
            assert!(
                port.as_str() == Some("http-metrics") || port.as_u64() == Some(8080),
                "{probe} targets the metrics port"
            );
        }

        // The token: automounted on the pod (the operator needs the API), or mounted from an
        // explicit projected volume at the standard path.
        match pod["automountServiceAccountToken"].as_bool() {
            Some(true) => {}
            Some(false) => {
                let mounts = c["volumeMounts"].as_sequence().expect("volumeMounts");
                assert!(
                    mounts.iter().any(|m| m["mountPath"].as_str()
                        == Some("/var/run/secrets/kubernetes.io/serviceaccount")),
                    "{extra:?}: no automount, so the projected token must be mounted"
                );
            }
            None => panic!("{extra:?}: automountServiceAccountToken must be explicit"),
        }
        let account = of_kind(&docs, "ServiceAccount")[0];
        assert_eq!(
            account["automountServiceAccountToken"].as_bool(),
            Some(false),
            "the ServiceAccount itself does not hand tokens to every pod"
        );
    }
}

#[test]
fn operator_runs_with_the_documented_flags() {
    let docs = rendered(&chart_dir(), &["--values", ALL_ON]);
    let args = strings(&operator_container(&docs)["args"]);
    assert_eq!(args.first().map(String::as_str), Some("run"));
    for expected in [
        "--metrics-addr=0.0.0.0:8080",
        "--leader-election",
        "--lease-name=securescore-leader",
        "--lease-namespace=securescore-system",
        "--cluster-target-namespaces=securescore-system,platform-security",
        "--log-format=json",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing from {args:?}"
        );
    }
    let image = operator_container(&docs)["image"].as_str().expect("image");
    assert!(
        image.ends_with(&format!("@sha256:{}", "0".repeat(64))),
        "a digest pins the image: {image}"
    );
    let default_docs = rendered(&chart_dir(), &[]);
    let image = operator_container(&default_docs)["image"]
        .as_str()
        .expect("image");
    assert_eq!(
        image, "ghcr.io/securescore/securescore:0.1.0",
        "tag defaults to appVersion"
    );
    let args = strings(&operator_container(&default_docs)["args"]);
    assert!(
        args.iter()
            .any(|a| a == "--cluster-target-namespaces=securescore-system")
    );
}

#[test]
fn pod_disruption_budget_only_with_more_than_one_replica() {
    assert!(of_kind(&rendered(&chart_dir(), &[]), "PodDisruptionBudget").is_empty());
    let docs = rendered(&chart_dir(), &["--set", "replicas=2"]);
    let pdb = one(&docs, "PodDisruptionBudget");
    let deployment = one(&docs, "Deployment");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"],
        "the PDB selects the operator's pods"
    );
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// RBAC

#[test]
fn cluster_role_reads_exactly_what_the_real_catalog_needs() {
    let catalog = installed_by_default(catalog_files(&chart_dir()));
    let docs = rendered(&chart_dir(), &[]);
    assert_cluster_role(&docs, &kinds_needed_by(&catalog), "real catalog");
    let off = rendered(&chart_dir(), &["--set", "catalog.enabled=false"]);
    assert_cluster_role(&off, &kinds_needed_by(&[]), "catalog disabled");
}

#[test]
fn cluster_role_follows_the_enabled_actions() {
    let fixture = fixture_chart(false);
    let chart = fixture_path(&fixture);
    let catalog = catalog_files(&chart);
    assert_eq!(catalog.len(), 3);
    let docs = rendered(&chart, &[]);
    let needed = kinds_needed_by(&catalog);
    assert!(needed.contains(&("networking.k8s.io".into(), "networkpolicies".into())));
    assert!(needed.contains(&(String::new(), "secrets".into())));
    assert_cluster_role(&docs, &needed, "fixture catalog");

    // Disabling the only action that reads ingresses and secrets removes both grants.
    let docs = rendered(&chart, &["--set", "catalog.disabled={fixture-ingress-tls}"]);
    let remaining: Vec<_> = catalog
        .iter()
        .filter(|(_, a)| action_name(a) != "fixture-ingress-tls")
        .cloned()
        .collect();
    let needed = kinds_needed_by(&remaining);
    assert!(!needed.contains(&("networking.k8s.io".into(), "ingresses".into())));
    assert_cluster_role(&docs, &needed, "fixture catalog minus fixture-ingress-tls");
}

/// Product actions (and the grants on their report kinds) are rendered only when their product
/// is enabled, one product independently of the other.
#[test]
fn product_actions_and_their_report_kinds_only_when_the_product_is_enabled() {
    let all = catalog_files(&chart_dir());
    let of_product = |p: &str| -> Vec<(String, Value)> {
        all.iter()
            .filter(|(_, a)| product_of(a) == Some(p))
            .cloned()
            .collect()
    };
    let trivy = of_product("trivy-operator");
    let policy = of_product("policy-reports");
    assert_eq!(trivy.len(), 3);
    assert_eq!(policy.len(), 1);
    let default_on = installed_by_default(all.clone());
    for (values, products) in [
        (vec![], vec![]),
        (
            vec!["--set", "products.trivyOperator.enabled=true"],
            vec![&trivy],
        ),
        (
            vec!["--set", "products.policyReports.enabled=true"],
            vec![&policy],
        ),
        (
            vec![
                "--set",
                "products.trivyOperator.enabled=true",
                "--set",
                "products.policyReports.enabled=true",
            ],
            vec![&trivy, &policy],
        ),
    ] {
        let docs = rendered(&chart_dir(), &values);
        let mut expected = default_on.clone();
        for p in &products {
            expected.extend(p.iter().cloned());
        }
        let mut want: Vec<&str> = expected.iter().map(|(_, a)| action_name(a)).collect();
        want.sort();
        let mut got: Vec<&str> = of_kind(&docs, "ImprovementAction")
            .into_iter()
            .map(action_name)
            .collect();
        got.sort();
        assert_eq!(got, want, "{values:?}");
        assert_cluster_role(&docs, &kinds_needed_by(&expected), &format!("{values:?}"));
        let role = grants(one(&docs, "ClusterRole"));
        let reads =
            |group: &str, plural: &str| role.contains_key(&(group.to_string(), plural.to_string()));
        let trivy_on = products.iter().any(|p| std::ptr::eq(*p, &trivy));
        let policy_on = products.iter().any(|p| std::ptr::eq(*p, &policy));
        for plural in [
            "vulnerabilityreports",
            "configauditreports",
            "exposedsecretreports",
        ] {
            assert_eq!(
                reads("aquasecurity.github.io", plural),
                trivy_on,
                "{values:?} {plural}"
            );
        }
        for plural in ["policyreports", "clusterpolicyreports"] {
            assert_eq!(
                reads("wgpolicyk8s.io", plural),
                policy_on,
                "{values:?} {plural}"
            );
        }
    }
    // A typo under products is rejected by the values schema.
    let out = try_render(&chart_dir(), &["--set", "products.trivy.enabled=true"]);
    assert!(!out.status.success());
}

#[test]
fn secrets_are_never_readable_by_get() {
    let fixture = fixture_chart(false);
    for (chart, extra) in [
        (chart_dir(), vec![]),
        (chart_dir(), vec!["--values", ALL_ON]),
        (
            fixture_path(&fixture),
            vec![
                "--set",
                "rbac.extraResources[0].apiGroup=,rbac.extraResources[0].kind=Secret",
            ],
        ),
    ] {
        let docs = rendered(&chart, &extra);
        for kind in ["ClusterRole", "Role"] {
            for role in of_kind(&docs, kind) {
                let g = grants(role);
                if let Some(v) = g.get(&(String::new(), "secrets".to_owned())) {
                    assert_eq!(
                        v,
                        &verbs(&["list", "watch"]),
                        "{kind} secrets verbs ({extra:?})"
                    );
                }
            }
        }
    }
}

/// Every rule of every (Cluster)Role that could reach Secrets.
fn secrets_rules(docs: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    for kind in ["ClusterRole", "Role"] {
        for role in of_kind(docs, kind) {
            for rule in role["rules"].as_sequence().into_iter().flatten() {
                let groups = strings(&rule["apiGroups"]);
                let resources = strings(&rule["resources"]);
                if groups.iter().any(|g| g.is_empty() || g == "*")
                    && resources.iter().any(|r| r == "secrets" || r == "*")
                {
                    found.push(format!("{kind}: {rule:?}"));
                }
            }
        }
    }
    found
}

#[test]
fn the_default_render_grants_nothing_on_secrets() {
    // No built-in action needs Secret data, so nothing may grant it by default.
    for extra in [vec![], vec!["--values", ALL_ON]] {
        let docs = rendered(&chart_dir(), &extra);
        assert!(!of_kind(&docs, "ClusterRole").is_empty(), "{extra:?}");
        assert_eq!(secrets_rules(&docs), Vec::<String>::new(), "{extra:?}");
    }
}

#[test]
fn reading_secrets_needs_the_explicit_opt_in() {
    let secret = "rbac.extraResources[0].apiGroup=,rbac.extraResources[0].kind=Secret";
    let fixture = fixture_chart(false);
    for (chart, set) in [
        (chart_dir(), secret.to_owned()),
        (
            fixture_path(&fixture),
            "rbac.secretsListWatch=false".to_owned(),
        ),
    ] {
        let out = try_render(&chart, &["--set", &set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} rendered");
        assert!(
            stderr.contains("rbac.secretsListWatch=true") && stderr.contains("every Secret"),
            "--set {set}: {stderr}"
        );
    }
    let opted_in = format!("{secret},rbac.secretsListWatch=true");
    let docs = rendered(&chart_dir(), &["--set", &opted_in]);
    let g = grants(one(&docs, "ClusterRole"));
    assert_eq!(
        g.get(&(String::new(), "secrets".to_owned())),
        Some(&verbs(&["list", "watch"]))
    );
}

#[test]
fn kind_plurals_match_the_kubernetes_api() {
    // Every built-in kind asked for through rbac.extraResources gets the API's own plural.
    let table = builtin_kinds();
    let mut args = vec![
        "--set".to_owned(),
        "catalog.enabled=false,rbac.secretsListWatch=true".to_owned(),
    ];
    for (i, ((group, kind), _)) in table.iter().enumerate() {
        args.push("--set".into());
        args.push(format!(
            "rbac.extraResources[{i}].apiGroup={group},rbac.extraResources[{i}].kind={kind}"
        ));
    }
    let n = table.len();
    args.push("--set".into());
    args.push(format!(
        "rbac.extraResources[{n}].apiGroup=example.com,rbac.extraResources[{n}].resource=widgets"
    ));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let docs = rendered(&chart_dir(), &args);
    let mut needed: BTreeSet<(String, String)> = table
        .iter()
        .map(|((g, _), p)| (g.clone(), p.clone()))
        .collect();
    needed.insert((String::new(), "namespaces".into()));
    needed.insert(("example.com".into(), "widgets".into()));
    let role = one(&docs, "ClusterRole");
    let read: BTreeSet<(String, String)> = grants(role)
        .into_iter()
        .filter(|(_, v)| v.contains("list"))
        .map(|(k, _)| k)
        .filter(|(g, _)| g != "securescore.io")
        .collect();
    assert_eq!(read, needed, "plurals from the chart vs k8s-openapi");
}

#[test]
fn leader_election_role_is_namespaced_and_limited_to_leases() {
    let docs = rendered(&chart_dir(), &[]);
    let role = one(&docs, "Role");
    assert_eq!(str_at(role, &["metadata", "namespace"]), Some(NAMESPACE));
    let g = grants(role);
    assert_eq!(
        g.keys().collect::<Vec<_>>(),
        vec![&("coordination.k8s.io".to_owned(), "leases".to_owned())]
    );
    let all = &g[&("coordination.k8s.io".to_owned(), "leases".to_owned())];
    for v in ["get", "create", "update"] {
        assert!(all.contains(v), "leases {v}");
    }
    let binding = one(&docs, "RoleBinding");
    assert_eq!(
        str_at(binding, &["roleRef", "name"]),
        str_at(role, &["metadata", "name"])
    );
    let cluster_binding = one(&docs, "ClusterRoleBinding");
    let subject = &cluster_binding["subjects"][0];
    assert_eq!(subject["namespace"].as_str(), Some(NAMESPACE));
    let off = rendered(
        &chart_dir(),
        &["--set", "operator.leaderElection.enabled=false"],
    );
    assert!(of_kind(&off, "Role").is_empty());
    assert!(
        !strings(&operator_container(&off)["args"])
            .iter()
            .any(|a| a == "--leader-election")
    );
}

// ---------------------------------------------------------------------------------------------
// Catalog and default target

#[test]
fn every_catalog_file_is_rendered_unchanged_with_chart_labels() {
    let fixture = fixture_chart(false);
    for chart in [chart_dir(), fixture_path(&fixture)] {
        let catalog = installed_by_default(catalog_files(&chart));
        let docs = rendered(&chart, &[]);
        let actions = of_kind(&docs, "ImprovementAction");
        assert_eq!(
            actions.len(),
            catalog.len(),
            "{}: one ImprovementAction per file",
            chart.display()
        );
        for (file, source) in &catalog {
            let name = action_name(source);
            let action = actions
                .iter()
                .find(|a| action_name(a) == name)
                .unwrap_or_else(|| panic!("{file}: action {name} not rendered"));
            assert_eq!(
                action["spec"], source["spec"],
                "{file}: spec changed by rendering"
            );
            assert_eq!(
                action["apiVersion"].as_str(),
                Some("securescore.io/v1alpha1")
            );
            let labels = &action["metadata"]["labels"];
            assert_eq!(
                labels["app.kubernetes.io/managed-by"].as_str(),
                Some("Helm")
            );
            assert!(
                labels["helm.sh/chart"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("securescore-"))
            );
            if let Some(own) = source["metadata"]["labels"].as_mapping() {
                for (k, v) in own {
                    assert_eq!(&labels[k], v, "{file}: label {k:?} kept");
                }
            }
        }
    }
}

#[test]
fn disabled_actions_are_not_rendered() {
    let fixture = fixture_chart(false);
    let chart = fixture_path(&fixture);
    let docs = rendered(
        &chart,
        &[
            "--set",
            "catalog.disabled={fixture-ingress-tls,fixture-default-deny}",
        ],
    );
    let names: Vec<_> = of_kind(&docs, "ImprovementAction")
        .into_iter()
        .map(action_name)
        .collect();
    assert_eq!(names, vec!["fixture-run-as-non-root"]);

    let off = rendered(&chart, &["--set", "catalog.enabled=false"]);
    assert!(of_kind(&off, "ImprovementAction").is_empty());

    // The real catalog too: disabling its first action removes exactly that one.
    let real = installed_by_default(catalog_files(&chart_dir()));
    if let Some((_, first)) = real.first() {
        let name = action_name(first);
        let docs = rendered(
            &chart_dir(),
            &["--set", &format!("catalog.disabled={{{name}}}")],
        );
        let left: Vec<_> = of_kind(&docs, "ImprovementAction")
            .into_iter()
            .map(action_name)
            .collect();
        assert_eq!(left.len(), real.len() - 1);
        assert!(!left.contains(&name));
    }
}

#[test]
fn an_unknown_disabled_action_fails_the_install() {
    let fixture = fixture_chart(false);
    let out = try_render(
        &fixture_path(&fixture),
        &["--set", "catalog.disabled={no-such-action}"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-action") && err.contains("catalog.disabled"),
        "{err}"
    );
}

#[test]
fn a_catalog_file_without_a_name_is_a_clear_error() {
    let fixture = fixture_chart(false);
    let chart = fixture_path(&fixture);
    std::fs::write(
        chart.join("catalog/broken.yaml"),
        "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\nspec:\n  title: x\n",
    )
    .expect("write");
    let out = try_render(&chart, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("catalog/broken.yaml") && err.contains("metadata.name"),
        "{err}"
    );
}

#[test]
fn default_target_is_cluster_wide_in_the_release_namespace() {
    assert!(of_kind(&rendered(&chart_dir(), &[]), "SecureScoreTarget").is_empty());
    let docs = rendered(&chart_dir(), &["--values", ALL_ON]);
    let target = one(&docs, "SecureScoreTarget");
    assert_eq!(str_at(target, &["metadata", "namespace"]), Some(NAMESPACE));
    assert_eq!(target["spec"]["goal"].as_u64(), Some(90));
    assert_eq!(
        target["spec"]["scope"]["clusterResources"].as_bool(),
        Some(true)
    );
    assert_eq!(
        target["spec"]["scope"]["namespaces"]["selector"],
        Value::Mapping(Default::default()),
        "selector {{}} matches every namespace"
    );
    // It must deserialize as the operator's own type.
    let json = serde_json::to_value(target).expect("to JSON");
    let typed: securescore::api::SecureScoreTarget =
        serde_json::from_value(json).expect("the default target is a valid SecureScoreTarget");
    assert_eq!(typed.spec.goal, Some(90));
}

#[test]
fn release_namespace_is_rendered_only_on_request_and_enforces_pod_security() {
    assert!(of_kind(&rendered(&chart_dir(), &[]), "Namespace").is_empty());
    let docs = rendered(&chart_dir(), &["--values", DOGFOOD]);
    let ns = one(&docs, "Namespace");
    assert_eq!(str_at(ns, &["metadata", "name"]), Some(NAMESPACE));
    assert_eq!(
        str_at(
            ns,
            &["metadata", "labels", "pod-security.kubernetes.io/enforce"]
        ),
        Some("restricted")
    );
    assert_eq!(
        str_at(ns, &["metadata", "annotations", "helm.sh/resource-policy"]),
        Some("keep"),
        "uninstall must not delete the namespace and every target in it"
    );
    let image = operator_container(&docs)["image"].as_str().expect("image");
    assert!(
        image.contains("@sha256:"),
        "dog-food values pin the image: {image}"
    );
    let out = try_render(&chart_dir(), &["--set", "namespace.podSecurity=privileged"]);
    assert!(
        !out.status.success(),
        "only baseline or restricted may be enforced"
    );
}

#[test]
fn default_token_is_projected_not_automounted() {
    let docs = rendered(&chart_dir(), &[]);
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    let volume = pod["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| !v["projected"].is_null())
        .expect("a projected token volume");
    let sources = volume["projected"]["sources"]
        .as_sequence()
        .expect("sources");
    let token = sources
        .iter()
        .find(|s| !s["serviceAccountToken"].is_null())
        .expect("serviceAccountToken source");
    assert_eq!(
        str_at(token, &["serviceAccountToken", "path"]),
        Some("token")
    );
    assert!(
        token["serviceAccountToken"]["expirationSeconds"]
            .as_u64()
            .is_some_and(|s| s <= 3607),
        "a short-lived bound token"
    );
    for (source, path) in [("configMap", "ca.crt"), ("downwardAPI", "namespace")] {
        let found = sources.iter().find(|s| !s[source].is_null()).expect(source);
        assert_eq!(str_at(&found[source]["items"][0], &["path"]), Some(path));
    }
    assert_eq!(
        str_at(
            &sources
                .iter()
                .find(|s| !s["configMap"].is_null())
                .expect("configMap")["configMap"],
            &["name"]
        ),
        Some("kube-root-ca.crt")
    );
    let mounts = operator_container(&docs)["volumeMounts"]
        .as_sequence()
        .expect("mounts");
    let mount = mounts
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the token volume is mounted");
    assert_eq!(
        str_at(mount, &["mountPath"]),
        Some("/var/run/secrets/kubernetes.io/serviceaccount"),
        "where kube's in-cluster config reads it"
    );
    assert_eq!(mount["readOnly"].as_bool(), Some(true));
}

// ---------------------------------------------------------------------------------------------
// Network and monitoring

#[test]
fn network_policy_admits_metrics_only_from_the_given_peers() {
    let docs = rendered(&chart_dir(), &[]);
    let policies = of_kind(&docs, "NetworkPolicy");
    let deny = policies
        .iter()
        .find(|p| p["spec"]["podSelector"] == Value::Mapping(Default::default()))
        .expect("a namespace-wide default-deny NetworkPolicy");
    assert_eq!(
        strings(&deny["spec"]["policyTypes"]),
        vec!["Ingress", "Egress"]
    );
    assert!(deny["spec"]["ingress"].is_null() && deny["spec"]["egress"].is_null());

    let operator = policies
        .iter()
        .find(|p| p["spec"]["podSelector"] != Value::Mapping(Default::default()))
        .expect("the operator's NetworkPolicy");
    assert_eq!(
        operator["spec"]["podSelector"]["matchLabels"],
        one(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        operator["spec"]["ingress"].as_sequence().map(Vec::len),
        Some(0),
        "no metricsFrom: no ingress at all"
    );

    let docs = rendered(&chart_dir(), &["--values", ALL_ON]);
    let operator = of_kind(&docs, "NetworkPolicy")
        .into_iter()
        .find(|p| p["spec"]["podSelector"] != Value::Mapping(Default::default()))
        .expect("operator policy");
    let ingress = operator["spec"]["ingress"].as_sequence().expect("ingress");
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        str_at(&ingress[0]["ports"][0], &["port"]),
        Some("http-metrics")
    );
    assert_eq!(
        str_at(
            &ingress[0]["from"][0],
            &[
                "namespaceSelector",
                "matchLabels",
                "kubernetes.io/metadata.name"
            ]
        ),
        Some("monitoring")
    );
    let egress = operator["spec"]["egress"].as_sequence().expect("egress");
    assert_eq!(
        str_at(&egress[0]["to"][0], &["ipBlock", "cidr"]),
        Some("10.0.0.1/32")
    );

    let off = rendered(&chart_dir(), &["--set", "networkPolicy.enabled=false"]);
    assert!(of_kind(&off, "NetworkPolicy").is_empty());
}

#[test]
fn metrics_service_is_cluster_internal() {
    let docs = rendered(&chart_dir(), &[]);
    let service = one(&docs, "Service");
    assert_eq!(service["spec"]["type"].as_str(), Some("ClusterIP"));
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["name"].as_str(), Some("http-metrics"));
    assert_eq!(port["port"].as_u64(), Some(8080));
    assert_eq!(
        service["spec"]["selector"],
        one(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn monitoring_extras_are_opt_in_and_read_from_the_chart_files() {
    let defaults = rendered(&chart_dir(), &[]);
    for kind in ["ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(of_kind(&defaults, kind).is_empty(), "{kind} is opt-in");
    }

    let without_files = fixture_chart(false);
    let docs = rendered(&fixture_path(&without_files), &["--values", ALL_ON]);
    assert!(
        of_kind(&docs, "PrometheusRule").is_empty(),
        "no rules file: nothing rendered"
    );
    assert!(
        of_kind(&docs, "ConfigMap").is_empty(),
        "no dashboard file: nothing rendered"
    );
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(
        str_at(&monitor["spec"]["endpoints"][0], &["port"]),
        Some("http-metrics")
    );
    assert_eq!(
        str_at(monitor, &["metadata", "labels", "release"]),
        Some("kube-prometheus-stack")
    );

    let with_files = fixture_chart(true);
    let docs = rendered(&fixture_path(&with_files), &["--values", ALL_ON]);
    let rule = one(&docs, "PrometheusRule");
    assert_eq!(
        str_at(&rule["spec"]["groups"][0]["rules"][0], &["alert"]),
        Some("SecureScoreGoalMissed")
    );
    let dashboard = one(&docs, "ConfigMap");
    assert_eq!(
        str_at(dashboard, &["metadata", "labels", "grafana_dashboard"]),
        Some("1")
    );
    let json = str_at(dashboard, &["data", "securescore.json"]).expect("dashboard data");
    let parsed: serde_json::Value = serde_json::from_str(json).expect("dashboard is JSON");
    assert_eq!(parsed["title"], "Secure Score");
}

#[test]
fn kube_prometheus_stack_example_lets_prometheus_find_and_reach_the_metrics() {
    let example = Path::new(REPO).join("examples/helm/values-kube-prometheus-stack.yaml");
    let example = example.to_str().expect("UTF-8 path");
    let chart = chart_dir();
    let lint = run(
        &helm(),
        &[
            "lint",
            "--strict",
            chart.to_str().expect("UTF-8"),
            "--values",
            example,
        ],
        &chart,
    );
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );
    let docs = rendered(&chart, &["--values", example]);
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(
        str_at(monitor, &["metadata", "labels", "release"]),
        Some("kube-prometheus-stack")
    );
    let service = one(&docs, "Service");
    let wanted = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("ServiceMonitor matchLabels");
    assert!(!wanted.is_empty());
    for (k, v) in wanted {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the metrics Service by its label {k:?}"
        );
    }
    assert_eq!(
        str_at(&monitor["spec"]["endpoints"][0], &["port"]),
        str_at(&service["spec"]["ports"][0], &["name"])
    );
    let policy = of_kind(&docs, "NetworkPolicy")
        .into_iter()
        .find(|p| p["spec"]["podSelector"] != Value::Mapping(Default::default()))
        .expect("operator policy");
    assert_eq!(
        str_at(
            &policy["spec"]["ingress"][0]["from"][0],
            &[
                "namespaceSelector",
                "matchLabels",
                "kubernetes.io/metadata.name"
            ]
        ),
        Some("monitoring")
    );
}

// ---------------------------------------------------------------------------------------------
// Offline validation against the Kubernetes schemas

/// Kinds defined by CRDs, which kubernetes-validate has no schema for and reports as skipped.
const CRD_KINDS: [&str; 5] = [
    "ImprovementAction",
    "SecureScoreTarget",
    "SecurityControl",
    "ServiceMonitor",
    "PrometheusRule",
];

#[test]
fn rendered_manifests_validate_against_the_kubernetes_schemas() {
    let validate = tool("kubernetes-validate", "kubernetes-validate");
    let fixture = fixture_chart(true);
    for (chart, extra) in [
        (chart_dir(), vec![]),
        (chart_dir(), vec!["--values", ALL_ON]),
        (chart_dir(), vec!["--values", DOGFOOD]),
        (fixture_path(&fixture), vec!["--values", ALL_ON]),
    ] {
        let yaml = render(&chart, &extra);
        let docs = documents(&yaml);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &yaml).expect("write rendered");
        let out = run(
            &validate,
            &["--strict", file.to_str().expect("UTF-8")],
            dir.path(),
        );
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{extra:?}: kubernetes-validate failed:\n{report}"
        );
        assert!(!report.contains("ERROR"), "{extra:?}:\n{report}");
        let builtin = docs
            .iter()
            .filter(|d| !CRD_KINDS.contains(&d["kind"].as_str().unwrap_or("")))
            .count();
        let passed = report
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed, builtin,
            "{extra:?}: every built-in kind validated:\n{report}"
        );
        for line in report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
        {
            assert!(
                CRD_KINDS
                    .iter()
                    .any(|k| line.contains(&format!("kind {k} "))),
                "{extra:?}: a built-in kind was skipped, not validated: {line}"
            );
        }
        let skipped = report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
            .count();
        assert_eq!(
            skipped,
            docs.len() - builtin,
            "{extra:?}: CRD-typed objects are reported as skipped"
        );
    }
}

#[test]
fn validation_catches_a_broken_manifest() {
    // Guards the test above: kubernetes-validate does fail on an invalid built-in object.
    let validate = tool("kubernetes-validate", "kubernetes-validate");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: two\n",
    )
    .expect("write");
    let out = run(
        &validate,
        &["--strict", file.to_str().expect("UTF-8")],
        dir.path(),
    );
    assert!(
        !out.status.success(),
        "an invalid Deployment must fail validation"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

#[test]
fn dockerfile_builds_in_one_stage_and_ships_only_the_binary_as_non_root() {
    let text = std::fs::read_to_string(Path::new(REPO).join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.to_ascii_uppercase().starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(from.len() >= 2, "multi-stage build");
    assert!(
        lines[from[0]].contains("rust:1-bookworm"),
        "builder: {}",
        lines[from[0]]
    );
    assert!(
        text.contains("cargo build --release --locked"),
        "reproducible release build"
    );
    let last = from[from.len() - 1];
    assert!(
        lines[last].contains("gcr.io/distroless/") && lines[last].ends_with(":nonroot"),
        "final stage is distroless nonroot: {}",
        lines[last]
    );
    let final_stage = &lines[last..];
    let copies: Vec<_> = final_stage
        .iter()
        .filter(|l| {
            l.to_ascii_uppercase().starts_with("COPY ")
                || l.to_ascii_uppercase().starts_with("ADD ")
        })
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "only the binary enters the final image: {copies:?}"
    );
    assert!(copies[0].starts_with("COPY --from=builder ") && copies[0].ends_with(" /securescore"));
    assert!(
        final_stage
            .iter()
            .any(|l| *l == "USER 65532:65532" || *l == "USER 65532" || *l == "USER nonroot"),
        "runs as 65532"
    );
    assert!(
        !final_stage
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("RUN ")),
        "no RUN in the final stage"
    );
    assert!(final_stage.contains(&r#"ENTRYPOINT ["/securescore"]"#));
    assert!(final_stage.contains(&r#"CMD ["run"]"#));
    let ignore =
        std::fs::read_to_string(Path::new(REPO).join(".dockerignore")).expect(".dockerignore");
    for excluded in ["target", ".git", ".tools"] {
        assert!(
            ignore.lines().any(|l| l.trim() == excluded),
            ".dockerignore excludes {excluded}"
        );
    }
    assert!(
        !ignore.lines().any(|l| l.trim().starts_with("charts")),
        "the build needs charts/securescore/catalog (the binary embeds it)"
    );
}

/// Dog-food: the chart, rendered into its release namespace with the namespace it can create
/// (`namespace.create`, which carries the Pod Security label), scores 100% against the built-in
/// catalog. With default values the release namespace is not rendered, and the scan's
/// synthesised Namespace lacks that label (97.91%): see the README's Install section.
#[test]
fn the_rendered_chart_scores_100_percent_against_the_built_in_catalog() {
    use std::io::Write;
    let chart = Path::new(REPO).join("charts/securescore");
    let values = chart.join("ci/dogfood-values.yaml");
    let manifests = render(&chart, &["-f", values.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .args([
            "scan",
            "-",
            "--namespace",
            "securescore-system",
            "--min-score",
            "100",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("securescore runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(100.00%)"), "{stdout}");
}
