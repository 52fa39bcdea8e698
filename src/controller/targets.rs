//! SecureScoreTarget reconciler, a pipeline of named steps, each with its own error:
//!
//! gather → evaluate → compare → write status → remember → publish events
//!
//! - **gather** asks the cluster inventory for what the target reads (the loaded actions, the
//!   kinds they read, the namespaces of its scope) and decides how to evaluate: in full (at
//!   start, on `spec.interval`, when an exemption expires, when the target, an action or a
//!   kind's availability changes) or incrementally (only the objects changed since);
//! - **evaluate** runs the pure engine off the async reactor;
//! - **compare** places the target in its benchmark group;
//! - **write status** applies the status, only when it changed;
//! - **remember** keeps the evaluation for /metrics and the actions' totals, and the
//!   incremental state for the next change. It runs before the Events, so that a scrape after
//!   an Event sees the score the Event announces;
//! - **publish events** only on transitions, computed against the persisted status.

use super::{FIELD_MANAGER, Shared, TargetKey, unpoison};
use crate::api::{ActionState, BENCHMARK_GROUP_LABEL, SecureScoreTarget, SecureScoreTargetStatus};
use crate::engine::comparison::{Member, compare};
use crate::engine::evaluate::{
    Outcome, in_scope, scope_namespaces, select_actions, wants_wide_scope,
};
use crate::engine::incremental::Incremental;
use crate::engine::resource::KindStatus;
use crate::engine::transitions::transitions;
use crate::engine::{
    CompiledAction, Inventory, TargetEvaluation, TargetInput, evaluate_with_controls,
};
use crate::inventory::cluster::{Change, KindKey};
use crate::metrics::Latest;
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, predicates};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Changes kept for one target before an incremental evaluation stops paying off (a full one
/// runs instead).
const MAX_PENDING_CHANGES: usize = 20_000;

/// How long a kind's first list may make no progress before targets stop waiting for it (and
/// are evaluated Degraded, the kind `NotSynced`).
pub const LIST_STALL: Duration = Duration::from_secs(60);

/// How long targets wait for the next action to load before they are evaluated with the
/// actions that did load (an action still loading then is reported on its own, not waited
/// for).
pub const ACTION_LOAD_WAIT: Duration = Duration::from_secs(30);

/// Why the evaluate step failed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("the evaluation of target {namespace}/{name} panicked: {message}")]
    Panicked {
        namespace: String,
        name: String,
        message: String,
    },
}

/// Why the write-status step failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the status of target {namespace}/{name}: {source}")]
pub struct WriteStatusError {
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// Why a reconcile failed (counted by a fixed label).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error(transparent)]
    WriteStatus(#[from] WriteStatusError),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::WriteStatus(WriteStatusError {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 409 => "Conflict",
            Error::WriteStatus(_) => "ApiError",
            Error::Evaluate(_) => "EvaluationPanicked",
        }
    }
}

fn key_of(t: &SecureScoreTarget) -> TargetKey {
    (t.namespace().unwrap_or_default(), t.name_any())
}

// ---------------------------------------------------------------------------------------------
// What each target reads, and its incremental state

/// What one target's last evaluation read: changes elsewhere do not concern it.
#[derive(Debug, Clone, Default)]
struct Reads {
    namespaces: BTreeSet<String>,
    cluster: bool,
    /// The target selects namespaces by label: any Namespace change may move its scope.
    selector: bool,
    kinds: BTreeSet<KindKey>,
}

/// Why a target is evaluated in full (the label of `securescore_full_evaluations_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FullReason {
    /// No kept state yet (the first evaluation, or the last one kept none).
    Start,
    /// `spec.interval` elapsed since the last full evaluation.
    Interval,
    /// An exemption expired, or a task became due soon or stale.
    Expiry,
    /// The target's spec changed (its generation).
    Target,
    /// An action was added, removed or changed.
    Actions,
    /// A kind the target reads became available, unavailable or synced.
    Kinds,
    /// The namespaces in scope moved (or may have: a Namespace changed under a label selector).
    Scope,
    /// A kind the target reads was listed afresh.
    Relist,
    /// More changes queued than an incremental evaluation pays off for.
    Backlog,
}

