//! Scale benchmarks (a `harness = false` bench binary; `scripts/bench.sh` drives it):
//!
//!     cargo bench --bench scale -- gen --size 10000 --out DIR
//!     cargo bench --bench scale -- engine --size 100000 [--runs 3]
//!     cargo bench --bench scale -- scan DIR          (load + evaluate; prints peak RSS)
//!     cargo bench --bench scale -- scan-binary PATH   (the release `securescore scan PATH
//!         --format json` under /usr/bin/time: peak RSS and wall of the real command)
//!     cargo bench --bench scale -- incremental --size 100000 [--changes 2000]
//!     cargo bench --bench scale -- operator --size 100000   (the release binary against the API emulation)
//!     cargo bench --bench scale -- wide [--size 5000]   (one Pod with N containers vs N one-container Pods)
//!     cargo bench --bench scale -- operator-cluster --size 10000   (the same against a REAL
//!         kube-apiserver: SECURESCORE_CLUSTER_DIR from `scripts/cluster.sh up`; see scripts/bench.sh)
//!
//! Every subcommand prints one JSON line of measurements. Nothing here asserts a time.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "support/synth.rs"]
mod synth;

use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::{CompiledAction, Inventory, Resource, TargetInput, evaluate};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

// The same allocator as the securescore binary (src/main.rs), so the figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; drop it.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(cmd) = args.first().cloned() else {
        anyhow::bail!("usage: scale gen|engine|scan|incremental|operator ...");
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let size: usize = opt("--size")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let runs: usize = opt("--runs").map(|s| s.parse()).transpose()?.unwrap_or(3);
    match cmd.as_str() {
        "gen" => {
            let out = opt("--out").ok_or_else(|| anyhow::anyhow!("gen needs --out DIR"))?;
            let t = Instant::now();
            let objects = synth::generate(synth::Config::new(size));
            let (files, bytes) = synth::write_dir(&objects, std::path::Path::new(&out))?;
            println!(
                "{}",
                json!({"bench": "gen", "objects": objects.len(), "files": files, "bytes": bytes,
                       "seconds": t.elapsed().as_secs_f64()})
            );
        }
        "engine" => engine(size, runs)?,
        "scan" => {
            let dir = args
                .get(1)
                .ok_or_else(|| anyhow::anyhow!("scan needs a directory"))?;
            scan(dir)?;
        }
        "incremental" => {
            let changes: usize = opt("--changes")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(1000);
            incremental(size, changes)?
        }
        "operator" => operator(size)?,
        "scan-binary" => {
            let path = args
                .get(1)
                .ok_or_else(|| anyhow::anyhow!("scan-binary needs a path"))?;
            scan_binary(path)?;
        }
        "wide" => wide(
            opt("--size")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(5000),
        )?,
        "operator-cluster" => operator_cluster(size)?,
        other => anyhow::bail!("unknown subcommand {other}"),
    }
    Ok(())
}

pub fn catalog() -> anyhow::Result<Vec<Arc<CompiledAction>>> {
    let actions = securescore::catalog::builtin()?;
    Ok(actions
        .iter()
        .map(|a| Arc::new(CompiledAction::compile(a)))
        .collect())
}

fn now() -> jiff::Timestamp {
    "2026-11-27T12:00:00Z".parse().expect("fixed timestamp")
}

