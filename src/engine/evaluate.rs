//! One target's evaluation: scope, action selection, per-resource judgements (de-duplicated
//! through pod-template owners), declared resolutions, points, and the status.

use super::check::{CompiledAction, Judgement, ObjectScope, Surroundings, Verdict};
use super::exemptions::{self, Assessed, Declared};
use super::ownership::top_owner;
use super::resource::{Inventory, KindStatus, Resource};
use super::score::{Counts, Partition, Points, Tally};
use super::{attestations, selector, status};
use crate::api::{ActionState, ExemptionState, MANDATORY_LABEL, SecureScoreTarget};
use jiff::Timestamp;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

// The types an evaluation reads and produces live in `evaluation` (status.rs builds from them
// too, and imports nothing from here); re-exported so their paths stay the same.
pub use super::evaluation::{
    ActionOutcome, Outcome, ResourceResult, TargetEvaluation, TargetInput,
};

/// The namespaces a target evaluates: names ∪ selector − exclude; default its own namespace.
pub fn scope_namespaces(target: &SecureScoreTarget, inventory: &Inventory) -> BTreeSet<String> {
    let own = target.metadata.namespace.clone().unwrap_or_default();
    let Some(ns) = &target.spec.scope.namespaces else {
        return [own].into();
    };
    let mut set: BTreeSet<String> = ns.names.iter().cloned().collect();
    if let Some(sel) = &ns.selector {
        set.extend(
            inventory
                .namespaces()
                .filter(|n| selector::matches(sel, &n.labels))
                .map(|n| n.name.clone()),
        );
    }
    if ns.names.is_empty() && ns.selector.is_none() {
        set.insert(own);
    }
    for e in &ns.exclude {
        set.remove(e);
    }
    set
}

/// The scope rule: whether `r` lies in a target's scope of `namespaces` (plus cluster-scoped
/// objects when `cluster`; a Namespace object is in scope when its namespace is).
pub fn in_scope(namespaces: &BTreeSet<String>, cluster: bool, r: &Resource) -> bool {
    match &r.namespace {
        Some(ns) => namespaces.contains(ns),
        None => {
            cluster || (r.kind == "Namespace" && r.group.is_empty() && namespaces.contains(&r.name))
        }
    }
}

/// Whether a target asks for more than its own namespace.
pub fn wants_wide_scope(target: &SecureScoreTarget) -> bool {
    let own = target.metadata.namespace.as_deref().unwrap_or_default();
    let scope = &target.spec.scope;
    scope.cluster_resources
        || scope
            .namespaces
            .as_ref()
            .is_some_and(|n| n.selector.is_some() || n.names.iter().any(|name| name != own))
}

/// Which actions a target evaluates, and the names it excluded.
pub fn select_actions(
    target: &SecureScoreTarget,
    actions: &[Arc<CompiledAction>],
) -> (Vec<Arc<CompiledAction>>, Vec<String>) {
    let sel = &target.spec.actions;
    let mut chosen = Vec::new();
    let mut excluded = Vec::new();
    for a in actions {
        let mandatory = a.labels.get(MANDATORY_LABEL).is_some_and(|v| v == "true");
        let picked = if sel.selector.is_none() && sel.include.is_empty() {
            true
        } else {
            sel.selector
                .as_ref()
                .is_some_and(|s| selector::matches(s, &a.labels))
                || sel.include.contains(&a.name)
        };
        if sel.exclude.contains(&a.name) && !mandatory {
            excluded.push(a.name.clone());
        } else if picked || mandatory {
            chosen.push(a.clone());
        }
    }
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    excluded.sort();
    (chosen, excluded)
}

/// Evaluate one target (with no SecurityControl known: a target in the SecurityControls
/// model then scores nothing and lists every action as not in any control).
pub fn evaluate(input: &TargetInput) -> TargetEvaluation {
    evaluate_with_controls(input, &[])
}

