//! The metric registry value and the event families the engine bumps
//! (checkpoints, group offset syncs, latency, errors, reloads); the
//! families themselves are described in [`catalog`](crate::catalog).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec,
};
use prometheus::{Opts, Registry, TextEncoder};

use crate::catalog::{
    MetricDoc, MetricsOptions, ACLS_SYNCED, BUILD_INFO, CHECKPOINTS, CONFIG_RELOADS,
    DELETIONS_PENDING, ERRORS, GROUP_MEMBERS, GROUP_OFFSETS, LATENCY, LATENCY_BUCKETS, REBALANCES,
    SECONDS_SINCE_REBALANCE, SLOTS_FENCED, SLOTS_OWNED, TOPICS_DELETED, TOPIC_DISCOVERIES,
    TOPOLOGY_MISMATCH, TRANSACTIONS, TRANSACTION_COMMIT, VERSION,
};
use crate::collector::EngineCollector;
use crate::error::HttpError;
use crate::lock::{read, write};

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

/// Result label of `ferry_acls_synced_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclSyncResult {
    /// The ACL was created on the target.
    Created,
    /// The ACL was deleted from the target (it has no source counterpart).
    Deleted,
    /// The target refused this ACL (e.g. an unknown principal type); it
    /// was skipped.
    Rejected,
    /// The request failed as a whole (target unreachable, not authorized).
    Failed,
}

