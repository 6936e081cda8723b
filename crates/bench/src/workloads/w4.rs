//! W4 — offset translation.
//!
//! On the brokers (case `w4`): one topic of 8 partitions preloaded with
//! 400,000 records (`--quick`: 4,000), and 100 source consumer groups
//! (`--quick`: 10) with committed offsets spread over every partition (group
//! 0 at the end, the others anywhere), committed before any replicator
//! starts. Ferry and MirrorMaker 2 each run as a daemon with checkpoints
//! every second until the target holds every record and their checkpoints
//! stopped changing. Then, for every committed (group, partition) offset
//! `U`, the harness compares
//! - the contender's checkpoint (the last one on
//!   `<alias>.checkpoints.internal` for that key, if its upstream offset is
//!   `U`), and
//! - MirrorMaker 2's rule (`ferry_checkpoint::mm2_translate`: newest sync
//!   with upstream ≤ `U`, then +1 unless equal) applied to the contender's
//!   own offset-sync stream, with every sync kept,
//!
//! with the true downstream position: the target offset of the first copied
//! record whose source offset is ≥ `U` (the target's end when there is
//! none), found by reading both the source and the contender's target
//! topic and matching records by their sequence header. Ferry's cycle
//! durations come from its own log ("checkpoint cycle done", debug level).
//!
//! In process (cases `w4-map-contiguous`, `w4-map-gaps`): see [`w4_map`].
//!
//! [`w4_map`]: super::w4_map

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_checkpoint::wire::{self, Checkpoint, OffsetSync};
use ferry_checkpoint::{mm2_translate, OffsetPair};
use ferry_testkit::data::read_partition;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::w4_map::{splitmix, Shape};
use super::{all_copied, cleanup, failed, finish, load_1m, watch};
use crate::contenders::{self, Contender, Job, Topics};
use crate::dataset::{produce_dataset, producer_config, Dataset, SEQ_HEADER};
use crate::error::{Context, Result};
use crate::kafka::{create_topics, Offsets};
use crate::measure::Tracked;
use crate::report::{
    CaseReport, Checkpointing, ContenderResult, CycleTimes, OffsetMapScale, TranslationError,
};
use crate::{bail, Env};

pub const PARTITIONS: i32 = 8;
const TOPIC: &str = "w4";
const VALUE_SIZE: usize = 200;
/// Both contenders' checkpoint interval.
const INTERVAL: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(250);
/// Checkpoints count as final once unchanged this long and all there...
const SETTLED: Duration = Duration::from_secs(5);
/// ... or unchanged this long with some missing (MM2 declines to translate
/// offsets older than the syncs it kept).
const STALLED: Duration = Duration::from_secs(15);
/// At most this long after the copy finished.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// (group, partition) → committed source offset.
type Committed = BTreeMap<(String, i32), i64>;
/// (group, partition) → the last checkpoint.
type Checkpoints = BTreeMap<(String, i32), Checkpoint>;

pub fn groups(quick: bool) -> u64 {
    if quick {
        10
    } else {
        100
    }
}

/// The in-process shapes: 10,000 partitions × 10,000 records and 100
/// groups (`--quick`: 80 × 1,000 and 10), contiguous and in transactions of
/// 100 records.
pub fn map_shapes(quick: bool) -> Vec<(&'static str, Shape)> {
    let (partitions, records_per_partition) = if quick { (80, 1_000) } else { (10_000, 10_000) };
    let shape = |gap_every| Shape {
        partitions,
        records_per_partition,
        gap_every,
        groups: groups(quick),
        cycles: 5,
    };
    vec![
        ("w4-map-contiguous", shape(None)),
        ("w4-map-gaps", shape(Some(100))),
    ]
}

