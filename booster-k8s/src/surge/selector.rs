//! Label selectors: whether one selects a pod's labels, and its query-string form.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `sel` selects `labels` (an empty selector selects everything, as for budgets).
pub(crate) fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let got = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => got.is_some_and(|v| values.contains(v)),
            "NotIn" => got.is_none_or(|v| !values.contains(v)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            // An operator the apiserver would not have accepted: selects nothing.
            _ => false,
        }
    });
    by_labels && by_expressions
}

/// `sel` as a `labelSelector` query (`None` for an operator we do not know).
pub(crate) fn query(sel: &LabelSelector) -> Option<String> {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return None,
        });
    }
    Some(parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_expressions_both_select() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "solo")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["web".into(), "api".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selects(&sel, &labels(&[("app", "solo"), ("tier", "api")])));
        assert!(!selects(&sel, &labels(&[("app", "solo"), ("tier", "db")])));
        assert!(!selects(
            &sel,
            &labels(&[("app", "solo"), ("tier", "web"), ("canary", "1")])
        ));
        assert!(!selects(&sel, &labels(&[("tier", "web")])));
        assert_eq!(
            query(&sel).as_deref(),
            Some("app=solo,tier in (web,api),!canary")
        );
        assert!(selects(&LabelSelector::default(), &labels(&[])));
    }
}
