//! W3 — breadth: 1,000 topics × 4 partitions (`--quick`: 20) with light
//! traffic (2 records of 200 B per partition, preloaded once). Each
//! replicator runs as a daemon over the pattern `w3-[0-9]+`; the harness
//! measures the time from its start until every topic has at least one
//! record on the target, waits until everything is copied, then watches it
//! idle for 10 s (`--quick`: 2 s): CPU over that window, resident memory at
//! its end, and the number of Prometheus series Ferry exposes.
//!
//! The limit of W3 is the target broker itself: the harness creates as many
//! topics there (same partitions, one CreateTopics per 200) and times how
//! long until every partition has a leader. No replicator can have its
//! first record on every topic sooner than its broker has the topics.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};

use super::{all_copied, cleanup, failed, finish, watch};
use crate::contenders::{self, Contender, Job, Topics};
use crate::dataset::{producer_config, send, Dataset, DeliveryCounter, RecordBuf};
use crate::error::{Context, Result};
use crate::kafka::create_topics;
use crate::report::{Breadth, CaseReport, ContenderResult};
use crate::{bail, Env};

pub const PARTITIONS: i32 = 4;
const RECORDS_PER_PARTITION: u64 = 2;
const VALUE_SIZE: usize = 200;
const POLL: Duration = Duration::from_millis(500);

pub fn topic_names(quick: bool) -> Vec<String> {
    let count = if quick { 20 } else { 1000 };
    (0..count).map(|i| format!("w3-{i:04}")).collect()
}

pub fn run(env: &Env) -> Result<Vec<CaseReport>> {
    let topics = topic_names(env.quick);
    let idle = if env.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let started = Instant::now();
    create_topics(&env.source.client_config(), &topics, PARTITIONS)?;
    let dataset = Dataset::new(
        PARTITIONS,
        PARTITIONS as u64 * RECORDS_PER_PARTITION,
        VALUE_SIZE,
    );
    let bytes = preload(env, &topics, &dataset)?;
    eprintln!(
        "ferry-bench: created and preloaded {} topics in {:.1}s",
        topics.len(),
        started.elapsed().as_secs_f64()
    );
    let mut report = CaseReport {
        name: "w3".into(),
        description: format!(
            "breadth: {} topics × {PARTITIONS} partitions, {RECORDS_PER_PARTITION} records per partition, {:.0}s idle",
            topics.len(),
            idle.as_secs_f64()
        ),
        topics: topics.len() as u64,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        records: dataset.records * topics.len() as u64,
        bytes,
        ..Default::default()
    };
    for &contender in &env.contenders {
        eprintln!("ferry-bench: w3 — {contender} ...");
        let result = if contender == Contender::Limit {
            topic_creation_limit(env, topics.len())
        } else {
            run_one(env, contender, &topics, &dataset, idle)
        }
        .unwrap_or_else(|e| failed(contender.name(), report.records, e.to_string()));
        eprintln!(
            "ferry-bench: w3 — {contender}: {}",
            match (&result.breadth, &result.error) {
                (Some(b), None) => format!(
                    "ok: every topic after {}s, idle CPU {}%",
                    b.all_topics_seconds
                        .map_or("-".into(), |s| format!("{s:.1}")),
                    b.idle_cpu_percent.map_or("-".into(), |c| format!("{c:.1}"))
                ),
                (_, e) => format!("FAILED: {}", e.as_deref().unwrap_or("?")),
            }
        );
        report.results.push(result);
    }
    let breadth =
        |f: fn(&Breadth) -> Option<f64>| move |r: &ContenderResult| r.breadth.as_ref().and_then(f);
    report.add_ratio(
        "ferry",
        "limit",
        "all_topics_seconds",
        breadth(|b| b.all_topics_seconds),
    );
    report.add_ratio(
        "ferry",
        "mm2",
        "all_topics_seconds",
        breadth(|b| b.all_topics_seconds),
    );
    report.add_ratio(
        "ferry",
        "python",
        "all_topics_seconds",
        breadth(|b| b.all_topics_seconds),
    );
    report.add_ratio(
        "ferry",
        "mm2",
        "idle_cpu_percent",
        breadth(|b| b.idle_cpu_percent),
    );
    report.add_ratio("ferry", "mm2", "peak_rss_bytes", |r| {
        r.peak_rss_bytes.map(|b| b as f64)
    });
    report.add_target("ferry/mm2 peak_rss_bytes", "<=", 0.25);
    Ok(vec![report])
}