pub fn run(env: &Env) -> Result<Vec<CaseReport>> {
    let dataset = Dataset::new(
        PARTITIONS,
        if env.quick { 4_000 } else { 400_000 },
        VALUE_SIZE,
    );
    let topic = TOPIC.to_string();
    create_topics(
        &env.source.client_config(),
        std::slice::from_ref(&topic),
        PARTITIONS,
    )?;
    let bytes = produce_dataset(
        &producer_config(env.source.bootstrap_servers()),
        &topic,
        &dataset,
    )?;
    let committed = commit_groups(env, &dataset)?;
    // Source offset of every sequence number, per partition.
    let source: Vec<Vec<i64>> = (0..PARTITIONS)
        .map(|p| {
            let mut by_seq = vec![-1; dataset.per_partition()[p as usize] as usize];
            for (offset, seq) in sequences(&env.source.client_config(), TOPIC, p)? {
                if let Some(slot) = by_seq.get_mut(seq as usize) {
                    *slot = offset;
                }
            }
            Ok(by_seq)
        })
        .collect::<Result<_>>()?;
    eprintln!(
        "ferry-bench: w4 — preloaded {} records and committed {} group offsets",
        dataset.records,
        committed.len()
    );
    let groups = groups(env.quick);
    let mut report = CaseReport {
        name: "w4".into(),
        description: format!(
            "offset translation: {groups} groups × {PARTITIONS} partitions over {} records, checkpoints every {}s",
            dataset.records,
            INTERVAL.as_secs()
        ),
        topics: 1,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        records: dataset.records,
        bytes,
        ..Default::default()
    };
    for &contender in &env.contenders {
        if matches!(contender, Contender::Limit | Contender::Python) {
            eprintln!("ferry-bench: w4 — {contender}: not run (it writes no checkpoints)");
            continue;
        }
        eprintln!("ferry-bench: w4 — {contender} ...");
        let result = run_replicator(env, contender, &dataset, &committed, &source)
            .unwrap_or_else(|e| failed(contender.name(), dataset.records, e.to_string()));
        eprintln!("ferry-bench: w4 — {contender}: {}", summary_line(&result));
        report.results.push(result);
    }
    let mut cases = vec![report];
    if env.runs(Contender::Ferry) {
        for (name, shape) in map_shapes(env.quick) {
            eprintln!("ferry-bench: {name} ...");
            cases.push(run_map(env, name, shape));
        }
    }
    Ok(cases)
}

fn summary_line(result: &ContenderResult) -> String {
    match (&result.checkpointing, &result.error) {
        (Some(c), None) => format!(
            "ok: {}/{} exact, mean re-read {}",
            c.checkpoints.exact,
            c.checkpoints.offsets,
            c.checkpoints
                .reread_mean
                .map_or("-".into(), |m| format!("{m:.1}"))
        ),
        (_, e) => format!("FAILED: {}", e.as_deref().unwrap_or("?")),
    }
}

/// Commits every group's offsets on the source (4 groups at a time) and
/// returns them.
fn commit_groups(env: &Env, dataset: &Dataset) -> Result<Committed> {
    let ends = dataset.per_partition();
    let names: Vec<String> = (0..groups(env.quick))
        .map(|g| format!("w4-group-{g:03}"))
        .collect();
    let mut committed = Committed::new();
    for (g, name) in names.iter().enumerate() {
        for (p, &end) in ends.iter().enumerate() {
            // Group 0 is caught up, as most groups are; the others anywhere.
            let offset = match g {
                0 => end,
                _ => (splitmix((g as u64) << 32 | p as u64) % (end as u64 + 1)) as i64,
            };
            committed.insert((name.clone(), p as i32), offset);
        }
    }
    let commit = |group: &str| -> Result<()> {
        let consumer: BaseConsumer = env
            .source
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .context(|| format!("cannot create a consumer for group {group}"))?;
        let mut list = TopicPartitionList::new();
        for ((_, p), &offset) in
            committed.range((group.to_string(), 0)..=(group.to_string(), i32::MAX))
        {
            list.add_partition_offset(TOPIC, *p, Offset::Offset(offset))
                .context(|| "bad partition")?;
        }
        consumer
            .commit(&list, CommitMode::Sync)
            .context(|| format!("cannot commit the offsets of group {group}"))
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(names.len().div_ceil(4))
            .map(|chunk| s.spawn(move || chunk.iter().try_for_each(|g| commit(g))))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| crate::error::BenchError::new("committing group offsets panicked"))?
        })
    })?;
    Ok(committed)
}