/// Peak resident set of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    proc_status_kib("VmHWM:") * 1024
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn engine(size: usize, runs: usize) -> anyhow::Result<()> {
    let actions = catalog()?;
    let objects = synth::generate(synth::Config::new(size));
    let n = objects.len();
    let resources: Vec<Arc<Resource>> = objects
        .into_iter()
        .map(|o| Resource::new(o, None).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let target = implicit_cluster_target("bench", "default");
    let mut cold = None;
    let mut warm = Vec::new();
    for run in 0..=runs {
        // Run 0 is cold (objects not converted to CEL yet); later runs reuse the conversions,
        // as the operator does between evaluations.
        let inventory = Inventory::complete(resources.iter().cloned());
        let t = Instant::now();
        let eval = evaluate(&TargetInput {
            target: &target,
            actions: &actions,
            inventory: &inventory,
            now: now(),
            previous: None,
            wide_scope_allowed: true,
        });
        let secs = t.elapsed().as_secs_f64();
        if run == 0 {
            cold = Some((secs, eval.status.score, eval.status.max_score));
        } else {
            warm.push(secs);
        }
    }
    warm.sort_by(f64::total_cmp);
    let (cold_s, score, max) = cold.expect("one cold run");
    let median = warm.get(warm.len() / 2).copied().unwrap_or(cold_s);
    println!(
        "{}",
        json!({"bench": "engine", "objects": n, "actions": actions.len(),
               "threads": rayon::current_num_threads(),
               "cold_seconds": cold_s, "warm_median_seconds": median,
               "objects_per_second": n as f64 / median, "score": score, "max_score": max})
    );
    Ok(())
}

/// The scan path: read every file of a directory, parse, build the inventory, evaluate.
fn scan(dir: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    let mut bytes = 0u64;
    let mut objects = Vec::new();
    let mut errors = 0;
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        bytes += text.len() as u64;
        let (objs, errs) = securescore::inventory::manifests::load_text(
            &f.display().to_string(),
            &text,
            "default",
        );
        objects.extend(objs);
        errors += errs.len();
    }
    let loaded = t.elapsed().as_secs_f64();
    let actions = catalog()?;
    let n = objects.len();
    let inventory = Inventory::complete(objects);
    let target = implicit_cluster_target("scan", "default");
    let e = Instant::now();
    let eval = evaluate(&TargetInput {
        target: &target,
        actions: &actions,
        inventory: &inventory,
        now: now(),
        previous: None,
        wide_scope_allowed: true,
    });
    let evaluated = e.elapsed().as_secs_f64();
    let total = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"bench": "scan", "objects": n, "files": files.len(), "bytes": bytes, "errors": errors,
               "load_seconds": loaded, "evaluate_seconds": evaluated, "seconds": total,
               "objects_per_second": n as f64 / total, "mb_per_second": bytes as f64 / 1e6 / total,
               "peak_rss_bytes": peak_rss(), "score": eval.status.score})
    );
    Ok(())
}

/// One pod changes at a time, with `size` objects loaded: re-judge it and rebuild the status.
fn incremental(size: usize, changes: usize) -> anyhow::Result<()> {
    use securescore::engine::incremental::Incremental;
    let actions = catalog()?;
    let objects = synth::generate(synth::Config::new(size));
    let n = objects.len();
    let resources: Vec<Arc<Resource>> = objects
        .into_iter()
        .map(|o| Resource::new(o, None).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let mut inc = Incremental::new(
        implicit_cluster_target("bench", "default"),
        actions,
        Inventory::complete(resources),
        now(),
        true,
    );
    let initial = t.elapsed().as_secs_f64();
    let pods: Vec<Arc<Resource>> = inc.inventory().of_kind("", "Pod").to_vec();
    let mut rng = synth::Rng::new(7);
    let mut rejudge = Vec::with_capacity(changes);
    let mut status = Vec::with_capacity(changes);
    let mut score = 0.0;
    for _ in 0..changes {
        let p = &pods[rng.below(pods.len())];
        let mut o = p.object.clone();
        let flip = o["spec"]["containers"][0]["securityContext"]["privileged"] != json!(true);
        o["spec"]["containers"][0]["securityContext"]["privileged"] = json!(flip);
        let r = Arc::new(Resource::new(o, None)?);
        let t = Instant::now();
        inc.upsert(r);
        let a = t.elapsed().as_secs_f64();
        let e = inc.evaluation();
        let b = t.elapsed().as_secs_f64();
        rejudge.push(a);
        status.push(b);
        score = e.status.score.unwrap_or_default();
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 - 1.0) * p) as usize] * 1e3
    };
    println!(
        "{}",
        json!({"bench": "incremental", "objects": n, "changes": changes, "initial_seconds": initial,
               "rejudge_ms_p50": pct(&mut rejudge, 0.5), "rejudge_ms_p99": pct(&mut rejudge, 0.99),
               "total_ms_p50": pct(&mut status, 0.5), "total_ms_p99": pct(&mut status, 0.99),
               "score": score})
    );
    Ok(())
}

