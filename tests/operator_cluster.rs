//! The operator against a REAL Kubernetes control plane: kube-apiserver (its RBAC authorizer,
//! CRD schema and CEL validation, server-side apply, TokenRequest, watch cache), etcd and
//! kube-controller-manager (garbage collection, namespace deletion).
//!
//! `scripts/test.sh` (hence `.ci/run`) builds one with `scripts/install/control-plane.sh`,
//! starts it with `scripts/cluster.sh up DIR` and runs these tests with
//! `SECURESCORE_CLUSTER_DIR=DIR`. By hand:
//!
//! ```text
//! scripts/cluster.sh up /tmp/ss-cluster
//! SECURESCORE_CLUSTER_DIR=/tmp/ss-cluster cargo test --test operator_cluster
//! scripts/cluster.sh down /tmp/ss-cluster
//! ```
//!
//! Any other disposable cluster (kind, k3d...) works through its kubeconfig:
//! `SECURESCORE_E2E_KUBECONFIG=$KUBECONFIG cargo test --test operator_cluster`; the test that
//! restarts kube-apiserver and compacts etcd needs a cluster from scripts/cluster.sh and fails
//! otherwise. The admin user must be allowed everything (the tests install CRDs, ClusterRoles,
//! a Helm release, namespaces and workloads). Each test works in its own namespaces (random
//! suffix) and removes them; the tests run one at a time (they share cluster-scoped objects, and
//! one restarts the API server).
//!
//! Without either variable the tests FAIL when `CI` is set (a CI run always has a cluster);
//! on a developer's machine they print that they did not run and pass, so that a plain
//! `cargo test` stays usable without a control plane.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::operator::Operator;

/// How long a convergence may take on a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(120);
const GROUP_VERSION: &str = "securescore.io/v1alpha1";

/// The tests share cluster-scoped objects and one restarts kube-apiserver: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:x}", nanos ^ std::process::id())
}

fn sst_resource() -> ApiResource {
    resource(GROUP_VERSION, "SecureScoreTarget", "securescoretargets")
}

