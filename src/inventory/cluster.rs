//! The cluster inventory: one shared watch cache per evaluated kind, used by every target. Kinds come from the
//! actions' checks (discovered through the API, so custom kinds work too); caches start and
//! stop as actions come and go. Objects are kept as engine `Resource`s in compact form (their
//! JSON encoded, see `engine::compact`; the CEL value is built when an evaluation reads the
//! object and dropped after it), managedFields dropped, Secrets as metadata only.

use crate::engine::evaluate::in_scope;
use crate::engine::resource::{KindStatus, Named, Resource};
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tokio::task::JoinHandle;

/// How often a kind the API did not serve is looked up again.
const MISSING_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// `(group, kind)`.
pub type KindKey = (String, String);

/// What changed in one watched kind.
#[derive(Debug, Clone)]
pub enum Change {
    /// An object was added or modified (its new state).
    Applied(Arc<Resource>),
    /// An object was deleted (its last known state).
    Deleted(Arc<Resource>),
    /// The kind was listed afresh, or became unavailable: whoever reads it starts over.
    Resynced,
}

/// Called after every change of a watched kind, once the cache holds it.
pub type OnChange = Arc<dyn Fn(&KindKey, &Change) + Send + Sync>;

/// One kind's objects by namespace (`None`: cluster-scoped), then by name: no copy of either
/// per object (100k cached objects).
#[derive(Default)]
struct Objects(HashMap<Option<String>, HashSet<Named>>);

// `Named` hashes and compares by the object's name, which never changes; the lazily converted
// CEL value a Resource caches (its interior mutability) is not part of that.
#[allow(clippy::mutable_key_type)]
impl Objects {
    /// Add or replace the object with this namespace and name; returns the replaced one.
    fn insert(&mut self, r: Arc<Resource>) -> Option<Arc<Resource>> {
        if !self.0.contains_key(&r.namespace) {
            self.0.insert(r.namespace.clone(), HashSet::new());
        }
        self.0
            .get_mut(&r.namespace)
            .and_then(|names| names.replace(Named(r)))
            .map(|old| old.0)
    }

    fn remove(&mut self, namespace: &Option<String>, name: &str) -> Option<Arc<Resource>> {
        let names = self.0.get_mut(namespace)?;
        let gone = names.take(name)?;
        if names.is_empty() {
            self.0.remove(namespace);
        }
        Some(gone.0)
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.0.values().flatten().map(|n| &n.0)
    }

    fn get(&self, namespace: &Option<String>, name: &str) -> Option<&Arc<Resource>> {
        self.0.get(namespace)?.get(name).map(|n| &n.0)
    }

    /// What a relist found changed against `before`: the objects added or modified, then the
    /// ones gone. Objects listed as they were are not changes.
    fn changes_since(&self, before: &Objects) -> Vec<Change> {
        let applied = self.values().filter(|r| {
            before
                .get(&r.namespace, &r.name)
                .is_none_or(|old| !old.same_content(r))
        });
        let deleted = before
            .values()
            .filter(|old| self.get(&old.namespace, &old.name).is_none());
        applied
            .map(|r| Change::Applied(r.clone()))
            .chain(deleted.map(|r| Change::Deleted(r.clone())))
            .collect()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

struct KindCache {
    status: KindStatus,
    objects: Objects,
    task: Option<JoinHandle<()>>,
    /// When the kind's first list last moved on (the cache was created, a listed object
    /// arrived): a list that keeps moving is waited for, a stalled one is not.
    progress: std::time::Instant,
}

impl KindCache {
    fn new(status: KindStatus) -> KindCache {
        KindCache {
            status,
            objects: Objects::default(),
            task: None,
            progress: std::time::Instant::now(),
        }
    }
}

/// The shared caches.
pub struct Caches {
    client: Client,
    kinds: RwLock<HashMap<KindKey, Arc<RwLock<KindCache>>>>,
    discovery: tokio::sync::Mutex<Option<Discovery>>,
    /// Serialises ensure(); holds when API discovery last ran.
    ensuring: tokio::sync::Mutex<Option<std::time::Instant>>,
    on_change: OnChange,
}

fn lock_poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    e.into_inner()
}

/// Human name of a kind, `NetworkPolicy.networking.k8s.io`.
pub fn kind_name(key: &KindKey) -> String {
    if key.0.is_empty() {
        key.1.clone()
    } else {
        format!("{}.{}", key.1, key.0)
    }
}

impl Caches {
    pub fn new(client: Client, on_change: OnChange) -> Arc<Caches> {
        Arc::new(Caches {
            client,
            kinds: RwLock::default(),
            discovery: Default::default(),
            ensuring: Default::default(),
            on_change,
        })
    }

