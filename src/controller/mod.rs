//! The operator: reconcile ImprovementActions and SecureScoreTargets against the Kubernetes API.
//! Pipeline per target (targets.rs): gather (the cluster inventory) → evaluate (pure, off the
//! async reactor; incremental between full evaluations) → compare → write status (server-side
//! apply, one field manager, only on change) → remember (metrics) → publish Events (only on
//! transitions).

pub mod actions;
pub mod controls;
pub mod leader;
pub mod targets;

use crate::api::{ImprovementAction, SecureScoreTarget, SecurityControl};
use crate::engine::CompiledAction;
use crate::inventory::cluster::{Caches, Change, KindKey};
use crate::metrics::Scoreboard;
use futures::FutureExt;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Resolves when the operator shuts down (the controllers drain then).
pub type Stopping =
    futures::future::Shared<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>;

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "securescore";

/// Operator settings (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The operator's own namespace (lease and default cluster-target namespace).
    pub namespace: String,
    /// Namespaces whose targets may name other namespaces or read cluster resources.
    pub cluster_target_namespaces: BTreeSet<String>,
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: String,
    pub lease_duration: Duration,
    pub identity: String,
    pub concurrency: u16,
    pub debounce: Duration,
    pub metrics_addr: std::net::SocketAddr,
    pub metrics_actions: crate::metrics::ActionSeries,
}

pub use crate::metrics::TargetKey;

/// State shared by both controllers, the caches and the HTTP endpoints.
pub struct Shared {
    pub client: Client,
    pub settings: Settings,
    pub caches: Arc<Caches>,
    /// The latest evaluations and this replica's role (what /metrics reads).
    pub scoreboard: Arc<Scoreboard>,
    pub actions: RwLock<HashMap<String, Arc<CompiledAction>>>,
    /// The SecurityControls by name (their specs), for targets in the SecurityControls model.
    pub controls: RwLock<HashMap<String, Arc<SecurityControl>>>,
    /// The SecurityControls' initial list has arrived (targets in the SecurityControls model
    /// wait for it, as every target waits for the actions).
    pub controls_listed: std::sync::atomic::AtomicBool,
    /// What each target reads, its incremental state and the changes waiting for it.
    pub states: targets::States,
    pub targets: RwLock<Option<Store<SecureScoreTarget>>>,
    pub action_store: RwLock<Option<Store<ImprovementAction>>>,
    pub trigger: tokio::sync::mpsc::UnboundedSender<ObjectRef<SecureScoreTarget>>,
    /// Asks the action controller to refresh the cross-target totals.
    pub totals_changed: tokio::sync::mpsc::UnboundedSender<()>,
    pub started: Instant,
    /// When the last action finished loading (or the operator started): targets wait for the
    /// catalog while it keeps loading.
    pub action_loaded_at: std::sync::Mutex<Instant>,
    pub recorder: kube::runtime::events::Recorder,
}

pub(crate) fn unpoison<T>(e: std::sync::PoisonError<T>) -> T {
    e.into_inner()
}

impl Shared {
    pub fn is_leader(&self) -> bool {
        self.scoreboard.is_leader()
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.scoreboard.metrics
    }

    /// Ask for the evaluation of every target.
    pub fn trigger_all(&self) {
        if let Some(store) = self.targets.read().unwrap_or_else(unpoison).as_ref() {
            for t in store.state() {
                let _ = self.trigger.send(ObjectRef::from_obj(t.as_ref()));
            }
        }
    }

    /// Hand a change of the cluster inventory to the targets that read it, and ask for their
    /// evaluation (targets never evaluated yet are asked too).
    pub fn route_change(&self, kind: &KindKey, change: &Change) {
        let Some(store) = self.targets.read().unwrap_or_else(unpoison).clone() else {
            return;
        };
        let affected = self.states.route(kind, change);
        for t in store.state() {
            let key = (
                t.metadata.namespace.clone().unwrap_or_default(),
                t.metadata.name.clone().unwrap_or_default(),
            );
            if affected.contains(&key) || !self.states.reads_known(&key) {
                let _ = self.trigger.send(ObjectRef::from_obj(t.as_ref()));
            }
        }
    }

    /// Whether every ImprovementAction the API holds is compiled at its current definition.
    pub fn actions_loaded(&self) -> bool {
        let Some(store) = self.action_store.read().unwrap_or_else(unpoison).clone() else {
            return false;
        };
        if store.wait_until_ready().now_or_never().is_none() {
            return false;
        }
        let compiled = self.actions.read().unwrap_or_else(unpoison);
        store.state().iter().all(|a| {
            let name = a.metadata.name.as_deref().unwrap_or_default();
            compiled
                .get(name)
                .is_some_and(|c| c.revision == crate::engine::check::revision_of(&a.spec))
        })
    }

    /// Whether targets still wait for the catalog: an action is not loaded yet and the last
    /// one loaded within [`targets::ACTION_LOAD_WAIT`] (each action's load has its own
    /// deadline, so a catalog that stops moving has an action stuck or unloadable). Counting
    /// from the operator's start instead, a slow API made targets evaluate with part of the
    /// catalog, Degraded, then in full again for every action that arrived later.
    pub fn loading_actions(&self) -> bool {
        !self.actions_loaded()
            && self
                .action_loaded_at
                .lock()
                .unwrap_or_else(unpoison)
                .elapsed()
                < targets::ACTION_LOAD_WAIT
    }

