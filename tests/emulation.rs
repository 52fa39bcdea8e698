//! Tests of the emulated Kubernetes API server itself (tests/support/apiserver): kube-rs
//! clients, runtime watchers and the real kubectl against it.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::{Discovery, Scope};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use std::time::Duration;
use support::apiserver::{ApiServer, Options, eventually};

const WAIT: Duration = Duration::from_secs(10);

fn sst_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("securescore.io", "v1alpha1", "SecureScoreTarget");
    Api::namespaced_with(
        client,
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "securescoretargets"),
    )
}

fn ia_api(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("securescore.io", "v1alpha1", "ImprovementAction");
    Api::all_with(
        client,
        &ApiResource::from_gvk_with_plural(&gvk, "improvementactions"),
    )
}

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels },
        "data": { "k": name },
    }))
    .expect("static ConfigMap literal")
}

fn api_code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("expected an API error status, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_lists_builtin_and_crd_resources_with_scope() {
    let server = ApiServer::start().await;
    let discovery = Discovery::new(server.client())
        .run()
        .await
        .expect("discovery against the emulation");
    let (ia, ia_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "securescore.io",
            "v1alpha1",
            "ImprovementAction",
        ))
        .expect("ImprovementAction is discovered");
    assert_eq!(ia.plural, "improvementactions");
    assert_eq!(ia_caps.scope, Scope::Cluster);
    assert!(
        ia_caps
            .subresources
            .iter()
            .any(|(r, _)| r.plural == "status")
    );
    let (_, sst_caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "securescore.io",
            "v1alpha1",
            "SecureScoreTarget",
        ))
        .expect("SecureScoreTarget is discovered");
    assert_eq!(sst_caps.scope, Scope::Namespaced);
    for (g, v, k) in [
        ("", "v1", "Pod"),
        ("apps", "v1", "Deployment"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("events.k8s.io", "v1", "Event"),
    ] {
        assert!(
            discovery
                .resolve_gvk(&GroupVersionKind::gvk(g, v, k))
                .is_some(),
            "{g}/{v} {k} not discovered"
        );
    }
    let version = server.client().apiserver_version().await.expect("/version");
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn create_get_replace_delete_with_proper_status_errors() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let created = cms
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(
        api_code(
            cms.create(&PostParams::default(), &configmap("a", json!({})))
                .await
        ),
        409
    );
    assert_eq!(api_code(cms.get("missing").await), 404);
    assert_eq!(
        api_code(
            cms.create(&PostParams::default(), &configmap("Bad_Name", json!({})))
                .await
        ),
        422
    );
    let in_missing_ns: Api<ConfigMap> = Api::namespaced(server.client(), "nope");
    assert_eq!(
        api_code(
            in_missing_ns
                .create(&PostParams::default(), &configmap("a", json!({})))
                .await
        ),
        404
    );

    // Every write bumps the single global resourceVersion.
    let mut fresh = cms.get("a").await.expect("get");
    fresh.data = Some([("k".to_string(), "changed".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &fresh)
        .await
        .expect("replace with current rv");
    let rv = |o: &ConfigMap| {
        o.metadata
            .resource_version
            .clone()
            .unwrap_or_default()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(rv(&replaced) > rv(&created));
    // The stale copy now conflicts.
    assert_eq!(
        api_code(cms.replace("a", &PostParams::default(), &fresh).await),
        409
    );
    match cms.replace("a", &PostParams::default(), &fresh).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.reason, "Conflict");
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a Conflict status, got {other:?}"),
    }
    cms.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_code(cms.get("a").await), 404);
    assert_eq!(
        api_code(cms.delete("a", &DeleteParams::default()).await),
        404
    );
}

#[tokio::test]
async fn leases_conflict_on_stale_resource_version() {
    let server = ApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "securescore-leader" },
        "spec": { "holderIdentity": "a", "leaseDurationSeconds": 15 },
    }))
    .expect("static Lease literal");
    let mine = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
    let mut theirs = mine.clone();
    theirs.spec.get_or_insert_default().holder_identity = Some("b".into());
    leases
        .replace("securescore-leader", &PostParams::default(), &theirs)
        .await
        .expect("b takes the lease");
    let mut mine_again = mine.clone();
    mine_again.spec.get_or_insert_default().holder_identity = Some("a".into());
    assert_eq!(
        api_code(
            leases
                .replace("securescore-leader", &PostParams::default(), &mine_again)
                .await
        ),
        409
    );
    let stored = server
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "kube-system",
            "securescore-leader",
        )
        .expect("lease stored");
    assert_eq!(stored.pointer("/spec/holderIdentity"), Some(&json!("b")));
}

