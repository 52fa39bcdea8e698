//! Hostile input against the pure engine: CEL budgets, wide objects, forged owners, leaks.

use crate::common::{action_yaml, eval, inventory, target_yaml};
use securescore::api::ActionState;
use securescore::engine::cel::{self as kcel, BUDGET_EXCEEDED, compile};
use securescore::engine::check::{ObjectScope, ProblemReason, Surroundings};
use securescore::engine::{Judgement, Resource, Verdict};
use std::sync::Arc;

/// An action judging Pods with one validation.
fn pod_action(name: &str, expression: &str) -> Arc<securescore::engine::CompiledAction> {
    action_yaml(&format!(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {{name: {name}}}
spec:
  title: Hostile
  category: Apps
  maxScore: 5
  userImpact: Low
  implementationCost: Low
  check:
    resources: [{{apiGroup: "", kind: Pod}}]
    validations:
      - expression: {expression:?}
        message: failed
"#
    ))
}

fn pod_with(name: &str, annotation: &str, containers: usize) -> serde_json::Value {
    let containers: Vec<_> = (0..containers)
        .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "nginx:1.27"}))
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "uid": format!("uid-{name}"),
                     "annotations": {"note": annotation}},
        "spec": {"containers": containers}
    })
}

/// The verdict of `expression` on `object` (a Pod).
fn verdict(expression: &str, object: serde_json::Value) -> Verdict {
    let action = pod_action("hostile", expression);
    assert!(action.is_ready(), "{:?}", action.problem);
    let resource = Arc::new(Resource::new(object, None).expect("test object"));
    let inv = securescore::engine::Inventory::complete([resource.clone()]);
    let scope = ObjectScope::new(&resource, &inv);
    let surroundings = Surroundings {
        inventory: &inv,
        cluster_visible: true,
    };
    match action.judge(&resource, &scope, &surroundings) {
        Judgement::Applicable(v) => v,
        Judgement::NotApplicable => panic!("a Pod is applicable"),
    }
}

fn assert_budget_error(v: Verdict, which: &str) {
    match v {
        Verdict::Error { message } => {
            assert!(message.starts_with(BUDGET_EXCEEDED), "{message}");
            assert!(message.contains(which), "{message}");
        }
        other => panic!("expected a budget error, got {other:?}"),
    }
}

#[test]
fn nested_ranges_stop_at_the_step_budget() {
    let v = verdict(
        "lists.range(100000).all(x, lists.range(100000).all(y, x >= 0))",
        pod_with("p", "a", 1),
    );
    assert_budget_error(v, "steps");
}

#[test]
fn nested_loops_over_a_split_annotation_stop_at_the_step_budget() {
    let note = "x".repeat(20_000);
    let v = verdict(
        "object.metadata.annotations.note.split('').all(a, object.metadata.annotations.note.split('').all(b, size(a) + size(b) <= 2))",
        pod_with("p", &note, 1),
    );
    assert_budget_error(v, "steps");
}

#[test]
fn a_huge_range_is_refused_before_it_is_allocated() {
    assert_budget_error(
        verdict("size(lists.range(2000000000)) > 0", pod_with("p", "a", 1)),
        "MiB",
    );
}

#[test]
fn a_squared_replace_is_refused_before_it_is_allocated() {
    let name = "n".repeat(200);
    let once = "object.metadata.name.replace('', object.metadata.name)";
    let v = verdict(
        &format!("size({once}.replace('', {once})) > 0"),
        pod_with(&name, "a", 1),
    );
    assert_budget_error(v, "MiB");
}

#[test]
fn a_join_with_a_huge_separator_is_refused_before_it_is_allocated() {
    let note = "x".repeat(20_000);
    let v = verdict(
        "size(object.metadata.annotations.note.split('').join(object.metadata.annotations.note)) > 0",
        pod_with("p", &note, 1),
    );
    assert_budget_error(v, "MiB");
}

#[test]
fn distinct_over_a_large_list_is_charged_for_every_pair() {
    assert_budget_error(
        verdict(
            "size(lists.range(100000).distinct()) > 0",
            pod_with("p", "a", 1),
        ),
        "steps",
    );
    assert_eq!(
        verdict(
            "[1, 2, 1, 3].distinct() == [1, 2, 3]",
            pod_with("p", "a", 1)
        ),
        Verdict::Compliant
    );
}

#[test]
fn sets_over_large_lists_are_charged_for_every_pair() {
    let v = verdict(
        "sets.contains(lists.range(100000), lists.range(100000))",
        pod_with("p", "a", 1),
    );
    assert_budget_error(v, "steps");
}

