//! Points in integer ten-thousandths, rounded once by largest remainder so that every
//! breakdown adds up exactly.

use super::check::Verdict;
use crate::api::{ResolutionState, Scoring};
use std::collections::BTreeMap;

/// Ten-thousandths of a point per point.
pub const UNIT: u64 = 10_000;

/// Split `total` over buckets in proportion to `weights`, by largest remainder: the parts are
/// whole numbers that always sum to `total` (ties go to the earlier bucket).
pub fn apportion<const N: usize>(total: u64, weights: [u64; N]) -> [u64; N] {
    let sum: u64 = weights.iter().sum();
    let mut parts = [0u64; N];
    if sum == 0 {
        return parts;
    }
    let mut remainders = [(0u64, 0usize); N];
    for (i, w) in weights.iter().enumerate() {
        let exact = u128::from(total) * u128::from(*w);
        parts[i] = (exact / u128::from(sum)) as u64;
        remainders[i] = ((exact % u128::from(sum)) as u64, i);
    }
    let mut leftover = total - parts.iter().sum::<u64>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if leftover == 0 {
            break;
        }
        parts[i] += 1;
        leftover -= 1;
    }
    parts
}

/// How many applicable resources of one action fall in each bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub compliant: u64,
    /// Resolved by a third party or an alternate control.
    pub mitigated: u64,
    /// RiskAccepted.
    pub accepted: u64,
    /// Planned.
    pub planned: u64,
    /// NonCompliant or Error with no resolution.
    pub unresolved: u64,
}

impl Counts {
    pub fn applicable(&self) -> u64 {
        self.compliant + self.mitigated + self.accepted + self.planned + self.unresolved
    }
}

/// The applicable resources of one action by result, as `securescore_action_resources{result}`
/// exports them: a partition (the four add up to the applicable resources). `exempt` holds the
/// resources resolved by RiskAccepted, ResolvedThirdParty or ResolvedAlternate; Planned ones
/// are still to address and count as `noncompliant` (or `error`), as in the status rows, so
/// that `noncompliant + error` is the row's `nonCompliant`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Partition {
    pub compliant: u64,
    pub noncompliant: u64,
    pub error: u64,
    pub exempt: u64,
}

impl Partition {
    /// In the order of the metric's label values: compliant, noncompliant, error, exempt.
    pub fn as_array(&self) -> [u64; 4] {
        [self.compliant, self.noncompliant, self.error, self.exempt]
    }
}

/// One action's running tally of its applicable resources: the counts that score it, the
/// result partition, its errors and how often each error message occurs. The full and the
/// incremental evaluation keep it through the same [`Tally::add`] / [`Tally::remove`], so the
/// numbers they report cannot drift apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: Counts,
    pub resources: Partition,
    /// Resources whose check could not be evaluated (whatever their resolution).
    pub errors: u64,
    /// Resources resolved by an alternate control (the state is ResolvedAlternate if any).
    pub alternate: u64,
    /// Error message → how many resources fail with it (for the dominant error).
    pub error_messages: BTreeMap<String, u64>,
}

impl Tally {
    /// Count one resource with its verdict and the resolution deciding it (None: unresolved;
    /// ignored for a compliant resource, which no declaration can touch).
    pub fn add(&mut self, verdict: &Verdict, resolution: Option<ResolutionState>) {
        self.apply(verdict, resolution, true);
    }

    /// Take back exactly what [`Tally::add`] counted for the same verdict and resolution.
    pub fn remove(&mut self, verdict: &Verdict, resolution: Option<ResolutionState>) {
        self.apply(verdict, resolution, false);
    }

    fn apply(&mut self, verdict: &Verdict, resolution: Option<ResolutionState>, add: bool) {
        let step = |n: &mut u64| {
            if add {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        let error = match verdict {
            Verdict::Error { message } => {
                step(&mut self.errors);
                let n = self.error_messages.entry(message.clone()).or_default();
                step(n);
                if *n == 0 {
                    self.error_messages.remove(message);
                }
                true
            }
            _ => false,
        };
        if verdict.is_compliant() {
            step(&mut self.counts.compliant);
            step(&mut self.resources.compliant);
            return;
        }
        let still_to_address = match resolution {
            None => {
                step(&mut self.counts.unresolved);
                true
            }
            Some(ResolutionState::Planned) => {
                step(&mut self.counts.planned);
                true
            }
            Some(ResolutionState::RiskAccepted) => {
                step(&mut self.counts.accepted);
                false
            }
            Some(ResolutionState::ResolvedAlternate) => {
                step(&mut self.counts.mitigated);
                step(&mut self.alternate);
                false
            }
            Some(ResolutionState::ResolvedThirdParty) => {
                step(&mut self.counts.mitigated);
                false
            }
        };
        step(match (still_to_address, error) {
            (false, _) => &mut self.resources.exempt,
            (true, true) => &mut self.resources.error,
            (true, false) => &mut self.resources.noncompliant,
        });
    }
}

/// The state of an action (or a security control) from its applicable resources, as the SPEC
/// orders them (first match wins); `alternate` counts resources resolved by an alternate
/// control (among `counts.mitigated`).
pub fn state_of(counts: &Counts, alternate: u64) -> crate::api::ActionState {
    use crate::api::ActionState;
    let applicable = counts.applicable();
    if applicable == 0 {
        ActionState::NotApplicable
    } else if counts.compliant == applicable {
        ActionState::Completed
    } else if counts.unresolved > 0 {
        ActionState::ToAddress
    } else if counts.planned > 0 {
        ActionState::Planned
    } else if counts.accepted > 0 {
        ActionState::RiskAccepted
    } else if alternate > 0 {
        ActionState::ResolvedAlternate
    } else {
        ActionState::ResolvedThirdParty
    }
}

/// Where one action's (or one target's) points are, in ten-thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Points {
    pub achieved: u64,
    pub mitigated: u64,
    pub accepted: u64,
    pub planned: u64,
    pub unresolved: u64,
}

impl Points {
    pub fn score(&self) -> u64 {
        self.achieved + self.mitigated
    }
    pub fn to_address(&self) -> u64 {
        self.planned + self.unresolved
    }
    pub fn max(&self) -> u64 {
        self.score() + self.accepted + self.to_address()
    }
    pub fn add(&mut self, o: &Points) {
        self.achieved += o.achieved;
        self.mitigated += o.mitigated;
        self.accepted += o.accepted;
        self.planned += o.planned;
        self.unresolved += o.unresolved;
    }

