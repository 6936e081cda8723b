//! W5 — scale-out: several `ferry` processes running one topology file
//! share its flow through the flow's consumer group (`flows[].slots`,
//! `engine.group_prefix`). Two cases, on the same brokers in one run:
//!
//! - `w5-scale`: the same preloaded records (3 topics × 8 partitions,
//!   1,500,000 × 200 B; `--quick` 15,000) copied by one process, then by
//!   two processes of the same topology, each case on fresh target topics
//!   with a fresh group. Both cases run as daemons (with two processes,
//!   `--until caught-up` would let one stop while the other still copies);
//!   the target's end offsets are polled until it holds every record.
//! - `w5-rebalance`: one process copies a steady stream (a producer at a
//!   fixed rate into 3 topics × 8 partitions, 16 slots); a second process
//!   joins, then is SIGTERMed. Every target partition's end offset is read
//!   every 100 ms; `/status` says which slots moved; the longest copy gap
//!   of the partitions whose slot stayed and of those whose slot moved is
//!   reported for each change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_http::client::{self as http_client, Endpoint};
use ferry_http::StatusDocument;
use rdkafka::producer::{BaseProducer, Producer};

use super::{all_copied, cleanup, failed, load_1m, progress_line, watch_all, Watched};
use crate::contenders::{ferry, limit, Contender, Delivery, Job, Topics};
use crate::dataset::{
    now_ms, produce_dataset, producer_config, send, Dataset, DeliveryCounter, RecordBuf,
};
use crate::error::{BenchError, Context, Result};
use crate::kafka::{create_topics, delete_topics, Offsets};
use crate::measure::{Tracked, STOP_GRACE};
use crate::report::{CaseReport, ContenderResult, Rebalance, RebalancePhase};
use crate::{bail, free_port, Env};

/// Source topics per case, and partitions of each.
const TOPICS: usize = 3;
const PARTITIONS: i32 = 8;
/// The flow's slot count: the default of `flows[].slots`.
const SLOTS: u16 = 16;
const VALUE_SIZE: usize = 200;
/// How often the target's end offsets are read.
const SAMPLE: Duration = Duration::from_millis(100);
/// How often `/status` is asked while waiting for slots to change hands.
const STATUS_POLL: Duration = Duration::from_millis(200);

/// Sizes of one run.
struct Sizes {
    /// Records per preloaded `w5-scale` topic.
    scale_records_per_topic: u64,
    /// The `w5-rebalance` producer's rate over all partitions.
    rate: f64,
    /// How long one process copies alone before the second joins.
    steady: Duration,
    /// How long the gaps are still watched after every moved partition
    /// advanced again.
    settle: Duration,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            scale_records_per_topic: 5_000,
            rate: 1_200.0,
            steady: Duration::from_secs(3),
            settle: Duration::from_secs(2),
        }
    } else {
        Sizes {
            scale_records_per_topic: 500_000,
            rate: 4_800.0,
            steady: Duration::from_secs(10),
            settle: Duration::from_secs(3),
        }
    }
}

pub fn run(env: &Env) -> Result<Vec<CaseReport>> {
    if !env.runs(Contender::Ferry) {
        bail!("W5 runs ferry processes: add `ferry` to --contenders");
    }
    let sizes = sizes(env.quick);
    let scale = run_scale(env, &sizes)?;
    eprintln!("ferry-bench: w5-rebalance ...");
    let result = run_rebalance(env, &sizes).unwrap_or_else(|e| failed("ferry", 0, e.to_string()));
    eprintln!("ferry-bench: w5-rebalance: {}", rebalance_line(&result));
    let rebalance = CaseReport {
        name: "w5-rebalance".into(),
        description: format!(
            "a second process joins one copying {:.0} records/s × {VALUE_SIZE} B over \
             {TOPICS} topics × {PARTITIONS} partitions ({SLOTS} slots), then is SIGTERMed",
            sizes.rate
        ),
        topics: TOPICS as u64,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        records: result.records_expected,
        rate_per_sec: Some(sizes.rate),
        results: vec![result],
        ..Default::default()
    };
    Ok(vec![scale, rebalance])
}

fn rebalance_line(result: &ContenderResult) -> String {
    match (&result.rebalance, result.ok) {
        (Some(r), true) => r
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{}: stayed gap {} s, moved gap {} s",
                    p.phase,
                    p.gap_max_stayed_seconds
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    p.gap_max_moved_seconds
                        .map_or("-".into(), |v| format!("{v:.2}")),
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!("FAILED: {}", result.error.as_deref().unwrap_or("?")),
    }
}

/// The source topics of a case: `w5-<case>-0` ...
fn source_topics(case: &str) -> Vec<String> {
    (0..TOPICS).map(|i| format!("w5-{case}-{i}")).collect()
}