fn ia_resource() -> ApiResource {
    resource(GROUP_VERSION, "ImprovementAction", "improvementactions")
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn is_forbidden<T: std::fmt::Debug>(result: &Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

/// A disposable cluster and what a test created in it (removed on drop, even after a panic).
struct Cluster {
    kubeconfig: PathBuf,
    /// The `scripts/cluster.sh` directory, when the cluster came from there.
    control_plane: Option<PathBuf>,
    client: kube::Client,
    namespaces: Vec<String>,
    cluster_objects: Vec<String>,
    helm_releases: Vec<(String, String)>,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// The cluster named by SECURESCORE_CLUSTER_DIR or SECURESCORE_E2E_KUBECONFIG; None (the
    /// test does not run) only outside CI when neither is set. A named cluster that does not
    /// answer fails the test.
    async fn connect() -> Option<Cluster> {
        let serial = SERIAL.lock().await;
        let control_plane = std::env::var_os("SECURESCORE_CLUSTER_DIR").map(PathBuf::from);
        let kubeconfig = match (
            &control_plane,
            std::env::var_os("SECURESCORE_E2E_KUBECONFIG"),
        ) {
            (Some(dir), _) => dir.join("kubeconfig"),
            (None, Some(path)) => PathBuf::from(path),
            (None, None) if ci() => panic!(
                "CI is set but no real cluster was given: run scripts/test.sh (it starts one with \
                 scripts/cluster.sh), or set SECURESCORE_CLUSTER_DIR / SECURESCORE_E2E_KUBECONFIG"
            ),
            (None, None) => {
                eprintln!(
                    "operator_cluster: NOT RUN: no real cluster (set SECURESCORE_CLUSTER_DIR from \
                     `scripts/cluster.sh up DIR`, or SECURESCORE_E2E_KUBECONFIG; scripts/test.sh \
                     does both)"
                );
                return None;
            }
        };
        let config = kube::config::Kubeconfig::read_from(&kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read the kubeconfig {}: {e}", kubeconfig.display()));
        let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", kubeconfig.display()));
        let client = kube::Client::try_from(config).expect("a client");
        if let Err(e) = client.apiserver_version().await {
            panic!(
                "the cluster of {} does not answer: {e}",
                kubeconfig.display()
            );
        }
        let cluster = Cluster {
            kubeconfig,
            control_plane,
            client,
            namespaces: vec![],
            cluster_objects: vec![],
            helm_releases: vec![],
            _serial: serial,
        };
        cluster.install_crds().await;
        Some(cluster)
    }

    async fn install_crds(&self) {
        let input: String = securescore::api::crds()
            .iter()
            .map(|crd| format!("{}\n", serde_json::to_string(crd).expect("CRD JSON")))
            .collect();
        self.kubectl_with_input(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            &input,
        );
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/improvementactions.securescore.io",
            "crd/securescoretargets.securescore.io",
        ]);
    }

    fn control_plane(&self) -> &Path {
        self.control_plane.as_deref().expect(
            "this test restarts kube-apiserver and compacts etcd: it needs a cluster from \
             scripts/cluster.sh (SECURESCORE_CLUSTER_DIR)",
        )
    }

    /// `scripts/cluster.sh SUBCOMMAND DIR`; the test fails when it does.
    fn cluster_sh(&self, subcommand: &str) -> String {
        let out = Command::new("bash")
            .arg(repo().join("scripts/cluster.sh"))
            .arg(subcommand)
            .arg(self.control_plane())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "scripts/cluster.sh {subcommand} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl_output(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = Command::new(support::tools::tool("kubectl", "kubectl-and-helm"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl starts");
        if let Some(input) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("kubectl reads its input");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// kubectl with the admin kubeconfig; the test fails when it does.
    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl_with_input(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl_output(args, Some(input));
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\ninput:\n{input}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Server-side apply of one object (any kind), as the test's own field manager.
    fn apply(&self, object: &Value) {
        self.kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=securescore-e2e",
                "-f",
                "-",
            ],
            &object.to_string(),
        );
    }

    /// A fresh namespace `ss-PREFIX-SUFFIX`, deleted at the end of the test.
    async fn namespace(&mut self, prefix: &str) -> String {
        let name = format!("ss-{prefix}-{}", suffix());
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace");
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("namespace {name} created: {e}"));
        self.namespaces.push(name.clone());
        name
    }

    /// A cluster-scoped object deleted at the end of the test (`kind/name` for kubectl).
    fn remember(&mut self, kind_and_name: String) {
        self.cluster_objects.push(kind_and_name);
    }

    fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(support::tools::tool("helm", "kubectl-and-helm"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("helm starts");
        assert!(
            out.status.success(),
            "helm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn targets(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &sst_resource())
    }

    async fn target(&self, namespace: &str, name: &str) -> Option<DynamicObject> {
        self.targets(namespace).get_opt(name).await.ok().flatten()
    }

    async fn status(&self, namespace: &str, name: &str) -> Option<Value> {
        self.target(namespace, name)
            .await
            .and_then(|o| o.data.get("status").cloned())
    }

    /// Polls the target's status until `check` holds; fails naming `what` (and the operator's
    /// log) after [`WAIT`].
    async fn until(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        operator: &Operator,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status(namespace, name).await;
            if let Some(s) = &status
                && check(s)
            {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {status:#?}\noperator log:\n{}",
                operator.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Polls a synchronous check (kubectl, an HTTP probe) every half second until it answers Ok;
/// after WAIT the test fails with the check's last Err, which says what was seen.
async fn poll<T>(mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) => assert!(Instant::now() < deadline, "timed out: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (release, namespace) in &self.helm_releases {
            let _ = Command::new(support::tools::tool("helm", "kubectl-and-helm"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["uninstall", release, "-n", namespace, "--wait=false"])
                .output();
        }
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        let namespaces: Vec<String> = self
            .namespaces
            .iter()
            .map(|n| format!("namespace/{n}"))
            .collect();
        args.extend(namespaces.iter().map(String::as_str));
        args.extend(self.cluster_objects.iter().map(String::as_str));
        if args.len() > 3 {
            let _ = self.kubectl_output(&args, None);
        }
    }
}

fn deployment(namespace: &str, name: &str, non_root: bool, replicas: u32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"securityContext": {"runAsNonRoot": non_root},
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
}

fn non_root_action(name: &str) -> Value {
    json!({"apiVersion": GROUP_VERSION, "kind": "ImprovementAction", "metadata": {"name": name},
        "spec": {"title": "Run as non-root", "category": "Apps", "maxScore": 9,
            "check": {"podSpec": true, "validations": [{
                "expression": "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot",
                "message": "pod runs as root"}]}}})
}

fn target(namespace: &str, spec: Value) -> Value {
    json!({"apiVersion": GROUP_VERSION, "kind": "SecureScoreTarget",
        "metadata": {"name": "team", "namespace": namespace}, "spec": spec})
}

/// The usual scene: a system namespace for the operator, a team namespace with web and api
/// (non-root) and db (root) Deployments, and a 9-point non-root action: 6 of 9.
struct Team {
    system: String,
    team: String,
    action: String,
}

async fn team(cluster: &mut Cluster) -> Team {
    let system = cluster.namespace("system").await;
    let team = cluster.namespace("team").await;
    for (name, non_root) in [("web", true), ("api", true), ("db", false)] {
        cluster.apply(&deployment(&team, name, non_root, 0));
    }
    let action = format!("e2e-non-root-{}", suffix());
    cluster.apply(&non_root_action(&action));
    cluster.remember(format!("improvementactions.securescore.io/{action}"));
    Team {
        system,
        team,
        action,
    }
}

impl Team {
    fn target(&self, mut spec: Value) -> Value {
        spec["actions"] = json!({"include": [self.action]});
        target(&self.team, spec)
    }
}

fn score(s: &Value) -> Option<f64> {
    s.get("score").and_then(Value::as_f64)
}

fn has_condition(s: &Value, kind: &str, status: &str, reason: &str) -> bool {
    s["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == kind && c["status"] == status && c["reason"] == reason)
    })
}

/// The admin kubeconfig's server and CA with a bearer token instead of the admin's cert.
fn token_kubeconfig(admin: &Path, token: &str, path: &Path) {
    let config = kube::config::Kubeconfig::read_from(admin).expect("admin kubeconfig");
    let cluster = config
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .expect("a cluster in the kubeconfig");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": cluster.server,
            "certificate-authority-data": cluster.certificate_authority_data,
            "insecure-skip-tls-verify": cluster.insecure_skip_tls_verify}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "sa"
    });
    std::fs::write(path, kubeconfig.to_string()).expect("kubeconfig written");
}

