//! The object store: one global resourceVersion counter (etcd revision semantics), the
//! objects, the event history that watches replay, faults and denials.

use super::patch::{self, Section};
use super::resources::ResourceDef;
use super::select::{FieldSelector, LabelSelector};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// An API error, rendered as a `Status` object.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, res: &ResourceDef, name: &str) -> Self {
        let mut d = json!({ "kind": res.plural });
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        if !res.group.is_empty() {
            d["group"] = json!(res.group);
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(res: &ResourceDef, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.qualified()),
        )
        .with_details(res, name)
    }

    pub fn conflict(res: &ResourceDef, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified()
            ),
        )
        .with_details(res, name)
    }

    pub fn invalid(res: &ResourceDef, name: &str, field: &str, why: &str) -> Self {
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {why}", res.kind),
        )
        .with_details(res, name);
        if let Some(d) = e.details.as_mut() {
            d["kind"] = json!(res.kind);
            d["causes"] =
                json!([{ "reason": "FieldValueInvalid", "message": why, "field": field }]);
        }
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// One change, as recorded in the history and sent to watches.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    pub object: Value,
    /// The object before a MODIFIED change (for selector transitions).
    pub old: Option<Value>,
}

/// `fail_next`: the next `count` requests matching verb/resource fail with `code`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// get, list, watch, create, update, patch, delete, deletecollection; None = any.
    pub verb: Option<String>,
    /// Plural resource name ("leases"); None = any.
    pub resource: Option<String>,
    /// "status" to hit only the status subresource; None = any.
    pub subresource: Option<String>,
    pub count: usize,
    pub code: u16,
    pub reason: String,
    pub message: String,
}

/// `deny`: requests matching verb/resource get 403 Forbidden, as when RBAC is missing.
#[derive(Clone, Debug)]
pub struct Denial {
    pub verb: Option<String>,
    pub group: String,
    pub resource: String,
}

/// One served HTTP request, for assertions.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Kubernetes verb (get, list, watch, create, update, patch, delete, ...), or "" for
    /// non-resource paths (discovery, openapi, version).
    pub verb: String,
    pub content_type: String,
    pub user_agent: String,
    pub status: u16,
}

