//! `--format table`: per target, the score line, the breakdown, the categories, the actions
//! ranked by points to gain, the exemptions and the top findings located by file and line.

use super::{Scored, safe, target_name};
use crate::api::{ActionState, ResolutionState, Zone};
use crate::cli::scan::locate;
use crate::engine::CompiledAction;
use crate::engine::Verdict;
use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::Arc;

/// Findings listed per target.
const TOP_FINDINGS: usize = 15;
/// Widest title shown in the action list.
const TITLE_WIDTH: usize = 60;
/// Narrowest title worth showing in the action list.
const MIN_TITLE_WIDTH: usize = 12;
/// Actions whose remediation is shown under the list.
const REMEDIATIONS_SHOWN: usize = 3;
/// Remediation lines shown per action (the rest: `securescore explain`).
const REMEDIATION_LINES: usize = 12;
/// Output width when neither COLUMNS nor a terminal says.
const DEFAULT_WIDTH: usize = 100;
/// From this width on, the action list has a CATEGORY column.
const CATEGORY_COLUMN_FROM: usize = 120;

/// Whether to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
    /// Columns available: every action is one line of at most this many characters.
    pub width: usize,
}

impl Style {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty; the width from
    /// `COLUMNS`, else the terminal's, else 100.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let terminal = std::io::stdout().is_terminal();
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w >= 40)
            .or_else(|| {
                terminal
                    .then(|| console::Term::stdout().size_checked())
                    .flatten()
                    .map(|(_, cols)| usize::from(cols))
            })
            .unwrap_or(DEFAULT_WIDTH);
        Style {
            colour: !no_color && terminal,
            width,
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub(super) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn zone(self, zone: Zone, text: &str) -> String {
        match zone {
            Zone::Good => self.paint("32", text),
            Zone::Okay => self.paint("33", text),
            Zone::Poor => self.paint("31", text),
        }
    }
}

fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n >= width {
        text.to_string()
    } else {
        format!("{text}{}", " ".repeat(width - n))
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width || width == 0 {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

pub fn render(scored: &[Scored], actions: &[Arc<CompiledAction>], style: Style) -> String {
    let mut out = String::new();
    if scored.len() > 1 {
        summary(&mut out, scored, style);
    }
    for (i, s) in scored.iter().enumerate() {
        if i > 0 || scored.len() > 1 {
            out.push('\n');
        }
        target(&mut out, s, actions, style);
    }
    out
}

/// With several targets, one line each first: score, percent, goal, met.
fn summary(out: &mut String, scored: &[Scored], style: Style) {
    let width = scored
        .iter()
        .map(|s| safe(&target_name(&s.target)).chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "{}  {:>8}  {:>5}  {:>8}  {:>5}  MET",
            pad("TARGET", width),
            "SCORE",
            "MAX",
            "PERCENT",
            "GOAL"
        ))
    );
    for s in scored {
        let status = &s.evaluation.status;
        let evaluated = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .is_none_or(|c| c.status == "True");
        let percent = status
            .percentage
            .filter(|_| evaluated)
            .map_or("-".to_string(), |p| format!("{p:.2}%"));
        let goal = s
            .target
            .spec
            .goal
            .map_or("-".to_string(), |g| format!("{g}%"));
        let met = match goal_met(s) {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let line = format!(
            "{}  {:>8.2}  {:>5.0}  {:>8}  {:>5}  {met}",
            pad(&safe(&target_name(&s.target)), width),
            status.score.unwrap_or(0.0),
            status.max_score.unwrap_or(0.0),
            percent,
            goal,
        );
        let _ = writeln!(out, "{}", clip(&line, style.width));
    }
}

/// Whether a target meets its own `spec.goal` (None: it has no goal). Nothing to evaluate, or
/// not evaluated, misses it.
pub fn goal_met(s: &Scored) -> Option<bool> {
    let goal = s.target.spec.goal?;
    let ready = s
        .evaluation
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .is_none_or(|c| c.status == "True");
    Some(
        ready
            && s.evaluation
                .status
                .percentage
                .is_some_and(|p| p >= f64::from(goal)),
    )
}

fn target(out: &mut String, s: &Scored, actions: &[Arc<CompiledAction>], style: Style) {
    let status = &s.evaluation.status;
    let name = safe(&target_name(&s.target));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    if let Some(c) = ready.filter(|c| c.status != "True") {
        let _ = writeln!(
            out,
            "{} {name}: not evaluated: {}: {}",
            style.bold("Target"),
            safe(&c.reason),
            safe(&c.message)
        );
        return;
    }
    let score = status.score.unwrap_or(0.0);
    let max = status.max_score.unwrap_or(0.0);
    let headline = match (status.percentage, status.zone) {
        (Some(p), Some(zone)) => {
            let zone_text = format!("{zone:?}");
            format!(
                "{score:.2} / {max:.0} points ({}), zone {}",
                style.zone(zone, &format!("{p:.2}%")),
                style.zone(zone, &zone_text)
            )
        }
        _ => "nothing to evaluate: no action applies to anything in scope".to_string(),
    };
    let goal = match (s.target.spec.goal, status.percentage) {
        (Some(goal), Some(p)) if p >= f64::from(goal) => format!(", goal {goal}% met"),
        (Some(goal), _) => format!(", goal {goal}% missed"),
        (None, _) => String::new(),
    };
    let _ = writeln!(out, "{} {name}: {headline}{goal}", style.bold("Target"));
    let _ = writeln!(
        out,
        "  {} resources evaluated, {} actions",
        status.evaluated_resources,
        status.actions.len()
    );
    if !s.implied_namespaces.is_empty() {
        let names: Vec<String> = s.implied_namespaces.iter().map(|n| safe(n)).collect();
        let _ = writeln!(
            out,
            "  implied, not judged: namespace {} (declare the Namespace objects, or pass them with --namespaces PATH)",
            names.join(", ")
        );
    }
    if let Some(b) = &status.breakdown {
        let _ = writeln!(
            out,
            "  achieved {:.2} · mitigated {:.2} · accepted {:.2} · to address {:.2} · projected {:.2} · achievable {:.2}",
            b.achieved,
            b.mitigated,
            b.accepted,
            b.to_address,
            b.projected_score,
            b.achievable_score
        );
    }

    if !status.categories.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "  {}",
            style.bold(&format!(
                "{} {:>8} {:>8} {:>8}",
                pad("CATEGORY", 16),
                "SCORE",
                "MAX",
                "TO GAIN"
            ))
        );
        for c in &status.categories {
            let _ = writeln!(
                out,
                "  {} {:>8.2} {:>8.2} {:>8.2}",
                pad(c.category.as_str(), 16),
                c.score,
                c.max_score,
                c.points_to_gain
            );
        }
    }
    super::frameworks::table(out, status, style);

    security_controls(out, status, style);

    let listed: Vec<_> = status
        .actions
        .iter()
        .filter(|a| !matches!(a.state, ActionState::Completed | ActionState::NotApplicable))
        .collect();
    if !listed.is_empty() {
        let width = listed
            .iter()
            .map(|a| a.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let state_width = listed
            .iter()
            .map(|a| a.state.as_str().len() + usize::from(a.preview))
            .max()
            .unwrap_or(0)
            .max(5);
        let with_category = style.width >= CATEGORY_COLUMN_FROM;
        let category = |c: &str| {
            if with_category {
                format!("{}  ", pad(c, 14))
            } else {
                String::new()
            }
        };
        // The title takes what is left of the width; too little left, and it is left out.
        let fixed = 2 + 7 + 2 + width + 2 + category("").len() + 9 + 2 + state_width + 2;
        let title_width = style.width.saturating_sub(fixed).min(TITLE_WIDTH);
        let with_title = title_width >= MIN_TITLE_WIDTH;
        let title = |t: &str| {
            if with_title {
                format!("  {}", clip(t, title_width))
            } else {
                String::new()
            }
        };
        out.push('\n');
        let header = format!(
            "  {:>7}  {}  {}{:>9}  {}{}",
            "TO GAIN",
            pad("ACTION", width),
            category("CATEGORY"),
            "COMPLIANT",
            pad("STATE", state_width),
            title("TITLE"),
        );
        let _ = writeln!(out, "{}", style.bold(clip(&header, style.width).trim_end()));
        for a in &listed {
            let mut state = a.state.as_str().to_string();
            if a.preview {
                state.push('*');
            }
            let row = format!(
                "  {:>7.2}  {}  {}{:>9}  {}{}",
                a.points_to_gain,
                pad(&safe(&a.name), width),
                category(a.category.as_str()),
                format!("{}/{}", a.compliant, a.applicable),
                pad(&state, state_width),
                title(&safe(&a.title))
            );
            let _ = writeln!(out, "{}", clip(&row, style.width).trim_end());
        }
        if listed.iter().any(|a| a.preview) {
            let _ = writeln!(
                out,
                "  {}",
                style.dim("* preview: evaluated and reported, never scored")
            );
        }
        remediations(out, &listed, actions, style);
    }
    let count = |state: ActionState| status.actions.iter().filter(|a| a.state == state).count();
    let _ = writeln!(
        out,
        "  {}",
        style.dim(&format!(
            "{} actions completed, {} not applicable",
            count(ActionState::Completed),
            count(ActionState::NotApplicable)
        ))
    );
    for a in status.actions.iter().filter(|a| a.message.is_some()) {
        let _ = writeln!(
            out,
            "  {}: {}",
            safe(&a.name),
            safe(a.message.as_deref().unwrap_or_default())
        );
    }

    if !status.exemptions.is_empty() {
        out.push('\n');
        let name_width = status
            .exemptions
            .iter()
            .map(|e| e.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(9);
        let action_width = status
            .exemptions
            .iter()
            .map(|e| e.action.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(
            out,
            "  {}",
            style.bold(&format!(
                "{}  {}  {}  {}  {:>9}  {:>9}",
                pad("EXEMPTION", name_width),
                pad("ACTION", action_width),
                pad("RESOLUTION", 18),
                pad("STATE", 8),
                "RESOURCES",
                "DAYS LEFT"
            ))
        );
        for (e, declared) in status.exemptions.iter().zip(&s.target.spec.exemptions) {
            let line = format!(
                "{}  {}  {}  {}  {:>9}  {:>9}  {}",
                pad(&safe(&e.name), name_width),
                pad(&safe(&e.action), action_width),
                pad(declared.resolution.as_str(), 18),
                pad(&format!("{:?}", e.state), 8),
                e.covered,
                e.days_left.map(|d| d.to_string()).unwrap_or("-".into()),
                safe(e.message.as_deref().unwrap_or_default())
            );
            let _ = writeln!(out, "  {}", line.trim_end());
        }
    }

    tasks(out, s, style);

    // Findings still to address (unresolved or planned), in the ranking's order.
    let findings: Vec<String> = s
        .evaluation
        .actions
        .iter()
        .flat_map(|o| {
            o.results.iter().filter_map(move |r| {
                let message = match &r.verdict {
                    Verdict::Compliant => return None,
                    Verdict::NonCompliant { message } => message.clone(),
                    Verdict::Error { message } => format!("evaluation error: {message}"),
                };
                let planned = match &r.resolution {
                    None => "",
                    Some((ResolutionState::Planned, _)) => " [Planned]",
                    Some(_) => return None,
                };
                let at = match super::finding_source(s, o, r) {
                    Some(source) => locate(source),
                    // A task's finding is on the target itself.
                    None if o.attestation.is_some() => "(the implicit target)".into(),
                    None => "(implied by the input)".into(),
                };
                Some(format!(
                    "{}: {}{planned}\n      {} {}",
                    safe(&r.resource.display()),
                    safe(&message),
                    safe(&o.action.name),
                    safe(&at)
                ))
            })
        })
        .collect();
    if !findings.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "  {}",
            style.bold(&format!(
                "TOP FINDINGS ({} of {})",
                findings.len().min(TOP_FINDINGS),
                findings.len()
            ))
        );
        for f in findings.iter().take(TOP_FINDINGS) {
            let _ = writeln!(out, "  - {f}");
        }
    }
}

