//! A compact, immutable encoding of one object's JSON, for whatever holds many objects for
//! long (the operator's watch caches, a scan's whole input): a byte string instead of a tree of
//! maps, with map keys and short strings replaced by ids into one process-wide table. It is
//! turned into a CEL value when an evaluation needs it, and dropped with it afterwards.
//!
//! Layout (one value; a map's entries are key then value, keys encoded as strings):
//! `0` null, `1` false, `2` true, `3` int (zigzag varint), `4` uint (varint), `5` double (8 bytes
//! little-endian), `6` string (varint length, UTF-8 bytes), `7` shared string (varint id),
//! `8` list (varint count, items), `9` map (varint count, entries).

use super::cel::cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapEntries, CelMapKey, CelNull, CelString,
    CelUInt,
};
use super::cel::cel::common::value::Val;
use super::cel::{CelJson, Shared as SharedVal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const UINT: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const SHARED: u8 = 7;
const LIST: u8 = 8;
const MAP: u8 = 9;

/// Map keys up to this length are shared ("name", "securityContext", label keys).
const SHARED_KEY_MAX_LEN: usize = 64;
/// String values up to this length are shared ("TCP", "IfNotPresent", "RuntimeDefault"):
/// names and uids are longer and mostly unique, so they stay inline.
const SHARED_VALUE_MAX_LEN: usize = 16;
/// Distinct shared strings the process keeps (bounded: names and label values vary without
/// end); past it, new strings are stored inline.
const SHARED_MAX_ENTRIES: usize = 1 << 17;
/// Fields of the top-level `metadata` whose string values are one object's own (a table entry
/// costs ~130 bytes, an inline value its length): stored inline whatever their length, so that
/// 100k objects' resourceVersions and short names do not fill the table.
const METADATA_OWN_VALUES: [&str; 3] = ["name", "resourceVersion", "uid"];

/// The process-wide table of shared strings: ids only grow, so an encoding stays valid.
struct Shared {
    ids: Mutex<HashMap<String, u32>>,
    strings: RwLock<Vec<Arc<String>>>,
}

fn shared() -> &'static Shared {
    static SHARED_STRINGS: OnceLock<Shared> = OnceLock::new();
    SHARED_STRINGS.get_or_init(|| Shared {
        ids: Mutex::new(HashMap::new()),
        strings: RwLock::new(Vec::new()),
    })
}

/// One object's JSON, encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Compact {
    bytes: Box<[u8]>,
}

impl std::fmt::Debug for Compact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compact({} bytes)", self.bytes.len())
    }
}

impl Compact {
    pub fn encode(value: &serde_json::Value) -> Compact {
        let mut out = Vec::with_capacity(256);
        let table = shared();
        let mut ids = table.ids.lock().unwrap_or_else(|e| e.into_inner());
        let mut encoder = Encoder {
            out: &mut out,
            ids: &mut ids,
            table,
        };
        encoder.object(value);
        drop(ids);
        Compact {
            bytes: out.into_boxed_slice(),
        }
    }

