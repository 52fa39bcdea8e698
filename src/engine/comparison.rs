//! Comparison within a benchmark group: own rank, percentile and the group median — never
//! another target's number.

use crate::api::Comparison;

/// Smallest group (targets in distinct namespaces) for which a comparison is published.
pub const MIN_GROUP_SIZE: usize = 5;

/// A member of a benchmark group.
#[derive(Debug, Clone)]
pub struct Member {
    pub namespace: String,
    pub name: String,
    pub percentage: f64,
}

/// The comparison for `me` within `group`, or None when the group has fewer than
/// [`MIN_GROUP_SIZE`] distinct namespaces. Members without a percentage are left out by the caller.
pub fn compare(group_name: &str, members: &[Member], me: &Member) -> Option<Comparison> {
    let mut namespaces: Vec<&str> = members.iter().map(|m| m.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    if namespaces.len() < MIN_GROUP_SIZE {
        return None;
    }
    let mut values: Vec<f64> = members.iter().map(|m| m.percentage).collect();
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let better = values.iter().filter(|v| **v > me.percentage).count();
    let at_or_below = values.iter().filter(|v| **v <= me.percentage).count();
    Some(Comparison {
        group: group_name.to_string(),
        group_size: n as u64,
        rank: better as u64 + 1,
        percentile: super::score::round2(100.0 * at_or_below as f64 / n as f64),
        median_percentage: super::score::round2(median),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ns: &str, p: f64) -> Member {
        Member {
            namespace: ns.into(),
            name: "t".into(),
            percentage: p,
        }
    }

    #[test]
    fn published_only_for_five_distinct_namespaces() {
        let four: Vec<_> = ["a", "b", "c", "d", "d"]
            .iter()
            .zip([10.0, 20.0, 30.0, 40.0, 50.0])
            .map(|(n, p)| m(n, p))
            .collect();
        assert!(compare("g", &four, &four[0]).is_none());
        let five: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .zip([10.0, 20.0, 30.0, 40.0, 50.0])
            .map(|(n, p)| m(n, p))
            .collect();
        let c = compare("g", &five, &five[3]).unwrap();
        assert_eq!(
            (c.rank, c.group_size, c.percentile, c.median_percentage),
            (2, 5, 80.0, 30.0)
        );
    }
}
