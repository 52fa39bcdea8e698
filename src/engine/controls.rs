//! The SecurityControls model (Defender for Cloud's secure score): a target's points come from
//! security controls, each grouping improvement actions. For one control:
//! - its actions for a target are the selected, scored (not preview) actions it groups;
//! - its applicable resources are the union of the applicable resources of those actions;
//! - a resource is healthy only when every action of the control that applies to it judges it
//!   compliant, or resolved (ResolvedThirdParty / ResolvedAlternate); RiskAccepted and Planned
//!   never make a resource healthy (see [`Health`] for which result a resource takes);
//! - points = maxScore × healthy ÷ applicable, in ten-thousandths, split by largest remainder
//!   over the same buckets as an action's (so the target's breakdown still sums exactly);
//! - no applicable resource: NotApplicable (leaves score and maxScore); an Unknown action:
//!   Unknown (maxScore kept, 0 points), like an action.
//!
//! An action in two controls counts in both; an action in no control scores nothing and is
//! listed in `status.actionsNotInControls`. The actions' own points are not summed.
//! Pure: the caller passes the action outcomes (with every applicable resource) and the controls.

use super::check::Verdict;
use super::evaluate::{ActionOutcome, ResourceResult};
use super::resource::Resource;
use super::score::{self, Counts, Points, hundredths};
use super::selector;
use crate::api::{
    ActionState, ControlResult, ResolutionState, Scoring, ScoringModel, SecurityControl,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// How one resource fares under one control: the worst result over the control's actions
/// that apply to it (later variants are worse). A risk accepted under any action is the worst:
/// fixing the other findings would not make the resource healthy, so its points are forgone
/// (the breakdown's `accepted`, outside `achievableScore`); a Planned fix counts toward
/// `projectedScore` only when nothing else is left unresolved on that resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Compliant,
    ResolvedThirdParty,
    ResolvedAlternate,
    Planned,
    Unresolved,
    RiskAccepted,
}

/// The health of one resource under one action: its verdict and the resolution deciding it.
pub fn health(verdict: &Verdict, resolution: Option<ResolutionState>) -> Health {
    if verdict.is_compliant() {
        return Health::Compliant;
    }
    match resolution {
        None => Health::Unresolved,
        Some(ResolutionState::Planned) => Health::Planned,
        Some(ResolutionState::RiskAccepted) => Health::RiskAccepted,
        Some(ResolutionState::ResolvedAlternate) => Health::ResolvedAlternate,
        Some(ResolutionState::ResolvedThirdParty) => Health::ResolvedThirdParty,
    }
}

/// A resource's identity: `(namespace, kind, name, group)`.
pub type ResourceKey<'k> = (&'k str, &'k str, &'k str, &'k str);

/// The identity of `r`.
pub fn key_of(r: &Resource) -> ResourceKey<'_> {
    (
        r.namespace.as_deref().unwrap_or(""),
        r.kind.as_str(),
        r.name.as_str(),
        r.group.as_str(),
    )
}

/// Every applicable resource of an outcome carrying all of them (`results`, as the full
/// evaluation keeps them), with its health.
pub fn results_of(o: &ActionOutcome) -> impl Iterator<Item = (ResourceKey<'_>, Health)> {
    o.results.iter().map(|r: &ResourceResult| {
        (
            key_of(&r.resource),
            health(&r.verdict, r.resolution.as_ref().map(|(state, _)| *state)),
        )
    })
}

/// Whether `control` groups the action called `name` with `labels`.
pub fn groups(control: &SecurityControl, name: &str, labels: &BTreeMap<String, String>) -> bool {
    control.spec.actions.iter().any(|a| a == name)
        || control
            .spec
            .action_selector
            .as_ref()
            .is_some_and(|s| selector::matches(s, labels))
}

/// The actions (from `(name, labels)` pairs) a control groups, by name, sorted.
pub fn members<'a>(
    control: &SecurityControl,
    actions: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
) -> Vec<String> {
    let set: BTreeSet<String> = actions
        .into_iter()
        .filter(|(name, labels)| groups(control, name, labels))
        .map(|(name, _)| name.to_string())
        .collect();
    set.into_iter().collect()
}

/// One control's result for a target.
#[derive(Debug, Clone)]
pub struct ControlOutcome {
    pub control: Arc<SecurityControl>,
    pub name: String,
    pub state: ActionState,
    /// Resources by health: compliant, mitigated (resolved), accepted, planned, unresolved.
    pub counts: Counts,
    /// Exact points in ten-thousandths.
    pub points: Points,
    /// The actions the control groups for this target, by name.
    pub actions: Vec<String>,
    /// Why the control is Unknown.
    pub message: Option<String>,
}

impl ControlOutcome {
    pub fn healthy(&self) -> u64 {
        self.counts.compliant + self.counts.mitigated
    }

    pub fn unhealthy(&self) -> u64 {
        self.counts.accepted + self.counts.planned + self.counts.unresolved
    }

    /// The status row.
    pub fn row(&self) -> ControlResult {
        let p = self.points;
        let [achieved, mitigated, _accepted, planned, unresolved] =
            hundredths([p.achieved, p.mitigated, p.accepted, p.planned, p.unresolved]);
        ControlResult {
            name: self.name.clone(),
            title: self.control.spec.title.clone(),
            state: self.state,
            score: score::round2(achieved + mitigated),
            max_score: if self.state == ActionState::NotApplicable {
                0.0
            } else {
                f64::from(self.control.spec.max_score)
            },
            points_to_gain: score::round2(planned + unresolved),
            healthy: self.healthy(),
            unhealthy: self.unhealthy(),
            applicable: self.counts.applicable(),
            actions: self.actions.clone(),
            message: self.message.clone(),
        }
    }
}

