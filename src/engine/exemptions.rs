//! Declared resolutions: the state of each target exemption (Active, Expired, Invalid,
//! Overdue; Unused is decided after scoring), and which declaration covers a resource.

use super::check::CompiledAction;
use super::resource::Resource;
use super::selector;
use crate::api::{
    ActionResolution, Exemption, ExemptionResources, ExemptionState, ResolutionState,
};
use jiff::Timestamp;

/// Parse an RFC 3339 timestamp, naming the field in the error.
pub fn parse_time(field: &str, value: &str) -> Result<Timestamp, String> {
    value
        .parse::<Timestamp>()
        .map_err(|_| format!("{field}: {value:?} is not an RFC 3339 timestamp"))
}

const DAY_SECONDS: i64 = 86_400;

/// A target exemption judged against its action's policy and `now`.
#[derive(Debug, Clone)]
pub struct Assessed {
    pub exemption: Exemption,
    pub state: ExemptionState,
    pub message: Option<String>,
    pub days_left: Option<i64>,
    /// Resources it decided in this evaluation.
    pub covered: u64,
}

impl Assessed {
    /// Whether it applies to resources (Active or Overdue).
    pub fn applies(&self) -> bool {
        matches!(self.state, ExemptionState::Active | ExemptionState::Overdue)
    }
}

/// Judge one exemption. `action` is None when the target does not evaluate that action.
pub fn assess(exemption: &Exemption, action: Option<&CompiledAction>, now: Timestamp) -> Assessed {
    let mut assessed = Assessed {
        exemption: exemption.clone(),
        state: ExemptionState::Active,
        message: None,
        days_left: None,
        covered: 0,
    };
    let invalid = |mut a: Assessed, message: String| {
        a.state = ExemptionState::Invalid;
        a.message = Some(message);
        a
    };
    let Some(action) = action else {
        return invalid(
            assessed,
            format!(
                "action {:?} is not evaluated by this target",
                exemption.action
            ),
        );
    };
    for (field, value) in [
        ("owner", &exemption.owner),
        ("reason", &exemption.reason),
        ("approvedAt", &exemption.approved_at),
    ] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return invalid(assessed, format!("{field} is required"));
        }
    }
    let approved = match exemption
        .approved_at
        .as_deref()
        .map(|v| parse_time("approvedAt", v))
    {
        Some(Ok(t)) => t,
        Some(Err(e)) => return invalid(assessed, e),
        None => unreachable!("checked above"),
    };
    let expires = match exemption
        .expires_at
        .as_deref()
        .map(|v| parse_time("expiresAt", v))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return invalid(assessed, e),
    };
    let due = match exemption
        .due_date
        .as_deref()
        .map(|v| parse_time("dueDate", v))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return invalid(assessed, e),
    };
    if let Some(sel) = exemption
        .resources
        .as_ref()
        .and_then(|r| r.selector.as_ref())
        && let Some(problem) = selector::validate(sel).into_iter().next()
    {
        return invalid(assessed, format!("resources.selector.{problem}"));
    }
    let policy = action.spec.exemption_policy.clone().unwrap_or_default();
    if !policy.allows(exemption.resolution) {
        return invalid(
            assessed,
            format!(
                "action {:?} does not allow {} exemptions",
                exemption.action,
                exemption.resolution.as_str()
            ),
        );
    }
    match expires {
        None if !(exemption.open_ended && policy.allow_open_ended) => {
            return invalid(
                assessed,
                format!(
                    "expiresAt is required: action {:?} does not allow open-ended exemptions",
                    exemption.action
                ),
            );
        }
        None => {}
        Some(exp) => {
            if exp <= approved {
                return invalid(assessed, "expiresAt must be after approvedAt".into());
            }
            let span = exp.as_second() - approved.as_second();
            let days = span / DAY_SECONDS + i64::from(span % DAY_SECONDS != 0);
            if days > i64::from(policy.max_days()) {
                return invalid(
                    assessed,
                    format!(
                        "spans {days} days, action {:?} allows at most {}",
                        exemption.action,
                        policy.max_days()
                    ),
                );
            }
        }
    }
    if approved > now {
        return invalid(assessed, "approvedAt is in the future".into());
    }
    if let Some(exp) = expires {
        if exp <= now {
            assessed.state = ExemptionState::Expired;
            assessed.message = Some(format!("expired at {exp}"));
            return assessed;
        }
        assessed.days_left = Some((exp.as_second() - now.as_second()) / DAY_SECONDS);
    }
    if exemption.resolution == ResolutionState::Planned
        && let Some(due) = due
        && due <= now
    {
        assessed.state = ExemptionState::Overdue;
        assessed.message = Some(format!("the planned fix was due at {due}"));
    }
    assessed
}