/// Memory of `securescore run` holding `size` objects in its caches (served by the API
/// emulation in this process), the time to its first status, and the latency from one changed
/// pod to the status that reflects it (the operator's 200 ms debounce included).
fn operator(size: usize) -> anyhow::Result<()> {
    use support::apiserver::ApiServer;
    use support::operator::Operator;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = ApiServer::start().await;
        server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "securescore-system"}}));
        let objects = synth::generate(synth::Config::new(size));
        let n = objects.len();
        let pod = objects
            .iter()
            .find(|o| o["kind"] == "Pod" && o["metadata"].get("ownerReferences").is_none())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the synthetic cluster has no unowned pod"))?;
        for o in objects {
            server.put(o);
        }
        for a in securescore::catalog::builtin()? {
            server.put(serde_json::to_value(&a)?);
        }
        server.put(json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "cluster", "namespace": "securescore-system", "generation": 1},
            "spec": {"interval": "1h", "scope": {"namespaces": {"selector": {}}, "clusterResources": true}}}));
        let started = Instant::now();
        let op = Operator::start(&server, &[]);
        let status = |s: &ApiServer| s.status("securescore.io/v1alpha1", "securescoretargets", "securescore-system", "cluster");
        let deadline = Instant::now() + std::time::Duration::from_secs(900);
        let first = loop {
            if let Some(st) = status(&server).filter(|st| st.get("score").is_some()) {
                break st;
            }
            anyhow::ensure!(Instant::now() < deadline, "no status after 15 minutes:\n{}", op.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let first_status_seconds = started.elapsed().as_secs_f64();
        if std::env::var_os("BENCH_OPERATOR_LOGS").is_some() {
            eprintln!("actions in the API: {}", server.list("securescore.io/v1alpha1", "improvementactions", None).len());
        }
        let pid = op.child.id();
        let kib = |field: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        let rss_after_first = kib("VmRSS:");
        // One watch event at a time: a new pod (a copy of an unowned one) in an evaluated
        // namespace; the status must count it. Repeated for percentiles.
        let changes: usize = std::env::var("BENCH_OPERATOR_CHANGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(40);
        let mut latencies = Vec::with_capacity(changes);
        let mut before = first["evaluatedResources"].clone();
        for i in 0..changes {
            let mut added = pod.clone();
            added["metadata"]["name"] = json!(format!("bench-added-pod-{i}"));
            if let Some(m) = added["metadata"].as_object_mut() {
                m.remove("uid");
                m.remove("resourceVersion");
            }
            let t = Instant::now();
            server.put(added);
            let deadline = Instant::now() + std::time::Duration::from_secs(120);
            loop {
                if let Some(st) = status(&server).filter(|st| st["evaluatedResources"] != before) {
                    before = st["evaluatedResources"].clone();
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "the change was not reflected within 2 minutes:\n{}", op.logs());
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            latencies.push(t.elapsed().as_secs_f64());
        }
        let slowest_change = latencies
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| -> f64 {
            latencies
                .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let change_seconds = percentile(0.5);
        if std::env::var_os("BENCH_OPERATOR_LOGS").is_some() {
            eprintln!("{}", op.logs());
        }
        // Why the operator evaluated in full (securescore_full_evaluations_total{reason}).
        let metrics = op.get("/metrics").map(|(_, body)| body).unwrap_or_default();
        let full_evaluations: serde_json::Map<String, serde_json::Value> =
            support::operator::full_evaluations(&metrics)
                .into_iter()
                .map(|(reason, n)| (reason, json!(n)))
                .collect();
        let load_average: f64 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        println!(
            "{}",
            json!({"bench": "operator", "objects": n, "first_status_seconds": first_status_seconds,
                   "rss_mib": rss_after_first as f64 / 1024.0, "peak_rss_mib": kib("VmHWM:") as f64 / 1024.0,
                   "change_to_status_seconds": change_seconds, "change_to_status_p99_seconds": percentile(0.99),
                   "change_to_status_max_seconds": latencies.last().copied().unwrap_or(f64::NAN),
                   "slowest_change": slowest_change, "full_evaluations": full_evaluations, "load_average": load_average,
                   "changes": changes, "debounce_seconds": 0.2,
                   "first_status": {"evaluatedResources": first["evaluatedResources"], "score": first["score"],
                                    "maxScore": first["maxScore"], "degraded": first["conditions"].as_array()
                                        .and_then(|c| c.iter().find(|c| c["type"] == "Degraded")).map(|c| c["status"].clone())}})
        );
        Ok(())
    })
}

/// A realistic container: image, ports, env, resources, probes, a security context.
fn container(i: usize) -> serde_json::Value {
    json!({
        "name": format!("c{i}"),
        "image": format!("registry.example.com/app-{i}:1.{i}"),
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "info"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}},
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}}
    })
}

