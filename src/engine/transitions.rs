//! What changed between the persisted status and a new evaluation, for Events. Computed
//! against the persisted status, so a restart or a new leader neither repeats nor loses them.

use super::evaluate::{Outcome, TargetEvaluation};
use crate::api::{ActionState, ExemptionState, SecureScoreTargetStatus, TaskState, Zone};

/// Exemptions expiring within this many days are announced (once).
pub const EXPIRING_WITHIN_DAYS: i64 = 7;

/// A change worth an Event.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    GoalMet {
        percentage: f64,
        goal: String,
    },
    GoalMissed {
        percentage: f64,
        goal: String,
    },
    ZoneChanged {
        from: Zone,
        to: Zone,
    },
    Regressed {
        actions: Vec<String>,
        points: f64,
    },
    ExemptionExpired {
        name: String,
        action: String,
    },
    ExemptionExpiring {
        name: String,
        action: String,
        days_left: i64,
    },
    ExemptionOverdue {
        name: String,
        action: String,
    },
    InvalidAction {
        name: String,
        message: String,
    },
    /// A task's attestation goes stale within 14 days.
    AttestationDueSoon {
        action: String,
        due_at: String,
    },
    /// A task's attestation went stale: the task is to address again.
    AttestationStale {
        action: String,
        due_at: String,
    },
    ScopeRefused {
        message: String,
    },
    Degraded {
        message: String,
    },
}

impl Transition {
    /// Event reason (CamelCase, fixed set).
    pub fn reason(&self) -> &'static str {
        match self {
            Transition::GoalMet { .. } => "GoalMet",
            Transition::GoalMissed { .. } => "GoalMissed",
            Transition::ZoneChanged { .. } => "ZoneChanged",
            Transition::Regressed { .. } => "Regressed",
            Transition::ExemptionExpired { .. } => "ExemptionExpired",
            Transition::ExemptionExpiring { .. } => "ExemptionExpiring",
            Transition::ExemptionOverdue { .. } => "ExemptionOverdue",
            Transition::InvalidAction { .. } => "InvalidAction",
            Transition::AttestationDueSoon { .. } => "AttestationDueSoon",
            Transition::AttestationStale { .. } => "AttestationStale",
            Transition::ScopeRefused { .. } => "ScopeNotAllowed",
            Transition::Degraded { .. } => "Degraded",
        }
    }

    /// Whether the Event is a Warning (else Normal).
    pub fn is_warning(&self) -> bool {
        !matches!(
            self,
            Transition::GoalMet { .. } | Transition::ZoneChanged { .. }
        )
    }

    pub fn message(&self) -> String {
        match self {
            Transition::GoalMet { percentage, goal } => {
                format!("score {percentage:.2}% meets the goal of {goal}%")
            }
            Transition::GoalMissed { percentage, goal } => {
                format!("score {percentage:.2}% is below the goal of {goal}%")
            }
            Transition::ZoneChanged { from, to } => format!("zone changed from {from:?} to {to:?}"),
            Transition::Regressed { actions, points } => {
                format!(
                    "lost {points:.2} points since the previous day in: {}",
                    actions.join(", ")
                )
            }
            Transition::ExemptionExpired { name, action } => {
                format!("exemption {name} for {action} expired and no longer applies")
            }
            Transition::ExemptionExpiring {
                name,
                action,
                days_left,
            } => {
                format!("exemption {name} for {action} expires in {days_left} day(s)")
            }
            Transition::ExemptionOverdue { name, action } => {
                format!("planned fix {name} for {action} is past its due date")
            }
            Transition::InvalidAction { name, message } => {
                format!("action {name} cannot be evaluated: {message}")
            }
            Transition::AttestationDueSoon { action, due_at } => {
                format!(
                    "task {action} is due at {due_at}: attest it again in spec.attestations before then"
                )
            }
            Transition::AttestationStale { action, due_at } => {
                format!(
                    "task {action} went stale at {due_at}: it earns no points until attested again"
                )
            }
            Transition::ScopeRefused { message } | Transition::Degraded { message } => {
                message.clone()
            }
        }
    }
}

fn condition<'a>(
    s: &'a SecureScoreTargetStatus,
    t: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.conditions.iter().find(|c| c.type_ == t)
}

