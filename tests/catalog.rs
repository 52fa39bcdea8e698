//! The built-in catalog: every action loads Ready (its examples pass) and judges its pass and
//! fail fixtures under `tests/fixtures/catalog/<action>/` as stated. A new action without
//! fixtures fails here. A task (its check is an attestation) has no CEL examples: its fixtures
//! are SecureScoreTargets that attest it (fresh in pass.yaml, stale in fail.yaml).

use securescore::api::{ActionState, Category};
use securescore::engine::evaluate::implicit_cluster_target;
use securescore::engine::{CompiledAction, Inventory, TargetInput, Verdict, evaluate};
use securescore::inventory::manifests::load_text;
use std::path::Path;
use std::sync::Arc;

fn fixture(action: &str, which: &str) -> Inventory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/catalog")
        .join(action)
        .join(format!("{which}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{action} needs {}: {e}", path.display()));
    let (objects, errors) = load_text(&path.display().to_string(), &text, "default");
    assert!(errors.is_empty(), "{action}/{which}: {errors:?}");
    Inventory::complete(objects)
}

#[test]
fn the_catalog_has_at_least_sixty_actions_across_all_five_categories() {
    let actions = securescore::catalog::builtin().unwrap();
    assert!(actions.len() >= 60, "{}", actions.len());
    for c in Category::ALL {
        assert!(
            actions.iter().any(|a| a.spec.category == c),
            "no action in {c:?}"
        );
    }
    for a in &actions {
        let s = &a.spec;
        let name = a.metadata.name.as_deref().unwrap();
        assert!(
            (1..=10).contains(&s.max_score),
            "{name}: maxScore {}",
            s.max_score
        );
        assert!(
            !s.description.is_empty() && !s.remediation.is_empty(),
            "{name}: description and remediation"
        );
        assert!(
            s.remediation.contains("```"),
            "{name}: remediation has a snippet"
        );
        assert!(!s.threats.is_empty(), "{name}: threats");
        if let Some(task) = &s.check.attestation {
            // A task has no CEL to exemplify; it is new, so it starts in preview, and its
            // remediation shows the attestation to declare.
            let every = securescore::api::parse_period(&task.every);
            assert!(
                every.is_some_and(|d| d.as_secs() >= 86_400),
                "{name}: every {:?} is at least a day",
                task.every
            );
            assert!(s.preview, "{name}: a built-in task is a preview");
            assert!(
                s.remediation.contains(&format!("action: {name}")),
                "{name}: remediation shows its attestation"
            );
        } else {
            assert!(s.check.examples.len() >= 2, "{name}: examples");
        }
    }
}

