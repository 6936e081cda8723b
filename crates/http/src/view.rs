//! What the engine shows the HTTP side.
//!
//! The engine implements [`EngineView`]; this crate only reads it, at scrape
//! or request time. That keeps the dependency one-way (the engine depends on
//! `ferry-http`, never the reverse) and keeps prometheus off the hot path: the
//! engine bumps its own atomics, and they are turned into samples only when
//! somebody asks.

use crate::EngineDocument;

/// Read-only window onto the running engine.
///
/// Every method is called from the HTTP server's own thread, at scrape or
/// request time, so implementations must be quick and must not block on the
/// engine's async runtime: read atomics or take a short `std` lock, nothing
/// that waits for a task to answer.
pub trait EngineView: Send + Sync + 'static {
    /// One sample per (flow, topic), read at scrape time from the engine's
    /// atomics.
    fn topics(&self) -> Vec<TopicSample>;

    /// Per-partition lag. Only called when per-partition metrics are enabled
    /// ([`MetricsOptions::partition_lag`](crate::MetricsOptions)), because a
    /// series per partition is the cardinality that hurts Prometheus.
    fn partitions(&self) -> Vec<PartitionSample>;

    /// Readiness: every flow running and its clusters reachable.
    fn ready(&self) -> bool;

    /// The engine's part of the `/status` document. It must already be free
    /// of secrets: it is served as-is to anybody who can read `/status`.
    fn status(&self) -> EngineDocument;
}

/// The scrape-time numbers of one (flow, topic).
///
/// Counters (`*_total`) must only ever grow for the life of the process, even
/// across task restarts, otherwise Prometheus reads the drop as a reset and
/// `rate()` overcounts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicSample {
    /// The flow, written `source->target` as the topology names it.
    pub flow: String,
    /// The source topic name.
    pub topic: String,
    /// Records the target has acknowledged.
    pub records_replicated_total: u64,
    /// Key + value + header bytes of the acknowledged records.
    pub bytes_replicated_total: u64,
    /// Source end offsets minus the acknowledged watermark, summed over the
    /// topic's partitions. 0 when unknown rather than a guess.
    pub lag_records: u64,
    /// Age of the oldest record not yet acknowledged (now minus its
    /// CreateTime), 0 when caught up.
    pub lag_seconds: f64,
    /// How many times the topic's task was restarted after a failure.
    pub task_restarts_total: u64,
    /// Records the target refused and `on_record_error` skipped or wrote to
    /// the dead-letter topic, by reason (a fixed word such as `too_large`).
    pub records_skipped_total: std::collections::BTreeMap<&'static str, u64>,
}

/// The lag of one source partition; only exported when opted in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionSample {
    /// The flow's name.
    pub flow: String,
    /// The source topic name.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// Source end offset minus the acknowledged watermark.
    pub lag_records: u64,
}
