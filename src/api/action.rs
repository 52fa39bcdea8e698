#![allow(clippy::duplicated_attributes)] // kube-derive repeats printcolumn(type_ = ...)
//! `ImprovementAction`: a security recommendation, its points and its CEL check.

use super::common::{Category, Level, Reference, ResolutionState, Threat, is_false};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Longest CEL expression accepted (bytes).
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Longest validation message accepted (characters).
pub const MAX_MESSAGE_LEN: usize = 256;

/// A security recommendation: what to check, what it is worth, and how to fix it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug)]
#[kube(
    group = "securescore.io",
    version = "v1alpha1",
    kind = "ImprovementAction",
    shortname = "ia",
    category = "securescore",
    status = "ImprovementActionStatus",
    cel,
    printcolumn(name = "Category", type_ = "string", json_path = ".spec.category"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxScore"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Resolution",
        type_ = "string",
        json_path = ".spec.resolution.state"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ImprovementActionSpec {
    /// Short imperative title, e.g. "Run containers as non-root".
    #[schemars(length(min = 1, max = 128))]
    pub title: String,
    /// What the recommendation protects against and why it matters (markdown).
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub description: String,
    /// What to change to become compliant, ideally with a YAML snippet (markdown).
    #[serde(default)]
    #[schemars(length(max = 8192))]
    pub remediation: String,
    /// One of Microsoft Secure Score's five categories.
    pub category: Category,
    /// Points the action is worth for a target (1-100; the built-in catalog uses 1-10).
    #[schemars(range(min = 1, max = 100))]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 100").message("maxScore must be between 1 and 100"))]
    pub max_score: u32,
    /// How much the fix affects the workloads' users.
    #[serde(default)]
    pub user_impact: Level,
    /// How much work the fix is.
    #[serde(default)]
    pub implementation_cost: Level,
    /// Threats the recommendation mitigates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub threats: Vec<Threat>,
    /// Controls in published frameworks this action implements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub references: Vec<Reference>,
    /// A preview action is evaluated and reported but never scored.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preview: bool,
    /// What the action checks.
    pub check: Check,
    /// A resolution declared for every target (a target's own exemptions take precedence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ActionResolution>,
    /// What targets may declare about this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption_policy: Option<ExemptionPolicy>,
}

/// The check: which objects it applies to and the CEL that judges them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.attestation) || self.podSpec || size(self.resources) > 0").message("a check needs resources or podSpec: true"))]
#[x_kube(validation = kube::core::Rule::new("!(self.podSpec && size(self.resources) > 0)").message("resources and podSpec: true are mutually exclusive"))]
#[x_kube(validation = kube::core::Rule::new("has(self.attestation) != (has(self.validations) && size(self.validations) > 0)").message("a check has exactly one of validations (CEL) or attestation (a task)"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.attestation) || (!self.podSpec && size(self.resources) == 0 && (!has(self.matchConditions) || size(self.matchConditions) == 0) && (!has(self.lookups) || size(self.lookups) == 0) && (!has(self.variables) || size(self.variables) == 0) && (!has(self.examples) || size(self.examples) == 0))").message("a task (attestation) applies to the target itself: no resources, podSpec, matchConditions, variables, lookups or examples"))]
pub struct Check {
    /// Kinds the check applies to. Leave empty when `podSpec` is true.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub resources: Vec<ResourceKind>,
    /// Apply the check to every workload with a pod template (Pod, Deployment, StatefulSet,
    /// DaemonSet, ReplicaSet, Job, CronJob) through the normalised `podSpec` variable. Objects
    /// owned by a workload that is itself evaluated are counted once, through their owner.
    #[serde(default)]
    pub pod_spec: bool,
    /// Only namespaces whose labels match are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Only objects whose labels match are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
    /// Namespaces never evaluated by this action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub exclude_namespaces: Vec<String>,
    /// CEL expressions that must all be true for an object to be applicable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub match_conditions: Vec<MatchCondition>,
    /// Named CEL expressions, available as `variables.<name>` (later ones may use earlier ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub variables: Vec<Variable>,
    /// Other lists the expressions may read as `lookups.<name>`, limited to the evaluating
    /// target's scope (the object's own namespace, plus cluster-scoped objects when allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub lookups: Vec<Lookup>,
    /// A resource is compliant when every validation holds. Required, unless the action is a
    /// task (`attestation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub validations: Vec<Validation>,
    /// Makes the action a task instead of a CEL check: done by people and attested by each
    /// target in `spec.attestations`. It applies to the target itself and scores Binary: its
    /// points while the latest attestation is younger than `every`, none when it is missing
    /// or stale. Exclusive with `validations`, `resources` and `podSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<super::attestation::AttestationCheck>,
    /// How applicable resources turn into points.
    #[serde(default)]
    pub scoring: Scoring,
    /// Small objects the action must judge as stated; run whenever the action is loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub examples: Vec<CheckExample>,
}

/// A kind the check applies to.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceKind {
    /// API group; empty for the core group.
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// Kind, e.g. `ClusterRoleBinding`.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

/// A precondition for applicability.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MatchCondition {
    /// Name, for messages.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// CEL expression that evaluates to a bool.
    #[schemars(length(min = 1, max = 4096))]
    pub expression: String,
}

/// A named CEL expression, as in ValidatingAdmissionPolicy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    /// Name, referenced as `variables.<name>`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    )]
    pub name: String,
    /// CEL expression.
    #[schemars(length(min = 1, max = 4096))]
    pub expression: String,
}

/// Another list of objects that expressions may read, for cross-resource checks.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    /// Name, referenced as `lookups.<name>`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    )]
    pub name: String,
    /// API group; empty for the core group.
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// Kind of the listed objects.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