    /// Bytes held (the shared table aside).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many strings the process-wide table holds (for the memory figures and tests).
    pub fn shared_strings() -> usize {
        shared()
            .strings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The object as a CEL value, as [`super::cel::json_to_cel`] makes it from the JSON: map
    /// entries whose value is null are left out.
    pub fn to_cel(&self) -> CelJson {
        let strings = shared().strings.read().unwrap_or_else(|e| e.into_inner());
        let mut d = Decoder {
            bytes: &self.bytes,
            at: 0,
            strings: &strings,
        };
        CelJson {
            shared: SharedVal::from_val(d.cel().unwrap_or_else(|| Box::new(CelNull))),
        }
    }

    /// The JSON this was encoded from.
    pub fn to_json(&self) -> serde_json::Value {
        let strings = shared().strings.read().unwrap_or_else(|e| e.into_inner());
        let mut d = Decoder {
            bytes: &self.bytes,
            at: 0,
            strings: &strings,
        };
        d.json().unwrap_or(serde_json::Value::Null)
    }
}

/// The id of `s` in the table, added when new and the table has room.
fn table_id(s: &str, ids: &mut HashMap<String, u32>, table: &Shared) -> Option<u32> {
    if let Some(id) = ids.get(s) {
        return Some(*id);
    }
    if ids.len() >= SHARED_MAX_ENTRIES {
        return None;
    }
    let mut strings = table.strings.write().unwrap_or_else(|e| e.into_inner());
    let id = strings.len() as u32;
    strings.push(Arc::new(s.to_string()));
    drop(strings);
    ids.insert(s.to_string(), id);
    Some(id)
}

/// `s` as a shared string: the table's copy when it is short enough to be a key
/// (`SHARED_KEY_MAX_LEN`: label keys and values, kinds, namespaces) and the table has room, a
/// copy of its own otherwise. Objects' identities and labels hold these, so that a value 100k
/// objects repeat is stored once.
pub fn share(s: &str) -> Arc<String> {
    let table = shared();
    if s.len() <= SHARED_KEY_MAX_LEN {
        let mut ids = table.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = table_id(s, &mut ids, table) {
            drop(ids);
            let strings = table.strings.read().unwrap_or_else(|e| e.into_inner());
            if let Some(shared) = strings.get(id as usize) {
                return shared.clone();
            }
        }
    }
    Arc::new(s.to_string())
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    ids: &'a mut HashMap<String, u32>,
    table: &'static Shared,
}

impl Encoder<'_> {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn string(&mut self, s: &str, max_shared: usize) {
        if s.len() <= max_shared
            && let Some(id) = table_id(s, self.ids, self.table)
        {
            self.out.push(SHARED);
            self.varint(u64::from(id));
            return;
        }
        self.out.push(STR);
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A whole object: as [`Encoder::value`], except that the values of its own metadata
    /// fields ([`METADATA_OWN_VALUES`]) stay inline.
    fn object(&mut self, v: &serde_json::Value) {
        let serde_json::Value::Object(fields) = v else {
            return self.value(v);
        };
        self.out.push(MAP);
        self.varint(fields.len() as u64);
        for (k, v) in fields {
            self.string(k, SHARED_KEY_MAX_LEN);
            match (k.as_str(), v) {
                ("metadata", serde_json::Value::Object(meta)) => {
                    self.out.push(MAP);
                    self.varint(meta.len() as u64);
                    for (mk, mv) in meta {
                        self.string(mk, SHARED_KEY_MAX_LEN);
                        match mv {
                            serde_json::Value::String(own)
                                if METADATA_OWN_VALUES.contains(&mk.as_str()) =>
                            {
                                self.string(own, 0)
                            }
                            _ => self.value(mv),
                        }
                    }
                }
                _ => self.value(v),
            }
        }
    }

    fn value(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Null => self.out.push(NULL),
            serde_json::Value::Bool(false) => self.out.push(FALSE),
            serde_json::Value::Bool(true) => self.out.push(TRUE),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.out.push(INT);
                    self.varint(((i << 1) ^ (i >> 63)) as u64);
                } else if let Some(u) = n.as_u64() {
                    self.out.push(UINT);
                    self.varint(u);
                } else {
                    self.out.push(FLOAT);
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    self.out.extend_from_slice(&f.to_le_bytes());
                }
            }
            serde_json::Value::String(s) => self.string(s, SHARED_VALUE_MAX_LEN),
            serde_json::Value::Array(items) => {
                self.out.push(LIST);
                self.varint(items.len() as u64);
                for item in items {
                    self.value(item);
                }
            }
            serde_json::Value::Object(fields) => {
                self.out.push(MAP);
                self.varint(fields.len() as u64);
                for (k, v) in fields {
                    self.string(k, SHARED_KEY_MAX_LEN);
                    self.value(v);
                }
            }
        }
    }
}

