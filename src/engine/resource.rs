//! Objects as the engine sees them, and the inventory of one evaluation.

use super::cel::{CelJson, json_to_cel};
use super::compact::{Compact, share};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// Where an object was read from (offline scans), for located findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    /// 1-based line of the document's first line.
    pub line: Option<usize>,
    /// 0-based index of the document in the file.
    pub document: usize,
}

/// The controlling owner an object names (its one `ownerReferences[]` entry with
/// `controller: true`): a claim, resolved by [`super::ownership`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub uid: Option<String>,
}

/// A Kubernetes object with its identity parsed out.
#[derive(Debug)]
pub struct Resource {
    pub api_version: String,
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub labels: Labels,
    /// Boxed: most objects have none, and every cached object would carry the room.
    pub controller: Option<Box<OwnerRef>>,
    /// The object as read; `Null` once the resource is compacted ([`Resource::into_compact`]):
    /// [`Resource::json`] gives it back either way.
    pub object: serde_json::Value,
    pub source: Option<Source>,
    /// The object's compact encoding, when the JSON was dropped.
    compact: Option<Compact>,
    cel: OnceLock<CelJson>,
}

/// Why a value is not an object the engine can evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("not an object (a {0})")]
    NotAnObject(&'static str),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{0}` must be a string")]
    NotAString(&'static str),
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "map",
    }
}

fn str_field<'a>(
    v: &'a serde_json::Value,
    path: &[&str],
    name: &'static str,
) -> Result<Option<&'a str>, ResourceError> {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    match cur {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        _ => Err(ResourceError::NotAString(name)),
    }
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

impl Resource {
    /// Parse identity out of an object; `apiVersion`, `kind` and `metadata.name` are required.
    pub fn new(
        object: serde_json::Value,
        source: Option<Source>,
    ) -> Result<Resource, ResourceError> {
        if !object.is_object() {
            return Err(ResourceError::NotAnObject(json_type(&object)));
        }
        let api_version = str_field(&object, &["apiVersion"], "apiVersion")?
            .filter(|s| !s.is_empty())
            .ok_or(ResourceError::MissingField("apiVersion"))?
            .to_string();
        let kind = str_field(&object, &["kind"], "kind")?
            .filter(|s| !s.is_empty())
            .ok_or(ResourceError::MissingField("kind"))?
            .to_string();
        let name = str_field(&object, &["metadata", "name"], "metadata.name")?
            .filter(|s| !s.is_empty())
            .ok_or(ResourceError::MissingField("metadata.name"))?
            .to_string();
        let namespace = str_field(&object, &["metadata", "namespace"], "metadata.namespace")?
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let uid = str_field(&object, &["metadata", "uid"], "metadata.uid")?
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let labels = object
            .pointer("/metadata/labels")
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        // The API server accepts at most one controller reference; with several, none is
        // believed (see engine::ownership).
        let controller = object
            .pointer("/metadata/ownerReferences")
            .and_then(|o| o.as_array())
            .and_then(|refs| {
                let mut controllers = refs
                    .iter()
                    .filter(|r| r.get("controller").and_then(|c| c.as_bool()) == Some(true));
                match (controllers.next(), controllers.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            })
            .and_then(|r| {
                Some(Box::new(OwnerRef {
                    group: group_of(r.get("apiVersion")?.as_str()?).to_string(),
                    kind: r.get("kind")?.as_str()?.to_string(),
                    name: r.get("name")?.as_str()?.to_string(),
                    uid: r
                        .get("uid")
                        .and_then(|u| u.as_str())
                        .filter(|u| !u.is_empty())
                        .map(str::to_string),
                }))
            });
        Ok(Resource {
            group: group_of(&api_version).to_string(),
            api_version,
            kind,
            namespace,
            name,
            uid,
            labels,
            controller,
            object,
            source,
            compact: None,
            cel: OnceLock::new(),
        })
    }

    /// Keep the object in its compact encoding and drop the JSON: for whatever holds many
    /// objects (the operator's caches, a scan's whole input). Identity fields stay; `object`
    /// becomes null ([`Resource::json`] decodes it). The CEL value is then built for each
    /// evaluation that reads the object and dropped after it, except a Namespace's, which every
    /// object of the namespace reads (`namespaceObject`) and which stays converted.
    pub fn into_compact(mut self) -> Resource {
        if self.compact.is_some() {
            return self;
        }
        if self.kind == "Namespace" && self.group.is_empty() {
            let _ = self.cel();
        } else {
            self.cel = OnceLock::new();
        }
        self.compact = Some(Compact::encode(&self.object));
        self.object = serde_json::Value::Null;
        self
    }

    /// Whether the object is held compact (see [`Resource::into_compact`]).
    pub fn is_compact(&self) -> bool {
        self.compact.is_some()
    }

    /// Bytes of the compact encoding (0 when the JSON is held instead).
    pub fn compact_len(&self) -> usize {
        self.compact.as_ref().map_or(0, Compact::len)
    }

    /// Whether two versions of an object hold the same content (a relist finds most objects
    /// as they were). May say no for equal content (an encoding made after the shared table
    /// filled up), never yes for different content.
    pub fn same_content(&self, other: &Resource) -> bool {
        match (&self.compact, &other.compact) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.object == other.object,
            _ => *self.json() == *other.json(),
        }
    }