/// Evaluate one target; `controls` score it when it uses the SecurityControls model.
pub fn evaluate_with_controls(
    input: &TargetInput,
    controls: &[Arc<crate::api::SecurityControl>],
) -> TargetEvaluation {
    let target = input.target;
    if target.spec.suspend {
        return status::unevaluated(input, Outcome::Suspended);
    }
    if wants_wide_scope(target) && !input.wide_scope_allowed {
        return status::unevaluated(input, Outcome::ScopeNotAllowed);
    }
    let inventory = input.inventory;
    let (selected, excluded) = select_actions(target, input.actions);
    let namespaces = scope_namespaces(target, inventory);
    let cluster = target.spec.scope.cluster_resources;

    // Actions whose inventory is incomplete are Unknown; the rest are judged.
    let mut unknown: BTreeMap<String, String> = BTreeMap::new();
    let mut degraded = false;
    let undetected = super::products::not_detected(&selected, inventory);
    for a in &selected {
        if let Some(p) = &a.problem {
            unknown.insert(
                a.name.clone(),
                format!("{}: {}", p.reason.as_str(), p.message),
            );
            continue;
        }
        // A product that is not installed: Unknown, but the inventory is not incomplete.
        if let Some(why) = super::products::not_detected_message(a, &undetected) {
            unknown.insert(a.name.clone(), why);
            continue;
        }
        for (g, k) in a.kinds_read() {
            let status = inventory.kind_status(g, k);
            if status != KindStatus::Synced {
                let kind = if g.is_empty() {
                    k.to_string()
                } else {
                    format!("{k}.{g}")
                };
                let why = match status {
                    KindStatus::NotSynced => "is not synced yet",
                    KindStatus::Missing => "is not served by the API",
                    KindStatus::Forbidden => "may not be listed by the operator",
                    KindStatus::Synced => unreachable!(),
                };
                unknown.insert(a.name.clone(), format!("InventoryIncomplete: {kind} {why}"));
                degraded = true;
                break;
            }
        }
    }
    let judged: Vec<&Arc<CompiledAction>> = selected
        .iter()
        .filter(|a| !unknown.contains_key(&a.name))
        .collect();

    // Candidates per object: the judged actions whose kinds and selectors it passes.
    let mut kinds: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, a) in judged.iter().enumerate() {
        for (g, k) in &a.kinds {
            kinds.entry((g.as_str(), k.as_str())).or_default().push(i);
        }
    }
    let surroundings = Surroundings {
        inventory,
        cluster_visible: cluster,
    };
    // Pass 1 judges objects with no present owner; pass 2 the owned ones, skipping an action
    // for an object whose top-most owner is applicable to that (pod-template) action.
    // Objects are judged in parallel; results are collected in input order, so the outcome
    // does not depend on the number of threads.
    let candidates: Vec<&Arc<Resource>> = inventory
        .iter()
        .filter(|r| in_scope(&namespaces, cluster, r))
        .collect();
    let evaluated_resources = candidates.len() as u64;
    let tops: Vec<&Arc<Resource>> = candidates
        .par_iter()
        .map(|r| top_owner(r, inventory))
        .collect();
    let (unowned, owned): (Vec<_>, Vec<_>) = candidates
        .iter()
        .zip(tops)
        .partition(|(r, top)| Arc::ptr_eq(top, r));
    let first: Vec<Vec<(usize, Verdict)>> = unowned
        .par_iter()
        .map(|(r, _)| judge_object(r, &kinds, &judged, &surroundings, |_| false))
        .collect();
    // The pod-template actions applicable to each unowned object (ascending), found for an
    // owned object through its top's position: one lookup per object, not per action.
    let position: HashMap<usize, usize> = unowned
        .iter()
        .enumerate()
        .map(|(at, (r, _))| (Arc::as_ptr(r) as usize, at))
        .collect();
    let applicable_pod: Vec<Vec<usize>> = first
        .iter()
        .map(|verdicts| {
            verdicts
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| judged[*i].spec.check.pod_spec)
                .collect()
        })
        .collect();
    let second: Vec<Vec<(usize, Verdict)>> = owned
        .par_iter()
        .map(|(r, top)| {
            let top_applicable = position
                .get(&(Arc::as_ptr(top) as usize))
                .map_or(&[][..], |at| applicable_pod[*at].as_slice());
            let skip = |i: usize| {
                judged[i].spec.check.pod_spec && top_applicable.binary_search(&i).is_ok()
            };
            judge_object(r, &kinds, &judged, &surroundings, skip)
        })
        .collect();
    drop(position);
    drop(applicable_pod);
    // Findings are listed by namespace/kind/name (stable: equal keys keep pass-then-input
    // order). One sort of every judged object gives each its rank; an action's list is then
    // sorted by rank, which orders it exactly as sorting it by key would, without comparing
    // strings again for every action.
    let judged_objects: Vec<&Arc<Resource>> = unowned
        .iter()
        .map(|(r, _)| **r)
        .chain(owned.iter().map(|(r, _)| **r))
        .collect();
    let mut by_key: Vec<u32> = (0..judged_objects.len() as u32).collect();
    // Unstable with the input position as the last key: the same order a stable sort gives,
    // without the merge sort's buffer and copies.
    by_key.par_sort_unstable_by(|a, b| {
        judged_objects[*a as usize]
            .sort_key()
            .cmp(&judged_objects[*b as usize].sort_key())
            .then(a.cmp(b))
    });
    let mut rank = vec![0u32; judged_objects.len()];
    for (r, at) in by_key.into_iter().enumerate() {
        rank[at as usize] = r as u32;
    }
    let mut sizes = vec![0usize; judged.len()];
    for (i, _) in first.iter().chain(&second).flatten() {
        sizes[*i] += 1;
    }
    let mut judgements: Vec<Vec<(u32, Arc<Resource>, Verdict)>> =
        sizes.into_iter().map(Vec::with_capacity).collect();
    for ((at, r), verdicts) in judged_objects
        .iter()
        .enumerate()
        .zip(first.into_iter().chain(second))
    {
        for (i, verdict) in verdicts {
            judgements[i].push((rank[at], Arc::clone(r), verdict));
        }
    }
    drop(judged_objects);
    drop(rank);

    // An action that crossed its evaluation budget repeatedly is Unknown, as if it had failed
    // to load (whichever resources it reached first, the outcome is the same).
    for a in &judged {
        if let Some(p) = a.limit_exceeded() {
            unknown.insert(
                a.name.clone(),
                format!("{}: {}", p.reason.as_str(), p.message),
            );
        }
    }

    // Declared resolutions.
    let by_name: HashMap<&str, &CompiledAction> = selected
        .iter()
        .map(|a| (a.name.as_str(), a.as_ref()))
        .collect();
    let mut assessed: Vec<Assessed> = target
        .spec
        .exemptions
        .iter()
        .map(|e| exemptions::assess(e, by_name.get(e.action.as_str()).copied(), input.now))
        .collect();

    let attested = attestations::assess(target, selected.iter().map(|a| a.as_ref()), input.now);
    let mut outcomes = Vec::new();
    for a in &selected {
        let scored = !a.spec.preview;
        if let Some(message) = unknown.get(&a.name) {
            outcomes.push(ActionOutcome {
                action: a.clone(),
                state: ActionState::Unknown,
                counts: Counts::default(),
                resources: Partition::default(),
                errors: 0,
                points: Points::unknown(a.spec.max_score),
                results: Vec::new(),
                message: Some(message.clone()),
                dominant_error: None,
                scored,
                attestation: None,
            });
            continue;
        }
        let idx = judged
            .iter()
            .position(|j| j.name == a.name)
            .expect("judged actions come from selected");
        let mut ranked = std::mem::take(&mut judgements[idx]);
        ranked.sort_unstable_by_key(|(rank, _, _)| *rank);
        let mut list: Vec<(Arc<Resource>, Verdict)> =
            ranked.into_iter().map(|(_, r, v)| (r, v)).collect();
        // A task's one applicable resource is the target, judged from its attestations.
        let task = attestations::judge(a, target, &attested, input.now);
        if let Some((_, judged)) = &task {
            list.extend(judged.iter().cloned());
            list.sort_by(|x, y| x.0.sort_key().cmp(&y.0.sort_key()));
        }
        let mut outcome = score_action(a, list, &mut assessed, input.now, scored);
        outcome.attestation = task.map(|(facts, _)| facts);
        outcomes.push(outcome);
    }
    for a in &mut assessed {
        if a.state == ExemptionState::Active && a.covered == 0 {
            a.state = ExemptionState::Unused;
            a.message = Some("covers no non-compliant resource".into());
        }
    }
    let outcome = if degraded {
        Outcome::Degraded
    } else {
        Outcome::Evaluated
    };
    let control_scores = super::controls::score(
        target.spec.model,
        controls,
        &outcomes,
        super::controls::results_of,
    );
    status::build(
        input,
        outcome,
        outcomes,
        assessed,
        excluded,
        evaluated_resources,
        control_scores,
    )
}

