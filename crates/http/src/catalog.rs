//! The metric catalogue: every family's name, type, labels and help text,
//! and the options that choose what is exported.
//!
//! Names, types and labels are Ferry's interface to dashboards and alerts
//! (`deploy/grafana`, `deploy/prometheus`), so they are written down once, in
//! [`METRICS`], and everything else (registration help text, the scrape-time
//! collector, the crate docs, the tests that hold the deploy files to the
//! exported names) reads them from here. This module depends on nothing else
//! in the crate.

use std::fmt;

/// The version every build reports in `ferry_build_info` and `/status`. All
/// Ferry crates share the workspace version, so this crate's is the binary's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows; read with `rate()`/`increase()`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Exported as `_bucket`, `_sum` and `_count` series.
    Histogram,
}

impl MetricKind {
    /// The word used in the exposition format's `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a family's values are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// Read from [`EngineView`](crate::EngineView) (or the readiness latch)
    /// when Prometheus scrapes, so the record path never touches prometheus.
    AtScrape,
    /// Counted by the engine calling a [`Metrics`](crate::Metrics) method when it happens.
    OnEvent,
    /// Set once when [`Metrics`](crate::Metrics) is built.
    Constant,
}

impl Updated {
    const fn as_str(self) -> &'static str {
        match self {
            Updated::AtScrape => "at scrape",
            Updated::OnEvent => "on event",
            Updated::Constant => "constant",
        }
    }
}

/// One row of the metric documentation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDoc {
    /// The family name, as Prometheus sees it.
    pub name: &'static str,
    /// Its Prometheus type.
    pub kind: MetricKind,
    /// Its label names, in export order.
    pub labels: &'static [&'static str],
    /// The `# HELP` text, also the meaning column of the docs.
    pub help: &'static str,
    /// When its values change.
    pub updated: Updated,
    /// Only exported when [`MetricsOptions::partition_lag`] is set.
    pub opt_in: bool,
}

const fn doc(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    updated: Updated,
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        labels,
        help,
        updated,
        opt_in: false,
    }
}

use MetricKind::{Counter, Gauge, Histogram as Hist};
use Updated::{AtScrape, Constant, OnEvent};