/// (offset, sequence number) of every record of a partition.
fn sequences(config: &ClientConfig, topic: &str, partition: i32) -> Result<Vec<(i64, u64)>> {
    read_partition(config, topic, partition, 0, None)?
        .into_iter()
        .map(|r| {
            let seq = r
                .headers
                .iter()
                .find(|(k, _)| k == SEQ_HEADER)
                .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok()?.parse().ok());
            match seq {
                Some(seq) => Ok((r.offset, seq)),
                None => bail!(
                    "{topic}/{partition} offset {}: no {SEQ_HEADER} header",
                    r.offset
                ),
            }
        })
        .collect()
}

/// Where each source offset is on one target partition.
struct Truth {
    target_offsets: Vec<i64>,
    /// Largest source offset among the target records up to each index.
    prefix_max: Vec<i64>,
    end: i64,
}

impl Truth {
    fn read(env: &Env, topic: &str, partition: i32, source: &[i64], end: i64) -> Result<Truth> {
        let mut truth = Truth {
            target_offsets: Vec::new(),
            prefix_max: Vec::new(),
            end,
        };
        let mut max = -1;
        for (offset, seq) in sequences(&env.target.client_config(), topic, partition)? {
            let Some(&upstream) = source.get(seq as usize).filter(|&&u| u >= 0) else {
                bail!("{topic}/{partition} offset {offset}: sequence {seq} is not on the source");
            };
            max = max.max(upstream);
            truth.target_offsets.push(offset);
            truth.prefix_max.push(max);
        }
        Ok(truth)
    }

    /// The target offset of the first record whose source offset is ≥ `u`.
    fn of(&self, u: i64) -> i64 {
        let i = self.prefix_max.partition_point(|&m| m < u);
        self.target_offsets.get(i).copied().unwrap_or(self.end)
    }
}

