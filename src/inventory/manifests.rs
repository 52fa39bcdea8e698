//! Kubernetes manifests as the engine's objects: multi-document YAML and JSON, `List` kinds,
//! each object located by file, line and document index.

use crate::engine::resource::{Resource, ResourceError, Source, group_of};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Kinds that live outside namespaces (the rest are namespaced, custom kinds included).
pub const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "APIService",
    "IngressClass",
    "RuntimeClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "PodSecurityPolicy",
    "ImprovementAction",
    "SecurityControl",
];

pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED_KINDS.contains(&kind)
}

/// A document that could not be read as an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    pub line: Option<usize>,
    pub document: usize,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    /// `file:line: message`, or `file: document N: message` where there is no line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(
                f,
                "{}: document {}: {}",
                self.file, self.document, self.message
            ),
        }
    }
}

/// The YAML documents of a stream that hold content: each one's text and the 1-based line it
/// starts on. The text is a slice of the stream (no copy), except for a document with `\r\n`
/// line ends, which is given with `\n` ends.
fn split_documents(text: &str) -> Vec<(usize, Cow<'_, str>)> {
    let mut docs = Vec::new();
    // The current document: its first line (1-based) and the byte its text starts at.
    let mut start = 1;
    let mut from = 0;
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker || line == "..." {
            docs.push((start, &text[from..offset]));
            start = i + 2;
            from = offset + raw.len();
            if line.starts_with("--- ") {
                // `--- {inline: doc}` keeps its content on the marker line.
                start = i + 1;
                from = offset + "--- ".len();
            }
        }
        offset += raw.len();
    }
    docs.push((start, &text[from..]));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|(start, d)| {
            // Every line ends with `\n`, the last one of the stream too (as kubectl reads it:
            // a block scalar ending the file keeps its final line break).
            let d = if d.contains('\r') || !d.ends_with('\n') {
                Cow::Owned(d.lines().flat_map(|l| [l, "\n"]).collect())
            } else {
                Cow::Borrowed(d)
            };
            (start, d)
        })
        .collect()
}

/// The first line of a document that holds content (for located errors).
fn first_content_line(start: usize, doc: &str) -> usize {
    doc.lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(start, |i| start + i)
}

/// Parse a file's text (YAML stream or JSON) into raw JSON documents with their location.
pub fn parse_documents(
    file: &str,
    text: &str,
) -> (Vec<(serde_json::Value, Source)>, Vec<ManifestError>) {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    // A UTF-8 byte order mark is accepted, as kubectl does.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if file.ends_with(".json") {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => {
                let line = 1 + text[..text.len() - trimmed.len()].matches('\n').count();
                values.push((
                    v,
                    Source {
                        file: file.to_string(),
                        line: Some(line),
                        document: 0,
                    },
                ))
            }
            Err(e) => errors.push(ManifestError {
                file: file.into(),
                line: Some(e.line()),
                document: 0,
                message: format!("invalid JSON: {e}"),
            }),
        }
        return (values, errors);
    }
    for (index, (start, doc)) in split_documents(text).into_iter().enumerate() {
        match parse_yaml_document(file, index, start, &doc) {
            Ok(Some(v)) => values.push(v),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (values, errors)
}

/// One YAML document of a file, located: None when it is empty (null).
fn parse_yaml_document(
    file: &str,
    index: usize,
    start: usize,
    doc: &str,
) -> Result<Option<(serde_json::Value, Source)>, ManifestError> {
    let line = first_content_line(start, doc);
    match yaml_to_json(doc) {
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(v) => Ok(Some((
            v,
            Source {
                file: file.to_string(),
                line: Some(line),
                document: index,
            },
        ))),
        Err(e) => {
            let at = e.location().map(|l| start + l.line() - 1).unwrap_or(line);
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            Err(ManifestError {
                file: file.into(),
                line: Some(at),
                document: index,
                message: format!("invalid YAML: {message}"),
            })
        }
    }
}

/// The `apiVersion` and `kind` a YAML document seems to declare, read from its lines that
/// start with `apiVersion:` or `kind:` (a block mapping at the top level, as manifests are
/// written). Only a guess, to choose how to read the document: `None` when either is missing
/// or given twice; the document as read has the last word ([`read_yaml_document`]).
fn declared_kind(doc: &str) -> Option<(&str, &str)> {
    // The lines are found with a vectorised search for the two prefixes: a line-by-line walk
    // was ~3% of a corpus scan (CustomResourceDefinitions of 100k lines).
    let declared = |prefix: &str| -> Result<Option<&str>, ()> {
        let mut found = None;
        for at in memchr::memmem::find_iter(doc.as_bytes(), prefix.as_bytes()) {
            if at > 0 && doc.as_bytes()[at - 1] != b'\n' {
                continue;
            }
            if found.is_some() {
                return Err(());
            }
            let rest = &doc[at + prefix.len()..];
            let value = rest[..rest.find('\n').unwrap_or(rest.len())].trim();
            found = Some(
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(value),
            );
        }
        Ok(found)
    };
    let kind = declared("kind:").ok()??;
    let api_version = declared("apiVersion:").ok()??;
    Some((api_version, kind))
}

/// One YAML document of a file as objects. A document of a kind `full_body` does not want
/// (no loaded action reads it) is first read for its identity only ([`yaml_identity_to_json`]):
/// the same objects, errors and not-objects as a whole reading, but the rest of its body is
/// only checked, not built (CustomResourceDefinitions are most of the bytes of real
/// repositories). Whatever that reading cannot settle alike (a kind wanted after all, a
/// document some part of which would not convert) is read whole.
fn read_yaml_document(
    file: &str,
    index: usize,
    start: usize,
    doc: &str,
    default_namespace: &str,
    full_body: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<Option<Documents>, ManifestError> {
    let wanted = |api_version: &str, kind: &str| full_body(group_of(api_version), kind);
    if let Some((api_version, kind)) = declared_kind(doc)
        && !wanted(api_version, kind)
        && let Ok(Some(value)) = read_identity(doc)
    {
        let text = |k: &str| value.get(k).and_then(|v| v.as_str());
        if let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind"))
            && !wanted(api_version, kind)
        {
            let source = Source {
                file: file.to_string(),
                line: Some(first_content_line(start, doc)),
                document: index,
            };
            return Ok(Some(read_objects(vec![(value, source)], default_namespace)));
        }
    }
    let parsed = parse_yaml_document(file, index, start, doc)?;
    Ok(parsed.map(|doc| read_objects(vec![doc], default_namespace)))
}

/// What one file holds, read for a whole-input scan.
#[derive(Debug, Default)]
pub struct FileObjects {
    /// Documents that are not valid YAML/JSON, in file order.
    pub parse_errors: Vec<ManifestError>,
    /// The file's objects (compact, see [`read_file`]), errors and non-objects, in file order.
    pub documents: Documents,
}

/// Read one file's text for a scan that holds the whole input: documents are parsed in
/// parallel, each object is made compact ([`Resource::into_compact`]) as soon as it is read
/// unless `keep_json` wants its JSON, and only then is the next document's JSON built by that
/// thread. Memory holds the file's text and the compact objects, never every document's JSON
/// at once. The result is in file order, as [`parse_documents`] and [`read_objects`] give it.
/// `full_body(group, kind)` says which kinds are read whole; the others are read for their
/// identity (see [`read_yaml_document`]) and hold null in place of every other top-level field.
pub fn read_file(
    file: &str,
    text: &str,
    default_namespace: &str,
    keep_json: &(dyn Fn(&Resource) -> bool + Sync),
    full_body: &(dyn Fn(&str, &str) -> bool + Sync),
) -> FileObjects {
    let compact = |mut read: Documents| {
        read.objects = read
            .objects
            .into_iter()
            .map(|r| if keep_json(&r) { r } else { r.into_compact() })
            .collect();
        read
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if file.ends_with(".json") {
        let (documents, parse_errors) = parse_documents(file, text);
        return FileObjects {
            parse_errors,
            documents: compact(read_objects(documents, default_namespace)),
        };
    }
    let read: Vec<Result<Option<Documents>, ManifestError>> = split_documents(body)
        .into_par_iter()
        .enumerate()
        .map(|(index, (start, doc))| {
            let read = read_yaml_document(file, index, start, &doc, default_namespace, full_body)?;
            Ok(read.map(compact))
        })
        .collect();
    let mut out = FileObjects::default();
    for r in read {
        match r {
            Ok(Some(d)) => {
                out.documents.objects.extend(d.objects);
                out.documents.errors.extend(d.errors);
                out.documents.not_objects.extend(d.not_objects);
            }
            Ok(None) => {}
            Err(e) => out.parse_errors.push(e),
        }
    }
    out
}

/// Why a YAML document could not be read as JSON.
#[derive(Debug)]
enum YamlError {
    Syntax(serde_yaml_ng::Error),
    /// Structure JSON cannot hold (a non-finite number, a mapping as a key, a bad merge).
    Shape(String),
}

impl YamlError {
    fn location(&self) -> Option<serde_yaml_ng::Location> {
        match self {
            YamlError::Syntax(e) => e.location(),
            YamlError::Shape(_) => None,
        }
    }
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            YamlError::Syntax(e) => e.fmt(f),
            YamlError::Shape(m) => f.write_str(m),
        }
    }
}

/// A YAML node with its mapping entries in document order (duplicates kept), so that the
/// conversion to JSON can follow kubectl's reading (sigs.k8s.io/yaml on go-yaml v2).
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Reads a [`Node`] out of one document, knowing the document's text: a plain (unquoted)
/// scalar is borrowed from it and recognised by the byte before it, so that it can be
/// resolved as YAML 1.1 does (go-yaml v2, which kubectl uses): `0400` is the octal 256,
/// `yes`/`on`/`off` are booleans, `1_000` is 1000; quoted scalars stay strings.
#[derive(Clone, Copy)]
struct NodeSeed<'de> {
    doc: &'de str,
}