/// A Pod whose `note` annotation is `n` times 'a'.
fn pod_with_long_note(n: usize) -> serde_json::Value {
    pod_with("p", &"a".repeat(n), 1)
}

#[test]
fn format_reserves_its_output_before_building_it() {
    // 20,000 verbs of 60,000 digits each: 1.2 GB of text from a 160 kB format string.
    let v = verdict(
        "size(object.metadata.annotations.note.replace('a', '%.60000f').format(lists.range(20000).map(i, 1.5))) > 0",
        pod_with_long_note(20_000),
    );
    assert_budget_error(v, "MiB");
    assert_eq!(
        verdict(
            "'%s=%d %.2f %s'.format(['a', 7, 1.5, [1, 'b']]) == 'a=7 1.50 [1, \"b\"]'",
            pod_with("p", "a", 1)
        ),
        Verdict::Compliant
    );
}

#[test]
fn sort_is_charged_for_every_comparison() {
    // 1,000 sorts of 100,000 elements: a hundred million comparisons.
    let v = verdict(
        "[lists.range(100000)].all(big, lists.range(1000).all(i, big.sort()[0] == 0))",
        pod_with("p", "a", 1),
    );
    assert_budget_error(v, "steps");
    assert_eq!(
        verdict("[3, 1, 2].sort() == [1, 2, 3]", pod_with("p", "a", 1)),
        Verdict::Compliant
    );
}

#[test]
fn flatten_is_charged_for_every_element_it_visits() {
    let v = verdict(
        "[lists.range(100000)].all(big, lists.range(1000).all(i, size([big, big].flatten()) > 0))",
        pod_with("p", "a", 1),
    );
    // Copying `big` into the literal is charged too: whichever limit comes first.
    assert_budget_error(v, "exceeded");
    assert_eq!(
        verdict(
            "[[1, [2]], [3]].flatten() == [1, [2], 3] && [[1, [2]], [3]].flatten(2) == [1, 2, 3]",
            pod_with("p", "a", 1)
        ),
        Verdict::Compliant
    );
}

#[test]
fn index_of_in_a_long_string_is_linear_and_charged_per_byte() {
    // The search the Kubernetes implementation makes is quadratic: 50,000 positions of a
    // 50,000-character needle that fails on its last character. Linear here, and exact.
    let v = verdict(
        "object.metadata.annotations.note.indexOf(object.metadata.annotations.note.substring(0, 50000) + 'b') == -1 && object.metadata.annotations.note.lastIndexOf('b' + object.metadata.annotations.note.substring(0, 50000)) == -1",
        pod_with_long_note(100_000),
    );
    assert_eq!(v, Verdict::Compliant);
    // Scanning it again and again ends at the step budget.
    for function in ["indexOf", "lastIndexOf"] {
        let v = verdict(
            &format!(
                "lists.range(100000).all(i, object.metadata.annotations.note.{function}('b') == -1)"
            ),
            pod_with_long_note(100_000),
        );
        assert_budget_error(v, "steps");
    }
}

#[test]
fn index_of_in_a_long_list_is_charged_for_every_comparison() {
    for function in ["indexOf", "lastIndexOf"] {
        let v = verdict(
            &format!(
                "[lists.range(100000)].all(big, lists.range(1000).all(i, big.{function}(-1) == -1))"
            ),
            pod_with("p", "a", 1),
        );
        assert_budget_error(v, "steps");
    }
    assert_eq!(
        verdict(
            "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(3) == -1",
            pod_with("p", "a", 1)
        ),
        Verdict::Compliant
    );
}

#[test]
fn a_regex_too_large_to_compile_is_an_error_not_a_hang() {
    for expression in [
        "object.metadata.name.matches('a{1000}{1000}')",
        "object.metadata.name.find('(a{100}){100}{100}') == ''",
        "object.metadata.name.findAll('((((a{50}){50}){50}){50})') == []",
    ] {
        let v = verdict(expression, pod_with("p", "a", 1));
        let Verdict::Error { message } = v else {
            panic!("{expression}: expected an error, got {v:?}")
        };
        assert!(message.contains("failed"), "{expression}: {message}");
    }
}