fn run_replicator(
    env: &Env,
    contender: Contender,
    dataset: &Dataset,
    committed: &Committed,
    source: &[Vec<i64>],
) -> Result<ContenderResult> {
    let job = Job {
        alias: format!("{contender}_w4"),
        topics: Topics::Names(vec![TOPIC.to_string()]),
        catch_up: false,
        tasks: PARTITIONS as usize,
        checkpoint_interval: Some(INTERVAL),
    };
    let target_topic = job.target_topic(TOPIC);
    let checkpoints_topic = wire::checkpoints_topic(&job.alias, ".");
    // Ferry writes its offset syncs on the target (named after the source
    // alias), MM2 on the source by default (named after the target, `dst`).
    let (syncs_cluster, syncs_topic) = match contender {
        c if c.is_ferry() => (&env.target, wire::offset_syncs_topic(&job.alias, ".")),
        _ => (&env.source, wire::offset_syncs_topic("dst", ".")),
    };
    let mut owned = vec![target_topic.clone(), checkpoints_topic.clone()];
    if contender.is_ferry() {
        owned.push(syncs_topic.clone());
    }
    let outcome = (|| {
        let mut launched = contenders::launch(env, contender, &job, &format!("w4-{contender}"))?;
        let mut result = ContenderResult {
            contender: contender.to_string(),
            version: launched.version.clone(),
            records_expected: dataset.records,
            log: Some(launched.process.log_path().display().to_string()),
            ..Default::default()
        };
        let expected = BTreeMap::from([(target_topic.clone(), dataset.per_partition())]);
        let watched = watch(
            env,
            &mut launched.process,
            std::slice::from_ref(&target_topic),
            POLL,
            all_copied(&expected),
        )?;
        let (checkpoints, final_at) = settle(
            env,
            &mut launched.process,
            &checkpoints_topic,
            &target_topic,
            committed,
        )?;
        let (stats, _) = finish(&mut launched)?;
        result.threads = launched.process.thread_cpu();
        result.host_load_1m = load_1m();
        result.records_copied = watched.copied();
        result.copied_all = watched
            .ends
            .get(&target_topic)
            .is_some_and(|e| *e == dataset.per_partition());
        result.wall_seconds = watched.done.map(|d| d.as_secs_f64());
        result.first_record_seconds = watched.first.map(|d| d.as_secs_f64());
        result.cpu_seconds = Some(stats.cpu_time.as_secs_f64());
        result.peak_rss_bytes = Some(stats.peak_rss_bytes);

        let ends = Offsets::new(&env.target.client_config())?
            .topic_end_offsets(&target_topic, PARTITIONS)?;
        let truths: Vec<Truth> = (0..PARTITIONS)
            .map(|p| Truth::read(env, &target_topic, p, &source[p as usize], ends[p as usize]))
            .collect::<Result<_>>()?;
        let syncs = read_syncs(&syncs_cluster.client_config(), &syncs_topic)?;
        let mut own = TranslationError::default();
        let mut rule = TranslationError::default();
        for ((group, p), &upstream) in committed {
            let truth = truths[*p as usize].of(upstream);
            let checkpoint = checkpoints
                .get(&(group.clone(), *p))
                .filter(|c| c.upstream_offset == upstream);
            own.add(checkpoint.map(|c| c.downstream_offset), truth);
            let partition_syncs = syncs.get(p).map_or(&[][..], Vec::as_slice);
            rule.add(mm2_translate(partition_syncs, upstream), truth);
        }
        let (cycle, writing_cycle) = match contender {
            c if c.is_ferry() => {
                let (all, writing) = ferry_cycles(launched.process.log_path(), groups(env.quick))?;
                (Some(all), Some(writing))
            }
            _ => (None, None),
        };
        result.ok = result.copied_all;
        if contender.is_ferry() && own.exact != own.offsets {
            // Ferry promises exact checkpoints on contiguous data.
            result.ok = false;
            result.error = Some(format!(
                "{} of {} checkpoints are not exact ({} missing, {} behind, {} ahead)",
                own.offsets - own.exact,
                own.offsets,
                own.offsets - own.translated,
                own.behind,
                own.ahead
            ));
        }
        if !result.copied_all {
            result.error = Some(format!(
                "the target holds {} records, expected exactly {}",
                result.records_copied, dataset.records
            ));
        }
        result.checkpointing = Some(Checkpointing {
            groups: groups(env.quick),
            checkpoint_interval_seconds: INTERVAL.as_secs_f64(),
            checkpoints: own,
            mm2_rule_on_syncs: Some(rule),
            offset_syncs: Some(syncs.values().map(|s| s.len() as u64).sum()),
            checkpoints_final_seconds: final_at.map(|d| d.as_secs_f64()),
            cycle,
            writing_cycle,
        });
        Ok(result)
    })();
    cleanup(env, &owned);
    outcome
}

/// Reads the checkpoints of `remote_topic` until they stop changing (see
/// [`SETTLED`], [`STALLED`]); returns the last per (group, partition) and
/// when, since the process start, they last changed.
fn settle(
    env: &Env,
    process: &mut Tracked,
    checkpoints_topic: &str,
    remote_topic: &str,
    committed: &Committed,
) -> Result<(Checkpoints, Option<Duration>)> {
    let started = Instant::now();
    let mut last = Checkpoints::new();
    let mut changed = Instant::now();
    let mut changed_at = None;
    loop {
        // Missing at first: the topic appears with the first checkpoint.
        let now = read_checkpoints(&env.target.client_config(), checkpoints_topic, remote_topic)
            .unwrap_or_default();
        if now != last {
            last = now;
            changed = Instant::now();
            changed_at = Some(process.elapsed());
        }
        let complete = committed.iter().all(|(key, &u)| {
            last.get(key)
                .is_some_and(|c: &Checkpoint| c.upstream_offset == u)
        });
        let quiet = changed.elapsed();
        if (complete && quiet >= SETTLED) || quiet >= STALLED || started.elapsed() > SETTLE_LIMIT {
            let changed_at = changed_at.filter(|_| !last.is_empty());
            return Ok((last, changed_at));
        }
        if process.poll_exit()?.is_some() {
            bail!(
                "{} exited while writing checkpoints; last output:\n{}",
                process.name,
                process.log_tail(12)
            );
        }
        std::thread::sleep(INTERVAL / 2);
    }
}