    /// The object as JSON (decoded when compact).
    pub fn json(&self) -> std::borrow::Cow<'_, serde_json::Value> {
        match &self.compact {
            Some(c) => std::borrow::Cow::Owned(c.to_json()),
            None => std::borrow::Cow::Borrowed(&self.object),
        }
    }

    /// The object as a CEL value. Built from the JSON on first use and kept, shared by every
    /// action; for a compact object built from its encoding on every call (the caller shares
    /// it across actions) and not kept, so that memory holds the encodings only.
    pub fn cel(&self) -> CelJson {
        if let Some(converted) = self.cel.get() {
            return converted.clone();
        }
        match &self.compact {
            Some(c) => c.to_cel(),
            None => self.cel.get_or_init(|| json_to_cel(&self.object)).clone(),
        }
    }

    /// `namespace/kind/name`, the order findings are listed in.
    pub fn sort_key(&self) -> (&str, &str, &str) {
        (
            self.namespace.as_deref().unwrap_or(""),
            &self.kind,
            &self.name,
        )
    }

    /// A readable reference, e.g. `Deployment team-a/web`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// An object's labels in one allocation, sorted by key, keys and values shared through
/// [`share`] (a `BTreeMap` took a 544-byte node for a single label, and a copy of every string,
/// for each of 100k cached objects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Arc<String>, Arc<String>)]>);

impl Labels {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Key and value pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The last value given for a key wins, as in a map.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Labels {
        let mut sorted: Vec<(Arc<String>, Arc<String>)> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            match sorted.binary_search_by(|(have, _)| have.as_str().cmp(k)) {
                Ok(i) => sorted[i].1 = share(v),
                Err(i) => sorted.insert(i, (share(k), share(v))),
            }
        }
        Labels(sorted.into_boxed_slice())
    }
}

impl super::selector::LabelLookup for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Whether the objects of one kind are known to the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindStatus {
    /// Listed and in sync: an absent object really is absent.
    Synced,
    /// Not yet synced.
    NotSynced,
    /// The API does not serve the kind.
    Missing,
    /// The operator may not list it.
    Forbidden,
}

/// Objects of one kind by namespace (`None`: cluster-scoped).
type ByNamespace = HashMap<Option<String>, Vec<Arc<Resource>>>;

/// An object in a set of objects that differ by name (one kind in one namespace), found by its
/// name without a copy of it: `set.get(name)`. Hashed and compared by name only.
#[derive(Debug, Clone)]
pub struct Named(pub Arc<Resource>);

impl Borrow<str> for Named {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl Hash for Named {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.as_str().hash(state);
    }
}

impl PartialEq for Named {
    fn eq(&self, other: &Named) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Named {}

/// An object found by its uid without a copy of it (only objects with a uid are held).
#[derive(Debug, Clone)]
struct ByUid(Arc<Resource>);

impl ByUid {
    fn uid(&self) -> &str {
        self.0.uid.as_deref().unwrap_or("")
    }
}

impl Borrow<str> for ByUid {
    fn borrow(&self) -> &str {
        self.uid()
    }
}

impl Hash for ByUid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uid().hash(state);
    }
}

impl PartialEq for ByUid {
    fn eq(&self, other: &ByUid) -> bool {
        self.uid() == other.uid()
    }
}

impl Eq for ByUid {}

/// Objects of one kind in one namespace (or cluster-scoped) by name.
#[derive(Debug, Clone, Default)]
pub struct NameIndex(HashSet<Named>);

impl NameIndex {
    pub fn get(&self, name: &str) -> Option<&Arc<Resource>> {
        self.0.get(name).map(|n| &n.0)
    }
}

/// Objects of one kind in one namespace (or cluster-scoped) by name: a reference (a
/// binding's `roleRef`, a Pod's service account) resolves in constant time. Shared, so that an
/// evaluation holds it for the price of a reference count.
pub type ByName = Arc<NameIndex>;

impl super::cel::NamedObjects for NameIndex {
    fn named(&self, name: &str) -> Option<super::cel::Shared> {
        self.get(name).map(|r| r.cel().shared)
    }
}