impl<'de> serde::de::DeserializeSeed<'de> for NodeSeed<'de> {
    type Value = Node;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> NodeSeed<'de> {
    /// Whether a borrowed scalar was written plain (not quoted) in the document.
    fn is_plain(&self, v: &'de str) -> bool {
        let start = (v.as_ptr() as usize).wrapping_sub(self.doc.as_ptr() as usize);
        if start > self.doc.len() {
            return false;
        }
        let before = &self.doc.as_bytes()[..start];
        if matches!(before.last(), Some(b'"' | b'\'')) {
            return false;
        }
        // A tagged scalar (`!!str 0400`, `!foo yes`) keeps its tag's meaning, not a plain one.
        let trimmed = before
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(&before[..0], |i| &before[..=i]);
        let token_start = trimmed
            .iter()
            .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'[' | b'{' | b','))
            .map_or(0, |i| i + 1);
        trimmed.get(token_start) != Some(&b'!')
    }
}

/// A plain scalar as go-yaml v2 resolves it, where YAML 1.2 (serde_yaml_ng) left a string.
fn resolve_yaml11(v: &str) -> Option<Node> {
    match v {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Node::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some(Node::Bool(false));
        }
        _ => {}
    }
    let first = v.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let plain = v.replace('_', "");
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.strip_prefix('+').unwrap_or(&plain)),
    };
    // strconv.ParseInt(s, 0, 64): 0x hex, 0o / 0 octal, 0b binary, else decimal.
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        u64::from_str_radix(bin, 2).ok()
    } else if let Some(oct) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        u64::from_str_radix(oct, 8).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    };
    if let Some(u) = parsed {
        return Some(match (negative, i64::try_from(u)) {
            (true, Ok(i)) => Node::Int(-i),
            (true, Err(_)) => return None,
            (false, _) => Node::UInt(u),
        });
    }
    // yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (digits, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
                && !(a.is_empty() && b.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    if mantissa_ok && exponent_ok {
        let f: f64 = plain.parse().ok()?;
        return Some(Node::Float(f));
    }
    None
}

