//! The scrape-time families: read from [`EngineView`] when Prometheus asks.
//!
//! The engine counts records and bytes per delivery report, millions of times
//! a second; going through prometheus's label maps there would cost a hash
//! and a lock per record. Instead the engine keeps plain atomics and this
//! collector turns them into samples once per scrape.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::catalog::{
    MetricDoc, MetricKind, MetricsOptions, BYTES, LAG_RECORDS, LAG_SECONDS, PARTITION_LAG_RECORDS,
    READY, RECORDS, SKIPPED, TASK_RESTARTS,
};
use crate::readiness::Readiness;
use crate::view::{EngineView, TopicSample};

/// A [`Collector`] over an [`EngineView`] and the [`Readiness`] latch.
///
/// Built once per server; each `collect` calls [`EngineView::topics`] once,
/// [`EngineView::partitions`] only when per-partition lag is enabled, and
/// [`EngineView::ready`] once.
pub struct EngineCollector {
    /// Where the numbers come from.
    view: Arc<dyn EngineView>,
    /// Draining turns `ferry_ready` to 0 before the engine itself stops.
    readiness: Readiness,
    /// Whether, and how many, per-partition series to export.
    options: MetricsOptions,
    /// The descriptors `Collector::desc` must return, built once.
    descs: Vec<Desc>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCollector")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The families this collector may export, in the order `desc` lists them.
const FAMILIES: [MetricDoc; 8] = [
    RECORDS,
    BYTES,
    LAG_RECORDS,
    PARTITION_LAG_RECORDS,
    LAG_SECONDS,
    TASK_RESTARTS,
    SKIPPED,
    READY,
];

impl EngineCollector {
    /// Reads `view`, exporting what `options` chooses: pass those the
    /// [`Metrics`](crate::Metrics) were built with ([`Metrics::options`](crate::Metrics::options)).
    pub fn new(options: &MetricsOptions, view: Arc<dyn EngineView>, readiness: Readiness) -> Self {
        let options = options.clone();
        let descs = FAMILIES
            .iter()
            .filter(|m| options.partition_lag || !m.opt_in)
            .map(|m| {
                Desc::new(
                    m.name.to_string(),
                    m.help.to_string(),
                    m.labels.iter().map(|l| l.to_string()).collect(),
                    HashMap::new(),
                )
                // Constants, checked by the tests: a failure is a bug here.
                .expect("metric definitions in METRICS are valid (checked by tests)")
            })
            .collect();
        EngineCollector {
            view,
            readiness,
            options,
            descs,
        }
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut topics = self.view.topics();
        // Two samples for one (flow, topic) would make the scrape ambiguous
        // and Prometheus would drop samples; keep the first and say so.
        topics.sort_by(|a, b| (&a.flow, &a.topic).cmp(&(&b.flow, &b.topic)));
        let before = topics.len();
        topics.dedup_by(|b, a| a.flow == b.flow && a.topic == b.topic);
        if topics.len() != before {
            tracing::warn!(
                duplicates = before - topics.len(),
                "EngineView::topics returned the same (flow, topic) more than once; exporting the first"
            );
        }

        let per_topic = |doc: MetricDoc, value: fn(&TopicSample) -> Metric| {
            family(
                doc,
                topics
                    .iter()
                    .map(|t| with_labels(value(t), doc.labels, &[&t.flow, &t.topic])),
            )
        };
        let mut families = vec![
            per_topic(RECORDS, |t| counter(t.records_replicated_total as f64)),
            per_topic(BYTES, |t| counter(t.bytes_replicated_total as f64)),
            per_topic(LAG_RECORDS, |t| gauge(t.lag_records as f64)),
            per_topic(LAG_SECONDS, |t| gauge(t.lag_seconds)),
            per_topic(TASK_RESTARTS, |t| counter(t.task_restarts_total as f64)),
            // Series only for reasons that happened: most flows never skip.
            family(
                SKIPPED,
                topics.iter().flat_map(|t| {
                    t.records_skipped_total.iter().map(|(reason, n)| {
                        with_labels(
                            counter(*n as f64),
                            SKIPPED.labels,
                            &[&t.flow, &t.topic, reason],
                        )
                    })
                }),
            ),
        ];

        if self.options.partition_lag {
            let mut partitions = self.view.partitions();
            partitions.sort_by(|a, b| {
                (&a.flow, &a.topic, a.partition).cmp(&(&b.flow, &b.topic, b.partition))
            });
            partitions.dedup_by(|b, a| {
                a.flow == b.flow && a.topic == b.topic && a.partition == b.partition
            });
            let limit = self.options.partition_lag_limit;
            if partitions.len() > limit {
                tracing::warn!(
                    partitions = partitions.len(),
                    limit,
                    "more partitions than the per-partition lag limit; exporting the first"
                );
                partitions.truncate(limit);
            }
            families.push(family(
                PARTITION_LAG_RECORDS,
                partitions.iter().map(|p| {
                    with_labels(
                        gauge(p.lag_records as f64),
                        PARTITION_LAG_RECORDS.labels,
                        &[&p.flow, &p.topic, &p.partition.to_string()],
                    )
                }),
            ));
        }

        let ready = self.readiness.is_ready(self.view.as_ref());
        families.push(family(
            READY,
            std::iter::once(gauge(if ready { 1.0 } else { 0.0 })),
        ));

        // The text encoder rejects a family without samples (and the registry
        // prunes them too): no topics yet means no series, not an error.
        families.retain(|f| !f.get_metric().is_empty());
        families
    }
}

fn family(doc: MetricDoc, metrics: impl Iterator<Item = Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(doc.name.to_string());
    family.set_help(doc.help.to_string());
    family.set_field_type(match doc.kind {
        MetricKind::Counter => MetricType::COUNTER,
        MetricKind::Gauge => MetricType::GAUGE,
        MetricKind::Histogram => MetricType::HISTOGRAM,
    });
    family.set_metric(metrics.collect());
    family
}

/// A sample with its labels. Callers pass the names from the same table row
/// as the family, so exported labels always match the documented ones.
fn with_labels(mut metric: Metric, names: &[&str], values: &[&str]) -> Metric {
    debug_assert_eq!(names.len(), values.len());
    metric.set_label(
        names
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.to_string());
                pair.set_value(value.to_string());
                pair
            })
            .collect(),
    );
    metric
}

fn counter(value: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::default();
    m.set_counter(c);
    m
}

fn gauge(value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_gauge(g);
    m
}
