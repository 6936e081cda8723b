//! Topic deletion propagation (`flows[].propagate_deletes = true`): which
//! target topics may be deleted because their source topic was deleted.
//! The rules live here, shared by the daemon (`flow/delete_sync.rs`, which
//! adds the grace period and acts) and `ferry plan` (which only shows).
//!
//! A target topic is an *orphan* of a flow when:
//! - it is the flow's name for a source topic the flow selects (its topic
//!   filters, cut-over topics excluded, internal and came-back topics
//!   never), so a topic excluded by the filters is never touched;
//! - there is evidence the flow mirrored that source topic (`known`): the
//!   daemon counts only what it saw on the source cluster since it started
//!   (the same cluster, by id); `ferry plan`, which only shows, uses the
//!   saved progress;
//! - the source topic is missing from a *successful* listing of the source
//!   (one that reached a broker; a failed one says nothing);
//! - the target topic exists and is not one of Ferry's, Kafka's or
//!   MirrorMaker 2's own ([`protected`]).
//!
//! An orphan is still kept while anything else writes to it ([`writers`]):
//! another source topic of the same flow, or a source topic of another
//! flow of the topology (enabled or not) into the same cluster, that exists
//! and is mapped onto the same name.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_config::{Cluster, Flow, FlowId, Topology};
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaRespErr;

use crate::clients::{client_config, ClusterContext, Role};
use crate::{topics, EngineError, Place};

/// A target topic whose source topic is gone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Orphan {
    /// The deleted source topic.
    pub source_topic: String,
    /// Its name on the target, which would be deleted.
    pub target_topic: String,
}

/// A source topic another flow copies into the same target cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherWriter {
    /// The flow copying it.
    pub flow: FlowId,
    /// The source topic, which exists.
    pub source_topic: String,
    /// Its name on the target.
    pub target_topic: String,
}

/// True for a target topic that is never deleted, whatever a naming maps to
/// it: Kafka's, MirrorMaker 2's and Ferry's internal topics (progress,
/// slots, cut-over state, checkpoints, offset syncs, heartbeats, every
/// `ferry-` topic) and the dead-letter topics of the flows into `cluster`.
pub fn protected(topology: &Topology, cluster: &str, topic: &str) -> bool {
    let into = || topology.flows.iter().filter(|f| f.target == cluster);
    topic.starts_with("ferry-")
        || topics::is_internal(topic, ".")
        || into().any(|f| topics::is_internal(topic, &f.topic_separator))
        || into().any(|f| {
            matches!(&f.on_record_error, ferry_config::OnRecordError::DeadLetter { topic: dl } if dl == topic)
        })
}