/// Most control rows a status holds (the CRD's `maxItems` for `status.controls`).
pub const MAX_CONTROL_ROWS: usize = 256;
/// Most names `status.actionsNotInControls` holds (its `maxItems`).
pub const MAX_NOT_IN_CONTROLS: usize = 1000;

/// A target's score in the SecurityControls model.
#[derive(Debug, Clone, Default)]
pub struct ControlScores {
    /// Ranked by points to gain (desc), then name.
    pub controls: Vec<ControlOutcome>,
    /// Σ control points (ten-thousandths): the target's points in this model.
    pub points: Points,
    /// Selected, scored actions no control groups (they score nothing), by name.
    pub not_in_controls: Vec<String>,
}

impl ControlScores {
    /// The status rows (the first [`MAX_CONTROL_ROWS`], ranked) and the actions in no control
    /// (the first [`MAX_NOT_IN_CONTROLS`]), and whether anything was left out to fit the CRD.
    pub fn status_rows(&self) -> (Vec<ControlResult>, Vec<String>, bool) {
        let rows: Vec<ControlResult> = self
            .controls
            .iter()
            .take(MAX_CONTROL_ROWS)
            .map(ControlOutcome::row)
            .collect();
        let not_in: Vec<String> = self
            .not_in_controls
            .iter()
            .take(MAX_NOT_IN_CONTROLS)
            .cloned()
            .collect();
        let trimmed = self.controls.len() > MAX_CONTROL_ROWS
            || self.not_in_controls.len() > MAX_NOT_IN_CONTROLS;
        (rows, not_in, trimmed)
    }
}

/// Score a target's action outcomes in `model`: `None` in the ImprovementActions model.
/// `results` gives every applicable resource of an outcome with its health ([`results_of`]
/// for a full evaluation; the incremental one reads its books).
pub fn score<'o, 'k, I>(
    model: ScoringModel,
    controls: &[Arc<SecurityControl>],
    outcomes: &'o [ActionOutcome],
    results: impl Fn(&'o ActionOutcome) -> I,
) -> Option<ControlScores>
where
    I: Iterator<Item = (ResourceKey<'k>, Health)>,
{
    if model != ScoringModel::SecurityControls {
        return None;
    }
    let scored: Vec<&ActionOutcome> = outcomes.iter().filter(|o| o.scored).collect();
    let mut out = ControlScores::default();
    let mut grouped: BTreeSet<&str> = BTreeSet::new();
    for control in controls {
        let members: Vec<&ActionOutcome> = scored
            .iter()
            .copied()
            .filter(|o| groups(control, &o.action.name, &o.action.labels))
            .collect();
        grouped.extend(members.iter().map(|o| o.action.name.as_str()));
        let outcome = score_control(control, &members, &results);
        out.points.add(&outcome.points);
        out.controls.push(outcome);
    }
    out.controls.sort_by(|a, b| {
        b.points
            .to_address()
            .cmp(&a.points.to_address())
            .then(a.name.cmp(&b.name))
    });
    let mut not_in: Vec<String> = scored
        .iter()
        .filter(|o| !grouped.contains(o.action.name.as_str()))
        .map(|o| o.action.name.clone())
        .collect();
    not_in.sort();
    not_in.dedup();
    out.not_in_controls = not_in;
    Some(out)
}

fn score_control<'o, 'k, I>(
    control: &Arc<SecurityControl>,
    members: &[&'o ActionOutcome],
    results: &impl Fn(&'o ActionOutcome) -> I,
) -> ControlOutcome
where
    I: Iterator<Item = (ResourceKey<'k>, Health)>,
{
    let name = control.metadata.name.clone().unwrap_or_default();
    let mut actions: Vec<String> = members.iter().map(|o| o.action.name.clone()).collect();
    actions.sort();
    let unknown: Vec<&str> = members
        .iter()
        .filter(|o| o.state == ActionState::Unknown)
        .map(|o| o.action.name.as_str())
        .collect();
    if !unknown.is_empty() {
        let message = format!(
            "Unknown: its action(s) {} could not be evaluated",
            unknown.join(", ")
        );
        return ControlOutcome {
            control: control.clone(),
            name,
            state: ActionState::Unknown,
            counts: Counts::default(),
            points: Points::unknown(control.spec.max_score),
            actions,
            message: Some(crate::engine::cel::truncate(&message, 1024)),
        };
    }
    // The worst health of each resource over the actions that apply to it.
    let mut worst: HashMap<ResourceKey<'k>, Health> = HashMap::new();
    for o in members {
        for (key, h) in results(o) {
            worst
                .entry(key)
                .and_modify(|w| *w = (*w).max(h))
                .or_insert(h);
        }
    }
    let mut counts = Counts::default();
    let mut alternate = 0;
    for h in worst.values() {
        match h {
            Health::Compliant => counts.compliant += 1,
            Health::ResolvedThirdParty => counts.mitigated += 1,
            Health::ResolvedAlternate => {
                counts.mitigated += 1;
                alternate += 1;
            }
            Health::RiskAccepted => counts.accepted += 1,
            Health::Planned => counts.planned += 1,
            Health::Unresolved => counts.unresolved += 1,
        }
    }
    let points = if counts.applicable() == 0 {
        Points::default()
    } else {
        Points::of(control.spec.max_score, Scoring::Proportional, counts)
    };
    ControlOutcome {
        control: control.clone(),
        name,
        state: score::state_of(&counts, alternate),
        counts,
        points,
        actions,
        message: None,
    }
}