/// The transitions from `previous` (the persisted status) to `new`.
pub fn transitions(
    previous: Option<&SecureScoreTargetStatus>,
    new: &TargetEvaluation,
    goal: Option<u32>,
) -> Vec<Transition> {
    let empty = SecureScoreTargetStatus::default();
    let prev = previous.unwrap_or(&empty);
    let status = &new.status;
    let mut out = Vec::new();
    match new.outcome {
        Outcome::ScopeNotAllowed => {
            let was = condition(prev, "Ready").is_some_and(|c| c.reason == "ScopeNotAllowed");
            if !was && let Some(c) = condition(status, "Ready") {
                out.push(Transition::ScopeRefused {
                    message: c.message.clone(),
                });
            }
            return out;
        }
        Outcome::Suspended => return out,
        Outcome::Degraded => {
            let was = condition(prev, "Degraded").is_some_and(|c| c.status == "True");
            if !was && let Some(c) = condition(status, "Degraded") {
                out.push(Transition::Degraded {
                    message: c.message.clone(),
                });
            }
            return out; // a degraded evaluation emits nothing else
        }
        Outcome::Evaluated => {}
    }
    if let (Some(goal), Some(p), Some(c)) = (goal, status.percentage, condition(status, "GoalMet"))
    {
        // A change of reason counts: NothingToEvaluate → GoalMissed is news too.
        let before = condition(prev, "GoalMet").map(|c| c.reason.as_str());
        if before != Some(c.reason.as_str())
            && matches!(c.reason.as_str(), "GoalMet" | "GoalMissed")
        {
            let goal = goal.to_string();
            out.push(if c.status == "True" {
                Transition::GoalMet {
                    percentage: p,
                    goal,
                }
            } else {
                Transition::GoalMissed {
                    percentage: p,
                    goal,
                }
            });
        }
    }
    if let (Some(from), Some(to)) = (prev.zone, status.zone)
        && from != to
    {
        out.push(Transition::ZoneChanged { from, to });
    }
    if let Some(c) = &status.changes {
        let before: Vec<String> = prev
            .changes
            .as_ref()
            .filter(|p| p.since == c.since)
            .map(|p| p.regressed_actions.clone())
            .unwrap_or_default();
        let fresh: Vec<String> = c
            .regressed_actions
            .iter()
            .filter(|a| !before.contains(a))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            out.push(Transition::Regressed {
                actions: fresh,
                points: c.points_regressed,
            });
        }
    }
    for e in &status.exemptions {
        let before = prev.exemptions.iter().find(|p| p.name == e.name);
        let was = |s: ExemptionState| before.is_some_and(|b| b.state == s);
        match e.state {
            ExemptionState::Expired if before.is_some() && !was(ExemptionState::Expired) => out
                .push(Transition::ExemptionExpired {
                    name: e.name.clone(),
                    action: e.action.clone(),
                }),
            ExemptionState::Overdue if !was(ExemptionState::Overdue) => {
                out.push(Transition::ExemptionOverdue {
                    name: e.name.clone(),
                    action: e.action.clone(),
                })
            }
            _ => {}
        }
        if let Some(days) = e.days_left
            && days < EXPIRING_WITHIN_DAYS
        {
            let announced = before
                .and_then(|b| b.days_left)
                .is_some_and(|d| d < EXPIRING_WITHIN_DAYS);
            if !announced {
                out.push(Transition::ExemptionExpiring {
                    name: e.name.clone(),
                    action: e.action.clone(),
                    days_left: days,
                });
            }
        }
    }
    for a in &status.actions {
        let invalid = a.state == ActionState::Unknown
            && a.message
                .as_deref()
                .is_some_and(|m| !m.starts_with("InventoryIncomplete"));
        let was = prev
            .actions
            .iter()
            .any(|p| p.name == a.name && p.state == ActionState::Unknown && p.message == a.message);
        if invalid && !was {
            out.push(Transition::InvalidAction {
                name: a.name.clone(),
                message: a.message.clone().unwrap_or_default(),
            });
        }
    }
    out.extend(task_transitions(prev, status));
    out
}

/// Tasks that became due soon, or stale after being done: once per transition of the task's
/// state (a new attestation starts a new cycle).
fn task_transitions(
    prev: &SecureScoreTargetStatus,
    status: &SecureScoreTargetStatus,
) -> Vec<Transition> {
    let mut out = Vec::new();
    for a in &status.actions {
        let Some(task) = &a.attestation else {
            continue;
        };
        let before = prev
            .actions
            .iter()
            .find(|p| p.name == a.name)
            .and_then(|p| p.attestation.as_ref());
        let was = |s: TaskState| before.is_some_and(|b| b.state == s && b.due_at == task.due_at);
        let due_at = task.due_at.clone().unwrap_or_default();
        match task.state {
            TaskState::DueSoon if !was(TaskState::DueSoon) => {
                out.push(Transition::AttestationDueSoon {
                    action: a.name.clone(),
                    due_at,
                })
            }
            TaskState::Stale
                if before.is_some_and(|b| b.state.is_done() && b.due_at == task.due_at) =>
            {
                out.push(Transition::AttestationStale {
                    action: a.name.clone(),
                    due_at,
                })
            }
            _ => {}
        }
    }
    out
}