    /// Watch exactly the `desired` kinds: start the missing ones, stop the ones no action reads.
    pub async fn ensure(self: &Arc<Self>, desired: &BTreeSet<KindKey>) {
        // One at a time: concurrent reconciles would otherwise start the same watch twice.
        let mut last_discovery = self.ensuring.lock().await;
        // A kind the API did not serve is looked up again at most every MISSING_RETRY: every
        // reconcile calls ensure(), and discovery is a round of API requests.
        let retry_missing = last_discovery.is_none_or(|t| t.elapsed() >= MISSING_RETRY);
        let (to_start, to_stop): (Vec<KindKey>, Vec<KindKey>) = {
            let kinds = self.kinds.read().unwrap_or_else(lock_poisoned);
            let start = desired
                .iter()
                .filter(|k| match kinds.get(*k) {
                    None => true,
                    Some(c) => {
                        retry_missing
                            && c.read().unwrap_or_else(lock_poisoned).status == KindStatus::Missing
                    }
                })
                .cloned()
                .collect();
            let stop = kinds
                .keys()
                .filter(|k| !desired.contains(*k))
                .cloned()
                .collect();
            (start, stop)
        };
        for key in to_stop {
            if let Some(cache) = self
                .kinds
                .write()
                .unwrap_or_else(lock_poisoned)
                .remove(&key)
            {
                if let Some(task) = cache.write().unwrap_or_else(lock_poisoned).task.take() {
                    task.abort();
                }
                tracing::info!(kind = %kind_name(&key), "stopped watching: no action reads it any more");
            }
        }
        if to_start.is_empty() {
            return;
        }
        // Kinds the last discovery knows start at once; discovery runs again only when one
        // is not known there (new to the API, or missing before: the API may serve it now).
        // Actions load one by one, each naming a few new kinds: one discovery per action
        // would be a round of API requests each, while the first lists keep the API busy.
        let discovery = {
            let mut guard = self.discovery.lock().await;
            let known = guard
                .as_ref()
                .is_some_and(|d| to_start.iter().all(|k| find_kind(d, k).is_some()));
            if !known {
                *last_discovery = Some(std::time::Instant::now());
                match Discovery::new(self.client.clone()).run().await {
                    Ok(d) => *guard = Some(d),
                    Err(e) => {
                        tracing::warn!(error = %e, "API discovery failed; kinds stay unknown until the next try")
                    }
                }
            }
            guard.as_ref().map(|d| {
                to_start
                    .iter()
                    .map(|k| (k.clone(), find_kind(d, k)))
                    .collect::<Vec<_>>()
            })
        };
        let Some(found) = discovery else {
            // A kind known to be missing stays so until a discovery says otherwise: a failed
            // retry must not flip it to NotSynced and back (each flip moves what its targets
            // read, and costs them a full evaluation, Degraded in between).
            let known = self.statuses();
            for key in to_start.into_iter().filter(|k| !known.contains_key(k)) {
                self.set_status(&key, KindStatus::NotSynced);
            }
            return;
        };
        for (key, resolved) in found {
            match resolved {
                None => {
                    // Said once, not on every retry: a product that is not installed (its kinds
                    // missing for good) would otherwise log this every 30 s.
                    let already = self.statuses().get(&key) == Some(&KindStatus::Missing);
                    if already {
                        tracing::debug!(kind = %kind_name(&key), "the API still does not serve this kind");
                    } else {
                        tracing::warn!(kind = %kind_name(&key), "the API does not serve this kind: actions reading it are Unknown");
                    }
                    self.set_status(&key, KindStatus::Missing);
                }
                Some((ar, _)) => self.start(key, ar),
            }
        }
    }