/// The orphans of `flow`: the source topics in `known` (the evidence that
/// the flow mirrored them) that the flow selects, that are missing from
/// `source` (a successful listing of the source cluster, every name in it),
/// and whose target topic exists in `target` and is not [`protected`].
pub fn orphans<'a>(
    topology: &Topology,
    flow: &Flow,
    known: impl IntoIterator<Item = &'a str>,
    source: &BTreeSet<String>,
    target: &BTreeSet<String>,
) -> Vec<Orphan> {
    let mut out: Vec<Orphan> = known
        .into_iter()
        .filter(|t| topics::selects(flow, t) && !source.contains(*t))
        .map(|t| Orphan {
            source_topic: t.to_string(),
            target_topic: flow.remote_topic(t),
        })
        .filter(|o| target.contains(&o.target_topic))
        .filter(|o| !protected(topology, &flow.target, &o.target_topic))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Who else writes `orphan`'s target topic, one line each: source topics
/// of `flow` in `source` (a listing) that the flow copies to the same name,
/// and `others` with that name. Empty when nothing does.
pub fn writers(
    flow: &Flow,
    orphan: &Orphan,
    source: &BTreeSet<String>,
    others: &[OtherWriter],
) -> Vec<String> {
    let own = source
        .iter()
        .filter(|t| topics::selects(flow, t) && flow.remote_topic(t) == orphan.target_topic)
        .map(|t| format!("source topic {t} of flow {}", flow.id()));
    let theirs = others
        .iter()
        .filter(|w| w.target_topic == orphan.target_topic)
        .map(|w| format!("source topic {} of flow {}", w.source_topic, w.flow));
    own.chain(theirs).collect()
}

/// The source topics every other flow of `topology` into `flow`'s target
/// cluster copies, enabled or not (a disabled flow may be enabled again and
/// would recreate the topic from its source): each other flow's source
/// cluster is listed (`list`), and a listing that fails fails the whole
/// answer, since what it would have said is unknown.
pub async fn other_writers<F, Fut>(
    topology: &Topology,
    flow: &Flow,
    mut list: F,
) -> Result<Vec<OtherWriter>, EngineError>
where
    F: FnMut(Cluster) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeSet<String>, EngineError>>,
{
    let mut out = Vec::new();
    for other in topology
        .flows
        .iter()
        .filter(|f| f.target == flow.target && f.id() != flow.id())
    {
        let cluster = topology.cluster(&other.source).cloned().ok_or_else(|| {
            EngineError::Internal(format!(
                "flow {} names a cluster missing from the validated topology",
                other.id()
            ))
        })?;
        for t in list(cluster).await? {
            if topics::selects(other, &t) {
                out.push(OtherWriter {
                    flow: other.id(),
                    target_topic: other.remote_topic(&t),
                    source_topic: t,
                });
            }
        }
    }
    Ok(out)
}

/// Every topic name of the cluster `reader` talks to, including topics
/// whose metadata carries an error (being created, leader elections): a
/// topic there in any state is not deleted. A listing without brokers is a
/// failure: it reached nothing. Blocking.
pub fn topic_names(
    reader: &BaseConsumer<ClusterContext>,
    cluster: &str,
    timeout: Duration,
) -> Result<BTreeSet<String>, EngineError> {
    use rdkafka::consumer::Consumer;
    crate::clients::serve_token_refresh(reader);
    let md = reader
        .fetch_metadata(None, timeout)
        .map_err(|e| EngineError::request(Place::cluster(cluster), "cannot list the topics", e))?;
    if md.brokers().is_empty() {
        return Err(EngineError::Request {
            place: Place::cluster(cluster),
            doing: "cannot list the topics: the answer names no broker".into(),
            source: Box::new(rdkafka::error::RDKafkaErrorCode::BrokerTransportFailure.into()),
        });
    }
    Ok(md.topics().iter().map(|t| t.name().to_string()).collect())
}

/// Lists `cluster`'s topic names with a short-lived reader of its own
/// (for the clusters of other flows). Blocking.
pub fn list_cluster(cluster: &Cluster, timeout: Duration) -> Result<BTreeSet<String>, EngineError> {
    let reader: BaseConsumer<ClusterContext> =
        client_config(cluster, Role::Reader, "ferry-deletes")
            .create_with_context(ClusterContext::new(cluster))
            .map_err(|e| EngineError::client_creation(cluster, &e))?;
    topic_names(&reader, &cluster.name, timeout)
}

/// Asks the source for `topic` by name, just before its target topic is
/// deleted: true only when the cluster answers that it does not know it.
/// A topic it refuses to describe (no `DESCRIBE` for Ferry) is missing from
/// a listing but is not gone: that answer, or any other, is false. The
/// reader never asks the broker to create topics. Blocking.
pub fn confirmed_gone(
    reader: &BaseConsumer<ClusterContext>,
    cluster: &str,
    topic: &str,
    timeout: Duration,
) -> Result<bool, EngineError> {
    use rdkafka::consumer::Consumer;
    let md = reader.fetch_metadata(Some(topic), timeout).map_err(|e| {
        EngineError::request(Place::topic(cluster, topic), "cannot look the topic up", e)
    })?;
    if md.brokers().is_empty() {
        return Ok(false);
    }
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .is_some_and(|t| {
            t.error() == Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILTERS: &str = "topics=[\"orders.*\", \"pay\"]\ntopics_exclude=[\"orders-keep\"]\n";

    fn topology(extra: &str) -> Topology {
        topology_with(FILTERS, extra)
    }

    fn topology_with(keys: &str, extra: &str) -> Topology {
        let text = format!(
            "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
             [clusters.c]\nbootstrap_servers=\"c:1\"\n\
             [[flows]]\nsource=\"a\"\ntarget=\"b\"\npropagate_deletes=true\n{keys}\n{extra}\n"
        );
        ferry_config::parse(&text, "t", std::path::Path::new("."))
            .unwrap()
            .topology
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_selected_known_topics_missing_from_the_source_are_orphans() {
        let t = topology("");
        let flow = &t.flows[0];
        let known = ["orders", "orders-eu", "orders-keep", "other", "pay"];
        let source = set(&["orders-eu"]);
        let target = set(&["a.orders", "a.orders-eu", "a.orders-keep", "a.other"]);
        let got = orphans(&t, flow, known, &source, &target);
        // orders-eu still exists, orders-keep is excluded, other is not
        // selected, a.pay does not exist on the target.
        assert_eq!(
            got,
            vec![Orphan {
                source_topic: "orders".into(),
                target_topic: "a.orders".into()
            }]
        );
        // Nothing known, nothing deleted, whatever the target holds.
        assert!(orphans(&t, flow, [], &source, &target).is_empty());
    }

    #[test]
    fn internal_and_ferry_topics_are_never_orphans() {
        let t = topology_with(
            "topic_naming=\"identity\"\ntopics=[\".*\", \"heartbeats\", \"ferry-slots.a-b\"]\n\
             on_record_error=\"dead-letter\"\ndead_letter_topic=\"dlq\"",
            "",
        );
        let flow = &t.flows[0];
        let names = [
            "ferry-slots.a-b",
            "mm2-offset-syncs.a.internal",
            "heartbeats",
            "__consumer_offsets",
            "dlq",
            "ferry-mine",
        ];
        let target = set(&names);
        // Named literally or not, none of them is deleted.
        assert!(orphans(&t, flow, names, &BTreeSet::new(), &target).is_empty());
        assert!(protected(&t, "b", "ferry-progress.a.internal"));
        assert!(!protected(&t, "b", "orders"));
    }

    #[test]
    fn another_writer_keeps_the_target_topic() {
        let t = topology(
            "[[flows]]\nsource=\"c\"\ntarget=\"b\"\ntopic_naming=\"identity\"\ntopics=[\"a.orders\"]\n",
        );
        let flow = &t.flows[0];
        let orphan = Orphan {
            source_topic: "orders".into(),
            target_topic: "a.orders".into(),
        };
        assert!(writers(flow, &orphan, &set(&["pay"]), &[]).is_empty());
        let other = OtherWriter {
            flow: t.flows[1].id(),
            source_topic: "a.orders".into(),
            target_topic: "a.orders".into(),
        };
        assert_eq!(
            writers(flow, &orphan, &BTreeSet::new(), &[other]),
            vec!["source topic a.orders of flow c->b".to_string()]
        );
    }

    #[tokio::test]
    async fn other_writers_lists_every_other_flow_into_the_cluster() {
        let t = topology(
            "[[flows]]\nsource=\"c\"\ntarget=\"b\"\nenabled=false\ntopic_naming=\"identity\"\n\
             [[flows]]\nsource=\"c\"\ntarget=\"a\"\n",
        );
        let mut asked = Vec::new();
        let got = other_writers(&t, &t.flows[0], |c| {
            asked.push(c.name.clone());
            async { Ok(set(&["a.orders", "x"])) }
        })
        .await
        .unwrap();
        // The disabled flow counts; the flow into another cluster does not.
        assert_eq!(asked, vec!["c".to_string()]);
        assert_eq!(got.len(), 2);
        assert!(got
            .iter()
            .any(|w| w.source_topic == "a.orders" && w.target_topic == "a.orders"));
        let failing = other_writers(&t, &t.flows[0], |c| async move {
            Err(EngineError::Internal(format!("{} unreachable", c.name)))
        })
        .await;
        assert!(failing.is_err());
    }
}
