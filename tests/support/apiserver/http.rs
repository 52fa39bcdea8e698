//! HTTP: routing of Kubernetes API paths, discovery, OpenAPI stubs, tables, watches.

use super::Shared;
use super::patch::{self, Section};
use super::resources::ResourceDef;
use super::select::{FieldSelector, LabelSelector};
use super::store::{ApiError, ListOptions, RequestRecord, State, meta_str, now};
use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

fn json_response(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// A parsed resource URL.
struct Target {
    res: ResourceDef,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Resource(Box<Target>),
    Json(Value),
    NotFound,
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
    )
}

fn discovery_list(state: &State, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = state
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| r.discovery_entries())
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources }),
    )
}

fn api_group(state: &State, group: &str) -> Option<Value> {
    let mut versions: Vec<String> = Vec::new();
    for r in state.resources.iter().filter(|r| r.group == group) {
        if !versions.contains(&r.version) {
            versions.push(r.version.clone());
        }
    }
    let first = versions.first()?.clone();
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    Some(json!({
        "name": group,
        "versions": vs,
        "preferredVersion": { "groupVersion": format!("{group}/{first}"), "version": first },
    }))
}

/// A minimal OpenAPI v3 document of a group/version: for each resource its item path with a
/// PATCH operation tagged with x-kubernetes-group-version-kind and the `fieldValidation`
/// parameter, which is what kubectl looks for before using server-side field validation.
/// No schemas: clients must not rely on it for client-side validation or `kubectl explain`.
fn openapi_v3_gv(state: &State, group: &str, version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for r in state
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let item = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let gvk = json!({ "group": group, "version": version, "kind": r.kind });
        let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]
            .iter()
            .map(|p| json!({ "name": p, "in": "query", "schema": { "type": "string", "uniqueItems": true } }))
            .collect();
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": { "200": { "description": "OK" } },
            })
        };
        paths.insert(item, json!({ "get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete") }));
    }
    json!({ "openapi": "3.0.0", "info": { "title": "Kubernetes", "version": "v1.34.0" }, "paths": paths, "components": { "schemas": {} } })
}

fn route(state: &State, path: &str, host: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let json = |v: Value| Ok(Route::Json(v));
    let (group, version, rest) = match segs.as_slice() {
        [] => {
            return json(
                json!({ "paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version", "/healthz"] }),
            );
        }
        ["version"] => {
            return json(json!({
                "major": "1", "minor": "34", "gitVersion": "v1.34.0-securescore-emulation",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
            }));
        }
        ["healthz"] | ["readyz"] | ["livez"] => return json(json!("ok")),
        ["openapi", "v2"] => {
            return json(
                json!({ "swagger": "2.0", "info": { "title": "Kubernetes", "version": "v1.34.0" }, "paths": {}, "definitions": {} }),
            );
        }
        ["openapi", "v3"] => {
            let mut paths = serde_json::Map::new();
            for r in &state.resources {
                let key = if r.group.is_empty() {
                    format!("api/{}", r.version)
                } else {
                    format!("apis/{}/{}", r.group, r.version)
                };
                paths.insert(
                    key.clone(),
                    json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", state.rv) }),
                );
            }
            return json(json!({ "paths": paths }));
        }
        ["openapi", "v3", "api", v] => return json(openapi_v3_gv(state, "", v)),
        ["openapi", "v3", "apis", g, v] => return json(openapi_v3_gv(state, g, v)),
        ["api"] => {
            return json(json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": host }],
            }));
        }
        ["apis"] => {
            let mut groups: Vec<String> = Vec::new();
            for r in state.resources.iter().filter(|r| !r.group.is_empty()) {
                if !groups.contains(&r.group) {
                    groups.push(r.group.clone());
                }
            }
            let list: Vec<Value> = groups.iter().filter_map(|g| api_group(state, g)).collect();
            return json(json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": list }));
        }
        ["api", "v1"] => {
            return discovery_list(state, "", "v1")
                .map(Route::Json)
                .ok_or_else(|| not_found_path(path));
        }
        ["apis", g] => {
            return api_group(state, g)
                .map(|mut v| {
                    v["kind"] = json!("APIGroup");
                    v["apiVersion"] = json!("v1");
                    Route::Json(v)
                })
                .ok_or_else(|| not_found_path(path));
        }
        ["apis", g, v] => {
            return discovery_list(state, g, v)
                .map(Route::Json)
                .ok_or_else(|| not_found_path(path));
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(Route::NotFound),
    };
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] => {
            ("", "namespaces", Some(*ns), Some(*sub))
        }
        ["namespaces", ns, plural] => (*ns, *plural, None, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (*ns, *plural, Some(*name), Some(*sub)),
        [plural] => ("", *plural, None, None),
        [plural, name] => ("", *plural, Some(*name), None),
        [plural, name, sub] => ("", *plural, Some(*name), Some(*sub)),
        _ => return Ok(Route::NotFound),
    };
    let Some(res) = state.resource(group, version, plural) else {
        return Ok(Route::NotFound);
    };
    if !namespace.is_empty() && !res.namespaced && (plural != "namespaces") {
        return Ok(Route::NotFound);
    }
    if let Some(s) = sub {
        let ok = (s == "status" && res.status_subresource)
            || (s == "finalize" && plural == "namespaces");
        if !ok {
            return Ok(Route::NotFound);
        }
    }
    Ok(Route::Resource(Box::new(Target {
        res,
        namespace: namespace.to_string(),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    })))
}

