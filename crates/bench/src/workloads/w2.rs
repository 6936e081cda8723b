//! W2 — steady-state latency. Each replicator runs as a daemon on its own
//! empty source topic (8 partitions). Once a probe record has made it
//! through (so start-up is not counted), the harness produces 200 B records
//! at a fixed rate for a fixed time, each stamped with CreateTime = now, and
//! a consumer on the target computes, for every record, its wall-clock
//! arrival minus its CreateTime (one machine, one clock). It reads
//! `read_committed` (librdkafka's default): under exactly-once a record
//! arrives when its transaction commits.
//!
//! In the limit's place runs `direct`: the same producer and latency
//! consumer on a source topic with no replicator in between, the floor of
//! what this machine can measure. While a replicator runs, a second latency
//! consumer reads its source topic: on two shared cores the replicator's
//! load slows the harness and the source broker too, and that source-side
//! figure is the floor under the same load.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{cleanup, failed, finish};
use crate::contenders::{self, Contender, Job, Topics};
use crate::dataset::{now_ms, producer_config, send, Dataset, DeliveryCounter, RecordBuf};
use crate::error::{BenchError, Context, Result};
use crate::kafka::{create_topics, Offsets};
use crate::report::{CaseReport, ContenderResult, Latency};
use crate::{bail, Env};

pub const PARTITIONS: i32 = 8;
const VALUE_SIZE: usize = 200;
/// Longest wait for the first probe record to come through.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Rate and duration of the measured phase.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub rate: f64,
    pub duration: Duration,
}

pub fn run(env: &Env, load: Load) -> Result<Vec<CaseReport>> {
    let mut report = CaseReport {
        name: "w2".into(),
        description: format!(
            "steady state: {:.0} records/s × {VALUE_SIZE} B for {:.0}s over {PARTITIONS} partitions",
            load.rate,
            load.duration.as_secs_f64()
        ),
        topics: 1,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        rate_per_sec: Some(load.rate),
        duration_seconds: Some(load.duration.as_secs_f64()),
        ..Default::default()
    };
    for &contender in &env.contenders {
        // The limit's counterpart here is the floor of the measurement:
        // the same producer and latency consumer on the source topic itself,
        // with no replicator in between.
        let name = if contender == Contender::Limit {
            "direct"
        } else {
            contender.name()
        };
        eprintln!("ferry-bench: w2 — {name} ...");
        let result =
            run_one(env, contender, load).unwrap_or_else(|e| failed(name, 0, e.to_string()));
        eprintln!(
            "ferry-bench: w2 — {name}: {}",
            match (&result.latency_ms, &result.error) {
                (Some(l), None) => format!(
                    "ok: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                    l.p50, l.p99, l.max
                ),
                (_, e) => format!("FAILED: {}", e.as_deref().unwrap_or("?")),
            }
        );
        report.results.push(result);
    }
    report.records = report
        .results
        .iter()
        .map(|r| r.records_expected)
        .max()
        .unwrap_or(0);
    report.bytes = report
        .results
        .iter()
        .filter_map(|r| Some((r.mb_per_sec? * 1e6 * r.wall_seconds?).round() as u64))
        .max()
        .unwrap_or(0);
    let p99 = |r: &ContenderResult| r.latency_ms.as_ref().map(|l| l.p99);
    report.add_ratio("ferry", "direct", "latency_p99", p99);
    report.add_ratio("ferry", "mm2", "latency_p99", p99);
    report.add_ratio("ferry", "python", "latency_p99", p99);
    // Exactly-once: a record becomes visible when its transaction commits.
    report.add_ratio("ferry-eos", "ferry", "latency_p99", p99);
    report.add_ratio("ferry-eos", "mm2-eos", "latency_p99", p99);
    report.add_ratio("ferry", "mm2", "cpu_seconds_per_gb", |r| {
        r.cpu_seconds_per_gb
    });
    report.add_ratio("ferry", "mm2", "peak_rss_bytes", |r| {
        r.peak_rss_bytes.map(|b| b as f64)
    });
    Ok(vec![report])
}