/// The last checkpoint per (group, partition) of `remote_topic`.
fn read_checkpoints(config: &ClientConfig, topic: &str, remote_topic: &str) -> Result<Checkpoints> {
    let mut last = Checkpoints::new();
    for partition in ferry_testkit::data::read_topic(config, topic)? {
        for record in partition {
            let (Some(key), Some(value)) = (&record.key, &record.value) else {
                continue;
            };
            let cp = Checkpoint::decode(key, value)?;
            if cp.topic == remote_topic {
                last.insert((cp.group.clone(), cp.partition), cp);
            }
        }
    }
    Ok(last)
}

/// The offset syncs of [`TOPIC`] per partition, in topic order.
fn read_syncs(config: &ClientConfig, topic: &str) -> Result<BTreeMap<i32, Vec<OffsetPair>>> {
    let mut syncs: BTreeMap<i32, Vec<OffsetPair>> = BTreeMap::new();
    for partition in ferry_testkit::data::read_topic(config, topic)
        .context(|| format!("cannot read the offset syncs in {topic}"))?
    {
        for record in partition {
            let (Some(key), Some(value)) = (&record.key, &record.value) else {
                continue;
            };
            let sync = OffsetSync::decode(key, value)?;
            if sync.topic == TOPIC {
                syncs.entry(sync.partition).or_default().push(sync.pair());
            }
        }
    }
    Ok(syncs)
}

/// Ferry's checkpoint cycles that saw all `groups`, from its JSON log: all
/// of them, and those that wrote at least one checkpoint.
fn ferry_cycles(log: &Path, groups: u64) -> Result<(CycleTimes, CycleTimes)> {
    let text = std::fs::read_to_string(log).context(|| format!("cannot read {}", log.display()))?;
    let (mut all, mut writing) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["message"] != "checkpoint cycle done" || event["groups"].as_u64() != Some(groups) {
            continue;
        }
        let Some(took) = event["took"].as_str().and_then(debug_duration) else {
            continue;
        };
        all.push(took);
        if event["checkpoints"].as_u64().is_some_and(|n| n > 0) {
            writing.push(took);
        }
    }
    if all.is_empty() {
        bail!(
            "{} logged no checkpoint cycle over all {groups} groups",
            log.display()
        );
    }
    Ok((CycleTimes::of(all), CycleTimes::of(writing)))
}