impl FullReason {
    fn label(self) -> &'static str {
        match self {
            FullReason::Start => "start",
            FullReason::Interval => "interval",
            FullReason::Expiry => "expiry",
            FullReason::Target => "target",
            FullReason::Actions => "actions",
            FullReason::Kinds => "kinds",
            FullReason::Scope => "scope",
            FullReason::Relist => "relist",
            FullReason::Backlog => "backlog",
        }
    }
}

/// Changes waiting for a target's next reconcile.
enum Pending {
    Changes(Vec<Change>),
    /// Evaluate in full.
    Full(FullReason),
}

/// What a kept incremental state was built from: when any of it moves, evaluate in full.
#[derive(Debug, Clone, PartialEq)]
struct Basis {
    generation: Option<i64>,
    /// `(name, revision)` of every loaded action.
    actions: Vec<(String, String)>,
    kinds: Vec<(KindKey, KindStatus)>,
    namespaces: BTreeSet<String>,
    cluster: bool,
}

/// A target's incremental state between full evaluations.
struct Kept {
    incremental: Incremental,
    basis: Basis,
    full_at: Instant,
    /// The first exemption expiry after the full evaluation: a full one runs from then on.
    next_expiry: Option<jiff::Timestamp>,
}

/// Every target's reads, pending changes and incremental state.
#[derive(Default)]
pub struct States {
    reads: RwLock<HashMap<TargetKey, Reads>>,
    pending: Mutex<HashMap<TargetKey, Pending>>,
    kept: Mutex<HashMap<TargetKey, Kept>>,
}

impl States {
    /// Queue a change for every target that reads it; returns those targets.
    pub fn route(&self, kind: &KindKey, change: &Change) -> HashSet<TargetKey> {
        let reads = self.reads.read().unwrap_or_else(unpoison);
        let is_namespace = kind.0.is_empty() && kind.1 == "Namespace";
        let mut affected = HashSet::new();
        let mut pending = self.pending.lock().unwrap_or_else(unpoison);
        for (key, r) in reads.iter() {
            if !r.kinds.contains(kind) {
                continue;
            }
            let object = match change {
                Change::Applied(o) | Change::Deleted(o) => o,
                Change::Resynced => {
                    pending.insert(key.clone(), Pending::Full(FullReason::Relist));
                    affected.insert(key.clone());
                    continue;
                }
            };
            if is_namespace && r.selector {
                pending.insert(key.clone(), Pending::Full(FullReason::Scope));
                affected.insert(key.clone());
                continue;
            }
            if !in_scope(&r.namespaces, r.cluster, object) {
                continue;
            }
            let slot = pending
                .entry(key.clone())
                .or_insert_with(|| Pending::Changes(Vec::new()));
            if let Pending::Changes(list) = slot {
                if list.len() >= MAX_PENDING_CHANGES {
                    *slot = Pending::Full(FullReason::Backlog);
                } else {
                    list.push(change.clone());
                }
            }
            affected.insert(key.clone());
        }
        affected
    }

    /// Whether the target was evaluated (so changes are routed to it by what it reads).
    pub fn reads_known(&self, key: &TargetKey) -> bool {
        self.reads.read().unwrap_or_else(unpoison).contains_key(key)
    }

    /// Forget a deleted target.
    pub fn forget(&self, key: &TargetKey) {
        self.reads.write().unwrap_or_else(unpoison).remove(key);
        self.pending.lock().unwrap_or_else(unpoison).remove(key);
        self.kept.lock().unwrap_or_else(unpoison).remove(key);
    }

    /// Record what a target reads before its inventory is read: every change from then on is
    /// queued for it.
    fn set_reads(&self, key: &TargetKey, reads: Reads) {
        self.reads
            .write()
            .unwrap_or_else(unpoison)
            .insert(key.clone(), reads);
    }

    fn take_pending(&self, key: &TargetKey) -> Option<Pending> {
        self.pending.lock().unwrap_or_else(unpoison).remove(key)
    }

