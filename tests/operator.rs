//! End-to-end: the real `securescore run` binary against the in-process Kubernetes API
//! emulation (tests/support). The same scenarios run against a real cluster in
//! tests/operator_cluster.rs (against a real kube-apiserver started by scripts/test.sh).

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::apiserver::{ApiServer, eventually};
use support::operator::Operator;

const WAIT: Duration = Duration::from_secs(30);
const SST: (&str, &str) = ("securescore.io/v1alpha1", "securescoretargets");
const IA: (&str, &str) = ("securescore.io/v1alpha1", "improvementactions");

fn namespace(server: &ApiServer, name: &str, labels: Value) {
    server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}));
}

fn pod(server: &ApiServer, ns: &str, name: &str, non_root: bool) {
    server.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"securityContext": {"runAsNonRoot": non_root}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
    }));
}

fn non_root_action(name: &str, points: u32) -> Value {
    json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": name},
        "spec": {"title": "Run as non-root", "category": "Apps", "maxScore": points,
            "check": {"podSpec": true, "validations": [{
                "expression": "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot",
                "message": "pod runs as root"}]}}
    })
}

fn target(ns: &str, spec: Value) -> Value {
    json!({"apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget", "metadata": {"name": "team", "namespace": ns}, "spec": spec})
}

fn score(server: &ApiServer, ns: &str) -> Option<f64> {
    server
        .status(SST.0, SST.1, ns, "team")?
        .get("score")?
        .as_f64()
}

