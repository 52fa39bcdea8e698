//! Incremental evaluation equals a full evaluation: after seeded random sequences of changes
//! (pods, owners, namespaces, looked-up kinds, deletions and additions), the status rebuilt
//! from the kept verdicts is the status a full `evaluate` of the same inventory gives; and the
//! same holds through the operator: `securescore run`, fed the changes by its watches, writes
//! the status a full evaluation of the API's objects gives.

mod support;
#[path = "../benches/support/synth.rs"]
mod synth;

use securescore::api::{ScoringModel, SecureScoreTarget, SecurityControl};
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::incremental::Incremental;
use securescore::engine::{
    CompiledAction, Inventory, Resource, TargetInput, evaluate, evaluate_with_controls,
};
use serde_json::{Value, json};
use std::sync::Arc;
use synth::Rng;

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().expect("timestamp")
}

fn catalog() -> Vec<Arc<CompiledAction>> {
    securescore::catalog::builtin()
        .expect("built-in catalog")
        .iter()
        .map(|a| Arc::new(CompiledAction::compile(a)))
        .collect()
}

fn target_with_exemptions() -> SecureScoreTarget {
    let mut t = implicit_cluster_target("inc", "default");
    let exemptions: Value = json!([
        {"name": "ns1-memory", "action": "container-memory-limits", "resolution": "RiskAccepted",
         "owner": "sec", "reason": "legacy", "approvedAt": "2026-11-01T00:00:00Z", "expiresAt": "2027-01-01T00:00:00Z",
         "resources": {"namespaces": ["ns-1", "ns-3"]}},
        {"name": "limits-planned", "action": "container-cpu-limits", "resolution": "Planned",
         "owner": "sec", "reason": "sizing", "approvedAt": "2026-11-01T00:00:00Z", "expiresAt": "2027-01-01T00:00:00Z",
         "dueDate": "2026-12-15T00:00:00Z", "resources": {"namespaces": ["ns-0", "ns-2"]}}
    ]);
    t.spec.exemptions = serde_json::from_value(exemptions).expect("exemptions parse");
    t
}

fn full(target: &SecureScoreTarget, actions: &[Arc<CompiledAction>], inv: &Inventory) -> Value {
    full_with_controls(target, actions, inv, &[])
}

fn full_with_controls(
    target: &SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
    inv: &Inventory,
    controls: &[Arc<SecurityControl>],
) -> Value {
    let e = evaluate_with_controls(
        &TargetInput {
            target,
            actions,
            inventory: inv,
            now: now(),
            previous: None,
            wide_scope_allowed: true,
        },
        controls,
    );
    serde_json::to_value(&e.status).expect("status serialises")
}

fn resource(v: Value) -> Arc<Resource> {
    Arc::new(Resource::new(v, None).expect("generated object"))
}

