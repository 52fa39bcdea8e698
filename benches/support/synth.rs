//! A deterministic, seeded generator of synthetic clusters for benchmarks and property tests.
//!
//! Per namespace: a Namespace (some with Pod Security labels), a ServiceAccount per app, and
//! "apps" — a Deployment with its ReplicaSet and two Pods, a StatefulSet with a Pod, a
//! DaemonSet with a Pod, a CronJob with its Job and Pod, or an unowned Pod — each with a
//! Service, sometimes an Ingress; per namespace some NetworkPolicies, a Role and a RoleBinding;
//! cluster-wide some ClusterRoles and ClusterRoleBindings. `insecure` is the share of objects
//! that get an insecure setting (privileged, host namespaces, root, no limits, `:latest`, ...).
//! The same `(objects, seed, insecure)` gives the same objects, byte for byte.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::Path;

/// A small, fast, seeded RNG (SplitMix64): no dependency, same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Approximate number of objects (the generator stops at the first app boundary past it).
    pub objects: usize,
    pub seed: u64,
    /// Share of settings made insecure, 0.0..=1.0.
    pub insecure: f64,
    /// Apps per namespace (a namespace holds about 5× this many objects).
    pub apps_per_namespace: usize,
    /// ClusterRoles (each with a ClusterRoleBinding).
    pub cluster_roles: usize,
}

impl Config {
    pub fn new(objects: usize) -> Config {
        Config {
            objects,
            seed: 42,
            insecure: 0.2,
            apps_per_namespace: 20,
            cluster_roles: (objects / 500).clamp(2, 200),
        }
    }
}

struct Gen {
    rng: Rng,
    insecure: f64,
    uid: u64,
    out: Vec<Value>,
}

const IMAGES: [&str; 6] = [
    "registry.example.com/web",
    "registry.example.com/api",
    "registry.example.com/worker",
    "docker.io/library/nginx",
    "ghcr.io/example/cache",
    "quay.io/example/queue",
];

