#![allow(clippy::duplicated_attributes)] // kube-derive repeats printcolumn(type_ = ...)
//! `SecureScoreTarget`: what to evaluate, the team's goal, its declared exemptions, and the
//! status the operator (or `securescore scan`) computes for it.

use super::common::{Category, ResolutionState, is_false};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default evaluation interval.
pub const DEFAULT_INTERVAL: &str = "5m";
/// Default number of daily history points kept.
pub const DEFAULT_HISTORY_LIMIT: u32 = 90;

/// What to evaluate, the team's goal and its declared exemptions.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default)]
#[kube(
    group = "securescore.io",
    version = "v1alpha1",
    kind = "SecureScoreTarget",
    namespaced,
    shortname = "sst",
    category = "securescore",
    status = "SecureScoreTargetStatus",
    cel,
    printcolumn(name = "Score", type_ = "number", json_path = ".status.score"),
    printcolumn(name = "Max", type_ = "number", json_path = ".status.maxScore"),
    printcolumn(name = "Percent", type_ = "number", json_path = ".status.percentage"),
    printcolumn(name = "Goal", type_ = "integer", json_path = ".spec.goal"),
    printcolumn(name = "Zone", type_ = "string", json_path = ".status.zone"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SecureScoreTargetSpec {
    /// What is evaluated. Default: the target's own namespace.
    #[serde(default)]
    pub scope: Scope,
    /// Which improvement actions apply. Default: all.
    #[serde(default)]
    pub actions: ActionSelection,
    /// How often to evaluate (e.g. `5m`, `1h`); changes also trigger an evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub interval: Option<String>,
    /// The team's goal, as a percentage (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 100").message("goal is a percentage between 0 and 100"))]
    pub goal: Option<u32>,
    /// Score zones (percentages); default good 80, okay 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Zones>,
    /// Declared exemptions, reviewed in Git: accepted risks, third-party or alternate
    /// mitigations, and planned fixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub exemptions: Vec<Exemption>,
    /// Security tasks done, reviewed in Git: each names a task (an action whose check is an
    /// attestation), who did it, when, and the evidence. The latest valid attestation of a task
    /// earns its points until attestedAt + the task's `every`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub attestations: Vec<super::attestation::Attestation>,
    /// How many daily history points to keep (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 400))]
    pub history_limit: Option<u32>,
    /// Stop evaluating; status keeps its last values.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// How the score is made: `ImprovementActions` (default; the sum of the actions' points)
    /// or `SecurityControls` (Defender for Cloud's model: the sum of the SecurityControls'
    /// points, where a resource counts as healthy only when every applicable action of the
    /// control judges it compliant or resolved).
    #[serde(default, skip_serializing_if = "ScoringModel::is_default")]
    pub model: ScoringModel,
}

/// How a target's score is made.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScoringModel {
    /// Score = the sum of the selected improvement actions' points.
    #[default]
    ImprovementActions,
    /// Score = the sum of the SecurityControls' points; the actions' own points are not used.
    SecurityControls,
}

impl ScoringModel {
    pub fn is_default(&self) -> bool {
        *self == ScoringModel::ImprovementActions
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScoringModel::ImprovementActions => "ImprovementActions",
            ScoringModel::SecurityControls => "SecurityControls",
        }
    }
}

/// What a target evaluates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Namespaces: names ∪ selector − exclude. Absent: the target's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceScope>,
    /// Also evaluate cluster-scoped kinds (ClusterRole, ClusterRoleBinding, Namespace, Node...).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_resources: bool,
}

/// Namespaces in a target's scope.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceScope {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub names: Vec<String>,
    /// Namespaces by label; `{}` matches every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Namespaces removed from the scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub exclude: Vec<String>,
}

/// Which actions a target evaluates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionSelection {
    /// Actions whose labels match (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Actions by name, added to what the selector picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub include: Vec<String>,
    /// Actions by name, removed (mandatory actions cannot be removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub exclude: Vec<String>,
}

/// Score zones, as percentages: `good` and above is Good, `okay` and above is Okay, else Poor.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.okay <= self.good").message("zones.okay must not exceed zones.good"))]
pub struct Zones {
    /// Lowest percentage in the Good zone.
    #[schemars(range(min = 0, max = 100))]
    pub good: u32,
    /// Lowest percentage in the Okay zone.
    #[schemars(range(min = 0, max = 100))]
    pub okay: u32,
}

