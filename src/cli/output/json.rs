//! `--format json`: what `kubectl get securescoretargets -o json` would show in a cluster.

use super::Scored;

pub fn render(scored: &[Scored]) -> Result<String, serde_json::Error> {
    let items = scored
        .iter()
        .map(|s| {
            let mut target = s.target.clone();
            target.status = Some(s.evaluation.status.clone());
            serde_json::to_value(target)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let list = serde_json::json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        "kind": "SecureScoreTargetList",
        "items": items,
    });
    let mut text = serde_json::to_string_pretty(&list)?;
    text.push('\n');
    Ok(text)
}
