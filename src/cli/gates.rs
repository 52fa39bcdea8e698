//! The exit-code gates of `securescore scan` for pull requests: `--min-score`,
//! `--fail-below-goal` (each target's own `spec.goal`) and `--baseline` (an earlier
//! `--format json` output: a score that dropped, or findings that appeared).

use super::output::{Scored, table::goal_met, target_name};
use crate::api::SecureScoreTargetStatus;
use std::collections::BTreeSet;
use std::path::Path;

/// Why a baseline file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("--baseline {file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("--baseline {file}: not a `securescore scan --format json` output: {message}")]
    Shape { file: String, message: String },
}

/// A target of an earlier scan: its name and status.
pub struct BaselineTarget {
    pub name: String,
    pub status: SecureScoreTargetStatus,
}

/// Read an earlier `--format json` output (a SecureScoreTargetList).
pub fn read_baseline(path: &Path) -> Result<Vec<BaselineTarget>, BaselineError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| BaselineError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    let shape = |message: String| BaselineError::Shape {
        file: file.clone(),
        message,
    };
    let list: serde_json::Value = serde_json::from_str(&text).map_err(|e| shape(e.to_string()))?;
    let items = list["items"]
        .as_array()
        .ok_or_else(|| shape("no `items` list".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = format!(
                "{}/{}",
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            );
            let status = serde_path_to_error::deserialize(item["status"].clone())
                .map_err(|e| shape(format!("items[{i}].status.{}: {}", e.path(), e.inner())))?;
            Ok(BaselineTarget { name, status })
        })
        .collect()
}

/// What the gates found: one line per failure, already readable.
pub fn failures(
    scored: &[Scored],
    min_score: Option<f64>,
    fail_below_goal: bool,
    baseline: Option<&[BaselineTarget]>,
) -> Vec<String> {
    let mut out = Vec::new();
    for s in scored {
        let name = target_name(&s.target);
        let status = &s.evaluation.status;
        if let Some(min) = min_score {
            match status.percentage {
                Some(p) if p >= min => {}
                Some(p) => out.push(format!("{name}: {p:.2}% is below --min-score {min}")),
                None => out.push(format!(
                    "{name}: nothing to evaluate (no percentage), --min-score {min} is not met"
                )),
            }
        }
        if fail_below_goal && goal_met(s) == Some(false) {
            out.push(format!(
                "{name}: {} misses its goal {}% (--fail-below-goal)",
                status
                    .percentage
                    .map_or("nothing to evaluate".to_string(), |p| format!("{p:.2}%")),
                s.target.spec.goal.unwrap_or_default()
            ));
        }
        if let Some(before) = baseline.and_then(|b| b.iter().find(|t| t.name == name)) {
            out.extend(regressions(&name, &before.status, status));
        }
    }
    out
}

/// (action, apiVersion, kind, namespace, name) of each sample finding.
type FindingKey = (String, String, String, String, String);

fn finding_keys(status: &SecureScoreTargetStatus) -> BTreeSet<FindingKey> {
    status
        .actions
        .iter()
        .flat_map(|a| {
            a.findings.iter().map(|f| {
                (
                    a.name.clone(),
                    f.api_version.clone(),
                    f.kind.clone(),
                    f.namespace.clone().unwrap_or_default(),
                    f.name.clone(),
                )
            })
        })
        .collect()
}

/// A dropped score, findings not in the baseline, and actions with more non-compliant
/// resources than before (findings beyond the status' samples are caught by the count).
fn regressions(
    name: &str,
    before: &SecureScoreTargetStatus,
    now: &SecureScoreTargetStatus,
) -> Vec<String> {
    let mut out = Vec::new();
    let (was, is) = (before.score.unwrap_or(0.0), now.score.unwrap_or(0.0));
    if is + 0.005 < was {
        out.push(format!(
            "{name}: score dropped from {was:.2} to {is:.2} (--baseline)"
        ));
    }
    let old = finding_keys(before);
    for (action, api_version, kind, namespace, object) in finding_keys(now).difference(&old) {
        let at = if namespace.is_empty() {
            object.clone()
        } else {
            format!("{namespace}/{object}")
        };
        out.push(format!(
            "{name}: new finding: {action}: {kind} {at} ({api_version}) (--baseline)"
        ));
    }
    for a in &now.actions {
        let was = before
            .actions
            .iter()
            .find(|b| b.name == a.name)
            .map_or(0, |b| b.non_compliant);
        if a.non_compliant > was {
            out.push(format!(
                "{name}: {}: {} non-compliant resources, {was} in the baseline (--baseline)",
                a.name, a.non_compliant
            ));
        }
    }
    out
}
