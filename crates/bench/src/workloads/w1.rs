//! W1 — catch-up: a preloaded backlog over 8 partitions, copied as fast as
//! each contender can. Two cases: 2,000,000 × 200 B and 200,000 × 2 KB
//! (`--quick`: 20,000 and 2,000). The source topics are preloaded once and
//! shared; each contender writes to its own target topic, deleted after the
//! checks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_testkit::data::read_partition;

use super::{
    all_copied, cleanup, delivery_problems, failed, fill_throughput, finish, last_records_visible,
    progress_line, watch,
};
use crate::contenders::{self, limit, Contender, Job, Topics};
use crate::dataset::{produce_dataset, producer_config, warm_transactions, Dataset, RecordBuf};
use crate::error::Result;
use crate::kafka::{create_topics, delete_topics};
use crate::readback::{read_back, same_record, TailWatch};
use crate::report::{CaseReport, ContenderResult};
use crate::Env;

/// Partitions of every W1 topic.
pub const PARTITIONS: i32 = 8;
/// How often the target's end offsets are polled.
const POLL: Duration = Duration::from_millis(100);

/// One W1 data set.
pub struct Case {
    pub name: &'static str,
    /// Short id used in topic names and aliases.
    pub id: &'static str,
    pub dataset: Dataset,
}

impl Case {
    pub fn topic(&self) -> String {
        format!("w1-{}", self.id)
    }
}

pub fn cases(quick: bool) -> Vec<Case> {
    let scale = if quick { 100 } else { 1 };
    vec![
        Case {
            name: "w1-200B",
            id: "200b",
            dataset: Dataset::new(PARTITIONS, 2_000_000 / scale, 200),
        },
        Case {
            name: "w1-2KB",
            id: "2kb",
            dataset: Dataset::new(PARTITIONS, 200_000 / scale, 2048),
        },
    ]
}

/// CPU seconds of the source and target brokers so far.
fn broker_cpu(env: &Env) -> (Option<f64>, Option<f64>) {
    let cpu = |c: &ferry_testkit::KafkaCluster| {
        c.broker_pid(1)
            .and_then(|pid| ferry_testkit::proc::sample(pid).ok())
            .map(|s| s.cpu_time.as_secs_f64())
    };
    (cpu(&env.source), cpu(&env.target))
}

/// Runs a contender and adds the brokers' CPU during its run.
fn with_broker_cpu(env: &Env, run: impl FnOnce() -> ContenderResult) -> ContenderResult {
    let (s0, t0) = broker_cpu(env);
    let mut result = run();
    let (s1, t1) = broker_cpu(env);
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    result.source_broker_cpu_seconds = delta(s0, s1);
    result.target_broker_cpu_seconds = delta(t0, t1);
    result
}