#[tokio::test]
async fn list_pages_show_the_first_pages_revision_whatever_changed_since() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    for i in 0..7 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("cm-{i}"), json!({ "team": "a" })),
        )
        .await
        .expect("create");
    }
    let first = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    // After the first page: one deleted, one added in the middle, one changed, one in the
    // first page changed.
    cms.delete("cm-5", &Default::default())
        .await
        .expect("delete");
    cms.create(
        &PostParams::default(),
        &configmap("cm-4a", json!({ "team": "a" })),
    )
    .await
    .expect("create");
    for name in ["cm-4", "cm-0"] {
        cms.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "metadata": { "labels": { "team": "b" } } })),
        )
        .await
        .expect("patch");
    }
    let mut pages = vec![first];
    while let Some(token) = pages
        .last()
        .and_then(|p| p.metadata.continue_.clone())
        .filter(|t| !t.is_empty())
    {
        let page = cms
            .list(&ListParams::default().limit(3).continue_token(&token))
            .await
            .expect("next page");
        pages.push(page);
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[1].metadata.remaining_item_count, Some(1));
    let items: Vec<(String, String)> = pages
        .into_iter()
        .flat_map(|l| l.items)
        .map(|c| {
            let labels = c.metadata.labels.unwrap_or_default();
            (
                c.metadata.name.unwrap_or_default(),
                labels.get("team").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = (0..7)
        .map(|i| (format!("cm-{i}"), "a".to_string()))
        .collect();
    assert_eq!(items, want);
    // A new list sees the changes.
    let now: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(
        now,
        ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-4a", "cm-6"]
    );
}

#[tokio::test]
async fn list_paginates_and_filters_by_label_and_field() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    for i in 0..7 {
        let team = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &configmap(&format!("cm-{i}"), json!({ "team": team })),
        )
        .await
        .expect("create");
    }
    let first = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let second = cms
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    let third = cms
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(&second.metadata.continue_.clone().expect("token 2")),
        )
        .await
        .expect("page 3");
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );
    let mut names: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|l| l.items)
        .filter_map(|c| c.metadata.name)
        .collect();
    names.dedup();
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());

    let odd = cms
        .list(&ListParams::default().labels("team=odd"))
        .await
        .expect("label selector");
    assert_eq!(odd.items.len(), 3);
    let not_odd = cms
        .list(&ListParams::default().labels("team notin (odd)"))
        .await
        .expect("set selector");
    assert_eq!(not_odd.items.len(), 4);
    let one = cms
        .list(&ListParams::default().fields("metadata.name=cm-5"))
        .await
        .expect("field selector");
    assert_eq!(one.items.len(), 1);
    let all_ns: Api<ConfigMap> = Api::all(server.client());
    let by_ns = all_ns
        .list(&ListParams::default().fields("metadata.namespace=kube-system"))
        .await
        .expect("all ns");
    assert!(by_ns.items.is_empty());
    // Only the field labels the real server indexes (measured on kube-apiserver v1.37).
    match cms.list(&ListParams::default().fields("data.a=b")).await {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.message.as_str()),
            (
                400,
                "\"data.a\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )
        ),
        other => panic!("a field selector on data.a must be refused: {other:?}"),
    }
    let targets = sst_api(server.client(), "default");
    match targets
        .list(&ListParams::default().fields("spec.goal=1"))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(
            (s.code, s.message.as_str()),
            (400, "field label not supported: spec.goal")
        ),
        other => panic!("a field selector on a custom resource's spec must be refused: {other:?}"),
    }

    // A continue token older than the compacted history is 410 Gone.
    let page = cms
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    cms.delete("cm-6", &DeleteParams::default())
        .await
        .expect("delete");
    server.compact();
    let token = page.metadata.continue_.expect("token");
    assert_eq!(
        api_code(
            cms.list(&ListParams::default().limit(2).continue_token(&token))
                .await
        ),
        410
    );
}

