//! `spec.interval`: the text a target declares, the duration it means, and the default.

use super::SecureScoreTarget;
use std::time::Duration;

/// The shortest interval honoured: a shorter one would evaluate a target non-stop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// `5m`, `1h30m`, `90s`, `500ms` → a duration (at least [`MIN_INTERVAL`]); None for text that
/// is not a sequence of `<digits><unit>` with unit ms, s, m or h.
pub fn parse_interval(text: &str) -> Option<Duration> {
    parse_units(text, false).map(|d| d.max(MIN_INTERVAL))
}

/// A task's period (`spec.check.attestation.every`): the interval format plus days, e.g.
/// `90d`, `30d12h`, `365d`; no floor. None for text that is not `<digits><unit>` repeated
/// with unit ms, s, m, h or d.
pub fn parse_period(text: &str) -> Option<Duration> {
    parse_units(text, true)
}

/// A sequence of `<digits><unit>` (ms, s, m, h, and d when `days`), summed.
fn parse_units(text: &str, days: bool) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if days && rest.starts_with('d') {
            (Duration::from_secs(86_400), 1)
        } else {
            return None;
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

impl SecureScoreTarget {
    /// How often the target is evaluated in full: `spec.interval`, else the default (`5m`; an
    /// interval that does not parse falls back to the default as well).
    pub fn interval(&self) -> Duration {
        self.spec
            .interval
            .as_deref()
            .and_then(parse_interval)
            .or_else(|| parse_interval(super::DEFAULT_INTERVAL))
            .unwrap_or(Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_a_floor() {
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_interval("1s"),
            Some(MIN_INTERVAL),
            "at least 10 seconds"
        );
        assert_eq!(parse_interval("5x"), None);
        assert_eq!(parse_interval(""), None);
        assert_eq!(
            parse_interval("99999999999h"),
            None,
            "overflow is not a duration"
        );
    }

    #[test]
    fn periods_take_days_and_intervals_do_not() {
        assert_eq!(parse_period("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(
            parse_period("1d12h"),
            Some(Duration::from_secs(86_400 + 12 * 3600))
        );
        assert_eq!(
            parse_period("30s"),
            Some(Duration::from_secs(30)),
            "no floor"
        );
        assert_eq!(parse_period("90days"), None);
        assert_eq!(parse_period("d"), None);
        assert_eq!(parse_interval("1d"), None, "spec.interval has no day unit");
    }

    #[test]
    fn a_missing_or_broken_interval_means_the_default() {
        let mut t = SecureScoreTarget::new("t", Default::default());
        assert_eq!(t.interval(), Duration::from_secs(300));
        t.spec.interval = Some("soon".into());
        assert_eq!(t.interval(), Duration::from_secs(300));
        t.spec.interval = Some("2m".into());
        assert_eq!(t.interval(), Duration::from_secs(120));
    }
}