/// Runs W1: preloads every case once, then runs each contender on each.
pub fn run(env: &Env) -> Result<Vec<CaseReport>> {
    let cases = cases(env.quick);
    let mut reports = Vec::new();
    for case in &cases {
        let topic = case.topic();
        create_topics(
            &env.source.client_config(),
            std::slice::from_ref(&topic),
            PARTITIONS,
        )?;
        let started = Instant::now();
        let bytes = produce_dataset(
            &producer_config(env.source.bootstrap_servers()),
            &topic,
            &case.dataset,
        )?;
        eprintln!(
            "ferry-bench: preloaded {} records ({:.0} MB) into {topic} in {:.1}s",
            case.dataset.records,
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        reports.push(CaseReport {
            name: case.name.to_string(),
            description: format!(
                "catch-up of {} records × {} B values over {PARTITIONS} partitions",
                case.dataset.records, case.dataset.value_size
            ),
            topics: 1,
            partitions_per_topic: PARTITIONS,
            value_size: case.dataset.value_size,
            records: case.dataset.records,
            bytes,
            ..Default::default()
        });
    }
    warm_up(env, &cases)?;
    for (case, report) in cases.iter().zip(&mut reports) {
        for &contender in &env.contenders {
            eprintln!("ferry-bench: {} — {contender} ...", case.name);
            let result = match contender {
                Contender::Limit => run_limit(env, case, report.bytes),
                c => with_broker_cpu(env, || run_replicator(env, case, c, report.bytes)),
            };
            eprintln!(
                "ferry-bench: {} — {contender}: {}",
                case.name,
                progress_line(&result)
            );
            report.results.push(result);
        }
        add_ratios(report);
    }
    Ok(reports)
}

/// Fresh broker JVMs compile their produce and fetch paths on first use.
/// On two cores that compilation competes with whichever contender runs
/// first: JFR on the target broker during the first contender's run showed
/// about 4 s of JIT compilation, and that contender's target-broker CPU was
/// three times the second one's for the same records. One pass of the same
/// traffic before any contender (each case's records written to a scratch
/// topic on the target, each preloaded topic drained from the source) makes
/// the results independent of the contenders' order. With an exactly-once
/// contender, transactions are warmed up too (see `warm_transactions`):
/// otherwise the first one pays for the target creating its transaction
/// log, a second at its start in the first case only.
fn warm_up(env: &Env, cases: &[Case]) -> Result<()> {
    let started = Instant::now();
    let target = env.target.client_config();
    let transactional = env
        .contenders
        .iter()
        .any(|c| matches!(c, Contender::FerryEos | Contender::Mm2Eos));
    for case in cases {
        let scratch = format!("warmup_{}", case.id);
        create_topics(&target, std::slice::from_ref(&scratch), PARTITIONS)?;
        let producer = producer_config(env.target.bootstrap_servers());
        produce_dataset(&producer, &scratch, &case.dataset)?;
        if transactional {
            warm_transactions(&producer, &scratch, &case.dataset)?;
        }
        delete_topics(&target, std::slice::from_ref(&scratch))?;
        limit::drain(env.source.bootstrap_servers(), &case.topic(), PARTITIONS)?;
    }
    eprintln!(
        "ferry-bench: warmed both brokers up in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The ratios and goals of a W1 case.
pub fn add_ratios(report: &mut CaseReport) {
    let rps = |r: &ContenderResult| r.records_per_sec;
    report.add_ratio("ferry", "limit", "records_per_sec", rps);
    report.add_ratio("ferry", "mm2", "records_per_sec", rps);
    report.add_ratio("ferry", "python", "records_per_sec", rps);
    report.add_ratio("ferry", "baseline", "records_per_sec", rps);
    report.add_ratio("ferry", "baseline", "cpu_seconds_per_gb", |r| {
        r.cpu_seconds_per_gb
    });
    report.add_ratio("ferry", "limit", "cpu_seconds_per_gb", |r| {
        r.cpu_seconds_per_gb
    });
    report.add_ratio("ferry", "mm2", "cpu_seconds_per_gb", |r| {
        r.cpu_seconds_per_gb
    });
    report.add_ratio("ferry", "mm2", "peak_rss_bytes", |r| {
        r.peak_rss_bytes.map(|b| b as f64)
    });
    report.add_target("ferry/limit records_per_sec", ">=", 0.8);
    report.add_target("ferry/mm2 records_per_sec", ">=", 1.5);
    report.add_target("ferry/python records_per_sec", ">=", 2.0);
    report.add_target("ferry/mm2 cpu_seconds_per_gb", "<=", 0.5);
    report.add_target("ferry/mm2 peak_rss_bytes", "<=", 0.25);
    // Exactly-once: its cost against Ferry's own at-least-once, and against
    // MirrorMaker 2's exactly-once.
    if report.results.iter().any(|r| r.contender == "ferry-eos") {
        report.add_ratio("ferry-eos", "ferry", "records_per_sec", rps);
        report.add_ratio("ferry-eos", "mm2-eos", "records_per_sec", rps);
        report.add_ratio("ferry-eos", "ferry", "cpu_seconds_per_gb", |r| {
            r.cpu_seconds_per_gb
        });
        report.add_ratio("ferry-eos", "mm2-eos", "cpu_seconds_per_gb", |r| {
            r.cpu_seconds_per_gb
        });
        report.add_target("ferry-eos/ferry records_per_sec", ">=", 0.7);
        report.add_target("ferry-eos/mm2-eos records_per_sec", ">=", 3.0);
    }
}

fn run_replicator(env: &Env, case: &Case, contender: Contender, bytes: u64) -> ContenderResult {
    let expected_records = case.dataset.records;
    let job = Job {
        alias: format!("{contender}_{}", case.id),
        topics: Topics::Names(vec![case.topic()]),
        catch_up: true,
        tasks: PARTITIONS as usize,
        checkpoint_interval: None,
    };
    let target_topic = job.target_topic(&case.topic());
    let outcome = (|| -> Result<ContenderResult> {
        let tail = TailWatch::new(
            &env.target.client_config(),
            &target_topic,
            case.dataset.per_partition(),
        )?;
        let mut launched =
            contenders::launch(env, contender, &job, &format!("{}-{contender}", case.name))?;
        let mut result = ContenderResult {
            contender: contender.to_string(),
            version: launched.version.clone(),
            records_expected: expected_records,
            log: Some(launched.process.log_path().display().to_string()),
            ..Default::default()
        };
        let watched = watch(
            env,
            &mut launched.process,
            std::slice::from_ref(&target_topic),
            POLL,
            last_records_visible(&target_topic, &tail),
        )?;
        let (stats, exit) = finish(&mut launched)?;
        result.threads = launched.process.thread_cpu();
        fill_throughput(&mut result, &watched, stats, exit, bytes);
        if contender.exactly_once() {
            verify_committed(env, case, &target_topic, &mut result)?;
        } else {
            verify(env, case, &target_topic, &mut result)?;
        }
        Ok(result)
    })();
    cleanup(env, &[target_topic]);
    outcome.unwrap_or_else(|e| failed(contender.name(), expected_records, e.to_string()))
}

/// Checks the final counts per partition and the content of the last record
/// of every partition; sets `records_copied`, `copied_all`, `spot_check_ok`
/// and `ok`.
fn verify(env: &Env, case: &Case, target_topic: &str, result: &mut ContenderResult) -> Result<()> {
    let offsets = crate::kafka::Offsets::new(&env.target.client_config())?;
    let ends = offsets.topic_end_offsets(target_topic, PARTITIONS)?;
    let want = case.dataset.per_partition();
    result.records_copied = ends.iter().map(|&e| e.max(0) as u64).sum();
    result.copied_all = ends == want;
    let mut buf = RecordBuf::default();
    let mut spot_ok = true;
    let mut problems = Vec::new();
    for (p, &n) in want.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let got = read_partition(
            &env.target.client_config(),
            target_topic,
            p as i32,
            n - 1,
            Some(n),
        )?;
        case.dataset.render_at(p as i32, (n - 1) as u64, &mut buf);
        let Some(record) = got.first() else {
            spot_ok = false;
            problems.push(format!("partition {p}: no record at offset {}", n - 1));
            continue;
        };
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        if !same_record(
            &buf,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
            record.timestamp,
        ) {
            spot_ok = false;
            problems.push(format!(
                "partition {p}: the record at offset {} differs from the source's",
                n - 1
            ));
        }
    }
    result.spot_check_ok = Some(spot_ok);
    result.ok = result.records_copied >= result.records_expected
        && ends.iter().zip(&want).all(|(e, w)| e >= w)
        && spot_ok;
    if !result.copied_all && result.ok {
        problems.push(format!(
            "{} duplicate records on the target",
            result.records_copied - result.records_expected
        ));
    }
    if !problems.is_empty() {
        result.error = Some(problems.join("; "));
    }
    Ok(())
}

/// [`verify`] for a contender that writes through transactions: the target
/// read back `read_committed`, every record counted by its sequence number
/// (its offsets also hold transaction markers). Not a single marker means it
/// did not use transactions, and duplicates break its promise: both fail it.
fn verify_committed(
    env: &Env,
    case: &Case,
    target_topic: &str,
    result: &mut ContenderResult,
) -> Result<()> {
    let back = read_back(
        &env.target.client_config(),
        target_topic,
        &case.dataset,
        env.timeout,
    )?;
    let d = back.delivered;
    let mut problems = back.problems;
    result.spot_check_ok = Some(problems.is_empty());
    result.records_copied = d.records;
    result.copied_all = d.missing == 0 && d.duplicates == 0 && d.unexpected == 0;
    if d.hidden_offsets == 0 {
        problems.push(
            "no transaction marker on the target: it did not write through transactions".into(),
        );
    }
    problems.extend(delivery_problems(&d, true));
    result.ok = result.copied_all && problems.is_empty();
    if !problems.is_empty() {
        result.error = Some(problems.join("; "));
    }
    result.delivered = Some(d);
    Ok(())
}

/// The limit: consume-only on the source, then produce-only to a fresh
/// target topic; the row is the slower half's throughput and the sum of
/// both halves' CPU.
fn run_limit(env: &Env, case: &Case, bytes: u64) -> ContenderResult {
    let expected = case.dataset.records;
    let consume = with_broker_cpu(env, || {
        limit_consume(env, case, bytes)
            .unwrap_or_else(|e| failed("limit-consume", expected, e.to_string()))
    });
    let target_topic = format!("limit_{}.{}", case.id, case.topic());
    let produce = with_broker_cpu(env, || {
        limit_produce(env, case, &target_topic, bytes)
            .unwrap_or_else(|e| failed("limit-produce", expected, e.to_string()))
    });
    cleanup(env, &[target_topic]);
    combine_limit(consume, produce, bytes)
}

fn limit_consume(env: &Env, case: &Case, bytes: u64) -> Result<ContenderResult> {
    let mut process = limit::launch_consume(
        env,
        &case.topic(),
        PARTITIONS,
        &format!("{}-limit-consume", case.name),
    )?;
    let mut result = ContenderResult {
        contender: "limit-consume".into(),
        version: Some(format!(
            "rdkafka 0.39 / librdkafka {}",
            rdkafka::util::get_rdkafka_version().1
        )),
        records_expected: case.dataset.records,
        log: Some(process.log_path().display().to_string()),
        ..Default::default()
    };
    let Some((status, stats, at)) = process.wait_exit(env.timeout)? else {
        process.stop()?;
        crate::bail!("limit-consume did not finish within {:?}", env.timeout);
    };
    result.threads = process.thread_cpu();
    let output = process.log_tail(5);
    if !status.success() {
        crate::bail!("limit-consume exited with {status}:\n{output}");
    }
    let last = output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    let json: serde_json::Value = serde_json::from_str(last)?;
    result.records_copied = json["records"].as_u64().unwrap_or(0);
    result.copied_all = result.records_copied == result.records_expected;
    result.ok = result.copied_all;
    if !result.ok {
        result.error = Some(format!(
            "read {} of {} records",
            result.records_copied, result.records_expected
        ));
    }
    let watched = super::Watched {
        first: None,
        done: Some(at),
        ends: BTreeMap::new(),
    };
    fill_throughput(&mut result, &watched, stats, Some(at), bytes);
    Ok(result)
}

fn limit_produce(
    env: &Env,
    case: &Case,
    target_topic: &str,
    bytes: u64,
) -> Result<ContenderResult> {
    create_topics(
        &env.target.client_config(),
        &[target_topic.to_string()],
        PARTITIONS,
    )?;
    let process = limit::launch_produce(
        env,
        target_topic,
        &case.dataset,
        &format!("{}-limit-produce", case.name),
    )?;
    let mut launched = contenders::Launched {
        process,
        exits_by_itself: true,
        metrics_port: None,
        version: Some(format!(
            "rdkafka 0.39 / librdkafka {}",
            rdkafka::util::get_rdkafka_version().1
        )),
    };
    let mut result = ContenderResult {
        contender: "limit-produce".into(),
        version: launched.version.clone(),
        records_expected: case.dataset.records,
        log: Some(launched.process.log_path().display().to_string()),
        ..Default::default()
    };
    let expected = BTreeMap::from([(target_topic.to_string(), case.dataset.per_partition())]);
    let watched = watch(
        env,
        &mut launched.process,
        &[target_topic.to_string()],
        POLL,
        all_copied(&expected),
    )?;
    let (stats, exit) = finish(&mut launched)?;
    result.threads = launched.process.thread_cpu();
    fill_throughput(&mut result, &watched, stats, exit, bytes);
    verify(env, case, target_topic, &mut result)?;
    Ok(result)
}

/// The `limit` row from its two halves.
pub fn combine_limit(
    consume: ContenderResult,
    produce: ContenderResult,
    bytes: u64,
) -> ContenderResult {
    let both = |f: fn(&ContenderResult) -> Option<f64>, pick: fn(f64, f64) -> f64| match (
        f(&consume),
        f(&produce),
    ) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        _ => None,
    };
    let ok = consume.ok && produce.ok;
    let cpu = both(|r| r.cpu_seconds, |a, b| a + b);
    ContenderResult {
        contender: "limit".into(),
        version: produce.version.clone(),
        ok,
        error: (!ok).then(|| "a half of the limit failed (see its row)".to_string()),
        records_expected: produce.records_expected,
        records_copied: produce.records_copied,
        copied_all: consume.copied_all && produce.copied_all,
        spot_check_ok: produce.spot_check_ok,
        wall_seconds: both(|r| r.wall_seconds, f64::max),
        first_record_seconds: None,
        exit_seconds: None,
        records_per_sec: both(|r| r.records_per_sec, f64::min),
        mb_per_sec: both(|r| r.mb_per_sec, f64::min),
        records_per_sec_after_first: None,
        cpu_seconds: cpu,
        cpu_seconds_per_gb: cpu.map(|c| c / (bytes as f64 / 1e9)),
        peak_rss_bytes: match (consume.peak_rss_bytes, produce.peak_rss_bytes) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        },
        source_broker_cpu_seconds: both(|r| r.source_broker_cpu_seconds, |a, b| a + b),
        target_broker_cpu_seconds: both(|r| r.target_broker_cpu_seconds, |a, b| a + b),
        parts: vec![consume, produce],
        ..Default::default()
    }
}