fn run_one(env: &Env, contender: Contender, load: Load) -> Result<ContenderResult> {
    let direct = contender == Contender::Limit;
    let source_topic = if direct {
        "w2-direct".to_string()
    } else {
        format!("w2-{contender}")
    };
    create_topics(
        &env.source.client_config(),
        std::slice::from_ref(&source_topic),
        PARTITIONS,
    )?;
    let job = Job {
        alias: format!("{contender}_w2"),
        topics: Topics::Names(vec![source_topic.clone()]),
        catch_up: false,
        tasks: PARTITIONS as usize,
        checkpoint_interval: None,
    };
    // `direct` reads the source topic itself and deletes nothing.
    let (read_from, target_topic) = match direct {
        true => (env.source.bootstrap_servers(), source_topic.clone()),
        false => (
            env.target.bootstrap_servers(),
            job.target_topic(&source_topic),
        ),
    };
    let outcome =
        (|| {
            let mut launched = match direct {
                true => None,
                false => Some(contenders::launch(
                    env,
                    contender,
                    &job,
                    &format!("w2-{contender}"),
                )?),
            };
            let mut result = ContenderResult {
                contender: if direct {
                    "direct".into()
                } else {
                    contender.to_string()
                },
                version: launched.as_ref().and_then(|l| l.version.clone()),
                log: launched
                    .as_ref()
                    .map(|l| l.process.log_path().display().to_string()),
                ..Default::default()
            };
            let consumer = LatencyConsumer::start(read_from.to_string(), target_topic.clone());
            // The floor under the same load: the source topic, read while
            // the replicator runs (for `direct` that is the main consumer).
            let source_side = (!direct).then(|| {
                LatencyConsumer::start(
                    env.source.bootstrap_servers().to_string(),
                    source_topic.clone(),
                )
            });
            let producer: BaseProducer<DeliveryCounter> = {
                let mut cfg = producer_config(env.source.bootstrap_servers());
                // The source producer's own batching counts in the latency;
                // keep it small.
                cfg.set("linger.ms", "1");
                cfg.create_with_context(DeliveryCounter::default())
                    .context(|| "cannot create the W2 producer")?
            };
            let dataset = Dataset::new(PARTITIONS, u64::MAX, VALUE_SIZE);
            let mut buf = RecordBuf::default();

            // Readiness: a probe record every 500 ms until one arrives.
            let ready = Instant::now();
            let mut probes = 0u64;
            while !consumer.probe_seen.load(Ordering::Acquire) {
                if ready.elapsed() > READY_TIMEOUT {
                    bail!(
                    "no probe record reached the target within {READY_TIMEOUT:?}; {} output:\n{}",
                    contender,
                    launched.as_ref().map(|l| l.process.log_tail(12)).unwrap_or_default()
                );
                }
                if let Some(l) = launched.as_mut() {
                    if l.process.poll_exit()?.is_some() {
                        bail!(
                            "{contender} exited during start-up:\n{}",
                            l.process.log_tail(12)
                        );
                    }
                }
                dataset.render(probes, &mut buf);
                buf.key.clear();
                buf.key
                    .extend_from_slice(format!("probe-{probes}").as_bytes());
                buf.timestamp_ms = now_ms();
                send(
                    &producer,
                    &source_topic,
                    &buf,
                    Instant::now() + Duration::from_secs(30),
                )?;
                producer
                    .flush(Duration::from_secs(30))
                    .context(|| "cannot send a probe")?;
                probes += 1;
                std::thread::sleep(Duration::from_millis(500));
            }
            let before = launched.as_mut().map(|l| l.process.sample()).transpose()?;

            // The measured phase, paced in 1 ms steps.
            let started = Instant::now();
            let mut sent = 0u64;
            let mut bytes = 0u64;
            while started.elapsed() < load.duration {
                let due = (started.elapsed().as_secs_f64() * load.rate) as u64;
                while sent < due {
                    dataset.render(sent, &mut buf);
                    buf.timestamp_ms = now_ms();
                    send(
                        &producer,
                        &source_topic,
                        &buf,
                        Instant::now() + Duration::from_secs(60),
                    )?;
                    bytes += buf.size();
                    sent += 1;
                }
                producer.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_millis(1));
            }
            producer
                .flush(Duration::from_secs(60))
                .context(|| "the W2 producer did not flush")?;
            let produced_in = started.elapsed();

            // Drain: wait for every measured record, bounded.
            let drain_limit = Duration::from_secs(60).max(load.duration * 2);
            let drain = Instant::now();
            while consumer.received.load(Ordering::Acquire) < sent && drain.elapsed() < drain_limit
            {
                if let Some(l) = launched.as_mut() {
                    if l.process.poll_exit()?.is_some() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let after = launched.as_mut().map(|l| l.process.sample()).transpose()?;
            let latencies = consumer.stop()?;
            if let Some(source_side) = source_side {
                result.source_latency_ms = Some(latency_stats(source_side.stop()?, sent));
            }
            if let Some(l) = launched.as_mut() {
                let (stats, _) = finish(l)?;
                result.threads = l.process.thread_cpu();
                result.host_load_1m = super::load_1m();
                let (before, after) = (before.unwrap_or(stats), after.unwrap_or(stats));
                let cpu = after.cpu_time.saturating_sub(before.cpu_time).as_secs_f64();
                result.cpu_seconds = Some(cpu);
                result.cpu_seconds_per_gb = Some(cpu / (bytes as f64 / 1e9));
                result.peak_rss_bytes = Some(stats.peak_rss_bytes.max(after.peak_rss_bytes));
            }
            result.records_expected = sent;
            result.records_copied = latencies.len() as u64;
            result.copied_all = result.records_copied >= sent;
            result.ok = result.copied_all;
            if !result.ok {
                result.error = Some(format!(
                    "{} of {sent} records had not arrived {:.0}s after the producer stopped",
                    sent - result.records_copied.min(sent),
                    drain_limit.as_secs_f64()
                ));
            }
            result.wall_seconds = Some(produced_in.as_secs_f64());
            result.records_per_sec = Some(sent as f64 / produced_in.as_secs_f64());
            result.mb_per_sec = Some(bytes as f64 / 1e6 / produced_in.as_secs_f64());
            result.latency_ms = Some(latency_stats(latencies, sent));
            Ok(result)
        })();
    if !direct {
        cleanup(env, &[target_topic]);
    }
    outcome
}

/// Percentiles over every measured record (nearest rank).
pub fn latency_stats(mut ms: Vec<i64>, expected: u64) -> Latency {
    ms.sort_unstable();
    let count = ms.len() as u64;
    let rank = |q: f64| -> f64 {
        if ms.is_empty() {
            return f64::NAN;
        }
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i] as f64
    };
    Latency {
        count,
        missing: expected.saturating_sub(count),
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: ms.last().map_or(f64::NAN, |&m| m as f64),
        mean: if ms.is_empty() {
            f64::NAN
        } else {
            ms.iter().sum::<i64>() as f64 / ms.len() as f64
        },
    }
}