impl AclSyncResult {
    const ALL: [AclSyncResult; 4] = [
        AclSyncResult::Created,
        AclSyncResult::Deleted,
        AclSyncResult::Rejected,
        AclSyncResult::Failed,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AclSyncResult::Created => "created",
            AclSyncResult::Deleted => "deleted",
            AclSyncResult::Rejected => "rejected",
            AclSyncResult::Failed => "failed",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Result label of `ferry_transactions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionResult {
    /// The transaction committed.
    Committed,
    /// The transaction was aborted; its records are invisible to
    /// `read_committed` readers and are copied again.
    Aborted,
    /// Another process initialised the slot's transactional id.
    Fenced,
}

impl TransactionResult {
    const ALL: [TransactionResult; 3] = [
        TransactionResult::Committed,
        TransactionResult::Aborted,
        TransactionResult::Fenced,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransactionResult::Committed => "committed",
            TransactionResult::Aborted => "aborted",
            TransactionResult::Fenced => "fenced",
        }
    }
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
    /// `ferry_topic_discoveries_total{flow}`.
    discoveries: IntCounterVec,
    /// `ferry_group_offsets_synced_total{flow,result}`.
    group_offsets: IntCounterVec,
    /// `ferry_acls_synced_total{flow,result}`.
    acls: IntCounterVec,
    /// `ferry_topics_deleted_total{flow}`.
    topics_deleted: IntCounterVec,
    /// `ferry_topic_deletions_pending{flow}`.
    deletions_pending: IntGaugeVec,
    /// `ferry_replication_latency_seconds{flow}`.
    latency: HistogramVec,
    /// `ferry_errors_total{flow,kind}`.
    errors: IntCounterVec,
    /// `ferry_config_reloads_total{result}`, resolved up front: there are two.
    reloads: [IntCounter; 2],
    /// The families of the flows' group membership (slots, rebalances).
    membership: MembershipFamilies,
    /// The families of exactly-once transactions.
    transactions: TransactionFamilies,
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

fn int_gauge_vec(registry: &Registry, m: MetricDoc) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(m.name, m.help), m.labels).expect(DEFINITIONS_VALID);
    registry
        .register(Box::new(vec.clone()))
        .expect(DEFINITIONS_VALID);
    vec
}

/// The per-flow families of exactly-once transactions.
struct TransactionFamilies {
    results: IntCounterVec,
    commit: HistogramVec,
}

impl TransactionFamilies {
    fn register(registry: &Registry) -> Self {
        let commit = HistogramVec::new(
            HistogramOpts::new(TRANSACTION_COMMIT.name, TRANSACTION_COMMIT.help)
                .buckets(LATENCY_BUCKETS.to_vec()),
            TRANSACTION_COMMIT.labels,
        )
        .expect(DEFINITIONS_VALID);
        registry
            .register(Box::new(commit.clone()))
            .expect(DEFINITIONS_VALID);
        TransactionFamilies {
            results: counter_vec(registry, TRANSACTIONS),
            commit,
        }
    }

    fn for_flow(&self, flow: &str) -> TransactionMetrics {
        TransactionMetrics {
            results: TransactionResult::ALL
                .map(|r| self.results.with_label_values(&[flow, r.as_str()])),
            commit: self.commit.with_label_values(&[flow]),
        }
    }

    fn forget(&self, flow: &str) {
        for r in TransactionResult::ALL {
            let _ = self.results.remove_label_values(&[flow, r.as_str()]);
        }
        let _ = self.commit.remove_label_values(&[flow]);
    }
}

/// One flow's transaction series (see [`FlowMetrics::transactions`]).
#[derive(Clone)]
pub struct TransactionMetrics {
    results: [IntCounter; 3],
    commit: Histogram,
}

impl TransactionMetrics {
    /// Counts one transaction that ended with `result`.
    pub fn ended(&self, result: TransactionResult) {
        self.results[result as usize].inc();
    }

    /// Records how long one commit took.
    pub fn observe_commit(&self, seconds: f64) {
        self.commit.observe(seconds);
    }
}

/// The per-flow families of group membership, registered together.
struct MembershipFamilies {
    slots_owned: IntGaugeVec,
    rebalances: IntCounterVec,
    since_rebalance: GaugeVec,
    members: IntGaugeVec,
    mismatch: IntGaugeVec,
    fenced: IntCounterVec,
}

impl MembershipFamilies {
    fn register(registry: &Registry) -> Self {
        let since_rebalance = GaugeVec::new(
            Opts::new(SECONDS_SINCE_REBALANCE.name, SECONDS_SINCE_REBALANCE.help),
            SECONDS_SINCE_REBALANCE.labels,
        )
        .expect(DEFINITIONS_VALID);
        registry
            .register(Box::new(since_rebalance.clone()))
            .expect(DEFINITIONS_VALID);
        MembershipFamilies {
            slots_owned: int_gauge_vec(registry, SLOTS_OWNED),
            rebalances: counter_vec(registry, REBALANCES),
            since_rebalance,
            members: int_gauge_vec(registry, GROUP_MEMBERS),
            mismatch: int_gauge_vec(registry, TOPOLOGY_MISMATCH),
            fenced: counter_vec(registry, SLOTS_FENCED),
        }
    }

    fn for_flow(&self, flow: &str) -> MembershipMetrics {
        MembershipMetrics {
            slots_owned: self.slots_owned.with_label_values(&[flow]),
            rebalances: self.rebalances.with_label_values(&[flow]),
            since_rebalance: self.since_rebalance.with_label_values(&[flow]),
            members: self.members.with_label_values(&[flow]),
            mismatch: self.mismatch.with_label_values(&[flow]),
            fenced: self.fenced.with_label_values(&[flow]),
        }
    }

    fn forget(&self, flow: &str) {
        let _ = self.slots_owned.remove_label_values(&[flow]);
        let _ = self.rebalances.remove_label_values(&[flow]);
        let _ = self.since_rebalance.remove_label_values(&[flow]);
        let _ = self.members.remove_label_values(&[flow]);
        let _ = self.mismatch.remove_label_values(&[flow]);
        let _ = self.fenced.remove_label_values(&[flow]);
    }
}

/// One flow's group-membership series (see [`FlowMetrics::membership`]).
#[derive(Clone)]
pub struct MembershipMetrics {
    slots_owned: IntGauge,
    rebalances: IntCounter,
    since_rebalance: Gauge,
    members: IntGauge,
    mismatch: IntGauge,
    fenced: IntCounter,
}

impl MembershipMetrics {
    /// Sets how many slots this process owns.
    pub fn set_slots_owned(&self, n: usize) {
        self.slots_owned.set(n as i64);
    }

    /// Counts one assignment or revocation of slots.
    pub fn rebalanced(&self) {
        self.rebalances.inc();
    }

    /// Sets the seconds since this process's slots last changed.
    pub fn set_seconds_since_rebalance(&self, seconds: f64) {
        self.since_rebalance.set(seconds);
    }

    /// Sets the number of members the coordinator described.
    pub fn set_members(&self, n: usize) {
        self.members.set(n as i64);
    }

    /// Sets whether another member runs a different topology file.
    pub fn set_topology_mismatch(&self, mismatch: bool) {
        self.mismatch.set(i64::from(mismatch));
    }

    /// Counts slots given up because the group session was lost.
    pub fn fenced(&self, slots: usize) {
        self.fenced.inc_by(slots as u64);
    }
}

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
        let discoveries = counter_vec(&registry, TOPIC_DISCOVERIES);
        let group_offsets = counter_vec(&registry, GROUP_OFFSETS);
        let acls = counter_vec(&registry, ACLS_SYNCED);
        let topics_deleted = counter_vec(&registry, TOPICS_DELETED);
        let deletions_pending = int_gauge_vec(&registry, DELETIONS_PENDING);
        let errors = counter_vec(&registry, ERRORS);
        let reloads_vec = counter_vec(&registry, CONFIG_RELOADS);
        let membership = MembershipFamilies::register(&registry);
        let transactions = TransactionFamilies::register(&registry);
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
            discoveries,
            group_offsets,
            acls,
            topics_deleted,
            deletions_pending,
            latency,
            errors,
            reloads,
            membership,
            transactions,
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
        if let Some(handles) = read(&self.flows).get(flow) {
            return handles.clone();
        }
        let mut flows = write(&self.flows);
        flows
            .entry(flow.to_string())
            .or_insert_with(|| FlowMetrics {
                checkpoints: self.checkpoints.with_label_values(&[flow]),
                discoveries: self.discoveries.with_label_values(&[flow]),
                group_offsets: SyncResult::ALL
                    .map(|r| self.group_offsets.with_label_values(&[flow, r.as_str()])),
                acls: AclSyncResult::ALL.map(|r| self.acls.with_label_values(&[flow, r.as_str()])),
                topics_deleted: self.topics_deleted.with_label_values(&[flow]),
                deletions_pending: self.deletions_pending.with_label_values(&[flow]),
                latency: self.latency.with_label_values(&[flow]),
                membership: self.membership.for_flow(flow),
                transactions: self.transactions.for_flow(flow),
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
        let removed = write(&self.flows).remove(flow);
        // Removal of a series that was never created is not an error worth
        // reporting, hence the ignored results.
        let _ = self.checkpoints.remove_label_values(&[flow]);
        let _ = self.discoveries.remove_label_values(&[flow]);
        let _ = self.topics_deleted.remove_label_values(&[flow]);
        let _ = self.deletions_pending.remove_label_values(&[flow]);
        let _ = self.latency.remove_label_values(&[flow]);
        self.membership.forget(flow);
        self.transactions.forget(flow);
        for r in SyncResult::ALL {
            let _ = self.group_offsets.remove_label_values(&[flow, r.as_str()]);
        }
        for r in AclSyncResult::ALL {
            let _ = self.acls.remove_label_values(&[flow, r.as_str()]);
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
    /// `ferry_topic_discoveries_total{flow}`.
    discoveries: IntCounter,
    /// `ferry_group_offsets_synced_total{flow,result}`, indexed by
    /// [`SyncResult`].
    group_offsets: [IntCounter; 3],
    /// `ferry_acls_synced_total{flow,result}`, indexed by [`AclSyncResult`].
    acls: [IntCounter; 4],
    /// `ferry_topics_deleted_total{flow}`.
    topics_deleted: IntCounter,
    /// `ferry_topic_deletions_pending{flow}`.
    deletions_pending: IntGauge,
    /// `ferry_replication_latency_seconds{flow}`.
    latency: Histogram,
    /// Slots, rebalances and members of the flow's group.
    membership: MembershipMetrics,
    /// Exactly-once transactions of the flow's slots.
    transactions: TransactionMetrics,
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

    /// Counts one completed listing of the source's topics.
    pub fn topic_discovery(&self) {
        self.discoveries.inc();
    }

    /// Counts `n` group offsets handled with `result`.
    pub fn group_offsets_synced(&self, result: SyncResult, n: u64) {
        self.group_offsets[result.index()].inc_by(n);
    }

    /// Counts `n` ACLs handled by ACL sync with `result`.
    pub fn acls_synced(&self, result: AclSyncResult, n: u64) {
        self.acls[result.index()].inc_by(n);
    }

    /// Counts one target topic deleted after its source topic.
    pub fn topic_deleted(&self) {
        self.topics_deleted.inc();
    }

    /// Sets how many target topics wait for deletion (their source topic
    /// is gone).
    pub fn set_deletions_pending(&self, n: usize) {
        self.deletions_pending.set(n as i64);
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

    /// The flow's exactly-once transaction series.
    pub fn transactions(&self) -> &TransactionMetrics {
        &self.transactions
    }

    /// The flow's group-membership series.
    pub fn membership(&self) -> &MembershipMetrics {
        &self.membership
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
        if let Some(c) = read(&self.by_kind).get(kind) {
            return c.clone();
        }
        write(&self.by_kind)
            .entry(kind)
            .or_insert_with(|| self.vec.with_label_values(&[self.flow.as_str(), kind]))
            .clone()
    }

    fn kinds(&self) -> Vec<&'static str> {
        read(&self.by_kind).keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_handles_are_cached_and_count() {
        let metrics = Metrics::default();
        let a = metrics.flow("a->b");
        a.checkpoint_emitted();
        metrics.checkpoint_emitted("a->b");
        assert_eq!(metrics.checkpoints.with_label_values(&["a->b"]).get(), 2);
        a.topic_discovery();
        assert_eq!(metrics.discoveries.with_label_values(&["a->b"]).get(), 1);

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