impl Gen {
    fn uid(&mut self) -> String {
        self.uid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uid)
    }

    fn bad(&mut self) -> bool {
        self.rng.chance(self.insecure)
    }

    fn meta(&mut self, name: &str, ns: Option<&str>, labels: Value) -> Value {
        let mut m = json!({"name": name, "uid": self.uid(), "labels": labels});
        if let Some(ns) = ns {
            m["namespace"] = json!(ns);
        }
        m
    }

    fn owner(api_version: &str, kind: &str, owner: &Value) -> Value {
        json!([{
            "apiVersion": api_version, "kind": kind,
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": true, "blockOwnerDeletion": true,
        }])
    }

    fn container(&mut self, name: &str) -> Value {
        let image = self.rng.pick(&IMAGES).to_string();
        let image = if self.bad() {
            format!("{image}:latest")
        } else if self.rng.chance(0.5) {
            format!(
                "{image}@sha256:{:016x}{:016x}{:016x}{:016x}",
                self.rng.next_u64(),
                self.rng.next_u64(),
                self.rng.next_u64(),
                self.rng.next_u64()
            )
        } else {
            format!("{image}:1.{}.{}", self.rng.below(30), self.rng.below(10))
        };
        let mut sc = json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        });
        if self.bad() {
            match self.rng.below(6) {
                0 => sc["privileged"] = json!(true),
                1 => sc["allowPrivilegeEscalation"] = json!(true),
                2 => sc["runAsUser"] = json!(0),
                3 => sc["capabilities"] = json!({"add": ["SYS_ADMIN", "NET_RAW"]}),
                4 => sc["readOnlyRootFilesystem"] = json!(false),
                _ => sc["seccompProfile"] = json!({"type": "Unconfined"}),
            }
        }
        let mut c = json!({
            "name": name,
            "image": image,
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "securityContext": sc,
        });
        if !self.bad() {
            c["resources"] = json!({
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            });
            c["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8080}});
            c["readinessProbe"] = json!({"httpGet": {"path": "/readyz", "port": 8080}});
        }
        if self.bad() {
            if self.rng.chance(0.5) {
                if let Some(e) = c["env"].as_array_mut() {
                    e.push(json!({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}));
                }
            } else {
                if let Some(e) = c["env"].as_array_mut() {
                    e.push(json!({"name": "API_TOKEN", "value": "s3cr3t-token"}));
                }
            }
        }
        if self.bad() {
            c["ports"][0]["hostPort"] = json!(8080);
        }
        c
    }

    fn pod_spec(&mut self, app: &str, sa: &str) -> Value {
        let mut containers = vec![self.container(app)];
        if self.rng.chance(0.4) {
            containers.push(self.container("sidecar"));
        }
        let mut spec = json!({
            "serviceAccountName": sa,
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": containers,
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        });
        if self.bad() {
            spec.as_object_mut()
                .map(|s| s.remove("automountServiceAccountToken"));
        }
        if self.bad() {
            match self.rng.below(4) {
                0 => spec["hostNetwork"] = json!(true),
                1 => spec["hostPID"] = json!(true),
                2 => {
                    if let Some(v) = spec["volumes"].as_array_mut() {
                        v.push(json!({"name": "host", "hostPath": {"path": "/var/run"}}));
                    }
                }
                _ => {
                    spec["securityContext"]["sysctls"] =
                        json!([{"name": "kernel.msgmax", "value": "65536"}])
                }
            }
        }
        spec
    }

    fn template(&mut self, app: &str, sa: &str) -> Value {
        json!({
            "metadata": {"labels": {"app": app}},
            "spec": self.pod_spec(app, sa),
        })
    }

    fn pod_from(&mut self, name: &str, ns: &str, template: &Value, owner: Option<Value>) {
        let mut meta = self.meta(name, Some(ns), template["metadata"]["labels"].clone());
        if let Some(o) = owner {
            meta["ownerReferences"] = o;
        }
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!(format!("node-{}", self.rng.below(50)));
        self.out
            .push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}));
    }

    fn app(&mut self, ns: &str, i: usize) {
        let app = format!("app-{i}");
        let labels = json!({"app": app, "app.kubernetes.io/part-of": ns});
        // A ServiceAccount per app (some disable token automount).
        let sa = if self.rng.chance(0.2) {
            "default".to_string()
        } else {
            let sa = format!("{app}-sa");
            let meta = self.meta(&sa, Some(ns), labels.clone());
            let mut obj = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta});
            if !self.bad() {
                obj["automountServiceAccountToken"] = json!(false);
            }
            self.out.push(obj);
            sa
        };
        let template = self.template(&app, &sa);
        match self.rng.below(10) {
            0..=4 => {
                let meta = self.meta(&app, Some(ns), labels.clone());
                let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": template}});
                let rs_name = format!("{app}-{:x}", self.rng.next_u64() & 0xffffff);
                let mut rs_meta = self.meta(&rs_name, Some(ns), labels.clone());
                rs_meta["ownerReferences"] = Self::owner("apps/v1", "Deployment", &dep);
                let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs_meta,
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}}, "template": template}});
                self.out.push(dep);
                for p in 0..2 {
                    let owner = Self::owner("apps/v1", "ReplicaSet", &rs);
                    self.pod_from(&format!("{rs_name}-{p}"), ns, &template, Some(owner));
                }
                self.out.push(rs);
            }
            5 => {
                let meta = self.meta(&app, Some(ns), labels.clone());
                let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                    "spec": {"replicas": 1, "serviceName": app, "selector": {"matchLabels": {"app": app}}, "template": template}});
                let owner = Self::owner("apps/v1", "StatefulSet", &sts);
                self.pod_from(&format!("{app}-0"), ns, &template, Some(owner));
                self.out.push(sts);
            }
            6 => {
                let meta = self.meta(&app, Some(ns), labels.clone());
                let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
                    "spec": {"selector": {"matchLabels": {"app": app}}, "template": template}});
                let owner = Self::owner("apps/v1", "DaemonSet", &ds);
                self.pod_from(&format!("{app}-node"), ns, &template, Some(owner));
                self.out.push(ds);
            }
            7 => {
                let meta = self.meta(&app, Some(ns), labels.clone());
                let mut job_template = template.clone();
                job_template["spec"]["restartPolicy"] = json!("OnFailure");
                let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                    "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template}}}});
                let job_name = format!("{app}-{}", 28_000_000 + self.rng.below(1_000_000));
                let mut job_meta = self.meta(&job_name, Some(ns), labels.clone());
                job_meta["ownerReferences"] = Self::owner("batch/v1", "CronJob", &cj);
                let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
                    "spec": {"template": job_template}});
                let owner = Self::owner("batch/v1", "Job", &job);
                self.pod_from(&format!("{job_name}-x"), ns, &job_template, Some(owner));
                self.out.push(cj);
                self.out.push(job);
            }
            _ => self.pod_from(&app, ns, &template, None),
        }
        // A Service per app, sometimes exposed.
        let meta = self.meta(&app, Some(ns), labels.clone());
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ClusterIP", "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}});
        if self.bad() {
            match self.rng.below(3) {
                0 => svc["spec"]["type"] = json!("NodePort"),
                1 => svc["spec"]["type"] = json!("LoadBalancer"),
                _ => svc["spec"]["externalIPs"] = json!(["203.0.113.10"]),
            }
        }
        self.out.push(svc);
        if self.rng.chance(0.25) {
            let meta = self.meta(&app, Some(ns), labels);
            let mut ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
                "spec": {"rules": [{"host": format!("{app}.{ns}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": app, "port": {"number": 80}}}}]}}]}});
            if !self.bad() {
                ing["spec"]["tls"] = json!([{"hosts": [format!("{app}.{ns}.example.com")], "secretName": format!("{app}-tls")}]);
            }
            self.out.push(ing);
        }
    }

    fn namespace(&mut self, ns: &str, apps: usize) {
        let mut labels = json!({"kubernetes.io/metadata.name": ns, "team": format!("team-{}", self.rng.below(10))});
        if !self.bad() {
            labels["pod-security.kubernetes.io/enforce"] = json!("restricted");
        }
        let meta = self.meta(ns, None, labels);
        self.out
            .push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}));
        let meta = self.meta("default", Some(ns), json!({}));
        self.out.push(
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
            "automountServiceAccountToken": false}),
        );
        for (name, types) in [
            ("default-deny-ingress", "Ingress"),
            ("default-deny-egress", "Egress"),
        ] {
            if !self.bad() {
                let meta = self.meta(name, Some(ns), json!({}));
                self.out.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
                    "spec": {"podSelector": {}, "policyTypes": [types]}}));
            }
        }
        let meta = self.meta("allow-web", Some(ns), json!({}));
        self.out.push(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": {"podSelector": {"matchLabels": {"app": "app-0"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}]}}),
        );
        let verbs = if self.bad() {
            json!(["*"])
        } else {
            json!(["get", "list", "watch"])
        };
        let meta = self.meta("app-reader", Some(ns), json!({}));
        self.out.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": verbs}]}),
        );
        let meta = self.meta("app-reader", Some(ns), json!({}));
        let subject = if self.bad() {
            json!({"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"})
        } else {
            json!({"kind": "ServiceAccount", "name": "app-0-sa", "namespace": ns})
        };
        self.out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app-reader"},
            "subjects": [subject]}));
        for i in 0..apps {
            self.app(ns, i);
        }
    }

    fn cluster_rbac(&mut self, n: usize) {
        for i in 0..n {
            let name = format!("cluster-reader-{i}");
            let rules = if self.bad() {
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
                       {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}])
            } else {
                json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}])
            };
            let meta = self.meta(&name, None, json!({}));
            self.out.push(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": meta, "rules": rules}),
            );
            let role = if self.bad() {
                "cluster-admin".to_string()
            } else {
                name.clone()
            };
            let meta = self.meta(&name, None, json!({}));
            self.out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": format!("ns-{i}")}]}));
        }
    }
}