/// Whether the action's own resolution is in force at `now`.
pub fn action_resolution_applies(resolution: &ActionResolution, now: Timestamp) -> bool {
    let started = resolution
        .approved_at
        .as_deref()
        .is_none_or(|a| parse_time("approvedAt", a).is_ok_and(|t| t <= now));
    let unexpired = resolution
        .expires_at
        .as_deref()
        .is_none_or(|e| parse_time("expiresAt", e).is_ok_and(|t| t > now));
    started && unexpired
}

/// The resource filter of an exemption that names some resources; `None` for a whole-action
/// exemption: `resources` absent, or given with nothing in it (`{}`, empty lists, a `{}`
/// selector, which matches every object). An empty filter names no resource, so it must not
/// outrank a whole-action exemption.
pub fn resource_filter(exemption: &Exemption) -> Option<&ExemptionResources> {
    exemption.resources.as_ref().filter(|r| {
        let selector_filters = r.selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_some_and(|l| !l.is_empty())
                || s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())
        });
        !r.namespaces.is_empty() || !r.names.is_empty() || selector_filters
    })
}

/// Whether an exemption's `resources` cover the resource (no filter: the whole action).
pub fn covers(exemption: &Exemption, resource: &Resource) -> bool {
    let Some(r) = resource_filter(exemption) else {
        return true;
    };
    let ns_ok = r.namespaces.is_empty()
        || resource
            .namespace
            .as_ref()
            .is_some_and(|ns| r.namespaces.contains(ns));
    let name_ok = r.names.is_empty() || r.names.contains(&resource.name);
    let sel_ok = r
        .selector
        .as_ref()
        .is_none_or(|s| selector::matches(s, &resource.labels));
    ns_ok && name_ok && sel_ok
}

/// Who declared the resolution that decides a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    /// Index into the target's assessed exemptions.
    Exemption(usize),
    /// The action's `spec.resolution`.
    Action,
}

/// The declaration that decides one NonCompliant or Error resource: a target exemption naming
/// the resource beats one for the whole action, which beats the action's own resolution;
/// among equals the least generous wins.
pub fn decide(
    action: &CompiledAction,
    resource: &Resource,
    assessed: &[Assessed],
    now: Timestamp,
) -> Option<(ResolutionState, Declared)> {
    let mut best: Option<(u8, u8, ResolutionState, Declared)> = None;
    let mut consider = |tier: u8, state: ResolutionState, who: Declared| {
        let better = match &best {
            None => true,
            Some((t, g, _, _)) => tier > *t || (tier == *t && state.generosity() < *g),
        };
        if better {
            best = Some((tier, state.generosity(), state, who));
        }
    };
    for (i, a) in assessed.iter().enumerate() {
        if a.applies() && a.exemption.action == action.name && covers(&a.exemption, resource) {
            let tier = if resource_filter(&a.exemption).is_some() {
                2
            } else {
                1
            };
            consider(tier, a.exemption.resolution, Declared::Exemption(i));
        }
    }
    if let Some(r) = &action.spec.resolution
        && action_resolution_applies(r, now)
    {
        consider(0, r.state, Declared::Action);
    }
    best.map(|(_, _, state, who)| (state, who))
}