/// One random change to the inventory, applied to `inc`; returns what it did.
fn change(rng: &mut Rng, inc: &mut Incremental) -> String {
    let inv = inc.inventory();
    let pick = |rng: &mut Rng, g: &str, k: &str| -> Option<Arc<Resource>> {
        let all = inv.of_kind(g, k);
        (!all.is_empty()).then(|| all[rng.below(all.len())].clone())
    };
    match rng.below(9) {
        0 | 1 => {
            // Flip a container setting of a pod (owned or not).
            let Some(p) = pick(rng, "", "Pod") else {
                return "none".into();
            };
            let mut o = p.object.clone();
            let privileged =
                o["spec"]["containers"][0]["securityContext"]["privileged"] == json!(true);
            o["spec"]["containers"][0]["securityContext"]["privileged"] = json!(!privileged);
            if rng.chance(0.5) {
                o["spec"]["containers"][0]["image"] = json!("nginx:latest");
            }
            inc.upsert(resource(o));
            format!("pod {}", p.display())
        }
        2 => {
            let kinds = [
                ("apps", "Deployment"),
                ("apps", "ReplicaSet"),
                ("batch", "Job"),
                ("", "Pod"),
            ];
            let (g, k) = *rng.pick(&kinds);
            let Some(r) = pick(rng, g, k) else {
                return "none".into();
            };
            inc.remove(&r.group, &r.kind, r.namespace.as_deref(), &r.name);
            format!("delete {}", r.display())
        }
        3 => {
            // A Namespace loses or gains its Pod Security label.
            let Some(n) = pick(rng, "", "Namespace") else {
                return "none".into();
            };
            let mut o = n.object.clone();
            let labels = &mut o["metadata"]["labels"];
            if labels.get("pod-security.kubernetes.io/enforce").is_some() {
                labels
                    .as_object_mut()
                    .map(|l| l.remove("pod-security.kubernetes.io/enforce"));
            } else {
                labels["pod-security.kubernetes.io/enforce"] = json!("restricted");
            }
            inc.upsert(resource(o));
            format!("namespace {}", n.name)
        }
        4 => {
            // A looked-up ServiceAccount toggles token automount.
            let Some(s) = pick(rng, "", "ServiceAccount") else {
                return "none".into();
            };
            let mut o = s.object.clone();
            let off = o["automountServiceAccountToken"] == json!(false);
            o["automountServiceAccountToken"] = json!(!off);
            inc.upsert(resource(o));
            format!("serviceaccount {}", s.display())
        }
        5 => {
            let Some(p) = pick(rng, "networking.k8s.io", "NetworkPolicy") else {
                return "none".into();
            };
            inc.remove(&p.group, &p.kind, p.namespace.as_deref(), &p.name);
            format!("delete {}", p.display())
        }
        6 => {
            // A new default-deny policy in some namespace.
            let Some(n) = pick(rng, "", "Namespace") else {
                return "none".into();
            };
            let name = format!("deny-{}", rng.below(1000));
            inc.upsert(resource(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": n.name, "uid": format!("np-{}-{name}", n.name)},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})));
            format!("add policy in {}", n.name)
        }
        7 => {
            // A ClusterRole starts or stops reading secrets.
            let Some(c) = pick(rng, "rbac.authorization.k8s.io", "ClusterRole") else {
                return "none".into();
            };
            let mut o = c.object.clone();
            o["rules"] = if rng.chance(0.5) {
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
            } else {
                json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}])
            };
            inc.upsert(resource(o));
            format!("clusterrole {}", c.name)
        }
        _ => {
            // A new unowned pod, one owned by an existing ReplicaSet, or one with a forged
            // owner reference (wrong uid, another name, another namespace, or a Deployment).
            let Some(rs) = pick(rng, "apps", "ReplicaSet") else {
                return "none".into();
            };
            let elsewhere = pick(rng, "apps", "ReplicaSet");
            let deployment = pick(rng, "apps", "Deployment");
            let mut o = rs.object["spec"]["template"].clone();
            let name = format!("{}-new{}", rs.name, rng.below(1000));
            o["apiVersion"] = json!("v1");
            o["kind"] = json!("Pod");
            o["metadata"]["name"] = json!(name);
            o["metadata"]["namespace"] = json!(rs.namespace);
            o["metadata"]["uid"] = json!(format!("new-{name}"));
            let reference = |kind: &str, name: &str, uid: &Option<String>| {
                json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
                    "controller": true}])
            };
            let how = match rng.below(6) {
                0 | 1 => "unowned",
                2 => {
                    o["metadata"]["ownerReferences"] = reference("ReplicaSet", &rs.name, &rs.uid);
                    "owned"
                }
                3 => {
                    o["metadata"]["ownerReferences"] =
                        reference("ReplicaSet", &rs.name, &Some("forged".into()));
                    "forged uid"
                }
                4 => {
                    // Another ReplicaSet's uid (maybe in another namespace) under this name.
                    let other = elsewhere.unwrap_or(rs.clone());
                    o["metadata"]["ownerReferences"] =
                        reference("ReplicaSet", &rs.name, &other.uid);
                    "borrowed uid"
                }
                _ => {
                    let Some(d) = deployment else {
                        return "none".into();
                    };
                    o["metadata"]["ownerReferences"] = reference("Deployment", &d.name, &d.uid);
                    "naming a deployment"
                }
            };
            inc.upsert(resource(o));
            format!("add pod {name} ({how})")
        }
    }
}

