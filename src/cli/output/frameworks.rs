//! The frameworks section of `scan` output (table and HTML; JSON carries `status.frameworks`
//! as the operator writes it) and the products that were not detected.

use super::safe;
use super::table::Style;
use crate::api::SecureScoreTargetStatus;
use std::fmt::Write;

/// Framework rows and the undetected products, for the table.
pub fn table(out: &mut String, status: &SecureScoreTargetStatus, style: Style) {
    if !status.products_not_detected.is_empty() {
        let names: Vec<String> = status
            .products_not_detected
            .iter()
            .map(|p| safe(p))
            .collect();
        let _ = writeln!(
            out,
            "  products not detected: {} (their actions are Unknown: maxScore kept, 0 points)",
            names.join(", ")
        );
    }
    if status.frameworks.is_empty() {
        return;
    }
    let width = status
        .frameworks
        .iter()
        .map(|f| f.framework.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    out.push('\n');
    let _ = writeln!(
        out,
        "  {}",
        style.bold(&format!(
            "{:<width$} {:>7} {:>7} {:>7} {:>8}",
            "FRAMEWORK", "PASSED", "FAILED", "TOTAL", "PERCENT"
        ))
    );
    for f in &status.frameworks {
        let percent = f
            .percentage
            .map_or_else(|| "-".to_string(), |p| format!("{p:.2}%"));
        let _ = writeln!(
            out,
            "  {:<width$} {:>7} {:>7} {:>7} {:>8}",
            safe(&f.framework),
            f.passed,
            f.failed,
            f.total,
            percent
        );
    }
}

/// Framework rows and the undetected products, for the HTML page (`esc` escapes text).
pub fn html(out: &mut String, status: &SecureScoreTargetStatus, esc: fn(&str) -> String) {
    if !status.products_not_detected.is_empty() {
        let _ = writeln!(
            out,
            "<p data-field=\"productsNotDetected\">Products not detected: {} (their actions are Unknown: maxScore kept, 0 points).</p>",
            esc(&status.products_not_detected.join(", "))
        );
    }
    if status.frameworks.is_empty() {
        return;
    }
    out.push_str("<h3>Frameworks</h3><table><tr><th>Framework</th><th>Passed</th><th>Failed</th><th>Total</th><th>Percent</th><th>Failed controls</th></tr>\n");
    for f in &status.frameworks {
        let _ = writeln!(
            out,
            "<tr data-framework=\"{}\"><td>{}</td><td class=\"n\" data-field=\"passed\">{}</td><td class=\"n\" data-field=\"failed\">{}</td><td class=\"n\" data-field=\"total\">{}</td><td class=\"n\" data-field=\"percentage\">{}</td><td>{}</td></tr>",
            esc(&f.framework),
            esc(&f.framework),
            f.passed,
            f.failed,
            f.total,
            f.percentage
                .map_or_else(|| "-".to_string(), |p| format!("{p:.2}")),
            esc(&f.failed_controls.join("; "))
        );
    }
    out.push_str("</table>\n");
}
