//! The types one target's evaluation reads and produces, shared by the evaluation
//! (`evaluate`, `incremental`) and the status it is turned into (`status`), so neither of those
//! imports the other's module for them (no import cycle).

use super::check::{CompiledAction, Verdict};
use super::exemptions::Assessed;
use super::resource::{Inventory, Resource};
use super::score::{Counts, Partition, Points};
use crate::api::{ActionState, ResolutionState, SecureScoreTarget, SecureScoreTargetStatus};
use jiff::Timestamp;
use std::sync::Arc;

/// Everything one evaluation reads.
pub struct TargetInput<'a> {
    pub target: &'a SecureScoreTarget,
    /// Every known action; the target's selection is applied here.
    pub actions: &'a [Arc<CompiledAction>],
    pub inventory: &'a Inventory,
    pub now: Timestamp,
    /// The persisted status, for history, changes and condition transition times.
    pub previous: Option<&'a SecureScoreTargetStatus>,
    /// Whether this target may name other namespaces, use selectors or read cluster resources.
    pub wide_scope_allowed: bool,
}

/// How one resource came out for one action.
#[derive(Debug, Clone)]
pub struct ResourceResult {
    pub resource: Arc<Resource>,
    pub verdict: Verdict,
    /// The declared resolution deciding a NonCompliant/Error resource, and the exemption's name
    /// (None: the action's own `spec.resolution`).
    pub resolution: Option<(ResolutionState, Option<String>)>,
}

/// One action's full result for the target.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    pub action: Arc<CompiledAction>,
    pub state: ActionState,
    pub counts: Counts,
    /// The applicable resources by result (what `action_resources{result}` exports).
    pub resources: Partition,
    pub errors: u64,
    pub points: Points,
    /// Every applicable resource, sorted by namespace/kind/name.
    pub results: Vec<ResourceResult>,
    /// Why the action is Unknown.
    pub message: Option<String>,
    /// Most resources failed to evaluate with this same error.
    pub dominant_error: Option<String>,
    /// Whether the points count (not a preview action).
    pub scored: bool,
    /// For a task: its latest attestation and when it is due (see [`super::attestations`]).
    pub attestation: Option<super::attestations::TaskFacts>,
}

/// What happened to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Evaluated,
    /// Some kind was not synced, missing or forbidden: no history, changes or events.
    Degraded,
    Suspended,
    ScopeNotAllowed,
}

/// The evaluation of one target.
#[derive(Debug, Clone)]
pub struct TargetEvaluation {
    pub outcome: Outcome,
    pub status: SecureScoreTargetStatus,
    pub actions: Vec<ActionOutcome>,
    pub exemptions: Vec<Assessed>,
    /// Exact totals in ten-thousandths.
    pub points: Points,
    /// The controls' scores, when the target uses the SecurityControls model.
    pub controls: Option<super::controls::ControlScores>,
}

impl TargetEvaluation {
    /// Score ÷ max in full precision (the `ratio` metric).
    pub fn ratio(&self) -> Option<f64> {
        let max = self.points.max();
        (max > 0).then(|| self.points.score() as f64 / max as f64)
    }
}
