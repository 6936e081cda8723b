//! The flow-wide checks: retention shorter than the catch-up (a warning),
//! and target topics written from two source topics (refused).

use ferry_config::{collisions, Flow, FlowId, Topology};
use ferry_supervisor::{topics, EngineError};

use super::inventory::SourceTopic;
use super::{TopicPlan, Warning, WarningKind};
use crate::units::{format_duration, format_ms, format_rate};

/// Topics with a backlog whose source retention is shorter than the
/// estimated catch-up time at `throughput` bytes per second.
pub fn retention(
    flow: &Flow,
    topics: &[TopicPlan],
    catch_up_seconds: f64,
    throughput: f64,
) -> Vec<Warning> {
    topics
        .iter()
        .filter_map(|t| {
            let ms = t.retention_ms?;
            (t.backlog.records > 0 && catch_up_seconds * 1000.0 > ms as f64).then(|| Warning {
                kind: WarningKind::Retention,
                message: format!(
                    "{}: retention.ms on {} is {ms} ({}), shorter than the estimated catch-up time of {} at {}: records may be deleted before they are copied",
                    t.source_topic,
                    flow.source,
                    format_ms(ms),
                    format_duration(catch_up_seconds),
                    format_rate(throughput)
                ),
            })
        })
        .collect()
}

/// A source topic and the flow copying it, as a plan names writers.
pub type Writer = (FlowId, String);

/// Refuses a flow that would write one target topic from two source
/// topics: two of its own (rename rules matching more than meant) or one of
/// its own and one another flow (`others`) copies into the same target.
/// Merging them would interleave unrelated records under one name.
pub fn refuse_merges(
    flow: &Flow,
    selected: &[SourceTopic],
    others: Vec<(Writer, String)>,
) -> Result<(), EngineError> {
    let own = selected
        .iter()
        .map(|t| ((flow.id(), t.name.clone()), flow.remote_topic(&t.name)));
    // This flow's topics come first, so every collision that involves it
    // names one of them first; those between other flows are theirs.
    let Some(c) = collisions(own.chain(others))
        .into_iter()
        .find(|c| c.first.0 == flow.id())
    else {
        return Ok(());
    };
    let name = |(id, topic): &Writer| format!("{topic} (flow {id})");
    Err(topics::merge_refused(
        &flow.target,
        &c.target_topic,
        &name(&c.first),
        &name(&c.second),
    ))
}

/// The target topics other flows into the same target would write, with
/// their flow and source topic (for [`refuse_merges`]).
pub async fn other_flows_remotes(
    topology: &Topology,
    flow: &Flow,
) -> Result<Vec<(Writer, String)>, EngineError> {
    let mut out = Vec::new();
    for other in topology
        .flows
        .iter()
        .filter(|f| f.enabled && f.target == flow.target && f.id() != flow.id())
    {
        let (source, _) = crate::clusters(topology, other)?;
        let names = crate::list_topics(&crate::admin(source, "ferry-plan")?, source).await?;
        for t in names.keys().filter(|t| topics::selects(other, t)) {
            out.push(((other.id(), t.clone()), other.remote_topic(t)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{flow, topic_plan};
    use super::*;

    #[test]
    fn retention_is_warned_about_only_when_catch_up_takes_longer() {
        let f = flow("");
        let mut short = topic_plan("short", &[(0, 0, 10)]);
        short.retention_ms = Some(60_000);
        short.backlog.records = 10;
        let mut long = topic_plan("long", &[(0, 0, 10)]);
        long.retention_ms = Some(3_600_000);
        long.backlog.records = 10;
        let mut idle = topic_plan("idle", &[(0, 10, 10)]);
        idle.retention_ms = Some(1);
        let compacted = topic_plan("compacted", &[(0, 0, 10)]);
        let topics = [short, long, idle, compacted];
        let w = retention(&f, &topics, 120.0, 50e6);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].kind, WarningKind::Retention);
        assert!(
            w[0].message
                .starts_with("short: retention.ms on a is 60000"),
            "{}",
            w[0].message
        );
    }

    fn source(name: &str) -> SourceTopic {
        SourceTopic {
            name: name.into(),
            partitions: 1,
        }
    }

    #[test]
    fn a_target_topic_written_from_two_sources_is_refused_naming_both() {
        let f = flow("rename = [{ from = \"legacy\\\\.(.*)\", to = \"$1\" }]");
        let renamed = [source("legacy.orders"), source("payments")];
        assert!(refuse_merges(&f, &renamed, Vec::new()).is_ok());

        let merged = [source("legacy.orders"), source("orders")];
        let e = refuse_merges(&f, &merged, Vec::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster b, topic a.orders: would be written from two source topics, legacy.orders (flow a->b) and orders (flow a->b): neither is copied; change flows[].rename or topics so that every target topic has one source"
        );

        let c_to_b: FlowId = "c->b".parse().unwrap();
        let other = |t: &str, remote: &str| ((c_to_b.clone(), t.to_string()), remote.to_string());
        let e = refuse_merges(&f, &renamed, vec![other("x", "a.orders")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("legacy.orders (flow a->b) and x (flow c->b)"),
            "{e}"
        );
        // Two other flows colliding is theirs to report.
        let theirs = vec![other("x", "y"), other("z", "y")];
        assert!(refuse_merges(&f, &renamed, theirs).is_ok());
    }
}