/// One rule a compliant resource satisfies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// CEL expression that evaluates to true for a compliant resource.
    #[schemars(length(min = 1, max = 4096))]
    pub expression: String,
    /// Finding message when the expression is false. Never quote values that could be secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub message: Option<String>,
    /// CEL expression producing the finding message (takes precedence over `message`). Its
    /// result is published as it is (scan output, the target's status): name the failing
    /// field or key, never a value read from the object (Secret data above all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub message_expression: Option<String>,
    /// Machine-readable reason for the finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub reason: Option<String>,
}

/// How an action's applicable resources turn into points.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scoring {
    /// maxScore × awarded ÷ applicable.
    #[default]
    Proportional,
    /// maxScore only when every applicable resource is awarded, else 0.
    Binary,
}

/// The expected verdict of an example.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedResult {
    Compliant,
    NonCompliant,
    NotApplicable,
}

/// A small object the action must judge as stated.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CheckExample {
    /// A Kubernetes object with apiVersion, kind and metadata.
    #[schemars(schema_with = "preserve_unknown_object")]
    pub object: serde_json::Value,
    /// What the action must say about it.
    pub expect: ExpectedResult,
}

/// A resolution the platform team declares on the action itself.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.state != 'Planned' || has(self.dueDate)").message("a Planned resolution needs a dueDate"))]
pub struct ActionResolution {
    /// The declared state.
    pub state: ResolutionState,
    /// Who owns the decision (a team or person).
    #[schemars(length(min = 1, max = 128))]
    pub owner: String,
    /// Why.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Tracking ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub ticket: Option<String>,
    /// When it was approved (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub approved_at: Option<String>,
    /// When it stops applying (RFC 3339). Absent: open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub expires_at: Option<String>,
    /// For `Planned`: when the fix is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub due_date: Option<String>,
}

/// What targets may declare about an action.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionPolicy {
    /// Resolutions targets may declare; default: all four. Empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4))]
    pub allowed_resolutions: Option<Vec<ResolutionState>>,
    /// Longest allowed span from approvedAt to expiresAt, in days (default 365).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_days: Option<u32>,
    /// Whether exemptions without expiresAt (declared `openEnded: true`) are allowed (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_open_ended: bool,
}

impl Check {
    /// Indexes of the validations whose `messageExpression` reads a Secret's values (`data` or
    /// `stringData`, directly or through a variable), in a check that reads Secrets (as its
    /// resources or through a lookup). Such a message quotes secret values into findings, and
    /// in the operator into statuses other teams can read. A textual reading of the
    /// expressions: it catches the plain ways of writing it, not every alias.
    pub fn messages_reading_secret_data(&self) -> Vec<usize> {
        let is_secret = |group: &str, kind: &str| group.is_empty() && kind == "Secret";
        let reads_secrets = self
            .resources
            .iter()
            .any(|r| is_secret(&r.api_group, &r.kind))
            || self
                .lookups
                .iter()
                .any(|l| is_secret(&l.api_group, &l.kind));
        if !reads_secrets {
            return Vec::new();
        }
        // Variables in order: a later one may read an earlier one.
        let mut tainted: Vec<&str> = Vec::new();
        let reads = |expression: &str, tainted: &[&str]| {
            SECRET_VALUE_FIELDS
                .iter()
                .any(|f| selects_field(expression, f))
                || tainted.iter().any(|v| selects_field(expression, v))
        };
        for v in &self.variables {
            if reads(&v.expression, &tainted) {
                tainted.push(&v.name);
            }
        }
        self.validations
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v.message_expression
                    .as_deref()
                    .is_some_and(|m| reads(m, &tainted))
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// The fields of a Secret that hold its values.
const SECRET_VALUE_FIELDS: [&str; 2] = ["data", "stringData"];

/// Whether a CEL expression selects `field` (`x.field`, `x['field']`, `x["field"]`).
fn selects_field(expression: &str, field: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    expression.match_indices(field).any(|(at, _)| {
        let before = expression[..at].trim_end();
        let after = &expression[at + field.len()..];
        let selected = before.ends_with('.') && !after.starts_with(ident);
        let indexed = ['\'', '"']
            .iter()
            .any(|q| before.ends_with(&format!("[{q}")) && after.starts_with(&format!("{q}]")));
        selected || indexed
    })
}

impl ExemptionPolicy {
    pub const DEFAULT_MAX_DAYS: u32 = 365;

    pub fn allows(&self, state: ResolutionState) -> bool {
        self.allowed_resolutions
            .as_ref()
            .is_none_or(|list| list.contains(&state))
    }

    pub fn max_days(&self) -> u32 {
        self.max_days.unwrap_or(Self::DEFAULT_MAX_DAYS)
    }
}

/// What the operator reports about an action: whether it loaded, and cluster-wide totals only
/// (never per-target rows, so reading an action reveals no team's posture).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImprovementActionStatus {
    /// `Ready`: the check compiled and its examples passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Revision of this action's definition (a hash of its spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub catalog_revision: Option<String>,
    /// Number of targets that evaluate this action. This and the resource counts below are
    /// refreshed at most once a second while targets keep changing.
    #[serde(default)]
    pub targets: u64,
    /// Compliant resources, summed over targets.
    #[serde(default)]
    pub compliant: u64,
    /// Non-compliant (and error) resources without a resolution, summed over targets.
    #[serde(default)]
    pub non_compliant: u64,
    /// Exempt resources, summed over targets.
    #[serde(default)]
    pub exempt: u64,
}

pub(crate) fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
