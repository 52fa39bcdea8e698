//! Renderers of a scan: `table` for people, `json` (a SecureScoreTargetList, as the operator
//! would write it), `sarif` (2.1.0, for code-scanning tools), `prometheus` (the operator's series).

mod frameworks;
mod html;
mod json;
mod prometheus;
mod sarif;
pub mod table;

use crate::api::SecureScoreTarget;
use crate::engine::{CompiledAction, Source, TargetEvaluation};
use std::sync::Arc;

/// Output format of `securescore scan`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Score, categories, ranked actions and top findings, for people.
    Table,
    /// A SecureScoreTargetList: each target with metadata, spec and the status the operator
    /// would write.
    Json,
    /// SARIF 2.1.0: one rule per action, one result per non-compliant resource.
    Sarif,
    /// The operator's per-target series (securescore_*), in the Prometheus text format: for the
    /// node-exporter textfile collector or a Pushgateway.
    Prometheus,
    /// One self-contained HTML page (no script, no external asset) for CI artefacts: score,
    /// categories, ranked actions with remediation, findings with file:line, exemptions.
    Html,
}

/// One target and its evaluation.
pub struct Scored {
    pub target: SecureScoreTarget,
    /// Where the target was declared (None: the implicit target).
    pub source: Option<Source>,
    pub evaluation: TargetEvaluation,
    /// Namespaces in the target's scope that the input implies but does not declare: used for
    /// scope and lookups, not judged.
    pub implied_namespaces: Vec<String>,
}

/// `namespace/name` of a target.
/// Where a finding was declared: its resource's file, or for a task (whose one resource is the
/// target itself) the target's.
pub fn finding_source<'a>(
    s: &'a Scored,
    o: &crate::engine::ActionOutcome,
    r: &'a crate::engine::ResourceResult,
) -> Option<&'a Source> {
    r.resource
        .source
        .as_ref()
        .or_else(|| o.attestation.as_ref().and(s.source.as_ref()))
}

pub fn target_name(t: &SecureScoreTarget) -> String {
    format!(
        "{}/{}",
        t.metadata.namespace.as_deref().unwrap_or_default(),
        t.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Render the scan in one format. `actions` are every action known to the scan.
pub fn render(
    format: Format,
    scored: &[Scored],
    actions: &[Arc<CompiledAction>],
) -> Result<String, serde_json::Error> {
    match format {
        Format::Table => Ok(table::render(scored, actions, table::Style::detect())),
        Format::Json => json::render(scored),
        Format::Sarif => sarif::render(scored, actions),
        Format::Prometheus => Ok(prometheus::render(scored)),
        Format::Html => Ok(html::render(scored, actions)),
    }
}

/// A user-supplied string made safe for a terminal (see [`crate::text::safe`]).
pub use crate::text::safe;