fn pod_of(name: &str, containers: Vec<serde_json::Value>) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "wide", "uid": format!("uid-{name}")},
        "spec": {"serviceAccountName": "app", "automountServiceAccountToken": false,
                 "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": containers}
    })
}

fn evaluate_once(
    actions: &[Arc<CompiledAction>],
    objects: Vec<serde_json::Value>,
) -> anyhow::Result<f64> {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "wide", "labels": {"kubernetes.io/metadata.name": "wide"}}});
    let resources: Vec<Arc<Resource>> = objects
        .into_iter()
        .chain([namespace])
        .map(|o| Resource::new(o, None).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let inventory = Inventory::complete(resources);
    let target = implicit_cluster_target("bench", "wide");
    let t = Instant::now();
    let eval = evaluate(&TargetInput {
        target: &target,
        actions,
        inventory: &inventory,
        now: now(),
        previous: None,
        wide_scope_allowed: true,
    });
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        eval.status.max_score.is_some_and(|m| m > 0.0),
        "nothing evaluated"
    );
    Ok(secs)
}

/// Cost in the width of one object (issue 11): the built-in catalog on one Pod with N
/// containers against N Pods with one container each, for growing N.
fn wide(max: usize) -> anyhow::Result<()> {
    let actions = catalog()?;
    let mut rows = Vec::new();
    let mut n = 625;
    while n <= max {
        let wide_s = evaluate_once(
            &actions,
            vec![pod_of("wide", (0..n).map(container).collect())],
        )?;
        let narrow_s = evaluate_once(
            &actions,
            (0..n)
                .map(|i| pod_of(&format!("p{i}"), vec![container(i)]))
                .collect(),
        )?;
        rows.push(
            json!({"containers": n, "one_wide_pod_s": wide_s, "n_narrow_pods_s": narrow_s,
                         "wide_us_per_container": wide_s * 1e6 / n as f64}),
        );
        n *= 2;
    }
    println!("{}", json!({"bench": "wide", "rows": rows}));
    Ok(())
}