    fn set_status(&self, key: &KindKey, status: KindStatus) {
        let mut kinds = self.kinds.write().unwrap_or_else(lock_poisoned);
        let cache = kinds
            .entry(key.clone())
            .or_insert_with(|| Arc::new(RwLock::new(KindCache::new(status))));
        cache.write().unwrap_or_else(lock_poisoned).status = status;
    }

    fn start(self: &Arc<Self>, key: KindKey, ar: ApiResource) {
        let cache = Arc::new(RwLock::new(KindCache::new(KindStatus::NotSynced)));
        let metadata_only = key.0.is_empty() && key.1 == "Secret";
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        let task = tokio::spawn(watch_kind(
            api,
            ar,
            metadata_only,
            key.clone(),
            cache.clone(),
            self.on_change.clone(),
        ));
        cache.write().unwrap_or_else(lock_poisoned).task = Some(task);
        if let Some(old) = self
            .kinds
            .write()
            .unwrap_or_else(lock_poisoned)
            .insert(key.clone(), cache)
            && let Some(t) = old.write().unwrap_or_else(lock_poisoned).task.take()
        {
            t.abort();
        }
        tracing::info!(kind = %kind_name(&key), metadata_only, "watching");
    }

    /// Availability of every watched kind.
    pub fn statuses(&self) -> HashMap<KindKey, KindStatus> {
        self.kinds
            .read()
            .unwrap_or_else(lock_poisoned)
            .iter()
            .map(|(k, c)| (k.clone(), c.read().unwrap_or_else(lock_poisoned).status))
            .collect()
    }

    /// Whether one of `kinds` is still in its first list and that list moved on within `stall`
    /// (a kind [`Caches::ensure`] did not start is not). A kind whose list stalled longer
    /// (errors, backoff) is no longer waited for: it stays `NotSynced`.
    pub fn listing(&self, kinds: &BTreeSet<KindKey>, stall: std::time::Duration) -> bool {
        let map = self.kinds.read().unwrap_or_else(lock_poisoned);
        kinds.iter().any(|k| match map.get(k) {
            None => false,
            Some(c) => {
                let c = c.read().unwrap_or_else(lock_poisoned);
                c.status == KindStatus::NotSynced && c.progress.elapsed() < stall
            }
        })
    }

    /// Whether every watched kind finished its first list (or is known to be unavailable).
    pub fn initial_sync_done(&self) -> bool {
        self.statuses()
            .values()
            .all(|s| *s != KindStatus::NotSynced)
    }

    /// The objects of the given kinds in the given namespaces (the target scope rule,
    /// [`in_scope`]), or of every namespace when `namespaces` is None.
    pub fn snapshot(
        &self,
        kinds: &BTreeSet<KindKey>,
        namespaces: Option<&BTreeSet<String>>,
        cluster: bool,
    ) -> Vec<Arc<Resource>> {
        let map = self.kinds.read().unwrap_or_else(lock_poisoned);
        let mut out = Vec::new();
        for key in kinds {
            let Some(cache) = map.get(key) else { continue };
            let cache = cache.read().unwrap_or_else(lock_poisoned);
            out.extend(
                cache
                    .objects
                    .values()
                    .filter(|r| namespaces.is_none_or(|set| in_scope(set, cluster, r)))
                    .cloned(),
            );
        }
        out
    }
}

fn find_kind(d: &Discovery, key: &KindKey) -> Option<(ApiResource, ApiCapabilities)> {
    d.groups()
        .find(|g| g.name() == key.0)
        .and_then(|g| g.recommended_kind(&key.1))
}

/// An object as the engine keeps it: managedFields dropped, Secrets reduced to metadata.
fn to_resource(obj: DynamicObject, ar: &ApiResource, metadata_only: bool) -> Option<Arc<Resource>> {
    let mut value = serde_json::to_value(&obj).ok()?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), ar.api_version.clone().into());
        map.insert("kind".into(), ar.kind.clone().into());
        if metadata_only {
            map.retain(|k, _| k == "apiVersion" || k == "kind" || k == "metadata");
        }
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
            if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
    Resource::new(value, None)
        .ok()
        .map(|r| Arc::new(r.into_compact()))
}

