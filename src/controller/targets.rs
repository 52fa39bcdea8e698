//! SecureScoreTarget reconciler: gather → engine → status (on change) → Events (on transition).

use super::{FIELD_MANAGER, Latest, Shared, unpoison};
use crate::api::{ActionState, BENCHMARK_GROUP_LABEL, SecureScoreTarget, SecureScoreTargetStatus};
use crate::engine::comparison::{Member, compare};
use crate::engine::evaluate::{Outcome, scope_namespaces, select_actions, wants_wide_scope};
use crate::engine::resource::KindStatus;
use crate::engine::transitions::transitions;
use crate::engine::{Inventory, TargetInput, evaluate};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, predicates};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Why a reconcile failed (counted by a fixed label).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("evaluation task failed: {0}")]
    Join(String),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Api(kube::Error::Api(s)) if s.code == 409 => "Conflict",
            Error::Api(_) => "ApiError",
            Error::Join(_) => "EvaluationPanicked",
        }
    }
}

/// `5m`, `1h30m`, `90s`, `500ms` → a duration (at least 10 seconds).
pub fn parse_interval(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        total += unit * u32::try_from(n).ok()?;
        rest = &rest[len..];
    }
    Some(total.max(Duration::from_secs(10)))
}

fn key_of(t: &SecureScoreTarget) -> (String, String) {
    (t.namespace().unwrap_or_default(), t.name_any())
}

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
                on_delete.latest.write().unwrap_or_else(unpoison).remove(&key);
                on_delete.scopes.write().unwrap_or_else(unpoison).remove(&key);
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
    ctx.metrics
        .reconcile_error("SecureScoreTarget", error.reason());
    tracing::warn!(namespace = %target.namespace().unwrap_or_default(), target = %target.name_any(), error = %error, "reconcile failed; retrying");
    let wait = if error.reason() == "Conflict" {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    Action::requeue(wait)
}

/// Whether two statuses differ in more than `lastEvaluated`.
fn meaningfully_different(a: &SecureScoreTargetStatus, b: &SecureScoreTargetStatus) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.last_evaluated = None;
    b.last_evaluated = None;
    a != b
}

