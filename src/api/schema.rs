//! Our CRDs' OpenAPI schemas, enforced client-side as the API server enforces them (for
//! `securescore scan`, which must not score what a cluster would reject).
//!
//! The schemas are the ones `securescore crds` prints ([`super::crds`]), so the check can never
//! drift from what is installed. What is checked, in the API server's order: nulls of
//! non-nullable fields are pruned, then `type`, `enum`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `pattern`, `format: date-time`, `minItems`/`maxItems`,
//! `required`, list-map and set uniqueness (`x-kubernetes-list-type`), and unknown fields,
//! which the API server rejects under kubectl's default field validation (`--validate=strict`).
//! `metadata` is checked as ObjectMeta: known fields only, and a DNS-1123 subdomain name.
//! The CEL rules (`x-kubernetes-validations`) are checked by the caller with kube's `cel`
//! support (`validate_cel`), after the object has passed this schema.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

/// One place where an object breaks its CRD's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaViolation {
    /// Field path, e.g. `spec.exemptions[2].name`.
    pub path: String,
    pub message: String,
}

/// ObjectMeta fields a client may send (the server rejects others under strict validation).
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The served version's schema of each of our kinds, by kind.
fn schemas() -> &'static BTreeMap<String, JSONSchemaProps> {
    static SCHEMAS: OnceLock<BTreeMap<String, JSONSchemaProps>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        super::crds()
            .into_iter()
            .filter_map(|crd| {
                let kind = crd.spec.names.kind.clone();
                let schema = crd
                    .spec
                    .versions
                    .into_iter()
                    .find(|v| v.name == super::VERSION)?
                    .schema?
                    .open_api_v3_schema?;
                Some((kind, schema))
            })
            .collect()
    })
}

/// Check one object of our kinds (`ImprovementAction`, `SecureScoreTarget`, `SecurityControl`)
/// against its CRD's schema. An unknown kind has no schema here and no violation.
pub fn validate(kind: &str, object: &Value) -> Vec<SchemaViolation> {
    let Some(schema) = schemas().get(kind) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Some(map) = object.as_object() else {
        out.push(violation("", "must be an object"));
        return out;
    };
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => metadata(value, &mut out),
            _ => match schema.properties.as_ref().and_then(|p| p.get(key)) {
                Some(s) => check(s, value, key, &mut out),
                None => out.push(violation(key, "unknown field")),
            },
        }
    }
    if let Some(required) = &schema.required {
        for r in required {
            if map.get(r).is_none_or(Value::is_null) {
                out.push(violation(r, "Required value"));
            }
        }
    }
    out
}

fn violation(path: &str, message: impl Into<String>) -> SchemaViolation {
    SchemaViolation {
        path: if path.is_empty() {
            "<object>".into()
        } else {
            path.to_string()
        },
        message: message.into(),
    }
}

fn metadata(value: &Value, out: &mut Vec<SchemaViolation>) {
    let Some(map) = value.as_object() else {
        out.push(violation("metadata", "must be an object"));
        return;
    };
    for key in map.keys() {
        if !OBJECT_META_FIELDS.contains(&key.as_str()) {
            out.push(violation(&format!("metadata.{key}"), "unknown field"));
        }
    }
    if let Some(name) = map.get("name").and_then(Value::as_str)
        && let Some(problem) = dns_subdomain_problem(name)
    {
        out.push(violation("metadata.name", problem));
    }
}

/// Why a name is not a DNS-1123 subdomain (what the API server requires of custom resources).
fn dns_subdomain_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some(format!(
            "must be no more than 253 characters (is {})",
            name.len()
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.chars().all(ok_char) && ends_ok(name.chars().next()) && ends_ok(name.chars().last()) {
        None
    } else {
        Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into())
    }
}

