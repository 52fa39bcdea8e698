//! Turning action outcomes into the target status: rows ranked by points to gain, the
//! breakdown, categories, exemptions, daily history, changes against the previous day,
//! conditions whose transition time only moves on change, and the size bound.

use super::check::revision_of;
use super::evaluation::{ActionOutcome, Outcome, TargetEvaluation, TargetInput};
use super::exemptions::Assessed;
use super::score::{self, Points, hundredths, two_decimals};
use crate::api::{
    ActionResult, ActionState, BaselineAction, Breakdown, Category, CategoryScore, Changes,
    DEFAULT_HISTORY_LIMIT, ExemptionState, ExemptionStatus, Finding, HistoryPoint,
    SecureScoreTargetStatus, Zone, Zones,
};
use crate::engine::Verdict;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeMap;

/// Sample findings kept per action.
pub const MAX_FINDINGS: usize = 10;
/// Largest status written.
pub const MAX_STATUS_BYTES: usize = 256 * 1024;

/// Status of a target that was not evaluated: the last values stay, `Ready` says why.
pub fn unevaluated(input: &TargetInput, outcome: Outcome) -> TargetEvaluation {
    let mut status = input.previous.cloned().unwrap_or_default();
    let (reason, message) = match outcome {
        Outcome::Suspended => (
            "Suspended",
            "spec.suspend is true: not evaluated; the status keeps its last values".to_string(),
        ),
        _ => (
            "ScopeNotAllowed",
            format!(
                "targets in namespace {:?} may only evaluate their own namespace: other namespaces, selectors and cluster resources need a namespace listed in the operator's --cluster-target-namespaces",
                input
                    .target
                    .metadata
                    .namespace
                    .as_deref()
                    .unwrap_or_default()
            ),
        ),
    };
    let generation = input.target.metadata.generation;
    set_condition(
        &mut status.conditions,
        "Ready",
        false,
        reason,
        &message,
        input.now,
        generation,
    );
    status.observed_generation = generation;
    TargetEvaluation {
        outcome,
        status,
        actions: Vec::new(),
        exemptions: Vec::new(),
        points: Points::default(),
        controls: None,
    }
}

/// The ranking key: scored before preview, then points to gain (desc), user impact and implementation cost (low first), name.
fn rank(a: &ActionOutcome, b: &ActionOutcome) -> std::cmp::Ordering {
    // Preview actions are never scored: they follow the scored ones.
    a.scored.cmp(&b.scored).reverse().then(
        b.points
            .to_address()
            .cmp(&a.points.to_address())
            .then(a.action.spec.user_impact.cmp(&b.action.spec.user_impact))
            .then(
                a.action
                    .spec
                    .implementation_cost
                    .cmp(&b.action.spec.implementation_cost),
            )
            .then(a.action.name.cmp(&b.action.name)),
    )
}

fn row(o: &ActionOutcome) -> ActionResult {
    let p = o.points;
    let [achieved, mitigated, _accepted, planned, unresolved] =
        hundredths([p.achieved, p.mitigated, p.accepted, p.planned, p.unresolved]);
    let findings = o
        .results
        .iter()
        .filter(|r| {
            !r.verdict.is_compliant()
                && r.resolution
                    .as_ref()
                    .is_none_or(|(s, _)| *s == crate::api::ResolutionState::Planned)
        })
        .take(MAX_FINDINGS)
        .map(|r| Finding {
            api_version: r.resource.api_version.clone(),
            kind: r.resource.kind.clone(),
            namespace: r.resource.namespace.clone(),
            name: r.resource.name.clone(),
            message: match &r.verdict {
                Verdict::NonCompliant { message } => message.clone(),
                Verdict::Error { message } => format!("evaluation error: {message}"),
                Verdict::Compliant => String::new(),
            },
        })
        .collect();
    ActionResult {
        name: o.action.name.clone(),
        title: o.action.spec.title.clone(),
        category: o.action.spec.category,
        state: o.state,
        score: score::round2(achieved + mitigated),
        max_score: if o.state == ActionState::NotApplicable {
            0.0
        } else {
            f64::from(o.action.spec.max_score)
        },
        points_to_gain: score::round2(planned + unresolved),
        compliant: o.counts.compliant,
        non_compliant: o.counts.unresolved + o.counts.planned,
        exempt: o.counts.accepted + o.counts.mitigated,
        applicable: o.counts.applicable(),
        errors: o.errors,
        unverified: o.counts.mitigated > 0,
        preview: !o.scored,
        revision: Some(o.action.revision.clone()),
        message: o.message.clone().or_else(|| {
            o.dominant_error
                .as_ref()
                .map(|e| format!("EvaluationFailing: most resources fail with: {e}"))
        }),
        findings,
        attestation: o.attestation.as_ref().map(|f| f.to_status()),
    }
}

