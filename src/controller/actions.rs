//! ImprovementAction reconciler: compile once per definition, report Ready and the
//! cross-target totals, and re-evaluate targets when the catalog changes.

use super::{FIELD_MANAGER, Shared, unpoison};
use crate::api::{ImprovementAction, ImprovementActionStatus};
use crate::engine::CompiledAction;
use crate::engine::check::ProblemReason;
use crate::engine::status::set_condition;
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// How long loading one action (compiling it and running its examples) may take.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(20);

/// An action that could not be loaded: Unknown for every target, Ready=False with `reason`.
/// Built without running anything from it (no examples), at the revision of its definition,
/// so that it is not loaded again until the definition changes.
fn unloadable(
    action: &ImprovementAction,
    reason: ProblemReason,
    message: String,
) -> Arc<CompiledAction> {
    let name = action.name_any();
    let mut spec = action.spec.clone();
    spec.check.examples.clear();
    let mut broken = CompiledAction::compile(&ImprovementAction::new(&name, spec));
    broken.revision = crate::engine::check::revision_of(&action.spec);
    broken.spec = action.spec.clone();
    broken.problem = Some(crate::engine::check::ActionProblem { reason, message });
    Arc::new(broken)
}

/// How often, at most, the actions' cross-target totals (`status.targets`, resource counts)
/// are refreshed while targets keep changing.
const TOTALS_PERIOD: Duration = Duration::from_secs(1);

pub async fn run(
    shared: Arc<Shared>,
    totals_changed: tokio::sync::mpsc::UnboundedReceiver<()>,
    stopping: super::Stopping,
) {
    let api: Api<ImprovementAction> = Api::all(shared.client.clone());
    let (reader, writer) = reflector::store();
    let on_delete = shared.clone();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .inspect(move |ev| {
            if let Ok(Event::Delete(a)) = ev {
                on_delete
                    .actions
                    .write()
                    .unwrap_or_else(unpoison)
                    .remove(&a.name_any());
                tracing::info!(action = %a.name_any(), "action deleted");
                on_delete.trigger_all();
            }
        })
        .applied_objects();
    *shared.action_store.write().unwrap_or_else(unpoison) = Some(reader.clone());
    Controller::for_stream(stream, reader)
        .with_config(
            // No debounce: a new or changed action is compiled at once (targets wait for it).
            ControllerConfig::default().concurrency(2),
        )
        .reconcile_all_on(futures::stream::unfold(
            totals_changed,
            |mut rx| async move {
                // Every target reconcile signals; a refresh reconciles every action (status reads
                // and writes for ~70 actions). One refresh per TOTALS_PERIOD at most, so a stream of
                // changes does not queue a burst of action writes in front of each next change.
                rx.recv().await?;
                tokio::time::sleep(TOTALS_PERIOD).await;
                while rx.try_recv().is_ok() {}
                Some(((), rx))
            },
        ))
        .graceful_shutdown_on(stopping)
        .run(reconcile, error_policy, shared)
        .for_each(|_| async {})
        .await;
}

/// The error policy of the cluster-scoped definitions (ImprovementAction, SecurityControl):
/// count the failed reconcile by kind and reason (`Conflict` or `ApiError`), retry in 5 s.
pub(super) fn error_policy<K>(object: Arc<K>, error: &kube::Error, ctx: Arc<Shared>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let reason = if matches!(error, kube::Error::Api(s) if s.code == 409) {
        "Conflict"
    } else {
        "ApiError"
    };
    let kind = K::kind(&());
    ctx.metrics().reconcile_error(&kind, reason);
    tracing::warn!(kind = %kind, name = %object.name_any(), error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(
    action: Arc<ImprovementAction>,
    ctx: Arc<Shared>,
) -> Result<Action, kube::Error> {
    let name = action.name_any();
    let revision = crate::engine::check::revision_of(&action.spec);
    let known = ctx
        .actions
        .read()
        .unwrap_or_else(unpoison)
        .get(&name)
        .filter(|a| a.revision == revision)
        .cloned();
    let compiled = match known {
        Some(c) => c,
        None => {
            let source = action.clone();
            // Off the reactor, with a deadline: an action whose examples never finish is
            // reported on its own and never holds up the other actions or the targets (the
            // stuck thread is abandoned; the engine's run-time budget is what ends it).
            let loading =
                tokio::task::spawn_blocking(move || Arc::new(CompiledAction::compile(&source)));
            let compiled = match tokio::time::timeout(LOAD_DEADLINE, loading).await {
                Ok(Ok(compiled)) => compiled,
                Ok(Err(e)) => {
                    tracing::error!(action = %name, error = %e, "loading the action panicked");
                    unloadable(
                        &action,
                        ProblemReason::InvalidExpression,
                        "loading the action failed (the check panicked)".into(),
                    )
                }
                Err(_) => unloadable(
                    &action,
                    ProblemReason::LimitExceeded,
                    format!(
                        "loading did not finish within {} s (compiling the check and running its examples)",
                        LOAD_DEADLINE.as_secs()
                    ),
                ),
            };
            if let Some(p) = &compiled.problem {
                tracing::warn!(action = %name, reason = p.reason.as_str(), message = %p.message, "action is not Ready");
            }
            ctx.actions
                .write()
                .unwrap_or_else(unpoison)
                .insert(name.clone(), compiled.clone());
            *ctx.action_loaded_at.lock().unwrap_or_else(unpoison) = std::time::Instant::now();
            ctx.caches.ensure(&ctx.desired_kinds()).await;
            ctx.trigger_all();
            compiled
        }
    };
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let (targets, compliant, non_compliant, exempt, failing) =
        super::targets::action_totals(&ctx, &name);
    let previous = action.status.clone().unwrap_or_default();
    let mut status = ImprovementActionStatus {
        conditions: previous.conditions.clone(),
        observed_generation: action.metadata.generation,
        catalog_revision: Some(compiled.revision.clone()),
        targets,
        compliant,
        non_compliant,
        exempt,
    };
    let now = jiff::Timestamp::now();
    // A load problem, or the engine's verdict that the check crossed its run-time budget on
    // several resources (it is then Unknown for every target until the action changes).
    let problem = compiled
        .problem
        .clone()
        .or_else(|| compiled.limit_exceeded());
    let (ready, reason, message) = match (&problem, &failing) {
        (Some(p), _) => (false, p.reason.as_str(), p.message.clone()),
        (None, Some(e)) => (
            false,
            "EvaluationFailing",
            format!("most resources fail to evaluate with: {e}"),
        ),
        (None, None) => (
            true,
            "Ready",
            "every expression compiled and every example passed".to_string(),
        ),
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        reason,
        &message,
        now,
        action.metadata.generation,
    );
    if status != previous {
        let became_invalid = !ready
            && previous
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .is_none_or(|c| c.status == "True");
        let api: Api<ImprovementAction> = Api::all(ctx.client.clone());
        let patch = serde_json::json!({"apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "status": status});
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        if became_invalid {
            let event = KubeEvent {
                type_: EventType::Warning,
                reason: reason.to_string(),
                note: Some(crate::engine::cel::truncate(&message, 1000)),
                action: "Load".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &action.object_ref(&())).await {
                tracing::warn!(error = %e, "could not publish event");
            }
        }
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}