/// The objects of one evaluation, indexed by kind.
#[derive(Debug, Default)]
pub struct Inventory {
    by_kind: HashMap<(String, String), Vec<Arc<Resource>>>,
    namespaces: BTreeMap<String, Arc<Resource>>,
    by_uid: HashSet<ByUid>,
    /// Objects of one kind per namespace (`None`: cluster-scoped), in insertion order.
    by_kind_ns: HashMap<(String, String), ByNamespace>,
    /// Objects of one kind and namespace by name (the last declared wins a duplicate name).
    by_name: HashMap<(String, String, Option<String>), ByName>,
    /// Kind availability; `None` means offline: every kind is complete.
    kinds: Option<HashMap<(String, String), KindStatus>>,
    len: usize,
}

impl Inventory {
    /// An inventory that holds everything there is (offline manifests): every kind is synced.
    pub fn complete(resources: impl IntoIterator<Item = Arc<Resource>>) -> Inventory {
        let mut inv = Inventory::default();
        resources.into_iter().for_each(|r| inv.insert(r));
        inv
    }

    /// An inventory from watch caches, with each kind's availability.
    pub fn with_kinds(
        resources: impl IntoIterator<Item = Arc<Resource>>,
        kinds: HashMap<(String, String), KindStatus>,
    ) -> Inventory {
        let mut inv = Inventory::complete(resources);
        inv.kinds = Some(kinds);
        inv
    }

    /// Add an object, replacing the one with the same group/kind/namespace/name; returns the
    /// replaced one. (Incremental evaluation; the replacement goes to the end of its kind.)
    pub fn upsert(&mut self, r: Arc<Resource>) -> Option<Arc<Resource>> {
        let old = self.remove(&r.group, &r.kind, r.namespace.as_deref(), &r.name);
        self.insert(r);
        old
    }