fn describe(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 40 {
        let mut short: String = text.chars().take(39).collect();
        short.push('…');
        short
    } else {
        text
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn check(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<SchemaViolation>) {
    if value.is_null() {
        // Nulls of non-nullable fields are pruned by the API server (then defaulted).
        return;
    }
    if schema.x_kubernetes_int_or_string == Some(true) {
        if !(value.is_string() || value.as_number().is_some_and(is_integer)) {
            out.push(violation(
                path,
                format!("must be an integer or a string, not {}", type_name(value)),
            ));
        }
        return;
    }
    let typed = match (schema.type_.as_deref(), value) {
        (None, _) => true,
        (Some("object"), Value::Object(_))
        | (Some("array"), Value::Array(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("number"), Value::Number(_)) => true,
        (Some("integer"), Value::Number(n)) => is_integer(n),
        _ => false,
    };
    if !typed {
        out.push(violation(
            path,
            format!(
                "must be of type {}, not {} ({})",
                schema.type_.as_deref().unwrap_or_default(),
                type_name(value),
                describe(value)
            ),
        ));
        return;
    }
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|a| a.0 == *value)
    {
        let names: Vec<String> = allowed.iter().map(|a| describe(&a.0)).collect();
        out.push(violation(
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                describe(value),
                names.join(", ")
            ),
        ));
    }
    match value {
        Value::Number(n) => number(schema, n, path, out),
        Value::String(s) => string(schema, s, path, out),
        Value::Array(items) => array(schema, items, path, out),
        Value::Object(map) => object(schema, map, path, out),
        _ => {}
    }
}

fn number(
    schema: &JSONSchemaProps,
    n: &serde_json::Number,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    let Some(v) = n.as_f64() else { return };
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        if v < min || (exclusive && v == min) {
            out.push(violation(
                path,
                format!(
                    "{n} is below the minimum {min}{}",
                    if exclusive { " (exclusive)" } else { "" }
                ),
            ));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        if v > max || (exclusive && v == max) {
            out.push(violation(
                path,
                format!(
                    "{n} is above the maximum {max}{}",
                    if exclusive { " (exclusive)" } else { "" }
                ),
            ));
        }
    }
}

fn string(schema: &JSONSchemaProps, s: &str, path: &str, out: &mut Vec<SchemaViolation>) {
    // Lengths count characters (Unicode code points), as the API server does.
    let len = s.chars().count() as i64;
    if let Some(max) = schema.max_length
        && len > max
    {
        out.push(violation(
            path,
            format!("Too long: may not be more than {max} characters (is {len})"),
        ));
    }
    if let Some(min) = schema.min_length
        && len < min
    {
        out.push(violation(
            path,
            format!("Too short: must be at least {min} characters (is {len})"),
        ));
    }
    if let Some(pattern) = &schema.pattern {
        match pattern_regex(pattern) {
            Some(re) if !re.is_match(s) => out.push(violation(
                path,
                format!(
                    "{} does not match the pattern {pattern}",
                    describe(&s.into())
                ),
            )),
            Some(_) => {}
            None => out.push(violation(
                path,
                format!("the schema's pattern {pattern} is not a regular expression"),
            )),
        }
    }
    if schema.format.as_deref() == Some("date-time") && s.parse::<jiff::Timestamp>().is_err() {
        out.push(violation(
            path,
            format!(
                "{} is not a date-time (RFC 3339, e.g. 2027-01-31T00:00:00Z)",
                describe(&s.into())
            ),
        ));
    }
}

/// Compiled patterns, shared (a schema has a handful).
fn pattern_regex(pattern: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Option<regex::Regex>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .clone()
}

fn array(schema: &JSONSchemaProps, items: &[Value], path: &str, out: &mut Vec<SchemaViolation>) {
    let len = items.len() as i64;
    if let Some(max) = schema.max_items
        && len > max
    {
        out.push(violation(
            path,
            format!("Too many: {len}: must have at most {max} items"),
        ));
        // Like the API server, do not descend into a list that is too long.
        return;
    }
    if let Some(min) = schema.min_items
        && len < min
    {
        out.push(violation(
            path,
            format!("Too few: {len}: must have at least {min} items"),
        ));
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
        for (i, v) in items.iter().enumerate() {
            check(item, v, &format!("{path}[{i}]"), out);
        }
    }
    match schema.x_kubernetes_list_type.as_deref() {
        Some("map") => {
            let keys = schema
                .x_kubernetes_list_map_keys
                .clone()
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for (i, v) in items.iter().enumerate() {
                let key: Vec<String> = keys
                    .iter()
                    .map(|k| v.get(k).map(|x| x.to_string()).unwrap_or_default())
                    .collect();
                if !seen.insert(key) {
                    let shown: Vec<String> = keys
                        .iter()
                        .map(|k| format!("{k}={}", v.get(k).map(describe).unwrap_or_default()))
                        .collect();
                    out.push(violation(
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {}", shown.join(", ")),
                    ));
                }
            }
        }
        Some("set") => {
            let mut seen = HashSet::new();
            for (i, v) in items.iter().enumerate() {
                if !seen.insert(v.to_string()) {
                    out.push(violation(
                        &format!("{path}[{i}]"),
                        format!("Duplicate value: {}", describe(v)),
                    ));
                }
            }
        }
        _ => {}
    }
}

fn object(
    schema: &JSONSchemaProps,
    map: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    let extra = match &schema.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_ref()),
        _ => None,
    };
    let extra_allowed = matches!(
        schema.additional_properties,
        Some(JSONSchemaPropsOrBool::Bool(true))
    );
    for (key, value) in map {
        let at = format!("{path}.{key}");
        match schema.properties.as_ref().and_then(|p| p.get(key)) {
            Some(s) => check(s, value, &at, out),
            None => match extra {
                Some(s) => check(s, value, &at, out),
                None if preserve || extra_allowed => {}
                None if schema.properties.is_none() && schema.type_.is_none() => {}
                None => out.push(violation(&at, "unknown field")),
            },
        }
    }
    if let Some(max) = schema.max_properties
        && map.len() as i64 > max
    {
        out.push(violation(
            path,
            format!(
                "Too many: {}: must have at most {max} properties",
                map.len()
            ),
        ));
    }
    if let Some(required) = &schema.required {
        for r in required {
            if map.get(r).is_none_or(Value::is_null) {
                out.push(violation(&format!("{path}.{r}"), "Required value"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(spec: Value) -> Value {
        json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
               "metadata": {"name": "t", "namespace": "team"}, "spec": spec})
    }

    fn paths(v: &[SchemaViolation]) -> Vec<String> {
        v.iter().map(|v| v.path.clone()).collect()
    }

    #[test]
    fn a_valid_target_has_no_violation() {
        let v = validate(
            "SecureScoreTarget",
            &target(json!({"goal": 80, "interval": "10m"})),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn pattern_enum_unknown_fields_and_format_are_enforced() {
        let v = validate(
            "SecureScoreTarget",
            &target(json!({"interval": "forever", "colour": "red",
                "exemptions": [{"name": "a", "action": "x", "resolution": "Maybe",
                    "owner": "o", "reason": "r", "approvedAt": "2027-02-30T00:00:00Z",
                    "openEnded": true}]})),
        );
        let got = paths(&v);
        assert!(got.contains(&"spec.interval".to_string()), "{v:?}");
        assert!(got.contains(&"spec.colour".to_string()), "{v:?}");
        assert!(
            got.contains(&"spec.exemptions[0].resolution".to_string()),
            "{v:?}"
        );
        assert!(
            got.contains(&"spec.exemptions[0].approvedAt".to_string()),
            "{v:?}"
        );
    }

    #[test]
    fn duplicate_list_map_keys_are_rejected() {
        let e = json!({"name": "same", "action": "x", "resolution": "RiskAccepted",
            "owner": "o", "reason": "r", "approvedAt": "2026-01-01T00:00:00Z", "openEnded": true});
        let v = validate(
            "SecureScoreTarget",
            &target(json!({"exemptions": [e.clone(), e]})),
        );
        assert_eq!(paths(&v), ["spec.exemptions[1]"], "{v:?}");
        assert!(v[0].message.starts_with("Duplicate value"), "{v:?}");
    }

    /// Every field of both CRDs is described (it is `kubectl explain` text), status included.
    #[test]
    fn every_crd_field_has_a_description() {
        fn walk(s: &JSONSchemaProps, path: &str, missing: &mut Vec<String>) {
            for (name, p) in s.properties.iter().flatten() {
                let at = format!("{path}.{name}");
                if p.description.as_deref().is_none_or(str::is_empty) {
                    missing.push(at.clone());
                }
                walk(p, &at, missing);
            }
            if let Some(JSONSchemaPropsOrArray::Schema(items)) = &s.items {
                walk(items, &format!("{path}[]"), missing);
            }
            if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &s.additional_properties {
                walk(extra, &format!("{path}{{}}"), missing);
            }
        }
        let mut missing = Vec::new();
        for (kind, schema) in schemas() {
            walk(schema, kind, &mut missing);
        }
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:#?}"
        );
    }

    #[test]
    fn security_controls_are_held_to_their_whole_schema() {
        let control = |spec: Value| {
            json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecurityControl",
                   "metadata": {"name": "c"}, "spec": spec})
        };
        let ok = validate(
            "SecurityControl",
            &control(json!({"title": "Restrict", "maxScore": 8, "actions": ["a"]})),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let v = validate(
            "SecurityControl",
            &control(json!({"title": "", "maxScore": 0, "actions": [""], "weight": 3})),
        );
        assert_eq!(
            paths(&v),
            [
                "spec.actions[0]",
                "spec.maxScore",
                "spec.title",
                "spec.weight"
            ],
            "{v:?}"
        );
        let missing = validate("SecurityControl", &control(json!({"actions": ["a"]})));
        assert_eq!(
            paths(&missing),
            ["spec.maxScore", "spec.title"],
            "{missing:?}"
        );
    }

    #[test]
    fn metadata_is_object_meta() {
        let mut t = target(json!({}));
        t["metadata"]["name"] = json!("Not_A_Name");
        t["metadata"]["nmespace"] = json!("typo");
        let v = validate("SecureScoreTarget", &t);
        assert_eq!(paths(&v), ["metadata.nmespace", "metadata.name"], "{v:?}");
    }
}