/// What a watch sends first, the revision it starts at, and its feed of live changes.
pub type WatchStart = (
    Vec<(&'static str, Value)>,
    u64,
    broadcast::Receiver<Arc<Change>>,
);

pub type ObjKey = (String, String, String, String); // group, plural, namespace, name

pub struct State {
    pub rv: u64,
    pub resources: Vec<ResourceDef>,
    pub objects: BTreeMap<ObjKey, Value>,
    pub history: VecDeque<Arc<Change>>,
    /// Watches and continue tokens from a resourceVersion below this get 410 Gone.
    pub compacted: u64,
    pub max_history: usize,
    pub faults: Vec<Fault>,
    pub denials: Vec<Denial>,
    pub log: Vec<RequestRecord>,
    pub tx: broadcast::Sender<Arc<Change>>,
    uid_counter: u64,
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Everything but metadata and status: what a generation bump is about.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

/// The object without managedFields timestamps and resourceVersion: what a no-op write compares.
fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        if let Some(Value::Array(mf)) = meta.get_mut("managedFields") {
            for e in mf.iter_mut() {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    v
}

pub fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// List parameters, parsed from the query string.
#[derive(Default, Debug, Clone)]
pub struct ListOptions {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    pub fn matches(&self, obj: &Value) -> bool {
        self.label_selector.as_ref().is_none_or(|s| s.matches(obj))
            && self.field_selector.as_ref().is_none_or(|s| s.matches(obj))
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    format!("{rv}/{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let mut it = s.splitn(3, '/');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.to_string(),
        it.next()?.to_string(),
    ))
}

impl State {
    pub fn new(resources: Vec<ResourceDef>) -> Self {
        let (tx, _) = broadcast::channel(16384);
        State {
            rv: 1,
            resources,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted: 1,
            max_history: 200_000,
            faults: Vec::new(),
            denials: Vec::new(),
            log: Vec::new(),
            tx,
            uid_counter: 0,
        }
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<ResourceDef> {
        self.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
            .cloned()
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (nanos >> 32) as u32,
            (nanos >> 16) as u16,
            self.uid_counter & 0xfff,
            (nanos & 0xfff),
            self.uid_counter
        )
    }

    fn key(res: &ResourceDef, ns: &str, name: &str) -> ObjKey {
        (
            res.group.clone(),
            res.plural.clone(),
            if res.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// Stores a change: bumps the revision, stamps resourceVersion, records and broadcasts.
    fn commit(
        &mut self,
        res: &ResourceDef,
        mut obj: Value,
        kind: &'static str,
        old: Option<Value>,
    ) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let key = Self::key(res, &ns, &name);
        if kind == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, obj.clone());
        }
        let change = Arc::new(Change {
            rv: self.rv,
            group: res.group.clone(),
            plural: res.plural.clone(),
            namespace: ns,
            kind,
            object: obj.clone(),
            old,
        });
        self.history.push_back(change.clone());
        if self.history.len() > self.max_history {
            let drop = self.history.len() / 2;
            for c in self.history.drain(..drop) {
                self.compacted = self.compacted.max(c.rv);
            }
        }
        let _ = self.tx.send(change);
        obj
    }

    /// Drops all history: watches and continue tokens from an older resourceVersion get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub fn get(&self, res: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(res, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    fn check_namespace(&self, res: &ResourceDef, ns: &str) -> Result<(), ApiError> {
        if !res.namespaced {
            return Ok(());
        }
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.to_string(),
        );
        if self.objects.contains_key(&key) {
            Ok(())
        } else {
            Err(
                ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
                    .with_details(&super::resources::builtins()[0], ns),
            )
        }
    }

    /// Checks apiVersion/kind/namespace of a request body against the URL.
    fn check_body(&self, res: &ResourceDef, ns: &str, body: &mut Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let api_version = body
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
        if (!api_version.is_empty() && api_version != res.api_version())
            || (!kind.is_empty() && kind != res.kind)
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({}) or kind ({kind}) does not match {}",
                res.api_version(),
                res.kind
            )));
        }
        body["apiVersion"] = json!(res.api_version());
        body["kind"] = json!(res.kind);
        if !body.get("metadata").is_some_and(Value::is_object) {
            body["metadata"] = json!({});
        }
        if res.namespaced {
            match meta_str(body, "namespace") {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => body["metadata"]["namespace"] = json!(ns),
            }
        } else if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        Ok(())
    }

    /// POST. `manager` is the field manager recorded in managedFields.
    pub fn create(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        mut body: Value,
        manager: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.check_body(res, ns, &mut body)?;
        self.check_namespace(res, ns)?;
        let mut name = meta_str(&body, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            if let Some(prefix) = meta_str(&body, "generateName").filter(|p| !p.is_empty()) {
                let suffix: String = format!(
                    "{:05x}",
                    (self.rv * 7919 + self.uid_counter * 104729) % 0xfffff
                )
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        (b'b' + (c as u8 - b'0')) as char
                    } else {
                        c
                    }
                })
                .collect();
                name = format!("{prefix}{suffix}");
                body["metadata"]["name"] = json!(name);
            } else {
                return Err(ApiError::invalid(
                    res,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        }
        if !name_is_valid(&name) {
            return Err(ApiError::invalid(
                res,
                &name,
                "metadata.name",
                &format!(
                    "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
                ),
            ));
        }
        if self.objects.contains_key(&Self::key(res, ns, &name)) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.qualified()),
            )
            .with_details(res, &name));
        }
        if res.status_subresource
            && res.custom
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        if let Some(m) = body["metadata"].as_object_mut() {
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
            ] {
                m.remove(k);
            }
        }
        let uid = self.next_uid();
        body["metadata"]["uid"] = json!(uid);
        body["metadata"]["creationTimestamp"] = json!(now());
        body["metadata"]["generation"] = json!(1);
        if res.plural == "namespaces" && body.pointer("/status/phase").is_none() {
            body["status"] = json!({ "phase": "Active" });
        }
        let section = if res.status_subresource {
            Section::NoStatus
        } else {
            Section::All
        };
        patch::record_update(
            None,
            &mut body,
            manager,
            section,
            &res.api_version(),
            &now(),
        );
        if dry_run {
            return Ok(body);
        }
        if res.plural == "customresourcedefinitions" {
            self.register_crd(&body)?;
        }
        Ok(self.commit(res, body, "ADDED", None))
    }

    /// Stores a fully prepared new object (the second half of a server-side-apply create).
    pub fn create_raw(&mut self, res: &ResourceDef, obj: Value) -> Value {
        if res.plural == "customresourcedefinitions" {
            let _ = self.register_crd(&obj);
        }
        self.commit(res, obj, "ADDED", None)
    }

    /// Test access: stores an object as given (create or overwrite), only stamping uid,
    /// creationTimestamp, generation and resourceVersion, and recording the watch event.
    pub fn put(&mut self, obj: Value) -> Result<Value, String> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let res = self.resource_for_kind(api_version, kind).ok_or_else(|| {
            format!("no served resource for apiVersion {api_version:?} kind {kind:?}")
        })?;
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(format!("{kind} without metadata.name"));
        }
        if res.namespaced && ns.is_empty() {
            return Err(format!(
                "{kind} {name} is namespaced but has no metadata.namespace"
            ));
        }
        let mut obj = obj;
        let old = self.objects.get(&Self::key(&res, &ns, &name)).cloned();
        for (k, default) in [
            ("uid", json!(self.next_uid())),
            ("creationTimestamp", json!(now())),
            ("generation", json!(1)),
        ] {
            if obj["metadata"].get(k).is_none() {
                obj["metadata"][k] = old
                    .as_ref()
                    .and_then(|o| o["metadata"].get(k).cloned())
                    .unwrap_or(default);
            }
        }
        if res.plural == "customresourcedefinitions" {
            self.register_crd(&obj).map_err(|e| e.message)?;
        }
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        Ok(self.commit(&res, obj, kind, old))
    }

    /// Test access: removes an object immediately (finalizers are ignored).
    pub fn remove_object(&mut self, res: &ResourceDef, ns: &str, name: &str) -> Option<Value> {
        let old = self.objects.get(&Self::key(res, ns, name)).cloned()?;
        Some(self.remove(res, old))
    }

    pub fn register_crd(&mut self, crd: &Value) -> Result<(), ApiError> {
        let defs = super::resources::from_crd(crd).map_err(ApiError::bad_request)?;
        for d in defs {
            self.resources.retain(|r| {
                !(r.group == d.group && r.version == d.version && r.plural == d.plural)
            });
            self.resources.push(d);
        }
        Ok(())
    }

    /// The common end of update/patch/apply: keep immutable metadata, apply section rules,
    /// bump generation, record managedFields (unless `applied`), skip no-ops, finish deletion.
    #[allow(clippy::too_many_arguments)]
    pub fn write_existing(
        &mut self,
        res: &ResourceDef,
        old: &Value,
        mut new: Value,
        section: Section,
        manager: &str,
        applied: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(old, "resourceVersion")
        {
            return Err(ApiError::conflict(res, &name));
        }
        new["apiVersion"] = json!(res.api_version());
        new["kind"] = json!(res.kind);
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        if let Some(n) = meta_str(&new, "name").filter(|n| !n.is_empty() && *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        match section {
            Section::NoStatus => match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            },
            Section::StatusOnly => {
                let status = new.get("status").cloned();
                let mf = new.pointer("/metadata/managedFields").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                if applied && let Some(mf) = mf {
                    new["metadata"]["managedFields"] = mf;
                }
            }
            Section::All => {}
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
        ] {
            match old["metadata"].get(k) {
                Some(v) => new["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let bumped = if spec_part(old) != spec_part(&new) {
            generation + 1
        } else {
            generation
        };
        new["metadata"]["generation"] = json!(bumped);
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if !applied {
            if let Some(m) = new["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            if let Some(mf) = old.pointer("/metadata/managedFields") {
                new["metadata"]["managedFields"] = mf.clone();
            }
            patch::record_update(
                Some(old),
                &mut new,
                manager,
                section,
                &res.api_version(),
                &now(),
            );
        }
        if comparable(&new) == comparable(old) {
            return Ok(old.clone());
        }
        if dry_run {
            return Ok(new);
        }
        let finalizers_empty = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty {
            let _ = self.commit(res, new.clone(), "MODIFIED", Some(old.clone()));
            return Ok(self.remove(res, new));
        }
        Ok(self.commit(res, new, "MODIFIED", Some(old.clone())))
    }

    /// PUT.
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        mut body: Value,
        section: Section,
        manager: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.check_body(res, ns, &mut body)?;
        let old = self.get(res, ns, name)?;
        if res.custom && meta_str(&body, "resourceVersion").is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                res,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            ));
        }
        self.write_existing(res, &old, body, section, manager, false, dry_run)
    }

    fn remove(&mut self, res: &ResourceDef, obj: Value) -> Value {
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let deleted = self.commit(res, obj, "DELETED", None);
        if res.group.is_empty() && res.plural == "namespaces" {
            // Namespace deletion is immediate here: every object in it goes too.
            let keys: Vec<ObjKey> = self
                .objects
                .keys()
                .filter(|k| k.2 == name && !k.2.is_empty())
                .cloned()
                .collect();
            for k in keys {
                if let (Some(o), Some(r)) = (
                    self.objects.get(&k).cloned(),
                    self.resources
                        .iter()
                        .find(|r| r.group == k.0 && r.plural == k.1)
                        .cloned(),
                ) {
                    self.commit(&r, o, "DELETED", None);
                }
            }
        }
        let _ = ns;
        deleted
    }

    /// DELETE. Objects with finalizers get a deletionTimestamp and stay until the last
    /// finalizer is removed.
    pub fn delete(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self.get(res, ns, name)?;
        if let Some(rv) = precondition_rv
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(res, name));
        }
        if dry_run {
            return Ok(old);
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut new = old.clone();
            new["metadata"]["deletionTimestamp"] = json!(now());
            new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            return Ok(self.commit(res, new, "MODIFIED", Some(old)));
        }
        Ok(self.remove(res, old))
    }

    /// The objects of a resource (optionally in one namespace) as they were at revision `at`
    /// (None: now), replayed from the history.
    fn snapshot(
        &self,
        res: &ResourceDef,
        ns: &str,
        at: Option<u64>,
    ) -> Result<Vec<Value>, ApiError> {
        let in_scope =
            |k: &ObjKey| k.0 == res.group && k.1 == res.plural && (ns.is_empty() || k.2 == ns);
        let Some(at) = at.filter(|at| *at < self.rv) else {
            return Ok(self
                .objects
                .iter()
                .filter(|(k, _)| in_scope(k))
                .map(|(_, v)| v.clone())
                .collect());
        };
        if at < self.compacted {
            return Err(ApiError::gone(format!(
                "The resourceVersion for the provided list is too old: {at}"
            )));
        }
        // Undo the changes after `at`, newest first.
        let mut objects: BTreeMap<ObjKey, Value> = self
            .objects
            .iter()
            .filter(|(k, _)| in_scope(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for c in self.history.iter().rev().take_while(|c| c.rv > at) {
            let key = (
                c.group.clone(),
                c.plural.clone(),
                c.namespace.clone(),
                meta_str(&c.object, "name").unwrap_or_default().to_string(),
            );
            if !in_scope(&key) {
                continue;
            }
            match c.kind {
                "ADDED" => {
                    objects.remove(&key);
                }
                "MODIFIED" => {
                    if let Some(o) = &c.old {
                        objects.insert(key, o.clone());
                    }
                }
                _ => {
                    // DELETED: the object as it was before deletion.
                    let mut o = c.object.clone();
                    if let Some(prev) =
                        self.history.iter().rev().filter(|p| p.rv < c.rv).find(|p| {
                            p.group == c.group
                                && p.plural == c.plural
                                && p.namespace == c.namespace
                                && meta_str(&p.object, "name") == meta_str(&c.object, "name")
                        })
                    {
                        o = prev.object.clone();
                    }
                    objects.insert(key, o);
                }
            }
        }
        Ok(objects.into_values().collect())
    }

    /// One page of a list at revision `at`: up to `limit` matching objects after the continue
    /// key `after` (in key order), and how many more match. Only the page is copied (a real
    /// server reads a page from etcd's key range): a list of N objects in pages costs O(N), not
    /// O(N²/page). Objects changed after `at` are taken as they were then, from the history.
    fn page(
        &self,
        res: &ResourceDef,
        ns: &str,
        at: u64,
        after: Option<&(String, String)>,
        opts: &ListOptions,
        limit: Option<usize>,
    ) -> Result<(Vec<Value>, usize), ApiError> {
        use std::ops::Bound;
        let in_scope =
            |k: &ObjKey| k.0 == res.group && k.1 == res.plural && (ns.is_empty() || k.2 == ns);
        if at < self.rv && at < self.compacted {
            return Err(ApiError::gone(format!(
                "The resourceVersion for the provided list is too old: {at}"
            )));
        }
        // The state at `at` of the objects changed since (None: absent then), oldest change
        // last so that it wins.
        let mut then: BTreeMap<ObjKey, Option<Value>> = BTreeMap::new();
        for c in self.history.iter().rev().take_while(|c| c.rv > at) {
            let key = (
                c.group.clone(),
                c.plural.clone(),
                c.namespace.clone(),
                meta_str(&c.object, "name").unwrap_or_default().to_string(),
            );
            if !in_scope(&key) {
                continue;
            }
            let before = match c.kind {
                "ADDED" => None,
                "MODIFIED" => c.old.clone(),
                _ => Some(
                    self.history
                        .iter()
                        .rev()
                        .filter(|p| p.rv < c.rv)
                        .find(|p| {
                            p.group == c.group
                                && p.plural == c.plural
                                && p.namespace == c.namespace
                                && meta_str(&p.object, "name") == meta_str(&c.object, "name")
                        })
                        .map_or_else(|| c.object.clone(), |p| p.object.clone()),
                ),
            };
            then.insert(key, before);
        }
        let start: ObjKey = match after {
            Some((ans, aname)) => (
                res.group.clone(),
                res.plural.clone(),
                ans.clone(),
                aname.clone(),
            ),
            None => (
                res.group.clone(),
                res.plural.clone(),
                ns.to_string(),
                String::new(),
            ),
        };
        let from = if after.is_some() {
            Bound::Excluded(&start)
        } else {
            Bound::Included(&start)
        };
        let mut now = self
            .objects
            .range::<ObjKey, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| in_scope(k))
            .peekable();
        let mut old = then
            .range::<ObjKey, _>((from, Bound::Unbounded))
            .take_while(|(k, _)| in_scope(k))
            .peekable();
        let mut items = Vec::new();
        let mut remaining = 0;
        loop {
            // The next key of either, the state at `at` winning for a changed object.
            let next: Option<&Value> = match (now.peek(), old.peek()) {
                (None, None) => break,
                (Some((kn, _)), Some((ko, _))) if kn < ko => now.next().map(|(_, v)| v),
                (Some((kn, _)), Some((ko, _))) if kn == ko => {
                    now.next();
                    old.next().and_then(|(_, v)| v.as_ref())
                }
                (Some(_), None) => now.next().map(|(_, v)| v),
                _ => old.next().and_then(|(_, v)| v.as_ref()),
            };
            let Some(v) = next.filter(|v| opts.matches(v)) else {
                continue;
            };
            if limit.is_none_or(|l| items.len() < l) {
                items.push(v.clone());
            } else {
                remaining += 1;
            }
        }
        Ok((items, remaining))
    }

    /// GET on a collection.
    pub fn list(&self, res: &ResourceDef, ns: &str, opts: &ListOptions) -> Result<Value, ApiError> {
        let (list_rv, after) = match opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token).ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {token}"))
                })?;
                if rv < self.compacted {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some((ns, name)))
            }
            None => {
                let requested: Option<u64> =
                    match opts.resource_version.as_deref().filter(|v| !v.is_empty()) {
                        Some(v) => Some(v.parse().map_err(|_| {
                            ApiError::bad_request(format!("invalid resourceVersion {v}"))
                        })?),
                        None => None,
                    };
                match (requested, opts.resource_version_match.as_deref()) {
                    (Some(rv), Some("Exact")) => {
                        if rv > self.rv {
                            return Err(ApiError::new(
                                504,
                                "Timeout",
                                format!("Too large resource version: {rv}, current: {}", self.rv),
                            ));
                        }
                        (rv, None)
                    }
                    (Some(rv), _) if rv > self.rv => {
                        return Err(ApiError::new(
                            504,
                            "Timeout",
                            format!("Too large resource version: {rv}, current: {}", self.rv),
                        ));
                    }
                    _ => (self.rv, None),
                }
            }
        };
        let limit = opts.limit.filter(|l| *l > 0);
        let (items, remaining) = self.page(res, ns, list_rv, after.as_ref(), opts, limit)?;
        let mut meta = json!({ "resourceVersion": list_rv.to_string() });
        if remaining > 0
            && let Some(last) = items.last()
        {
            meta["continue"] = json!(encode_continue(
                list_rv,
                meta_str(last, "namespace").unwrap_or_default(),
                meta_str(last, "name").unwrap_or_default()
            ));
            meta["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.api_version(),
            "metadata": meta,
            "items": items,
        }))
    }

    /// For a watch: what to send first and from which revision on to forward live changes.
    /// `Err` with code 410 means the requested resourceVersion is compacted.
    pub fn watch_start(
        &self,
        res: &ResourceDef,
        ns: &str,
        opts: &ListOptions,
        send_initial: bool,
    ) -> Result<WatchStart, ApiError> {
        let rx = self.tx.subscribe();
        let rv = opts
            .resource_version
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "0");
        let initial = match rv {
            Some(v) if !send_initial => {
                let from: u64 = v
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v}")))?;
                if from < self.compacted {
                    return Err(ApiError::gone(format!(
                        "too old resource version: {from} ({})",
                        self.compacted
                    )));
                }
                self.history
                    .iter()
                    .filter(|c| c.rv > from && c.group == res.group && c.plural == res.plural)
                    .filter(|c| ns.is_empty() || c.namespace == ns)
                    .filter_map(|c| Self::filter_change(c, opts))
                    .collect()
            }
            _ => self
                .snapshot(res, ns, None)?
                .into_iter()
                .filter(|o| opts.matches(o))
                .map(|o| ("ADDED", o))
                .collect(),
        };
        Ok((initial, self.rv, rx))
    }

    /// The event a watch with these selectors sees for a change (None: not visible).
    pub fn filter_change(c: &Change, opts: &ListOptions) -> Option<(&'static str, Value)> {
        let now = opts.matches(&c.object);
        match (c.kind, c.old.as_ref().map(|o| opts.matches(o))) {
            ("MODIFIED", Some(false)) if now => Some(("ADDED", c.object.clone())),
            ("MODIFIED", Some(true)) if !now => Some(("DELETED", c.object.clone())),
            (kind, _) if now => Some((kind, c.object.clone())),
            _ => None,
        }
    }

    /// Takes a configured fault for this request, if any.
    pub fn take_fault(
        &mut self,
        verb: &str,
        plural: &str,
        subresource: Option<&str>,
    ) -> Option<ApiError> {
        let idx = self.faults.iter().position(|f| {
            f.count > 0
                && f.verb.as_deref().is_none_or(|v| v == verb)
                && f.resource.as_deref().is_none_or(|r| r == plural)
                && f.subresource
                    .as_deref()
                    .is_none_or(|s| Some(s) == subresource)
        })?;
        let f = &mut self.faults[idx];
        f.count -= 1;
        let err = ApiError::new(f.code, &f.reason, f.message.clone());
        if f.count == 0 {
            self.faults.remove(idx);
        }
        Some(err)
    }

    pub fn denied(&self, verb: &str, res: &ResourceDef, ns: &str) -> Option<ApiError> {
        let hit = self.denials.iter().any(|d| {
            d.group == res.group
                && d.resource == res.plural
                && d.verb.as_deref().is_none_or(|v| v == verb)
        });
        hit.then(|| {
            let scope = if ns.is_empty() { "at the cluster scope".to_string() } else { format!("in the namespace \"{ns}\"") };
            ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} is forbidden: User \"system:serviceaccount:securescore-system:securescore\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                    res.qualified(),
                    res.plural,
                    res.group
                ),
            )
            .with_details(res, "")
        })
    }
}