async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_service_account_runs_the_operator_and_may_do_nothing_more() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let release_ns = cluster.namespace("release").await;
    let team = cluster.namespace("team").await;
    cluster.helm(&[
        "install",
        "securescore",
        &repo().join("charts/securescore").to_string_lossy(),
        "-n",
        &release_ns,
    ]);
    cluster
        .helm_releases
        .push(("securescore".into(), release_ns.clone()));
    for (name, non_root) in [("web", true), ("db", false)] {
        cluster.apply(&deployment(&team, name, non_root, 0));
    }
    cluster.apply(&target(&team, json!({"goal": 80})));

    // The chart's ServiceAccount credentials: a TokenRequest token, as the kubelet would mount.
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), &release_ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request("securescore", &PostParams::default(), &request)
        .await
        .expect("a TokenRequest for the chart's ServiceAccount")
        .status
        .expect("a token in the TokenRequest status")
        .token;
    let dir = tempfile::tempdir().expect("temp dir");
    let sa_kubeconfig = dir.path().join("kubeconfig");
    token_kubeconfig(&cluster.kubeconfig, &token, &sa_kubeconfig);

    // Run it exactly as the chart's Deployment does (lease name and namespace from the chart).
    let op = Operator::start_with_kubeconfig(
        &sa_kubeconfig,
        &release_ns,
        &[
            "--leader-election",
            "--lease-name",
            "securescore-leader",
            "--lease-namespace",
            &release_ns,
            "--identity",
            "rbac-e2e",
        ],
    );
    let status = cluster
        .until(
            &team,
            "team",
            "a status written with the chart's RBAC",
            &op,
            |s| score(s).is_some(),
        )
        .await;
    assert!(
        status["actions"].as_array().is_some_and(|a| a.len() > 10),
        "the chart's catalog is evaluated: {status:#?}"
    );
    // Every catalog action's status too (ImprovementAction /status).
    let actions: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &ia_resource());
    let deadline = Instant::now() + WAIT;
    loop {
        let list = actions.list(&ListParams::default()).await.expect("actions");
        let unwritten: Vec<String> = list
            .items
            .iter()
            .filter(|a| a.data["status"]["conditions"].as_array().is_none())
            .filter_map(|a| a.metadata.name.clone())
            .collect();
        if !list.items.is_empty() && unwritten.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "actions without a status: {unwritten:?}\n{}",
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Events in the team's namespace, from the operator.
    poll(|| {
        let events = cluster.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &team,
            "-o",
            "jsonpath={range .items[*]}{.reportingController}/{.reason}{\"\\n\"}{end}",
        ]);
        if events.lines().any(|l| l.starts_with("securescore/")) {
            Ok(())
        } else {
            Err(format!(
                "no Event from securescore in {team}: {events}\n{}",
                op.logs()
            ))
        }
    })
    .await;
    // The Lease is held by this replica.
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &release_ns);
    let lease = leases.get("securescore-leader").await.expect("the Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("rbac-e2e")
    );
    // A denial shows as kube's `code: 403` / reason `Forbidden`, or the operator's own "missing
    // permission" line. (A bare "403" also matches timestamps such as 06:38:00.540346Z.)
    let logs = op.logs();
    let denied = [
        "code: 403",
        "\"code\":403",
        "orbidden",
        "missing permission",
    ];
    assert!(
        !denied.iter().any(|d| logs.contains(d)),
        "the operator hit a 403 with the chart's RBAC:\n{logs}"
    );

    // ...and nothing more.
    let sa = client_for(&sa_kubeconfig).await;
    let admin_secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &team);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "db-password"}, "stringData": {"password": "hunter2"}}),
    )
    .expect("a Secret");
    admin_secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");
    let secrets: Api<Secret> = Api::namespaced(sa.clone(), &team);
    assert!(
        is_forbidden(&secrets.get("db-password").await),
        "get secret"
    );
    assert!(
        is_forbidden(&secrets.list(&ListParams::default()).await),
        "list secrets (would return their data)"
    );
    let deployments: Api<Deployment> = Api::namespaced(sa.clone(), &team);
    let new: Deployment =
        serde_json::from_value(deployment(&team, "intruder", true, 0)).expect("a Deployment");
    assert!(
        is_forbidden(&deployments.create(&PostParams::default(), &new).await),
        "create a Deployment"
    );
    assert!(
        is_forbidden(
            &deployments
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": 3}}))
                )
                .await
        ),
        "patch a Deployment"
    );
    // Leases only in the release namespace, and only its own by name.
    let admin_leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &team);
    let other: Lease = serde_json::from_value(json!({"metadata": {"name": "securescore-leader"}}))
        .expect("a Lease");
    admin_leases
        .create(&PostParams::default(), &other)
        .await
        .expect("lease created");
    let team_leases: Api<Lease> = Api::namespaced(sa.clone(), &team);
    let steal = Patch::Merge(json!({"spec": {"holderIdentity": "intruder"}}));
    assert!(
        is_forbidden(
            &team_leases
                .patch("securescore-leader", &PatchParams::default(), &steal)
                .await
        ),
        "patch another namespace's Lease"
    );
    // A target's spec (only /status is granted), in another namespace.
    let targets = Api::<DynamicObject>::namespaced_with(sa.clone(), &team, &sst_resource());
    assert!(
        is_forbidden(
            &targets
                .patch(
                    "team",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"goal": 1}}))
                )
                .await
        ),
        "patch a target's spec"
    );
}

