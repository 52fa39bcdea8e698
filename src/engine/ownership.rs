//! Who owns an object, for pod-template de-duplication: the one owner-chain walk that the full
//! and the incremental evaluation share.
//!
//! An owned object is skipped by a pod-template action when its top-most owner is judged by the
//! same action: the object is an instance of that owner's template. An `ownerReferences` entry
//! is written by whoever creates the object, so the walk believes a reference only as far as
//! Kubernetes itself would, and only where a Kubernetes controller really stamps the dependent
//! out of the owner's template:
//!
//! - **The edge is a template edge.** ReplicaSet, StatefulSet, DaemonSet and Job create Pods,
//!   Deployment creates ReplicaSets, CronJob creates Jobs. Nothing else creates an object from
//!   another's pod template (a Pod naming a Deployment, or a Pod naming a Pod, was written by
//!   hand and is judged itself). Owners of other kinds end the walk.
//! - **Same namespace.** The garbage collector looks a namespaced owner up in the dependent's
//!   namespace only, and a cluster-scoped dependent cannot have a namespaced owner (every
//!   template kind is namespaced). A same-named object in another namespace is not the owner.
//! - **Same uid, kind, name and API group.** The garbage collector finds the owner by
//!   group/kind/namespace/name and treats it as absent when its uid differs from the
//!   reference's. We do the same, and go one step further where uids are missing: the uids
//!   must be equal as optional values. In a cluster every reference and every object has a uid
//!   (the API server rejects a reference without one), so this is exactly the collector's rule.
//!   Offline, manifests in Git carry no uids: a reference without a uid matches an owner
//!   without a uid by namespace/kind/name, which is what the author declared in the same
//!   review. A uid on one side only cannot be checked, so it does not match.
//! - **One controller.** The API server accepts at most one `controller: true` reference;
//!   an object with several has no controller here (it is judged itself).
//! - **No loops.** The template edges climb (Pod → ReplicaSet → Deployment, Pod → Job →
//!   CronJob), so a chain is at most [`MAX_CHAIN`] owners long and cannot come back to an object
//!   it passed, whatever the references say (an object naming itself is not a template edge).

use super::resource::{Inventory, OwnerRef, Resource};
use std::sync::Arc;

/// The longest chain of template edges: Pod → ReplicaSet → Deployment, Pod → Job → CronJob.
pub const MAX_CHAIN: usize = 2;

/// Controllers that create a dependent from their pod template: `(owner group, owner kind,
/// dependent group, dependent kind)`.
const TEMPLATE_EDGES: [(&str, &str, &str, &str); 6] = [
    ("apps", "ReplicaSet", "", "Pod"),
    ("apps", "StatefulSet", "", "Pod"),
    ("apps", "DaemonSet", "", "Pod"),
    ("batch", "Job", "", "Pod"),
    ("apps", "Deployment", "apps", "ReplicaSet"),
    ("batch", "CronJob", "batch", "Job"),
];

/// The template owner `dependent`'s controlling reference names, if the reference may stand for
/// one (a template edge, and the dependent is namespaced).
fn template_reference(dependent: &Resource) -> Option<(&OwnerRef, &str)> {
    let reference = dependent.controller.as_ref()?;
    let namespace = dependent.namespace.as_deref()?;
    TEMPLATE_EDGES
        .iter()
        .any(|(og, ok, dg, dk)| {
            *og == reference.group
                && *ok == reference.kind
                && *dg == dependent.group
                && *dk == dependent.kind
        })
        .then_some((reference, namespace))
}

/// The object `dependent`'s controlling reference honestly resolves to: same namespace, group,
/// kind, name and uid, along a template edge. `None`: the dependent counts on its own here.
pub fn template_owner<'a>(
    dependent: &Resource,
    inventory: &'a Inventory,
) -> Option<&'a Arc<Resource>> {
    let (reference, namespace) = template_reference(dependent)?;
    let is_owner = |o: &Resource| {
        o.name == reference.name
            && o.kind == reference.kind
            && o.group == reference.group
            && o.namespace.as_deref() == Some(namespace)
            && o.uid == reference.uid
    };
    // The uid index is only a shortcut: what decides is `is_owner`, so duplicated or forged
    // uids elsewhere change nothing.
    if let Some(uid) = &reference.uid
        && let Some(o) = inventory.by_uid(uid)
        && is_owner(o)
    {
        return Some(o);
    }
    inventory
        .of_kind_in(&reference.group, &reference.kind, Some(namespace))
        .iter()
        .find(|o| is_owner(o))
}

/// One step up a chain: the reference followed and the owner it resolved to (`None`: dangling
/// or not honest, the walk ends there).
pub struct Step<'a> {
    pub reference: &'a OwnerRef,
    pub owner: Option<&'a Arc<Resource>>,
}

/// Walk `resource`'s chain of template owners, calling `visit` for each step; returns the top:
/// the last owner reached, or `resource` itself when it has none.
pub fn walk<'a>(
    resource: &'a Arc<Resource>,
    inventory: &'a Inventory,
    mut visit: impl FnMut(&Step<'a>),
) -> &'a Arc<Resource> {
    let mut current = resource;
    // The template edges form no cycle, so each step climbs; the bound only documents that.
    for _ in 0..MAX_CHAIN {
        let Some((reference, _)) = template_reference(current) else {
            break;
        };
        let owner = template_owner(current, inventory);
        visit(&Step { reference, owner });
        match owner {
            Some(owner) => current = owner,
            None => break,
        }
    }
    current
}

/// The top-most template owner present in the inventory (the object itself if none).
pub fn top_owner<'a>(resource: &'a Arc<Resource>, inventory: &'a Inventory) -> &'a Arc<Resource> {
    walk(resource, inventory, |_| {})
}

/// Whether `resource`'s chain (followed through the inventory) refers to an object with `x`'s
/// group, kind and name: a change to `x` may move `resource`'s top. The namespace need not be
/// compared: a reference only ever resolves in the dependent's own namespace.
pub fn chain_refers_to(resource: &Arc<Resource>, x: &Resource, inventory: &Inventory) -> bool {
    let mut found = false;
    walk(resource, inventory, |step| {
        let r = step.reference;
        found |= r.name == x.name && r.kind == x.kind && r.group == x.group;
    });
    found
}