/// A job on `topics` under `alias`, as a daemon.
fn job(alias: &str, topics: &[String]) -> Job {
    Job {
        alias: alias.to_string(),
        topics: Topics::Names(topics.to_vec()),
        catch_up: false,
        tasks: PARTITIONS as usize * TOPICS,
        checkpoint_interval: None,
    }
}

/// Writes the topology every process of a case shares: the generated
/// one, with the case's own group prefix.
fn write_topology(env: &Env, job: &Job, group_prefix: &str) -> Result<std::path::PathBuf> {
    // Each process listens where `--http-listen` says; the file's port
    // is never bound.
    let listen = "listen = \"127.0.0.1:0\"\n";
    let mut text = ferry::topology(env, job, 0, Delivery::AtLeastOnce);
    if !text.contains(listen) {
        bail!(
            "the generated topology has no `{}` line to extend",
            listen.trim()
        );
    }
    // `/status` (slots, records) without the control token.
    text = text.replacen(listen, &format!("{listen}status_public = true\n"), 1);
    text.push_str(&format!("\n[engine]\ngroup_prefix = \"{group_prefix}\"\n"));
    let path = env.run_dir.join(format!("{}.toml", job.alias));
    std::fs::write(&path, text).context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One `ferry run` process of a case, on its own HTTP port.
struct Member {
    process: Tracked,
    endpoint: Endpoint,
}

impl Member {
    fn spawn(env: &Env, topology: &std::path::Path, name: &str) -> Result<Member> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new(&env.ferry.path);
        cmd.arg("run")
            .arg("-c")
            .arg(topology)
            .arg("--http-listen")
            .arg(addr.to_string());
        cmd.envs(env.ferry_env.iter().map(|(k, v)| (k, v)));
        let log = env.run_dir.join(format!("{name}.log"));
        Ok(Member {
            process: Tracked::spawn(name, cmd, &log)?,
            endpoint: Endpoint::plain(addr),
        })
    }

    fn status(&self) -> std::result::Result<StatusDocument, String> {
        status_at(&self.endpoint)
    }

    /// The slots the process owns (`None` until it joined its group).
    fn slots(&self) -> Option<BTreeSet<u16>> {
        slots_at(&self.endpoint)
    }

    /// What `/status` says about this process's share, read while it runs.
    fn snapshot(&self) -> Share {
        let Ok(status) = self.status() else {
            return Share::default();
        };
        let Some(flow) = status.flows.first() else {
            return Share::default();
        };
        Share {
            slots: flow
                .membership
                .as_ref()
                .map(|m| m.slots.iter().map(|s| s.slot).collect()),
            records: flow.topics.iter().map(|t| t.records_replicated).sum(),
            bytes: flow.topics.iter().map(|t| t.bytes_replicated).sum(),
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after the grace) and
    /// returns its row: `share` as read before, CPU = `cpu` when given
    /// (sampled at the end of the measured part) else the exact rusage,
    /// peak RSS from `/proc`.
    fn finish(&mut self, part: &str, share: Share, cpu: Option<f64>) -> Result<ContenderResult> {
        let status = self.process.stop()?;
        let Some((_, stats, _)) = self.process.poll_exit()? else {
            bail!("{} was not reaped", self.process.name);
        };
        if !status.success() {
            eprintln!(
                "ferry-bench: note: {} stopped with {status}; last output:\n{}",
                self.process.name,
                self.process.log_tail(6)
            );
        }
        let cpu = cpu.unwrap_or(stats.cpu_time.as_secs_f64());
        Ok(ContenderResult {
            contender: part.to_string(),
            ok: status.success(),
            error: (!status.success()).then(|| format!("stopped with {status}")),
            records_copied: share.records,
            cpu_seconds: Some(cpu),
            cpu_seconds_per_gb: (share.bytes > 0).then(|| cpu / (share.bytes as f64 / 1e9)),
            peak_rss_bytes: Some(stats.peak_rss_bytes),
            slots: share.slots.map(|s| s.into_iter().collect()),
            threads: self.process.thread_cpu(),
            log: Some(self.process.log_path().display().to_string()),
            host_load_1m: load_1m(),
            ..Default::default()
        })
    }
}

fn status_at(endpoint: &Endpoint) -> std::result::Result<StatusDocument, String> {
    http_client::status(endpoint, None).map_err(|e| format!("GET /status at {endpoint}: {e}"))
}

/// Waits (up to 60 s) until the members' `/status` together show every
/// slot exactly once: every member joined and the group's last
/// rebalance (a cooperative one moves slots in two rounds) is over.
fn wait_until_every_member_joined(members: &[Member]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let shared_out = || {
        let mut owned = Vec::new();
        for m in members {
            match m.slots() {
                Some(slots) => owned.extend(slots),
                None => return false,
            }
        }
        owned.sort_unstable();
        owned == (0..SLOTS).collect::<Vec<u16>>()
    };
    while Instant::now() < deadline && !shared_out() {
        std::thread::sleep(STATUS_POLL);
    }
}

/// The slots the process at `endpoint` owns (`None` until it joined).
fn slots_at(endpoint: &Endpoint) -> Option<BTreeSet<u16>> {
    let status = status_at(endpoint).ok()?;
    let membership = status.flows.first()?.membership.as_ref()?;
    Some(membership.slots.iter().map(|s| s.slot).collect())
}

/// The processes of a `w5-scale` case first had every slot shared out,
/// each owning some: `at` after the first one started, with `copied`
/// records on the target then.
struct Settled {
    at: Duration,
    copied: u64,
}

/// A thread asking every member's `/status` every [`SAMPLE`] until the
/// slots are shared out ([`Settled`]) or `stop` is set. Copying before
/// then is start-up: group joins and, with two processes, the first
/// rebalance, which moves half of the slots.
fn watch_settling(
    env: &Env,
    endpoints: Vec<Endpoint>,
    targets: Vec<String>,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Option<Settled>>> {
    let offsets = Offsets::new(&env.target.client_config())?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            let tick = Instant::now();
            let owned: Option<Vec<BTreeSet<u16>>> = endpoints.iter().map(slots_at).collect();
            if let Some(owned) = owned {
                let total: usize = owned.iter().map(BTreeSet::len).sum();
                let union: BTreeSet<u16> = owned.iter().flatten().copied().collect();
                if total == usize::from(SLOTS)
                    && union.len() == usize::from(SLOTS)
                    && owned.iter().all(|o| !o.is_empty())
                {
                    let at = started.elapsed();
                    let existing = offsets.topics().unwrap_or_default();
                    let present: BTreeMap<String, i32> = targets
                        .iter()
                        .filter_map(|t| existing.get(t).map(|&n| (t.clone(), n)))
                        .collect();
                    let copied = offsets
                        .end_offsets(&present)
                        .map(|ends| ends.values().flatten().map(|&e| e.max(0) as u64).sum())
                        .unwrap_or(0);
                    return Some(Settled { at, copied });
                }
            }
            std::thread::sleep(SAMPLE.saturating_sub(tick.elapsed()));
        }
        None
    }))
}