/// About 300 objects in a handful of namespaces, 30% of settings insecure.
fn cluster(seed: u64) -> Vec<Arc<Resource>> {
    let mut cfg = synth::Config::new(300);
    cfg.seed = seed;
    cfg.insecure = 0.3;
    cfg.apps_per_namespace = 6;
    synth::generate(cfg).into_iter().map(resource).collect()
}

fn run(seed: u64, steps: usize, target: SecureScoreTarget) {
    run_with_controls(seed, steps, target, catalog(), Vec::new())
}

/// As [`run`], with these actions. The full evaluation runs first after each change: an
/// action's record of budget failures is shared (as between the operator's targets), and the
/// incremental state must then agree with what the full evaluation decided.
fn run_with(seed: u64, steps: usize, target: SecureScoreTarget, actions: Vec<Arc<CompiledAction>>) {
    run_with_controls(seed, steps, target, actions, Vec::new())
}

fn run_with_controls(
    seed: u64,
    steps: usize,
    target: SecureScoreTarget,
    actions: Vec<Arc<CompiledAction>>,
    controls: Vec<Arc<SecurityControl>>,
) {
    let objects = cluster(seed);
    let mut inc = Incremental::new(
        target.clone(),
        actions.clone(),
        Inventory::complete(objects),
        now(),
        true,
    )
    .with_controls(controls.clone());
    let first = serde_json::to_value(&inc.evaluation().status).expect("status");
    assert_eq!(
        first,
        full_with_controls(&target, &actions, inc.inventory(), &controls),
        "seed {seed}: before any change"
    );
    let mut rng = Rng::new(seed);
    let mut history = Vec::new();
    let mut moved = 0;
    let mut last = first;
    for step in 0..steps {
        history.push(change(&mut rng, &mut inc));
        let want = full_with_controls(&target, &actions, inc.inventory(), &controls);
        let got = serde_json::to_value(&inc.evaluation().status).expect("status");
        assert_eq!(got, want, "seed {seed} step {step}: after {history:?}");
        if got != last {
            moved += 1;
        }
        last = got;
    }
    // The changes must have moved the status, or the comparison proves little.
    assert!(
        moved >= steps / 4,
        "seed {seed}: only {moved} of {steps} changes moved the status"
    );
}

#[test]
fn random_changes_match_a_full_evaluation() {
    for seed in [1, 2, 3] {
        run(seed, 40, implicit_cluster_target("inc", "default"));
    }
}

#[test]
fn random_changes_match_a_full_evaluation_with_an_action_over_budget() {
    // A custom action that runs away on a Pod whose first image is `nginx:latest` (which only
    // the changes set): it is judged at first, then crosses its budget on a few Pods and
    // becomes Unknown (LimitExceeded) in both evaluations.
    let runaway: securescore::api::ImprovementAction = serde_json::from_value(json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": "runaway-on-latest"},
        "spec": {"title": "Runaway", "category": "Apps", "maxScore": 3,
            "check": {"resources": [{"apiGroup": "", "kind": "Pod"}],
                "validations": [{"expression": "object.spec.containers[0].image != 'nginx:latest' || lists.range(100000).all(x, lists.range(100000).all(y, x >= 0))"}]}}
    }))
    .expect("action parses");
    let runaway = Arc::new(CompiledAction::compile(&runaway));
    assert!(runaway.is_ready(), "{:?}", runaway.problem);
    let mut actions = catalog();
    actions.push(runaway.clone());
    let state = |actions: &[Arc<CompiledAction>]| {
        let e = evaluate(&TargetInput {
            target: &implicit_cluster_target("inc", "default"),
            actions,
            inventory: &Inventory::complete(cluster(3)),
            now: now(),
            previous: None,
            wide_scope_allowed: true,
        });
        e.actions
            .iter()
            .find(|o| o.action.name == "runaway-on-latest")
            .map(|o| o.state)
    };
    assert_eq!(
        state(&actions),
        Some(securescore::api::ActionState::Completed)
    );
    run_with(
        3,
        40,
        implicit_cluster_target("inc", "default"),
        actions.clone(),
    );
    assert!(
        runaway.limit_exceeded().is_some(),
        "the changes never made the action cross its budget: the case proves nothing"
    );
    assert_eq!(
        state(&actions),
        Some(securescore::api::ActionState::Unknown)
    );
}