fn parse_body(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
            ),
        ));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    if content_type.contains("yaml") {
        return serde_yaml_ng::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    Err(ApiError::bad_request(format!(
        "the request body is not valid JSON (content type {content_type:?})"
    )))
}

fn list_options(q: &HashMap<String, String>, res: &ResourceDef) -> Result<ListOptions, ApiError> {
    let options = ListOptions {
        label_selector: q
            .get("labelSelector")
            .filter(|s| !s.is_empty())
            .map(|s| LabelSelector::parse(s))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?,
        field_selector: q
            .get("fieldSelector")
            .filter(|s| !s.is_empty())
            .map(|s| FieldSelector::parse(s))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?,
        limit: q
            .get("limit")
            .map(|l| {
                l.parse::<usize>()
                    .map_err(|_| ApiError::bad_request(format!("invalid limit {l}")))
            })
            .transpose()?,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    };
    if let Some(selector) = &options.field_selector {
        selector
            .check_supported(&res.group, &res.plural, res.custom)
            .map_err(ApiError::bad_request)?;
    }
    Ok(options)
}

fn age(ts: Option<&str>) -> String {
    let Some(created) = ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Evaluates the simple `.a.b.c` JSONPaths of printer columns (others print empty).
fn simple_jsonpath(obj: &Value, path: &str) -> Value {
    if path.contains('[') {
        return json!("");
    }
    let mut cur = obj;
    for seg in path.trim_start_matches('.').split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return json!(""),
        }
    }
    match cur {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => cur.clone(),
        other => json!(other.to_string()),
    }
}