/// Assemble the status of an evaluated (possibly degraded) target.
pub fn build(
    input: &TargetInput,
    outcome: Outcome,
    mut outcomes: Vec<ActionOutcome>,
    assessed: Vec<Assessed>,
    excluded: Vec<String>,
    evaluated_resources: u64,
    control_scores: Option<super::controls::ControlScores>,
) -> TargetEvaluation {
    let target = input.target;
    let now = input.now;
    let generation = target.metadata.generation;
    outcomes.sort_by(rank);

    let mut total = Points::default();
    let mut by_category: BTreeMap<Category, Points> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.scored) {
        total.add(&o.points);
        by_category
            .entry(o.action.spec.category)
            .or_default()
            .add(&o.points);
    }
    // In the SecurityControls model the controls make the score; categories (sums of the
    // actions' own points) would not add up to it and are left out.
    if let Some(c) = &control_scores {
        total = c.points;
        by_category.clear();
    }
    let [achieved, mitigated, accepted, planned, unresolved] = hundredths([
        total.achieved,
        total.mitigated,
        total.accepted,
        total.planned,
        total.unresolved,
    ]);
    let max_units = total.max();
    let score_value = score::round2(achieved + mitigated);
    let max_value = (max_units / score::UNIT) as f64;
    let percentage = score::percentage(total.score(), max_units).map(score::round2);
    let zones = target.spec.zones.unwrap_or_default();

    let mut status = SecureScoreTargetStatus {
        score: Some(score_value),
        max_score: Some(max_value),
        percentage,
        zone: percentage.map(|p| zone(p, zones)),
        breakdown: Some(Breakdown {
            achieved,
            mitigated,
            accepted,
            to_address: score::round2(planned + unresolved),
            projected_score: score::round2(achieved + mitigated + planned),
            achievable_score: score::round2(max_value - accepted),
        }),
        categories: Category::ALL
            .iter()
            .filter_map(|c| {
                let p = by_category.get(c)?;
                Some(CategoryScore {
                    category: *c,
                    score: two_decimals(p.score()),
                    max_score: two_decimals(p.max()),
                    points_to_gain: two_decimals(p.to_address()),
                })
            })
            .collect(),
        actions: outcomes.iter().map(row).collect(),
        exemptions: assessed
            .iter()
            .map(|a| ExemptionStatus {
                name: a.exemption.name.clone(),
                action: a.exemption.action.clone(),
                state: a.state,
                days_left: a.days_left.filter(|_| {
                    matches!(
                        a.state,
                        ExemptionState::Active | ExemptionState::Overdue | ExemptionState::Unused
                    )
                }),
                covered: a.covered,
                message: a.message.clone(),
            })
            .collect(),
        attestations: super::attestations::assess(
            target,
            outcomes.iter().map(|o| o.action.as_ref()),
            now,
        )
        .declared,
        excluded_actions: excluded,
        observed_generation: generation,
        last_evaluated: Some(now.to_string()),
        evaluated_resources,
        catalog_revision: Some(catalog_revision(&outcomes)),
        frameworks: super::frameworks::summarise(&outcomes),
        products_not_detected: super::products::listed(&outcomes),
        ..Default::default()
    };
    if let Some(c) = &control_scores {
        let (rows, not_in, trimmed) = c.status_rows();
        status.controls = rows;
        status.actions_not_in_controls = not_in;
        status.truncated |= trimmed;
    }

    let previous = input.previous;
    let history_limit = target.spec.history_limit.unwrap_or(DEFAULT_HISTORY_LIMIT) as usize;
    let today = utc_date(now);
    if outcome == Outcome::Evaluated {
        let mut history = previous.map(|p| p.history.clone()).unwrap_or_default();
        let point = HistoryPoint {
            date: today.clone(),
            score: score_value,
            max_score: max_value,
            percentage,
            catalog_revision: status.catalog_revision.clone(),
        };
        match history.last_mut() {
            Some(last) if last.date == today => *last = point,
            _ => history.push(point),
        }
        let excess = history.len().saturating_sub(history_limit);
        history.drain(..excess);
        status.history = history;
        status.changes = changes(previous, &status, &today);
    } else {
        status.history = previous.map(|p| p.history.clone()).unwrap_or_default();
        status.changes = previous.and_then(|p| p.changes.clone());
    }
    status.comparison = previous.and_then(|p| p.comparison.clone());

    // Conditions: Ready, GoalMet, Degraded.
    status.conditions = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    let (ready_reason, ready_message) = match percentage {
        Some(p) => (
            "Evaluated",
            format!("{score_value:.2} of {max_value:.0} points ({p:.2}%)"),
        ),
        None => (
            "NothingToEvaluate",
            "no improvement action applies to anything in scope: there is no percentage"
                .to_string(),
        ),
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        true,
        ready_reason,
        &ready_message,
        now,
        generation,
    );
    match (target.spec.goal, percentage) {
        (Some(goal), Some(p)) => {
            let met = p >= f64::from(goal);
            let (reason, msg) = if met {
                ("GoalMet", format!("{p:.2}% meets the goal of {goal}%"))
            } else {
                (
                    "GoalMissed",
                    format!("{p:.2}% is below the goal of {goal}%"),
                )
            };
            set_condition(
                &mut status.conditions,
                "GoalMet",
                met,
                reason,
                &msg,
                now,
                generation,
            );
        }
        (Some(goal), None) => set_condition(
            &mut status.conditions,
            "GoalMet",
            false,
            "NothingToEvaluate",
            &format!("no percentage to compare with the goal of {goal}%"),
            now,
            generation,
        ),
        (None, _) => {
            status.conditions.retain(|c| c.type_ != "GoalMet");
        }
    }
    if outcome == Outcome::Degraded {
        let missing: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                o.message
                    .as_deref()
                    .filter(|m| m.starts_with("InventoryIncomplete"))
                    .map(|m| format!("{}: {m}", o.action.name))
            })
            .take(5)
            .collect();
        set_condition(
            &mut status.conditions,
            "Degraded",
            true,
            "InventoryIncomplete",
            &crate::engine::cel::truncate(&missing.join("; "), 1024),
            now,
            generation,
        );
    } else {
        set_condition(
            &mut status.conditions,
            "Degraded",
            false,
            "InventoryComplete",
            "every kind the actions read is listed and in sync",
            now,
            generation,
        );
    }
    status.conditions.sort_by_key(|c| {
        ["Ready", "GoalMet", "Degraded"]
            .iter()
            .position(|t| *t == c.type_)
            .unwrap_or(9)
    });
    bound_size(&mut status);
    TargetEvaluation {
        outcome,
        status,
        actions: outcomes,
        exemptions: assessed,
        points: total,
        controls: control_scores,
    }
}

