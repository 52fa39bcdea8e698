//! Points in integer ten-thousandths, rounded once by largest remainder so that every
//! breakdown adds up exactly.

use crate::api::Scoring;

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