#[test]
fn regexes_are_charged_for_their_size_and_every_byte_they_scan() {
    // A new pattern on every iteration: each compilation is charged for its automaton.
    let v = verdict(
        "lists.range(100000).all(i, !object.metadata.name.matches(string(i) + '[a-z]{40}[0-9]{40}'))",
        pod_with("p", "a", 1),
    );
    assert_budget_error(v, "steps");
    // One pattern scanning a long string again and again.
    for call in [
        "!note.matches('b')",
        "note.find('b') == ''",
        "size(note.findAll('b')) == 0",
    ] {
        let expression = format!("lists.range(100000).all(i, {call})")
            .replace("note.", "object.metadata.annotations.note.");
        let v = verdict(&expression, pod_with_long_note(100_000));
        assert_budget_error(v, "steps");
    }
    // What a check does with them still works.
    assert_eq!(
        verdict(
            "'nginx:1.27'.matches('^[a-z]+:[0-9.]+$') && 'a1b22'.find('[0-9]+') == '1' && 'a1b22'.findAll('[0-9]+') == ['1', '22'] && 'a1b22c3'.findAll('[0-9]+', 2) == ['1', '22']",
            pod_with("p", "a", 1)
        ),
        Verdict::Compliant
    );
}

#[test]
fn filter_and_map_over_ten_thousand_containers_finish_with_their_real_result() {
    let pod = pod_with("wide", "a", 10_000);
    assert_eq!(
        verdict(
            "size(object.spec.containers.filter(c, c.image == 'nginx:1.27')) == 10000",
            pod.clone()
        ),
        Verdict::Compliant
    );
    assert_eq!(
        verdict(
            "object.spec.containers.map(c, c.name).exists(n, n == 'c9999')",
            pod
        ),
        Verdict::Compliant
    );
}

#[test]
fn an_action_whose_examples_never_finish_loads_as_limit_exceeded() {
    let action = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: runaway-examples}
spec:
  title: Runaway
  category: Apps
  maxScore: 5
  userImpact: Low
  implementationCost: Low
  check:
    resources: [{apiGroup: "", kind: Pod}]
    validations:
      - expression: "lists.range(100000).all(x, lists.range(100000).all(y, x >= 0))"
    examples:
      - expect: Compliant
        object: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}
"#,
    );
    let problem = action.problem.clone().expect("the example cannot finish");
    assert_eq!(problem.reason, ProblemReason::LimitExceeded);
    assert!(
        problem.message.contains("examples[0]"),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains(BUDGET_EXCEEDED),
        "{}",
        problem.message
    );
}

#[test]
fn an_action_over_budget_repeatedly_is_limit_exceeded_and_the_others_are_scored() {
    let runaway = pod_action(
        "runaway",
        "lists.range(100000).all(x, lists.range(100000).all(y, x >= 0))",
    );
    let sane = pod_action("sane", "object.spec.containers.all(c, c.image != '')");
    let objects: Vec<_> = (0..5).map(|i| pod_with(&format!("p{i}"), "a", 1)).collect();
    let target = target_yaml(
        "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: t, namespace: team-a}\nspec: {}",
    );
    let result = eval(&target, &[runaway.clone(), sane], &inventory(objects));
    let problem = runaway.limit_exceeded().expect("decided by the engine");
    assert_eq!(problem.reason, ProblemReason::LimitExceeded);
    let outcome = |name: &str| {
        result
            .actions
            .iter()
            .find(|o| o.action.name == name)
            .expect("outcome")
    };
    assert_eq!(outcome("runaway").state, ActionState::Unknown);
    assert!(
        outcome("runaway")
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("LimitExceeded")),
        "{:?}",
        outcome("runaway").message
    );
    assert_eq!(outcome("sane").state, ActionState::Completed);
    assert_eq!(outcome("sane").counts.compliant, 5);
}

#[test]
fn double_negations_cancel_out() {
    let pod = pod_with("p", "a", 1);
    assert_eq!(verdict("!!true", pod.clone()), Verdict::Compliant);
    assert_eq!(verdict("--1 == 1", pod.clone()), Verdict::Compliant);
    assert!(matches!(
        verdict("!!!true", pod.clone()),
        Verdict::NonCompliant { .. }
    ));
    assert_eq!(verdict("---1 == -1", pod), Verdict::Compliant);
}

#[test]
fn a_key_computed_from_the_object_is_never_quoted() {
    let mut pod = pod_with("p", "hunter2-secret", 1);
    pod["metadata"]["labels"] = serde_json::json!({"app": "web"});
    let v = verdict(
        "object.metadata.labels[object.metadata.annotations.note] == 'x'",
        pod.clone(),
    );
    let Verdict::Error { message } = v else {
        panic!("expected an error, got {v:?}")
    };
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("no such key"), "{message}");
    // A key the author wrote is named.
    let Verdict::Error { message } = verdict("object.metadata.labels.team == 'x'", pod) else {
        panic!("expected an error")
    };
    assert!(message.contains("team"), "{message}");
}