/// Revision of the evaluated actions' definitions.
pub fn catalog_revision(outcomes: &[ActionOutcome]) -> String {
    let mut pairs: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|o| (o.action.name.as_str(), o.action.revision.as_str()))
        .collect();
    pairs.sort();
    revision_of(&pairs)
}

/// The zone of a percentage.
pub fn zone(percentage: f64, zones: Zones) -> Zone {
    if percentage >= f64::from(zones.good) {
        Zone::Good
    } else if percentage >= f64::from(zones.okay) {
        Zone::Okay
    } else {
        Zone::Poor
    }
}

/// `YYYY-MM-DD` of an instant in UTC.
pub fn utc_date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// Changes since the baseline: the last evaluation of a previous day. The baseline moves
/// forward when the previous status is from an earlier day and was not degraded.
fn changes(
    previous: Option<&SecureScoreTargetStatus>,
    current: &SecureScoreTargetStatus,
    today: &str,
) -> Option<Changes> {
    let previous = previous?;
    let prev_day = previous
        .last_evaluated
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(utc_date);
    let prev_degraded = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Degraded" && c.status == "True");
    let (since, baseline, baseline_revision) = match (&prev_day, &previous.changes) {
        (Some(day), _)
            if day.as_str() < today && !prev_degraded && !previous.actions.is_empty() =>
        {
            (
                day.clone(),
                previous
                    .actions
                    .iter()
                    .filter(|r| !r.preview)
                    .map(|r| {
                        (
                            r.name.clone(),
                            BaselineAction {
                                score: r.score,
                                revision: r.revision.clone().unwrap_or_default(),
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
                previous.catalog_revision.clone(),
            )
        }
        (_, Some(c)) => (
            c.since.clone(),
            c.baseline.clone(),
            c.baseline_revision.clone(),
        ),
        _ => return None,
    };
    let mut achieved = 0.0;
    let mut regressed = 0.0;
    let mut regressed_actions = Vec::new();
    for row in current.actions.iter().filter(|r| !r.preview) {
        let Some(base) = baseline.get(&row.name) else {
            continue;
        };
        if Some(&base.revision) != row.revision.as_ref() {
            continue; // a changed definition is a catalog change, never a regression
        }
        let delta = row.score - base.score;
        if delta > 0.0 {
            achieved += delta;
        } else if delta < 0.0 {
            regressed -= delta;
            regressed_actions.push(row.name.clone());
        }
    }
    regressed_actions.sort();
    Some(Changes {
        since,
        points_achieved: score::round2(achieved),
        points_regressed: score::round2(regressed),
        regressed_actions,
        catalog_changed: baseline_revision.is_some()
            && baseline_revision != current.catalog_revision,
        baseline,
        baseline_revision,
    })
}

/// Set a condition; its lastTransitionTime only moves when its status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: Time(now),
            observed_generation: generation,
        }),
    }
}

fn size_of(status: &SecureScoreTargetStatus) -> usize {
    serde_json::to_vec(status)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// Keep the status under [`MAX_STATUS_BYTES`]: trim findings first, then the rows of
/// Completed and NotApplicable actions, then the lowest-ranked rows.
fn bound_size(status: &mut SecureScoreTargetStatus) {
    if size_of(status) <= MAX_STATUS_BYTES {
        return;
    }
    status.truncated = true;
    for keep in [3, 1, 0] {
        status
            .actions
            .iter_mut()
            .for_each(|a| a.findings.truncate(keep));
        if size_of(status) <= MAX_STATUS_BYTES {
            return;
        }
    }
    // Task rows stay: their attestation state is what due-soon Events are computed against.
    status.actions.retain(|a| {
        a.attestation.is_some()
            || !matches!(a.state, ActionState::Completed | ActionState::NotApplicable)
    });
    while size_of(status) > MAX_STATUS_BYTES && !status.actions.is_empty() {
        let keep = status.actions.len() * 3 / 4;
        status.actions.truncate(keep);
    }
}