/// Seconds of a `Duration`'s `Debug` text (`1.5s`, `12.3ms`, `80µs`, `5ns`).
fn debug_duration(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" | "us" => 1e-6,
        "ns" => 1e-9,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// Runs `ferry-bench w4-map` as its own process and reads its result.
fn run_map(env: &Env, name: &str, shape: Shape) -> CaseReport {
    let mut report = CaseReport {
        name: name.to_string(),
        description: format!(
            "offset maps in process: {} partitions × {} records{}, {} groups, {} cycles",
            shape.partitions,
            shape.records_per_partition,
            shape.gap_every.map_or(", contiguous".into(), |t| format!(
                ", a transaction marker every {t} records"
            )),
            shape.groups,
            shape.cycles
        ),
        topics: shape.partitions.div_ceil(PARTITIONS as u64),
        partitions_per_topic: PARTITIONS,
        records: shape.partitions * shape.records_per_partition,
        ..Default::default()
    };
    let result = map_result(env, name, shape).unwrap_or_else(|e| failed("ferry", 0, e.to_string()));
    eprintln!(
        "ferry-bench: {name}: {}",
        match (&result.offset_map, &result.error) {
            (Some(m), None) => format!(
                "ok: {} segments, {:.1} MB heap, cycle {} s",
                m.segments,
                m.heap_bytes.unwrap_or(0) as f64 / 1e6,
                m.cycle
                    .median_seconds
                    .map_or("-".into(), |s| format!("{s:.3}"))
            ),
            (_, e) => format!("FAILED: {}", e.as_deref().unwrap_or("?")),
        }
    );
    report.results.push(result);
    report
}

fn map_result(env: &Env, name: &str, shape: Shape) -> Result<ContenderResult> {
    let mut cmd = Command::new(&env.bench_bin);
    cmd.arg("w4-map")
        .args(["--partitions", &shape.partitions.to_string()])
        .args([
            "--records-per-partition",
            &shape.records_per_partition.to_string(),
        ])
        .args(["--groups", &shape.groups.to_string()])
        .args(["--cycles", &shape.cycles.to_string()]);
    if let Some(t) = shape.gap_every {
        cmd.args(["--gap-every", &t.to_string()]);
    }
    let mut process = Tracked::spawn("w4-map", cmd, &env.run_dir.join(format!("{name}.log")))?;
    let Some((status, stats, at)) = process.wait_exit(env.timeout)? else {
        process.stop()?;
        bail!("w4-map did not finish within {:?}", env.timeout);
    };
    let output = process.log_tail(5);
    if !status.success() {
        bail!("w4-map exited with {status}:\n{output}");
    }
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    let scale: OffsetMapScale =
        serde_json::from_str(line).context(|| format!("w4-map printed no result:\n{output}"))?;
    let exact = scale.translation.exact == scale.translation.offsets;
    let records = scale.partitions * scale.records_per_partition;
    Ok(ContenderResult {
        contender: "ferry".into(),
        version: Some(format!(
            "ferry-checkpoint {} (in process)",
            env!("CARGO_PKG_VERSION")
        )),
        ok: exact,
        error: (!exact).then(|| {
            format!(
                "{} of {} translations are not exact",
                scale.translation.offsets - scale.translation.exact,
                scale.translation.offsets
            )
        }),
        // Records fed to the maps (there is no target).
        records_expected: records,
        records_copied: records,
        copied_all: true,
        exit_seconds: Some(at.as_secs_f64()),
        cpu_seconds: Some(stats.cpu_time.as_secs_f64()),
        peak_rss_bytes: Some(stats.peak_rss_bytes),
        threads: process.thread_cpu(),
        log: Some(process.log_path().display().to_string()),
        host_load_1m: load_1m(),
        offset_map: Some(scale),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debug_durations() {
        assert_eq!(debug_duration("1.5s"), Some(1.5));
        assert_eq!(debug_duration("12ms"), Some(0.012));
        assert!((debug_duration("80.5µs").unwrap() - 80.5e-6).abs() < 1e-12);
        assert_eq!(debug_duration("5ns"), Some(5e-9));
        assert_eq!(debug_duration("soon"), None);
    }

    #[test]
    fn truth_skips_to_the_first_record_at_or_after() {
        // Target records at 10.. hold source offsets 0, 1, 3, 4 (2 was a
        // marker), then a duplicate of 1.
        let truth = Truth {
            target_offsets: vec![10, 11, 12, 13, 14],
            prefix_max: vec![0, 1, 3, 4, 4],
            end: 15,
        };
        assert_eq!(truth.of(0), 10);
        assert_eq!(truth.of(2), 12);
        assert_eq!(truth.of(4), 13);
        assert_eq!(truth.of(5), 15);
    }
}
