//! User-supplied text made safe for the line formats securescore writes (the terminal table,
//! stderr, the Prometheus exposition): one rule, shared by every place that shows input.

use std::borrow::Cow;

/// Whether `c` must not reach a line format raw: control characters (ANSI escapes, newlines,
/// carriage returns, NUL, DEL, the C1 range), the Unicode line and paragraph separators (a new
/// line to some viewers), and the bidirectional formatting characters, which reorder what a
/// terminal or a browser shows ("Trojan Source", CVE-2021-42574).
pub fn shown_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The characters [`shown_escaped`] names shown escaped as Rust does (`\u{1b}`, `\n`, `\r`, `\u{0}`,
/// `\u{202e}`), so input can neither forge a line, recolour one, nor reorder one. Text without
/// such characters is returned as it is.
pub fn safe(text: &str) -> String {
    escape(text, shown_escaped).into_owned()
}

/// A Prometheus label value: [`safe`], and a backslash doubled as well, so the shown text is
/// unambiguous: two different values (ESC, and the six characters `\u{1b}`) never become one
/// series. Borrowed when nothing needs escaping (every scrape passes every label through it).
pub fn label_value(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\\' || shown_escaped(c))
}

fn escape(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_returned_as_it_is() {
        assert_eq!(safe("shop/web-1 ünïcode"), "shop/web-1 ünïcode");
        assert_eq!(safe(r"C:\dir"), r"C:\dir");
        assert_eq!(label_value("PCI DSS 4.0"), "PCI DSS 4.0");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(safe("a\u{1b}[31mb\r\n\0"), r"a\u{1b}[31mb\r\n\u{0}");
        assert_eq!(safe("del\u{7f} c1\u{85}"), r"del\u{7f} c1\u{85}");
    }

    #[test]
    fn bidi_overrides_and_unicode_line_separators_are_escaped() {
        assert_eq!(
            safe("admin\u{202e}nimda\u{2066}x\u{2069}"),
            r"admin\u{202e}nimda\u{2066}x\u{2069}"
        );
        assert_eq!(safe("one\u{2028}two\u{2029}"), r"one\u{2028}two\u{2029}");
        assert_eq!(safe("\u{200f}\u{061c}"), r"\u{200f}\u{61c}");
    }

    #[test]
    fn label_values_of_different_texts_stay_different() {
        let esc = label_value("x\u{1b}y");
        let literal = label_value(r"x\u{1b}y");
        assert_eq!(esc, r"x\u{1b}y");
        assert_eq!(literal, r"x\\u{1b}y");
        assert_ne!(esc, literal);
        // a backslash alone is doubled even when nothing else needs escaping
        assert_eq!(label_value(r"a\b"), r"a\\b");
    }
}
