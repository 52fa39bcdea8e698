//! The frameworks view: how a target fares against the controls of the frameworks its actions
//! name (`spec.references[]: {framework, control}`), e.g. Pod Security Standards, the CIS
//! Kubernetes Benchmark, the NSA/CISA Kubernetes Hardening Guide.
//!
//! A control is covered by every selected, scored (non-preview) action that names it. It is
//! - **passed** when every covering action that applies is `Completed`, `ResolvedThirdParty`
//!   or `ResolvedAlternate`;
//! - **failed** when any covering action that applies is `ToAddress`, `Planned`,
//!   `RiskAccepted` or `Unknown` (an action that could not be judged proves nothing);
//! - **not counted** (`notApplicable`) when every covering action is `NotApplicable`.
//!
//! Built from the action outcomes alone, so the full and the incremental evaluation agree.

use super::evaluate::ActionOutcome;
use super::score;
use crate::api::{ActionState, FrameworkStatus};
use std::collections::BTreeMap;

/// Frameworks listed per target, at most (the status field's bound).
pub const MAX_FRAMEWORKS: usize = 20;
/// Failed controls listed per framework, at most.
pub const MAX_FAILED_CONTROLS: usize = 50;

/// What one action's state says about the controls it covers: `None` when it does not apply.
pub fn satisfies(state: ActionState) -> Option<bool> {
    match state {
        ActionState::NotApplicable => None,
        ActionState::Completed
        | ActionState::ResolvedThirdParty
        | ActionState::ResolvedAlternate => Some(true),
        ActionState::Unknown
        | ActionState::ToAddress
        | ActionState::Planned
        | ActionState::RiskAccepted => Some(false),
    }
}

/// The order controls are listed in: numbered ones by number (`5.2.6` before `5.2.10`), named
/// ones after them by name.
pub fn control_order(control: &str) -> Vec<(u32, String)> {
    control
        .split('.')
        .map(|part| match part.parse::<u32>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u32::MAX, part.to_string()),
        })
        .collect()
}

/// Per framework, per control: `None` while no covering action applies, else whether all the
/// applicable ones satisfy it.
type Controls<'a> = BTreeMap<&'a str, BTreeMap<&'a str, Option<bool>>>;

/// Every framework the outcomes' actions name, with its controls passed, failed and counted;
/// the built-in catalog's frameworks first (in [`crate::catalog::FRAMEWORKS`] order), then
/// the others by name.
pub fn summarise(outcomes: &[ActionOutcome]) -> Vec<FrameworkStatus> {
    let mut frameworks: Controls = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.scored) {
        let verdict = satisfies(o.state);
        for r in &o.action.spec.references {
            let Some(control) = r
                .control
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let slot = frameworks
                .entry(r.framework.as_str())
                .or_default()
                .entry(control)
                .or_insert(None);
            *slot = match (*slot, verdict) {
                (s, None) => s,
                (None, v) => v,
                (Some(a), Some(b)) => Some(a && b),
            };
        }
    }
    let mut out: Vec<FrameworkStatus> = frameworks
        .into_iter()
        .map(|(framework, controls)| {
            let passed = controls.values().filter(|v| **v == Some(true)).count() as u64;
            let mut failed_controls: Vec<String> = controls
                .iter()
                .filter(|(_, v)| **v == Some(false))
                .map(|(c, _)| c.to_string())
                .collect();
            failed_controls.sort_by_key(|c| control_order(c));
            let failed = failed_controls.len() as u64;
            let total = passed + failed;
            FrameworkStatus {
                framework: framework.to_string(),
                passed,
                failed,
                total,
                not_applicable: controls.len() as u64 - total,
                percentage: score::percentage(passed, total).map(score::round2),
                failed_controls: failed_controls
                    .into_iter()
                    .take(MAX_FAILED_CONTROLS)
                    .collect(),
            }
        })
        .collect();
    out.sort_by_key(|f| {
        (
            crate::catalog::FRAMEWORKS
                .iter()
                .position(|c| *c == f.framework)
                .unwrap_or(usize::MAX),
            f.framework.clone(),
        )
    });
    out.truncate(MAX_FRAMEWORKS);
    out
}
