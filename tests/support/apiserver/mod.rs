//! An in-process emulation of the Kubernetes API server, for end-to-end tests of the operator
//! with kube-rs and kubectl. Plain HTTP on 127.0.0.1, no authentication. What it models and
//! what it does not is listed in tests/support/README.md.

mod http;
pub mod patch;
pub mod resources;
pub mod select;
pub mod store;

pub use resources::ResourceDef;
pub use store::{ApiError, Denial, Fault, RequestRecord};

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::State;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// State shared by the listener, connections and watches.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Bumped by every stop: connections and watches end when it changes.
    stop_signal: watch::Sender<u64>,
    pub(crate) bookmark_interval: Duration,
}

impl Shared {
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<u64> {
        self.stop_signal.subscribe()
    }
}

/// How to start the emulation.
#[derive(Clone, Debug)]
pub struct Options {
    /// CustomResourceDefinition YAML files to serve (default: the repository's
    /// `crds/securescore.io_crds.yaml`).
    pub crd_files: Vec<PathBuf>,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Interval of BOOKMARK events on watches that allow them (the real server: about a minute).
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            crd_files: vec![
                Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/securescore.io_crds.yaml"),
            ],
            port: 0,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// The emulated API server. Dropping it stops the listener and severs every connection.
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown_rx();
    loop {
        let conn = tokio::select! {
            _ = stop.changed() => return,
            c = listener.accept() => c,
        };
        let Ok((stream, _)) = conn else { continue };
        let shared = shared.clone();
        let mut stop = shared.shutdown_rx();
        tokio::spawn(async move {
            let svc_shared = shared.clone();
            let svc = hyper::service::service_fn(move |req| http::handle(svc_shared.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

impl ApiServer {
    /// Starts with the default options (securescore CRDs, a free port).
    pub async fn start() -> ApiServer {
        Self::start_with(Options::default()).await
    }

    /// Starts with explicit options. Panics (test setup) when the CRDs cannot be read or the
    /// port cannot be bound.
    pub async fn start_with(opts: Options) -> ApiServer {
        let mut state = State::new(resources::builtins());
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Err(e) = state.put(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns }, "status": { "phase": "Active" } })) {
                panic!("emulated apiserver: creating namespace {ns}: {e}");
            }
        }
        for file in &opts.crd_files {
            let crds = resources::load_crd_file(file)
                .unwrap_or_else(|e| panic!("emulated apiserver: {e}"));
            for crd in crds {
                if let Err(e) = state.put(crd) {
                    panic!("emulated apiserver: loading {}: {e}", file.display());
                }
            }
        }
        let (stop_signal, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            stop_signal,
            bookmark_interval: opts.bookmark_interval,
        });
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))
            .unwrap_or_else(|e| panic!("emulated apiserver: binding 127.0.0.1:{}: {e}", opts.port));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("emulated apiserver: local_addr: {e}"));
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        ApiServer {
            shared,
            addr,
            accept_task: Mutex::new(Some(task)),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The kubeconfig YAML (cluster `emulated`, no credentials, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster:\n    server: {url}\ncontexts:\n- name: emulated\n  context:\n    cluster: emulated\n    user: emulated\n    namespace: default\ncurrent-context: emulated\nusers:\n- name: emulated\n  user: {{}}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes a kubeconfig that kube-rs and kubectl accept.
    pub fn write_kubeconfig(&self, path: &Path) {
        std::fs::write(path, self.kubeconfig())
            .unwrap_or_else(|e| panic!("writing kubeconfig {}: {e}", path.display()));
    }

    /// A kube client for this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let url = self
            .url()
            .parse()
            .unwrap_or_else(|e| panic!("emulated apiserver url {}: {e}", self.url()));
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".into();
        kube::Client::try_from(config)
            .unwrap_or_else(|e| panic!("kube client for {}: {e}", self.url()))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- restarts -------------------------------------------------------------------------

    /// Stops listening: closes the listener, severs every open connection (watches end
    /// mid-stream); connection attempts are refused until `resume_listening`. The store is kept.
    pub async fn stop_listening(&self) {
        self.shared.stop_signal.send_modify(|g| *g += 1);
        let task = self
            .accept_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn resume_listening(&self) {
        let mut last_err = None;
        for _ in 0..50 {
            match bind(self.addr) {
                Ok(listener) => {
                    let task = tokio::spawn(accept_loop(listener, self.shared.clone()));
                    *self.accept_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        panic!("emulated apiserver: re-binding {}: {last_err:?}", self.addr);
    }

    /// A restart of the API server: connections severed, then listening again on the same port.
    pub async fn restart(&self) {
        self.stop_listening().await;
        self.resume_listening().await;
    }

    pub async fn stop(self) {
        self.stop_listening().await;
    }

    // ---- direct store access --------------------------------------------------------------

    /// The served resource for apiVersion + plural (e.g. "apps/v1", "deployments").
    pub fn resource(&self, api_version: &str, plural: &str) -> ResourceDef {
        let st = self.lock();
        st.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.plural == plural)
            .cloned()
            .unwrap_or_else(|| panic!("emulated apiserver serves no {plural} in {api_version}"))
    }

    /// Stores an object as given, without API rules (no status stripping, no namespace check):
    /// creates it or overwrites it; watches see ADDED/MODIFIED. Returns the stored object.
    pub fn put(&self, obj: Value) -> Value {
        self.lock()
            .put(obj)
            .unwrap_or_else(|e| panic!("emulated apiserver put: {e}"))
    }

    /// Creates an object with the API's rules (as a POST would), as field manager `test`.
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let res = st.resource_for_kind(api_version, kind).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("no resource for {api_version} {kind}"),
            )
        })?;
        let ns = store::meta_str(&obj, "namespace")
            .unwrap_or_default()
            .to_string();
        st.create(&res, &ns, obj, "test", false)
    }

    /// An object, or None. `namespace` is ignored for cluster-scoped resources.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let res = self.resource(api_version, plural);
        self.lock().get(&res, namespace, name).ok()
    }

    /// An object's `.status`, or None when the object or its status is absent.
    pub fn status(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        self.get(api_version, plural, namespace, name)
            .and_then(|o| o.get("status").cloned())
    }

    /// All objects of a resource (in one namespace, or all with None), in key order.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let res = self.resource(api_version, plural);
        let st = self.lock();
        st.objects
            .iter()
            .filter(|(k, _)| {
                k.0 == res.group && k.1 == res.plural && namespace.is_none_or(|n| k.2 == n)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Removes an object immediately (finalizers ignored); watches see DELETED.
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let res = self.resource(api_version, plural);
        self.lock().remove_object(&res, namespace, name)
    }

    /// Events (events.k8s.io/v1 and core v1) in a namespace, or everywhere with None, oldest first.
    pub fn events(&self, namespace: Option<&str>) -> Vec<Value> {
        let st = self.lock();
        let mut out: Vec<Value> = st
            .objects
            .iter()
            .filter(|(k, _)| {
                k.1 == "events"
                    && (k.0.is_empty() || k.0 == "events.k8s.io")
                    && namespace.is_none_or(|n| k.2 == n)
            })
            .map(|(_, v)| v.clone())
            .collect();
        out.sort_by_key(|o| {
            o.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        });
        out
    }

    /// The current global resourceVersion (the etcd revision).
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    // ---- fault injection ------------------------------------------------------------------

    /// Compacts the history: watches and list continue tokens from an older resourceVersion now
    /// get 410 Gone (watches: an ERROR event with a Status of code 410, reason Expired).
    pub fn compact(&self) {
        self.lock().compact();
    }

    /// The next `count` requests with this verb on this resource (plural; None = any) fail with
    /// `code`. A 410 on a watch is sent as an ERROR event, like the real server.
    pub fn fail_next(&self, verb: Option<&str>, resource: Option<&str>, count: usize, code: u16) {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        self.add_fault(Fault {
            verb: verb.map(str::to_string),
            resource: resource.map(str::to_string),
            subresource: None,
            count,
            code,
            reason: reason.into(),
            message: format!("injected fault: {code} {reason}"),
        });
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Requests with `verb` (None = every verb) on group/resource get 403 Forbidden.
    pub fn deny(&self, verb: Option<&str>, group: &str, resource: &str) {
        self.lock().denials.push(Denial {
            verb: verb.map(str::to_string),
            group: group.into(),
            resource: resource.into(),
        });
    }

    /// Removes every denial and pending fault.
    pub fn allow_all(&self) {
        let mut st = self.lock();
        st.denials.clear();
        st.faults.clear();
    }

    /// Every request served so far (oldest first).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.stop_signal.send_modify(|g| *g += 1);
    }
}

/// Polls `check` every 20 ms until it returns Some, or panics naming `what` after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
