//! The metric set: its documentation table, the registry value and the event
//! families the engine bumps.
//!
//! Names, types and labels are Ferry's interface to dashboards and alerts
//! (`deploy/grafana`, `deploy/prometheus`), so they are written down once, in
//! [`METRICS`], and everything else (registration help text, the crate docs,
//! the tests that hold the deploy files to the exported names) reads them from
//! there.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec};
use prometheus::{Opts, Registry, TextEncoder};

use crate::collector::EngineCollector;
use crate::HttpError;

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
    /// Counted by the engine calling a [`Metrics`] method when it happens.
    OnEvent,
    /// Set once when [`Metrics`] is built.
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
pub(crate) const GROUP_OFFSETS: MetricDoc = doc(
    "ferry_group_offsets_synced_total",
    Counter,
    &["flow", "result"],
    OnEvent,
    "Consumer group offsets considered for sync to the target, by result: synced, skipped (group active on the target, or its offset already ahead) or failed.",
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
/// use ferry_http::{EngineCollector, EngineView, Metrics, MetricsOptions, PartitionSample,
///                  Readiness, TopicSample, METRICS};
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
///     fn status(&self) -> serde_json::Value { serde_json::json!({}) }
/// }
///
/// let metrics = Metrics::new(MetricsOptions { partition_lag: true, ..Default::default() });
/// // Event families appear once something happened (or the flow was announced).
/// metrics.flow("a->b").observe_latency(0.02);
/// metrics.error("a->b", "produce");
///
/// let engine = EngineCollector::new(&metrics, Arc::new(OneTopic), Readiness::new());
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
    GROUP_OFFSETS,
    TASK_RESTARTS,
    SKIPPED,
    ERRORS,
    CONFIG_RELOADS,
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

/// Result label of `ferry_config_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration runs.
    Applied,
    /// The new configuration was invalid or could not be applied; the old one
    /// keeps running.
    Rejected,
}

impl ReloadResult {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Rejected => "rejected",
        }
    }
}

/// Result label of `ferry_group_offsets_synced_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncResult {
    /// The translated offset was committed on the target.
    Synced,
    /// Deliberately not written: the group is active on the target, or its
    /// target offset is already ahead of the translated one.
    Skipped,
    /// The commit on the target failed.
    Failed,
}

impl SyncResult {
    const ALL: [SyncResult; 3] = [SyncResult::Synced, SyncResult::Skipped, SyncResult::Failed];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncResult::Synced => "synced",
            SyncResult::Skipped => "skipped",
            SyncResult::Failed => "failed",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Ferry's metric registry, as a value.
///
/// Built once by the process shell, shared as `Arc<Metrics>` with the engine
/// (which counts events) and the HTTP server (which encodes a scrape). It is
/// not a global so that tests, and two engines in one process (the demo),
/// each get their own numbers.
///
/// The per-(flow, topic) numbers are not kept here: the engine exposes them
/// through [`EngineView`](crate::EngineView) and they are read at scrape time
/// by an [`EngineCollector`]. That also means `Metrics` can be built before
/// the engine exists, which the engine needs since it takes `Metrics`.
pub struct Metrics {
    /// The event families and build info; the engine's families are merged in
    /// at encode time.
    registry: Registry,
    /// What the scrape-time collector exports.
    options: MetricsOptions,
    /// `ferry_checkpoints_emitted_total{flow}`.
    checkpoints: IntCounterVec,
    /// `ferry_group_offsets_synced_total{flow,result}`.
    group_offsets: IntCounterVec,
    /// `ferry_replication_latency_seconds{flow}`.
    latency: HistogramVec,
    /// `ferry_errors_total{flow,kind}`.
    errors: IntCounterVec,
    /// `ferry_config_reloads_total{result}`, resolved up front: there are two.
    reloads: [IntCounter; 2],
    /// Label handles per flow, so that the convenience methods cost one read
    /// lock and a hash lookup rather than prometheus's label validation.
    flows: RwLock<HashMap<String, FlowMetrics>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(MetricsOptions::default())
    }
}

/// The definitions are constants checked by this crate's tests, so failing to
/// build them is a bug in this file, not a runtime condition to report.
const DEFINITIONS_VALID: &str = "metric definitions in METRICS are valid (checked by tests)";

fn counter_vec(registry: &Registry, m: MetricDoc) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(m.name, m.help), m.labels).expect(DEFINITIONS_VALID);
    registry
        .register(Box::new(vec.clone()))
        .expect(DEFINITIONS_VALID);
    vec
}