    /// The kinds the loaded actions read, plus Namespaces (always needed for scopes).
    pub fn desired_kinds(&self) -> BTreeSet<KindKey> {
        let mut kinds: BTreeSet<KindKey> = [(String::new(), "Namespace".to_string())].into();
        for a in self.actions.read().unwrap_or_else(unpoison).values() {
            if a.is_ready() {
                kinds.extend(a.kinds_read().map(|(g, k)| (g.to_string(), k.to_string())));
            }
        }
        kinds
    }
}

/// Why the operator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the {plural}.{group} CustomResourceDefinition is not installed in this cluster: install the CRDs first, e.g. `securescore crds | kubectl apply --server-side -f -` or the Helm chart charts/securescore (its crds/ folder), then start the operator again"
    )]
    CrdMissing { plural: String, group: String },
    #[error("cannot check whether the {plural}.{group} CRD is installed: {source}")]
    Api {
        plural: String,
        group: String,
        #[source]
        source: kube::Error,
    },
}

/// Whether the API serves our custom resources: a missing CRD is a clear start-up error with
/// an install hint, not a controller retrying forever.
pub async fn check_crds(client: &Client) -> Result<(), StartError> {
    use kube::api::{Api, ListParams};
    async fn served<K>(client: &Client) -> Result<(), StartError>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let plural = K::plural(&()).to_string();
        let group = K::group(&()).to_string();
        match Api::<K>::all(client.clone())
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                Err(StartError::CrdMissing { plural, group })
            }
            Err(source) => Err(StartError::Api {
                plural,
                group,
                source,
            }),
        }
    }
    served::<ImprovementAction>(client).await?;
    served::<SecureScoreTarget>(client).await?;
    served::<SecurityControl>(client).await
}

/// Run the operator until `shutdown` resolves; then drain in-flight work and release the lease.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (totals_tx, totals_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared_slot: Arc<RwLock<Option<std::sync::Weak<Shared>>>> = Arc::default();
    let slot = shared_slot.clone();
    let caches = Caches::new(
        client.clone(),
        Arc::new(move |kind: &KindKey, change: &Change| {
            let Some(shared) = slot
                .read()
                .unwrap_or_else(unpoison)
                .as_ref()
                .and_then(|w| w.upgrade())
            else {
                return;
            };
            shared.route_change(kind, change);
        }),
    );
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter {
            controller: "securescore".into(),
            instance: Some(settings.identity.clone()),
        },
    );
    let shared = Arc::new(Shared {
        client: client.clone(),
        scoreboard: Arc::new(Scoreboard::new(
            !settings.leader_election,
            settings.metrics_actions,
        )),
        settings: settings.clone(),
        caches,
        actions: RwLock::default(),
        controls: RwLock::default(),
        controls_listed: std::sync::atomic::AtomicBool::new(false),
        states: targets::States::default(),
        targets: RwLock::default(),
        action_store: RwLock::default(),
        trigger: tx,
        totals_changed: totals_tx,
        started: Instant::now(),
        action_loaded_at: std::sync::Mutex::new(Instant::now()),
        recorder,
    });
    *shared_slot.write().unwrap_or_else(unpoison) = Some(Arc::downgrade(&shared));
    shared.caches.ensure(&shared.desired_kinds()).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(crate::http::serve(
        crate::http::Observed {
            scoreboard: shared.scoreboard.clone(),
            caches: shared.caches.clone(),
        },
        settings.metrics_addr,
        stop_rx.clone(),
    ));

    let elector = settings.leader_election.then(|| {
        Arc::new(leader::LeaderElector::new(
            client.clone(),
            &settings.lease_namespace,
            &settings.lease_name,
            &settings.identity,
            settings.lease_duration,
        ))
    });
    let election = elector
        .clone()
        .map(|e| tokio::spawn(elect(shared.clone(), e, stop_rx.clone())));

    let mut stop_for_controllers = stop_rx.clone();
    let stopping = async move {
        let _ = stop_for_controllers.wait_for(|s| *s).await;
    };
    let stopping: Stopping = futures::future::FutureExt::shared(
        Box::pin(stopping) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    );
    let actions_ctl = tokio::spawn(actions::run(shared.clone(), totals_rx, stopping.clone()));
    let targets_ctl = tokio::spawn(targets::run(shared.clone(), rx, stopping.clone()));
    let controls_ctl = tokio::spawn(controls::run(shared.clone(), stopping.clone()));

    shutdown.await;
    tracing::info!("shutting down: draining in-flight reconciles");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let _ = targets_ctl.await;
        let _ = actions_ctl.await;
        let _ = controls_ctl.await;
    })
    .await;
    if let Some(e) = election {
        let _ = e.await;
    }
    if let Some(e) = elector
        && let Err(err) = e.release().await
    {
        tracing::warn!(error = %err, "could not release the lease; a standby takes over when it expires");
    }
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

async fn elect(
    shared: Arc<Shared>,
    elector: Arc<leader::LeaderElector>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let was = shared.is_leader();
        match elector.try_acquire_or_renew(jiff::Timestamp::now()).await {
            Ok(role) => {
                let now = role == leader::Role::Leader;
                shared.scoreboard.set_leader(now);
                if now && !was {
                    tracing::info!(identity = %shared.settings.identity, "became the leader");
                    shared.trigger_all();
                } else if !now && was {
                    tracing::warn!("lost the lease: standing by");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed");
                shared.metrics().reconcile_error("Lease", "ApiError");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(elector.renew_every()) => {}
            _ = stop.wait_for(|s| *s) => {
                shared.scoreboard.set_leader(false);
                return;
            }
        }
    }
}