/// Generate a cluster as JSON objects (each with `metadata.uid`; owned objects carry
/// controller ownerReferences by uid).
pub fn generate(cfg: Config) -> Vec<Value> {
    let mut g = Gen {
        rng: Rng::new(cfg.seed),
        insecure: cfg.insecure.clamp(0.0, 1.0),
        uid: 0,
        out: Vec::with_capacity(cfg.objects + 64),
    };
    g.cluster_rbac(cfg.cluster_roles);
    let mut n = 0;
    while g.out.len() < cfg.objects {
        let room = cfg.objects - g.out.len();
        // ~5.5 objects per app plus 6 per namespace.
        let apps = cfg.apps_per_namespace.min(room / 6 + 1).max(1);
        g.namespace(&format!("ns-{n}"), apps);
        n += 1;
    }
    g.out
}

/// Write objects as multi-document YAML, one file per namespace (cluster-scoped objects in
/// `cluster.yaml`). Returns (files, bytes).
pub fn write_dir(objects: &[Value], dir: &Path) -> std::io::Result<(usize, u64)> {
    use std::collections::BTreeMap;
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in objects {
        let ns = o["metadata"]["namespace"]
            .as_str()
            .or_else(|| {
                (o["kind"] == "Namespace")
                    .then(|| o["metadata"]["name"].as_str())
                    .flatten()
            })
            .unwrap_or("cluster");
        groups.entry(ns.to_string()).or_default().push(o);
    }
    let mut bytes = 0;
    for (name, objs) in &groups {
        let path = dir.join(format!("{name}.yaml"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for o in objs {
            let text = serde_yaml_ng::to_string(o).map_err(std::io::Error::other)?;
            f.write_all(b"---\n")?;
            f.write_all(text.as_bytes())?;
            bytes += 4 + text.len() as u64;
        }
        f.flush()?;
    }
    Ok((groups.len(), bytes))
}