#[tokio::test]
async fn server_side_apply_status_subresource_generation_and_ownership() {
    let server = ApiServer::start().await;
    let ssts = sst_api(server.client(), "default");
    let apply = |goal: i64, extra: Value| {
        let mut v = json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": { "name": "team-a" },
            "spec": { "goal": goal },
            "status": { "score": 999 },
        });
        json_patch::merge(&mut v, &extra);
        v
    };
    let pp = PatchParams::apply("gitops");
    let created = ssts
        .patch(
            "team-a",
            &pp,
            &Patch::Apply(apply(
                80,
                json!({ "metadata": { "labels": { "team": "a" } } }),
            )),
        )
        .await
        .expect("SSA create");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "the main endpoint must ignore status"
    );

    let status_pp = PatchParams::apply("securescore-operator").force();
    let status = json!({ "apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget", "metadata": { "name": "team-a" },
        "spec": { "goal": 1 }, "status": { "score": 42, "percentage": 50 } });
    let after_status = ssts
        .patch_status("team-a", &status_pp, &Patch::Apply(&status))
        .await
        .expect("SSA on /status");
    assert_eq!(after_status.data.pointer("/status/score"), Some(&json!(42)));
    assert_eq!(
        after_status.data.pointer("/spec/goal"),
        Some(&json!(80)),
        "/status must ignore spec"
    );
    assert_eq!(
        after_status.metadata.generation,
        Some(1),
        "status writes never bump generation"
    );
    let managers: Vec<(String, Option<String>)> = after_status
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.manager.unwrap_or_default(), m.subresource))
        .collect();
    assert!(
        managers.contains(&("securescore-operator".into(), Some("status".into()))),
        "{managers:?}"
    );
    assert!(managers.contains(&("gitops".into(), None)), "{managers:?}");

    // The same status again is a no-op: no new resourceVersion.
    let again = ssts
        .patch_status("team-a", &status_pp, &Patch::Apply(&status))
        .await
        .expect("same status");
    assert_eq!(
        again.metadata.resource_version,
        after_status.metadata.resource_version
    );

    // A spec change bumps generation.
    let bumped = ssts
        .patch(
            "team-a",
            &pp,
            &Patch::Apply(apply(
                90,
                json!({ "metadata": { "labels": { "team": "a" } } }),
            )),
        )
        .await
        .expect("spec change");
    assert_eq!(bumped.metadata.generation, Some(2));
    assert_eq!(
        bumped.data.pointer("/status/score"),
        Some(&json!(42)),
        "the main endpoint keeps status"
    );

    // Another manager changing an owned field conflicts, unless forced.
    let other = PatchParams::apply("someone-else");
    assert_eq!(
        api_code(
            ssts.patch("team-a", &other, &Patch::Apply(apply(70, json!({}))))
                .await
        ),
        409
    );
    let forced = ssts
        .patch(
            "team-a",
            &other.clone().force(),
            &Patch::Apply(apply(70, json!({}))),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data.pointer("/spec/goal"), Some(&json!(70)));

    // Fields a manager stops applying are removed (the label owned by gitops alone).
    let dropped = ssts
        .patch(
            "team-a",
            &pp.clone().force(),
            &Patch::Apply(apply(70, json!({}))),
        )
        .await
        .expect("drop label");
    assert!(
        dropped.metadata.labels.unwrap_or_default().is_empty(),
        "label no longer applied must be removed"
    );

    // Merge patch and JSON patch on the object.
    let merged = ssts
        .patch(
            "team-a",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "a": "b" } } })),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        merged
            .metadata
            .annotations
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("b")
    );
    let stale = json!({ "metadata": { "resourceVersion": created.metadata.resource_version } });
    assert_eq!(
        api_code(
            ssts.patch("team-a", &PatchParams::default(), &Patch::Merge(stale))
                .await
        ),
        409
    );

    // fieldManager is required for apply patches.
    let req = http::Request::patch(
        "/apis/securescore.io/v1alpha1/namespaces/default/securescoretargets/team-a",
    )
    .header("content-type", "application/apply-patch+yaml")
    .body(serde_json::to_vec(&apply(1, json!({}))).expect("json"))
    .expect("request");
    assert_eq!(api_code(server.client().request::<Value>(req).await), 400);
}

