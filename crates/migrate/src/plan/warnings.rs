//! The flow-wide warnings: retention shorter than the catch-up, and target
//! topics another flow writes too.

use std::collections::BTreeMap;

use ferry_config::{Flow, Topology};
use ferry_supervisor::{topics, EngineError};

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

/// Target topics that other flows (`others`: target topic name to the
/// source topics and flows that write it) would write too.
pub fn collisions(
    flow: &Flow,
    topics: &[TopicPlan],
    others: &BTreeMap<String, Vec<String>>,
) -> Vec<Warning> {
    topics
        .iter()
        .filter_map(|t| {
            let from = others.get(&t.target_topic)?;
            Some(Warning {
                kind: WarningKind::Collision,
                message: format!(
                    "{} on {} would receive {} (this flow) and {}",
                    t.target_topic,
                    flow.target,
                    t.source_topic,
                    from.join(", ")
                ),
            })
        })
        .collect()
}

/// Target topic names other flows into the same target would write, with
/// their flow and source topic (for [`collisions`]).
pub async fn other_flows_remotes(
    topology: &Topology,
    flow: &Flow,
) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for other in topology
        .flows
        .iter()
        .filter(|f| f.enabled && f.target == flow.target && f.id() != flow.id())
    {
        let (source, _) = crate::clusters(topology, other)?;
        let names = crate::list_topics(&crate::admin(source, "ferry-plan")?, source).await?;
        for t in names.keys().filter(|t| topics::selects(other, t)) {
            out.entry(other.remote_topic(t))
                .or_default()
                .push(format!("{t} (flow {})", other.id()));
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

    #[test]
    fn collisions_name_every_other_writer() {
        let f = flow("");
        let topics = [topic_plan("orders", &[]), topic_plan("payments", &[])];
        let others = BTreeMap::from([(
            "a.orders".to_string(),
            vec!["orders (flow c->b)".to_string()],
        )]);
        let w = collisions(&f, &topics, &others);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].message,
            "a.orders on b would receive orders (this flow) and orders (flow c->b)"
        );
    }
}