/// The verdicts of every candidate action (minus `skip`) applicable to one object.
pub(crate) fn judge_object(
    r: &Resource,
    kinds: &HashMap<(&str, &str), Vec<usize>>,
    judged: &[&Arc<CompiledAction>],
    surroundings: &Surroundings,
    skip: impl Fn(usize) -> bool,
) -> Vec<(usize, Verdict)> {
    let Some(actions) = kinds.get(&(r.group.as_str(), r.kind.as_str())) else {
        return Vec::new();
    };
    let passing: Vec<usize> = actions
        .iter()
        .copied()
        .filter(|i| !skip(*i) && judged[*i].prefilter(r, surroundings.inventory))
        .collect();
    if passing.is_empty() {
        return Vec::new();
    }
    let sharing: Vec<&CompiledAction> = passing.iter().map(|i| judged[*i].as_ref()).collect();
    let scope = ObjectScope::with_shared(r, surroundings.inventory, &sharing);
    let mut out = Vec::with_capacity(passing.len());
    for i in passing {
        if let Judgement::Applicable(verdict) =
            judged[i].judge_prefiltered(r, &scope, surroundings, false)
        {
            out.push((i, verdict));
        }
    }
    out
}

pub(crate) fn score_action(
    action: &Arc<CompiledAction>,
    judgements: Vec<(Arc<Resource>, Verdict)>,
    assessed: &mut [Assessed],
    now: Timestamp,
    scored: bool,
) -> ActionOutcome {
    let mut tally = Tally::default();
    let mut results = Vec::with_capacity(judgements.len());
    for (resource, verdict) in judgements {
        let resolution = if verdict.is_compliant() {
            None
        } else {
            exemptions::decide(action, &resource, assessed, now).map(|(state, who)| {
                let name = match who {
                    Declared::Exemption(i) => {
                        assessed[i].covered += 1;
                        Some(assessed[i].exemption.name.clone())
                    }
                    Declared::Action => None,
                };
                (state, name)
            })
        };
        tally.add(&verdict, resolution.as_ref().map(|(state, _)| *state));
        results.push(ResourceResult {
            resource,
            verdict,
            resolution,
        });
    }
    let mut outcome = summarise(action, &tally, scored);
    outcome.results = results;
    outcome
}

