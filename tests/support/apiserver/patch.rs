//! Patches and field ownership: JSON merge patch (RFC 7386), JSON patch (RFC 6902), an
//! approximation of strategic merge patch, and a field-ownership model of server-side apply
//! kept in `metadata.managedFields` (FieldsV1). See tests/support/README.md for the limits.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// Which part of an object a request may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Everything (resource without a status subresource).
    All,
    /// Everything but `.status` (main endpoint of a resource with a status subresource).
    NoStatus,
    /// Only `.status` (the `/status` subresource).
    StatusOnly,
}

impl Section {
    pub fn subresource(self) -> Option<&'static str> {
        (self == Section::StatusOnly).then_some("status")
    }

    fn admits(self, p: &Path) -> bool {
        let is_status = p.first().is_some_and(|s| s == "status");
        match self {
            Section::All => true,
            Section::NoStatus => !is_status,
            Section::StatusOnly => is_status,
        }
    }
}

/// Metadata fields that are bookkeeping, never owned by a manager.
fn bookkeeping(p: &Path) -> bool {
    match p.first().map(String::as_str) {
        Some("apiVersion") | Some("kind") => true,
        Some("metadata") => matches!(
            p.get(1).map(String::as_str),
            Some(
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "selfLink"
            )
        ),
        _ => false,
    }
}

fn leaves_into(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                leaves_into(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The leaf paths of an object within a section (maps are recursed into; lists are atomic).
pub fn fieldset(v: &Value, section: Section) -> FieldSet {
    let mut all = FieldSet::new();
    leaves_into(v, &mut Vec::new(), &mut all);
    all.into_iter()
        .filter(|p| !p.is_empty() && !bookkeeping(p) && section.admits(p))
        .collect()
}

pub fn get_path<'a>(v: &'a Value, p: &Path) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, seg| cur.get(seg))
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Removes a path, then removes the maps it leaves empty (below the top level).
pub fn remove_path(v: &mut Value, p: &Path) {
    fn rec(v: &mut Value, p: &[String], depth: usize) {
        let Some(m) = v.as_object_mut() else { return };
        if p.len() == 1 {
            m.remove(&p[0]);
            return;
        }
        if let Some(child) = m.get_mut(&p[0]) {
            rec(child, &p[1..], depth + 1);
            if depth >= 1 && child.as_object().is_some_and(Map::is_empty) {
                m.remove(&p[0]);
            }
        }
    }
    if !p.is_empty() {
        rec(v, p, 0);
    }
}

pub fn set_path(v: &mut Value, p: &Path, value: Value) {
    let mut cur = v;
    for (i, seg) in p.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(m) = cur.as_object_mut() else { return };
        if i + 1 == p.len() {
            m.insert(seg.clone(), value);
            return;
        }
        cur = m
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Encodes a field set as FieldsV1 (`{"f:spec":{"f:replicas":{}}}`).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for p in set {
        let mut cur = &mut root;
        for seg in p {
            let Some(m) = cur.as_object_mut() else { break };
            cur = m.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
        }
    }
    root
}

/// Decodes FieldsV1; list-item keys (`k:`, `v:`, `i:`) make their parent a leaf.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        let fields: Vec<_> = m
            .iter()
            .filter_map(|(k, c)| k.strip_prefix("f:").map(|k| (k, c)))
            .collect();
        let has_items = m
            .keys()
            .any(|k| k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:"));
        if (fields.is_empty() || has_items) && !prefix.is_empty() {
            out.insert(prefix.clone());
            return;
        }
        for (k, c) in fields {
            prefix.push(k.to_string());
            rec(c, prefix, out);
            prefix.pop();
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// One `metadata.managedFields` entry, decoded.
#[derive(Clone, Debug)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            ManagedEntry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            }
        })
        .collect()
}

pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// A conflict of server-side apply: another manager owns a field with a different value.
#[derive(Clone, Debug)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}

/// Recursively merges an applied configuration into an object (maps merge; anything else,
/// lists included, replaces).
fn merge_applied(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                match d.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_applied(existing, v)
                    }
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

/// Keeps only the parts of `applied` inside the section (and its metadata labels/annotations etc.).
fn restrict(applied: &Value, section: Section) -> Value {
    let mut out = json!({});
    for p in fieldset(applied, section) {
        if let Some(v) = get_path(applied, &p) {
            set_path(&mut out, &p, v.clone());
        }
    }
    out
}