impl Metrics {
    /// A fresh registry with every event family registered,
    /// `ferry_build_info` set and both `ferry_config_reloads_total` results
    /// at 0 (so `increase()` sees the first rejection).
    pub fn new(options: MetricsOptions) -> Metrics {
        let registry = Registry::new();
        let checkpoints = counter_vec(&registry, CHECKPOINTS);
        let group_offsets = counter_vec(&registry, GROUP_OFFSETS);
        let errors = counter_vec(&registry, ERRORS);
        let reloads_vec = counter_vec(&registry, CONFIG_RELOADS);
        let reloads = [ReloadResult::Applied, ReloadResult::Rejected]
            .map(|r| reloads_vec.with_label_values(&[r.as_str()]));

        let latency = HistogramVec::new(
            HistogramOpts::new(LATENCY.name, LATENCY.help).buckets(LATENCY_BUCKETS.to_vec()),
            LATENCY.labels,
        )
        .expect(DEFINITIONS_VALID);
        registry
            .register(Box::new(latency.clone()))
            .expect(DEFINITIONS_VALID);

        let build_info = IntGaugeVec::new(
            Opts::new(BUILD_INFO.name, BUILD_INFO.help),
            BUILD_INFO.labels,
        )
        .expect(DEFINITIONS_VALID);
        build_info.with_label_values(&[VERSION]).set(1);
        registry
            .register(Box::new(build_info))
            .expect(DEFINITIONS_VALID);

        Metrics {
            registry,
            options,
            checkpoints,
            group_offsets,
            latency,
            errors,
            reloads,
            flows: RwLock::new(HashMap::new()),
        }
    }

    /// The options it was built with.
    pub fn options(&self) -> &MetricsOptions {
        &self.options
    }

    /// The label handles of one flow. Call it when a flow starts and keep the
    /// result on the hot path: its methods touch no lock at all. Calling it
    /// also makes the flow's event series appear at 0 straight away, which
    /// alerts built on `increase()` need to see the first event.
    pub fn flow(&self, flow: &str) -> FlowMetrics {
        if let Some(handles) = self
            .flows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(flow)
        {
            return handles.clone();
        }
        // The map only ever holds complete entries, so a writer that panicked
        // cannot have left it inconsistent: ignore poisoning.
        let mut flows = self.flows.write().unwrap_or_else(PoisonError::into_inner);
        flows
            .entry(flow.to_string())
            .or_insert_with(|| FlowMetrics {
                checkpoints: self.checkpoints.with_label_values(&[flow]),
                group_offsets: SyncResult::ALL
                    .map(|r| self.group_offsets.with_label_values(&[flow, r.as_str()])),
                latency: self.latency.with_label_values(&[flow]),
                errors: Arc::new(ErrorHandles {
                    flow: flow.to_string(),
                    vec: self.errors.clone(),
                    by_kind: RwLock::new(HashMap::new()),
                }),
            })
            .clone()
    }

    /// Drops a flow's event series, for a flow a reload removed, so its last
    /// values are not exported forever. Handles still held keep counting
    /// into series nobody exports.
    pub fn forget_flow(&self, flow: &str) {
        let removed = self
            .flows
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(flow);
        // Removal of a series that was never created is not an error worth
        // reporting, hence the ignored results.
        let _ = self.checkpoints.remove_label_values(&[flow]);
        let _ = self.latency.remove_label_values(&[flow]);
        for r in SyncResult::ALL {
            let _ = self.group_offsets.remove_label_values(&[flow, r.as_str()]);
        }
        if let Some(handles) = removed {
            for kind in handles.errors.kinds() {
                let _ = self.errors.remove_label_values(&[flow, kind]);
            }
        }
    }

    /// Counts one checkpoint record written to the target.
    pub fn checkpoint_emitted(&self, flow: &str) {
        self.flow(flow).checkpoint_emitted();
    }

    /// Counts `n` group offsets handled with `result`.
    pub fn group_offsets_synced(&self, flow: &str, result: SyncResult, n: u64) {
        self.flow(flow).group_offsets_synced(result, n);
    }

    /// Counts one error of `kind` (a fixed word: static so that error
    /// messages can never become label values and blow up cardinality).
    pub fn error(&self, flow: &str, kind: &'static str) {
        self.flow(flow).error(kind);
    }

    /// Counts one configuration reload.
    pub fn config_reload(&self, result: ReloadResult) {
        self.reloads[result as usize].inc();
    }

    /// Records one source-CreateTime-to-target-ack latency.
    pub fn observe_latency(&self, flow: &str, seconds: f64) {
        self.flow(flow).observe_latency(seconds);
    }

    /// One scrape in the Prometheus text format 0.0.4: the event families
    /// merged with the engine's scrape-time families, sorted by name.
    pub fn encode(&self, engine: &EngineCollector) -> Result<String, HttpError> {
        use prometheus::core::Collector;

        let mut families = self.registry.gather();
        families.extend(engine.collect());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut text = String::with_capacity(16 * 1024);
        TextEncoder::new().encode_utf8(&families, &mut text)?;
        Ok(text)
    }
}