async fn watch_kind(
    api: Api<DynamicObject>,
    ar: ApiResource,
    metadata_only: bool,
    key: KindKey,
    cache: Arc<RwLock<KindCache>>,
    on_change: OnChange,
) {
    let config = watcher::Config::default();
    let mut stream = if metadata_only {
        // Secrets are never read: only their metadata is watched.
        let meta: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(api.into_client(), &ar);
        watcher::watcher(meta, config)
            .default_backoff()
            .map(|e| {
                e.map(|ev| {
                    map_event(ev, |m| DynamicObject {
                        types: m.types,
                        metadata: m.metadata,
                        data: serde_json::Value::Null,
                    })
                })
            })
            .boxed()
    } else {
        watcher::watcher(api, config).default_backoff().boxed()
    };
    let mut pending = Objects::default();
    let mut forbidden_logged = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => {
                pending.clear();
                cache.write().unwrap_or_else(lock_poisoned).progress = std::time::Instant::now();
            }
            Ok(Event::InitApply(obj)) => {
                if let Some(r) = to_resource(obj, &ar, metadata_only) {
                    pending.insert(r);
                }
                cache.write().unwrap_or_else(lock_poisoned).progress = std::time::Instant::now();
            }
            Ok(Event::InitDone) => {
                // A relist of a kind in sync (its watch expired) hands on what changed, as
                // the watch would have: only the kind's first list (or one after it was
                // unavailable) makes its readers start over.
                let relisted = {
                    let mut c = cache.write().unwrap_or_else(lock_poisoned);
                    let before = std::mem::replace(&mut c.objects, std::mem::take(&mut pending));
                    let was_synced = c.status == KindStatus::Synced;
                    c.status = KindStatus::Synced;
                    was_synced.then(|| c.objects.changes_since(&before))
                };
                forbidden_logged = false;
                match relisted {
                    Some(changes) => {
                        tracing::debug!(kind = %kind_name(&key), changes = changes.len(), "relisted");
                        for change in &changes {
                            on_change(&key, change);
                        }
                    }
                    None => {
                        tracing::debug!(kind = %kind_name(&key), "synced");
                        on_change(&key, &Change::Resynced);
                    }
                }
            }
            Ok(Event::Apply(obj)) => {
                if let Some(r) = to_resource(obj, &ar, metadata_only) {
                    cache
                        .write()
                        .unwrap_or_else(lock_poisoned)
                        .objects
                        .insert(r.clone());
                    on_change(&key, &Change::Applied(r));
                }
            }
            Ok(Event::Delete(obj)) => {
                let ns = obj.metadata.namespace.clone();
                let name = obj.metadata.name.clone().unwrap_or_default();
                let gone = cache
                    .write()
                    .unwrap_or_else(lock_poisoned)
                    .objects
                    .remove(&ns, &name);
                if let Some(r) = gone {
                    on_change(&key, &Change::Deleted(r));
                }
            }
            Err(e) => {
                let forbidden = matches!(&e, watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 403);
                if forbidden {
                    cache.write().unwrap_or_else(lock_poisoned).status = KindStatus::Forbidden;
                    if !forbidden_logged {
                        tracing::error!(
                            kind = %kind_name(&key),
                            resource = %ar.plural,
                            group = %ar.group,
                            "missing permission: the operator may not list/watch {}{}; grant get, list and watch on it in the operator's ClusterRole",
                            ar.plural,
                            if ar.group.is_empty() { String::new() } else { format!(".{}", ar.group) }
                        );
                        forbidden_logged = true;
                        on_change(&key, &Change::Resynced);
                    }
                } else {
                    tracing::warn!(kind = %kind_name(&key), error = %e, "watch error; retrying with backoff");
                }
            }
        }
    }
}