#[test]
fn a_changed_pod_is_rejudged_alone_and_a_namespace_under_a_selector_falls_back_to_all() {
    let target = implicit_cluster_target("inc", "default");
    let mut inc = Incremental::new(
        target.clone(),
        catalog(),
        Inventory::complete(cluster(5)),
        now(),
        true,
    );
    let pod = inc.inventory().of_kind("", "Pod")[0].json().into_owned();
    let mut flipped = pod.clone();
    flipped["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    inc.upsert(resource(flipped));
    assert_eq!(inc.fallbacks(), 0, "a Pod re-judges what it affects only");
    // The target selects namespaces by label: a Namespace's labels may move its scope.
    let ns = inc
        .inventory()
        .namespaces()
        .next()
        .expect("a namespace")
        .json()
        .into_owned();
    let mut relabelled = ns.clone();
    relabelled["metadata"]["labels"]["team"] = json!("moved");
    inc.upsert(resource(relabelled));
    assert_eq!(inc.fallbacks(), 1);
    assert_eq!(
        comparable(&serde_json::to_value(inc.evaluation().status).expect("status")),
        comparable(&full(&target, &catalog(), inc.inventory()))
    );
}

#[test]
fn random_changes_match_a_full_evaluation_with_exemptions() {
    // The exemptions are valid and cover something, so their bookkeeping is exercised.
    let inv = Inventory::complete(cluster(7));
    let target = target_with_exemptions();
    let e = evaluate(&TargetInput {
        target: &target,
        actions: &catalog(),
        inventory: &inv,
        now: now(),
        previous: None,
        wide_scope_allowed: true,
    });
    assert!(
        e.exemptions
            .iter()
            .all(|a| a.state == securescore::api::ExemptionState::Active && a.covered > 0),
        "{:?}",
        e.exemptions
            .iter()
            .map(|a| (&a.state, a.covered, &a.message))
            .collect::<Vec<_>>()
    );
    for seed in [7, 8] {
        run(seed, 40, target_with_exemptions());
    }
}

#[test]
fn random_changes_match_a_full_evaluation_with_attestations() {
    // Built-in tasks: one fresh, one stale, one resolved by a third party, one attestation in
    // the future and one for a CEL action (both Invalid); the tasks depend on the target only,
    // so no change of objects may move them, and the kept state must agree with a full run.
    let mut target = target_with_exemptions();
    let attestation = |action: &str, at: &str| json!({"action": action, "attestedBy": "sre", "attestedAt": at, "evidence": "https://wiki/x"});
    target.spec.attestations = serde_json::from_value(json!([
        attestation("task-review-cluster-admin-bindings", "2026-11-01T00:00:00Z"),
        attestation("task-test-etcd-backup-restore", "2026-06-01T00:00:00Z"),
        attestation("task-review-exemptions", "2026-12-01T00:00:00Z"),
        attestation("container-cpu-limits", "2026-11-01T00:00:00Z"),
    ]))
    .expect("attestations parse");
    let mut exemptions = target.spec.exemptions.clone();
    exemptions.push(
        serde_json::from_value(
            json!({"name": "vendor-rotation", "action": "task-rotate-credentials",
            "resolution": "ResolvedThirdParty", "owner": "sec", "reason": "vault rotates",
            "approvedAt": "2026-11-01T00:00:00Z", "expiresAt": "2027-01-01T00:00:00Z"}),
        )
        .expect("exemption parses"),
    );
    target.spec.exemptions = exemptions;
    let inv = Inventory::complete(cluster(11));
    let e = evaluate(&TargetInput {
        target: &target,
        actions: &catalog(),
        inventory: &inv,
        now: now(),
        previous: None,
        wide_scope_allowed: true,
    });
    let state = |name: &str| {
        e.status
            .actions
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.state)
    };
    use securescore::api::ActionState::*;
    assert_eq!(
        [
            state("task-review-cluster-admin-bindings"),
            state("task-test-etcd-backup-restore"),
            state("task-review-exemptions"),
            state("task-rotate-credentials"),
        ],
        [
            Some(Completed),
            Some(ToAddress),
            Some(ToAddress),
            Some(ResolvedThirdParty)
        ]
    );
    let invalid = e
        .status
        .attestations
        .iter()
        .filter(|a| a.state == securescore::api::AttestationState::Invalid)
        .count();
    assert_eq!(invalid, 2);
    run(11, 30, target);
}