    fn take_kept(&self, key: &TargetKey) -> Option<Kept> {
        self.kept.lock().unwrap_or_else(unpoison).remove(key)
    }
}

// ---------------------------------------------------------------------------------------------
// The controller

pub async fn run(
    shared: Arc<Shared>,
    rx: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<SecureScoreTarget>>,
    stopping: super::Stopping,
) {
    let api: Api<SecureScoreTarget> = Api::all(shared.client.clone());
    let (reader, writer) = reflector::store();
    let on_delete = shared.clone();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .inspect(move |ev| {
            if let Ok(Event::Delete(t)) = ev {
                let key = key_of(t);
                on_delete.scoreboard.forget(&key);
                on_delete.states.forget(&key);
                tracing::info!(namespace = %key.0, target = %key.1, "target deleted: its series are gone");
            }
        })
        .applied_objects()
        // Our own status writes do not change the generation: no re-evaluation for them.
        .predicate_filter(predicates::generation, Default::default());
    *shared.targets.write().unwrap_or_else(unpoison) = Some(reader.clone());
    let triggers =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let config = ControllerConfig::default()
        .debounce(shared.settings.debounce)
        .concurrency(shared.settings.concurrency);
    Controller::for_stream(stream, reader)
        .with_config(config)
        .reconcile_on(triggers)
        .graceful_shutdown_on(stopping)
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "target reconcile request failed");
            }
        })
        .await;
}