/// A thread consuming the target topic, recording each record's latency.
struct LatencyConsumer {
    stop: Arc<AtomicBool>,
    probe_seen: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<Result<Vec<i64>>>,
}

impl LatencyConsumer {
    fn start(bootstrap: String, topic: String) -> LatencyConsumer {
        let stop = Arc::new(AtomicBool::new(false));
        let probe_seen = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (s, p, r) = (stop.clone(), probe_seen.clone(), received.clone());
        let thread = std::thread::spawn(move || consume(&bootstrap, &topic, &s, &p, &r));
        LatencyConsumer {
            stop,
            probe_seen,
            received,
            thread,
        }
    }

    fn stop(self) -> Result<Vec<i64>> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| BenchError::new("the latency consumer panicked"))?
    }
}

fn consume(
    bootstrap: &str,
    topic: &str,
    stop: &AtomicBool,
    probe_seen: &AtomicBool,
    received: &AtomicU64,
) -> Result<Vec<i64>> {
    let mut cfg = crate::kafka::client_config(bootstrap);
    cfg.set("group.id", "ferry-bench-w2")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("auto.offset.reset", "earliest");
    // Wait for the replicator to create the target topic.
    let offsets = Offsets::new(&cfg)?;
    let partitions = loop {
        if stop.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        if let Some(&n) = offsets.topics()?.get(topic) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let consumer: BaseConsumer = cfg
        .create()
        .context(|| "cannot create the latency consumer")?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .context(|| "bad partition")?;
    }
    consumer.assign(&assignment)?;
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut seen: BTreeMap<i32, i64> = BTreeMap::new();
    while !stop.load(Ordering::Acquire) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Ok(message) = message else { continue };
        let now = now_ms();
        // At-least-once replicators may deliver a record twice; count each
        // target offset once.
        let last = seen.entry(message.partition()).or_insert(-1);
        if message.offset() <= *last {
            continue;
        }
        *last = message.offset();
        if message.key().is_some_and(|k| k.starts_with(b"probe-")) {
            probe_seen.store(true, Ordering::Release);
            continue;
        }
        if let Some(ts) = message.timestamp().to_millis() {
            latencies.push(now - ts);
            received.fetch_add(1, Ordering::AcqRel);
        }
    }
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = latency_stats((1..=100).rev().collect(), 110);
        assert_eq!((l.count, l.missing), (100, 10));
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(l.mean, 50.5);
    }
}