/// The status row of `action` in a target's status (panics naming it when absent).
fn action_row(status: &Value, action: &str) -> Value {
    status["actions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|a| a["name"] == action))
        .unwrap_or_else(|| panic!("no row {action} in {status}"))
        .clone()
}

/// The action's Ready condition once the operator has written one matching `status`
/// ("True", "False", or "" for any).
async fn ready_condition(server: &ApiServer, action: &str, status: &str, wait: Duration) -> Value {
    eventually(
        &format!("the {action} action's Ready condition"),
        wait,
        || {
            let st = server.status(IA.0, IA.1, "", action)?;
            st["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready" && (status.is_empty() || c["status"] == status))
                .cloned()
        },
    )
    .await
}

fn setup(server: &ApiServer) {
    namespace(server, "securescore-system", json!({}));
    namespace(server, "team-a", json!({}));
    pod(server, "team-a", "web", true);
    pod(server, "team-a", "api", true);
    pod(server, "team-a", "db", false);
    server
        .create(non_root_action("non-root", 9))
        .expect("action created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_scores_a_target_and_reacts_to_a_fix_without_waiting_for_the_interval() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(target("team-a", json!({"goal": 80, "interval": "1h"})))
        .unwrap();
    let op = Operator::start(&server, &[]);
    let s = eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    assert_eq!(s, 6.0, "{}", op.logs());
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    assert_eq!(status["maxScore"], 9.0);
    assert_eq!(status["percentage"], 66.67);
    assert_eq!(status["actions"][0]["compliant"], 2);
    assert_eq!(status["observedGeneration"], 1);
    let target_obj = server.get(SST.0, SST.1, "team-a", "team").unwrap();
    let managers: Vec<&str> = target_obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"securescore"), "{managers:?}");
    // Fixing the pod raises the score long before the 1h interval.
    pod(&server, "team-a", "db", true);
    eventually("score 9 after the fix", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 9.0)
    })
    .await;
    // A GoalMissed then a GoalMet event, from the same reporter.
    let events = eventually("events", WAIT, || {
        let e = server.events(Some("team-a"));
        (e.iter().any(|e| e["reason"] == "GoalMet")).then_some(e)
    })
    .await;
    assert!(
        events.iter().any(|e| e["reason"] == "GoalMissed"),
        "{events:#?}\n{}",
        op.logs()
    );
    // The metrics endpoint exports the ratio.
    eventually("the scraped ratio is 1", WAIT, || {
        let (code, body) = op.get("/metrics")?;
        (code == 200
            && body.contains("securescore_ratio{namespace=\"team-a\",target=\"team\"} 1\n"))
        .then_some(())
    })
    .await;
    let (code, body) = op.get("/readyz").unwrap();
    assert_eq!((code, body.as_str()), (200, "ready (leader)"));
    assert_eq!(op.get("/healthz").unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_action_is_isolated_and_reported() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "broken"},
            "spec": {"title": "Broken", "category": "Apps", "maxScore": 4,
                "check": {"podSpec": true, "validations": [{"expression": "podSpec.containers.all(c, c.nosuchfn())"}]}}
        }))
        .unwrap();
    server.create(target("team-a", json!({}))).unwrap();
    let _op = Operator::start(&server, &[]);
    let status = eventually("status with both actions", WAIT, || {
        server
            .status(SST.0, SST.1, "team-a", "team")
            .filter(|s| s["actions"].as_array().is_some_and(|a| a.len() == 2))
    })
    .await;
    assert_eq!(status["score"], 6.0);
    assert_eq!(status["maxScore"], 13.0);
    let broken = action_row(&status, "broken");
    assert_eq!(broken["state"], "Unknown");
    let ready = ready_condition(&server, "broken", "", WAIT).await;
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidExpression");
    let good = eventually("the good action's totals", WAIT, || {
        server
            .status(IA.0, IA.1, "", "non-root")
            .filter(|s| s["targets"] == 1)
    })
    .await;
    assert_eq!(
        (good["compliant"].as_u64(), good["nonCompliant"].as_u64()),
        (Some(2), Some(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_asking_for_more_than_its_namespace_is_refused() {
    let server = ApiServer::start().await;
    setup(&server);
    namespace(&server, "team-b", json!({}));
    server
        .create(target(
            "team-a",
            json!({"scope": {"namespaces": {"names": ["team-b"]}}}),
        ))
        .unwrap();
    let _op = Operator::start(&server, &[]);
    let ready = eventually("ScopeNotAllowed", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        st["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["reason"] == "ScopeNotAllowed")
            .cloned()
    })
    .await;
    assert_eq!(ready["status"], "False");
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    assert!(
        status.get("score").is_none(),
        "nothing else is written: {status}"
    );
    eventually("a ScopeNotAllowed event", WAIT, || {
        server
            .events(Some("team-a"))
            .iter()
            .any(|e| e["reason"] == "ScopeNotAllowed")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exemption_expiring_takes_effect_on_time() {
    let server = ApiServer::start().await;
    setup(&server);
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    server
        .create(target(
            "team-a",
            json!({"interval": "1h", "exemptions": [{
                "name": "vendor-db", "action": "non-root", "resolution": "ResolvedThirdParty",
                "resources": {"names": ["db"]}, "owner": "team-a", "reason": "vendor image",
                "approvedAt": "2026-01-01T00:00:00Z", "expiresAt": soon.to_string()}]}),
        ))
        .unwrap();
    let _op = Operator::start(&server, &[]);
    eventually("score 9 while exempt", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 9.0)
    })
    .await;
    eventually("score 6 after expiry", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    assert_eq!(status["exemptions"][0]["state"], "Expired");
    eventually("ExemptionExpired event", WAIT, || {
        server
            .events(Some("team-a"))
            .iter()
            .any(|e| e["reason"] == "ExemptionExpired")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_due_soon_is_announced_exported_and_goes_stale_on_time() {
    let server = ApiServer::start().await;
    setup(&server);
    // A 4-point task to attest every 40 seconds: due soon (within 14 days) from the start, stale
    // 40 s after its attestation, long before the target's 1h interval.
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
            "metadata": {"name": "restore-test"},
            "spec": {"title": "Test a restore", "category": "Data", "maxScore": 4,
                "check": {"scoring": "Binary", "attestation": {"every": "40s"}}}
        }))
        .expect("task created");
    let attested = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let due = attested.as_second() + 40;
    server
        .create(target(
            "team-a",
            json!({"interval": "1h", "attestations": [{"action": "restore-test", "attestedBy": "sre",
                "attestedAt": attested.to_string(), "evidence": "https://wiki/restore/1"}]}),
        ))
        .unwrap();
    let op = Operator::start(&server, &[]);
    // 6 of 9 (two of three pods) plus the task's 4.
    eventually("score 10 while the task is fresh", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 10.0)
    })
    .await;
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    let row = action_row(&status, "restore-test");
    assert_eq!(row["state"], "Completed", "{row}");
    assert_eq!(row["attestation"]["state"], "DueSoon");
    assert_eq!(row["attestation"]["attestedBy"], "sre");
    assert_eq!(row["attestation"]["evidence"], "https://wiki/restore/1");
    let due_at = jiff::Timestamp::from_second(due).unwrap().to_string();
    assert_eq!(row["attestation"]["dueAt"], due_at.as_str());
    let event = eventually("an AttestationDueSoon event", WAIT, || {
        server
            .events(Some("team-a"))
            .into_iter()
            .find(|e| e["reason"] == "AttestationDueSoon")
    })
    .await;
    assert_eq!(event["type"], "Warning", "{event}");
    assert_eq!(
        event["note"],
        format!(
            "task restore-test is due at {due_at}: attest it again in spec.attestations before then"
        )
    );
    let series = format!(
        "securescore_attestation_due_timestamp_seconds{{action=\"restore-test\",namespace=\"team-a\",target=\"team\"}} {due}\n"
    );
    eventually("the due time in /metrics", WAIT, || {
        let (code, body) = op.get("/metrics")?;
        (code == 200 && body.contains(&series)).then_some(())
    })
    .await;
    // At the due time (not at the 1h interval) the task goes stale: 6 of 13, one more Event.
    eventually("score 6 once stale", Duration::from_secs(60), || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    assert!(
        jiff::Timestamp::now().as_second() >= due,
        "stale only from the due time on"
    );
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    let row = action_row(&status, "restore-test");
    assert_eq!(row["state"], "ToAddress");
    assert_eq!(row["attestation"]["state"], "Stale");
    eventually("an AttestationStale event", WAIT, || {
        server
            .events(Some("team-a"))
            .iter()
            .any(|e| e["reason"] == "AttestationStale")
            .then_some(())
    })
    .await;
    let due_soon = server
        .events(Some("team-a"))
        .iter()
        .filter(|e| e["reason"] == "AttestationDueSoon")
        .count();
    assert_eq!(due_soon, 1, "announced once\n{}", op.logs());
}

/// The API goes away while a pod is added and history is compacted: the operator reconnects,
/// every watch relists, and only what changed is evaluated (no second full evaluation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reconnects_after_the_api_restarts_and_relists_only_what_changed() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(target("team-a", json!({"interval": "1h"})))
        .unwrap();
    let op = Operator::start(&server, &[]);
    eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    assert_eq!(op.full_evaluations(), [("start".to_string(), 1.0)]);
    // The watches expire while one pod is added: every watched kind relists, one changed.
    server.stop_listening().await;
    pod(&server, "team-a", "db", true);
    server.compact();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.resume_listening().await;
    eventually("score 9 after the relist", Duration::from_secs(60), || {
        score(&server, "team-a").filter(|s| *s == 9.0)
    })
    .await;
    let logs = op.logs();
    assert!(logs.contains("watch error"), "the watches expired:\n{logs}");
    assert_eq!(
        op.full_evaluations(),
        [("start".to_string(), 1.0)],
        "the relist was evaluated incrementally:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_exits_zero_and_releases_the_lease() {
    let server = ApiServer::start().await;
    setup(&server);
    server.create(target("team-a", json!({}))).unwrap();
    let mut op = Operator::start(
        &server,
        &["--leader-election", "--lease-duration-seconds", "30"],
    );
    eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    let holder = server
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "securescore-system",
            "securescore-leader",
        )
        .unwrap();
    assert!(holder["spec"]["holderIdentity"].is_string());
    let status = tokio::task::spawn_blocking(move || {
        let s = op.terminate();
        (s, op.logs())
    })
    .await
    .unwrap();
    assert_eq!(status.0.map(|s| s.code()), Some(Some(0)), "{}", status.1);
    let lease = server
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "securescore-system",
            "securescore-leader",
        )
        .unwrap();
    assert!(
        lease["spec"]
            .get("holderIdentity")
            .is_none_or(|h| h.is_null()),
        "released: {lease}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_dies() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(target("team-a", json!({"interval": "1h"})))
        .unwrap();
    let election = ["--leader-election", "--lease-duration-seconds", "3"];
    let mut first = Operator::start(&server, &[&election[..], &["--identity", "first"]].concat());
    eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    let second = Operator::start(
        &server,
        &[&election[..], &["--identity", "second"]].concat(),
    );
    eventually("the standby is ready", WAIT, || {
        second
            .get("/readyz")
            .filter(|(c, b)| *c == 200 && b.contains("standby"))
    })
    .await;
    let (_, body) = second.get("/metrics").unwrap();
    assert!(
        !body.contains("securescore_score{"),
        "a standby exports no score series"
    );
    // The leader dies without releasing the lease.
    first.child.kill().unwrap();
    let _ = first.child.wait();
    eventually("the standby leads", WAIT, || {
        let lease = server.get(
            "coordination.k8s.io/v1",
            "leases",
            "securescore-system",
            "securescore-leader",
        )?;
        (lease["spec"]["holderIdentity"] == "second").then_some(())
    })
    .await;
    pod(&server, "team-a", "db", true);
    eventually("the new leader evaluates", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 9.0)
    })
    .await;
    assert!(second.logs().contains("became the leader"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_kind_is_logged_by_name_and_the_target_degraded() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "ingress-tls"},
            "spec": {"title": "Ingress TLS", "category": "Infrastructure", "maxScore": 5,
                "check": {"resources": [{"apiGroup": "networking.k8s.io", "kind": "Ingress"}], "validations": [{"expression": "has(object.spec.tls)"}]}}
        }))
        .unwrap();
    server.deny(None, "networking.k8s.io", "ingresses");
    server.create(target("team-a", json!({}))).unwrap();
    let op = Operator::start(&server, &[]);
    let degraded = eventually("Degraded", Duration::from_secs(90), || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        st["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Degraded" && c["status"] == "True")
            .cloned()
    })
    .await;
    assert_eq!(degraded["reason"], "InventoryIncomplete");
    assert!(
        op.logs().contains("missing permission")
            && op.logs().contains("ingresses.networking.k8s.io"),
        "{}",
        op.logs()
    );
    let status = server.status(SST.0, SST.1, "team-a", "team").unwrap();
    assert_eq!(status["score"], 6.0);
    assert_eq!(status["maxScore"], 14.0, "the unknown action keeps its max");
}

