//! `securescore explain ACTION [PATH...]`: what an improvement action checks, how to fix it,
//! which resources of the given manifests fail it, and a ready-to-paste exemption within the
//! action's exemptionPolicy.

use super::output::safe;
use super::scan::{self, ScanArgs};
use crate::api::{ExemptionPolicy, ResolutionState};
use crate::engine::{CompiledAction, Verdict};
use serde_yaml_ng::{Mapping, Value as YamlValue};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Longest exemption name (the CRD's maxLength).
const EXEMPTION_NAME_MAX: usize = 63;

/// Explain one improvement action, and list what fails it in the given manifests.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The action's name (`securescore catalog` lists them).
    #[arg(value_name = "ACTION")]
    pub action: String,

    /// Manifests to check against the action (as for `scan`: files, directories, `-`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Read ImprovementActions from PATH (file or directory; repeatable), as for `scan`.
    #[arg(long = "actions", value_name = "PATH")]
    pub actions: Vec<PathBuf>,

    /// Namespace of namespaced objects that have none.
    #[arg(long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Evaluate as of this instant (RFC 3339); also the exemption's approvedAt.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<jiff::Timestamp>,
}

pub fn run(args: ExplainArgs) -> ExitCode {
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let scan_args = ScanArgs::for_explain(args.paths, args.actions, args.namespace, now);
    let scan::Scan {
        scored,
        actions,
        errors,
    } = match scan::score(&scan_args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Some(action) = actions.iter().find(|a| a.name == args.action) else {
        eprintln!(
            "securescore explain: no action named {:?} (`securescore catalog` lists the built-in ones; pass others with --actions)",
            safe(&args.action)
        );
        return ExitCode::from(scan::EXIT_INPUT_ERROR);
    };
    let failing: Vec<Failing> = scored
        .iter()
        .flat_map(|s| s.evaluation.actions.iter())
        .filter(|o| o.action.name == action.name)
        .flat_map(|o| o.results.iter())
        .filter_map(|r| {
            let message = match &r.verdict {
                Verdict::Compliant => return None,
                Verdict::NonCompliant { message } => message.clone(),
                Verdict::Error { message } => format!("evaluation error: {message}"),
            };
            Some(Failing {
                display: r.resource.display(),
                namespace: r.resource.namespace.clone(),
                name: r.resource.name.clone(),
                message,
                at: r.resource.source.as_ref().map(scan::locate),
            })
        })
        .collect();
    print!(
        "{}",
        explain(action, &failing, !scan_args.paths.is_empty(), now)
    );
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(scan::EXIT_INPUT_ERROR)
    }
}