/// A process's share of the flow, from its `/status`.
#[derive(Default)]
struct Share {
    /// `None` until it joined its group.
    slots: Option<BTreeSet<u16>>,
    /// Records and bytes the target acknowledged for it since its start.
    records: u64,
    bytes: u64,
}

// ---------------------------------------------------------------- w5-scale

fn run_scale(env: &Env, sizes: &Sizes) -> Result<CaseReport> {
    let topics = source_topics("scale");
    let dataset = Dataset::new(PARTITIONS, sizes.scale_records_per_topic, VALUE_SIZE);
    create_topics(&env.source.client_config(), &topics, PARTITIONS)?;
    let started = Instant::now();
    let mut bytes = 0;
    for topic in &topics {
        bytes += produce_dataset(
            &producer_config(env.source.bootstrap_servers()),
            topic,
            &dataset,
        )?;
    }
    let records = dataset.records * TOPICS as u64;
    eprintln!(
        "ferry-bench: preloaded {records} records ({:.0} MB) into {} topics in {:.1}s",
        bytes as f64 / 1e6,
        TOPICS,
        started.elapsed().as_secs_f64()
    );
    warm_up(env, &topics, &dataset)?;
    let mut report = CaseReport {
        name: "w5-scale".into(),
        description: format!(
            "catch-up of {records} records × {VALUE_SIZE} B over {TOPICS} topics × \
             {PARTITIONS} partitions ({SLOTS} slots): one process, then two of the same topology"
        ),
        topics: TOPICS as u64,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        records,
        bytes,
        ..Default::default()
    };
    for (name, processes) in [("one-process", 1), ("two-processes", 2)] {
        eprintln!("ferry-bench: w5-scale — {name} ...");
        let result = scale_case(env, &topics, &dataset, name, processes, bytes)
            .unwrap_or_else(|e| failed(name, records, e.to_string()));
        eprintln!("ferry-bench: w5-scale — {name}: {}", progress_line(&result));
        report.results.push(result);
    }
    let rps = |r: &ContenderResult| r.records_per_sec;
    report.add_ratio("two-processes", "one-process", "records_per_sec", rps);
    report.add_ratio(
        "two-processes",
        "one-process",
        "records_per_sec_settled",
        |r| r.records_per_sec_settled,
    );
    report.add_ratio("two-processes", "one-process", "cpu_seconds_per_gb", |r| {
        r.cpu_seconds_per_gb
    });
    Ok(report)
}