#[test]
fn every_catalog_action_judges_its_fixtures() {
    let actions = securescore::catalog::builtin().unwrap();
    let target = implicit_cluster_target("scan", "default");
    let mut failures = Vec::new();
    for a in &actions {
        let name = a.metadata.name.clone().unwrap();
        let compiled = Arc::new(CompiledAction::compile(a));
        if let Some(p) = &compiled.problem {
            failures.push(format!(
                "{name}: not Ready: {} {}",
                p.reason.as_str(),
                p.message
            ));
            continue;
        }
        if a.spec.check.is_task() {
            failures.extend(task_judges_its_fixtures(&name, &compiled));
            continue;
        }
        for (which, want_compliant) in [("pass", true), ("fail", false)] {
            let inv = fixture(&name, which);
            let e = evaluate(&TargetInput {
                target: &target,
                actions: std::slice::from_ref(&compiled),
                inventory: &inv,
                now: "2026-11-27T00:00:00Z".parse().unwrap(),
                previous: None,
                wide_scope_allowed: true,
            });
            let outcome = &e.actions[0];
            if outcome.state == ActionState::NotApplicable || outcome.results.is_empty() {
                failures.push(format!("{name}/{which}: nothing applicable"));
                continue;
            }
            for r in &outcome.results {
                let ok = matches!(
                    (&r.verdict, want_compliant),
                    (Verdict::Compliant, true) | (Verdict::NonCompliant { .. }, false)
                );
                if !ok {
                    failures.push(format!(
                        "{name}/{which}: {} → {:?}",
                        r.resource.display(),
                        r.verdict
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A task's fixtures are targets: pass.yaml attests it within its period (Completed, full
/// points if scored), fail.yaml only with a stale attestation (ToAddress).
fn task_judges_its_fixtures(name: &str, compiled: &Arc<CompiledAction>) -> Vec<String> {
    use securescore::api::{SecureScoreTarget, TaskState};
    let mut failures = Vec::new();
    for (which, want) in [
        ("pass", (ActionState::Completed, TaskState::Fresh)),
        ("fail", (ActionState::ToAddress, TaskState::Stale)),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/catalog")
            .join(name)
            .join(format!("{which}.yaml"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{name} needs {}: {e}", path.display()));
        let target: SecureScoreTarget = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: a SecureScoreTarget: {e}", path.display()));
        let e = evaluate(&TargetInput {
            target: &target,
            actions: std::slice::from_ref(compiled),
            inventory: &Inventory::complete(Vec::new()),
            now: "2026-11-27T00:00:00Z".parse().unwrap(),
            previous: None,
            wide_scope_allowed: true,
        });
        let row = &e.status.actions[0];
        let got = (row.state, row.attestation.as_ref().map(|t| t.state));
        if got != (want.0, Some(want.1)) || row.applicable != 1 {
            failures.push(format!(
                "{name}/{which}: {:?} {:?} on {} resources, expected {want:?}",
                got.0, got.1, row.applicable
            ));
        }
        if e.status.attestations.iter().any(|a| a.message.is_some()) {
            failures.push(format!(
                "{name}/{which}: invalid attestation: {:?}",
                e.status.attestations
            ));
        }
    }
    failures
}

/// Built-in actions that no control of the three frameworks covers (availability hygiene): they
/// say so by naming none. Kept short and checked both ways, so the list cannot go stale.
const WITHOUT_FRAMEWORK_CONTROL: [&str; 4] = [
    "container-liveness-probe",
    "container-readiness-probe",
    // Testing a restore and reviewing exemptions are operational hygiene no control names.
    "task-review-exemptions",
    "task-test-etcd-backup-restore",
];

#[test]
fn every_built_in_action_maps_to_framework_controls_under_the_canonical_names() {
    use securescore::catalog::{FRAMEWORK_CIS, FRAMEWORK_PSS, FRAMEWORKS};
    let actions = securescore::catalog::builtin().unwrap();
    let mut problems = Vec::new();
    for a in &actions {
        let name = a.metadata.name.as_deref().unwrap();
        let refs = &a.spec.references;
        let exempt = WITHOUT_FRAMEWORK_CONTROL.contains(&name);
        if refs.is_empty() != exempt {
            problems.push(format!("{name}: {} framework references", refs.len()));
        }
        for r in refs {
            let control = r.control.as_deref().unwrap_or("");
            if !FRAMEWORKS.contains(&r.framework.as_str()) {
                problems.push(format!("{name}: unknown framework {:?}", r.framework));
            }
            if control.trim().is_empty() || !r.url.as_deref().unwrap_or("").starts_with("https://")
            {
                problems.push(format!(
                    "{name}: {} needs a control and an https url",
                    r.framework
                ));
            }
            if r.framework == FRAMEWORK_PSS
                && !(control.starts_with("Baseline: ") || control.starts_with("Restricted: "))
            {
                problems.push(format!("{name}: PSS control {control:?} names no level"));
            }
            if r.framework == FRAMEWORK_CIS
                && !(control.split('.').count() == 3
                    && control
                        .split('.')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
            {
                problems.push(format!(
                    "{name}: CIS control {control:?} is not a recommendation number"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Each framework is used, so a renamed framework cannot leave the list silently unused.
    for f in FRAMEWORKS {
        assert!(
            actions
                .iter()
                .any(|a| a.spec.references.iter().any(|r| r.framework == f)),
            "no action references {f}"
        );
    }
}

/// docs/catalog.md is generated from the catalog; this fails when the committed page drifts.
#[test]
fn docs_catalog_md_is_the_generated_markdown() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_securescore"))
        .args(["catalog", "--format", "markdown"])
        .output()
        .expect("securescore runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/catalog.md"))
            .expect("docs/catalog.md");
    assert!(
        generated == committed,
        "docs/catalog.md is stale: run `cargo run -- catalog --format markdown > docs/catalog.md`"
    );
    // The page lists every action, each with its own section.
    for a in securescore::catalog::builtin().unwrap() {
        let name = a.metadata.name.unwrap();
        assert!(
            committed.contains(&format!("\n### {name}\n")),
            "{name} has no section"
        );
    }
}