#[test]
fn random_changes_match_a_full_evaluation_in_the_security_controls_model() {
    let controls: Vec<Arc<SecurityControl>> = securescore::catalog::builtin_controls()
        .expect("built-in controls")
        .into_iter()
        .map(Arc::new)
        .collect();
    for (seed, mut target) in [
        (4, implicit_cluster_target("inc", "default")),
        (8, target_with_exemptions()),
    ] {
        target.spec.model = ScoringModel::SecurityControls;
        // The controls really score the target (not an empty model that trivially agrees).
        let inv = Inventory::complete(cluster(seed));
        let status = full_with_controls(&target, &catalog(), &inv, &controls);
        let rows = status["controls"].as_array().expect("controls rows");
        assert_eq!(rows.len(), controls.len());
        assert!(
            rows.iter()
                .any(|r| r["unhealthy"].as_u64() > Some(0) && r["healthy"].as_u64() > Some(0)),
            "{rows:?}"
        );
        run_with_controls(seed, 40, target, catalog(), controls.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// Through the operator

const SST: (&str, &str) = ("securescore.io/v1alpha1", "securescoretargets");

/// The parts of a status a full and an incremental evaluation must agree on (history, changes
/// and condition times depend on when and how often a status was written).
fn comparable(status: &Value) -> Value {
    json!({
        "score": status["score"],
        "maxScore": status["maxScore"],
        "percentage": status["percentage"],
        "evaluatedResources": status["evaluatedResources"],
        "categories": status["categories"],
        "actions": status["actions"],
    })
}

/// Every object the API holds of the kinds the generated clusters use (the emulation's own
/// namespaces included).
fn api_objects(server: &support::apiserver::ApiServer) -> Vec<Value> {
    let kinds = [
        ("v1", "namespaces"),
        ("v1", "pods"),
        ("v1", "services"),
        ("v1", "serviceaccounts"),
        ("apps/v1", "deployments"),
        ("apps/v1", "replicasets"),
        ("apps/v1", "statefulsets"),
        ("apps/v1", "daemonsets"),
        ("batch/v1", "jobs"),
        ("batch/v1", "cronjobs"),
        ("networking.k8s.io/v1", "networkpolicies"),
        ("networking.k8s.io/v1", "ingresses"),
        ("rbac.authorization.k8s.io/v1", "roles"),
        ("rbac.authorization.k8s.io/v1", "rolebindings"),
        ("rbac.authorization.k8s.io/v1", "clusterroles"),
        ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ];
    kinds
        .iter()
        .flat_map(|(v, plural)| server.list(v, plural, None))
        .collect()
}

/// The status a full evaluation of `objects` (as the API stores them) gives `target`.
fn expected(
    target: &SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
    objects: &[Value],
) -> Value {
    let read: std::collections::BTreeSet<(String, String)> = actions
        .iter()
        .flat_map(|a| {
            a.kinds_read()
                .map(|(g, k)| (g.to_string(), k.to_string()))
                .collect::<Vec<_>>()
        })
        .chain([(String::new(), "Namespace".to_string())])
        .collect();
    let inventory = Inventory::complete(
        objects
            .iter()
            .map(|o| resource(o.clone()))
            .filter(|r| read.contains(&(r.group.clone(), r.kind.clone()))),
    );
    comparable(&full(target, actions, &inventory))
}

/// The fields (and action rows) where `got` and `want` differ, for a readable failure.
fn difference(got: &Value, want: &Value) -> String {
    let mut out = Vec::new();
    for k in [
        "score",
        "maxScore",
        "percentage",
        "evaluatedResources",
        "categories",
    ] {
        if got[k] != want[k] {
            out.push(format!("{k}: got {} want {}", got[k], want[k]));
        }
    }
    let rows = |v: &Value| -> std::collections::BTreeMap<String, Value> {
        v["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_string(),
                    r.clone(),
                )
            })
            .collect()
    };
    let (g, w) = (rows(got), rows(want));
    for name in g
        .keys()
        .chain(w.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if g.get(name) != w.get(name) {
            out.push(format!(
                "action {name}: got {} want {}",
                g.get(name).unwrap_or(&Value::Null),
                w.get(name).unwrap_or(&Value::Null)
            ));
        }
    }
    out.join("\n")
}

/// Polls the target's status until it equals `want`; fails with the difference.
async fn converges(
    server: &support::apiserver::ApiServer,
    want: &Value,
    what: &str,
    logs: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = server
            .status(SST.0, SST.1, "securescore-system", "inc")
            .map(|s| comparable(&s));
        if got.as_ref() == Some(want) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{what}: the status differs from a full evaluation in {}\n{}",
                difference(got.as_ref().unwrap_or(&Value::Null), want),
                logs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_operator_watched_changes_give_the_status_of_a_full_evaluation() {
    use support::apiserver::ApiServer;
    use support::operator::Operator;
    let server = ApiServer::start().await;
    let actions = catalog();
    for a in securescore::catalog::builtin().expect("built-in catalog") {
        server
            .create(serde_json::to_value(&a).expect("action serialises"))
            .expect("action created");
    }
    server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "securescore-system"}}));
    // The API assigns its own uids: owner references are rewritten to them.
    let mut uids: std::collections::HashMap<String, String> = Default::default();
    let mut stored: Vec<Value> = Vec::new();
    let mut cfg = synth::Config::new(200);
    cfg.seed = 11;
    cfg.insecure = 0.3;
    cfg.apps_per_namespace = 4;
    for mut o in synth::generate(cfg) {
        if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
            for r in refs {
                if let Some(new) = r["uid"].as_str().and_then(|u| uids.get(u)) {
                    r["uid"] = json!(new);
                }
            }
        }
        let old_uid = o["metadata"]["uid"].as_str().map(str::to_string);
        let kept = server.put(o);
        if let (Some(old), Some(new)) = (old_uid, kept["metadata"]["uid"].as_str()) {
            uids.insert(old, new.to_string());
        }
        stored.push(kept);
    }
    let mut target = implicit_cluster_target("inc", "securescore-system");
    target.spec.interval = Some("1h".into());
    server
        .create(serde_json::to_value(&target).expect("target serialises"))
        .expect("target created");
    let op = Operator::start(&server, &[]);
    let want = expected(&target, &actions, &api_objects(&server));
    assert!(
        want["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["nonCompliant"].as_u64() > Some(0))),
        "the generated cluster has findings: {want}"
    );
    converges(&server, &want, "the first (full) evaluation", || op.logs()).await;

    // Rounds of changes through the API; the 1h interval keeps every later evaluation
    // incremental.
    let mut rng = Rng::new(11);
    let mut moved = 0;
    let mut last = want;
    for round in 0..4 {
        let mut done = Vec::new();
        for _ in 0..3 {
            let pods: Vec<usize> = (0..stored.len())
                .filter(|i| stored[*i]["kind"] == "Pod")
                .collect();
            let i = *rng.pick(&pods);
            let (ns, name) = (
                stored[i]["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                stored[i]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            match rng.below(3) {
                0 => {
                    let mut o = stored[i].clone();
                    let privileged =
                        o["spec"]["containers"][0]["securityContext"]["privileged"] == json!(true);
                    o["spec"]["containers"][0]["securityContext"]["privileged"] =
                        json!(!privileged);
                    stored[i] = server.put(o);
                    done.push(format!("flip {ns}/{name}"));
                }
                1 => {
                    server
                        .delete("v1", "pods", &ns, &name)
                        .expect("pod existed");
                    stored.remove(i);
                    done.push(format!("delete {ns}/{name}"));
                }
                _ => {
                    let new = format!("extra-{round}-{}", done.len());
                    let o = json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": new, "namespace": ns},
                        "spec": {"containers": [{"name": "c", "image": "nginx:latest",
                            "securityContext": {"privileged": true}}]}});
                    stored.push(server.put(o));
                    done.push(format!("add {ns}/{new}"));
                }
            }
        }
        let want = expected(&target, &actions, &api_objects(&server));
        if want != last {
            moved += 1;
        }
        converges(
            &server,
            &want,
            &format!("round {round}: after {done:?}"),
            || op.logs(),
        )
        .await;
        last = want;
    }
    assert!(
        moved >= 2,
        "the changes must move the status ({moved} rounds did)"
    );
    // Every evaluation after the first was incremental.
    let logs = op.logs();
    let full_evaluations = logs.lines().filter(|l| l.contains("\"full\":true")).count();
    assert_eq!(
        full_evaluations, 1,
        "one full evaluation, then incremental ones:\n{logs}"
    );
    // The metric says the same, and why: the start, nothing else.
    let metrics = op.scrape();
    assert_eq!(
        support::operator::full_evaluations(&metrics),
        [("start".to_string(), 1.0)],
        "{metrics}"
    );
}