/// The `meta.k8s.io/v1 Table` kubectl asks for (`Accept: ...;as=Table`).
fn to_table(res: &ResourceDef, items: &[Value], list_meta: Value) -> Value {
    let mut cols = vec![
        json!({ "name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0 }),
    ];
    for (n, _) in &res.printer_columns {
        cols.push(
            json!({ "name": n, "type": "string", "format": "", "description": n, "priority": 0 }),
        );
    }
    cols.push(json!({ "name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0 }));
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![json!(meta_str(o, "name").unwrap_or_default())];
            for (_, p) in &res.printer_columns {
                cells.push(simple_jsonpath(o, p));
            }
            cells.push(json!(age(meta_str(o, "creationTimestamp"))));
            json!({ "cells": cells, "object": o })
        })
        .collect();
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": cols, "rows": rows })
}

fn verb_of(method: &str, t: &Target, q: &HashMap<String, String>) -> &'static str {
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method, t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unsupported",
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header("content-type");
    let user_agent = header("user-agent");
    let accept = header("accept");
    let host = header("host");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (verb, resp) = dispatch(
        &shared,
        &method,
        &path,
        &q,
        &content_type,
        &user_agent,
        &accept,
        &host,
        &body,
    );
    let status = resp.status().as_u16();
    if let Ok(mut st) = shared.state.lock() {
        st.log.push(RequestRecord {
            method,
            path,
            query,
            verb,
            content_type,
            user_agent,
            status,
        });
    }
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    q: &HashMap<String, String>,
    content_type: &str,
    user_agent: &str,
    accept: &str,
    host: &str,
    body: &[u8],
) -> (String, Response<Body>) {
    let Ok(mut st) = shared.state.lock() else {
        return (
            String::new(),
            error_response(&ApiError::new(500, "InternalError", "store lock poisoned")),
        );
    };
    let t = match route(&st, path, host) {
        Ok(Route::Json(v)) => return (String::new(), json_response(200, &v)),
        Ok(Route::NotFound) => return (String::new(), error_response(&not_found_path(path))),
        Err(e) => return (String::new(), error_response(&e)),
        Ok(Route::Resource(t)) => t,
    };
    let verb = verb_of(method, &t, q);
    if verb == "unsupported" {
        return (
            verb.into(),
            error_response(&ApiError::new(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported on {path}"),
            )),
        );
    }
    if let Some(e) = st.denied(verb, &t.res, &t.namespace) {
        return (verb.into(), error_response(&e));
    }
    if let Some(e) = st.take_fault(verb, &t.res.plural, t.subresource.as_deref()) {
        if verb == "watch" && e.code == 410 {
            // The real server reports an expired watch as an ERROR event on a 200 stream.
            let line = json!({ "type": "ERROR", "object": e.to_status() });
            return (
                verb.into(),
                stream_response(vec![line], None, shared, Duration::ZERO),
            );
        }
        return (verb.into(), error_response(&e));
    }
    let section = match (t.subresource.as_deref(), t.res.status_subresource) {
        (Some("status"), _) => Section::StatusOnly,
        (_, true) => Section::NoStatus,
        _ => Section::All,
    };
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        let ua = user_agent.split('/').next().unwrap_or_default();
        if ua.is_empty() {
            "unknown".to_string()
        } else {
            ua.to_string()
        }
    });
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let ns = t.namespace.clone();
    let name = t.name.clone().unwrap_or_default();
    let res = t.res.clone();
    let parsed = || parse_body(body, content_type);
    let result: Result<(u16, Value), ApiError> = (|| match verb {
        "get" => st.get(&res, &ns, &name).map(|o| (200, o)),
        "list" => {
            let opts = list_options(q, &res)?;
            st.list(&res, &ns, &opts).map(|l| (200, l))
        }
        "create" => st
            .create(&res, &ns, parsed()?, &manager, dry_run)
            .map(|o| (201, o)),
        "update" => st
            .replace(&res, &ns, &name, parsed()?, section, &manager, dry_run)
            .map(|o| (200, o)),
        "patch" => patch_object(
            &mut st,
            &res,
            &ns,
            &name,
            content_type,
            body,
            section,
            &manager,
            q,
            dry_run,
        ),
        "delete" => {
            let opts = parse_body(body, "application/json").unwrap_or(Value::Null);
            let pre = opts
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            st.delete(&res, &ns, &name, pre.as_deref(), dry_run)
                .map(|o| (200, o))
        }
        "deletecollection" => {
            let opts = list_options(q, &res)?;
            let list = st.list(
                &res,
                &ns,
                &ListOptions {
                    limit: None,
                    continue_token: None,
                    ..opts
                },
            )?;
            let mut deleted = Vec::new();
            for o in list["items"].as_array().cloned().unwrap_or_default() {
                let (ons, oname) = (
                    meta_str(&o, "namespace").unwrap_or_default(),
                    meta_str(&o, "name").unwrap_or_default(),
                );
                deleted.push(st.delete(&res, ons, oname, None, dry_run)?);
            }
            Ok((
                200,
                json!({ "kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": { "resourceVersion": st.rv.to_string() }, "items": deleted }),
            ))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", "unsupported")),
    })();
    if verb == "watch" {
        let opts = match list_options(q, &res) {
            Ok(o) => o,
            Err(e) => return (verb.into(), error_response(&e)),
        };
        let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        return match st.watch_start(&res, &ns, &opts, send_initial) {
            Err(e) if e.code == 410 => {
                let line = json!({ "type": "ERROR", "object": e.to_status() });
                (
                    verb.into(),
                    stream_response(vec![line], None, shared, Duration::ZERO),
                )
            }
            Err(e) => (verb.into(), error_response(&e)),
            Ok((initial, from_rv, rx)) => {
                let mut lines: Vec<Value> = initial
                    .into_iter()
                    .map(|(ty, o)| json!({ "type": ty, "object": o }))
                    .collect();
                if send_initial && bookmarks {
                    lines.push(json!({ "type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version(),
                        "metadata": { "resourceVersion": from_rv.to_string(), "annotations": { "k8s.io/initial-events-end": "true" } },
                    }}));
                }
                let live = LiveWatch {
                    rx,
                    from_rv,
                    res: res.clone(),
                    namespace: ns.clone(),
                    opts,
                    bookmarks,
                    timeout,
                };
                drop(st);
                let interval = shared.bookmark_interval;
                (
                    verb.into(),
                    stream_response(lines, Some(live), shared, interval),
                )
            }
        };
    }
    match result {
        Ok((code, v)) => {
            let wants_table = accept.contains("as=Table") && (verb == "get" || verb == "list");
            if wants_table {
                let (items, meta) = if verb == "list" {
                    (
                        v["items"].as_array().cloned().unwrap_or_default(),
                        v["metadata"].clone(),
                    )
                } else {
                    (
                        vec![v.clone()],
                        json!({ "resourceVersion": v.pointer("/metadata/resourceVersion") }),
                    )
                };
                (
                    verb.into(),
                    json_response(code, &to_table(&res, &items, meta)),
                )
            } else {
                (verb.into(), json_response(code, &v))
            }
        }
        Err(e) => (verb.into(), error_response(&e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn patch_object(
    st: &mut State,
    res: &ResourceDef,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    section: Section,
    manager: &str,
    q: &HashMap<String, String>,
    dry_run: bool,
) -> Result<(u16, Value), ApiError> {
    let ctype = content_type.split(';').next().unwrap_or_default().trim();
    let p = parse_body(body, content_type)?;
    match ctype {
        "application/apply-patch+yaml" => {
            let Some(fm) = q.get("fieldManager").filter(|f| !f.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            };
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "the apply configuration must be an object",
                ));
            }
            if let Some(n) = meta_str(&p, "name").filter(|n| *n != name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            let av = p
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = p.get("kind").and_then(Value::as_str).unwrap_or_default();
            if av != res.api_version() || kind != res.kind {
                return Err(ApiError::bad_request(format!(
                    "apply configuration has apiVersion {av:?} kind {kind:?}, expected {} {}",
                    res.api_version(),
                    res.kind
                )));
            }
            let force = q.get("force").is_some_and(|f| f == "true");
            let existing = st.get(res, ns, name).ok();
            let base = existing
                .clone()
                .unwrap_or_else(|| json!({ "metadata": {} }));
            let applied = patch::apply(&base, &p, fm, force, section, &res.api_version(), &now()).map_err(|conflicts| {
                let list: Vec<String> = conflicts
                    .iter()
                    .map(|c| format!("conflict with \"{}\": .{}", c.manager, c.path.join(".")))
                    .collect();
                let mut e = ApiError::new(
                    409,
                    "Conflict",
                    format!("Apply failed with {} conflict{}: {}", list.len(), if list.len() == 1 { "" } else { "s" }, list.join("\n")),
                )
                .with_details(res, name);
                if let Some(d) = e.details.as_mut() {
                    d["causes"] = json!(conflicts
                        .iter()
                        .map(|c| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": format!(".{}", c.path.join(".")) }))
                        .collect::<Vec<_>>());
                }
                e
            })?;
            match existing {
                Some(old) => {
                    let mut new = applied;
                    if let Some(rv) = meta_str(&p, "resourceVersion") {
                        new["metadata"]["resourceVersion"] = json!(rv);
                    } else if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove("resourceVersion");
                    }
                    st.write_existing(res, &old, new, section, fm, true, dry_run)
                        .map(|o| (200, o))
                }
                None => {
                    if section == Section::StatusOnly {
                        return Err(ApiError::not_found(res, name));
                    }
                    let mut new = applied;
                    new["apiVersion"] = json!(res.api_version());
                    new["kind"] = json!(res.kind);
                    new["metadata"]["name"] = json!(name);
                    let mf = new.pointer("/metadata/managedFields").cloned();
                    let mut created = st.create(res, ns, new.clone(), fm, true)?;
                    if let Some(mf) = mf {
                        created["metadata"]["managedFields"] = mf;
                    }
                    if dry_run {
                        return Ok((201, created));
                    }
                    let created = st.create_raw(res, created);
                    Ok((201, created))
                }
            }
        }
        "application/merge-patch+json"
        | "application/json-patch+json"
        | "application/strategic-merge-patch+json" => {
            if ctype == "application/strategic-merge-patch+json" && res.custom {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string(),
                ));
            }
            let old = st.get(res, ns, name)?;
            let mut new = old.clone();
            match ctype {
                "application/merge-patch+json" => json_patch::merge(&mut new, &p),
                "application/strategic-merge-patch+json" => patch::strategic_merge(&mut new, &p),
                _ => {
                    let ops: json_patch::Patch = serde_json::from_value(p)
                        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                    json_patch::patch(&mut new, &ops.0).map_err(|e| {
                        ApiError::new(
                            422,
                            "Invalid",
                            format!("the JSON patch could not be applied: {e}"),
                        )
                    })?;
                }
            }
            // A resourceVersion in the patch is a precondition; otherwise the patch is unconditional.
            let patched_rv = meta_str(&new, "resourceVersion").map(str::to_string);
            if patched_rv.as_deref() == meta_str(&old, "resourceVersion")
                && let Some(m) = new["metadata"].as_object_mut()
            {
                m.remove("resourceVersion");
            }
            st.write_existing(res, &old, new, section, manager, false, dry_run)
                .map(|o| (200, o))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
            ),
        )),
    }
}

