//! `securescore scan --format html`, rendered by headless Chromium (Debian's `chromium`,
//! installed by scripts/install/chromium.sh): the page loads with no console error and no
//! blocked request, and the numbers in the rendered DOM equal the JSON output's.
//! A missing chromium is a failure, never a skip.

#[path = "support/tools.rs"]
mod tools;

use regex::Regex;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const NOW: &str = "2026-11-27T12:00:00Z";

fn scan(format: &str) -> String {
    scan_with(format, &[])
}

fn scan_with(format: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_securescore"))
        .args([
            "scan",
            "examples/shop",
            "examples/targets",
            "--actions",
            "examples/actions",
            "--now",
            NOW,
            "--format",
            format,
        ])
        .args(extra)
        .current_dir(REPO)
        .output()
        .expect("securescore runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The DOM after Chromium loaded the page, and Chromium's log (console messages included).
fn render(page: &Path) -> (String, String) {
    let chromium = tools::tool("chromium", "chromium");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=1",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages and loads the page's Content Security Policy blocked, in Chromium's log
/// (Chromium's own background requests are not the page's).
fn page_problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Refused to"))
        .collect()
}

fn field(section: &str, name: &str) -> f64 {
    let re = Regex::new(&format!(r#"data-field="{name}">([^<]*)<"#)).expect("regex");
    let text = &re
        .captures(section)
        .unwrap_or_else(|| panic!("data-field {name} in the DOM"))[1];
    text.parse()
        .unwrap_or_else(|_| panic!("{name}: {text:?} is a number"))
}

#[test]
fn the_html_report_renders_in_chromium_with_the_numbers_of_the_json_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, scan("html")).expect("write page");
    let list: Value = serde_json::from_str(&scan("json")).expect("JSON");
    let (dom, log) = render(&page);
    assert!(page_problems(&log).is_empty(), "{:#?}", page_problems(&log));
    // Self-contained: nothing is fetched.
    for external in ["src=", "href=", "url(", "@import"] {
        assert!(!dom.contains(external), "{external} in the page");
    }
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for item in items {
        let name = format!(
            "{}/{}",
            item["metadata"]["namespace"].as_str().expect("namespace"),
            item["metadata"]["name"].as_str().expect("name")
        );
        let start = dom
            .find(&format!("data-target=\"{name}\""))
            .unwrap_or_else(|| panic!("section of {name}"));
        let end = dom[start..]
            .find("</section>")
            .map_or(dom.len(), |e| start + e);
        let section = &dom[start..end];
        let status = &item["status"];
        let number = |v: &Value| v.as_f64().expect("a number");
        assert!(
            (field(section, "score") - number(&status["score"])).abs() < 0.005,
            "{name}"
        );
        assert!((field(section, "maxScore") - number(&status["maxScore"])).abs() < 0.005);
        assert!((field(section, "percentage") - number(&status["percentage"])).abs() < 0.005);
        assert_eq!(
            field(section, "evaluatedResources"),
            number(&status["evaluatedResources"])
        );
        // One row per category and per action to address, with the same points.
        for c in status["categories"].as_array().expect("categories") {
            let row_at = section
                .find(&format!(
                    "data-category=\"{}\"",
                    c["category"].as_str().expect("category")
                ))
                .expect("category row");
            assert!((field(&section[row_at..], "score") - number(&c["score"])).abs() < 0.005);
        }
        let listed = status["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["state"] != "Completed" && a["state"] != "NotApplicable");
        for a in listed {
            let row_at = section
                .find(&format!(
                    "data-action=\"{}\"",
                    a["name"].as_str().expect("name")
                ))
                .unwrap_or_else(|| panic!("row of {}", a["name"]));
            let row = &section[row_at..];
            assert!((field(row, "pointsToGain") - number(&a["pointsToGain"])).abs() < 0.005);
            assert_eq!(field(row, "compliant"), number(&a["compliant"]));
            assert_eq!(field(row, "applicable"), number(&a["applicable"]));
        }
    }
}

#[test]
fn the_html_report_shows_the_security_controls_of_a_controls_model_target() {
    let model = ["--model", "SecurityControls"];
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, scan_with("html", &model)).expect("write page");
    let list: Value = serde_json::from_str(&scan_with("json", &model)).expect("JSON");
    let (dom, log) = render(&page);
    assert!(page_problems(&log).is_empty(), "{:#?}", page_problems(&log));
    let mut rows = 0;
    for item in list["items"].as_array().expect("items") {
        let name = format!(
            "{}/{}",
            item["metadata"]["namespace"].as_str().expect("namespace"),
            item["metadata"]["name"].as_str().expect("name")
        );
        let start = dom
            .find(&format!("data-target=\"{name}\""))
            .unwrap_or_else(|| panic!("section of {name}"));
        let end = dom[start..]
            .find("</section>")
            .map_or(dom.len(), |e| start + e);
        let section = &dom[start..end];
        for c in item["status"]["controls"].as_array().expect("controls") {
            let at = section
                .find(&format!(
                    "data-control=\"{}\"",
                    c["name"].as_str().expect("name")
                ))
                .unwrap_or_else(|| panic!("row of control {}", c["name"]));
            let row = &section[at..];
            let number = |v: &Value| v.as_f64().expect("a number");
            assert!((field(row, "score") - number(&c["score"])).abs() < 0.005);
            assert!((field(row, "maxScore") - number(&c["maxScore"])).abs() < 0.005);
            assert_eq!(field(row, "healthy"), number(&c["healthy"]));
            assert_eq!(field(row, "applicable"), number(&c["applicable"]));
            rows += 1;
        }
    }
    assert!(
        rows >= 12,
        "two targets with the built-in controls: {rows} rows"
    );
}

/// The console check is not blind: a page that logs an error is caught.
#[test]
fn a_console_error_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><script>console.error('boom'); undefinedFn();</script>",
    )
    .expect("write");
    let (_, log) = render(&page);
    assert!(!page_problems(&log).is_empty(), "{log}");
}