async fn reconcile(target: Arc<SecureScoreTarget>, ctx: Arc<Shared>) -> Result<Action, Error> {
    let key = key_of(&target);
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let interval = target
        .spec
        .interval
        .as_deref()
        .and_then(parse_interval)
        .unwrap_or(Duration::from_secs(300));
    // The catalog is part of the inventory: nothing is evaluated before every action is loaded.
    if !ctx.actions_loaded() {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let actions: Vec<Arc<crate::engine::CompiledAction>> = {
        let mut v: Vec<_> = ctx
            .actions
            .read()
            .unwrap_or_else(unpoison)
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    let (selected, _) = select_actions(&target, &actions);
    let mut needed: BTreeSet<(String, String)> = [(String::new(), "Namespace".to_string())].into();
    for a in selected.iter().filter(|a| a.is_ready()) {
        needed.extend(a.kinds_read().map(|(g, k)| (g.to_string(), k.to_string())));
    }
    // Caches for new kinds start on demand; nothing is evaluated before they have synced,
    // unless they stay unsynced for a minute (then the evaluation is Degraded).
    ctx.caches.ensure(&ctx.desired_kinds()).await;
    let statuses = ctx.caches.statuses();
    let unsynced = needed
        .iter()
        .any(|k| statuses.get(k).is_none_or(|s| *s == KindStatus::NotSynced));
    if unsynced && ctx.started.elapsed() < Duration::from_secs(60) {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }

    // Gather: the namespaces first (for selectors), then the objects in scope.
    let wide_allowed = ctx.settings.cluster_target_namespaces.contains(&key.0);
    let namespace_kind: BTreeSet<(String, String)> =
        [(String::new(), "Namespace".to_string())].into();
    let namespaces_only = Inventory::complete(ctx.caches.snapshot(&namespace_kind, None, true));
    let scope = scope_namespaces(&target, &namespaces_only);
    let cluster =
        target.spec.scope.cluster_resources && (wide_allowed || !wants_wide_scope(&target));
    let objects = ctx.caches.snapshot(&needed, Some(&scope), cluster);
    let kinds: HashMap<(String, String), KindStatus> = needed
        .iter()
        .map(|k| {
            (
                k.clone(),
                statuses.get(k).copied().unwrap_or(KindStatus::NotSynced),
            )
        })
        .collect();
    let previous = target.status.clone();
    let eval_target = target.clone();
    let started = std::time::Instant::now();
    let now = jiff::Timestamp::now();
    let evaluation = tokio::task::spawn_blocking(move || {
        let inventory = Inventory::with_kinds(objects, kinds);
        evaluate(&TargetInput {
            target: &eval_target,
            actions: &actions,
            inventory: &inventory,
            now,
            previous: previous.as_ref(),
            wide_scope_allowed: wide_allowed,
        })
    })
    .await
    .map_err(|e| Error::Join(e.to_string()))?;
    let result = match evaluation.outcome {
        Outcome::Evaluated => "success",
        Outcome::Degraded => "degraded",
        Outcome::Suspended => "suspended",
        Outcome::ScopeNotAllowed => "refused",
    };
    ctx.metrics
        .evaluation(result, started.elapsed().as_secs_f64());
    let mut evaluation = evaluation;

    // Comparison within the benchmark group named on the target's Namespace.
    if evaluation.outcome == Outcome::Evaluated
        && let Some(group) = group_of(&namespaces_only, &key.0)
    {
        let me_pct = evaluation.status.percentage;
        let revision = evaluation.status.catalog_revision.clone();
        let latest = ctx.latest.read().unwrap_or_else(unpoison);
        let mut members: Vec<Member> = latest
            .iter()
            .filter(|(k, _)| {
                **k != key && group_of(&namespaces_only, &k.0).as_deref() == Some(group.as_str())
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
        if let Some(p) = me_pct {
            let me = Member {
                namespace: key.0.clone(),
                name: key.1.clone(),
                percentage: p,
            };
            members.push(me.clone());
            evaluation.status.comparison = compare(&group, &members, &me);
        }
    }

    // An exemption expiring before the next interval takes effect on time.
    let next_expiry = evaluation
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
        .filter(|t| *t > now)
        .map(|t| {
            Duration::from_millis((t.as_millisecond() - now.as_millisecond()).max(0) as u64 + 500)
        })
        .min();
    let requeue = next_expiry.map_or(interval, |d| d.min(interval));
    ctx.scopes
        .write()
        .unwrap_or_else(unpoison)
        .insert(key.clone(), (scope, target.spec.scope.cluster_resources));
    // Apply the status only when it changed (lastEvaluated alone is refreshed at most every
    // max(interval, 10m)).
    let previous = target.status.clone();
    let refresh_after = interval.max(Duration::from_secs(600));
    let stale = previous
        .as_ref()
        .and_then(|p| p.last_evaluated.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_none_or(|t| (now.as_second() - t.as_second()) as u64 >= refresh_after.as_secs());
    let changed = previous
        .as_ref()
        .is_none_or(|p| meaningfully_different(p, &evaluation.status));
    if changed || stale {
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
        .await?;
    }

    // The metrics follow the persisted status: a scrape after this reconcile's Events sees the
    // score they announce, and a target whose status writes fail goes stale.
    // Kept for /metrics and the actions' totals, which need counts only: the per-resource
    // rows (one per applicable resource and action) would hold the cluster a second time.
    let mut evaluation = evaluation;
    for outcome in &mut evaluation.actions {
        outcome.results = Vec::new();
    }
    let evaluation = Arc::new(evaluation);
    match evaluation.outcome {
        Outcome::Evaluated | Outcome::Degraded => {
            ctx.latest.write().unwrap_or_else(unpoison).insert(
                key.clone(),
                Latest {
                    evaluation: evaluation.clone(),
                    goal: target.spec.goal,
                    interval,
                    evaluated_at: now,
                },
            );
        }
        Outcome::Suspended | Outcome::ScopeNotAllowed => {
            ctx.latest.write().unwrap_or_else(unpoison).remove(&key);
        }
    }

    // Events, computed against the persisted status.
    for t in transitions(previous.as_ref(), &evaluation, target.spec.goal) {
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

    let _ = ctx.totals_changed.send(());
    Ok(Action::requeue(requeue))
}

fn group_of(namespaces: &Inventory, ns: &str) -> Option<String> {
    namespaces
        .namespace(ns)
        .and_then(|n| n.labels.get(BENCHMARK_GROUP_LABEL).cloned())
}

/// Cross-target totals of one action (for its status): never per-target rows.
pub fn action_totals(ctx: &Shared, action: &str) -> (u64, u64, u64, u64, Option<String>) {
    let latest = ctx.latest.read().unwrap_or_else(unpoison);
    let (mut targets, mut compliant, mut non_compliant, mut exempt) = (0, 0, 0, 0);
    let mut failing = None;
    for l in latest.values() {
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

#[cfg(test)]
mod tests {
    use super::parse_interval;
    use std::time::Duration;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_interval("1s"),
            Some(Duration::from_secs(10)),
            "at least 10 seconds"
        );
        assert_eq!(parse_interval("5x"), None);
        assert_eq!(parse_interval(""), None);
    }
}