/// Offline, a product is detected by its reports' presence: the first report that appears and
/// the last that goes move its actions between Unknown and judged, and the frameworks with them.
#[test]
fn the_first_and_last_product_report_match_a_full_evaluation() {
    let actions = catalog();
    let target = implicit_cluster_target("inc", "default");
    let mut inc = Incremental::new(
        target.clone(),
        actions.clone(),
        Inventory::complete(cluster(11)),
        now(),
        true,
    );
    let state = |status: &Value| {
        status["actions"]
            .as_array()
            .and_then(|rows| {
                rows.iter()
                    .find(|r| r["name"] == "trivy-no-critical-vulnerabilities")
            })
            .map(|r| r["state"].clone())
    };
    let before = serde_json::to_value(&inc.evaluation().status).unwrap();
    assert_eq!(state(&before), Some(json!("Unknown")));
    assert_eq!(
        before["productsNotDetected"],
        json!(["policy-reports", "trivy-operator"])
    );
    inc.upsert(resource(json!({
        "apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport",
        "metadata": {"name": "replicaset-web-1-c", "namespace": "ns-0"},
        "report": {"summary": {"criticalCount": 1}, "vulnerabilities": [
            {"vulnerabilityID": "CVE-2019-20367", "severity": "CRITICAL"}]}
    })));
    let with_report = serde_json::to_value(&inc.evaluation().status).unwrap();
    assert_eq!(with_report, full(&target, &actions, inc.inventory()));
    assert_eq!(state(&with_report), Some(json!("ToAddress")));
    assert_eq!(
        with_report["productsNotDetected"],
        json!(["policy-reports"])
    );
    inc.remove(
        "aquasecurity.github.io",
        "VulnerabilityReport",
        Some("ns-0"),
        "replicaset-web-1-c",
    );
    let after = serde_json::to_value(&inc.evaluation().status).unwrap();
    assert_eq!(after, full(&target, &actions, inc.inventory()));
    assert_eq!(after, before);
}
