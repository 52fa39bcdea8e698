//! `--format prometheus`: the per-target series the operator exports, in the text exposition
//! format, for the node-exporter textfile collector or a Pushgateway in CI.

use super::Scored;
use crate::metrics::{ActionSeries, TargetSeries, target_families};
use prometheus::Encoder;

pub fn render(scored: &[Scored]) -> String {
    // A suspended target has no series (docs/metrics.md), as in the operator.
    let series: Vec<TargetSeries> = scored
        .iter()
        .filter(|s| !s.target.spec.suspend)
        .map(|s| TargetSeries {
            namespace: s.target.metadata.namespace.as_deref().unwrap_or_default(),
            name: s.target.metadata.name.as_deref().unwrap_or_default(),
            evaluation: &s.evaluation,
            goal: s.target.spec.goal,
            interval_seconds: s.target.interval().as_secs_f64(),
            evaluated_at: s
                .evaluation
                .status
                .last_evaluated
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or_default(),
        })
        .collect();
    let mut out = Vec::new();
    let _ = prometheus::TextEncoder::new()
        .encode(&target_families(&series, ActionSeries::All), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
