//! Types shared by both custom resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Microsoft Secure Score's five categories, mapped to Kubernetes.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Category {
    /// RBAC, service accounts and tokens.
    Identity,
    /// Secrets, volumes and encryption-related settings.
    Data,
    /// Node and host access: privileged, host namespaces, hostPath, capabilities.
    Device,
    /// Workload hygiene: images, probes, resources, security contexts.
    Apps,
    /// Network policies, exposure of services and ingresses, API-facing configuration.
    Infrastructure,
}

impl Category {
    /// Every category, in the order reports list them.
    pub const ALL: [Category; 5] = [
        Category::Identity,
        Category::Data,
        Category::Device,
        Category::Apps,
        Category::Infrastructure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Identity => "Identity",
            Category::Data => "Data",
            Category::Device => "Device",
            Category::Apps => "Apps",
            Category::Infrastructure => "Infrastructure",
        }
    }
}

/// A three-step scale for user impact and implementation cost.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
)]
pub enum Level {
    #[default]
    Low,
    Moderate,
    High,
}

/// Threats an action mitigates (MITRE ATT&CK-style tactics plus container-specific ones).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Threat {
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenseEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Collection,
    DataExfiltration,
    ContainerEscape,
    DenialOfService,
    Impact,
}

/// A pointer into a published framework.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Framework name, e.g. `Pod Security Standards`, `CIS Kubernetes Benchmark`, `NSA/CISA`.
    #[schemars(length(min = 1, max = 128))]
    pub framework: String,
    /// Control identifier or section inside the framework, e.g. `5.2.2` or `Baseline: Privileged Containers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub control: Option<String>,
    /// Link to the control's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub url: Option<String>,
}

/// A declared resolution of findings (Microsoft Secure Score's "resolve" states).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum ResolutionState {
    /// Will be fixed: points stay as measured, counted toward `projectedScore`, still "to address".
    Planned,
    /// The risk is accepted: points stay as measured (never more), not listed as "to address".
    RiskAccepted,
    /// Mitigated by another tool: full points for the covered resources, flagged unverified.
    ResolvedThirdParty,
    /// Mitigated by an alternate control: full points for the covered resources, flagged unverified.
    ResolvedAlternate,
}

impl ResolutionState {
    /// Every resolution, the default of `exemptionPolicy.allowedResolutions`.
    pub const ALL: [ResolutionState; 4] = [
        ResolutionState::Planned,
        ResolutionState::RiskAccepted,
        ResolutionState::ResolvedThirdParty,
        ResolutionState::ResolvedAlternate,
    ];

    /// Whether the covered resources are awarded full points.
    pub fn awards_points(self) -> bool {
        matches!(
            self,
            ResolutionState::ResolvedThirdParty | ResolutionState::ResolvedAlternate
        )
    }

    /// Rank by generosity (points awarded); among equal declarations the least generous wins.
    pub fn generosity(self) -> u8 {
        match self {
            ResolutionState::RiskAccepted => 0,
            ResolutionState::Planned => 1,
            ResolutionState::ResolvedAlternate => 2,
            ResolutionState::ResolvedThirdParty => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionState::Planned => "Planned",
            ResolutionState::RiskAccepted => "RiskAccepted",
            ResolutionState::ResolvedThirdParty => "ResolvedThirdParty",
            ResolutionState::ResolvedAlternate => "ResolvedAlternate",
        }
    }
}

/// Serde helper: `false` is the default and is not written.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