fn error_policy(target: Arc<SecureScoreTarget>, error: &Error, ctx: Arc<Shared>) -> Action {
    ctx.metrics()
        .reconcile_error("SecureScoreTarget", error.reason());
    tracing::warn!(namespace = %target.namespace().unwrap_or_default(), target = %target.name_any(), error = %error, "reconcile failed; retrying");
    let wait = if error.reason() == "Conflict" {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    Action::requeue(wait)
}

async fn reconcile(target: Arc<SecureScoreTarget>, ctx: Arc<Shared>) -> Result<Action, Error> {
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let mut gathered = match gather(&target, &ctx).await {
        Gather::Ready(g) => g,
        Gather::Wait(d) => return Ok(Action::requeue(d)),
    };
    let namespaces = std::mem::replace(&mut gathered.namespaces, Inventory::complete(Vec::new()));
    let (mut evaluation, kept) = evaluate_target(&target, &ctx, gathered).await?;
    compare_in_group(&ctx, &target, &mut evaluation, &namespaces);
    write_status(&ctx, &target, &evaluation).await?;
    let requeue = next_requeue(&target, &evaluation, kept.as_ref());
    let evaluation = remember(&ctx, &target, evaluation, kept);
    publish_events(&ctx, &target, &evaluation).await;
    let _ = ctx.totals_changed.send(());
    Ok(Action::requeue(requeue))
}

// ---------------------------------------------------------------------------------------------
// gather

enum Gather {
    Ready(Box<Gathered>),
    /// Not yet: the actions are loading or the caches syncing.
    Wait(Duration),
}

/// How this reconcile evaluates.
enum Mode {
    /// From a snapshot of the inventory.
    Full(Vec<Arc<crate::engine::Resource>>),
    /// The kept state and the changes since.
    Incremental(Box<Kept>, Vec<Change>),
    /// Refused for its scope, or suspended: nothing is read.
    Nothing,
}

struct Gathered {
    actions: Vec<Arc<CompiledAction>>,
    /// The known SecurityControls, by name (they score targets in the SecurityControls model).
    controls: Vec<Arc<crate::api::SecurityControl>>,
    /// Namespace objects (for scope selectors and benchmark groups).
    namespaces: Inventory,
    basis: Basis,
    kinds: HashMap<KindKey, KindStatus>,
    wide_allowed: bool,
    mode: Mode,
}

async fn gather(target: &SecureScoreTarget, ctx: &Shared) -> Gather {
    let key = key_of(target);
    // The catalog is part of the inventory: nothing is evaluated before every action is
    // loaded, while it keeps loading (an action that never finishes loading must not stop
    // every target: after ACTION_LOAD_WAIT without a newly loaded action they go on).
    if ctx.loading_actions() {
        return Gather::Wait(Duration::from_millis(500));
    }
    // A target scored by SecurityControls waits for their list too (same bound).
    if target.spec.model == crate::api::ScoringModel::SecurityControls
        && !ctx
            .controls_listed
            .load(std::sync::atomic::Ordering::Acquire)
        && ctx.started.elapsed() < ACTION_LOAD_WAIT
    {
        return Gather::Wait(Duration::from_millis(500));
    }
    let mut actions: Vec<Arc<CompiledAction>> = ctx
        .actions
        .read()
        .unwrap_or_else(unpoison)
        .values()
        .cloned()
        .collect();
    actions.sort_by(|a, b| a.name.cmp(&b.name));
    let mut controls: Vec<Arc<crate::api::SecurityControl>> = ctx
        .controls
        .read()
        .unwrap_or_else(unpoison)
        .values()
        .cloned()
        .collect();
    controls.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let wide_allowed = ctx.settings.cluster_target_namespaces.contains(&key.0);
    let refused = wants_wide_scope(target) && !wide_allowed;
    let namespace_kind: BTreeSet<KindKey> = [(String::new(), "Namespace".to_string())].into();
    if refused || target.spec.suspend {
        // Neither reads its requested scope: no snapshot, no routed changes.
        ctx.states.set_reads(&key, Reads::default());
        let _ = ctx.states.take_pending(&key);
        return Gather::Ready(Box::new(Gathered {
            actions,
            controls,
            namespaces: Inventory::complete(Vec::new()),
            basis: Basis {
                generation: target.metadata.generation,
                actions: Vec::new(),
                kinds: Vec::new(),
                namespaces: BTreeSet::new(),
                cluster: false,
            },
            kinds: HashMap::new(),
            wide_allowed,
            mode: Mode::Nothing,
        }));
    }
    let (selected, _) = select_actions(target, &actions);
    let mut needed = namespace_kind.clone();
    for a in selected.iter().filter(|a| a.is_ready()) {
        needed.extend(a.kinds_read().map(|(g, k)| (g.to_string(), k.to_string())));
    }
    // Caches for new kinds start on demand; nothing is evaluated before they have synced
    // (a large first list is waited for as long as it moves on), unless a list stalls for
    // LIST_STALL (then the evaluation is Degraded). Each kind that syncs wakes the target.
    ctx.caches.ensure(&ctx.desired_kinds()).await;
    if ctx.caches.listing(&needed, LIST_STALL) {
        return Gather::Wait(Duration::from_secs(2));
    }
    let statuses = ctx.caches.statuses();
    let kinds: HashMap<KindKey, KindStatus> = needed
        .iter()
        .map(|k| {
            (
                k.clone(),
                statuses.get(k).copied().unwrap_or(KindStatus::NotSynced),
            )
        })
        .collect();
    let namespaces = Inventory::complete(ctx.caches.snapshot(&namespace_kind, None, true));
    let scope = scope_namespaces(target, &namespaces);
    let cluster = target.spec.scope.cluster_resources;
    let mut basis = Basis {
        generation: target.metadata.generation,
        actions: actions
            .iter()
            .map(|a| (a.name.clone(), a.revision.clone()))
            .collect(),
        kinds: kinds.iter().map(|(k, s)| (k.clone(), *s)).collect(),
        namespaces: scope.clone(),
        cluster,
    };
    basis.kinds.sort_by(|a, b| a.0.cmp(&b.0));
    let reads = Reads {
        namespaces: scope.clone(),
        cluster,
        selector: target
            .spec
            .scope
            .namespaces
            .as_ref()
            .is_some_and(|n| n.selector.is_some()),
        kinds: needed.clone(),
    };
    // Changes from here on are queued for the next reconcile; the ones queued until now are
    // taken, and a snapshot taken below includes them.
    ctx.states.set_reads(&key, reads);
    let pending = ctx.states.take_pending(&key);
    let kept = ctx.states.take_kept(&key);
    let now = jiff::Timestamp::now();
    let interval = target.interval();
    let reason = full_reason(kept.as_ref(), pending.as_ref(), &basis, interval, now);
    let mode = match (reason, kept) {
        (None, Some(k)) => {
            let changes = match pending {
                Some(Pending::Changes(c)) => c,
                _ => Vec::new(),
            };
            Mode::Incremental(Box::new(k), changes)
        }
        (reason, _) => {
            let reason = reason.unwrap_or(FullReason::Start);
            ctx.metrics().full_evaluation(reason.label());
            tracing::debug!(namespace = %key.0, target = %key.1, reason = reason.label(), "evaluating in full");
            Mode::Full(ctx.caches.snapshot(&needed, Some(&scope), cluster))
        }
    };
    Gather::Ready(Box::new(Gathered {
        actions,
        controls,
        namespaces,
        basis,
        kinds,
        wide_allowed,
        mode,
    }))
}

/// Why this reconcile must evaluate in full, or None when the kept state and the queued
/// changes give the evaluation.
fn full_reason(
    kept: Option<&Kept>,
    pending: Option<&Pending>,
    basis: &Basis,
    interval: Duration,
    now: jiff::Timestamp,
) -> Option<FullReason> {
    let Some(k) = kept else {
        return Some(FullReason::Start);
    };
    if k.basis.generation != basis.generation {
        Some(FullReason::Target)
    } else if k.basis.actions != basis.actions {
        Some(FullReason::Actions)
    } else if k.basis.kinds != basis.kinds {
        Some(FullReason::Kinds)
    } else if k.basis.namespaces != basis.namespaces || k.basis.cluster != basis.cluster {
        Some(FullReason::Scope)
    } else if k.full_at.elapsed() >= interval {
        Some(FullReason::Interval)
    } else if k.next_expiry.is_some_and(|t| now >= t) {
        Some(FullReason::Expiry)
    } else if let Some(Pending::Full(reason)) = pending {
        Some(*reason)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// evaluate

async fn evaluate_target(
    target: &Arc<SecureScoreTarget>,
    ctx: &Shared,
    gathered: Box<Gathered>,
) -> Result<(TargetEvaluation, Option<Kept>), EvaluateError> {
    let key = key_of(target);
    let previous = target.status.clone();
    let eval_target = target.clone();
    let started = Instant::now();
    let now = jiff::Timestamp::now();
    let Gathered {
        actions,
        controls,
        basis,
        kinds,
        wide_allowed,
        mode,
        ..
    } = *gathered;
    let full = !matches!(mode, Mode::Incremental(..));
    let result = tokio::task::spawn_blocking(move || match mode {
        Mode::Nothing => {
            let inventory = Inventory::with_kinds(Vec::new(), kinds);
            let evaluation = evaluate_with_controls(
                &TargetInput {
                    target: &eval_target,
                    actions: &actions,
                    inventory: &inventory,
                    now,
                    previous: previous.as_ref(),
                    wide_scope_allowed: wide_allowed,
                },
                &controls,
            );
            (evaluation, None, false)
        }
        Mode::Full(objects) => {
            let inventory = Inventory::with_kinds(objects, kinds);
            let incremental = Incremental::new(
                (*eval_target).clone(),
                actions,
                inventory,
                now,
                wide_allowed,
            )
            .with_controls(controls);
            let evaluation = incremental.evaluation_at(previous.as_ref(), now);
            let kept = Kept {
                incremental,
                basis,
                full_at: Instant::now(),
                next_expiry: next_expiry(&evaluation, now),
            };
            (evaluation, Some(kept), false)
        }
        Mode::Incremental(mut kept, changes) => {
            // Controls change no verdict: the kept state takes the current ones as they are.
            kept.incremental.set_controls(controls);
            let fallbacks = kept.incremental.fallbacks();
            for change in changes {
                match change {
                    Change::Applied(r) => kept.incremental.upsert(r),
                    Change::Deleted(r) => {
                        kept.incremental
                            .remove(&r.group, &r.kind, r.namespace.as_deref(), &r.name)
                    }
                    Change::Resynced => {}
                }
            }
            let evaluation = kept.incremental.evaluation_at(previous.as_ref(), now);
            let fell_back = kept.incremental.fallbacks() > fallbacks;
            (evaluation, Some(*kept), fell_back)
        }
    })
    .await
    .map_err(|e| EvaluateError::Panicked {
        namespace: key.0.clone(),
        name: key.1.clone(),
        message: e.to_string(),
    })?;
    let (evaluation, kept, fell_back) = result;
    if fell_back {
        ctx.metrics().full_evaluation("fallback");
    }
    let label = match evaluation.outcome {
        Outcome::Evaluated => "success",
        Outcome::Degraded => "degraded",
        Outcome::Suspended => "suspended",
        Outcome::ScopeNotAllowed => "refused",
    };
    ctx.metrics()
        .evaluation(label, started.elapsed().as_secs_f64());
    tracing::debug!(namespace = %key.0, target = %key.1, full, seconds = started.elapsed().as_secs_f64(), "evaluated");
    Ok((evaluation, kept))
}

/// The first expiry of an exemption still in force after `now`, or the first moment a task
/// becomes due soon or stale.
fn next_expiry(evaluation: &TargetEvaluation, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let tasks = evaluation
        .actions
        .iter()
        .filter_map(|o| o.attestation.as_ref()?.next_change(now));
    evaluation
        .exemptions
        .iter()
        .filter(|a| a.applies() || a.state == crate::api::ExemptionState::Unused)
        .filter_map(|a| {
            a.exemption
                .expires_at
                .as_deref()?
                .parse::<jiff::Timestamp>()
                .ok()
        })
        .chain(tasks)
        .filter(|t| *t > now)
        .min()
}

// ---------------------------------------------------------------------------------------------
// compare

/// The comparison within the benchmark group named on the target's Namespace.
fn compare_in_group(
    ctx: &Shared,
    target: &SecureScoreTarget,
    evaluation: &mut TargetEvaluation,
    namespaces: &Inventory,
) {
    let key = key_of(target);
    if evaluation.outcome != Outcome::Evaluated {
        return;
    }
    let Some(group) = group_of(namespaces, &key.0) else {
        return;
    };
    let Some(percentage) = evaluation.status.percentage else {
        return;
    };
    let revision = evaluation.status.catalog_revision.clone();
    let mut members: Vec<Member> = ctx
        .scoreboard
        .latest()
        .iter()
        .filter(|(k, _)| {
            **k != key && group_of(namespaces, &k.0).as_deref() == Some(group.as_str())
        })
        .filter(|(_, l)| l.evaluation.status.catalog_revision == revision)
        .filter_map(|(k, l)| {
            Some(Member {
                namespace: k.0.clone(),
                name: k.1.clone(),
                percentage: l.evaluation.status.percentage?,
            })
        })
        .collect();
    let me = Member {
        namespace: key.0.clone(),
        name: key.1.clone(),
        percentage,
    };
    members.push(me.clone());
    evaluation.status.comparison = compare(&group, &members, &me);
}

fn group_of(namespaces: &Inventory, ns: &str) -> Option<String> {
    namespaces
        .namespace(ns)
        .and_then(|n| n.labels.get(BENCHMARK_GROUP_LABEL).cloned())
}

// ---------------------------------------------------------------------------------------------
// write status

/// Whether two statuses differ in more than `lastEvaluated`.
fn meaningfully_different(a: &SecureScoreTargetStatus, b: &SecureScoreTargetStatus) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.last_evaluated = None;
    b.last_evaluated = None;
    a != b
}

/// Apply the status only when it changed (`lastEvaluated` alone is refreshed at most every
/// max(interval, 10m)).
async fn write_status(
    ctx: &Shared,
    target: &SecureScoreTarget,
    evaluation: &TargetEvaluation,
) -> Result<(), WriteStatusError> {
    let key = key_of(target);
    let previous = target.status.as_ref();
    let now = jiff::Timestamp::now();
    let refresh_after = target.interval().max(Duration::from_secs(600));
    let stale = previous
        .and_then(|p| p.last_evaluated.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_none_or(|t| (now.as_second() - t.as_second()) as u64 >= refresh_after.as_secs());
    let changed = previous.is_none_or(|p| meaningfully_different(p, &evaluation.status));
    if !(changed || stale) {
        return Ok(());
    }
    let api: Api<SecureScoreTarget> = Api::namespaced(ctx.client.clone(), &key.0);
    let patch = serde_json::json!({
        "apiVersion": "securescore.io/v1alpha1",
        "kind": "SecureScoreTarget",
        "status": evaluation.status,
    });
    api.patch_status(
        &key.1,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| WriteStatusError {
        namespace: key.0,
        name: key.1,
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// remember

/// Keep the evaluation for /metrics and the actions' totals (counts and sample findings only:
/// the per-resource rows would hold the cluster a second time) and the target's incremental
/// state.
fn remember(
    ctx: &Shared,
    target: &SecureScoreTarget,
    mut evaluation: TargetEvaluation,
    kept: Option<Kept>,
) -> Arc<TargetEvaluation> {
    let key = key_of(target);
    for outcome in &mut evaluation.actions {
        outcome.results = Vec::new();
    }
    let evaluation = Arc::new(evaluation);
    match evaluation.outcome {
        Outcome::Evaluated | Outcome::Degraded => ctx.scoreboard.record(
            key.clone(),
            Latest {
                evaluation: evaluation.clone(),
                goal: target.spec.goal,
                interval: target.interval(),
                evaluated_at: jiff::Timestamp::now(),
            },
        ),
        Outcome::Suspended | Outcome::ScopeNotAllowed => ctx.scoreboard.forget(&key),
    }
    if let Some(k) = kept {
        ctx.states
            .kept
            .lock()
            .unwrap_or_else(unpoison)
            .insert(key, k);
    }
    evaluation
}

/// The next full evaluation: on the interval, or when an exemption expires or a task becomes
/// due soon or stale, if sooner.
fn next_requeue(
    target: &SecureScoreTarget,
    evaluation: &TargetEvaluation,
    kept: Option<&Kept>,
) -> Duration {
    let interval = target.interval();
    let now = jiff::Timestamp::now();
    let since_full = kept.map_or(Duration::ZERO, |k| k.full_at.elapsed());
    let until_interval = interval.saturating_sub(since_full);
    let until_expiry = next_expiry(evaluation, now).map(|t| {
        Duration::from_millis((t.as_millisecond() - now.as_millisecond()).max(0) as u64 + 500)
    });
    until_expiry.map_or(until_interval, |d| d.min(until_interval))
}

// ---------------------------------------------------------------------------------------------
// publish events

/// Events, computed against the persisted status; a failed publish is logged, not retried.
async fn publish_events(ctx: &Shared, target: &SecureScoreTarget, evaluation: &TargetEvaluation) {
    for t in transitions(target.status.as_ref(), evaluation, target.spec.goal) {
        let event = KubeEvent {
            type_: if t.is_warning() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: t.reason().to_string(),
            note: Some(crate::engine::cel::truncate(&t.message(), 1000)),
            action: "Evaluate".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &target.object_ref(&())).await {
            tracing::warn!(error = %e, reason = t.reason(), "could not publish event");
        }
    }
}

/// Cross-target totals of one action (for its status): never per-target rows.
pub fn action_totals(ctx: &Shared, action: &str) -> (u64, u64, u64, u64, Option<String>) {
    let (mut targets, mut compliant, mut non_compliant, mut exempt) = (0, 0, 0, 0);
    let mut failing = None;
    for l in ctx.scoreboard.latest().values() {
        if let Some(o) = l
            .evaluation
            .actions
            .iter()
            .find(|o| o.action.name == action)
        {
            if o.state == ActionState::Unknown {
                continue;
            }
            targets += 1;
            compliant += o.counts.compliant;
            non_compliant += o.counts.unresolved + o.counts.planned;
            exempt += o.counts.accepted + o.counts.mitigated;
            if failing.is_none() {
                failing = o.dominant_error.clone();
            }
        }
    }
    (targets, compliant, non_compliant, exempt, failing)
}
