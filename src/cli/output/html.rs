//! `--format html`: one self-contained page for CI artefacts: per target the score, the
//! categories, the ranked actions with their remediation, the findings with file:line and the
//! exemptions with days left. No script, no external asset, no network (a Content Security
//! Policy forbids them); numbers carry `data-field` attributes so tests can read them back.

use super::{Scored, target_name};
use crate::api::{ActionState, ResolutionState};
use crate::cli::scan::locate;
use crate::engine::{CompiledAction, Verdict};
use std::fmt::Write;
use std::sync::Arc;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap;margin:.25rem 0}\
.Good{color:#1a7f37}.Okay{color:#9a6700}.Poor{color:#cf222e}section{margin-bottom:3rem}";

/// Text for HTML: `&`, `<`, `>`, quotes escaped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c != '\n' && c != '\t' && crate::text::shown_escaped(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(scored: &[Scored], actions: &[Arc<CompiledAction>]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<title>Secure Score</title>");
    let _ = writeln!(
        out,
        "<style>{STYLE}</style></head><body><h1>Secure Score</h1>"
    );
    for s in scored {
        target(&mut out, s, actions);
    }
    out.push_str("</body></html>\n");
    out
}

fn target(out: &mut String, s: &Scored, actions: &[Arc<CompiledAction>]) {
    let status = &s.evaluation.status;
    let name = esc(&target_name(&s.target));
    let _ = writeln!(
        out,
        "<section data-target=\"{name}\"><h2>Target {name}</h2>"
    );
    let zone = status.zone.map(|z| format!("{z:?}")).unwrap_or_default();
    let percentage = status
        .percentage
        .map_or("-".to_string(), |p| format!("{p:.2}"));
    let _ = writeln!(
        out,
        "<p class=\"{zone}\"><b><span data-field=\"score\">{:.2}</span> / <span data-field=\"maxScore\">{:.2}</span> points (<span data-field=\"percentage\">{percentage}</span>%)</b>{}{}</p>\n",
        status.score.unwrap_or(0.0),
        status.max_score.unwrap_or(0.0),
        if zone.is_empty() {
            String::new()
        } else {
            format!(", zone {zone}")
        },
        s.target
            .spec
            .goal
            .map(|g| format!(", goal <span data-field=\"goal\">{g}</span>%"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "<p><span data-field=\"evaluatedResources\">{}</span> resources evaluated</p>",
        status.evaluated_resources
    );
    if !s.implied_namespaces.is_empty() {
        let _ = writeln!(
            out,
            "<p>Implied, not judged: namespace {} (declare the Namespace objects, or pass them with <code>--namespaces PATH</code>).</p>",
            esc(&s.implied_namespaces.join(", "))
        );
    }

    if !status.categories.is_empty() {
        out.push_str("<h3>Categories</h3><table><tr><th>Category</th><th>Score</th><th>Max</th><th>To gain</th></tr>\n");
        for c in &status.categories {
            let _ = writeln!(
                out,
                "<tr data-category=\"{}\"><td>{}</td><td class=\"n\" data-field=\"score\">{:.2}</td><td class=\"n\" data-field=\"maxScore\">{:.2}</td><td class=\"n\" data-field=\"pointsToGain\">{:.2}</td></tr>",
                c.category.as_str(),
                c.category.as_str(),
                c.score,
                c.max_score,
                c.points_to_gain
            );
        }
        out.push_str("</table>\n");
    }
    super::frameworks::html(out, status, esc);

    security_controls(out, status);

    let listed: Vec<_> = status
        .actions
        .iter()
        .filter(|a| !matches!(a.state, ActionState::Completed | ActionState::NotApplicable))
        .collect();
    if !listed.is_empty() {
        out.push_str("<h3>Actions to address, ranked</h3><table><tr><th>To gain</th><th>Action</th><th>Category</th><th>Compliant</th><th>State</th><th>What to do</th></tr>\n");
        for a in listed {
            let remediation = actions
                .iter()
                .find(|c| c.name == a.name)
                .map(|c| c.spec.remediation.as_str())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr data-action=\"{}\"><td class=\"n\" data-field=\"pointsToGain\">{:.2}</td><td><b>{}</b><br>{}</td><td>{}</td><td class=\"n\"><span data-field=\"compliant\">{}</span>/<span data-field=\"applicable\">{}</span></td><td>{}{}</td><td><pre>{}</pre></td></tr>",
                esc(&a.name),
                a.points_to_gain,
                esc(&a.name),
                esc(&a.title),
                a.category.as_str(),
                a.compliant,
                a.applicable,
                a.state.as_str(),
                if a.preview { " (preview)" } else { "" },
                esc(remediation.trim_end())
            );
        }
        out.push_str("</table>\n");
    }

    if !status.exemptions.is_empty() {
        out.push_str("<h3>Exemptions</h3><table><tr><th>Exemption</th><th>Action</th><th>Resolution</th><th>State</th><th>Resources</th><th>Days left</th><th>Message</th></tr>\n");
        for (e, declared) in status.exemptions.iter().zip(&s.target.spec.exemptions) {
            let _ = writeln!(
                out,
                "<tr data-exemption=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td class=\"n\">{}</td><td class=\"n\" data-field=\"daysLeft\">{}</td><td>{}</td></tr>",
                esc(&e.name),
                esc(&e.name),
                esc(&e.action),
                declared.resolution.as_str(),
                e.state,
                e.covered,
                e.days_left.map_or("-".to_string(), |d| d.to_string()),
                esc(e.message.as_deref().unwrap_or_default())
            );
        }
        out.push_str("</table>\n");
    }

    let mut findings = String::new();
    let mut count = 0usize;
    for o in &s.evaluation.actions {
        for r in &o.results {
            let message = match &r.verdict {
                Verdict::Compliant => continue,
                Verdict::NonCompliant { message } => message.clone(),
                Verdict::Error { message } => format!("evaluation error: {message}"),
            };
            let planned = match &r.resolution {
                None => "",
                Some((ResolutionState::Planned, _)) => " [Planned]",
                Some(_) => continue,
            };
            count += 1;
            let at = r.resource.source.as_ref().map(locate).unwrap_or_default();
            let _ = writeln!(
                findings,
                "<tr><td>{}</td><td>{}</td><td>{}{planned}</td><td><code>{}</code></td></tr>",
                esc(&o.action.name),
                esc(&r.resource.display()),
                esc(&message),
                esc(&at)
            );
        }
    }
    if count > 0 {
        let _ = write!(
            out,
            "<h3>Findings (<span data-field=\"findings\">{count}</span>)</h3><table><tr><th>Action</th><th>Resource</th><th>Finding</th><th>Where</th></tr>\n{findings}</table>\n"
        );
    }
    out.push_str("</section>\n");
}

/// The security controls of a target in the SecurityControls model (nothing otherwise), and
/// the actions no control groups.
fn security_controls(out: &mut String, status: &crate::api::SecureScoreTargetStatus) {
    if status.controls.is_empty() {
        return;
    }
    out.push_str("<h3>Security controls</h3><table><tr><th>Control</th><th>Score</th><th>Max</th><th>To gain</th><th>Healthy</th><th>State</th><th>Actions</th></tr>\n");
    for c in &status.controls {
        let _ = writeln!(
            out,
            "<tr data-control=\"{}\"><td>{}</td><td class=\"n\" data-field=\"score\">{:.2}</td><td class=\"n\" data-field=\"maxScore\">{:.2}</td><td class=\"n\" data-field=\"pointsToGain\">{:.2}</td><td class=\"n\"><span data-field=\"healthy\">{}</span>/<span data-field=\"applicable\">{}</span></td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.title),
            c.score,
            c.max_score,
            c.points_to_gain,
            c.healthy,
            c.applicable,
            c.state.as_str(),
            esc(&c.actions.join(", "))
        );
    }
    out.push_str("</table>\n");
    if !status.actions_not_in_controls.is_empty() {
        let _ = writeln!(
            out,
            "<p>Not in any control (scoring nothing): {}</p>",
            esc(&status.actions_not_in_controls.join(", "))
        );
    }
}