#[tokio::test]
async fn finalizers_delay_deletion_until_removed() {
    let server = ApiServer::start().await;
    let ias = ia_api(server.client());
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": { "name": "no-privileged", "finalizers": ["securescore.io/cleanup"] },
        "spec": { "category": "Device" },
    }))
    .expect("static literal");
    ias.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    ias.delete("no-privileged", &DeleteParams::default())
        .await
        .expect("delete");
    let terminating = ias.get("no-privileged").await.expect("still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    ias.patch(
        "no-privileged",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .expect("remove finalizer");
    assert_eq!(api_code(ias.get("no-privileged").await), 404);
}

async fn reflector_sees_changes(server: &ApiServer, config: watcher::Config) {
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.create(&PostParams::default(), &configmap("before", json!({})))
        .await
        .expect("create");
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(cms.clone(), config)).applied_objects();
    let task = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    reader.wait_until_ready().await.expect("reflector ready");
    assert_eq!(reader.state().len(), 1);
    cms.create(&PostParams::default(), &configmap("after", json!({})))
        .await
        .expect("create");
    eventually("the reflector to see the new ConfigMap", WAIT, || {
        (reader.state().len() == 2).then_some(())
    })
    .await;
    cms.delete("before", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the reflector to drop the deleted ConfigMap", WAIT, || {
        let names: Vec<String> = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        (names == ["after"]).then_some(())
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn watcher_with_list_watch_strategy_feeds_a_reflector() {
    let server = ApiServer::start().await;
    reflector_sees_changes(&server, watcher::Config::default()).await;
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.path.ends_with("/configmaps"))
        .count();
    assert!(lists >= 1, "ListWatch must list first");
}

#[tokio::test]
async fn watcher_with_streaming_list_strategy_feeds_a_reflector() {
    let server = ApiServer::start().await;
    reflector_sees_changes(&server, watcher::Config::default().streaming_lists()).await;
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.verb == "watch" && r.query.contains("sendInitialEvents=true"))
    );
    assert!(
        !reqs
            .iter()
            .any(|r| r.verb == "list" && r.path.ends_with("/configmaps")),
        "StreamingList must not list"
    );
}

#[tokio::test]
async fn watch_sends_bookmarks_and_410_for_compacted_versions() {
    let server = ApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let created = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "v2" } })),
    )
    .await
    .expect("patch");
    let mut saw_modified = false;
    let mut saw_bookmark = false;
    while let Some(ev) = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .expect("watch event in time")
        .expect("event")
    {
        match ev {
            WatchEvent::Modified(cm) => {
                saw_modified =
                    cm.data.unwrap_or_default().get("k").map(String::as_str) == Some("v2")
            }
            WatchEvent::Bookmark(b) => saw_bookmark = !b.metadata.resource_version.is_empty(),
            other => panic!("unexpected event {other:?}"),
        }
        if saw_modified && saw_bookmark {
            break;
        }
    }
    assert!(saw_modified && saw_bookmark);

    server.compact();
    let mut old = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch starts with 200")
        .boxed();
    match old.try_next().await.expect("a watch event") {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected an ERROR 410 event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_relists_after_restart_with_compacted_history() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .expect("create");
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(cms.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let task = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    reader.wait_until_ready().await.expect("ready");
    let port = server.port();

    server.stop_listening().await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "connections must be refused while stopped"
    );
    server.put(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "two", "namespace": "default" } }));
    server.compact();
    server.clear_requests();
    server.resume_listening().await;
    assert_eq!(server.port(), port);

    eventually(
        "the watcher to relist and see the object created while the API was down",
        WAIT,
        || (reader.state().len() == 2).then_some(()),
    )
    .await;
    let relisted = server
        .requests()
        .iter()
        .any(|r| r.verb == "list" && r.status == 200);
    assert!(relisted, "a 410 must make the watcher relist");
    task.abort();
}