impl<'de> serde::de::Visitor<'de> for NodeSeed<'de> {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node, E> {
        if self.is_plain(v)
            && let Some(node) = resolve_yaml11(v)
        {
            return Ok(node);
        }
        Ok(Node::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
    /// A tagged value (`!foo x`): the tag is ignored, as sigs.k8s.io/yaml does.
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        use serde::de::VariantAccess;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// One YAML document as JSON, read as kubectl reads it (sigs.k8s.io/yaml on go-yaml v2):
/// mapping entries in order, a repeated key replaces the earlier one, a merge key (`<<: *a`,
/// or a list of anchors, the earlier winning) sets its entries at its place, tags ignored,
/// scalar keys turned into strings.
fn yaml_to_json(doc: &str) -> Result<serde_json::Value, YamlError> {
    use serde::de::DeserializeSeed;
    let de = serde_yaml_ng::Deserializer::from_str(doc);
    let node = NodeSeed { doc }
        .deserialize(de)
        .map_err(YamlError::Syntax)?;
    to_json(node)
}

/// The top-level keys a document read for its identity keeps whole: what [`Resource::new`],
/// [`not_an_object_by_design`] and the flattening of `List` kinds read (`<<` merges may bring
/// any of them in).
const IDENTITY_KEYS: [&str; 5] = ["apiVersion", "kind", "metadata", "items", "<<"];

/// One YAML document read for its identity only: the top-level entries of [`IDENTITY_KEYS`]
/// are built whole, every other top-level value is checked ([`CheckSeed`]) and left as null, its
/// key kept (so that `jobs:`, `services:` and the like still tell what the document is).
/// `Ok(None)` when some part of the document would not convert to JSON: the caller then reads
/// it whole, which reports the error exactly as it always has.
fn yaml_identity_to_json(doc: &str) -> Result<Option<serde_json::Value>, YamlError> {
    use serde::de::DeserializeSeed;
    let failed = std::cell::Cell::new(false);
    let de = serde_yaml_ng::Deserializer::from_str(doc);
    let node = IdentitySeed {
        node: NodeSeed { doc },
        check: CheckSeed {
            doc,
            failed: &failed,
        },
    }
    .deserialize(de)
    .map_err(YamlError::Syntax)?;
    if failed.get() {
        return Ok(None);
    }
    match to_json(node) {
        Ok(v) => Ok(Some(v)),
        Err(_) => Ok(None),
    }
}

/// Documents shorter than this are read for their identity directly: walking them first
/// would cost more than it saves.
const SKIM_MIN_BYTES: usize = 8 << 10;

/// [`yaml_identity_to_json`] of a document; a large one through [`identity_text`] when it can.
fn read_identity(doc: &str) -> Result<Option<serde_json::Value>, YamlError> {
    if doc.len() >= SKIM_MIN_BYTES
        && let Some(reduced) = identity_text(doc)
        && let Ok(Some(value)) = yaml_identity_to_json(&reduced)
    {
        return Ok(Some(value));
    }
    yaml_identity_to_json(doc)
}

/// Deepest nesting [`identity_text`] walks (serde_yaml_ng refuses documents deeper than 128).
const SKIM_MAX_DEPTH: usize = 100;

/// A document reduced to what [`yaml_identity_to_json`] keeps of it, or `None` when the
/// document is not plainly one it reads alike (the caller then reads the document itself).
///
/// The document's events are walked once with libyaml (the same parser serde_yaml_ng uses),
/// building nothing: the top-level entries whose key is one of [`IDENTITY_KEYS`] are copied
/// as written, every other one becomes `key: ~` (its value read as null, as the identity
/// reading leaves it). That is the same reading when the document is valid YAML, its root a
/// block mapping whose keys are single-line scalars at column 0, with no directive, anchor,
/// alias, tag, merge key (`<<`), non-scalar key or plain scalar that reads as a non-finite
/// number or an integer beyond 64 bits ([`plain_scalar_skimmable`]) anywhere, no nesting deeper than [`SKIM_MAX_DEPTH`] and no second document: any
/// of these gives `None`. `tests`: the two readings agree on every document of
/// `../shared/corpus` and on the tricky inputs.
fn identity_text(doc: &str) -> Option<String> {
    use unsafe_libyaml::events::{EventKind, EventReader};
    let mut events = EventReader::new(doc.as_bytes());
    let mut expect = |kind: EventKind| -> Option<()> {
        let e = events.next()?;
        (e.kind == kind && !e.directives).then_some(())
    };
    expect(EventKind::StreamStart)?;
    expect(EventKind::DocumentStart)?;
    let root = events.next()?;
    if root.kind != EventKind::MappingStart || root.anchor || root.tag || root.flow {
        return None;
    }
    // (key start, key end, whether the entry is kept whole), in order.
    let mut entries: Vec<(usize, usize, bool)> = Vec::new();
    loop {
        let key = events.next()?;
        match key.kind {
            EventKind::MappingEnd => break,
            EventKind::Scalar => {}
            _ => return None,
        }
        if key.anchor
            || key.tag
            || key.start.column != 0
            || key.start.line != key.end.line
            || key.value == b"<<"
            || (key.plain && !plain_scalar_skimmable(key.value))
        {
            return None;
        }
        let whole = IDENTITY_KEYS.iter().any(|k| k.as_bytes() == key.value);
        let (start, end) = (
            usize::try_from(key.start.index).ok()?,
            usize::try_from(key.end.index).ok()?,
        );
        entries.push((start, end, whole));
        skim_value(&mut events)?;
    }
    if events.next()?.kind != EventKind::DocumentEnd || events.next()?.kind != EventKind::StreamEnd
    {
        return None;
    }
    drop(events);
    let mut out = String::new();
    for (at, &(start, end, whole)) in entries.iter().enumerate() {
        if whole {
            let next = entries.get(at + 1).map_or(doc.len(), |e| e.0);
            out.push_str(doc.get(start..next)?);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(doc.get(start..end)?);
            out.push_str(": ~\n");
        }
    }
    Some(out)
}

/// For the fuzz target: whether, on every document of `text`, the identity walk
/// ([`identity_text`]) hands the document back or reads it as [`yaml_identity_to_json`] does.
#[doc(hidden)]
pub fn identity_walk_agrees(text: &str) -> bool {
    // What `read_identity` does: the reduced text's reading stands only when it succeeds.
    split_documents(text).iter().all(|(_, doc)| {
        match identity_text(doc).map(|r| yaml_identity_to_json(&r)) {
            Some(Ok(Some(a))) => matches!(yaml_identity_to_json(doc), Ok(Some(b)) if a == b),
            _ => true,
        }
    })
}

/// Walk one value (a scalar, or a sequence or mapping to its end) for [`identity_text`].
fn skim_value(events: &mut unsafe_libyaml::events::EventReader) -> Option<()> {
    use unsafe_libyaml::events::EventKind;
    #[derive(PartialEq)]
    enum Frame {
        Sequence,
        Key,
        Value,
    }
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let e = events.next()?;
        if e.anchor || e.tag {
            return None;
        }
        let at_key = stack.last() == Some(&Frame::Key);
        match e.kind {
            EventKind::Scalar => {
                if (at_key && e.value == b"<<") || (e.plain && !plain_scalar_skimmable(e.value)) {
                    return None;
                }
            }
            EventKind::SequenceStart | EventKind::MappingStart => {
                if at_key || stack.len() >= SKIM_MAX_DEPTH {
                    return None;
                }
                stack.push(if e.kind == EventKind::SequenceStart {
                    Frame::Sequence
                } else {
                    Frame::Key
                });
                continue;
            }
            EventKind::SequenceEnd | EventKind::MappingEnd => {
                stack.pop();
            }
            _ => return None,
        }
        // A node ended: the value after a key, the next key after a value.
        match stack.last_mut() {
            None => return Some(()),
            Some(f @ Frame::Key) => *f = Frame::Value,
            Some(f @ Frame::Value) => *f = Frame::Key,
            Some(Frame::Sequence) => {}
        }
    }
}