/// One flow's resolved label handles; cheap to clone, lock-free to use
/// (except [`FlowMetrics::error`], which is off the hot path).
#[derive(Clone)]
pub struct FlowMetrics {
    /// `ferry_checkpoints_emitted_total{flow}`.
    checkpoints: IntCounter,
    /// `ferry_group_offsets_synced_total{flow,result}`, indexed by
    /// [`SyncResult`].
    group_offsets: [IntCounter; 3],
    /// `ferry_replication_latency_seconds{flow}`.
    latency: Histogram,
    /// `ferry_errors_total{flow,kind}`: kinds are only known when they happen.
    errors: Arc<ErrorHandles>,
}

impl fmt::Debug for FlowMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowMetrics")
            .field("flow", &self.errors.flow)
            .finish_non_exhaustive()
    }
}

impl FlowMetrics {
    /// Counts one checkpoint record written to the target.
    pub fn checkpoint_emitted(&self) {
        self.checkpoints.inc();
    }

    /// Counts `n` group offsets handled with `result`.
    pub fn group_offsets_synced(&self, result: SyncResult, n: u64) {
        self.group_offsets[result.index()].inc_by(n);
    }

    /// Records one source-CreateTime-to-target-ack latency, in seconds.
    pub fn observe_latency(&self, seconds: f64) {
        // Producer clocks drift, so a CreateTime slightly in the future is
        // normal; count it as "instant" rather than letting a negative value
        // shrink `_sum`. NaN (no usable timestamp) is not a latency at all.
        if seconds.is_nan() {
            return;
        }
        self.latency.observe(seconds.max(0.0));
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &'static str) {
        self.errors.get(kind).inc();
    }
}

/// The error counters of one flow, created on first use of each kind.
struct ErrorHandles {
    flow: String,
    vec: IntCounterVec,
    by_kind: RwLock<HashMap<&'static str, IntCounter>>,
}

impl ErrorHandles {
    fn get(&self, kind: &'static str) -> IntCounter {
        if let Some(c) = self
            .by_kind
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kind)
        {
            return c.clone();
        }
        self.by_kind
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind)
            .or_insert_with(|| self.vec.with_label_values(&[self.flow.as_str(), kind]))
            .clone()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.by_kind
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
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

    #[test]
    fn flow_handles_are_cached_and_count() {
        let metrics = Metrics::default();
        let a = metrics.flow("a->b");
        a.checkpoint_emitted();
        metrics.checkpoint_emitted("a->b");
        assert_eq!(metrics.checkpoints.with_label_values(&["a->b"]).get(), 2);

        metrics.group_offsets_synced("a->b", SyncResult::Skipped, 5);
        assert_eq!(
            metrics
                .group_offsets
                .with_label_values(&["a->b", "skipped"])
                .get(),
            5
        );

        metrics.error("a->b", "produce");
        a.error("produce");
        assert_eq!(
            metrics.errors.with_label_values(&["a->b", "produce"]).get(),
            2
        );
    }

    #[test]
    fn negative_and_nan_latencies_do_not_corrupt_the_histogram() {
        let metrics = Metrics::default();
        metrics.observe_latency("a->b", -0.5);
        metrics.observe_latency("a->b", f64::NAN);
        let h = metrics.latency.with_label_values(&["a->b"]);
        assert_eq!(h.get_sample_count(), 1);
        assert_eq!(h.get_sample_sum(), 0.0);
    }

    #[test]
    fn forgetting_a_flow_removes_its_series() {
        let metrics = Metrics::default();
        metrics.error("gone->b", "fetch");
        metrics.observe_latency("gone->b", 0.1);
        metrics.checkpoint_emitted("kept->b");
        metrics.forget_flow("gone->b");
        let names: Vec<String> = metrics
            .registry
            .gather()
            .iter()
            .flat_map(|f| f.get_metric().to_vec())
            .flat_map(|m| m.get_label().to_vec())
            .map(|l| l.value().to_string())
            .collect();
        assert!(!names.iter().any(|v| v == "gone->b"), "{names:?}");
        assert!(names.iter().any(|v| v == "kept->b"), "{names:?}");
    }

    #[test]
    fn reload_results_start_at_zero() {
        let metrics = Metrics::default();
        metrics.config_reload(ReloadResult::Rejected);
        assert_eq!(metrics.reloads[ReloadResult::Applied as usize].get(), 0);
        assert_eq!(metrics.reloads[ReloadResult::Rejected as usize].get(), 1);
    }
}