/// Server-side apply of `applied` onto `current` (an existing object, or an empty skeleton for
/// a create) by `manager`. Returns the new object (managedFields updated) or the conflicts.
pub fn apply(
    current: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    section: Section,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let subresource = section.subresource().map(str::to_string);
    let applied_set = fieldset(applied, section);
    let mut entries = read_managed(current);
    let is_mine = |e: &ManagedEntry| {
        e.manager == manager && e.operation == "Apply" && e.subresource == subresource
    };
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !is_mine(e)) {
        for p in &e.fields {
            for q in applied_set.iter().filter(|q| overlaps(p, q)) {
                let longer = if p.len() >= q.len() { p } else { q };
                if get_path(current, longer) != get_path(applied, longer) {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        path: p.clone(),
                    });
                    break;
                }
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        for e in entries.iter_mut().filter(|e| !is_mine(e)) {
            e.fields
                .retain(|p| !applied_set.iter().any(|q| overlaps(p, q)));
        }
    }
    let previous: FieldSet = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.fields.clone())
        .collect();
    let mut out = current.clone();
    merge_applied(&mut out, &restrict(applied, section));
    for p in previous.difference(&applied_set) {
        let still_owned = entries
            .iter()
            .filter(|e| !is_mine(e))
            .any(|e| e.fields.iter().any(|q| overlaps(p, q)))
            || applied_set.iter().any(|q| overlaps(p, q));
        if !still_owned {
            remove_path(&mut out, p);
        }
    }
    entries.retain(|e| !is_mine(e));
    entries.push(ManagedEntry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.to_string(),
        time: now.to_string(),
        subresource,
        fields: applied_set,
    });
    write_managed(&mut out, &entries);
    Ok(out)
}

/// Records a non-apply write (create, update, merge/JSON/strategic patch) by `manager`: the
/// manager takes ownership of every field it changed, other managers lose those fields.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    section: Section,
    api_version: &str,
    now: &str,
) {
    let new_set = fieldset(new, section);
    let changed: FieldSet = match old {
        None => new_set.clone(),
        Some(old) => {
            let old_set = fieldset(old, section);
            new_set
                .iter()
                .filter(|p| get_path(old, p) != get_path(new, p))
                .chain(old_set.iter().filter(|p| get_path(new, p).is_none()))
                .cloned()
                .collect()
        }
    };
    let mut entries = old.map(read_managed).unwrap_or_default();
    if changed.is_empty() {
        write_managed(new, &entries);
        return;
    }
    let subresource = section.subresource().map(str::to_string);
    for e in entries.iter_mut() {
        e.fields.retain(|p| !changed.iter().any(|q| overlaps(p, q)));
    }
    let present: FieldSet = changed
        .into_iter()
        .filter(|p| get_path(new, p).is_some())
        .collect();
    if let Some(e) = entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        e.fields.extend(present);
        e.time = now.to_string();
    } else {
        entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource,
            fields: present,
        });
    }
    write_managed(new, &entries);
}

/// An approximation of strategic merge patch: a JSON merge patch in which lists of objects
/// that all carry `name` are merged by `name`; `$patch`/`$setElementOrder`/`$retainKeys`
/// directives are ignored.
pub fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(d) = doc.as_object_mut() else { return };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            d.remove(k);
            continue;
        }
        let named = |a: &Value| {
            a.as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|i| i.get("name").and_then(Value::as_str).is_some())
            })
        };
        match d.get_mut(k) {
            Some(existing)
                if existing.is_array()
                    && named(existing)
                    && named(v)
                    && !v.as_array().is_some_and(Vec::is_empty) =>
            {
                let Some(items) = existing.as_array_mut() else {
                    continue;
                };
                for pi in v.as_array().into_iter().flatten() {
                    let name = pi.get("name");
                    match items.iter_mut().find(|i| i.get("name") == name) {
                        Some(target) => strategic_merge(target, pi),
                        None => items.push(pi.clone()),
                    }
                }
            }
            Some(existing) if existing.is_object() && v.is_object() => strategic_merge(existing, v),
            _ => {
                d.insert(k.clone(), v.clone());
            }
        }
    }
}
