//! Security tasks: actions done by people and attested by a target in Git
//! (`spec.attestations[]`), scored Binary on one applicable "resource", the target itself.
//!
//! - The latest valid attestation of a task makes it done (Compliant, full points) until
//!   attestedAt + `every`; "due soon" in the last [`DUE_SOON_DAYS`] days (still done); then, or
//!   when never attested, NonCompliant (`ToAddress`, 0 points). Declared resolutions apply to
//!   that one resource as to any other (the caller runs the usual exemption rules).
//! - What a CRD rule cannot check is enforced here: an `attestedAt` in the future, or an
//!   attestation naming an action that is not a task the target evaluates, is `Invalid` (with a
//!   message naming `spec.attestations[i]` and the action) and ignored; others are unaffected.
//!
//! A task reads no object: it depends on the target and `now` only, so the incremental
//! evaluation keeps its verdict like any other until the next full evaluation, which the
//! operator schedules at the task's next change ([`TaskFacts::next_change`]).

use super::check::{CompiledAction, Verdict};
use super::exemptions::parse_time;
use super::resource::Resource;
use crate::api::{
    Attestation, AttestationState, AttestationStatus, DUE_SOON_DAYS, GROUP, SecureScoreTarget,
    TaskAttestation, TaskState, VERSION, parse_period,
};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

const DAY_SECONDS: i64 = 86_400;

/// The declared attestations of one target, judged at `now` against the actions it evaluates.
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    /// One per `spec.attestations` entry, in order.
    pub declared: Vec<AttestationStatus>,
    /// Per task: index and time of its latest valid attestation.
    latest: BTreeMap<String, (usize, Timestamp)>,
}

/// Judge every declared attestation: `actions` are the actions the target evaluates.
pub fn assess<'a>(
    target: &SecureScoreTarget,
    actions: impl IntoIterator<Item = &'a CompiledAction>,
    now: Timestamp,
) -> Assessment {
    let tasks: BTreeMap<&str, bool> = actions
        .into_iter()
        .map(|a| (a.name.as_str(), a.spec.check.is_task()))
        .collect();
    let mut out = Assessment::default();
    for (i, a) in target.spec.attestations.iter().enumerate() {
        // Valid ones are Superseded until the latest of each task is known.
        let (state, message) = match validate(i, a, &tasks, now) {
            Ok(at) => {
                let newer = out
                    .latest
                    .get(&a.action)
                    .is_none_or(|(_, best)| at >= *best);
                if newer {
                    out.latest.insert(a.action.clone(), (i, at));
                }
                (AttestationState::Superseded, None)
            }
            Err(message) => (AttestationState::Invalid, Some(message)),
        };
        out.declared.push(AttestationStatus {
            index: i as u32,
            action: a.action.clone(),
            state,
            message,
        });
    }
    for (i, _) in out.latest.values() {
        if let Some(d) = out.declared.iter_mut().find(|d| d.index as usize == *i) {
            d.state = AttestationState::Current;
        }
    }
    out
}

/// The rules a CRD cannot check (the clock, other objects), plus the ones it does, for input
/// that did not pass through an API server.
fn validate(
    i: usize,
    a: &Attestation,
    tasks: &BTreeMap<&str, bool>,
    now: Timestamp,
) -> Result<Timestamp, String> {
    let field = |f: &str| format!("spec.attestations[{i}].{f}");
    match tasks.get(a.action.as_str()) {
        None => {
            return Err(format!(
                "{}: {:?} is not an ImprovementAction this target evaluates",
                field("action"),
                a.action
            ));
        }
        Some(false) => {
            return Err(format!(
                "{}: {:?} is not a task (its check has no attestation): only tasks are attested",
                field("action"),
                a.action
            ));
        }
        Some(true) => {}
    }
    for (name, value) in [("attestedBy", &a.attested_by), ("evidence", &a.evidence)] {
        if value.trim().is_empty() {
            return Err(format!("{}: required (action {:?})", field(name), a.action));
        }
    }
    let at = parse_time(&field("attestedAt"), &a.attested_at)
        .map_err(|e| format!("{e} (action {:?})", a.action))?;
    if at > now {
        return Err(format!(
            "{}: {at} is in the future (action {:?}): attest a task once it is done",
            field("attestedAt"),
            a.action
        ));
    }
    Ok(at)
}

/// What the engine knows about one task for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    pub state: TaskState,
    /// The action's `every`, as written.
    pub every: String,
    /// The latest valid attestation and its index in `spec.attestations`.
    pub latest: Option<(usize, Attestation)>,
    pub attested_at: Option<Timestamp>,
    /// attestedAt + every: when the task goes stale.
    pub due_at: Option<Timestamp>,
}

