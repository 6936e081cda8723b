//! Reading what a Ferry daemon serves: Prometheus samples from `/metrics`
//! and topic lists from the `/status` document.

/// The value of a Prometheus sample whose line starts with `series`
/// (name plus labels, as exported), if present.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The `topic` names listed under `list` of every flow of a `/status`
/// document.
fn flow_topics(status: &str, list: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(status).expect("/status is JSON");
    doc["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f[list].as_array().into_iter().flatten())
        .filter_map(|t| t["topic"].as_str().map(str::to_string))
        .collect()
}

/// The source topics a `/status` document shows as replicated (not those
/// only listed as cut over).
pub fn replicated_topics(status: &str) -> Vec<String> {
    flow_topics(status, "topics")
}

/// The source topics a `/status` document lists as cut over.
pub fn cut_over_topics(status: &str) -> Vec<String> {
    flow_topics(status, "cut_over")
}