impl Default for Zones {
    fn default() -> Self {
        Zones { good: 80, okay: 50 }
    }
}

/// A declared exemption (GitOps-style: owner, reason, ticket, approval and expiry).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.owner) && self.owner != ''").message("an exemption needs an owner"))]
#[x_kube(validation = kube::core::Rule::new("has(self.reason) && self.reason != ''").message("an exemption needs a reason"))]
#[x_kube(validation = kube::core::Rule::new("has(self.approvedAt)").message("an exemption needs approvedAt"))]
#[x_kube(validation = kube::core::Rule::new("has(self.expiresAt) || (has(self.openEnded) && self.openEnded)").message("an exemption needs expiresAt, or openEnded: true where the action's policy allows it"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.expiresAt) || !has(self.approvedAt) || self.expiresAt > self.approvedAt").message("expiresAt must be after approvedAt"))]
#[x_kube(validation = kube::core::Rule::new("self.resolution != 'Planned' || has(self.dueDate)").message("a Planned exemption needs a dueDate"))]
pub struct Exemption {
    /// Unique name within the target.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The ImprovementAction it applies to.
    #[schemars(length(min = 1, max = 253))]
    pub action: String,
    /// What is declared.
    pub resolution: ResolutionState,
    /// Which resources it covers; absent or empty (`{}`, empty lists, a `{}` selector): every
    /// resource of the action, as a whole-action exemption (which a resource-specific one
    /// outranks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ExemptionResources>,
    /// Who owns the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub owner: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
    /// Tracking ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub ticket: Option<String>,
    /// When it was approved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub approved_at: Option<String>,
    /// When it stops applying (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// Declare an exemption without expiry; only valid where the action's exemption policy
    /// has `allowOpenEnded: true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub open_ended: bool,
    /// For `Planned`: when the fix is due (RFC 3339); past it the exemption is Overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub due_date: Option<String>,
}

/// The resources an exemption covers; every given field must match.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionResources {
    /// Namespaces of the covered resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub namespaces: Vec<String>,
    /// Names of the covered resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub names: Vec<String>,
    /// Labels of the covered resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Score zone of a target.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Good,
    Okay,
    Poor,
}

/// State of one action for one target (first match wins, in this order).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum ActionState {
    NotApplicable,
    Unknown,
    Completed,
    ToAddress,
    Planned,
    RiskAccepted,
    ResolvedAlternate,
    ResolvedThirdParty,
}

impl ActionState {
    pub const ALL: [ActionState; 8] = [
        ActionState::NotApplicable,
        ActionState::Unknown,
        ActionState::Completed,
        ActionState::ToAddress,
        ActionState::Planned,
        ActionState::RiskAccepted,
        ActionState::ResolvedAlternate,
        ActionState::ResolvedThirdParty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::NotApplicable => "NotApplicable",
            ActionState::Unknown => "Unknown",
            ActionState::Completed => "Completed",
            ActionState::ToAddress => "ToAddress",
            ActionState::Planned => "Planned",
            ActionState::RiskAccepted => "RiskAccepted",
            ActionState::ResolvedAlternate => "ResolvedAlternate",
            ActionState::ResolvedThirdParty => "ResolvedThirdParty",
        }
    }
}

/// State of one declared exemption.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExemptionState {
    Active,
    Expired,
    Invalid,
    Unused,
    Overdue,
}