impl TaskFacts {
    /// The next instant after `now` at which the task's state changes by itself (it becomes
    /// due soon, or stale): the operator evaluates in full then.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        let due = self.due_at?;
        let soon = Timestamp::from_second(due.as_second() - DUE_SOON_DAYS * DAY_SECONDS).ok()?;
        [soon, due].into_iter().find(|t| *t > now)
    }

    /// The status row's detail.
    pub fn to_status(&self) -> TaskAttestation {
        let latest = self.latest.as_ref();
        TaskAttestation {
            state: self.state,
            every: self.every.clone(),
            attested_at: self.attested_at.map(|t| t.to_string()),
            attested_by: latest.map(|(_, a)| a.attested_by.clone()),
            evidence: latest.map(|(_, a)| a.evidence.clone()),
            due_at: self.due_at.map(|t| t.to_string()),
            index: latest.map(|(i, _)| *i as u32),
        }
    }

    /// The verdict on the target's one applicable resource.
    pub fn verdict(&self) -> Verdict {
        match (self.state, &self.latest, self.due_at) {
            (TaskState::Fresh | TaskState::DueSoon, _, _) => Verdict::Compliant,
            (TaskState::Stale, Some((i, a)), Some(due)) => Verdict::NonCompliant {
                message: format!(
                    "last attested at {} by {} (spec.attestations[{i}]): stale since {due}; attest it again every {}",
                    a.attested_at, a.attested_by, self.every
                ),
            },
            _ => Verdict::NonCompliant {
                message: format!(
                    "never attested: declare it in spec.attestations once done, and again every {}",
                    self.every
                ),
            },
        }
    }
}

/// The facts of one task at `now` (None: the action is not a task, or its period does not
/// parse, which loading reports).
pub fn facts(
    action: &CompiledAction,
    target: &SecureScoreTarget,
    assessment: &Assessment,
    now: Timestamp,
) -> Option<TaskFacts> {
    let every_text = &action.spec.check.attestation.as_ref()?.every;
    let every = i64::try_from(parse_period(every_text)?.as_secs()).ok()?;
    let latest = assessment
        .latest
        .get(&action.name)
        .and_then(|(i, at)| Some((*i, target.spec.attestations.get(*i)?.clone(), *at)));
    let Some((i, attestation, at)) = latest else {
        return Some(TaskFacts {
            state: TaskState::Missing,
            every: every_text.clone(),
            latest: None,
            attested_at: None,
            due_at: None,
        });
    };
    let due =
        Timestamp::from_second(at.as_second().saturating_add(every)).unwrap_or(Timestamp::MAX);
    let state = if due <= now {
        TaskState::Stale
    } else if due.as_second() - now.as_second() <= DUE_SOON_DAYS * DAY_SECONDS {
        TaskState::DueSoon
    } else {
        TaskState::Fresh
    };
    Some(TaskFacts {
        state,
        every: every_text.clone(),
        latest: Some((i, attestation)),
        attested_at: Some(at),
        due_at: Some(due),
    })
}

/// The one applicable resource of a task: the target itself.
pub fn target_resource(target: &SecureScoreTarget) -> Option<Arc<Resource>> {
    let object = serde_json::json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "SecureScoreTarget",
        "metadata": {
            "name": target.metadata.name,
            "namespace": target.metadata.namespace,
            "labels": target.metadata.labels,
        },
    });
    Resource::new(object, None).ok().map(Arc::new)
}

/// A judged resource: what the evaluation scores.
pub type Judged = (Arc<Resource>, Verdict);

/// A task's facts and its judgement of the target (None when `action` is not a task).
pub fn judge(
    action: &CompiledAction,
    target: &SecureScoreTarget,
    assessment: &Assessment,
    now: Timestamp,
) -> Option<(TaskFacts, Vec<Judged>)> {
    let facts = facts(action, target, assessment, now)?;
    let judged = target_resource(target)
        .map(|r| vec![(r, facts.verdict())])
        .unwrap_or_default();
    Some((facts, judged))
}

/// Why a task cannot load (its check has CEL parts, or its period is not a duration): None
/// for a well-formed task. The CRD rejects these; actions read from files are checked here.
pub fn task_problem(action: &crate::api::ImprovementActionSpec) -> Option<String> {
    let check = &action.check;
    let task = check.attestation.as_ref()?;
    let extra = [
        ("resources", !check.resources.is_empty()),
        ("podSpec", check.pod_spec),
        ("validations", !check.validations.is_empty()),
        ("matchConditions", !check.match_conditions.is_empty()),
        ("variables", !check.variables.is_empty()),
        ("lookups", !check.lookups.is_empty()),
        ("examples", !check.examples.is_empty()),
    ];
    if let Some((field, _)) = extra.iter().find(|(_, set)| *set) {
        return Some(format!(
            "spec.check.{field}: a task (spec.check.attestation) applies to the target itself and has no {field}"
        ));
    }
    match parse_period(&task.every) {
        None => Some(format!(
            "spec.check.attestation.every: {:?} is not a duration such as 90d or 12h",
            task.every
        )),
        Some(d) if d.as_secs() == 0 => {
            Some("spec.check.attestation.every: must be longer than zero".into())
        }
        Some(_) => None,
    }
}