/// The target broker alone: creates `count` topics of [`PARTITIONS`] there,
/// times until every partition is led, and deletes them again.
fn topic_creation_limit(env: &Env, count: usize) -> Result<ContenderResult> {
    let names: Vec<String> = (0..count).map(|i| format!("w3-limit-{i:04}")).collect();
    let started = Instant::now();
    let created = create_topics(&env.target.client_config(), &names, PARTITIONS);
    let took = started.elapsed();
    cleanup(env, &names);
    created?;
    Ok(ContenderResult {
        contender: Contender::Limit.to_string(),
        version: Some("target broker, topic creation only".into()),
        ok: true,
        host_load_1m: super::load_1m(),
        breadth: Some(Breadth {
            topics_expected: count as u64,
            all_topics_seconds: Some(took.as_secs_f64()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Writes `dataset` to every topic with one producer.
fn preload(env: &Env, topics: &[String], dataset: &Dataset) -> Result<u64> {
    let producer: BaseProducer<DeliveryCounter> = producer_config(env.source.bootstrap_servers())
        .create_with_context(DeliveryCounter::default())
        .context(|| "cannot create the W3 producer")?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut buf = RecordBuf::default();
    let mut bytes = 0;
    for topic in topics {
        for i in 0..dataset.records {
            dataset.render(i, &mut buf);
            send(&producer, topic, &buf, deadline)?;
            bytes += buf.size();
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .context(|| "the W3 preload did not finish")?;
    let failed = producer
        .context()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} W3 preload records failed");
    }
    Ok(bytes)
}

fn run_one(
    env: &Env,
    contender: Contender,
    topics: &[String],
    dataset: &Dataset,
    idle: Duration,
) -> Result<ContenderResult> {
    let job = Job {
        alias: format!("{contender}_w3"),
        topics: Topics::Pattern("w3-[0-9]+".into()),
        catch_up: false,
        tasks: 4,
        checkpoint_interval: None,
    };
    let targets: Vec<String> = topics.iter().map(|t| job.target_topic(t)).collect();
    let outcome = (|| {
        let mut launched = contenders::launch(env, contender, &job, &format!("w3-{contender}"))?;
        let expected_records = dataset.records * topics.len() as u64;
        let mut result = ContenderResult {
            contender: contender.to_string(),
            version: launched.version.clone(),
            records_expected: expected_records,
            log: Some(launched.process.log_path().display().to_string()),
            ..Default::default()
        };
        let every_topic =
            |ends: &BTreeMap<String, Vec<i64>>| ends.values().all(|e| e.iter().sum::<i64>() > 0);
        let first_each = watch(env, &mut launched.process, &targets, POLL, every_topic)?;
        let expected: BTreeMap<String, Vec<i64>> = targets
            .iter()
            .map(|t| (t.clone(), dataset.per_partition()))
            .collect();
        let all = watch(
            env,
            &mut launched.process,
            &targets,
            POLL,
            all_copied(&expected),
        )?;

        let before = launched.process.sample()?;
        std::thread::sleep(idle);
        let after = launched.process.sample()?;
        let idle_rss = launched.process.current_rss().ok();
        let (prometheus_series, prometheus_note) = match launched.metrics_port {
            Some(port) => match count_series(port) {
                Ok(n) => (Some(n), None),
                Err(e) => (None, Some(format!("n/a: GET /metrics failed: {e}"))),
            },
            None => (
                None,
                Some(format!("n/a: {contender} exposes no Prometheus endpoint")),
            ),
        };
        let (stats, _) = finish(&mut launched)?;
        result.threads = launched.process.thread_cpu();
        result.host_load_1m = super::load_1m();

        let idle_cpu = after.cpu_time.saturating_sub(before.cpu_time).as_secs_f64();
        result.records_copied = all.copied();
        result.copied_all = all
            .ends
            .values()
            .all(|e| e.iter().copied().eq(dataset.per_partition()));
        result.ok = true;
        result.first_record_seconds = first_each.first.map(|d| d.as_secs_f64());
        result.wall_seconds = all.done.map(|d| d.as_secs_f64());
        result.cpu_seconds = Some(stats.cpu_time.as_secs_f64());
        result.peak_rss_bytes = Some(stats.peak_rss_bytes);
        result.breadth = Some(Breadth {
            topics_expected: topics.len() as u64,
            topics_replicated: first_each
                .ends
                .values()
                .filter(|e| e.iter().sum::<i64>() > 0)
                .count() as u64,
            all_topics_seconds: first_each.done.map(|d| d.as_secs_f64()),
            idle_seconds: idle.as_secs_f64(),
            idle_cpu_percent: Some(idle_cpu / idle.as_secs_f64() * 100.0),
            idle_rss_bytes: idle_rss,
            prometheus_series,
            prometheus_note,
        });
        Ok(result)
    })();
    cleanup(env, &targets);
    outcome
}

/// Sample lines of `GET /metrics` on loopback (comments and blank lines
/// excluded), with a 5 s bound on every step.
pub fn count_series(port: u16) -> Result<u64> {
    let timeout = Duration::from_secs(5);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut body = Vec::new();
    stream.take(64 << 20).read_to_end(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200") {
        bail!("answered {status:?}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Chunk-size lines are hex numbers alone on a line; they are never
        // sample lines (which have a name and a value).
        return Ok(rest
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && l.contains(' '))
            .count() as u64);
    }
    Ok(rest
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count() as u64)
}
