//! User-supplied text made safe for the line formats securescore writes (the terminal table,
//! stderr, the Prometheus exposition): one rule, shared by every place that shows input.

/// Control characters (ANSI escapes, newlines, carriage returns, NUL, DEL, the C1 range) shown
/// escaped as Rust does (`\u{1b}`, `\n`, `\r`, `\0`), so input can neither forge a line nor
/// recolour one. Text without control characters is returned as it is.
pub fn safe(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