/// The live part of a watch.
struct LiveWatch {
    rx: tokio::sync::broadcast::Receiver<Arc<super::store::Change>>,
    from_rv: u64,
    res: ResourceDef,
    namespace: String,
    opts: ListOptions,
    bookmarks: bool,
    timeout: Option<Duration>,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// A chunked JSON-lines response: `initial` lines, then live changes until the timeout, the
/// client going away or the server stopping.
fn stream_response(
    initial: Vec<Value>,
    live: Option<LiveWatch>,
    shared: &Arc<Shared>,
    bookmark_every: Duration,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut shutdown = shared.shutdown_rx();
    tokio::spawn(async move {
        for v in &initial {
            if tx.send(Ok(line(v))).await.is_err() {
                return;
            }
        }
        let Some(mut live) = live else { return };
        let deadline = tokio::time::sleep(live.timeout.unwrap_or(Duration::from_secs(1800)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(if bookmark_every.is_zero() {
            Duration::from_secs(3600)
        } else {
            bookmark_every
        });
        ticker.tick().await;
        let mut last_rv = live.from_rv;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {
                    if live.bookmarks && !bookmark_every.is_zero() {
                        let bm = json!({ "type": "BOOKMARK", "object": {
                            "kind": live.res.kind, "apiVersion": live.res.api_version(),
                            "metadata": { "resourceVersion": last_rv.to_string() } } });
                        if tx.send(Ok(line(&bm))).await.is_err() { return; }
                    }
                }
                msg = live.rx.recv() => match msg {
                    Ok(c) => {
                        if c.rv <= live.from_rv { continue; }
                        last_rv = c.rv;
                        if c.group != live.res.group || c.plural != live.res.plural { continue; }
                        if !live.namespace.is_empty() && c.namespace != live.namespace { continue; }
                        if let Some((ty, obj)) = State::filter_change(&c, &live.opts)
                            && tx.send(Ok(line(&json!({ "type": ty, "object": obj })))).await.is_err() { return; }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone("too old resource version: the watch fell behind");
                        let _ = tx.send(Ok(line(&json!({ "type": "ERROR", "object": e.to_status() })))).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