pub(crate) const RECORDS: MetricDoc = doc(
    "ferry_records_replicated_total",
    Counter,
    &["flow", "topic"],
    AtScrape,
    "Records copied to the target and acknowledged by it.",
);
pub(crate) const BYTES: MetricDoc = doc(
    "ferry_bytes_replicated_total",
    Counter,
    &["flow", "topic"],
    AtScrape,
    "Bytes (key, value and headers) of the records acknowledged by the target.",
);
pub(crate) const LAG_RECORDS: MetricDoc = doc(
    "ferry_replication_lag_records",
    Gauge,
    &["flow", "topic"],
    AtScrape,
    "Source records not yet acknowledged by the target: end offsets minus the acknowledged watermark, summed over the topic's partitions.",
);
pub(crate) const PARTITION_LAG_RECORDS: MetricDoc = MetricDoc {
    opt_in: true,
    ..doc(
        "ferry_replication_partition_lag_records",
        Gauge,
        &["flow", "topic", "partition"],
        AtScrape,
        "Source records of one partition not yet acknowledged by the target. Only exported when per-partition metrics are enabled.",
    )
};
pub(crate) const LAG_SECONDS: MetricDoc = doc(
    "ferry_replication_lag_seconds",
    Gauge,
    &["flow", "topic"],
    AtScrape,
    "Age of the oldest source record not yet acknowledged by the target (now minus its CreateTime); 0 when caught up.",
);
pub(crate) const LATENCY: MetricDoc = doc(
    "ferry_replication_latency_seconds",
    Hist,
    &["flow"],
    OnEvent,
    "Time from a record's source CreateTime to the target's acknowledgement of its copy.",
);
pub(crate) const CHECKPOINTS: MetricDoc = doc(
    "ferry_checkpoints_emitted_total",
    Counter,
    &["flow"],
    OnEvent,
    "MirrorMaker 2 checkpoint records written to the target.",
);
pub(crate) const TOPIC_DISCOVERIES: MetricDoc = doc(
    "ferry_topic_discoveries_total",
    Counter,
    &["flow"],
    OnEvent,
    "Listings of the source's topics a flow completed (every refresh_interval): each starts new topics and stops removed or cut-over ones. Flat while the flow runs means discovery is failing.",
);
pub(crate) const GROUP_OFFSETS: MetricDoc = doc(
    "ferry_group_offsets_synced_total",
    Counter,
    &["flow", "result"],
    OnEvent,
    "Consumer group offsets considered for sync to the target, by result: synced, skipped (group active on the target, or its offset already ahead) or failed.",
);
pub(crate) const ACLS_SYNCED: MetricDoc = doc(
    "ferry_acls_synced_total",
    Counter,
    &["flow", "result"],
    OnEvent,
    "ACLs of the flow's topics and groups handled by ACL sync (sync_acls = true), by result: created on the target, deleted from it (acl_sync_deletes = true), rejected (the target refused that ACL; it is skipped and logged) or failed (the request failed as a whole).",
);
pub(crate) const TOPICS_DELETED: MetricDoc = doc(
    "ferry_topics_deleted_total",
    Counter,
    &["flow"],
    OnEvent,
    "Target topics deleted because their source topic was deleted (propagate_deletes = true), after delete_grace and only when no other flow writes to them.",
);
pub(crate) const DELETIONS_PENDING: MetricDoc = doc(
    "ferry_topic_deletions_pending",
    Gauge,
    &["flow"],
    OnEvent,
    "Target topics of the flow whose source topic is gone (propagate_deletes = true): deleted once delete_grace has passed, unless another flow writes to them.",
);
pub(crate) const TASK_RESTARTS: MetricDoc = doc(
    "ferry_task_restarts_total",
    Counter,
    &["flow", "topic"],
    AtScrape,
    "Restarts of a topic's task after a failure.",
);
pub(crate) const SKIPPED: MetricDoc = doc(
    "ferry_records_skipped_total",
    Counter,
    &["flow", "topic", "reason"],
    AtScrape,
    "Records the target refused that on_record_error skipped or wrote to the dead-letter topic, by reason: too_large, invalid_record or invalid_timestamp.",
);
pub(crate) const ERRORS: MetricDoc = doc(
    "ferry_errors_total",
    Counter,
    &["flow", "kind"],
    OnEvent,
    "Errors, by flow and kind (a fixed, short word such as fetch, produce, admin, progress, checkpoint).",
);
pub(crate) const CONFIG_RELOADS: MetricDoc = doc(
    "ferry_config_reloads_total",
    Counter,
    &["result"],
    OnEvent,
    "Configuration reloads (SIGHUP), by result: applied or rejected (the old configuration keeps running).",
);
pub(crate) const SLOTS_OWNED: MetricDoc = doc(
    "ferry_slots_owned",
    Gauge,
    &["flow"],
    OnEvent,
    "Slots of the flow this process owns (the flow's consumer group assigns them); summed over the processes it is the flow's slot count.",
);
pub(crate) const REBALANCES: MetricDoc = doc(
    "ferry_rebalances_total",
    Counter,
    &["flow"],
    OnEvent,
    "Rebalances of the flow's group this process went through: each assignment or revocation of slots.",
);
pub(crate) const SECONDS_SINCE_REBALANCE: MetricDoc = doc(
    "ferry_seconds_since_rebalance",
    Gauge,
    &["flow"],
    OnEvent,
    "Seconds since this process's slots of the flow last changed.",
);
pub(crate) const GROUP_MEMBERS: MetricDoc = doc(
    "ferry_group_members",
    Gauge,
    &["flow"],
    OnEvent,
    "Processes in the flow's consumer group, as the group coordinator last described it.",
);
pub(crate) const TOPOLOGY_MISMATCH: MetricDoc = doc(
    "ferry_topology_mismatch",
    Gauge,
    &["flow"],
    OnEvent,
    "1 while another member of the flow's group runs a different topology file, else 0.",
);
pub(crate) const SLOTS_FENCED: MetricDoc = doc(
    "ferry_slots_fenced_total",
    Counter,
    &["flow"],
    OnEvent,
    "Slots this process gave up without a hand-over: its group session was lost (paused, or cut off from the coordinator), or, under exactly-once, another Ferry process fenced the slot's transactional producer.",
);
pub(crate) const TRANSACTIONS: MetricDoc = doc(
    "ferry_transactions_total",
    Counter,
    &["flow", "result"],
    OnEvent,
    "Exactly-once transactions of the flow's slots by how they ended: committed, aborted (the slot's partitions resume from the last commit), or fenced (another Ferry process took the slot over).",
);
pub(crate) const TRANSACTION_COMMIT: MetricDoc = doc(
    "ferry_transaction_commit_seconds",
    Hist,
    &["flow"],
    OnEvent,
    "Time to commit one exactly-once transaction: waiting for the target to acknowledge its records, writing their progress and offset syncs, and the commit itself.",
);
pub(crate) const READY: MetricDoc = doc(
    "ferry_ready",
    Gauge,
    &[],
    AtScrape,
    "1 when Ferry is ready (every flow running, its clusters reachable, not draining), else 0.",
);
pub(crate) const BUILD_INFO: MetricDoc = doc(
    "ferry_build_info",
    Gauge,
    &["version"],
    Constant,
    "Always 1; the version label names the running build.",
);

