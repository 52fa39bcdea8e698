//! `--format sarif`: SARIF 2.1.0 for code-scanning tools. One rule per evaluated action, one
//! result per non-compliant (or failing) resource and target; resources whose finding a
//! declared resolution accepts or mitigates are emitted with an external suppression, so a
//! code-scanning UI shows them as dismissed with the GitOps justification.

use super::{Scored, target_name};
use crate::api::ResolutionState;
use crate::engine::{CompiledAction, Source, Verdict};
use crate::inventory::files::STDIN_NAME;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// Actions worth this many points or more are reported as `error`, the rest as `warning`.
const ERROR_FROM_POINTS: u32 = 7;

pub fn render(
    scored: &[Scored],
    _known: &[Arc<CompiledAction>],
) -> Result<String, serde_json::Error> {
    // Rules: every action some target evaluated, by name.
    let mut evaluated: BTreeMap<&str, &CompiledAction> = BTreeMap::new();
    for s in scored {
        for o in &s.evaluation.actions {
            evaluated.insert(&o.action.name, &o.action);
        }
    }
    let index: BTreeMap<&str, usize> = evaluated
        .keys()
        .enumerate()
        .map(|(i, name)| (*name, i))
        .collect();
    let rules: Vec<Value> = evaluated.values().map(|a| rule(a)).collect();

    let mut results = Vec::new();
    for s in scored {
        let target = target_name(&s.target);
        for o in &s.evaluation.actions {
            let a = &o.action;
            for r in o.results.iter().filter(|r| !r.verdict.is_compliant()) {
                let message = match &r.verdict {
                    Verdict::NonCompliant { message } => message.clone(),
                    Verdict::Error { message } => format!("evaluation error: {message}"),
                    Verdict::Compliant => continue,
                };
                let resource = r.resource.display();
                let mut result = json!({
                    "ruleId": a.name,
                    "ruleIndex": index.get(a.name.as_str()).copied().unwrap_or(0),
                    "level": if a.spec.max_score >= ERROR_FROM_POINTS { "error" } else { "warning" },
                    "message": {"text": format!("{resource}: {message}")},
                    "locations": [location(&r.resource, super::finding_source(s, o, r))],
                    "properties": {
                        "target": target,
                        "resource": resource,
                        "actionState": o.state.as_str(),
                    },
                });
                match &r.resolution {
                    Some((ResolutionState::Planned, by)) => {
                        result["properties"]["resolution"] = "Planned".into();
                        if let Some(by) = by {
                            result["properties"]["exemption"] = by.as_str().into();
                        }
                    }
                    Some((state, by)) => {
                        let who = match by {
                            Some(name) => format!("exemption {name} of target {target}"),
                            None => format!("spec.resolution of ImprovementAction {}", a.name),
                        };
                        result["suppressions"] = json!([{
                            "kind": "external",
                            "status": "accepted",
                            "justification": format!("{} declared by {who}", state.as_str()),
                        }]);
                        result["properties"]["resolution"] = state.as_str().into();
                    }
                    None => {}
                }
                results.push(result);
            }
        }
    }

    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "securescore",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log)?;
    text.push('\n');
    Ok(text)
}

fn rule(a: &CompiledAction) -> Value {
    let s = &a.spec;
    let threats: Vec<Value> = s
        .threats
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect();
    let mut tags = vec![Value::from("security"), Value::from(s.category.as_str())];
    tags.extend(threats.iter().cloned());
    let mut rule = json!({
        "id": a.name,
        "name": a.name,
        "shortDescription": {"text": s.title},
        "fullDescription": {"text": if s.description.is_empty() { s.title.as_str() } else { s.description.trim_end() }},
        "help": {"text": s.remediation.trim_end(), "markdown": s.remediation.trim_end()},
        "defaultConfiguration": {"level": if s.max_score >= ERROR_FROM_POINTS { "error" } else { "warning" }},
        "properties": {
            "category": s.category.as_str(),
            "maxScore": s.max_score,
            "threats": threats,
            "tags": tags,
            // GitHub code scanning ranks alerts by this (0-10).
            "security-severity": format!("{:.1}", f64::from(s.max_score.min(10))),
            "preview": s.preview,
        },
    });
    if let Some(url) = s.references.first().map(|r| r.url.clone()) {
        rule["helpUri"] = url.into();
    }
    rule
}

/// The resource's file and line (a physical location) and its identity (a logical one).
fn location(resource: &crate::engine::Resource, source: Option<&Source>) -> Value {
    let logical = json!([{
        "fullyQualifiedName": match &resource.namespace {
            Some(ns) => format!("{ns}/{}/{}", resource.kind, resource.name),
            None => format!("{}/{}", resource.kind, resource.name),
        },
        "kind": "resource",
    }]);
    match source.filter(|s| s.file != STDIN_NAME) {
        Some(s) => {
            let mut physical = json!({"artifactLocation": {"uri": relative_uri(&s.file)}});
            if let Some(line) = s.line {
                physical["region"] = json!({"startLine": line});
            }
            json!({"physicalLocation": physical, "logicalLocations": logical})
        }
        None => json!({"logicalLocations": logical}),
    }
}

/// A file as a relative URI reference: relative to the working directory when possible,
/// forward slashes, spaces and `%` escaped.
fn relative_uri(file: &str) -> String {
    let path = std::path::Path::new(file);
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.to_path_buf()))
        .unwrap_or_else(|| path.to_path_buf());
    let text = relative.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text).to_string();
    // Each path segment percent-encoded as RFC 3986 requires (controls, spaces, `%`, `#`, `?`,
    // non-ASCII...), so that no file name can break or redirect the URI.
    text.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, URI_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Bytes escaped in a URI path segment: everything but RFC 3986 unreserved characters and
/// the sub-delimiters that are harmless in a path.
const URI_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'=')
    .remove(b'@')
    .remove(b',');