/// The computed posture of a target.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecureScoreTargetStatus {
    /// Points achieved (2 decimals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Points available from applicable actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_score: Option<f64>,
    /// 100 × score ÷ maxScore (2 decimals); absent when nothing is applicable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// Zone of the percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
    /// Where maxScore's points are: achieved + mitigated + accepted + toAddress = maxScore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    /// Score per category.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub categories: Vec<CategoryScore>,
    /// Actions ranked by points to gain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub actions: Vec<ActionResult>,
    /// State of each declared exemption.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub exemptions: Vec<ExemptionStatus>,
    /// What the engine made of each declared attestation (Current, Superseded, Invalid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub attestations: Vec<super::attestation::AttestationStatus>,
    /// One point per UTC day: the last complete, non-degraded evaluation of that day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 400))]
    pub history: Vec<HistoryPoint>,
    /// What changed since the last evaluation of a previous day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// Rank within the target's benchmark group (only for groups of at least 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Actions the target excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub excluded_actions: Vec<String>,
    /// `Ready`, `GoalMet`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the evaluation ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub last_evaluated: Option<String>,
    /// Number of objects the evaluation read.
    #[serde(default)]
    pub evaluated_resources: u64,
    /// Revision of the selected actions' definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub catalog_revision: Option<String>,
    /// Whether findings or rows were trimmed to keep the status small.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Per framework the selected actions reference (`spec.references[].framework`): its
    /// controls passed, failed and counted. A control passes when every applicable action that
    /// names it is Completed, ResolvedThirdParty or ResolvedAlternate; it fails when any is
    /// ToAddress, Planned, RiskAccepted or Unknown; a control no applicable action covers is not
    /// counted. Preview actions are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub frameworks: Vec<FrameworkStatus>,
    /// Products (the `securescore.io/product` label of selected actions, e.g. `trivy-operator`)
    /// none of whose report kinds the API serves (offline: none found in the input). Their
    /// actions are Unknown (maxScore kept, 0 points) but the target is not Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 63)))]
    pub products_not_detected: Vec<String>,
    /// Security controls ranked by points to gain; only in the SecurityControls model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub controls: Vec<ControlResult>,
    /// Selected, scored actions that no SecurityControl groups: evaluated and listed, but they
    /// score nothing in the SecurityControls model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub actions_not_in_controls: Vec<String>,
}

/// How a target fares against one framework's controls.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkStatus {
    /// Framework name as the actions' `spec.references[].framework` spell it.
    #[schemars(length(max = 128))]
    pub framework: String,
    /// Controls every applicable covering action satisfies (Completed or resolved).
    pub passed: u64,
    /// Controls some applicable covering action does not satisfy (ToAddress, Planned,
    /// RiskAccepted or Unknown).
    pub failed: u64,
    /// passed + failed: the controls at least one applicable action covers.
    pub total: u64,
    /// Controls named by the selected actions that nothing in scope made applicable (not in total).
    pub not_applicable: u64,
    /// 100 × passed ÷ total (2 decimals); absent when total is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// The failed controls, sorted (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(length(max = 256)))]
    pub failed_controls: Vec<String>,
}

/// One security control's result for a target (SecurityControls model).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControlResult {
    /// Name of the SecurityControl.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Title of the control.
    #[schemars(length(max = 128))]
    pub title: String,
    /// NotApplicable (no applicable resource), Unknown (an action of the control is Unknown),
    /// Completed (every resource compliant), ToAddress, Planned, RiskAccepted,
    /// ResolvedAlternate or ResolvedThirdParty (the worst resource decides, as for an action).
    pub state: ActionState,
    /// Points: maxScore × healthy ÷ applicable (2 decimals).
    pub score: f64,
    /// The control's maxScore (0 when NotApplicable).
    pub max_score: f64,
    /// Points still to gain by making the unhealthy resources healthy.
    pub points_to_gain: f64,
    /// Applicable resources compliant (or resolved by a third party or an alternate control)
    /// under every applicable action of the control.
    pub healthy: u64,
    /// Applicable resources failing at least one applicable action of the control (accepted
    /// risks included: they never count as healthy).
    pub unhealthy: u64,
    /// Resources at least one applicable action of the control applies to.
    pub applicable: u64,
    /// The selected, scored actions the control groups for this target, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub actions: Vec<String>,
    /// Why the control is Unknown, or other context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}

/// Where a target's points are.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    /// Points from compliant resources.
    pub achieved: f64,
    /// Points from resources resolved by a third party or an alternate control (unverified).
    pub mitigated: f64,
    /// Points forgone by accepted risks.
    pub accepted: f64,
    /// Points still to gain (planned or not).
    pub to_address: f64,
    /// Score plus the points to gain of planned fixes.
    pub projected_score: f64,
    /// maxScore minus accepted.
    pub achievable_score: f64,
}

/// Score of one category.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CategoryScore {
    /// The category (Identity, Data, Device, Apps, Infrastructure).
    pub category: Category,
    /// Points achieved in the category (2 decimals).
    pub score: f64,
    /// Points available in the category: the maxScore of its applicable actions.
    pub max_score: f64,
    /// Points still to gain in the category by addressing its actions.
    pub points_to_gain: f64,
}