/// The `operator` benchmark against a REAL kube-apiserver (etcd behind it): `size` synthetic
/// objects are created through the API first, then the operator starts with the admin
/// kubeconfig; time to its first status, its RSS then, and one new pod to the status that
/// counts it. The cluster comes from `scripts/cluster.sh up DIR` (SECURESCORE_CLUSTER_DIR),
/// started without kube-controller-manager (its garbage collector would delete the synthetic
/// owned objects, whose owner uids the server does not know) and without the ServiceAccount and
/// PodSecurity admission plugins (the synthetic pods name accounts nobody creates, and some
/// break their namespace's Pod Security level on purpose).
fn operator_cluster(size: usize) -> anyhow::Result<()> {
    use futures::StreamExt;
    use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
    use support::operator::Operator;
    let dir = std::env::var_os("SECURESCORE_CLUSTER_DIR").ok_or_else(|| {
        anyhow::anyhow!(
            "operator-cluster needs SECURESCORE_CLUSTER_DIR (scripts/cluster.sh up DIR)"
        )
    })?;
    let kubeconfig = std::path::PathBuf::from(dir).join("kubeconfig");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(config, &Default::default()).await?,
        )?;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(client.clone());
        for crd in securescore::api::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &PatchParams::apply("securescore-bench").force(), &Patch::Apply(&crd)).await?;
        }
        // Served once Established; discovery must see them.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let discovery = kube::Discovery::new(client.clone()).run().await?;
        let api_for = |o: &serde_json::Value| -> anyhow::Result<Api<DynamicObject>> {
            let api_version = o["apiVersion"].as_str().unwrap_or_default();
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let gvk = kube::api::GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap_or_default());
            let (ar, caps) = discovery
                .resolve_gvk(&gvk)
                .ok_or_else(|| anyhow::anyhow!("the server does not serve {gvk:?}"))?;
            Ok(match (caps.scope, o["metadata"]["namespace"].as_str()) {
                (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                _ => Api::all_with(client.clone(), &ar),
            })
        };
        let mut objects = synth::generate(synth::Config::new(size));
        let n = objects.len();
        // Namespaces first; the server assigns uids, resourceVersions and timestamps.
        objects.sort_by_key(|o| o["kind"] != "Namespace");
        for o in &mut objects {
            if let Some(m) = o["metadata"].as_object_mut() {
                m.remove("uid");
                m.remove("resourceVersion");
                m.remove("creationTimestamp");
            }
        }
        let pod = objects
            .iter()
            .find(|o| o["kind"] == "Pod" && o["metadata"].get("ownerReferences").is_none())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the synthetic cluster has no unowned pod"))?;
        let loading = Instant::now();
        let rejected = std::sync::atomic::AtomicUsize::new(0);
        let rejected = &rejected;
        let (namespaces, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(|o| o["kind"] == "Namespace");
        for batch in [namespaces, rest] {
            let results: Vec<anyhow::Result<()>> = futures::stream::iter(batch)
                .map(|o| {
                    let api = api_for(&o);
                    async move {
                        let obj: DynamicObject = serde_json::from_value(o)?;
                        match api?.create(&PostParams::default(), &obj).await {
                            Ok(_) => Ok(()),
                            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                            // The generator does not promise what the server validates (e.g.
                            // duplicate host ports): counted, not loaded.
                            Err(kube::Error::Api(status)) if status.code == 422 => {
                                rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Ok(())
                            }
                            Err(e) => Err(anyhow::anyhow!("creating {:?}: {e}", obj.metadata.name)),
                        }
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        }
        let load_seconds = loading.elapsed().as_secs_f64();
        let apply = PatchParams::apply("securescore-bench").force();
        for a in securescore::catalog::builtin()? {
            let value = serde_json::to_value(&a)?;
            let name = a.metadata.name.clone().unwrap_or_default();
            api_for(&value)?.patch(&name, &apply, &Patch::Apply(&value)).await?;
        }
        let system = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "securescore-system"}});
        api_for(&system)?.patch("securescore-system", &apply, &Patch::Apply(&system)).await?;
        let target = json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "cluster", "namespace": "securescore-system"},
            "spec": {"interval": "1h", "scope": {"namespaces": {"selector": {}}, "clusterResources": true}}});
        let targets = api_for(&target)?;
        targets.patch("cluster", &apply, &Patch::Apply(&target)).await?;
        let status = || async {
            targets.get_opt("cluster").await.ok().flatten().and_then(|o| o.data.get("status").cloned())
        };
        let started = Instant::now();
        let op = Operator::start_with_kubeconfig(&kubeconfig, "securescore-system", &[]);
        let deadline = Instant::now() + std::time::Duration::from_secs(900);
        let first = loop {
            if let Some(st) = status().await.filter(|st| st.get("score").is_some()) {
                break st;
            }
            anyhow::ensure!(Instant::now() < deadline, "no status after 15 minutes:\n{}", op.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let first_status_seconds = started.elapsed().as_secs_f64();
        let pid = op.child.id();
        let kib = |field: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0)
        };
        let rss_after_first = kib("VmRSS:");
        let mut added = pod;
        added["metadata"]["name"] = json!("bench-added-pod");
        let before = first["evaluatedResources"].clone();
        let t = Instant::now();
        let obj: DynamicObject = serde_json::from_value(added.clone())?;
        api_for(&added)?.create(&PostParams::default(), &obj).await?;
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if status().await.is_some_and(|st| st["evaluatedResources"] != before) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the change was not reflected within 2 minutes:\n{}", op.logs());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let change_seconds = t.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"bench": "operator-cluster", "objects": n - rejected.load(std::sync::atomic::Ordering::Relaxed),
                   "rejected_by_the_server": rejected.load(std::sync::atomic::Ordering::Relaxed),
                   "load_seconds": load_seconds,
                   "first_status_seconds": first_status_seconds,
                   "rss_mib": rss_after_first as f64 / 1024.0, "peak_rss_mib": kib("VmHWM:") as f64 / 1024.0,
                   "change_to_status_seconds": change_seconds, "debounce_seconds": 0.2,
                   "first_status": {"evaluatedResources": first["evaluatedResources"], "score": first["score"],
                                    "maxScore": first["maxScore"], "degraded": first["conditions"].as_array()
                                        .and_then(|c| c.iter().find(|c| c["type"] == "Degraded")).map(|c| c["status"].clone())}})
        );
        Ok(())
    })
}

