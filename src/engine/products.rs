//! Other products' findings: actions labelled `securescore.io/product` judge the reports
//! another tool writes (Trivy Operator's `VulnerabilityReport`s, the Policy Reports of Kyverno
//! and others). Whether a product is installed does not change the absolute posture: while it is
//! not detected its actions are `Unknown` (maxScore kept, 0 points), but that is a fact about
//! the cluster, not an incomplete inventory, so the target is not `Degraded`.
//!
//! A product is **detected** when at least one kind its selected actions apply to
//! (`check.resources`) is present: served by the API (in a cluster: listed, not yet synced or
//! forbidden all count as served), or, offline, declared at least once in the input. A detected
//! product's actions follow the usual rules (a kind the API does not serve makes them Unknown
//! and the target Degraded; no report at all makes them NotApplicable).

use super::check::CompiledAction;
use super::evaluate::ActionOutcome;
use super::resource::{Inventory, KindStatus};
use crate::api::{ActionState, PRODUCT_LABEL};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Trivy Operator (aquasecurity.github.io/v1alpha1 reports).
pub const TRIVY_OPERATOR: &str = "trivy-operator";
/// Policy Reports (wgpolicyk8s.io/v1alpha2), written by Kyverno and other policy engines.
pub const POLICY_REPORTS: &str = "policy-reports";
/// The products the built-in catalog has actions for, as their label values spell them.
pub const PRODUCTS: [&str; 2] = [TRIVY_OPERATOR, POLICY_REPORTS];

/// The `reason` prefix of an action's message while its product is not detected.
pub const NOT_DETECTED: &str = "ProductNotDetected";

/// The product an action reads the reports of, if any.
pub fn product_of(action: &CompiledAction) -> Option<&str> {
    action
        .labels
        .get(PRODUCT_LABEL)
        .map(String::as_str)
        .filter(|p| !p.is_empty())
}

fn kind_name(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// Whether one report kind is present (see the module documentation).
fn kind_present(inventory: &Inventory, group: &str, kind: &str) -> bool {
    if inventory.is_complete() {
        !inventory.of_kind(group, kind).is_empty()
    } else {
        inventory.kind_status(group, kind) != KindStatus::Missing
    }
}

/// The products among `actions` that are not detected, each with the kinds looked for.
pub fn not_detected(
    actions: &[Arc<CompiledAction>],
    inventory: &Inventory,
) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut kinds: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for a in actions {
        if let Some(p) = product_of(a) {
            kinds
                .entry(p.to_string())
                .or_default()
                .extend(a.kinds.iter().cloned());
        }
    }
    kinds.retain(|_, ks| !ks.iter().any(|(g, k)| kind_present(inventory, g, k)));
    kinds
}

/// Why `action` is Unknown when its product is among `undetected`: `ProductNotDetected: ...`
/// (served by the API in a cluster, declared in the input offline: see the module docs).
pub fn not_detected_message(
    action: &CompiledAction,
    undetected: &BTreeMap<String, BTreeSet<(String, String)>>,
) -> Option<String> {
    let product = product_of(action)?;
    let kinds = undetected.get(product)?;
    let names: Vec<String> = kinds.iter().map(|(g, k)| kind_name(g, k)).collect();
    // One wording for the cluster and offline, so that `scan` and the operator agree.
    Some(format!(
        "{NOT_DETECTED}: product {product} is not installed: none of its report kinds is present ({})",
        names.join(", ")
    ))
}

/// The products a status lists as not detected: those of the Unknown outcomes whose message
/// says so, sorted, each once.
pub fn listed(outcomes: &[ActionOutcome]) -> Vec<String> {
    let set: BTreeSet<&str> = outcomes
        .iter()
        .filter(|o| {
            o.state == ActionState::Unknown
                && o.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with(NOT_DETECTED))
        })
        .filter_map(|o| product_of(&o.action))
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// Whether a change to an object of `(group, kind)` can move a product's detection, so that an
/// incremental evaluation must start over: offline, the first or last report of a product's
/// kind appears or goes (`remaining` is how many the inventory holds after the change). In a
/// cluster, detection follows the kinds the API serves, which object changes do not move.
pub fn may_change_detection(
    actions: &[Arc<CompiledAction>],
    inventory: &Inventory,
    group: &str,
    kind: &str,
) -> bool {
    inventory.is_complete()
        && inventory.of_kind(group, kind).len() <= 1
        && actions
            .iter()
            .any(|a| product_of(a).is_some() && a.applies_to_kind(group, kind))
}