/// One action's result for the target.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// Name of the ImprovementAction.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Title of the action.
    #[schemars(length(max = 128))]
    pub title: String,
    /// Category of the action.
    pub category: Category,
    /// State of the action for this target (first match: NotApplicable, Unknown, Completed, ToAddress, Planned, RiskAccepted, ResolvedAlternate, ResolvedThirdParty).
    pub state: ActionState,
    /// Points the action contributes to the target (2 decimals).
    pub score: f64,
    /// The action's maxScore (0 when NotApplicable or preview).
    pub max_score: f64,
    /// Points still to gain by addressing the action (what the ranking sorts by).
    pub points_to_gain: f64,
    /// Applicable resources that are compliant.
    pub compliant: u64,
    /// Applicable resources that are non-compliant or failed to evaluate, Planned ones included.
    pub non_compliant: u64,
    /// Applicable resources covered by an active exemption or resolution (other than Planned).
    pub exempt: u64,
    /// Resources the action applies to in the target's scope.
    pub applicable: u64,
    /// Resources whose check failed to evaluate (counted as non-compliant).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// Points come from third-party or alternate resolutions nobody verified.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unverified: bool,
    /// A preview action: reported, never scored.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preview: bool,
    /// Revision of the action's definition that was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub revision: Option<String>,
    /// Why the action is Unknown, or other context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// Up to 10 sample findings, the first by namespace/kind/name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub findings: Vec<Finding>,
    /// For a task: when it was last attested, by whom, the evidence, and when it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<super::attestation::TaskAttestation>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A non-compliant resource.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// apiVersion of the resource.
    #[schemars(length(max = 253))]
    pub api_version: String,
    /// Kind of the resource.
    #[schemars(length(max = 63))]
    pub kind: String,
    /// Namespace of the resource (absent for cluster-scoped resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub namespace: Option<String>,
    /// Name of the resource.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Why the resource is not compliant (never quotes secret values).
    #[schemars(length(max = 512))]
    pub message: String,
}

/// State of one declared exemption.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionStatus {
    /// Name of the exemption in spec.exemptions.
    #[schemars(length(max = 63))]
    pub name: String,
    /// The ImprovementAction it exempts.
    #[schemars(length(max = 253))]
    pub action: String,
    /// Active, Expired, Invalid, Unused or Overdue.
    pub state: ExemptionState,
    /// Whole days until expiry (absent when open-ended or no longer active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Resources it covers in this evaluation.
    #[serde(default)]
    pub covered: u64,
    /// Why it is in this state (e.g. the policy it breaks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub message: Option<String>,
}

/// The score of one UTC day.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    /// UTC day, `YYYY-MM-DD`.
    #[schemars(length(max = 10))]
    pub date: String,
    /// Score of the day's last complete evaluation.
    pub score: f64,
    /// Maximum score of that evaluation.
    pub max_score: f64,
    /// Percentage of that evaluation (absent when nothing was applicable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// Revision of the selected actions' definitions on that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub catalog_revision: Option<String>,
}

/// What changed since the last evaluation of a previous day (the baseline).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// The UTC day of the baseline.
    #[schemars(length(max = 10))]
    pub since: String,
    /// Points gained by actions whose definition did not change.
    pub points_achieved: f64,
    /// Points lost by actions whose definition did not change.
    pub points_regressed: f64,
    /// Actions that lost points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub regressed_actions: Vec<String>,
    /// The selected actions' definitions changed since the baseline (never a regression).
    #[serde(default, skip_serializing_if = "is_false")]
    pub catalog_changed: bool,
    /// The baseline's per-action points and definition revisions, for the next comparison.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baseline: BTreeMap<String, BaselineAction>,
    /// The baseline's catalog revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub baseline_revision: Option<String>,
}

/// One action's points at the baseline.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BaselineAction {
    /// Points the action had at the baseline.
    pub score: f64,
    /// Revision of the action's definition at the baseline.
    #[schemars(length(max = 64))]
    pub revision: String,
}

/// Where the target stands in its benchmark group; never another target's number.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The benchmark group: the `securescore.io/benchmark-group` label of the target's Namespace.
    #[schemars(length(max = 63))]
    pub group: String,
    /// Number of targets in the group.
    pub group_size: u64,
    /// 1 = best.
    pub rank: u64,
    /// Share of the group at or below this target's percentage (0-100).
    pub percentile: f64,
    /// Median percentage of the group.
    pub median_percentage: f64,
}