    /// All of `max_points` still to gain (an action whose state is Unknown).
    pub fn unknown(max_points: u32) -> Points {
        Points {
            unresolved: u64::from(max_points) * UNIT,
            ..Default::default()
        }
    }

    /// The points of one action with `counts` applicable resources (at least one).
    pub fn of(max_points: u32, scoring: Scoring, c: Counts) -> Points {
        let total = u64::from(max_points) * UNIT;
        match scoring {
            Scoring::Proportional => {
                let [achieved, mitigated, accepted, planned, unresolved] = apportion(
                    total,
                    [
                        c.compliant,
                        c.mitigated,
                        c.accepted,
                        c.planned,
                        c.unresolved,
                    ],
                );
                Points {
                    achieved,
                    mitigated,
                    accepted,
                    planned,
                    unresolved,
                }
            }
            // All of a Binary action's points fall into one bucket.
            Scoring::Binary => {
                let mut p = Points::default();
                let bucket = if c.unresolved > 0 {
                    &mut p.unresolved
                } else if c.planned > 0 {
                    &mut p.planned
                } else if c.accepted > 0 {
                    &mut p.accepted
                } else if c.mitigated > 0 {
                    &mut p.mitigated
                } else {
                    &mut p.achieved
                };
                *bucket = total;
                p
            }
        }
    }
}

/// Ten-thousandths as a number with 2 decimals (half up).
pub fn two_decimals(units: u64) -> f64 {
    ((units + 50) / 100) as f64 / 100.0
}

/// Round several parts to hundredths of a point by largest remainder, so that they still add
/// up to their (whole-point) sum.
pub fn hundredths<const N: usize>(parts: [u64; N]) -> [f64; N] {
    let total_units: u64 = parts.iter().sum();
    let rounded_total = (total_units + 50) / 100;
    let shares = apportion(rounded_total, parts);
    shares.map(|s| s as f64 / 100.0)
}

/// `100 × score ÷ max`, in full precision.
pub fn percentage(score: u64, max: u64) -> Option<f64> {
    (max > 0).then(|| 100.0 * score as f64 / max as f64)
}

/// Round to 2 decimals for status.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_sums_exactly_and_prefers_largest_remainders() {
        assert_eq!(
            apportion(90_000, [2, 0, 0, 0, 1]),
            [60_000, 0, 0, 0, 30_000]
        );
        assert_eq!(apportion(10, [1, 1, 1]), [4, 3, 3]);
        assert_eq!(apportion(100, [1, 2]), [33, 67]);
        for total in [1u64, 7, 99_991, 1_000_000] {
            let parts = apportion(total, [3, 5, 7, 11, 13]);
            assert_eq!(parts.iter().sum::<u64>(), total);
        }
        assert_eq!(apportion(5, [0, 0]), [0, 0]);
    }

    #[test]
    fn hundredths_keep_the_sum() {
        // 10 points over three equal thirds: 3.34 + 3.33 + 3.33 = 10.00
        let parts = apportion(10 * UNIT, [1, 1, 1]);
        let h = hundredths(parts);
        assert_eq!(h, [3.34, 3.33, 3.33]);
        assert!((h.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn binary_puts_everything_in_one_bucket() {
        let c = Counts {
            compliant: 2,
            unresolved: 1,
            ..Default::default()
        };
        assert_eq!(
            Points::of(9, Scoring::Binary, c),
            Points {
                unresolved: 90_000,
                ..Default::default()
            }
        );
        let c = Counts {
            compliant: 2,
            mitigated: 1,
            ..Default::default()
        };
        assert_eq!(
            Points::of(9, Scoring::Binary, c),
            Points {
                mitigated: 90_000,
                ..Default::default()
            }
        );
        let c = Counts {
            compliant: 2,
            accepted: 1,
            ..Default::default()
        };
        assert_eq!(
            Points::of(9, Scoring::Binary, c),
            Points {
                accepted: 90_000,
                ..Default::default()
            }
        );
    }
}