/// As W1 does, one pass of the same traffic through both fresh broker
/// JVMs before the first case, so that their JIT compilation is not
/// charged to whichever case runs first.
fn warm_up(env: &Env, topics: &[String], dataset: &Dataset) -> Result<()> {
    let started = Instant::now();
    let target = env.target.client_config();
    let scratch = "warmup_w5".to_string();
    create_topics(&target, std::slice::from_ref(&scratch), PARTITIONS)?;
    for _ in topics {
        produce_dataset(
            &producer_config(env.target.bootstrap_servers()),
            &scratch,
            dataset,
        )?;
    }
    delete_topics(&target, std::slice::from_ref(&scratch))?;
    for topic in topics {
        limit::drain(env.source.bootstrap_servers(), topic, PARTITIONS)?;
    }
    eprintln!(
        "ferry-bench: warmed both brokers up in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `processes` ferry processes of one topology copy `topics` until the
/// target holds every record.
fn scale_case(
    env: &Env,
    topics: &[String],
    dataset: &Dataset,
    name: &str,
    processes: usize,
    bytes: u64,
) -> Result<ContenderResult> {
    let alias = format!("{}_w5", name.replace('-', "_"));
    let job = job(&alias, topics);
    let targets: Vec<String> = topics.iter().map(|t| job.target_topic(t)).collect();
    let outcome = (|| {
        let topology = write_topology(env, &job, &format!("ferry-bench-w5-{name}"))?;
        let mut members = (1..=processes)
            .map(|i| Member::spawn(env, &topology, &format!("w5-scale-{name}-{i}")))
            .collect::<Result<Vec<_>>>()?;
        let expected: BTreeMap<String, Vec<i64>> = targets
            .iter()
            .map(|t| (t.clone(), dataset.per_partition()))
            .collect();
        let stop_settling = Arc::new(AtomicBool::new(false));
        let settling = watch_settling(
            env,
            members.iter().map(|m| m.endpoint.clone()).collect(),
            targets.clone(),
            members[0].process.started,
            stop_settling.clone(),
        )?;
        let mut processes: Vec<&mut Tracked> = members.iter_mut().map(|m| &mut m.process).collect();
        let watched = watch_all(env, &mut processes, &targets, SAMPLE, all_copied(&expected));
        stop_settling.store(true, Ordering::Release);
        let settled = settling
            .join()
            .map_err(|_| BenchError::new("the W5 settling watch panicked"))?;
        let watched = watched?;
        // With a small data set the copy can end before a process that
        // started with the others has joined the group: the shares are read
        // once every process reports its slots.
        wait_until_every_member_joined(&members);
        // Every process's CPU up to now, before any of them stops (a
        // stopping member hands its slots to the others, which is not
        // part of the copy).
        let mut shares = Vec::new();
        for member in members.iter_mut() {
            let cpu = member.process.sample()?.cpu_time.as_secs_f64();
            shares.push((member.snapshot(), cpu));
        }
        let mut parts = Vec::new();
        for (i, (member, (share, cpu))) in members.iter_mut().zip(shares).enumerate() {
            parts.push(member.finish(&format!("member-{}", i + 1), share, Some(cpu))?);
        }
        let mut result = scale_result(name, &watched, parts, bytes, dataset, &expected);
        result.version = env.ferry.version.clone();
        if let (Some(settled), Some(done)) = (settled, watched.done) {
            result.settled_seconds = Some(settled.at.as_secs_f64());
            if done > settled.at {
                let rest = result.records_expected.saturating_sub(settled.copied);
                result.records_per_sec_settled =
                    Some(rest as f64 / (done - settled.at).as_secs_f64());
            }
        }
        Ok(result)
    })();
    cleanup(env, &targets);
    outcome
}

/// The row of a `w5-scale` case from its processes' rows.
fn scale_result(
    name: &str,
    watched: &Watched,
    parts: Vec<ContenderResult>,
    bytes: u64,
    dataset: &Dataset,
    expected: &BTreeMap<String, Vec<i64>>,
) -> ContenderResult {
    let records = dataset.records * TOPICS as u64;
    let secs = |d: Duration| d.as_secs_f64();
    let cpu: f64 = parts.iter().filter_map(|p| p.cpu_seconds).sum();
    let copied = watched.copied();
    let copied_all = expected
        .iter()
        .all(|(t, want)| watched.ends.get(t) == Some(want));
    let mut error = Vec::new();
    if !copied_all {
        error.push(format!(
            "{} duplicate records on the target",
            copied.saturating_sub(records)
        ));
    }
    let stopped_ok = parts.iter().all(|p| p.ok);
    if !stopped_ok {
        error.push("a process did not stop cleanly (see its row)".to_string());
    }
    let mut slots: Vec<u16> = parts
        .iter()
        .flat_map(|p| p.slots.clone().unwrap_or_default())
        .collect();
    slots.sort_unstable();
    if slots.len() != usize::from(SLOTS) || slots.windows(2).any(|w| w[0] == w[1]) {
        error.push(format!(
            "the processes owned {} slots together at the end ({slots:?}), not each of the {SLOTS} once",
            slots.len()
        ));
    }
    ContenderResult {
        contender: name.to_string(),
        ok: stopped_ok && copied >= records,
        error: (!error.is_empty()).then(|| error.join("; ")),
        records_expected: records,
        records_copied: copied,
        copied_all,
        wall_seconds: watched.done.map(secs),
        first_record_seconds: watched.first.map(secs),
        records_per_sec: watched.done.map(|d| records as f64 / secs(d)),
        mb_per_sec: watched.done.map(|d| bytes as f64 / 1e6 / secs(d)),
        records_per_sec_after_first: match (watched.first, watched.done) {
            (Some(first), Some(done)) if done > first => Some(records as f64 / secs(done - first)),
            _ => None,
        },
        cpu_seconds: Some(cpu),
        cpu_seconds_per_gb: Some(cpu / (bytes as f64 / 1e9)),
        peak_rss_bytes: parts.iter().filter_map(|p| p.peak_rss_bytes).max(),
        host_load_1m: load_1m(),
        parts,
        ..Default::default()
    }
}

// ------------------------------------------------------------ w5-rebalance

/// A producer writing `rate` records/s round-robin over every partition of
/// `topics`, CreateTime = now, until stopped.
struct SteadyProducer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64>>,
}

impl SteadyProducer {
    fn start(bootstrap: &str, topics: Vec<String>, rate: f64) -> Result<SteadyProducer> {
        let producer: BaseProducer<DeliveryCounter> = {
            let mut cfg = producer_config(bootstrap);
            // Each record should reach the source when it is due, so that
            // the target's partitions advance steadily.
            cfg.set("linger.ms", "1");
            cfg.create_with_context(DeliveryCounter::default())
                .context(|| "cannot create the W5 producer")?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let dataset = Dataset::new(PARTITIONS, u64::MAX, VALUE_SIZE);
            let mut buf = RecordBuf::default();
            let started = Instant::now();
            let mut sent = 0u64;
            while !stopping.load(Ordering::Acquire) {
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                while sent < due {
                    let topic = &topics[(sent % TOPICS as u64) as usize];
                    dataset.render(sent / TOPICS as u64, &mut buf);
                    buf.timestamp_ms = now_ms();
                    send(
                        &producer,
                        topic,
                        &buf,
                        Instant::now() + Duration::from_secs(60),
                    )?;
                    sent += 1;
                }
                producer.poll(Duration::ZERO);
                std::thread::sleep(Duration::from_millis(1));
            }
            producer
                .flush(Duration::from_secs(60))
                .context(|| "the W5 producer did not flush")?;
            let failed = producer.context().failed.load(Ordering::Relaxed);
            if failed > 0 {
                bail!("{failed} of the W5 producer's records failed");
            }
            Ok(sent)
        });
        Ok(SteadyProducer { stop, thread })
    }

    /// Stops producing and returns the records sent (all acknowledged).
    fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| BenchError::new("the W5 producer panicked"))?
    }
}