/// The real command a pipeline runs, `securescore scan PATH --format json` (the release binary
/// beside this bench), under `/usr/bin/time`: its peak RSS and wall time, with the input's
/// size. Memory of the whole scan (reading, evaluation, output), issue 11 item 6.
/// `SECURESCORE_BIN` measures another build (e.g. an older one, for before/after figures).
fn scan_binary(path: &str) -> anyhow::Result<()> {
    fn bytes_under(p: &std::path::Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .map(|e| bytes_under(&e.path()))
                        .sum()
                })
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let dir = tempfile::tempdir()?;
    let timing = dir.path().join("time");
    let output = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %e")
        .arg("-o")
        .arg(&timing)
        .arg(
            std::env::var_os("SECURESCORE_BIN")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_securescore").into()),
        )
        .args([
            "scan",
            path,
            "--format",
            "json",
            "--now",
            "2026-11-27T12:00:00Z",
        ])
        .stderr(std::process::Stdio::null())
        .output()?;
    let measured = std::fs::read_to_string(&timing)?;
    // The last line: a failing command adds "Command exited with non-zero status N" before it.
    let last = measured.lines().last().unwrap_or_default();
    let mut fields = last.split_whitespace();
    let kib: u64 = fields.next().unwrap_or_default().parse()?;
    let seconds: f64 = fields.next().unwrap_or_default().parse()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let items = report["items"].as_array().cloned().unwrap_or_default();
    let evaluated: u64 = items
        .iter()
        .filter_map(|t| t["status"]["evaluatedResources"].as_u64())
        .sum();
    let input_bytes = bytes_under(std::path::Path::new(path));
    println!(
        "{}",
        json!({"bench": "scan-binary", "input": path, "input_bytes": input_bytes,
               "exit_code": output.status.code(), "evaluated_resources": evaluated,
               "seconds": seconds, "peak_rss_bytes": kib * 1024,
               "peak_rss_per_input_byte": (kib * 1024) as f64 / input_bytes.max(1) as f64,
               "score": items.first().map(|t| t["status"]["score"].clone())})
    );
    Ok(())
}
