//! Incremental evaluation equals a full evaluation: after seeded random sequences of changes
//! (pods, owners, namespaces, looked-up kinds, deletions and additions), the status rebuilt
//! from the kept verdicts is the status a full `evaluate` of the same inventory gives.

#[path = "../benches/support/synth.rs"]
mod synth;

use securescore::api::SecureScoreTarget;
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::incremental::Incremental;
use securescore::engine::{CompiledAction, Inventory, Resource, TargetInput, evaluate};
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
    let e = evaluate(&TargetInput {
        target,
        actions,
        inventory: inv,
        now: now(),
        previous: None,
        wide_scope_allowed: true,
    });
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
    let actions = catalog();
    let objects = cluster(seed);
    let mut inc = Incremental::new(
        target.clone(),
        actions.clone(),
        Inventory::complete(objects),
        now(),
        true,
    );
    let first = serde_json::to_value(&inc.evaluation().status).expect("status");
    assert_eq!(
        first,
        full(&target, &actions, inc.inventory()),
        "seed {seed}: before any change"
    );
    let mut rng = Rng::new(seed);
    let mut history = Vec::new();
    let mut moved = 0;
    let mut last = first;
    for step in 0..steps {
        history.push(change(&mut rng, &mut inc));
        let got = serde_json::to_value(&inc.evaluation().status).expect("status");
        let want = full(&target, &actions, inc.inventory());
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
