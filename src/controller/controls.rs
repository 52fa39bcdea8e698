//! SecurityControl reconciler: keep the known controls for the targets in the SecurityControls
//! model (re-evaluating them when a control changes), and report each control's `Ready`
//! condition and the actions it groups now.

use super::{FIELD_MANAGER, Shared, unpoison};
use crate::api::{SecurityControl, SecurityControlStatus};
use crate::engine::status::set_condition;
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use std::sync::Arc;
use std::time::Duration;

/// `Ready` reason of a control that groups at least one known action.
pub const REASON_ACTIONS_GROUPED: &str = "ActionsGrouped";
/// `Ready` reason of a control that groups no known action.
pub const REASON_NO_ACTIONS: &str = "NoActions";

pub async fn run(shared: Arc<Shared>, stopping: super::Stopping) {
    let api: Api<SecurityControl> = Api::all(shared.client.clone());
    let (reader, writer) = reflector::store();
    let on_event = shared.clone();
    let mut relisted: Option<std::collections::HashSet<String>> = None;
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .inspect(move |ev| {
            // A (re)list names every control that exists: the others were deleted meanwhile.
            if let Ok(Event::Init) = ev {
                relisted = Some(std::collections::HashSet::new());
            }
            if let (Some(seen), Ok(Event::InitApply(c))) = (relisted.as_mut(), ev) {
                seen.insert(c.name_any());
            }
            let changed = match ev {
                Ok(Event::Delete(c)) => on_event
                    .controls
                    .write()
                    .unwrap_or_else(unpoison)
                    .remove(&c.name_any())
                    .is_some(),
                Ok(Event::Apply(c) | Event::InitApply(c)) => {
                    let mut known = on_event.controls.write().unwrap_or_else(unpoison);
                    let name = c.name_any();
                    // Status writes change nothing a target reads: only a new spec counts.
                    if known.get(&name).is_some_and(|k| k.spec == c.spec) {
                        false
                    } else {
                        let mut control = c.clone();
                        control.status = None;
                        control.metadata.managed_fields = None;
                        known.insert(name, Arc::new(control));
                        true
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(seen) = relisted.take() {
                        on_event
                            .controls
                            .write()
                            .unwrap_or_else(unpoison)
                            .retain(|name, _| seen.contains(name));
                    }
                    on_event
                        .controls_listed
                        .store(true, std::sync::atomic::Ordering::Release);
                    true
                }
                _ => false,
            };
            if changed {
                on_event.trigger_all();
            }
        })
        .applied_objects();
    Controller::for_stream(stream, reader)
        .with_config(ControllerConfig::default().concurrency(2))
        .graceful_shutdown_on(stopping)
        .run(reconcile, super::actions::error_policy, shared)
        .for_each(|_| async {})
        .await;
}

/// The status of a control against the loaded actions (pure, for the reconciler and tests).
pub fn status_of(
    control: &SecurityControl,
    members: Vec<String>,
    now: jiff::Timestamp,
) -> SecurityControlStatus {
    let previous = control.status.clone().unwrap_or_default();
    let mut status = SecurityControlStatus {
        conditions: previous.conditions,
        observed_generation: control.metadata.generation,
        actions: members,
    };
    let (ready, reason, message) = if status.actions.is_empty() {
        (
            false,
            REASON_NO_ACTIONS,
            "groups no known ImprovementAction (check spec.actions and spec.actionSelector): it applies to nothing".to_string(),
        )
    } else {
        (
            true,
            REASON_ACTIONS_GROUPED,
            format!("groups {} ImprovementAction(s)", status.actions.len()),
        )
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        reason,
        &message,
        now,
        control.metadata.generation,
    );
    status
}

async fn reconcile(control: Arc<SecurityControl>, ctx: Arc<Shared>) -> Result<Action, kube::Error> {
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    // Which actions a control groups is only known once the catalog has loaded (for at most
    // as long as targets wait for it): no NoActions verdict before that.
    if ctx.loading_actions() {
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let members = {
        let actions = ctx.actions.read().unwrap_or_else(unpoison);
        crate::engine::controls::members(
            &control,
            actions.values().map(|a| (a.name.as_str(), &a.labels)),
        )
    };
    let status = status_of(&control, members, jiff::Timestamp::now());
    if Some(&status) != control.status.as_ref() {
        let api: Api<SecurityControl> = Api::all(ctx.client.clone());
        let patch = serde_json::json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecurityControl", "status": status});
        api.patch_status(
            &control.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    // Actions come and go: look again in a while (the status follows within a minute).
    Ok(Action::requeue(Duration::from_secs(60)))
}