/// Whether a plain scalar cannot stop a document from converting to JSON: it does not read
/// as a non-finite number, neither as serde_yaml_ng parses floats nor as [`resolve_yaml11`],
/// nor as an integer beyond 64 bits (serde_yaml_ng gives those as 128-bit integers, which the
/// readings refuse): every such integer is written with 19 characters or more.
fn plain_scalar_skimmable(value: &[u8]) -> bool {
    let Ok(v) = std::str::from_utf8(value) else {
        return false;
    };
    let unsigned = v.trim_start_matches(['+', '-']);
    let digits = ["0x", "0o", "0b"]
        .iter()
        .find_map(|p| unsigned.strip_prefix(p))
        .unwrap_or(unsigned);
    if v.len() >= 19 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let special = matches!(
        v.strip_prefix(['+', '-']).unwrap_or(v),
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
    );
    !special && !matches!(resolve_yaml11(v), Some(Node::Float(f)) if !f.is_finite())
}

/// The root of a document read for its identity (see [`yaml_identity_to_json`]); a root that
/// is not a mapping is built whole.
#[derive(Clone, Copy)]
struct IdentitySeed<'de, 'a> {
    node: NodeSeed<'de>,
    check: CheckSeed<'de, 'a>,
}

impl<'de> serde::de::DeserializeSeed<'de> for IdentitySeed<'de, '_> {
    type Value = Node;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for IdentitySeed<'de, '_> {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Node, E> {
        self.node.visit_unit()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Node, E> {
        self.node.visit_none()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Node, E> {
        self.node.visit_bool(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Node, E> {
        self.node.visit_i64(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        self.node.visit_u64(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Node, E> {
        self.node.visit_f64(v)
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Node, E> {
        self.node.visit_borrowed_str(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Node, E> {
        self.node.visit_str(v)
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Node, E> {
        self.node.visit_string(v)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
        self.node.visit_seq(seq)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(self.node)? {
            let whole = matches!(&key, Node::Str(k) if IDENTITY_KEYS.contains(&k.as_str()));
            let value = if whole {
                map.next_value_seed(self.node)?
            } else {
                map.next_value_seed(self.check)?;
                Node::Null
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        self.node.visit_enum(data)
    }
}

/// What a checked value was, as far as a merge key (`<<`) cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    Map,
    /// A sequence whose items are all mappings.
    SeqOfMaps,
    Other,
}

/// Walks a value without building it and sets `failed` where [`to_json`] would fail on it:
/// a number JSON cannot hold, a mapping or sequence as a key, a merge key (`<<`) whose value is
/// not a mapping or a sequence of mappings. Scalars are resolved as [`NodeSeed`] resolves them.
#[derive(Clone, Copy)]
struct CheckSeed<'de, 'a> {
    doc: &'de str,
    failed: &'a std::cell::Cell<bool>,
}

impl CheckSeed<'_, '_> {
    fn float(&self, f: f64) -> Checked {
        if !f.is_finite() {
            self.failed.set(true);
        }
        Checked::Other
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for CheckSeed<'de, '_> {
    type Value = Checked;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CheckSeed<'de, '_> {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Checked, E> {
        Ok(self.float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Checked, E> {
        let node = NodeSeed { doc: self.doc };
        if node.is_plain(v)
            && let Some(Node::Float(f)) = resolve_yaml11(v)
        {
            return Ok(self.float(f));
        }
        Ok(Checked::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_string<E>(self, _: String) -> Result<Checked, E> {
        Ok(Checked::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut all_maps = true;
        while let Some(item) = seq.next_element_seed(self)? {
            all_maps &= item == Checked::Map;
        }
        Ok(if all_maps {
            Checked::SeqOfMaps
        } else {
            Checked::Other
        })
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let node = NodeSeed { doc: self.doc };
        while let Some(key) = map.next_key_seed(node)? {
            let value = map.next_value_seed(self)?;
            match key {
                // A merge key takes a mapping or a sequence of mappings.
                Node::Str(k)
                    if k == "<<" && !matches!(value, Checked::Map | Checked::SeqOfMaps) =>
                {
                    self.failed.set(true)
                }
                Node::Seq(_) | Node::Map(_) => self.failed.set(true),
                _ => {}
            }
        }
        Ok(Checked::Map)
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Checked, A::Error> {
        use serde::de::VariantAccess;
        let (_tag, variant): (String, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

fn to_json(node: Node) -> Result<serde_json::Value, YamlError> {
    Ok(match node {
        Node::Null => serde_json::Value::Null,
        Node::Bool(b) => serde_json::Value::Bool(b),
        Node::Int(i) => i.into(),
        Node::UInt(u) => u.into(),
        // Go marshals a whole float64 without a fraction (1.0 is 1), as kubectl sends it.
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).into(),
        Node::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| YamlError::Shape(format!("{f} is not a number JSON can hold")))?,
        Node::Str(s) => serde_json::Value::String(s),
        Node::Seq(items) => {
            serde_json::Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Node::Map(entries) => {
            let mut out = serde_json::Map::with_capacity(entries.len());
            fill_map(&mut out, entries)?;
            serde_json::Value::Object(out)
        }
    })
}

fn fill_map(
    out: &mut serde_json::Map<String, serde_json::Value>,
    entries: Vec<(Node, Node)>,
) -> Result<(), YamlError> {
    for (key, value) in entries {
        let key = match key {
            Node::Str(s) if s == "<<" => {
                merge_into(out, value)?;
                continue;
            }
            Node::Str(s) => s,
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::UInt(u) => u.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Null => "null".to_string(),
            Node::Seq(_) | Node::Map(_) => {
                return Err(YamlError::Shape("a mapping key must be a scalar".into()));
            }
        };
        out.insert(key, to_json(value)?);
    }
    Ok(())
}

fn merge_into(
    out: &mut serde_json::Map<String, serde_json::Value>,
    value: Node,
) -> Result<(), YamlError> {
    match value {
        Node::Map(entries) => fill_map(out, entries),
        // Earlier maps of the list take precedence: apply them last.
        Node::Seq(items) => {
            for item in items.into_iter().rev() {
                match item {
                    Node::Map(entries) => fill_map(out, entries)?,
                    _ => {
                        return Err(YamlError::Shape(
                            "map merge requires map or sequence of maps as the value".into(),
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Err(YamlError::Shape(
            "map merge requires map or sequence of maps as the value".into(),
        )),
    }
}

/// A document that is valid YAML but not a Kubernetes object by design (a kustomization, a
/// Helm chart's metadata or values, a CI workflow, a compose file, plain configuration):
/// skipped and counted, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnObject {
    pub file: String,
    pub line: Option<usize>,
    pub document: usize,
    /// What it looks like, e.g. "kustomize configuration".
    pub what: String,
}

impl std::fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.what),
            None => write!(
                f,
                "{}: document {}: {}",
                self.file, self.document, self.what
            ),
        }
    }
}

/// API groups of configuration files that carry apiVersion/kind but are read by tools, never
/// sent to an API server.
const TOOL_CONFIG_GROUPS: &[&str] = &[
    "kustomize.config.k8s.io",
    "config.kubernetes.io",
    "builtin",
    "kind.x-k8s.io",
    "k3d.io",
    "ctlptl.dev",
    "skaffold",
    "kubeadm.k8s.io",
    "audit.k8s.io",
];

/// API groups served by Kubernetes itself: an object of these without `metadata` is broken,
/// not a configuration file.
fn is_kubernetes_group(group: &str) -> bool {
    group.is_empty()
        || group.ends_with(".k8s.io")
        || ["apps", "batch", "policy", "autoscaling", "extensions"].contains(&group)
}

/// Whether a document is, by design, not a Kubernetes object, and what it is then. A document
/// that looks like an object (metadata beside kind or apiVersion, or apiVersion and kind of a
/// Kubernetes API group) is never skipped: if it is broken, that is an error.
pub fn not_an_object_by_design(file: &str, value: &serde_json::Value) -> Option<String> {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let Some(map) = value.as_object() else {
        return Some(match value {
            serde_json::Value::Array(_) => "a YAML list, not an object".into(),
            _ => "a scalar, not an object".into(),
        });
    };
    let text = |k: &str| {
        map.get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let has_metadata = map.get("metadata").is_some_and(|m| m.is_object());
    if let Some(api) = api_version {
        let group = group_of(api);
        let group = if api.contains('/') { group } else { api };
        if TOOL_CONFIG_GROUPS
            .iter()
            .any(|g| group == *g || group.starts_with(&format!("{g}/")))
            || group.ends_with(".config.k8s.io")
        {
            return Some(format!(
                "tool configuration ({api} {})",
                kind.unwrap_or("without kind")
            ));
        }
    }
    if base == "Chart.yaml" || (api_version.is_some() && kind.is_none() && !has_metadata) {
        return Some("Helm chart metadata or other apiVersion-only configuration".into());
    }
    if base.starts_with("kustomization.") || base.starts_with("Kustomization") {
        return Some("kustomize configuration".into());
    }
    if has_metadata && (api_version.is_some() || kind.is_some()) {
        return None;
    }
    match (api_version, kind) {
        (Some(api), Some(kind)) => {
            let group = group_of(api);
            if is_kubernetes_group(group) && kind != "Config" {
                None
            } else {
                Some(format!(
                    "configuration file ({api} {kind} without metadata)"
                ))
            }
        }
        _ if map.contains_key("jobs") && (map.contains_key("on") || map.contains_key("true")) => {
            Some("CI workflow".into())
        }
        _ if map.contains_key("stages") || base == ".gitlab-ci.yml" => Some("CI pipeline".into()),
        _ if map.contains_key("services") && !has_metadata => Some("compose file".into()),
        _ if !has_metadata => Some("no apiVersion and kind: plain configuration".into()),
        _ => None,
    }
}

/// What a file's documents hold.
#[derive(Debug, Default)]
pub struct Documents {
    pub objects: Vec<Resource>,
    /// Documents that look like objects and are broken.
    pub errors: Vec<ManifestError>,
    /// Documents that are not Kubernetes objects by design.
    pub not_objects: Vec<NotAnObject>,
}

/// A name shown for an object declared with `metadata.generateName` (the server picks the
/// rest): the prefix and `*`, which no real name contains.
pub const GENERATED_NAME_MARK: char = '*';

/// Whether a resource was declared with `metadata.generateName` (see [`GENERATED_NAME_MARK`]).
pub fn has_generated_name(r: &Resource) -> bool {
    r.name.ends_with(GENERATED_NAME_MARK)
}

/// Turn raw documents into objects, setting aside what is not a Kubernetes object by design.
pub fn read_objects(
    documents: Vec<(serde_json::Value, Source)>,
    default_namespace: &str,
) -> Documents {
    let mut out = Documents::default();
    let mut candidates = Vec::with_capacity(documents.len());
    for (value, source) in documents {
        match not_an_object_by_design(&source.file, &value) {
            Some(what) => out.not_objects.push(NotAnObject {
                file: source.file.clone(),
                line: source.line,
                document: source.document,
                what,
            }),
            None => candidates.push((value, source)),
        }
    }
    let (objects, errors) = objects_from(candidates, default_namespace);
    out.objects = objects;
    out.errors = errors;
    out
}

/// Turn raw documents into objects: `List` kinds are flattened, namespaced objects without a
/// namespace get `default_namespace`, and each document without apiVersion/kind/name is an error.
pub fn objects_from(
    documents: Vec<(serde_json::Value, Source)>,
    default_namespace: &str,
) -> (Vec<Resource>, Vec<ManifestError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (value, source) in documents {
        let is_list = value
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(|i| i.is_array());
        let items: Vec<(serde_json::Value, Option<usize>)> = if is_list {
            match value {
                serde_json::Value::Object(mut m) => match m.remove("items") {
                    Some(serde_json::Value::Array(items)) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (v, Some(i)))
                        .collect(),
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            }
        } else {
            vec![(value, None)]
        };
        for (mut item, index) in items {
            let kind = item
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_string();
            if !kind.is_empty()
                && !is_cluster_scoped(&kind)
                && let Some(meta) = item.get_mut("metadata").and_then(|m| m.as_object_mut())
                && meta
                    .get("namespace")
                    .and_then(|n| n.as_str())
                    .is_none_or(str::is_empty)
            {
                meta.insert("namespace".into(), default_namespace.into());
            }
            // `generateName` objects are scored under their prefix and `*`.
            if let Some(meta) = item.get_mut("metadata").and_then(|m| m.as_object_mut())
                && meta
                    .get("name")
                    .and_then(|n| n.as_str())
                    .is_none_or(str::is_empty)
                && let Some(prefix) = meta
                    .get("generateName")
                    .and_then(|n| n.as_str())
                    .filter(|p| !p.is_empty())
            {
                let shown = format!("{prefix}{GENERATED_NAME_MARK}");
                meta.insert("name".into(), shown.into());
            }
            match Resource::new(item, Some(source.clone())) {
                Ok(r) => out.push(r),
                Err(e) => errors.push(ManifestError {
                    file: source.file.clone(),
                    line: source.line,
                    document: source.document,
                    message: match index {
                        Some(i) => format!("items[{i}]: {}", describe(&e)),
                        None => describe(&e),
                    },
                }),
            }
        }
    }
    (out, errors)
}

fn describe(e: &ResourceError) -> String {
    match e {
        ResourceError::MissingField(f) => format!("not a Kubernetes object: {f} is missing"),
        other => format!("not a Kubernetes object: {other}"),
    }
}

/// Namespace objects the input implies but lacks, with the label the API server sets.
pub fn synthesise_namespaces(objects: &[Resource]) -> Vec<Resource> {
    let present: BTreeSet<&str> = objects
        .iter()
        .filter(|r| r.kind == "Namespace" && r.group.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    let wanted: BTreeSet<&str> = objects
        .iter()
        .filter_map(|r| r.namespace.as_deref())
        .filter(|ns| !present.contains(ns))
        .collect();
    wanted
        .into_iter()
        .filter_map(|ns| {
            Resource::new(
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}),
                None,
            )
            .ok()
        })
        .collect()
}

/// Everything in one text: objects (namespaces defaulted and synthesised) and errors.
pub fn load_text(
    file: &str,
    text: &str,
    default_namespace: &str,
) -> (Vec<Arc<Resource>>, Vec<ManifestError>) {
    let (docs, mut errors) = parse_documents(file, text);
    let (mut objects, more) = objects_from(docs, default_namespace);
    errors.extend(more);
    let synthesised = synthesise_namespaces(&objects);
    objects.extend(synthesised);
    (objects.into_iter().map(Arc::new).collect(), errors)
}

/// The corpus' location, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/support/corpus.rs"]
mod test_corpus;

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_corpus as corpus;

    /// The identity reading of `doc` through [`identity_text`], when it takes the document.
    fn skimmed(doc: &str) -> Option<serde_json::Value> {
        let reduced = identity_text(doc)?;
        match yaml_identity_to_json(&reduced) {
            Ok(Some(v)) => Some(v),
            other => {
                panic!("the reduced text of a skimmed document does not read: {other:?}\n{reduced}")
            }
        }
    }

    fn direct(doc: &str) -> Option<serde_json::Value> {
        yaml_identity_to_json(doc).ok().flatten()
    }

    #[test]
    fn the_skimmed_identity_of_every_corpus_document_is_its_identity() {
        let mut files = Vec::new();
        corpus::manifests(&corpus::corpus(), &mut files);
        let (mut skimmed_docs, mut skimmed_bytes, mut total_bytes) = (0, 0, 0);
        for file in files
            .iter()
            .filter(|f| !f.to_string_lossy().ends_with(".json"))
        {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for (_, doc) in split_documents(&text) {
                total_bytes += doc.len();
                if let Some(v) = skimmed(&doc) {
                    assert_eq!(Some(v), direct(&doc), "{}:\n{doc}", file.display());
                    skimmed_docs += 1;
                    skimmed_bytes += doc.len();
                }
            }
        }
        // Most of the corpus is plain block YAML: the walk must take most of it.
        assert!(skimmed_docs > 1000, "only {skimmed_docs} documents skimmed");
        assert!(
            skimmed_bytes * 10 > total_bytes * 9,
            "only {skimmed_bytes} of {total_bytes} bytes skimmed"
        );
    }

    #[test]
    fn the_declared_kind_is_read_from_the_lines_that_start_with_it() {
        let cases: [(&str, Option<(&str, &str)>); 8] = [
            ("apiVersion: v1\nkind: Pod\n", Some(("v1", "Pod"))),
            (
                "kind: 'Pod'\r\nmetadata: {}\r\napiVersion: \"apps/v1\"",
                Some(("apps/v1", "Pod")),
            ),
            ("apiVersion: v1\n  kind: Pod\n", None),
            ("apiVersion: v1\nkind: Pod\nkind: Service\n", None),
            ("apiVersion: v1\napiVersion: v2\nkind: Pod\n", None),
            ("xkind: Pod\napiVersion: v1\n", None),
            ("apiVersion: v1\nkind:\n", Some(("v1", ""))),
            (
                "data: {a: 'kind: x'}\napiVersion: v1\nkind: Pod",
                Some(("v1", "Pod")),
            ),
        ];
        for (doc, expected) in cases {
            assert_eq!(declared_kind(doc), expected, "{doc:?}");
        }
    }

    #[test]
    fn the_skimmed_identity_keeps_the_identity_entries_and_nulls_the_rest() {
        let doc = "# lead comment\napiVersion: apiextensions.k8s.io/v1\n\"kind\": CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n  annotations:\n    note: |+\n      kept\n\n  # a comment\n  labels: {a: \"1\", b: on}\n'spec'  : {x: [1, 2.5, .5, yes]}\nstatus:\n  conditions:\n  - type: Ready\n    status: \"True\"\nitems: []\n42: x\ndup: 1\ndup: 2";
        let v = skimmed(doc).expect("a plain document is skimmed");
        assert_eq!(Some(v.clone()), direct(doc));
        assert_eq!(v["metadata"]["annotations"]["note"], "kept\n\n");
        assert_eq!(v["metadata"]["labels"]["b"], true);
        assert_eq!(v["spec"], serde_json::Value::Null);
        assert_eq!(v["status"], serde_json::Value::Null);
        assert_eq!(v["items"], serde_json::json!([]));
        assert!(v.get("42").is_some(), "{v}");
        // CRLF line ends and a last identity entry without a line break.
        let crlf = "kind: A\r\nspec:\r\n  a: 1\r\napiVersion: v1\r\nmetadata:\r\n  name: x";
        assert_eq!(skimmed(crlf), direct(crlf));
        assert!(skimmed(crlf).is_some());
    }

    #[test]
    fn documents_the_walk_cannot_vouch_for_are_left_to_the_identity_reading() {
        let head = "apiVersion: v1\nkind: A\nmetadata: {name: x}\n";
        let cases = [
            "spec: &a {x: 1}\nother: *a\n",        // anchor and alias
            "spec: !custom {x: 1}\n",              // tag
            "spec:\n  <<: {x: 1}\n",               // merge key
            "spec:\n  '<<': [1]\n",                // quoted merge key
            "spec:\n  x: .inf\n",                  // non-finite (serde_yaml_ng)
            "spec:\n  x: [1e400]\n",               // non-finite (YAML 1.1 resolution)
            "spec:\n  x: 18446744073709551616\n",  // beyond 64 bits
            "spec:\n  x: -0x8000000000000001\n",   // beyond 64 bits, negative hex
            "spec:\n  444444444444444444444: 1\n", // beyond 64 bits, as a key (fuzz)
            "spec:\n  ? [a, b]\n  : 1\n",          // a sequence as a key
            "spec:\n  {a: 1}: 2\n",                // a mapping as a key
            "spec: [unclosed\n",                   // syntax error
            "spec: 1\n...\n---\nkind: B\n",        // a second document
            "? complex\n: key\n",                  // explicit key
            "\"multi\n  line\": 1\n",              // a key over two lines
        ];
        for tail in cases {
            let doc = format!("{head}{tail}");
            assert_eq!(identity_text(&doc), None, "{doc}");
        }
        for doc in [
            "{apiVersion: v1, kind: A}\n",               // flow root
            "  apiVersion: v1\n  kind: A\n",             // indented root
            "%YAML 1.1\n---\napiVersion: v1\nkind: A\n", // directive
            "- apiVersion: v1\n",                        // a sequence root
            "",                                          // nothing
        ] {
            assert_eq!(identity_text(doc), None, "{doc}");
        }
        let deep = format!("{head}spec: {}{}\n", "[".repeat(120), "]".repeat(120));
        assert_eq!(identity_text(&deep), None);
        let fine = format!("{head}spec: {}{}\n", "[".repeat(50), "]".repeat(50));
        assert!(identity_text(&fine).is_some());
    }

    #[test]
    fn a_block_scalar_ending_the_file_without_a_newline_keeps_its_line_break() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    one\n    two";
        let (docs, errors) = parse_documents("cm.yaml", text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs[0].0["data"]["x"], "one\ntwo\n");
    }

    /// A ConfigMap whose values hold multi-byte characters at every offset modulo 64 past the
    /// YAML reader's 16 KiB chunks (vendor/unsafe-libyaml/PATCHED.md), with each value expected.
    fn long_config_map_with_multibyte_values() -> (String, Vec<(String, String)>) {
        let mut text =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wide}\ndata:\n");
        let mut expected = Vec::new();
        for i in 0..900 {
            let value = format!("{}é日本🚀\u{a0}z{}", "a".repeat(i % 64), "b".repeat(i % 7));
            text.push_str(&format!("  k{i}: \"{value}\"\n"));
            expected.push((format!("k{i}"), value));
        }
        assert!(text.len() > 3 * 16384, "{}", text.len());
        (text, expected)
    }

    #[test]
    fn the_yaml_reader_decodes_multibyte_characters_across_its_chunks() {
        let (text, expected) = long_config_map_with_multibyte_values();
        let (docs, errors) = parse_documents("cm.yaml", &text);
        assert!(errors.is_empty(), "{errors:?}");
        for (key, value) in &expected {
            assert_eq!(docs[0].0["data"][key], value.as_str(), "{key}");
        }
    }

    #[test]
    fn the_yaml_reader_refuses_control_characters_after_a_long_ascii_run_where_they_are() {
        let (text, _) = long_config_map_with_multibyte_values();
        for (bad, shown) in [('\u{1}', "0x01"), ('\u{7f}', "0x7f"), ('\u{1b}', "0x1b")] {
            let text = format!("{text}  late: \"x{bad}y\"\n");
            let (_, errors) = parse_documents("cm.yaml", &text);
            assert_eq!(errors.len(), 1, "{shown}: {errors:?}");
            // libyaml reports the byte offset of the refused character.
            let at = text.find(bad).expect("the bad character is in the text");
            assert_eq!(
                errors[0].to_string(),
                format!(
                    "cm.yaml:1: invalid YAML: control characters are not allowed at position {at}"
                ),
                "{shown}"
            );
        }
    }

    #[test]
    fn the_yaml_scanner_reads_long_plain_scalars_across_its_chunks_and_places_errors() {
        // Plain (unquoted) values of every length up to 300, words of letters, digits and
        // `-_./`, some folded over two lines, past the reader's 16 KiB chunks.
        let mut text =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata:\n");
        let mut expected = Vec::new();
        for i in 0..300 {
            let word = format!("w{i}-{}_x./y", "z".repeat(i));
            let value = if i % 3 == 0 {
                text.push_str(&format!("  k{i}: {word} second\n    {word}:tail\n"));
                format!("{word} second {word}:tail")
            } else {
                text.push_str(&format!("  k{i}: {word}\n"));
                word
            };
            expected.push((format!("k{i}"), value));
        }
        assert!(text.len() > 3 * 16384, "{}", text.len());
        let (docs, errors) = parse_documents("cm.yaml", &text);
        assert!(errors.is_empty(), "{errors:?}");
        for (key, value) in &expected {
            assert_eq!(docs[0].0["data"][key], value.as_str(), "{key}");
        }
        // A mapping value where none may be, right after a long plain scalar: its line and
        // column come from the scanner's mark, advanced over the scalar.
        let bad = format!("{text}  late: {} x: y\n", "q".repeat(5000));
        let (_, errors) = parse_documents("cm.yaml", &bad);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let line = bad.lines().count();
        assert_eq!(
            errors[0].to_string(),
            format!("cm.yaml:{line}: invalid YAML: mapping values are not allowed in this context")
        );
        let error = serde_yaml_ng::from_str::<serde_json::Value>(&bad).expect_err("invalid");
        let at = error.location().expect("a location");
        assert_eq!((at.line(), at.column()), (line, 5011), "{error}");
        let index = bad.len() - ": y\n".len();
        assert_eq!(at.index(), index, "{error}");
    }

    #[test]
    fn the_yaml_scanner_reads_long_block_scalars_across_its_chunks_and_places_errors() {
        // A literal block of 800 lines of every length up to 200 (some with a multi-byte
        // character or a tab inside) past the reader's 16 KiB chunks, then an error: its index
        // counts every byte the block's lines advanced the mark by.
        let mut text = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: block}\ndata:\n  text: |\n",
        );
        let mut expected = String::new();
        // 801 lines: the last one not empty, which the block's clipping would drop.
        for i in 0..801 {
            let line = match i % 4 {
                0 => format!("line {i}: {}", "x".repeat(i % 200)),
                1 => format!(
                    "{}é{} # not a comment",
                    "y".repeat(i % 50),
                    "z".repeat(i % 30)
                ),
                2 => format!("tab\there {}", "-".repeat(i % 100)),
                _ => String::new(),
            };
            text.push_str(&format!("    {line}\n"));
            expected.push_str(&line);
            expected.push('\n');
        }
        assert!(text.len() > 2 * 16384, "{}", text.len());
        let (docs, errors) = parse_documents("cm.yaml", &text);
        assert!(errors.is_empty(), "{errors:?}");
        let read = docs[0].0["data"]["text"].as_str().unwrap_or_default();
        let differs = read.chars().zip(expected.chars()).position(|(a, b)| a != b);
        assert!(
            read == expected,
            "read {} bytes, expected {}, first difference at character {differs:?}",
            read.len(),
            expected.len()
        );
        let bad = format!("{text}  late: x: y\n");
        let error = serde_yaml_ng::from_str::<serde_json::Value>(&bad).expect_err("invalid");
        let at = error.location().expect("a location");
        assert_eq!(
            (at.line(), at.column(), at.index()),
            (bad.lines().count(), 10, bad.len() - ": y\n".len()),
            "{error}"
        );
    }

    #[test]
    fn documents_are_located_by_line() {
        let text = "# leading comment\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n";
        let (docs, errors) = parse_documents("f.yaml", text);
        assert!(errors.is_empty());
        let lines: Vec<_> = docs.iter().map(|(_, s)| (s.line, s.document)).collect();
        assert_eq!(lines, [(Some(2), 0), (Some(8), 1)]);
    }

    #[test]
    fn invalid_yaml_is_reported_with_its_line_and_the_rest_still_loads() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod: x\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c}\n";
        let (objects, errors) = load_text("f.yaml", text, "default");
        assert_eq!(objects.iter().filter(|o| o.kind == "Pod").count(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(6), "{}", errors[0]);
        assert!(
            errors[0].to_string().starts_with("f.yaml:6: invalid YAML"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn lists_are_flattened_and_objects_without_kind_are_errors() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, metadata: {name: b}}\n";
        let (objects, errors) = load_text("l.yaml", text, "team");
        assert_eq!(objects.iter().filter(|o| o.kind == "Pod").count(), 1);
        assert_eq!(
            errors[0].to_string(),
            "l.yaml:1: items[1]: not a Kubernetes object: kind is missing"
        );
    }

    #[test]
    fn namespaces_default_and_are_synthesised() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n";
        let (objects, _) = load_text("f.yaml", text, "team");
        let pod = objects.iter().find(|o| o.kind == "Pod").unwrap();
        assert_eq!(pod.namespace.as_deref(), Some("team"));
        let role = objects.iter().find(|o| o.kind == "ClusterRole").unwrap();
        assert_eq!(role.namespace, None);
        let ns = objects.iter().find(|o| o.kind == "Namespace").unwrap();
        assert_eq!(ns.name, "team");
        assert_eq!(
            ns.labels
                .get("kubernetes.io/metadata.name")
                .map(String::as_str),
            Some("team")
        );
    }

    /// A file read with every body built, and read with none wanted: what each gives, with
    /// the objects by identity and source (their bodies are what differs).
    fn both_readings(text: &str) -> (String, String) {
        let shown = |read: FileObjects| {
            let objects: Vec<_> = read
                .documents
                .objects
                .iter()
                .map(|r| {
                    (
                        &r.api_version,
                        &r.group,
                        &r.kind,
                        &r.namespace,
                        &r.name,
                        &r.uid,
                        &r.labels,
                        &r.controller,
                        &r.source,
                    )
                })
                .collect();
            format!(
                "{objects:?}\n{:?}\n{:?}\n{:?}",
                read.parse_errors, read.documents.errors, read.documents.not_objects
            )
        };
        let whole = read_file("f.yaml", text, "team", &|_| false, &|_, _| true);
        let identity = read_file("f.yaml", text, "team", &|_| false, &|_, _| false);
        (shown(whole), shown(identity))
    }

    #[test]
    fn a_document_read_for_its_identity_gives_what_a_whole_reading_gives() {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n";
        let cases = [
            // Plain, with identity fields a whole reading turns into the object's identity.
            format!(
                "{crd}metadata:\n  name: a\n  labels: {{x: y, n: 1}}\n  uid: u1\n  ownerReferences: [{{apiVersion: v1, kind: X, name: o, controller: true}}]\nspec:\n  group: g\n"
            ),
            // Keys in any order, kind last.
            "spec: {a: 1}\nmetadata: {name: b}\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n".into(),
            // Numbers JSON cannot hold, anywhere in the body: an error either way.
            format!("{crd}metadata: {{name: c}}\nspec:\n  x: [1, .inf]\n"),
            format!("{crd}metadata: {{name: c}}\nspec:\n  x: 1e999\n"),
            format!("{crd}metadata: {{name: c}}\nspec: !!float .nan\n"),
            // A mapping as a key, a bad merge, a good merge.
            format!("{crd}metadata: {{name: d}}\nspec:\n  ? [a]\n  : 1\n"),
            format!("{crd}metadata: {{name: d}}\nspec:\n  <<: 1\n"),
            format!("{crd}metadata: {{name: d}}\nspec:\n  <<: [{{a: 1}}, 2]\n"),
            format!("{crd}metadata: {{name: e}}\nbase: &b {{x: 1}}\nspec:\n  <<: [*b, {{y: 2}}]\n"),
            // Identity brought in by a merge key, or replaced by a repeated key.
            "base: &m {name: f, namespace: other}\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  <<: *m\n".into(),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: g}\nm: &k {kind: Service}\n<<: *k\n".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: h}\nmetadata: {name: h2}\n".into(),
            // What is not an object, or a broken one.
            "apiVersion: v1\nkind: Config\nclusters: []\n".into(),
            format!("{crd}spec: {{}}\n"),
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: i}, spec: {x: 1}}\n- {apiVersion: v1, kind: Pod}\n".into(),
            // Not valid YAML.
            format!("{crd}metadata: {{name: j}}\nspec:\n  a: [1\n"),
            format!("{crd}metadata: {{name: j}}\nspec:\n  a: *nowhere\n"),
            // Tagged values, YAML 1.1 scalars, quoting.
            format!("{crd}metadata: {{name: k, labels: {{on: yes}}}}\nspec: !custom {{a: 0400, b: '0400'}}\n"),
            "apiVersion: \"apiextensions.k8s.io/v1\"\nkind: 'CustomResourceDefinition'\nmetadata: {name: l}\nspec: {}\n".into(),
        ];
        for case in &cases {
            let (whole, identity) = both_readings(case);
            assert_eq!(whole, identity, "{case}");
        }
        // The cases cover errors as well as objects.
        let (errors, _) = both_readings(&cases[2]);
        assert!(errors.contains("is not a number JSON can hold"), "{errors}");
        let (errors, _) = both_readings(&cases[6]);
        assert!(errors.contains("map merge requires"), "{errors}");
    }

    #[test]
    fn a_document_read_for_its_identity_keeps_no_body() {
        let text = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}\nspec: {group: g}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n";
        let wanted = |_: &str, kind: &str| kind == "Pod";
        let read = read_file("f.yaml", text, "team", &|_| false, &wanted);
        let bodies: Vec<_> = read
            .documents
            .objects
            .iter()
            .map(|r| r.json()["spec"].clone())
            .collect();
        assert_eq!(
            bodies,
            [
                serde_json::Value::Null,
                serde_json::json!({"containers": []})
            ]
        );
    }

    #[test]
    fn json_files_are_one_document() {
        let (objects, errors) = load_text(
            "p.json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"x"}}"#,
            "default",
        );
        assert!(errors.is_empty());
        assert_eq!(objects.len(), 2);
        let (_, errors) = load_text("bad.json", "{\"apiVersion\": ", "default");
        assert!(
            errors[0]
                .to_string()
                .starts_with("bad.json:1: invalid JSON"),
            "{}",
            errors[0]
        );
    }
}
