//! The custom resources: `ImprovementAction` (cluster-scoped) and `SecureScoreTarget`
//! (namespaced), group `securescore.io/v1alpha1`, plus the small types both share.
//!
//! These types are the single source of the CRD YAML in `crds/` (see `securescore crds`).

mod action;
mod attestation;
mod common;
mod control;
mod interval;
pub mod schema;
mod target;

pub use action::*;
pub use attestation::*;
pub use common::*;
pub use control::*;
pub use interval::{MIN_INTERVAL, parse_interval, parse_period};
pub use target::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of both custom resources.
pub const GROUP: &str = "securescore.io";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
/// Label that makes an action impossible for targets to exclude.
pub const MANDATORY_LABEL: &str = "securescore.io/mandatory";
/// Label naming the product whose reports an action reads (`trivy-operator`, `policy-reports`):
/// such an action is Unknown without degrading the target while the product is not installed.
pub const PRODUCT_LABEL: &str = "securescore.io/product";
/// Label on a Namespace naming the group its targets are compared within.
pub const BENCHMARK_GROUP_LABEL: &str = "securescore.io/benchmark-group";

/// Bound given to arrays that the Rust types leave unbounded (e.g. inside `LabelSelector`).
const DEFAULT_MAX_ITEMS: u64 = 64;
/// Bound given to strings that the Rust types leave unbounded.
const DEFAULT_MAX_LENGTH: u64 = 1024;

/// The CRDs, in a stable order (ImprovementAction, SecureScoreTarget, SecurityControl). Every
/// array gets `maxItems` and every string `maxLength`, so CRD CEL rules stay within the API
/// server's cost budget.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [ImprovementAction::crd(), SecureScoreTarget::crd()]
        .into_iter()
        .chain([SecurityControl::crd()])
        .map(|mut crd| {
            for version in &mut crd.spec.versions {
                if let Some(schema) = version
                    .schema
                    .as_mut()
                    .and_then(|s| s.open_api_v3_schema.as_mut())
                {
                    bound_schema(schema);
                }
            }
            crd
        })
        .collect()
}

fn bound_schema(
    schema: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
) {
    match schema.type_.as_deref() {
        Some("array") if schema.max_items.is_none() => {
            schema.max_items = Some(DEFAULT_MAX_ITEMS as i64)
        }
        Some("string")
            if schema.max_length.is_none()
                && schema.enum_.is_none()
                && schema.format.as_deref() != Some("date-time") =>
        {
            schema.max_length = Some(DEFAULT_MAX_LENGTH as i64)
        }
        _ => {}
    }
    if let Some(props) = schema.properties.as_mut() {
        props.values_mut().for_each(bound_schema);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        bound_schema(items);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) =
        schema.additional_properties.as_mut()
    {
        bound_schema(extra);
    }
}

/// The CRDs as one multi-document YAML stream, exactly as committed in `crds/`.
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| serde_yaml_ng::to_string(crd).expect("a CRD always serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}
