//! `--format table`: per target, the score line, the breakdown, the categories, the actions
//! ranked by points to gain, the exemptions and the top findings located by file and line.

use super::{Scored, target_name};
use crate::api::{ActionState, ResolutionState, Zone};
use crate::cli::scan::locate;
use crate::engine::Verdict;
use std::fmt::Write;
use std::io::IsTerminal;

/// Findings listed per target.
const TOP_FINDINGS: usize = 15;
/// Widest title shown in the action list.
const TITLE_WIDTH: usize = 60;

/// Whether to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(self, text: &str) -> String {
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
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

pub fn render(scored: &[Scored], style: Style) -> String {
    let mut out = String::new();
    for (i, s) in scored.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        target(&mut out, s, style);
    }
    out
}

fn target(out: &mut String, s: &Scored, style: Style) {
    let status = &s.evaluation.status;
    let name = target_name(&s.target);
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    if let Some(c) = ready.filter(|c| c.status != "True") {
        let _ = writeln!(
            out,
            "{} {name}: not evaluated: {}: {}",
            style.bold("Target"),
            c.reason,
            c.message
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
            .map(|a| a.state.as_str().len() + if a.preview { 10 } else { 0 })
            .max()
            .unwrap_or(0)
            .max(5);
        out.push('\n');
        let _ = writeln!(
            out,
            "  {}",
            style.bold(&format!(
                "{:>7}  {}  {}  {:>9}  {}  TITLE",
                "TO GAIN",
                pad("ACTION", width),
                pad("CATEGORY", 14),
                "COMPLIANT",
                pad("STATE", state_width),
            ))
        );
        for a in &listed {
            let mut state = a.state.as_str().to_string();
            if a.preview {
                state.push_str(" (preview)");
            }
            let _ = writeln!(
                out,
                "  {:>7.2}  {}  {}  {:>9}  {}  {}",
                a.points_to_gain,
                pad(&a.name, width),
                pad(a.category.as_str(), 14),
                format!("{}/{}", a.compliant, a.applicable),
                pad(&state, state_width),
                clip(&a.title, TITLE_WIDTH)
            );
        }
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
            a.name,
            a.message.as_deref().unwrap_or_default()
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
                pad(&e.name, name_width),
                pad(&e.action, action_width),
                pad(declared.resolution.as_str(), 18),
                pad(&format!("{:?}", e.state), 8),
                e.covered,
                e.days_left.map(|d| d.to_string()).unwrap_or("-".into()),
                e.message.as_deref().unwrap_or_default()
            );
            let _ = writeln!(out, "  {}", line.trim_end());
        }
    }

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
                let at = r
                    .resource
                    .source
                    .as_ref()
                    .map(locate)
                    .unwrap_or_else(|| "(implied by the input)".into());
                Some(format!(
                    "{}: {message}{planned}\n      {} {}",
                    r.resource.display(),
                    o.action.name,
                    at
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
