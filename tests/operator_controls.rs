//! End-to-end, the SecurityControls model: the real `securescore run` binary against the
//! in-process Kubernetes API emulation (tests/support). A target with `spec.model:
//! SecurityControls` gets `status.controls` with hand-computed points, `/metrics` exports the
//! same values, a changed or deleted control re-scores the target, and each control reports
//! Ready.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::apiserver::{ApiServer, eventually};
use support::operator::Operator;

const WAIT: Duration = Duration::from_secs(30);
const SST: (&str, &str) = ("securescore.io/v1alpha1", "securescoretargets");
const SC: (&str, &str) = ("securescore.io/v1alpha1", "securitycontrols");

fn pod(server: &ApiServer, name: &str, non_root: bool, tag: &str) {
    server.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": {"app": name}},
        "spec": {"securityContext": {"runAsNonRoot": non_root},
                 "containers": [{"name": "c", "image": format!("nginx:{tag}")}]}
    }));
}

fn action(name: &str, points: u32, expression: &str) -> Value {
    json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "ImprovementAction",
        "metadata": {"name": name},
        "spec": {"title": name, "category": "Apps", "maxScore": points,
            "check": {"podSpec": true, "validations": [{"expression": expression, "message": "not compliant"}]}}
    })
}

fn control(name: &str, max: u32, actions: &[&str]) -> Value {
    json!({
        "apiVersion": "securescore.io/v1alpha1", "kind": "SecurityControl",
        "metadata": {"name": name},
        "spec": {"title": format!("Control {name}"), "maxScore": max, "actions": actions}
    })
}

/// team-a: a, b, c pass both actions; d runs as root. Control `workloads` (8 points) groups
/// both actions: 3 of 4 healthy = 6 points. Control `images` (4 points) groups `no-latest`
/// only: 4 of 4 = 4 points. Control `nothing` groups an action that does not exist.
fn scenario(server: &ApiServer) {
    for ns in ["securescore-system", "team-a"] {
        server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    for (name, non_root) in [("a", true), ("b", true), ("c", true), ("d", false)] {
        pod(server, name, non_root, "1.27");
    }
    server
        .create(action(
            "non-root",
            9,
            "has(podSpec.securityContext) && has(podSpec.securityContext.runAsNonRoot) && podSpec.securityContext.runAsNonRoot",
        ))
        .expect("action created");
    server
        .create(action(
            "no-latest",
            5,
            "podSpec.containers.all(c, !c.image.endsWith(':latest'))",
        ))
        .expect("action created");
    for c in [
        control("workloads", 8, &["non-root", "no-latest"]),
        control("images", 4, &["no-latest"]),
        control("nothing", 2, &["no-such-action"]),
    ] {
        server.create(c).expect("control created");
    }
    server
        .create(json!({
            "apiVersion": "securescore.io/v1alpha1", "kind": "SecureScoreTarget",
            "metadata": {"name": "team", "namespace": "team-a"},
            "spec": {"model": "SecurityControls", "interval": "1h"}
        }))
        .expect("target created");
}

fn control_row(status: &Value, name: &str) -> Option<Value> {
    status["controls"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

/// The value of `name{namespace="team-a",target="team",control=...}` in a scrape.
fn scraped(body: &str, name: &str, control: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    body.lines()
        .filter(|l| l.starts_with(&prefix))
        .find(|l| {
            l.contains(&format!("control=\"{control}\""))
                && l.contains("namespace=\"team-a\"")
                && l.contains("target=\"team\"")
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controls_model_target_gets_control_rows_and_equal_metrics() {
    let server = ApiServer::start().await;
    scenario(&server);
    let op = Operator::start(&server, &[]);

    let status = eventually("the target's controls", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        control_row(&st, "workloads")?;
        Some(st)
    })
    .await;
    let workloads = control_row(&status, "workloads").expect("row");
    assert_eq!(workloads["score"].as_f64(), Some(6.0), "{workloads}");
    assert_eq!(
        (
            workloads["healthy"].as_u64(),
            workloads["applicable"].as_u64()
        ),
        (Some(3), Some(4))
    );
    let images = control_row(&status, "images").expect("row");
    assert_eq!(images["score"].as_f64(), Some(4.0), "{images}");
    let nothing = control_row(&status, "nothing").expect("row");
    assert_eq!(nothing["state"], "NotApplicable");
    // Σ controls: 6 + 4 of 8 + 4; the actions' own points (6.75 + 5) are not used.
    assert_eq!(status["score"].as_f64(), Some(10.0), "{status}");
    assert_eq!(status["maxScore"].as_f64(), Some(12.0));
    assert!(status.get("categories").is_none(), "{status}");

    // /metrics exports the same values.
    let body = eventually("control series in a scrape", WAIT, || {
        let b = op.scrape();
        b.contains("securescore_control_score{").then_some(b)
    })
    .await;
    for row in status["controls"].as_array().expect("rows") {
        let name = row["name"].as_str().expect("name");
        assert_eq!(
            scraped(&body, "securescore_control_score", name),
            row["score"].as_f64(),
            "{name}"
        );
        assert_eq!(
            scraped(&body, "securescore_control_max_score", name),
            row["maxScore"].as_f64(),
            "{name}"
        );
    }
    assert!(
        !body.contains("securescore_category_score{namespace=\"team-a\""),
        "no categories in the controls model"
    );

    // Each control reports whether it groups a known action.
    let ready = |name: &str| {
        let st = server.status(SC.0, SC.1, "", name)?;
        st["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .map(|c| {
                (
                    c["status"].clone(),
                    c["reason"].clone(),
                    st["actions"].clone(),
                )
            })
    };
    let (s, reason, actions) = eventually("workloads Ready", WAIT, || ready("workloads")).await;
    assert_eq!((s, reason), (json!("True"), json!("ActionsGrouped")));
    assert_eq!(actions, json!(["no-latest", "non-root"]));
    let (s, reason, _) = eventually("nothing Ready", WAIT, || ready("nothing")).await;
    assert_eq!((s, reason), (json!("False"), json!("NoActions")));

    // A changed control re-scores the target: workloads worth 4 → 3 of 4 healthy = 3 points.
    server.put(control("workloads", 4, &["non-root", "no-latest"]));
    let after = eventually("the target re-scored", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        (st["score"].as_f64()? == 7.0).then_some(st)
    })
    .await;
    assert_eq!(after["maxScore"].as_f64(), Some(8.0));

    // A deleted control leaves the status and /metrics.
    server.delete(SC.0, SC.1, "", "images");
    let after = eventually("the images control gone", WAIT, || {
        let st = server.status(SST.0, SST.1, "team-a", "team")?;
        control_row(&st, "images").is_none().then_some(st)
    })
    .await;
    assert_eq!(
        (after["score"].as_f64(), after["maxScore"].as_f64()),
        (Some(3.0), Some(4.0))
    );
    assert!(after.get("actionsNotInControls").is_none(), "{after}");
    eventually("the images series gone", WAIT, || {
        let b = op.scrape();
        (!b.contains("control=\"images\"") && b.contains("control=\"workloads\"")).then_some(())
    })
    .await;
    drop(op);
}