fn evaluations(op: &Operator) -> u64 {
    let (_, body) = op.get("/metrics").unwrap_or_default();
    body.lines()
        .filter(|l| l.starts_with("securescore_evaluations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_of_hundreds_of_pods_yields_a_handful_of_evaluations() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(target("team-a", json!({"interval": "1h"})))
        .unwrap();
    let op = Operator::start(&server, &[]);
    eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    let before = evaluations(&op);
    for i in 0..400 {
        pod(&server, "team-a", &format!("rollout-{i}"), true);
    }
    let expected: f64 = 9.0 * 402.0 / 403.0;
    eventually("the rollout is scored", WAIT, || {
        score(&server, "team-a").filter(|s| (*s - (expected * 100.0).round() / 100.0).abs() < 1e-9)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let during = evaluations(&op) - before;
    assert!(
        (1..=10).contains(&during),
        "400 pod events gave {during} evaluations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_status_is_not_written_again() {
    let server = ApiServer::start().await;
    setup(&server);
    server
        .create(target("team-a", json!({"interval": "1h"})))
        .unwrap();
    let op = Operator::start(&server, &[]);
    eventually("score 6", WAIT, || {
        score(&server, "team-a").filter(|s| *s == 6.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rv = |s: &ApiServer| {
        s.get(SST.0, SST.1, "team-a", "team").unwrap()["metadata"]["resourceVersion"].clone()
    };
    let before = rv(&server);
    let evaluated = evaluations(&op);
    // A change that does not move the score: the target is evaluated again, its status is not rewritten.
    server.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web", "touched": "yes"}},
        "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
    }));
    eventually("a new evaluation", WAIT, || {
        (evaluations(&op) > evaluated).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rv(&server),
        before,
        "no status write for an unchanged result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_watched_as_metadata_only() {
    let server = ApiServer::start().await;
    setup(&server);
    server.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-password", "namespace": "team-a"},
        "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}));
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "secret-values-unseen"},
            "spec": {"title": "The operator never holds secret values", "category": "Data", "maxScore": 1,
                "check": {"resources": [{"kind": "Secret"}],
                    "validations": [{"expression": "!has(object.data) && !has(object.stringData)", "message": "secret data was visible"}]}}
        }))
        .unwrap();
    server.create(target("team-a", json!({}))).unwrap();
    let op = Operator::start(&server, &[]);
    let status = eventually("status with the secret action", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        st["actions"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == "secret-values-unseen" && a["applicable"] == 1)
            .cloned()
    })
    .await;
    assert_eq!(status["compliant"], 1, "{status}");
    assert!(
        op.logs().contains("\"metadata_only\":true"),
        "{}",
        op.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_in_a_benchmark_group_of_five_see_their_rank_but_no_other_number() {
    let server = ApiServer::start().await;
    namespace(&server, "securescore-system", json!({}));
    server.create(non_root_action("non-root", 9)).unwrap();
    // Five teams in the same benchmark group; team i has i+1 compliant pods out of 5.
    for i in 0..5 {
        let ns = format!("team-{i}");
        namespace(
            &server,
            &ns,
            json!({"securescore.io/benchmark-group": "payments"}),
        );
        for p in 0..5 {
            pod(&server, &ns, &format!("p{p}"), p <= i);
        }
        server
            .create(target(&ns, json!({"interval": "10s"})))
            .unwrap();
    }
    // A sixth team outside the group gets no comparison.
    namespace(&server, "loner", json!({}));
    pod(&server, "loner", "p", true);
    server
        .create(target("loner", json!({"interval": "10s"})))
        .unwrap();
    let _op = Operator::start(&server, &[]);
    let comparison = eventually("team-1's comparison", Duration::from_secs(60), || {
        server
            .status(SST.0, SST.1, "team-1", "team")?
            .get("comparison")
            .filter(|c| c["groupSize"] == 5)
            .cloned()
    })
    .await;
    assert_eq!(comparison["group"], "payments");
    assert_eq!(
        comparison["rank"], 4,
        "team-1 (40%) is fourth of 20/40/60/80/100%"
    );
    assert_eq!(comparison["percentile"], 40.0);
    assert_eq!(comparison["medianPercentage"], 60.0);
    let text = comparison.to_string();
    assert!(
        !text.contains("team-0") && !text.contains("80"),
        "no other target's name or number: {text}"
    );
    assert!(
        server
            .status(SST.0, SST.1, "loner", "team")
            .unwrap()
            .get("comparison")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_crds_the_operator_exits_with_an_install_hint() {
    let server = ApiServer::start_with(support::apiserver::Options {
        crd_files: Vec::new(),
        ..Default::default()
    })
    .await;
    namespace(&server, "securescore-system", json!({}));
    let mut op = Operator::start(&server, &[]);
    let status = eventually("the operator exits", WAIT, || {
        op.child.try_wait().ok().flatten()
    })
    .await;
    assert_eq!(status.code(), Some(1), "{}", op.logs());
    let logs = op.logs();
    assert!(
        logs.contains(
            "improvementactions.securescore.io CustomResourceDefinition is not installed"
        ) && logs.contains("securescore crds | kubectl apply"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_whose_examples_never_finish_is_reported_and_the_target_still_scored() {
    let server = ApiServer::start().await;
    setup(&server);
    // A nested all() over the characters of a 20,000-character annotation: hundreds of
    // millions of steps when nothing bounds the evaluation.
    let long = "x".repeat(20_000);
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "runaway"},
            "spec": {"title": "Runaway", "category": "Apps", "maxScore": 4,
                "check": {"resources": [{"apiGroup": "", "kind": "Pod"}],
                    "validations": [{"expression": "object.metadata.annotations['a'].split('').all(x, object.metadata.annotations['a'].split('').all(y, size(x) + size(y) >= 0))"}],
                    "examples": [{"expect": "Compliant", "object": {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "e", "annotations": {"a": long}}, "spec": {"containers": []}}}]}}
        }))
        .unwrap();
    server.create(target("team-a", json!({}))).unwrap();
    let op = Operator::start(&server, &[]);
    let wait = Duration::from_secs(90);
    let status = eventually(
        "the target scored with the runaway action Unknown",
        wait,
        || {
            server
                .status(SST.0, SST.1, "team-a", "team")
                .filter(|s| s["actions"].as_array().is_some_and(|a| a.len() == 2))
        },
    )
    .await;
    assert_eq!(status["score"], 6.0, "{}", op.logs());
    let runaway = action_row(&status, "runaway");
    assert_eq!(runaway["state"], "Unknown");
    let ready = ready_condition(&server, "runaway", "", wait).await;
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("LimitExceeded")),
        "{ready}"
    );
    // The process still answers.
    assert_eq!(op.get("/healthz").map(|r| r.0), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_crosses_its_budget_on_several_resources_is_limit_exceeded_and_unknown() {
    let server = ApiServer::start().await;
    setup(&server);
    // Loads fine (its example has no annotation), but runs away on every pod that carries a
    // long annotation: the engine's run-time budget ends each evaluation, and after a few such
    // resources the action is LimitExceeded, Unknown for the target, the rest still scored.
    let long = "x".repeat(20_000);
    for name in ["wide-1", "wide-2", "wide-3", "wide-4"] {
        server.put(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "team-a", "annotations": {"a": long}},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c", "image": "nginx:1.27"}]}
        }));
    }
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction", "metadata": {"name": "runaway"},
            "spec": {"title": "Runaway", "category": "Apps", "maxScore": 4,
                "check": {"resources": [{"apiGroup": "", "kind": "Pod"}],
                    "validations": [{"expression": "!has(object.metadata.annotations) || !('a' in object.metadata.annotations) || object.metadata.annotations['a'].split('').all(x, object.metadata.annotations['a'].split('').all(y, size(x) + size(y) >= 0))"}],
                    "examples": [{"expect": "Compliant", "object": {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "e"}, "spec": {"containers": []}}}]}}
        }))
        .unwrap();
    server.create(target("team-a", json!({}))).unwrap();
    let op = Operator::start(&server, &[]);
    let wait = Duration::from_secs(120);
    let ready = ready_condition(&server, "runaway", "False", wait).await;
    assert_eq!(ready["reason"], "LimitExceeded", "{ready}\n{}", op.logs());
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains("resources"), "{message}");
    assert!(!message.contains("xxxx"), "no object value in {message}");
    let status = eventually("the target with the runaway action Unknown", wait, || {
        server.status(SST.0, SST.1, "team-a", "team").filter(|s| {
            s["actions"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|r| r["name"] == "runaway" && r["state"] == "Unknown")
            })
        })
    })
    .await;
    // non-root: web, api and the four wide pods comply, db does not: 9 × 6/7.
    let non_root = action_row(&status, "non-root");
    assert_eq!(non_root["compliant"], 6, "{non_root}");
    assert_eq!(status["maxScore"], 13.0, "Unknown keeps its max: {status}");
    assert_eq!(op.get("/healthz").map(|r| r.0), Some(200));
}