/// The target's tasks: state, last attestation (when, by whom, evidence) and when it is due;
/// then the declared attestations the engine refused.
fn tasks(out: &mut String, s: &Scored, style: Style) {
    let status = &s.evaluation.status;
    let rows: Vec<_> = status
        .actions
        .iter()
        .filter_map(|a| Some((a, a.attestation.as_ref()?)))
        .collect();
    let invalid: Vec<_> = status
        .attestations
        .iter()
        .filter(|a| a.state == crate::api::AttestationState::Invalid)
        .collect();
    if rows.is_empty() && invalid.is_empty() {
        return;
    }
    out.push('\n');
    let width = rows
        .iter()
        .map(|(a, _)| a.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let state_of = |a: &crate::api::ActionResult, t: &crate::api::TaskAttestation| {
        let star = if a.preview { "*" } else { "" };
        format!("{} ({}){star}", a.state.as_str(), t.state.as_str())
    };
    let state_width = rows
        .iter()
        .map(|(a, t)| state_of(a, t).chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "  {}",
        style.bold(&format!(
            "{}  {}  {}  {}  {}  EVIDENCE",
            pad("TASK", width),
            pad("STATE", state_width),
            pad("ATTESTED", 20),
            pad("DUE", 20),
            pad("BY", 16)
        ))
    );
    for (a, t) in rows {
        let line = format!(
            "{}  {}  {}  {}  {}  {}",
            pad(&safe(&a.name), width),
            pad(&state_of(a, t), state_width),
            pad(t.attested_at.as_deref().unwrap_or("never"), 20),
            pad(t.due_at.as_deref().unwrap_or("now"), 20),
            pad(&safe(t.attested_by.as_deref().unwrap_or("-")), 16),
            safe(t.evidence.as_deref().unwrap_or("-"))
        );
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    for a in invalid {
        let _ = writeln!(
            out,
            "  invalid attestation, ignored: {}",
            safe(a.message.as_deref().unwrap_or_default())
        );
    }
}

/// The remediation of the first actions to address, so the table says what to do.
fn remediations(
    out: &mut String,
    listed: &[&crate::api::ActionResult],
    actions: &[Arc<CompiledAction>],
    style: Style,
) {
    let top: Vec<_> = listed
        .iter()
        .filter(|a| a.state == ActionState::ToAddress && !a.preview)
        .take(REMEDIATIONS_SHOWN)
        .filter_map(|a| actions.iter().find(|c| c.name == a.name))
        .filter(|c| !c.spec.remediation.trim().is_empty())
        .collect();
    if top.is_empty() {
        return;
    }
    out.push('\n');
    let _ = writeln!(out, "  {}", style.bold("WHAT TO DO"));
    for action in top {
        let _ = writeln!(
            out,
            "{}",
            clip(
                &format!("  {}: {}", safe(&action.name), safe(&action.spec.title)),
                style.width
            )
        );
        let lines: Vec<&str> = action
            .spec
            .remediation
            .lines()
            .filter(|l| !l.trim_start().starts_with("```"))
            .collect();
        for l in lines.iter().take(REMEDIATION_LINES) {
            let _ = writeln!(
                out,
                "{}",
                clip(&format!("      {}", safe(l)), style.width).trim_end()
            );
        }
        if lines.len() > REMEDIATION_LINES {
            let _ = writeln!(out, "      …");
        }
        let _ = writeln!(
            out,
            "{}",
            clip(
                &format!(
                    "      (more: securescore explain {} PATH...)",
                    safe(&action.name)
                ),
                style.width
            )
        );
    }
}

/// The security controls of a target in the SecurityControls model (nothing otherwise), ranked
/// as in the status, and the actions no control groups.
fn security_controls(out: &mut String, status: &crate::api::SecureScoreTargetStatus, style: Style) {
    if status.controls.is_empty() {
        return;
    }
    let width = status
        .controls
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    out.push('\n');
    let _ = writeln!(
        out,
        "  {}",
        style.bold(&format!(
            "{} {:>8} {:>8} {:>8} {:>9}  {}",
            pad("CONTROL", width),
            "SCORE",
            "MAX",
            "TO GAIN",
            "HEALTHY",
            "STATE"
        ))
    );
    for c in &status.controls {
        let _ = writeln!(
            out,
            "  {} {:>8.2} {:>8.2} {:>8.2} {:>9}  {}",
            pad(&safe(&c.name), width),
            c.score,
            c.max_score,
            c.points_to_gain,
            format!("{}/{}", c.healthy, c.applicable),
            c.state.as_str()
        );
    }
    if !status.actions_not_in_controls.is_empty() {
        let names: Vec<String> = status
            .actions_not_in_controls
            .iter()
            .map(|n| safe(n))
            .collect();
        let _ = writeln!(
            out,
            "  not in any control (scoring nothing): {}",
            names.join(", ")
        );
    }
}