/// Reads what [`Encoder`] wrote. Every read is checked: a truncated encoding (which this module
/// never writes) ends as None, not a panic.
struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
    strings: &'a [Arc<String>],
}

impl Decoder<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// A string at this tag (inline or shared), as the shared Arc when there is one.
    fn arc_string(&mut self, tag: u8) -> Option<Arc<String>> {
        match tag {
            SHARED => {
                let id = self.varint()? as usize;
                self.strings.get(id).cloned()
            }
            STR => {
                let n = self.varint()? as usize;
                let s = std::str::from_utf8(self.take(n)?).ok()?;
                Some(Arc::new(s.to_string()))
            }
            _ => None,
        }
    }

    fn str_ref(&mut self, tag: u8) -> Option<String> {
        match tag {
            SHARED => {
                let id = self.varint()? as usize;
                self.strings.get(id).map(|s| s.as_str().to_string())
            }
            STR => {
                let n = self.varint()? as usize;
                std::str::from_utf8(self.take(n)?).ok().map(str::to_string)
            }
            _ => None,
        }
    }

    fn number(&mut self, tag: u8) -> Option<Number> {
        Some(match tag {
            INT => {
                let z = self.varint()?;
                Number::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            UINT => Number::UInt(self.varint()?),
            FLOAT => {
                let raw: [u8; 8] = self.take(8)?.try_into().ok()?;
                Number::Float(f64::from_le_bytes(raw))
            }
            _ => return None,
        })
    }

    fn cel(&mut self) -> Option<Box<dyn Val>> {
        let tag = self.byte()?;
        Some(match tag {
            NULL => Box::new(CelNull),
            FALSE => Box::new(CelBool::from(false)),
            TRUE => Box::new(CelBool::from(true)),
            INT | UINT | FLOAT => match self.number(tag)? {
                Number::Int(i) => Box::new(CelInt::from(i)),
                Number::UInt(u) => Box::new(CelUInt::from(u)),
                Number::Float(f) => Box::new(CelDouble::from(f)),
            },
            STR | SHARED => Box::new(CelString::from(self.arc_string(tag)?)),
            LIST => {
                let n = self.varint()? as usize;
                let mut items = Vec::with_capacity(n.min(self.bytes.len()));
                for _ in 0..n {
                    items.push(self.cel()?);
                }
                Box::new(CelList::from(items))
            }
            MAP => {
                let n = self.varint()? as usize;
                // cel's own map type (foldhash): a std HashMap would be re-hashed on conversion.
                let mut map = CelMapEntries::with_capacity_and_hasher(
                    n.min(self.bytes.len()),
                    Default::default(),
                );
                for _ in 0..n {
                    let key_tag = self.byte()?;
                    let key = self.arc_string(key_tag)?;
                    let value = self.cel()?;
                    // As json_to_cel: an entry set to null is absent.
                    if value.downcast_ref::<CelNull>().is_none() {
                        map.insert(CelMapKey::String(CelString::from(key)), value);
                    }
                }
                Box::new(CelMap::from(map))
            }
            _ => return None,
        })
    }

    fn json(&mut self) -> Option<serde_json::Value> {
        let tag = self.byte()?;
        Some(match tag {
            NULL => serde_json::Value::Null,
            FALSE => serde_json::Value::Bool(false),
            TRUE => serde_json::Value::Bool(true),
            INT | UINT | FLOAT => match self.number(tag)? {
                Number::Int(i) => i.into(),
                Number::UInt(u) => u.into(),
                Number::Float(f) => serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null),
            },
            STR | SHARED => serde_json::Value::String(self.str_ref(tag)?),
            LIST => {
                let n = self.varint()? as usize;
                let mut items = Vec::with_capacity(n.min(self.bytes.len()));
                for _ in 0..n {
                    items.push(self.json()?);
                }
                serde_json::Value::Array(items)
            }
            MAP => {
                let n = self.varint()? as usize;
                let mut map = serde_json::Map::new();
                for _ in 0..n {
                    let key_tag = self.byte()?;
                    let key = self.str_ref(key_tag)?;
                    map.insert(key, self.json()?);
                }
                serde_json::Value::Object(map)
            }
            _ => return None,
        })
    }
}

enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cel::cel::Value;
    use crate::engine::cel::cel::objects::Key;
    use crate::engine::cel::json_to_cel;
    use serde_json::json;

    fn pod() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7f9c4d-x2x9q", "namespace": "team-a",
                         "uid": "00000000-0000-4000-8000-000000000001",
                         "labels": {"app": "web", "app.kubernetes.io/name": "web"},
                         "annotations": {"note": "x".repeat(300), "empty": null}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                                     "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                     "securityContext": {"privileged": false, "runAsUser": 0,
                                                         "capabilities": {"drop": ["ALL"]}}}],
                     "priority": -5, "big": u64::MAX, "ratio": 0.25, "whole": 2.0,
                     "unicode": "ünïcødé ✓", "nested": [[1, [2, {"a": []}]], {}]}
        })
    }

    #[test]
    fn encoding_gives_back_the_same_json() {
        let v = pod();
        assert_eq!(Compact::encode(&v).to_json(), v);
        for scalar in [
            json!(null),
            json!(true),
            json!(i64::MIN),
            json!("s"),
            json!([]),
        ] {
            assert_eq!(Compact::encode(&scalar).to_json(), scalar);
        }
    }

    #[test]
    fn the_cel_value_equals_the_one_converted_from_json() {
        let v = pod();
        let from_compact = Compact::encode(&v).to_cel().value();
        let from_json = json_to_cel(&v).value();
        assert_eq!(from_compact, from_json);
        // The null annotation is absent in both.
        let Value::Map(m) = &from_compact else {
            panic!("a map")
        };
        let Some(Value::Map(meta)) = m.map.get(&Key::String(Arc::new("metadata".into()))) else {
            panic!("metadata")
        };
        let Some(Value::Map(annotations)) =
            meta.map.get(&Key::String(Arc::new("annotations".into())))
        else {
            panic!("annotations")
        };
        assert_eq!(annotations.map.len(), 1);
    }

    #[test]
    fn keys_and_short_strings_are_stored_once_for_all_objects() {
        let v = pod();
        let json_text = serde_json::to_vec(&v).unwrap().len();
        let encoded = Compact::encode(&v);
        // The 300-byte annotation stays inline; the rest shrinks to ids.
        assert!(
            encoded.len() < json_text - 200,
            "{} bytes encoded vs {json_text} of JSON",
            encoded.len()
        );
        assert_eq!(Compact::encode(&v), encoded, "the same ids every time");
    }

    #[test]
    fn an_objects_own_metadata_values_stay_inline_and_short_repeated_values_are_shared() {
        let v = json!({"metadata": {"name": "web-0", "resourceVersion": "918273",
                                    "uid": "u-1", "labels": {"tier": "rv-918273x"}},
                       "spec": {"name": "short-shared"}});
        let encoded = Compact::encode(&v);
        let inline = |s: &str| {
            let mut want = vec![STR, s.len() as u8];
            want.extend_from_slice(s.as_bytes());
            encoded
                .bytes
                .windows(want.len())
                .any(|w| w == want.as_slice())
        };
        for own in ["web-0", "918273", "u-1"] {
            assert!(inline(own), "{own} inline");
        }
        assert!(!inline("short-shared"), "a short value elsewhere is shared");
        assert!(!inline("rv-918273x"), "a label value is shared");
        assert_eq!(encoded.to_json(), v);
    }

    #[test]
    fn a_truncated_encoding_decodes_to_null_not_a_panic() {
        let encoded = Compact::encode(&pod());
        for cut in [0, 1, encoded.bytes.len() / 2, encoded.bytes.len() - 1] {
            let truncated = Compact {
                bytes: encoded.bytes[..cut].into(),
            };
            assert_eq!(truncated.to_json(), serde_json::Value::Null);
            assert_eq!(truncated.to_cel().value(), Value::Null);
        }
    }
}