#[test]
fn error_messages_carry_no_double_prefix() {
    let v = verdict("[1, 2][5] == 1", pod_with("p", "a", 1));
    let Verdict::Error { message } = v else {
        panic!("expected an error, got {v:?}")
    };
    assert!(!message.contains("evaluation error"), "{message}");
    assert_eq!(message, "index out of bounds");
}

#[test]
fn a_panic_in_cel_is_caught_and_reported_as_none() {
    assert_eq!(kcel::quietly(|| 1), Some(1));
    assert_eq!(kcel::quietly(|| -> i32 { panic!("boom") }), None);
    // The compile-time walk itself still works after a caught panic.
    assert!(compile("object.a == 1", &[], &[]).is_ok());
}

#[test]
fn a_finding_names_every_failing_validation() {
    let action = action_yaml(
        r#"
apiVersion: securescore.io/v1alpha1
kind: ImprovementAction
metadata: {name: host-namespaces}
spec:
  title: Host namespaces
  category: Device
  maxScore: 5
  userImpact: Low
  implementationCost: Low
  check:
    podSpec: true
    validations:
      - expression: "!has(podSpec.hostNetwork) || !podSpec.hostNetwork"
        message: uses hostNetwork
      - expression: "!has(podSpec.hostPID) || !podSpec.hostPID"
        message: uses hostPID
      - expression: "!has(podSpec.hostIPC) || !podSpec.hostIPC"
        message: uses hostIPC
"#,
    );
    let mut pod = pod_with("p", "a", 1);
    pod["spec"]["hostNetwork"] = true.into();
    pod["spec"]["hostPID"] = true.into();
    let resource = Arc::new(Resource::new(pod, None).expect("test object"));
    let inv = securescore::engine::Inventory::complete([resource.clone()]);
    let scope = ObjectScope::new(&resource, &inv);
    let surroundings = Surroundings {
        inventory: &inv,
        cluster_visible: true,
    };
    assert_eq!(
        action.judge(&resource, &scope, &surroundings),
        Judgement::Applicable(Verdict::NonCompliant {
            message: "uses hostNetwork; uses hostPID".into()
        })
    );
}

/// vendor/cel carries fixes that cel 0.13 lacks (see vendor/cel/PATCHED.md). This fails once
/// the patch is no longer what cargo builds (e.g. kube moved to a cel release that has the
/// `!!`/`--` fix and the patch became unused): then check upstream for the budget, and drop or
/// port vendor/cel.
#[test]
fn the_vendored_cel_patch_is_what_cargo_builds() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock");
    assert!(
        !lock.contains("[[patch.unused]]"),
        "the [patch.crates-io] for cel is unused: upstream moved on; see vendor/cel/PATCHED.md"
    );
    let cel_entries: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.contains("\nname = \"cel\"\n"))
        .collect();
    assert_eq!(cel_entries.len(), 1, "one cel in the build");
    assert!(
        !cel_entries[0].contains("source = "),
        "cel comes from a registry, not vendor/cel: {}",
        cel_entries[0]
    );
    assert!(cel_entries[0].contains("version = \"0.13.0\""));
}

#[test]
fn the_catalog_judges_a_pod_with_5000_containers_within_budget() {
    let containers: Vec<_> = (0..5_000)
        .map(|i| {
            serde_json::json!({
                "name": format!("c{i}"), "image": format!("registry.example.com/app-{i}:1.{i}"),
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
                                    "capabilities": {"drop": ["ALL"]}}
            })
        })
        .collect();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wide", "namespace": "team-a", "uid": "uid-wide"},
        "spec": {"containers": containers}
    });
    // The opt-in actions over other products' reports read no Pod (and, with no report in the
    // input, are Unknown because the product is not detected): leave them out.
    let actions: Vec<_> = securescore::catalog::builtin()
        .expect("catalog")
        .iter()
        .filter(|a| {
            a.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(securescore::api::PRODUCT_LABEL))
        })
        .map(|a| Arc::new(securescore::engine::CompiledAction::compile(a)))
        .collect();
    let target = target_yaml(
        "apiVersion: securescore.io/v1alpha1\nkind: SecureScoreTarget\nmetadata: {name: t, namespace: team-a}\nspec: {}",
    );
    let result = eval(&target, &actions, &inventory(vec![pod]));
    let mut judged = 0;
    for o in &result.actions {
        assert_ne!(
            o.state,
            ActionState::Unknown,
            "{}: {:?}",
            o.action.name,
            o.message
        );
        for r in &o.results {
            judged += 1;
            if let Verdict::Error { message } = &r.verdict {
                assert!(
                    !kcel::is_budget_message(message),
                    "{}: {message}",
                    o.action.name
                );
            }
        }
    }
    assert!(judged >= 20, "{judged} judgements");
}