/// End offsets of every target partition, read at `at` (since the case's
/// start), index `topic × PARTITIONS + partition`.
#[derive(Clone)]
struct Sample {
    at: Duration,
    ends: Vec<i64>,
}

/// A thread reading the end offsets of the target topics every
/// [`SAMPLE`], from the moment they all exist.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: JoinHandle<Result<()>>,
}

impl Sampler {
    fn start(env: &Env, targets: Vec<String>, t0: Instant) -> Result<Sampler> {
        let offsets = Offsets::new(&env.target.client_config())?;
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stopping, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let topics: BTreeMap<String, i32> =
                targets.iter().map(|t| (t.clone(), PARTITIONS)).collect();
            let mut present = false;
            while !stopping.load(Ordering::Acquire) {
                let tick = Instant::now();
                // Until the process created them, the topics are not asked
                // for; afterwards a failed read (a leader moving) is skipped.
                if !present {
                    present = offsets
                        .topics()
                        .is_ok_and(|t| targets.iter().all(|n| t.get(n) == Some(&PARTITIONS)));
                }
                if present {
                    if let Ok(ends) = offsets.end_offsets(&topics) {
                        let ends = targets
                            .iter()
                            .flat_map(|t| ends.get(t).cloned().unwrap_or_default())
                            .collect();
                        let at = t0.elapsed();
                        out.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(Sample { at, ends });
                    }
                }
                std::thread::sleep(SAMPLE.saturating_sub(tick.elapsed()));
            }
            Ok(())
        });
        Ok(Sampler {
            stop,
            samples,
            thread,
        })
    }

    fn latest(&self) -> Option<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    /// Every partition in `indices` advanced after `since`: its latest end
    /// offset is above its end at the last sample read at or before then.
    fn advanced_since(&self, since: Duration, indices: &[usize]) -> bool {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(latest) = samples.last() else {
            return false;
        };
        let Some(base) = samples.iter().rev().find(|s| s.at <= since) else {
            return false;
        };
        indices.iter().all(|&i| latest.ends[i] > base.ends[i])
    }

    fn stop(self) -> Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| BenchError::new("the W5 sampler panicked"))??;
        Ok(std::mem::take(
            &mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The longest time between two end-offset increases of one partition
/// within `[from, to]` (seconds): from its last increase at or before
/// `from` (or `from`), through every increase in the window, to `to`.
/// `series` is `(seconds, end offset)` in time order.
pub fn longest_gap(series: &[(f64, i64)], from: f64, to: f64) -> f64 {
    let mut increases = series
        .windows(2)
        .filter(|w| w[1].1 > w[0].1)
        .map(|w| w[1].0);
    let mut last = from;
    let mut longest: f64 = 0.0;
    for at in increases.by_ref() {
        if at <= from {
            last = at;
            continue;
        }
        if at > to {
            break;
        }
        longest = longest.max(at - last);
        last = at;
    }
    longest.max(to - last)
}

/// Polls `probe` every [`STATUS_POLL`] until it answers, failing when one
/// of `members` exits or `limit` passes.
fn wait_for<T>(
    what: &str,
    limit: Duration,
    members: &mut [&mut Member],
    mut probe: impl FnMut(&[&mut Member]) -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(answer) = probe(members) {
            return Ok(answer);
        }
        for member in members.iter_mut() {
            if member.process.poll_exit()?.is_some() {
                bail!(
                    "{} exited while waiting for {what}; last output:\n{}",
                    member.process.name,
                    member.process.log_tail(12)
                );
            }
        }
        if Instant::now() > deadline {
            let slots: Vec<String> = members
                .iter()
                .map(|m| match m.status() {
                    Ok(_) => format!("{}: slots {:?}", m.process.name, m.slots()),
                    Err(e) => format!("{}: {e}", m.process.name),
                })
                .collect();
            bail!(
                "{what} did not happen within {limit:?} ({}); last output of {}:\n{}",
                slots.join(", "),
                members[0].process.name,
                members[0].process.log_tail(12)
            );
        }
        std::thread::sleep(STATUS_POLL);
    }
}

/// A partition of the case (`topic/partition`) and its slot.
struct PartitionSlot {
    name: String,
    slot: u16,
}

fn partition_slots(topics: &[String]) -> Vec<PartitionSlot> {
    topics
        .iter()
        .flat_map(|topic| {
            (0..PARTITIONS).map(move |p| PartitionSlot {
                name: format!("{topic}/{p}"),
                slot: ferry_config::slot_of(topic, p, SLOTS),
            })
        })
        .collect()
}

/// When a membership change happened and its partitions, for the gaps.
struct Change {
    phase: &'static str,
    event: Duration,
    handed_over: Duration,
    resumed: Duration,
    end: Duration,
    moved: BTreeSet<u16>,
    stayed: BTreeSet<u16>,
}

fn run_rebalance(env: &Env, sizes: &Sizes) -> Result<ContenderResult> {
    let topics = source_topics("rebalance");
    create_topics(&env.source.client_config(), &topics, PARTITIONS)?;
    let job = job("rebalance_w5", &topics);
    let targets: Vec<String> = topics.iter().map(|t| job.target_topic(t)).collect();
    let outcome = (|| {
        let topology = write_topology(env, &job, "ferry-bench-w5-rebalance")?;
        let partitions = partition_slots(&topics);
        let indices_of = |slots: &BTreeSet<u16>| -> Vec<usize> {
            (0..partitions.len())
                .filter(|&i| slots.contains(&partitions[i].slot))
                .collect()
        };
        let all: Vec<usize> = (0..partitions.len()).collect();
        let t0 = Instant::now();
        let producer =
            SteadyProducer::start(env.source.bootstrap_servers(), topics.clone(), sizes.rate)?;
        let mut first = Member::spawn(env, &topology, "w5-rebalance-1")?;
        let sampler = Sampler::start(env, targets.clone(), t0)?;
        let join_limit = Duration::from_secs(120);

        // One process alone: it owns every slot and every partition moves.
        let everything: BTreeSet<u16> = (0..SLOTS).collect();
        wait_for(
            "the first process to own every slot and copy into every partition",
            env.timeout,
            &mut [&mut first],
            |m| {
                let copying = sampler
                    .latest()
                    .is_some_and(|s| s.ends.iter().all(|&e| e > 0));
                (copying && m[0].slots().as_ref() == Some(&everything)).then_some(())
            },
        )?;
        let steady_from = t0.elapsed();
        std::thread::sleep(sizes.steady);
        let steady_to = t0.elapsed();

        // The second process joins.
        let join = t0.elapsed();
        let mut second = Member::spawn(env, &topology, "w5-rebalance-2")?;
        let (kept, taken) = wait_for(
            "the joining process to own slots",
            join_limit,
            &mut [&mut first, &mut second],
            |m| {
                let (a, b) = (m[0].slots()?, m[1].slots()?);
                let whole = a.len() + b.len() == usize::from(SLOTS) && a.is_disjoint(&b);
                (whole && !b.is_empty()).then_some((a, b))
            },
        )?;
        let join_handed = t0.elapsed();
        let moved_idx = indices_of(&taken);
        wait_for(
            "the moved partitions to advance again after the join",
            join_limit,
            &mut [&mut first, &mut second],
            |_| {
                sampler
                    .advanced_since(join_handed, &moved_idx)
                    .then_some(())
            },
        )?;
        let join_resumed = t0.elapsed();
        std::thread::sleep(sizes.settle);
        let join_change = Change {
            phase: "join",
            event: join,
            handed_over: join_handed,
            resumed: join_resumed,
            end: t0.elapsed(),
            moved: taken.clone(),
            stayed: kept.clone(),
        };

        // The second process is SIGTERMed: its slots go back.
        let second_share = second.snapshot();
        let leave = t0.elapsed();
        second.process.terminate();
        wait_for(
            "the first process to own every slot again",
            join_limit,
            &mut [&mut first],
            |m| (m[0].slots().as_ref() == Some(&everything)).then_some(()),
        )?;
        let leave_handed = t0.elapsed();
        wait_for(
            "the handed-back partitions to advance again",
            join_limit,
            &mut [&mut first],
            |_| {
                sampler
                    .advanced_since(leave_handed, &moved_idx)
                    .then_some(())
            },
        )?;
        let leave_resumed = t0.elapsed();
        std::thread::sleep(sizes.settle);
        let leave_change = Change {
            phase: "leave",
            event: leave,
            handed_over: leave_handed,
            resumed: leave_resumed,
            end: t0.elapsed(),
            moved: taken,
            stayed: kept,
        };
        // It stops by itself after the SIGTERM; stopping it again would
        // signal it a second time.
        second.process.wait_exit(STOP_GRACE)?;
        let second_part = second.finish("member-2", second_share, None)?;

        // Everything the producer wrote must arrive, once.
        let sent = producer.stop()?;
        let source_ends: Vec<i64> = {
            let offsets = Offsets::new(&env.source.client_config())?;
            let counts: BTreeMap<String, i32> =
                topics.iter().map(|t| (t.clone(), PARTITIONS)).collect();
            let ends = offsets.end_offsets(&counts)?;
            topics.iter().flat_map(|t| ends[t].clone()).collect()
        };
        wait_for(
            "the target to hold every record produced",
            Duration::from_secs(120),
            &mut [&mut first],
            |_| {
                let latest = sampler.latest()?;
                latest
                    .ends
                    .iter()
                    .zip(&source_ends)
                    .all(|(t, s)| t >= s)
                    .then_some(())
            },
        )?;
        // A last read after everything arrived: late duplicates count too.
        std::thread::sleep(SAMPLE * 3);
        let first_share = first.snapshot();
        let first_cpu = first.process.sample()?.cpu_time.as_secs_f64();
        let first_part = first.finish("member-1", first_share, Some(first_cpu))?;
        let samples = sampler.stop()?;
        let Some(last) = samples.last() else {
            bail!("no end offsets of the target topics were read");
        };
        let (mut missing, mut duplicates) = (0u64, 0u64);
        // Partitions whose count differs, `topic/partition (target − source)`.
        let mut differing = Vec::new();
        for (i, (t, s)) in last.ends.iter().zip(&source_ends).enumerate() {
            missing += (s - t).max(0) as u64;
            duplicates += (t - s).max(0) as u64;
            if t != s {
                differing.push(format!("{} ({:+})", partitions[i].name, t - s));
            }
        }

        let series: Vec<Vec<(f64, i64)>> = all
            .iter()
            .map(|&i| {
                samples
                    .iter()
                    .map(|s| (s.at.as_secs_f64(), s.ends[i]))
                    .collect()
            })
            .collect();
        let worst = |indices: &[usize], from: Duration, to: Duration| -> Option<(f64, String)> {
            indices
                .iter()
                .map(|&i| {
                    (
                        longest_gap(&series[i], from.as_secs_f64(), to.as_secs_f64()),
                        partitions[i].name.clone(),
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
        };
        let phase = |c: &Change| -> RebalancePhase {
            let (moved, stayed) = (indices_of(&c.moved), indices_of(&c.stayed));
            let moved_gap = worst(&moved, c.event, c.end);
            let stayed_gap = worst(&stayed, c.event, c.end);
            RebalancePhase {
                phase: c.phase.to_string(),
                slots_moved: c.moved.iter().copied().collect(),
                partitions_stayed: stayed.len() as u64,
                partitions_moved: moved.len() as u64,
                gap_max_stayed_seconds: stayed_gap.as_ref().map(|g| g.0),
                gap_max_moved_seconds: moved_gap.as_ref().map(|g| g.0),
                gap_max_stayed_partition: stayed_gap.map(|g| g.1),
                gap_max_moved_partition: moved_gap.map(|g| g.1),
                handed_over_seconds: Some((c.handed_over - c.event).as_secs_f64()),
                resumed_seconds: Some((c.resumed - c.event).as_secs_f64()),
                window_seconds: (c.end - c.event).as_secs_f64(),
            }
        };
        let rebalance = Rebalance {
            rate_per_sec: sizes.rate,
            sample_interval_seconds: SAMPLE.as_secs_f64(),
            slots_total: SLOTS,
            steady_gap_max_seconds: worst(&all, steady_from, steady_to).map(|g| g.0),
            steady_seconds: (steady_to - steady_from).as_secs_f64(),
            phases: vec![phase(&join_change), phase(&leave_change)],
            missing,
            duplicates,
        };
        let parts = vec![first_part, second_part];
        let cpu: f64 = parts.iter().filter_map(|p| p.cpu_seconds).sum();
        let stopped_ok = parts.iter().all(|p| p.ok);
        let mut problems = Vec::new();
        if missing > 0 || duplicates > 0 {
            // Duplicates are at-least-once's right, but a hand-over by
            // SIGTERM promises none: say where they are.
            problems.push(format!(
                "{missing} records missing and {duplicates} duplicated on the target: {}",
                differing.join(", ")
            ));
        }
        if !stopped_ok {
            problems.push("a process did not stop cleanly (see its row)".into());
        }
        Ok(ContenderResult {
            contender: "ferry".into(),
            version: env.ferry.version.clone(),
            ok: missing == 0 && stopped_ok,
            error: (!problems.is_empty()).then(|| problems.join("; ")),
            records_expected: sent,
            records_copied: last.ends.iter().map(|&e| e.max(0) as u64).sum(),
            copied_all: missing == 0 && duplicates == 0,
            cpu_seconds: Some(cpu),
            peak_rss_bytes: parts.iter().filter_map(|p| p.peak_rss_bytes).max(),
            host_load_1m: load_1m(),
            rebalance: Some(rebalance),
            parts,
            ..Default::default()
        })
    })();
    cleanup(env, &targets);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_gap_spans_the_window_from_the_last_increase_before_it() {
        // Increases at 1.0, 2.0, 5.0 and 5.5.
        let series = [
            (0.5, 0),
            (1.0, 10),
            (2.0, 20),
            (3.0, 20),
            (4.0, 20),
            (5.0, 30),
            (5.5, 31),
            (6.0, 31),
        ];
        // From the increase at 2.0 to the one at 5.0.
        assert_eq!(longest_gap(&series, 1.5, 6.0), 3.0);
        // The window starts inside the gap: it still counts from 2.0.
        assert_eq!(longest_gap(&series, 4.5, 6.0), 3.0);
        // A partition that stops advancing: up to the window's end.
        assert_eq!(longest_gap(&series, 5.6, 9.5), 4.0);
        // Before the first increase, from the window's start.
        assert_eq!(longest_gap(&series, 0.0, 1.0), 1.0);
    }

    #[test]
    fn partitions_of_a_topic_take_consecutive_slots() {
        let topics = vec!["w5-rebalance-0".to_string()];
        let slots: Vec<u16> = partition_slots(&topics).iter().map(|p| p.slot).collect();
        assert_eq!(slots.len(), PARTITIONS as usize);
        for pair in slots.windows(2) {
            assert_eq!(pair[1], (pair[0] + 1) % SLOTS);
        }
    }
}
