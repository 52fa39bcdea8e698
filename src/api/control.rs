#![allow(clippy::duplicated_attributes)] // kube-derive repeats printcolumn(type_ = ...)
//! `SecurityControl`: Defender for Cloud's grouping of improvement actions. A target in the
//! `SecurityControls` model is scored per control: a resource is healthy only when every
//! applicable action of the control judges it compliant (or resolved).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most actions a control may name.
pub const MAX_CONTROL_ACTIONS: usize = 256;

/// A security control: a group of improvement actions scored together, resource by resource.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "securescore.io",
    version = "v1alpha1",
    kind = "SecurityControl",
    shortname = "secctl",
    category = "securescore",
    status = "SecurityControlStatus",
    cel,
    printcolumn(name = "Title", type_ = "string", json_path = ".spec.title"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxScore"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("size(self.actions) > 0 || has(self.actionSelector)").message("a control needs actions (by name) or an actionSelector"))]
pub struct SecurityControlSpec {
    /// Short title, e.g. "Restrict privileged workloads".
    #[schemars(length(min = 1, max = 128))]
    pub title: String,
    /// What the control protects against and why it matters (markdown).
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub description: String,
    /// Points the control is worth for a target in the SecurityControls model (1-100, the
    /// bound of an action's maxScore; the built-in controls use Defender for Cloud's 1-10).
    #[schemars(range(min = 1, max = 100))]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 100").message("maxScore must be between 1 and 100"))]
    pub max_score: u32,
    /// ImprovementActions grouped by name (added to what `actionSelector` picks).
    #[serde(default)]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub actions: Vec<String>,
    /// ImprovementActions grouped by their labels (added to `actions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_selector: Option<LabelSelector>,
}

/// What the operator reports about a control: whether it groups any action.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityControlStatus {
    /// `Ready`: True when the control groups at least one known action; False with reason
    /// `NoActions` when it groups none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The known ImprovementActions the control groups now, by name, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub actions: Vec<String>,
}
