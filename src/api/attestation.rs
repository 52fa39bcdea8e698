//! Security tasks: an `ImprovementAction` whose check is an attestation (`spec.check.attestation:
//! {every: 90d}`) instead of CEL, the attestations a `SecureScoreTarget` declares in Git
//! (`spec.attestations[]`), and what the status says about them.
//!
//! What a CRD rule cannot check (it sees neither the clock nor other objects) is enforced by
//! the engine (`engine::attestations`): an `attestedAt` in the future, or an attestation for an
//! action that is not a task of the target, is `Invalid` in `status.attestations[]`.

use super::action::Check;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A task is "due soon" (Event, alert) this many days before its attestation goes stale.
pub const DUE_SOON_DAYS: i64 = 14;

/// The check of a task: it is done by people, and a target attests that it was.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttestationCheck {
    /// How long one attestation keeps the task done, e.g. `90d`, `30d`, `365d` (units d, h,
    /// m, s, ms, as in `spec.interval` plus days). After it the task is `ToAddress` again.
    #[schemars(length(min = 2, max = 32), regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub every: String,
}

impl Check {
    /// Whether the action is a task (attested by the target) rather than a CEL check.
    pub fn is_task(&self) -> bool {
        self.attestation.is_some()
    }
}

/// A declaration, reviewed in Git, that a task was done: by whom, when, and the evidence.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.evidence.trim() != ''").message("an attestation needs evidence (a link to the review, the restore log, the ticket)"))]
#[x_kube(validation = kube::core::Rule::new("self.attestedBy.trim() != ''").message("an attestation needs attestedBy"))]
pub struct Attestation {
    /// The ImprovementAction (a task: its check is an `attestation`) that was done.
    #[schemars(length(min = 1, max = 253))]
    pub action: String,
    /// Who did it and vouches for it (a person or a team).
    #[schemars(length(min = 1, max = 128))]
    pub attested_by: String,
    /// When it was done (RFC 3339); not in the future. The task stays done until
    /// attestedAt + the action's `every`.
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub attested_at: String,
    /// Where the proof is: a link to the review, the restore log, the ticket.
    #[schemars(length(min = 1, max = 1024))]
    pub evidence: String,
    /// Anything the reviewer should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub note: Option<String>,
}

/// How a task stands for a target.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Attested, and not due within 14 days.
    Fresh,
    /// Attested, and stale within 14 days: still earning its points.
    DueSoon,
    /// The latest attestation is older than `every`: no points.
    Stale,
    /// Never (validly) attested: no points.
    Missing,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Fresh => "Fresh",
            TaskState::DueSoon => "DueSoon",
            TaskState::Stale => "Stale",
            TaskState::Missing => "Missing",
        }
    }

    /// Whether the task is done (earns its points).
    pub fn is_done(self) -> bool {
        matches!(self, TaskState::Fresh | TaskState::DueSoon)
    }
}

/// A task's row detail: its latest valid attestation and when the next one is due.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskAttestation {
    /// Fresh, DueSoon (stale within 14 days), Stale or Missing.
    pub state: TaskState,
    /// The action's period (`spec.check.attestation.every`).
    #[schemars(length(max = 32))]
    pub every: String,
    /// When the latest valid attestation says the task was done (absent: never attested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub attested_at: Option<String>,
    /// Who attested it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub attested_by: Option<String>,
    /// The evidence it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub evidence: Option<String>,
    /// When it goes stale: attestedAt + every (absent: never attested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub due_at: Option<String>,
    /// Index of the attestation in `spec.attestations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// State of one declared attestation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttestationState {
    /// The latest valid attestation of its task: the one that counts.
    Current,
    /// Valid, but a later one of the same task counts.
    Superseded,
    /// Ignored: attestedAt in the future or not a timestamp, evidence or attestedBy empty, or
    /// the action is not a task this target evaluates (see `message`).
    Invalid,
}

/// What the engine made of one entry of `spec.attestations`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttestationStatus {
    /// Index in `spec.attestations`.
    pub index: u32,
    /// The action it names.
    #[schemars(length(max = 253))]
    pub action: String,
    /// Current, Superseded or Invalid.
    pub state: AttestationState,
    /// Why it is Invalid, naming the field (e.g. `spec.attestations[2].attestedAt: ... is in
    /// the future`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub message: Option<String>,
}