/// Every file under examples/ and every built-in action, applied as a dry run: the server's
/// schema and CEL validation accept them (and the CRDs with their CEL rules were accepted at
/// all, so the rules fit the server's cost budget).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_and_catalog_action_is_accepted_by_the_server() {
    let Some(cluster) = Cluster::connect().await else {
        return;
    };
    // The examples name their namespaces (shop, securescore-system): the dry run needs them.
    for ns in ["shop", "securescore-system"] {
        cluster.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    let mut files: Vec<PathBuf> = vec![];
    for dir in ["examples/actions", "examples/targets", "examples/shop"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("examples") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let out = cluster.kubectl_output(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-f",
                &file.to_string_lossy(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{} rejected by the server: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let catalog = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("catalog")
        .output()
        .expect("securescore catalog");
    assert!(catalog.status.success());
    let catalog = String::from_utf8(catalog.stdout).expect("UTF-8");
    let applied = cluster.kubectl_with_input(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &catalog,
    );
    assert!(
        applied.lines().count() >= 40,
        "every catalog action applies: {applied}"
    );
    // The built-in SecurityControls, as the chart ships them.
    let controls: Vec<&str> = securescore::catalog::control_files()
        .iter()
        .map(|(_, yaml)| *yaml)
        .collect();
    let applied = cluster.kubectl_with_input(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &controls.join("\n---\n"),
    );
    assert_eq!(
        applied.lines().count(),
        controls.len(),
        "every built-in control applies: {applied}"
    );
}

/// An invalid input, the CRD message the server must answer with, and the YAML.
struct Invalid {
    what: &'static str,
    message: &'static str,
    object: Value,
}

fn invalid_inputs(namespace: &str) -> Vec<Invalid> {
    let exemption = |extra: Value| {
        let mut e = json!({"name": "x", "action": "a", "resolution": "RiskAccepted", "owner": "me",
            "reason": "why", "approvedAt": "2026-01-01T00:00:00Z", "expiresAt": "2026-06-01T00:00:00Z"});
        for (k, v) in extra.as_object().expect("an object") {
            if v.is_null() {
                e.as_object_mut().expect("an object").remove(k);
            } else {
                e[k] = v.clone();
            }
        }
        target(namespace, json!({"exemptions": [e]}))
    };
    let action = |check: Value, max_score: u32| {
        json!({"apiVersion": GROUP_VERSION, "kind": "ImprovementAction",
            "metadata": {"name": format!("e2e-invalid-{}", suffix())},
            "spec": {"title": "t", "category": "Apps", "maxScore": max_score, "check": check}})
    };
    let validations = json!([{"expression": "true"}]);
    vec![
        Invalid {
            what: "exemption without owner",
            message: "an exemption needs an owner",
            object: exemption(json!({"owner": null})),
        },
        Invalid {
            what: "exemption with an empty reason",
            message: "an exemption needs a reason",
            object: exemption(json!({"reason": ""})),
        },
        Invalid {
            what: "exemption without approvedAt",
            message: "an exemption needs approvedAt",
            object: exemption(json!({"approvedAt": null})),
        },
        Invalid {
            what: "exemption without expiresAt nor openEnded",
            message: "an exemption needs expiresAt, or openEnded: true where the action's policy allows it",
            object: exemption(json!({"expiresAt": null})),
        },
        Invalid {
            what: "exemption expiring before its approval",
            message: "expiresAt must be after approvedAt",
            object: exemption(json!({"expiresAt": "2025-01-01T00:00:00Z"})),
        },
        Invalid {
            what: "Planned exemption without dueDate",
            message: "a Planned exemption needs a dueDate",
            object: exemption(json!({"resolution": "Planned"})),
        },
        Invalid {
            what: "zones.okay above zones.good",
            message: "zones.okay must not exceed zones.good",
            object: target(namespace, json!({"zones": {"good": 50, "okay": 80}})),
        },
        Invalid {
            what: "security control grouping no action",
            message: "a control needs actions (by name) or an actionSelector",
            object: json!({"apiVersion": GROUP_VERSION, "kind": "SecurityControl",
                "metadata": {"name": format!("e2e-invalid-{}", suffix())},
                "spec": {"title": "t", "maxScore": 5}}),
        },
        Invalid {
            what: "check with neither resources nor podSpec",
            message: "a check needs resources or podSpec: true",
            object: action(json!({"validations": validations}), 5),
        },
        Invalid {
            what: "check with both resources and podSpec",
            message: "resources and podSpec: true are mutually exclusive",
            object: action(
                json!({"podSpec": true, "resources": [{"apiGroup": "", "kind": "Pod"}], "validations": validations}),
                5,
            ),
        },
    ]
}

/// The CRDs' CEL rules, enforced by the server with their messages, and by `securescore scan`
/// client-side with the same messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_targets_and_actions_are_rejected_by_the_server_and_by_scan_alike() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let ns = cluster.namespace("invalid").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut disagreements = vec![];
    for case in invalid_inputs(&ns) {
        let out = cluster.kubectl_output(
            &["apply", "--server-side", "--dry-run=server", "-f", "-"],
            Some(&case.object.to_string()),
        );
        let server = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && server.contains(case.message),
            "{}: the server should reject it with {:?}, said: {server}",
            case.what,
            case.message
        );
        let file = dir.path().join("input.yaml");
        std::fs::write(&file, case.object.to_string()).expect("input written");
        let scan = Command::new(env!("CARGO_BIN_EXE_securescore"))
            .arg("scan")
            // input actions are ignored unless allowed (a pull request must not rewrite its gate)
            .arg("--allow-input-actions")
            .arg(&file)
            .output()
            .expect("securescore scan");
        let client = String::from_utf8_lossy(&scan.stderr).into_owned();
        if scan.status.code() != Some(2) || !client.contains(case.message) {
            disagreements.push(format!(
                "{}: the server said {:?}; scan exited {:?} with: {client}",
                case.what, case.message, scan.status
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "scan and the server disagree:\n{}",
        disagreements.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_score_follows_changes_and_the_status_has_one_field_manager() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    cluster.apply(&scene.target(json!({"goal": 80, "interval": "1h"})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    let s = cluster
        .until(&scene.team, "team", "score 6", &op, |s| {
            score(s) == Some(6.0)
        })
        .await;
    assert_eq!(s["maxScore"], 9.0);
    assert_eq!(s["percentage"], 66.67);
    assert_eq!(s["actions"][0]["compliant"], 2);
    assert_eq!(s["actions"][0]["nonCompliant"], 1);
    cluster.apply(&deployment(&scene.team, "db", true, 0));
    cluster
        .until(&scene.team, "team", "score 9 after the fix", &op, |s| {
            score(s) == Some(9.0)
        })
        .await;
    cluster.apply(&deployment(&scene.team, "cache", false, 0));
    cluster
        .until(
            &scene.team,
            "team",
            "score 6.75 with a new root workload",
            &op,
            |s| score(s) == Some(6.75),
        )
        .await;
    let object = cluster.target(&scene.team, "team").await.expect("target");
    let managed = object.metadata.managed_fields.unwrap_or_default();
    let status_managers: Vec<(String, String)> = managed
        .iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        status_managers,
        vec![("securescore".to_string(), "Apply".to_string())],
        "{managed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_target_naming_another_namespace_is_refused() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    let other = cluster.namespace("other").await;
    cluster.apply(&scene.target(json!({"scope": {"namespaces": {"names": [other]}}})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    let s = cluster
        .until(
            &scene.team,
            "team",
            "Ready=False ScopeNotAllowed",
            &op,
            |s| has_condition(s, "Ready", "False", "ScopeNotAllowed"),
        )
        .await;
    assert!(s.get("score").is_none(), "{s:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_the_lease_duration_without_double_writes() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    cluster.apply(&scene.target(json!({"interval": "1h"})));
    let lease = |identity: &'static str| {
        [
            "--leader-election",
            "--lease-duration-seconds",
            "5",
            "--identity",
            identity,
        ]
    };
    let mut first =
        Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &lease("first"));
    cluster
        .until(
            &scene.team,
            "team",
            "score 6 from the leader",
            &first,
            |s| score(s) == Some(6.0),
        )
        .await;
    let second =
        Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &lease("second"));
    poll(|| match second.get("/readyz") {
        Some((200, body)) if body == "ready (standby)" => Ok(()),
        other => Err(format!(
            "the second replica never became a ready standby: {other:?}\n{}",
            second.logs()
        )),
    })
    .await;
    // While the first leads, the standby evaluates and writes nothing.
    cluster.apply(&deployment(&scene.team, "db", true, 0));
    cluster
        .until(
            &scene.team,
            "team",
            "score 9 from the leader",
            &first,
            |s| score(s) == Some(9.0),
        )
        .await;
    let standby_metrics = second.scrape();
    assert!(
        !standby_metrics
            .lines()
            .any(|l| l.starts_with("securescore_evaluations_total") && !l.ends_with(" 0")),
        "the standby evaluated:\n{standby_metrics}"
    );
    // The leader dies without releasing the Lease: the standby takes over once it expires.
    let _ = first.child.kill();
    let _ = first.child.wait();
    let killed = Instant::now();
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &scene.system);
    loop {
        let holder = leases
            .get("securescore-leader")
            .await
            .ok()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        if holder.as_deref() == Some("second") {
            break;
        }
        // Generous: 5 s of lease plus the standby's retry period, on a loaded machine.
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the standby did not take the Lease: holder {holder:?}\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("takeover after {:?}", killed.elapsed());
    cluster.apply(&deployment(&scene.team, "db", false, 0));
    cluster
        .until(
            &scene.team,
            "team",
            "score 6 from the new leader",
            &second,
            |s| score(s) == Some(6.0),
        )
        .await;
    let object = cluster.target(&scene.team, "team").await.expect("target");
    let status_managers = object
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .count();
    assert_eq!(
        status_managers, 1,
        "both replicas write as one field manager"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_converges_after_an_apiserver_restart_and_an_etcd_compaction() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    cluster.control_plane();
    let scene = team(&mut cluster).await;
    cluster.apply(&scene.target(json!({"interval": "1h"})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    cluster
        .until(&scene.team, "team", "score 6", &op, |s| {
            score(s) == Some(6.0)
        })
        .await;
    // Restart: every watch is cut, and resumes from the resourceVersion it had.
    cluster.cluster_sh("restart-apiserver");
    cluster.apply(&deployment(&scene.team, "db", true, 0));
    cluster
        .until(&scene.team, "team", "score 9 after the restart", &op, |s| {
            score(s) == Some(9.0)
        })
        .await;
    // Writes the operator sees nothing of, then compaction past them and a restart: the
    // resumed watches ask for a compacted revision, get 410 Gone, and must relist.
    let churn = cluster.namespace("churn").await;
    for i in 0..20 {
        cluster.apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("c{i}"), "namespace": churn}}));
    }
    let revision = cluster.cluster_sh("compact");
    assert!(revision.trim().parse::<u64>().is_ok(), "{revision}");
    cluster.cluster_sh("restart-apiserver");
    cluster.apply(&deployment(&scene.team, "web", false, 0));
    cluster
        .until(
            &scene.team,
            "team",
            "score 6 after the compaction",
            &op,
            |s| score(s) == Some(6.0),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_collects_its_replicasets_and_pods_and_the_score_follows() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    cluster.apply(&deployment(&scene.team, "db", false, 2));
    cluster.apply(&scene.target(json!({"interval": "1h"})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    // kube-controller-manager makes a ReplicaSet and two Pods; they count once, as db.
    poll(|| {
        let pods = cluster.kubectl(&[
            "get",
            "pods",
            "-n",
            &scene.team,
            "-l",
            "app=db",
            "-o",
            "name",
        ]);
        match pods.lines().count() {
            2 => Ok(()),
            _ => Err(format!(
                "kube-controller-manager made no Pods for db (is it running?): {pods:?}"
            )),
        }
    })
    .await;
    cluster
        .until(&scene.team, "team", "db's pods counted once", &op, |s| {
            score(s) == Some(6.0) && s["actions"][0]["applicable"] == 3
        })
        .await;
    cluster.kubectl(&[
        "delete",
        "deployment",
        "db",
        "-n",
        &scene.team,
        "--wait=true",
    ]);
    poll(|| {
        let left = cluster.kubectl(&[
            "get",
            "replicasets,pods",
            "-n",
            &scene.team,
            "-l",
            "app=db",
            "-o",
            "name",
        ]);
        match left.trim() {
            "" => Ok(()),
            _ => Err(format!("the garbage collector left: {left}")),
        }
    })
    .await;
    cluster
        .until(&scene.team, "team", "score 9 without db", &op, |s| {
            score(s) == Some(9.0) && s["actions"][0]["applicable"] == 2
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_the_printer_columns_and_the_field_docs() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    cluster.apply(&scene.target(json!({"goal": 80, "interval": "1h"})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    cluster
        .until(&scene.team, "team", "score 6", &op, |s| {
            score(s) == Some(6.0)
        })
        .await;
    let table = cluster.kubectl(&["get", "sst", "-A"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "SCORE",
            "MAX",
            "PERCENT",
            "GOAL",
            "ZONE",
            "AGE"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with(&scene.team))
        .unwrap_or_else(|| panic!("no row for {}: {table}", scene.team))
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..6],
        [scene.team.as_str(), "team", "6", "9", "66.67", "80"],
        "{table}"
    );
    let explain = cluster.kubectl(&["explain", "sst.status.actions"]);
    for doc in [
        "One action's result for the target.",
        "pointsToGain",
        "Up to 10 sample findings",
    ] {
        assert!(explain.contains(doc), "{doc:?} missing from:\n{explain}");
    }
    let explain = cluster.kubectl(&["explain", "ia.spec.check"]);
    assert!(explain.contains("podSpec"), "{explain}");
}

/// One sample of a Prometheus text exposition: the value of `name{labels}` whose labels
/// include all of `want`.
fn sample(metrics: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        want.iter()
            .all(|(k, v)| labels.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

fn plus<'a>(labels: &[(&'a str, &'a str)], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut all = labels.to_vec();
    all.push(extra);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_values_equal_the_status_for_every_action() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let system = cluster.namespace("system").await;
    let team = cluster.namespace("team").await;
    // The built-in catalog on the shop example: many actions in many states.
    let catalog = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .arg("catalog")
        .output()
        .expect("securescore catalog");
    let catalog = String::from_utf8(catalog.stdout).expect("UTF-8");
    let applied = cluster.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager=securescore-e2e",
            "-f",
            "-",
            "-o",
            "name",
        ],
        &catalog,
    );
    for name in applied.lines() {
        cluster.remember(name.to_string());
    }
    let shop = std::fs::read_dir(repo().join("examples/shop")).expect("examples/shop");
    for entry in shop {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("example");
        if text.contains("kind: Namespace") {
            continue;
        }
        let text = text.replace("namespace: shop", &format!("namespace: {team}"));
        cluster.kubectl_with_input(&["apply", "--server-side", "-f", "-"], &text);
    }
    cluster.apply(&target(&team, json!({"interval": "1h"})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &system, &[]);
    cluster
        .until(&team, "team", "a scored status", &op, |s| {
            score(s).is_some() && s["actions"].as_array().is_some_and(|a| a.len() >= 40)
        })
        .await;
    // Scrape until the metrics show this evaluation (the status is written after the gauges).
    let labels = |action: &str| {
        [
            ("namespace", team.clone()),
            ("target", "team".into()),
            ("action", action.to_string()),
        ]
    };
    let deadline = Instant::now() + WAIT;
    let mut mismatches;
    loop {
        // Both read fresh: a later evaluation may have changed the status since the first one.
        let metrics = op.scrape();
        let status = cluster.status(&team, "team").await.expect("a status");
        mismatches = vec![];
        let target_labels = [("namespace", team.as_str()), ("target", "team")];
        for (metric, field) in [
            ("securescore_score", "score"),
            ("securescore_max_score", "maxScore"),
        ] {
            let got = sample(&metrics, metric, &target_labels);
            let want = status[field].as_f64();
            if got.map(|g| (g * 100.0).round() / 100.0) != want {
                mismatches.push(format!("{metric}: {got:?} vs status {field} {want:?}"));
            }
        }
        for action in status["actions"].as_array().expect("actions") {
            let name = action["name"].as_str().expect("name");
            let l = labels(name);
            let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let checks = [
                (
                    "securescore_action_score",
                    l.clone(),
                    action["score"].as_f64(),
                ),
                (
                    "securescore_action_max_score",
                    l.clone(),
                    action["maxScore"].as_f64(),
                ),
                (
                    "securescore_action_resources",
                    plus(&l, ("result", "compliant")),
                    action["compliant"].as_f64(),
                ),
                (
                    "securescore_action_resources",
                    plus(&l, ("result", "exempt")),
                    action["exempt"].as_f64(),
                ),
                (
                    "securescore_action_resources",
                    plus(&l, ("result", "error")),
                    Some(action["errors"].as_f64().unwrap_or(0.0)),
                ),
                (
                    "securescore_action_resources",
                    plus(&l, ("result", "noncompliant")),
                    Some(
                        action["nonCompliant"].as_f64().unwrap_or(0.0)
                            - action["errors"].as_f64().unwrap_or(0.0),
                    ),
                ),
            ];
            for (metric, labels, want) in checks {
                let got = sample(&metrics, metric, &labels);
                let got = got.map(|g| (g * 100.0).round() / 100.0);
                if got != want {
                    mismatches.push(format!("{metric}{labels:?}: {got:?}, status says {want:?}"));
                }
            }
            let state = action["state"].as_str().expect("state");
            let got = sample(
                &metrics,
                "securescore_action_state",
                &plus(&l, ("state", state)),
            );
            if got != Some(1.0) {
                mismatches.push(format!("securescore_action_state {name} {state}: {got:?}"));
            }
        }
        if mismatches.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        mismatches.is_empty(),
        "{} metric values differ from the status:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    let status = cluster.status(&team, "team").await.expect("a status");
    let compliant_total: f64 = status["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["compliant"].as_f64())
        .sum();
    assert!(compliant_total > 0.0, "the scene has compliant resources");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_expiring_takes_effect_on_time() {
    let Some(mut cluster) = Cluster::connect().await else {
        return;
    };
    let scene = team(&mut cluster).await;
    let now = jiff::Timestamp::now();
    let soon = now + jiff::SignedDuration::from_secs(20);
    let approved = now - jiff::SignedDuration::from_secs(60);
    cluster.apply(&scene.target(json!({"interval": "1h", "exemptions": [{
        "name": "x", "action": scene.action, "resolution": "ResolvedThirdParty",
        "resources": {"names": ["db"]}, "owner": "e2e", "reason": "test",
        "approvedAt": approved.to_string(), "expiresAt": soon.to_string()}]})));
    let op = Operator::start_with_kubeconfig(&cluster.kubeconfig, &scene.system, &[]);
    cluster
        .until(&scene.team, "team", "score 9 while exempt", &op, |s| {
            score(s) == Some(9.0)
        })
        .await;
    cluster
        .until(&scene.team, "team", "score 6 after the expiry", &op, |s| {
            score(s) == Some(6.0)
        })
        .await;
}