/// The target `securescore scan` uses when the input has none: every namespace and the
/// cluster-scoped resources, all actions.
pub fn implicit_cluster_target(name: &str, namespace: &str) -> SecureScoreTarget {
    use crate::api::{NamespaceScope, Scope, SecureScoreTargetSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    let mut target = SecureScoreTarget::new(
        name,
        SecureScoreTargetSpec {
            scope: Scope {
                namespaces: Some(NamespaceScope {
                    selector: Some(LabelSelector::default()),
                    ..Default::default()
                }),
                cluster_resources: true,
            },
            ..Default::default()
        },
    );
    target.metadata.namespace = Some(namespace.to_string());
    target
}

/// One judged action's outcome from its tally (points, state as the SPEC orders them, first
/// match wins, and the error most resources fail with), with no per-resource rows yet: shared
/// by the full and the incremental evaluation.
pub(crate) fn summarise(
    action: &Arc<CompiledAction>,
    tally: &Tally,
    scored: bool,
) -> ActionOutcome {
    let counts = tally.counts;
    let applicable = counts.applicable();
    let points = if applicable == 0 {
        Points::default()
    } else {
        Points::of(action.spec.max_score, action.scoring(), counts)
    };
    let state = super::score::state_of(&counts, tally.alternate);
    let dominant_error = tally
        .error_messages
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .filter(|(_, n)| **n * 2 > applicable && (**n >= 3 || **n == applicable))
        .map(|(m, _)| m.clone());
    ActionOutcome {
        action: action.clone(),
        state,
        counts,
        resources: tally.resources,
        errors: tally.errors,
        points,
        results: Vec::new(),
        message: None,
        dominant_error,
        scored,
        attestation: None,
    }
}