/// A resource of the input that fails the action.
struct Failing {
    display: String,
    namespace: Option<String>,
    name: String,
    message: String,
    at: Option<String>,
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{}", safe(l)).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn explain(
    action: &CompiledAction,
    failing: &[Failing],
    had_input: bool,
    now: jiff::Timestamp,
) -> String {
    let spec = &action.spec;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", safe(&action.name), safe(&spec.title));
    let _ = writeln!(
        out,
        "  category {} · max score {} · scoring {:?} · user impact {:?} · implementation cost {:?}{}",
        spec.category.as_str(),
        spec.max_score,
        spec.check.scoring,
        spec.user_impact,
        spec.implementation_cost,
        if spec.preview {
            " · preview (never scored)"
        } else {
            ""
        }
    );
    if let Some(p) = &action.problem {
        let _ = writeln!(
            out,
            "  NOT READY: {}: {}",
            p.reason.as_str(),
            safe(&p.message)
        );
    }
    for (heading, text) in [
        ("DESCRIPTION", &spec.description),
        ("REMEDIATION", &spec.remediation),
    ] {
        if !text.trim().is_empty() {
            let _ = writeln!(out, "\n{heading}\n{}", indent(text.trim_end(), "  "));
        }
    }

    let check = &spec.check;
    let heading = if check.is_task() {
        "CHECK (a task: done by people, attested by each target)"
    } else {
        "CHECK (Kubernetes CEL)"
    };
    let _ = writeln!(out, "\n{heading}");
    if let Some(task) = &check.attestation {
        let _ = writeln!(
            out,
            "  applies to: the target itself; attest it in spec.attestations at least every {}",
            safe(&task.every)
        );
    } else if check.pod_spec {
        let _ = writeln!(
            out,
            "  applies to: every workload with a pod template (podSpec)"
        );
    } else {
        let kinds: Vec<String> = check
            .resources
            .iter()
            .map(|r| {
                if r.api_group.is_empty() {
                    r.kind.clone()
                } else {
                    format!("{}.{}", r.kind, r.api_group)
                }
            })
            .collect();
        let _ = writeln!(out, "  applies to: {}", safe(&kinds.join(", ")));
    }
    if !check.exclude_namespaces.is_empty() {
        let _ = writeln!(
            out,
            "  except namespaces: {}",
            safe(&check.exclude_namespaces.join(", "))
        );
    }
    for l in &check.lookups {
        let _ = writeln!(
            out,
            "  lookup {}: {} {}",
            safe(&l.name),
            safe(&l.api_group),
            safe(&l.kind)
        );
    }
    for m in &check.match_conditions {
        let _ = writeln!(
            out,
            "  matchCondition {}:\n{}",
            safe(&m.name),
            indent(&m.expression, "    ")
        );
    }
    for v in &check.variables {
        let _ = writeln!(
            out,
            "  variable {}:\n{}",
            safe(&v.name),
            indent(&v.expression, "    ")
        );
    }
    for (i, v) in check.validations.iter().enumerate() {
        let _ = writeln!(
            out,
            "  validation {}:\n{}",
            i + 1,
            indent(&v.expression, "    ")
        );
        if let Some(m) = &v.message {
            let _ = writeln!(out, "    message: {}", safe(m));
        }
        if let Some(m) = &v.message_expression {
            let _ = writeln!(out, "    messageExpression: {}", safe(m));
        }
    }

    if !check.examples.is_empty() {
        let _ = writeln!(out, "\nEXAMPLES");
        for e in &check.examples {
            let yaml = serde_yaml_ng::to_string(&e.object).unwrap_or_default();
            let _ = writeln!(out, "  expect {:?}:\n{}", e.expect, indent(&yaml, "    "));
        }
    }

    if had_input {
        let _ = writeln!(out, "\nFAILING IN THE INPUT ({})", failing.len());
        for f in failing {
            let _ = writeln!(
                out,
                "  - {}: {}{}",
                safe(&f.display),
                safe(&f.message),
                f.at.as_deref()
                    .map(|a| format!("\n      {}", safe(a)))
                    .unwrap_or_default()
            );
        }
    }

    let _ = writeln!(
        out,
        "\nEXEMPTION (paste under a SecureScoreTarget's spec.exemptions)"
    );
    out.push_str(&exemption(action, failing, now));
    out
}