/// Every metric Ferry exports, in documentation order.
///
/// This is the single source of the names: registration takes its help text
/// from here and the tests check that a scrape exports exactly these families,
/// with these types and labels.
///
/// ```
/// use std::sync::Arc;
/// use ferry_http::{EngineCollector, EngineDocument, EngineView, Metrics, MetricsOptions,
///                  PartitionSample, Readiness, TopicSample, METRICS};
///
/// struct OneTopic;
/// impl EngineView for OneTopic {
///     fn topics(&self) -> Vec<TopicSample> {
///         vec![TopicSample {
///             flow: "a->b".into(),
///             topic: "orders".into(),
///             records_skipped_total: [("too_large", 1)].into(),
///             ..Default::default()
///         }]
///     }
///     fn partitions(&self) -> Vec<PartitionSample> {
///         vec![PartitionSample { flow: "a->b".into(), topic: "orders".into(), partition: 0, lag_records: 0 }]
///     }
///     fn ready(&self) -> bool { true }
///     fn status(&self) -> EngineDocument { EngineDocument::default() }
/// }
///
/// let metrics = Metrics::new(MetricsOptions { partition_lag: true, ..Default::default() });
/// // Event families appear once something happened (or the flow was announced).
/// metrics.flow("a->b").observe_latency(0.02);
/// metrics.error("a->b", "produce");
///
/// let engine = EngineCollector::new(metrics.options(), Arc::new(OneTopic), Readiness::new());
/// let text = metrics.encode(&engine).unwrap();
/// for m in METRICS {
///     assert!(text.contains(&format!("# HELP {} {}\n", m.name, m.help)), "{}", m.name);
///     assert!(text.contains(&format!("# TYPE {} {}\n", m.name, m.kind)), "{}", m.name);
/// }
/// ```
pub const METRICS: &[MetricDoc] = &[
    RECORDS,
    BYTES,
    LAG_RECORDS,
    PARTITION_LAG_RECORDS,
    LAG_SECONDS,
    LATENCY,
    CHECKPOINTS,
    TOPIC_DISCOVERIES,
    GROUP_OFFSETS,
    ACLS_SYNCED,
    TOPICS_DELETED,
    DELETIONS_PENDING,
    TASK_RESTARTS,
    SKIPPED,
    ERRORS,
    CONFIG_RELOADS,
    SLOTS_OWNED,
    REBALANCES,
    SECONDS_SINCE_REBALANCE,
    GROUP_MEMBERS,
    TOPOLOGY_MISMATCH,
    SLOTS_FENCED,
    TRANSACTIONS,
    TRANSACTION_COMMIT,
    READY,
    BUILD_INFO,
];

/// Upper bounds of `ferry_replication_latency_seconds`: 1 ms to 60 s, about
/// three per decade, so p50/p99 stay readable both for a healthy
/// same-region copy (a few ms) and for a backlog being drained (seconds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The documentation table of [`METRICS`] as Markdown, the text of
/// `docs/metrics.md`'s table.
pub fn metrics_markdown() -> String {
    let mut out = String::from(
        "| metric | type | labels | updated | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for m in METRICS {
        let labels = if m.labels.is_empty() {
            "—".to_string()
        } else {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let updated = if m.opt_in {
            format!("{}, opt-in", m.updated.as_str())
        } else {
            m.updated.as_str().to_string()
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            m.name, m.kind, labels, updated, m.help
        ));
    }
    out
}

/// Choices about what is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Export `ferry_replication_partition_lag_records`, one series per source
    /// partition. Off by default: thousands of partitions make thousands of
    /// series, which is the cardinality Prometheus operators get paged for.
    pub partition_lag: bool,
    /// Hard cap on the per-partition series of one scrape, so that a topology
    /// matching far more partitions than expected cannot flood Prometheus even
    /// when `partition_lag` is on. Partitions beyond it are left out (the
    /// per-topic lag still counts them) and a warning is logged.
    pub partition_lag_limit: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            partition_lag: false,
            partition_lag_limit: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_follow_the_conventions() {
        let mut seen = HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("ferry_"), "{}", m.name);
            assert!(
                m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}: the deploy tests scan for ferry_[a-z_]+",
                m.name
            );
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{}: counters, and only counters, end in _total",
                m.name
            );
            assert!(!m.help.is_empty(), "{}", m.name);
        }
    }

    #[test]
    fn markdown_in_the_crate_docs_matches_the_table() {
        let docs = include_str!("../docs/metrics.md");
        assert!(
            docs.contains(&metrics_markdown()),
            "docs/metrics.md is out of date; its table must be:\n{}",
            metrics_markdown()
        );
    }

    #[test]
    fn latency_buckets_span_1ms_to_60s() {
        assert_eq!(LATENCY_BUCKETS.first(), Some(&0.001));
        assert_eq!(LATENCY_BUCKETS.last(), Some(&60.0));
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
