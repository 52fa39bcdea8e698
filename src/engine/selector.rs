//! Label selectors, with the API server's semantics (`{}` matches everything).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Labels a selector reads: an object's ([`Labels`](super::resource::Labels)) or a
/// definition's map.
pub trait LabelLookup {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Whether `labels` match `selector`. An unknown operator matches nothing (fail closed) and is
/// reported by [`validate`].
pub fn matches(selector: &LabelSelector, labels: &impl LabelLookup) -> bool {
    let labels_ok = selector.match_labels.as_ref().is_none_or(|want| {
        want.iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
    });
    let exprs_ok = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or(&[]);
            let listed = |v: &str| values.iter().any(|x| x == v);
            match e.operator.as_str() {
                "In" => labels.label(&e.key).is_some_and(listed),
                "NotIn" => labels.label(&e.key).is_none_or(|v| !listed(v)),
                "Exists" => labels.label(&e.key).is_some(),
                "DoesNotExist" => labels.label(&e.key).is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// Problems in a selector, e.g. `matchExpressions[0].operator: unknown operator "Is"`.
pub fn validate(selector: &LabelSelector) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let n = e.values.as_ref().map_or(0, Vec::len);
        match e.operator.as_str() {
            "In" | "NotIn" if n == 0 => problems.push(format!(
                "matchExpressions[{i}].values: must be non-empty for {}",
                e.operator
            )),
            "Exists" | "DoesNotExist" if n > 0 => problems.push(format!(
                "matchExpressions[{i}].values: must be empty for {}",
                e.operator
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => problems.push(format!(
                "matchExpressions[{i}].operator: unknown operator {other:?}"
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn operators() {
        let sel = LabelSelector {
            match_labels: Some([("team".to_string(), "a".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into()]),
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(matches(&sel, &labels(&[("team", "a"), ("env", "prod")])));
        assert!(!matches(&sel, &labels(&[("team", "a"), ("env", "dev")])));
        assert!(!matches(
            &sel,
            &labels(&[("team", "a"), ("env", "prod"), ("legacy", "")])
        ));
        assert!(!matches(&sel, &labels(&[("env", "prod")])));
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Is".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(!matches(&bad, &labels(&[("x", "1")])));
        assert_eq!(
            validate(&bad),
            vec!["matchExpressions[0].operator: unknown operator \"Is\"".to_string()]
        );
    }
}