fn map_event<A, B>(ev: Event<A>, f: impl Fn(A) -> B) -> Event<B> {
    match ev {
        Event::Apply(a) => Event::Apply(f(a)),
        Event::Delete(a) => Event::Delete(f(a)),
        Event::Init => Event::Init,
        Event::InitApply(a) => Event::InitApply(f(a)),
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_resource() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Secret".into(),
            plural: "secrets".into(),
        }
    }

    /// Caches with kinds in the given states, the first list of each last moving on `ago`.
    fn caches_with(kinds: &[(&str, KindStatus, std::time::Duration)]) -> Arc<Caches> {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        let client = Client::try_from(config).expect("a client (nothing is requested)");
        let caches = Caches::new(client, Arc::new(|_: &KindKey, _: &Change| {}));
        for (kind, status, ago) in kinds {
            let mut cache = KindCache::new(*status);
            cache.progress = std::time::Instant::now()
                .checked_sub(*ago)
                .expect("the clock is past `ago`");
            caches.kinds.write().expect("not poisoned").insert(
                (String::new(), kind.to_string()),
                Arc::new(RwLock::new(cache)),
            );
        }
        caches
    }

    fn kinds(names: &[&str]) -> BTreeSet<KindKey> {
        names
            .iter()
            .map(|k| (String::new(), k.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn a_first_list_is_waited_for_while_it_moves_on_not_once_it_stalls() {
        use std::time::Duration;
        let stall = Duration::from_secs(60);
        let caches = caches_with(&[
            // Listing for minutes already, its last page a second ago: still waited for (a
            // rule counting from the operator's start gave up on it after a minute).
            ("Pod", KindStatus::NotSynced, Duration::from_secs(1)),
            ("Service", KindStatus::NotSynced, Duration::from_secs(61)),
            ("Secret", KindStatus::Synced, Duration::from_secs(600)),
            ("Widget", KindStatus::Missing, Duration::ZERO),
        ]);
        assert!(caches.listing(&kinds(&["Pod", "Secret"]), stall));
        assert!(
            !caches.listing(&kinds(&["Service", "Secret", "Widget"]), stall),
            "a list stalled for longer than {stall:?} is not waited for"
        );
        assert!(
            !caches.listing(&kinds(&["Node"]), stall),
            "a kind ensure() did not start is not waited for"
        );
    }

    #[tokio::test]
    async fn a_failed_rediscovery_leaves_a_missing_kind_missing() {
        // Nothing listens at the client's address: every discovery fails.
        let caches = caches_with(&[("Widget", KindStatus::Missing, std::time::Duration::ZERO)]);
        caches.ensure(&kinds(&["Namespace", "Widget"])).await;
        let statuses = caches.statuses();
        assert_eq!(
            statuses.get(&(String::new(), "Widget".to_string())),
            Some(&KindStatus::Missing),
            "the retry failed: nothing is known to have changed"
        );
        assert_eq!(
            statuses.get(&(String::new(), "Namespace".to_string())),
            Some(&KindStatus::NotSynced),
            "a new kind is not synced while discovery fails"
        );
    }

    #[test]
    fn a_cached_secret_holds_its_metadata_only_in_compact_form() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a", "labels": {"app": "db"},
                         "managedFields": [{"manager": "kubectl"}]},
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "plain"}, "type": "Opaque"
        }))
        .expect("a Secret");
        let r = to_resource(obj, &secret_resource(), true).expect("kept");
        assert!(r.is_compact(), "kept in compact form");
        assert_eq!(r.object, serde_json::Value::Null, "no JSON kept beside it");
        assert_eq!(
            r.json().into_owned(),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "team-a", "labels": {"app": "db"}}})
        );
        let cel = format!("{:?}", r.cel().value());
        assert!(
            !cel.contains("aHVudGVyMg") && !cel.contains("plain") && !cel.contains("Opaque"),
            "{cel}"
        );
        assert!(cel.contains("team-a"), "{cel}");
    }

    #[test]
    fn other_objects_are_cached_whole_in_compact_form_without_managed_fields() {
        let pod = ApiResource {
            kind: "Pod".into(),
            plural: "pods".into(),
            ..secret_resource()
        };
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "team-a", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }))
        .expect("a Pod");
        let r = to_resource(obj, &pod, false).expect("kept");
        assert!(r.is_compact());
        assert_eq!(
            r.json().into_owned(),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "team-a", "annotations": {"keep": "x"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
        );
    }
}