    /// Remove the object with this identity; returns it.
    pub fn remove(
        &mut self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Resource>> {
        let key = (group.to_string(), kind.to_string());
        let list = self.by_kind.get_mut(&key)?;
        let at = list
            .iter()
            .position(|r| r.name == name && r.namespace.as_deref() == namespace)?;
        let old = list.remove(at);
        if let Some(per_ns) = self
            .by_kind_ns
            .get_mut(&key)
            .and_then(|m| m.get_mut(&old.namespace))
            && let Some(i) = per_ns.iter().position(|r| Arc::ptr_eq(r, &old))
        {
            per_ns.remove(i);
        }
        if let Some(named) =
            self.by_name
                .get_mut(&(old.group.clone(), old.kind.clone(), old.namespace.clone()))
            && named.get(&old.name).is_some_and(|r| Arc::ptr_eq(r, &old))
        {
            Arc::make_mut(named).0.remove(old.name.as_str());
        }
        if let Some(uid) = &old.uid
            && self
                .by_uid
                .get(uid.as_str())
                .is_some_and(|r| Arc::ptr_eq(&r.0, &old))
        {
            self.by_uid.remove(uid.as_str());
        }
        if old.kind == "Namespace"
            && old.group.is_empty()
            && self
                .namespaces
                .get(&old.name)
                .is_some_and(|r| Arc::ptr_eq(r, &old))
        {
            self.namespaces.remove(&old.name);
        }
        self.len -= 1;
        Some(old)
    }

    fn insert(&mut self, r: Arc<Resource>) {
        if r.kind == "Namespace" && r.group.is_empty() {
            self.namespaces.insert(r.name.clone(), r.clone());
        }
        if r.uid.is_some() {
            self.by_uid.replace(ByUid(r.clone()));
        }
        self.by_kind_ns
            .entry((r.group.clone(), r.kind.clone()))
            .or_default()
            .entry(r.namespace.clone())
            .or_default()
            .push(r.clone());
        let named = self
            .by_name
            .entry((r.group.clone(), r.kind.clone(), r.namespace.clone()))
            .or_default();
        Arc::make_mut(named).0.replace(Named(r.clone()));
        self.by_kind
            .entry((r.group.clone(), r.kind.clone()))
            .or_default()
            .push(r);
        self.len += 1;
    }

    /// A Namespace the input implies but does not declare (offline scans): used for scope,
    /// selectors and `namespaceObject`, but neither judged nor counted as evaluated.
    pub fn imply_namespace(&mut self, r: Arc<Resource>) {
        self.namespaces.entry(r.name.clone()).or_insert(r);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Objects of one kind.
    pub fn of_kind(&self, group: &str, kind: &str) -> &[Arc<Resource>] {
        self.by_kind
            .get(&(group.to_string(), kind.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Objects of one kind in one namespace (`None`: the cluster-scoped ones).
    pub fn of_kind_in(&self, group: &str, kind: &str, namespace: Option<&str>) -> &[Arc<Resource>] {
        self.by_kind_ns
            .get(&(group.to_string(), kind.to_string()))
            .and_then(|m| m.get(&namespace.map(str::to_string)))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Objects of one kind a lookup from namespace `own` sees: the ones in `own`, and the
    /// cluster-scoped ones when `cluster_visible`, in inventory order.
    pub fn lookup(
        &self,
        group: &str,
        kind: &str,
        own: Option<&str>,
        cluster_visible: bool,
    ) -> Vec<&Arc<Resource>> {
        let local = match own {
            Some(ns) => self.of_kind_in(group, kind, Some(ns)),
            None => &[],
        };
        let cluster = if cluster_visible {
            self.of_kind_in(group, kind, None)
        } else {
            &[]
        };
        if local.is_empty() || cluster.is_empty() {
            return local.iter().chain(cluster).collect();
        }
        // Both: keep the inventory's order.
        self.of_kind(group, kind)
            .iter()
            .filter(|r| match &r.namespace {
                Some(ns) => Some(ns.as_str()) == own,
                None => cluster_visible,
            })
            .collect()
    }

    /// The objects of one kind in one namespace (`None`: cluster-scoped) by name.
    pub fn by_name(&self, group: &str, kind: &str, namespace: Option<&str>) -> Option<ByName> {
        self.by_name
            .get(&(
                group.to_string(),
                kind.to_string(),
                namespace.map(str::to_string),
            ))
            .cloned()
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.by_kind.values().flatten()
    }

    pub fn namespace(&self, name: &str) -> Option<&Arc<Resource>> {
        self.namespaces.get(name)
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &Arc<Resource>> {
        self.namespaces.values()
    }

    pub fn by_uid(&self, uid: &str) -> Option<&Arc<Resource>> {
        self.by_uid.get(uid).map(|r| &r.0)
    }

    /// Find an object by namespace/kind/name (for owners without a uid match).
    pub fn find(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Arc<Resource>> {
        self.of_kind(group, kind)
            .iter()
            .find(|r| r.name == name && r.namespace.as_deref() == namespace)
    }

    /// Whether this inventory holds everything there is (offline manifests), rather than watch
    /// caches with a status per kind.
    pub fn is_complete(&self) -> bool {
        self.kinds.is_none()
    }

    /// Availability of one kind.
    pub fn kind_status(&self, group: &str, kind: &str) -> KindStatus {
        match &self.kinds {
            None => KindStatus::Synced,
            Some(kinds) => kinds
                .get(&(group.to_string(), kind.to_string()))
                .copied()
                .unwrap_or(KindStatus::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::selector;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    #[test]
    fn labels_are_found_by_key_in_any_order_and_the_last_value_wins() {
        let labels: Labels = [("b", "2"), ("a", "1"), ("c", "3"), ("a", "9")]
            .into_iter()
            .collect();
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.get("a").map(String::as_str), Some("9"));
        assert_eq!(labels.get("c").map(String::as_str), Some("3"));
        assert_eq!(labels.get("d"), None);
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"a": "9"},
            "matchExpressions": [{"key": "b", "operator": "In", "values": ["2"]},
                                 {"key": "d", "operator": "DoesNotExist"}]}))
        .expect("selector");
        assert!(selector::matches(&sel, &labels));
        let other: Labels = [("a", "1"), ("b", "2")].into_iter().collect();
        assert!(!selector::matches(&sel, &other));
    }

    #[test]
    fn indexes_find_objects_by_name_and_uid_and_forget_removed_ones() {
        let obj = |name: &str, uid: &str| {
            Arc::new(
                Resource::new(
                    serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": "ns", "uid": uid}}),
                    None,
                )
                .expect("a pod")
                .into_compact(),
            )
        };
        let mut inv = Inventory::complete([obj("a", "u-a"), obj("b", "u-b")]);
        let named = inv.by_name("", "Pod", Some("ns")).expect("index");
        assert_eq!(named.get("b").map(|r| r.name.as_str()), Some("b"));
        assert_eq!(inv.by_uid("u-a").map(|r| r.name.as_str()), Some("a"));
        // A new version replaces the old one in both indexes.
        inv.upsert(obj("a", "u-a2"));
        assert!(inv.by_uid("u-a").is_none());
        assert_eq!(inv.by_uid("u-a2").map(|r| r.name.as_str()), Some("a"));
        inv.remove("", "Pod", Some("ns"), "b");
        let named = inv.by_name("", "Pod", Some("ns")).expect("index");
        assert!(named.get("b").is_none());
        assert!(inv.by_uid("u-b").is_none());
        assert_eq!(inv.len(), 1);
    }
}