#[tokio::test]
async fn injected_faults_and_denials() {
    let server = ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    server.fail_next(Some("list"), Some("configmaps"), 2, 500);
    assert_eq!(api_code(cms.list(&ListParams::default()).await), 500);
    assert_eq!(api_code(cms.list(&ListParams::default()).await), 500);
    cms.list(&ListParams::default())
        .await
        .expect("third list succeeds");

    server.deny(Some("create"), "coordination.k8s.io", "leases");
    let leases: Api<Lease> = Api::default_namespaced(server.client());
    let lease: Lease =
        serde_json::from_value(json!({ "metadata": { "name": "l" } })).expect("literal");
    match leases.create(&PostParams::default(), &lease).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(
                s.message.contains("cannot create resource \"leases\""),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    leases
        .list(&ListParams::default())
        .await
        .expect("list is still allowed");
    server.allow_all();
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("allowed again");
}

#[tokio::test]
async fn events_recorder_publishes_events_k8s_io() {
    let server = ApiServer::start().await;
    let recorder = kube::runtime::events::Recorder::new(
        server.client(),
        kube::runtime::events::Reporter {
            controller: "securescore".into(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        api_version: Some("securescore.io/v1alpha1".into()),
        kind: Some("SecureScoreTarget".into()),
        name: Some("team-a".into()),
        namespace: Some("default".into()),
        uid: Some("u-1".into()),
        ..Default::default()
    };
    let event = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Normal,
        reason: "ScoreChanged".into(),
        note: Some("score 40 -> 50".into()),
        action: "Evaluate".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.expect("publish");
    recorder
        .publish(&event, &reference)
        .await
        .expect("publish again (series)");
    let events = server.events(Some("default"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], json!("ScoreChanged"));
    assert_eq!(events[0]["apiVersion"], json!("events.k8s.io/v1"));
}

// ---- the real kubectl ------------------------------------------------------------------------

fn kubectl_path() -> std::path::PathBuf {
    support::tools::tool("kubectl", "kubectl-and-helm")
}

async fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<String>,
) -> (bool, String, String) {
    let (bin, kc) = (kubectl_path(), kubeconfig.to_path_buf());
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(&bin)
            .args(&args)
            .env("KUBECONFIG", &kc)
            .env("HOME", kc.parent().unwrap_or(std::path::Path::new("/tmp")))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .expect("writing kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("kubectl task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_and_delete() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kc);
    let manifest = r#"
apiVersion: securescore.io/v1alpha1
kind: SecureScoreTarget
metadata:
  name: team-a
  namespace: default
spec:
  goal: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  containers:
  - name: app
    image: nginx:1.27
"#;
    let (ok, out, err) = kubectl(
        &kc,
        &["apply", "--server-side", "-f", "-"],
        Some(manifest.into()),
    )
    .await;
    assert!(ok, "kubectl apply --server-side failed: {out}{err}");
    assert!(
        out.contains("securescoretarget.securescore.io/team-a serverside-applied"),
        "{out}"
    );
    let stored = server
        .get(
            "securescore.io/v1alpha1",
            "securescoretargets",
            "default",
            "team-a",
        )
        .expect("stored");
    let managers: Vec<&str> = stored["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kubectl"]);

    let (ok, out, err) = kubectl(&kc, &["get", "sst", "-A", "-o", "json"], None).await;
    assert!(ok, "kubectl get sst failed: {err}");
    let list: Value = serde_json::from_str(&out).expect("kubectl -o json prints JSON");
    assert_eq!(
        list.pointer("/items/0/metadata/name"),
        Some(&json!("team-a"))
    );
    assert_eq!(list.pointer("/items/0/spec/goal"), Some(&json!(80)));

    let (ok, out, err) = kubectl(&kc, &["get", "pods"], None).await;
    assert!(ok, "kubectl get pods failed: {err}");
    assert!(
        out.lines().next().unwrap_or_default().starts_with("NAME"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("web ")), "{out}");

    // Re-applying the same manifest is accepted; a client-side apply works too.
    let (ok, _, err) = kubectl(
        &kc,
        &["apply", "--server-side", "-f", "-"],
        Some(manifest.into()),
    )
    .await;
    assert!(ok, "re-apply failed: {err}");
    let (ok, out, err) = kubectl(&kc, &["label", "pod", "web", "tier=frontend"], None).await;
    assert!(
        ok && out.contains("labeled"),
        "kubectl label failed: {out}{err}"
    );
    assert_eq!(
        server
            .get("v1", "pods", "default", "web")
            .and_then(|p| p.pointer("/metadata/labels/tier").cloned()),
        Some(json!("frontend"))
    );

    let (ok, out, err) = kubectl(&kc, &["delete", "-f", "-"], Some(manifest.into())).await;
    assert!(ok, "kubectl delete failed: {out}{err}");
    assert!(server.get("v1", "pods", "default", "web").is_none());
    assert!(
        server
            .list("securescore.io/v1alpha1", "securescoretargets", None)
            .is_empty()
    );
    let (ok, _, err) = kubectl(&kc, &["get", "pod", "web"], None).await;
    assert!(!ok && err.contains("NotFound"), "{err}");
}