/// A ready exemption within the action's policy: the least generous allowed resolution, the
/// longest allowed span, and the failing resources (when there are any). YAML written by the
/// YAML crate (names with quotes, colons or control characters come out quoted and escaped),
/// indented to paste under `spec.exemptions`, with comments on the lines to review.
fn exemption(action: &CompiledAction, failing: &[Failing], now: jiff::Timestamp) -> String {
    let default_policy = ExemptionPolicy::default();
    let policy = action
        .spec
        .exemption_policy
        .as_ref()
        .unwrap_or(&default_policy);
    let allowed: Vec<ResolutionState> = policy
        .allowed_resolutions
        .clone()
        .unwrap_or_else(|| ResolutionState::ALL.to_vec());
    let Some(resolution) = allowed.iter().copied().min_by_key(|r| r.generosity()) else {
        return "  # this action's exemptionPolicy allows no resolution: it cannot be exempted\n"
            .into();
    };
    let max_days = policy.max_days();
    let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let approved = format!("{day}T00:00:00Z");
    let until = day
        .checked_add(jiff::Span::new().days(i64::from(max_days)))
        .map(|d| format!("{d}T00:00:00Z"))
        .unwrap_or_else(|_| approved.clone());
    let mut name: String = format!("{}-exemption", action.name)
        .chars()
        .take(EXEMPTION_NAME_MAX)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    let allowed_names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();

    // A YAML mapping keeps the order written: the fields read as the CRD lists them.
    let mut item = Mapping::new();
    let mut field = |key: &str, value: YamlValue| {
        item.insert(key.into(), value);
    };
    field("name", name.into());
    field("action", action.name.clone().into());
    field("resolution", resolution.as_str().into());
    field("owner", "team@example.com".into());
    field("reason", "why the risk is acceptable or mitigated".into());
    field("ticket", "".into());
    field("approvedAt", approved.into());
    field("expiresAt", until.clone().into());
    if resolution == ResolutionState::Planned {
        field("dueDate", until.into());
    }
    let names: BTreeSet<&str> = failing.iter().map(|f| f.name.as_str()).collect();
    let namespaces: BTreeSet<&str> = failing
        .iter()
        .filter_map(|f| f.namespace.as_deref())
        .collect();
    if !names.is_empty() {
        let mut resources = Mapping::new();
        if !namespaces.is_empty() {
            resources.insert("namespaces".into(), namespaces.into_iter().collect());
        }
        resources.insert("names".into(), names.into_iter().collect());
        field("resources", resources.into());
    }
    let comments = [
        (
            "resolution",
            format!("allowed: {}", allowed_names.join(", ")),
        ),
        ("owner", "who answers for it".to_string()),
        (
            "expiresAt",
            format!(
                "the policy allows at most {max_days} days{}",
                if policy.allow_open_ended {
                    "; or drop it and set openEnded: true"
                } else {
                    ""
                }
            ),
        ),
        (
            "resources",
            "the failing resources above; drop to exempt the whole action".to_string(),
        ),
    ];
    paste_ready(&YamlValue::Sequence(vec![item.into()]), &comments)
}

/// `exemptions`, a one-item list, as YAML indented by two spaces for `spec.exemptions`, with a
/// comment after each top-level key named in `comments`. The YAML is read back as kubectl reads
/// it (YAML 1.1: `on`, `no` or `y` are booleans there); should it not give the same value, or
/// hold a character a terminal would act on, the item is written as JSON (which is YAML too)
/// with every control character escaped, the comments above it.
fn paste_ready(exemptions: &YamlValue, comments: &[(&str, String)]) -> String {
    let yaml = serde_yaml_ng::to_string(exemptions).unwrap_or_default();
    let meant = serde_json::to_value(exemptions).ok();
    let (read, errors) = crate::inventory::manifests::parse_documents("exemption.yaml", &yaml);
    let faithful = errors.is_empty()
        && read.len() == 1
        && read.first().map(|(v, _)| v) == meant.as_ref()
        && !yaml.chars().any(|c| c != '\n' && unsafe_for_terminal(c));
    let mut out = String::new();
    if faithful {
        for line in yaml.lines() {
            let comment = comments.iter().find(|(key, _)| {
                [format!("- {key}:"), format!("  {key}:")]
                    .iter()
                    .any(|p| line.starts_with(p.as_str()))
            });
            match comment {
                Some((_, text)) => {
                    let _ = writeln!(out, "  {line}   # {text}");
                }
                None => {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        return out;
    }
    for (key, text) in comments {
        let _ = writeln!(out, "  # {key}: {text}");
    }
    let items = exemptions
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for item in items {
        let json = serde_json::to_string(item).unwrap_or_default();
        let escaped: String = json
            .chars()
            .map(|c| {
                if unsafe_for_terminal(c) {
                    format!("\\u{:04X}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = writeln!(out, "  - {escaped}");
    }
    out
}

/// A control character, or a Unicode line or paragraph separator (a line break in YAML 1.1).
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}
