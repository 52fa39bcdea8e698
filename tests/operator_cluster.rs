//! The operator's end-to-end scenarios against a REAL cluster (kind, k3d, ...). Ignored by
//! default; run with a kubeconfig for a disposable cluster:
//!
//!   KUBECONFIG=~/.kube/config cargo test --test operator_cluster -- --ignored --test-threads=1
//!
//! Each test works in its own namespaces (random suffix) and removes them at the end. The
//! kubeconfig's user must be allowed to create CRDs, namespaces, workloads and leases.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn kubeconfig() -> String {
    std::env::var("KUBECONFIG")
        .expect("these tests need KUBECONFIG pointing at a disposable cluster")
}

async fn client() -> kube::Client {
    kube::Client::try_default()
        .await
        .expect("a client from KUBECONFIG")
}

fn suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

async fn install_crds(c: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    for crd in securescore::api::crds() {
        api.patch(
            crd.metadata.name.as_deref().unwrap(),
            &PatchParams::apply("securescore-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRD applied");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

fn dynamic(
    c: &kube::Client,
    api_version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    match ns {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None => Api::all_with(c.clone(), &ar),
    }
}

async fn apply(c: &kube::Client, obj: Value) {
    let api_version = obj["apiVersion"].as_str().unwrap().to_string();
    let kind = obj["kind"].as_str().unwrap().to_string();
    let plural = match kind.as_str() {
        "Namespace" => "namespaces",
        "Deployment" => "deployments",
        "ImprovementAction" => "improvementactions",
        "SecureScoreTarget" => "securescoretargets",
        other => panic!("no plural for {other}"),
    };
    let api = dynamic(
        c,
        &api_version,
        &kind,
        plural,
        obj["metadata"]["namespace"].as_str(),
    );
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let obj: DynamicObject = serde_json::from_value(obj).unwrap();
    api.patch(
        &name,
        &PatchParams::apply("securescore-e2e").force(),
        &Patch::Apply(&obj),
    )
    .await
    .expect("applied");
}

fn deployment(ns: &str, name: &str, non_root: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
}

fn action(name: &str) -> Value {
    json!({"apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": name},
        "spec": {"title": "Run as non-root", "category": "Apps", "maxScore": 9,
            "check": {"podSpec": true, "validations": [{"expression": "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot"}]}}})
}

struct Env {
    c: kube::Client,
    system: String,
    team: String,
    action: String,
    operators: Vec<Child>,
}

impl Env {
    async fn new() -> Env {
        let c = client().await;
        install_crds(&c).await;
        let s = suffix();
        let env = Env {
            system: format!("ss-system-{s}"),
            team: format!("ss-team-{s}"),
            action: format!("e2e-non-root-{s}"),
            c,
            operators: vec![],
        };
        for ns in [&env.system, &env.team] {
            apply(
                &env.c,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
        }
        for (n, ok) in [("web", true), ("api", true), ("db", false)] {
            apply(&env.c, deployment(&env.team, n, ok)).await;
        }
        apply(&env.c, action(&env.action)).await;
        env
    }

    fn operator(&mut self, extra: &[&str]) {
        let child = Command::new(env!("CARGO_BIN_EXE_securescore"))
            .args([
                "run",
                "--kubeconfig",
                &kubeconfig(),
                "--namespace",
                &self.system,
                "--debounce-ms",
                "500",
            ])
            .args([
                "--metrics-addr",
                &format!(
                    "127.0.0.1:{}",
                    std::net::TcpListener::bind("127.0.0.1:0")
                        .unwrap()
                        .local_addr()
                        .unwrap()
                        .port()
                ),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("operator starts");
        self.operators.push(child);
    }

    async fn target(&self, spec: Value) {
        let mut spec = spec;
        spec["actions"] = json!({"include": [self.action]});
        apply(
            &self.c,
            json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "team", "namespace": self.team}, "spec": spec}),
        )
        .await;
    }

    async fn status(&self) -> Option<Value> {
        let api = dynamic(
            &self.c,
            "securescore.io/v1alpha1",
            "SecureScoreTarget",
            "securescoretargets",
            Some(&self.team),
        );
        api.get_opt("team")
            .await
            .ok()
            .flatten()
            .and_then(|o| o.data.get("status").cloned())
    }

    async fn until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(s) = self.status().await
                && check(&s)
            {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.status().await
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn cleanup(mut self) {
        for mut o in self.operators.drain(..) {
            let _ = o.kill();
            let _ = o.wait();
        }
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.c.clone());
        for n in [&self.system, &self.team] {
            let _ = ns.delete(n, &DeleteParams::default()).await;
        }
        let ia = dynamic(
            &self.c,
            "securescore.io/v1alpha1",
            "ImprovementAction",
            "improvementactions",
            None,
        );
        let _ = ia.delete(&self.action, &DeleteParams::default()).await;
    }
}

#[tokio::test]
#[ignore = "needs a real cluster: set KUBECONFIG and pass --ignored"]
async fn cluster_scores_a_target_and_reacts_to_a_fix() {
    let mut env = Env::new().await;
    env.target(json!({"goal": 80, "interval": "1h"})).await;
    env.operator(&[]);
    env.until("score 6", |s| s["score"] == 6.0).await;
    apply(&env.c, deployment(&env.team, "db", true)).await;
    env.until("score 9", |s| s["score"] == 9.0).await;
    env.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: set KUBECONFIG and pass --ignored"]
async fn cluster_refuses_a_wide_scope_outside_cluster_target_namespaces() {
    let mut env = Env::new().await;
    env.target(json!({"scope": {"clusterResources": true}}))
        .await;
    env.operator(&[]);
    let s = env
        .until("ScopeNotAllowed", |s| {
            s["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["reason"] == "ScopeNotAllowed"))
        })
        .await;
    assert!(s.get("score").is_none());
    env.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: set KUBECONFIG and pass --ignored"]
async fn cluster_exemption_expiry_takes_effect() {
    let mut env = Env::new().await;
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(15);
    env.target(json!({"interval": "1h", "exemptions": [{"name": "x", "action": env.action, "resolution": "ResolvedThirdParty",
        "resources": {"names": ["db"]}, "owner": "e2e", "reason": "test", "approvedAt": "2026-01-01T00:00:00Z", "expiresAt": soon.to_string()}]})).await;
    env.operator(&[]);
    env.until("score 9 while exempt", |s| s["score"] == 9.0)
        .await;
    env.until("score 6 after expiry", |s| s["score"] == 6.0)
        .await;
    env.cleanup().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: set KUBECONFIG and pass --ignored"]
async fn cluster_standby_takes_over_and_sigterm_exits_zero() {
    let mut env = Env::new().await;
    env.target(json!({"interval": "1h"})).await;
    let lease = ["--leader-election", "--lease-duration-seconds", "5"];
    env.operator(&[&lease[..], &["--identity", "first"]].concat());
    env.until("score 6", |s| s["score"] == 6.0).await;
    env.operator(&[&lease[..], &["--identity", "second"]].concat());
    // SIGTERM the leader: it exits 0 and releases the lease; the standby continues.
    let pid = env.operators[0].id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = env.operators[0].wait().unwrap();
    assert_eq!(status.code(), Some(0));
    apply(&env.c, deployment(&env.team, "db", true)).await;
    env.until("the standby scores the fix", |s| s["score"] == 9.0)
        .await;
    env.cleanup().await;
}
