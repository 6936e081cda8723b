//! The workloads, and what they share: watching the target until a
//! contender has copied what it must, and turning a finished contender
//! process into a [`ContenderResult`].

pub mod crash;
pub mod w1;
pub mod w2;
pub mod w3;
pub mod w4;
pub mod w4_map;
pub mod w5;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_testkit::proc::ProcStats;

use crate::bail;
use crate::contenders::Launched;
use crate::error::Result;
use crate::kafka::Offsets;
use crate::measure::Tracked;
use crate::readback::TailWatch;
use crate::report::{ContenderResult, Delivered};
use crate::Env;

/// What the target held when a [`watch`] ended.
#[derive(Debug, Default)]
pub struct Watched {
    /// Process start until the first record was on the target.
    pub first: Option<Duration>,
    /// Process start until `done` held.
    pub done: Option<Duration>,
    /// End offsets of the watched target topics that exist, by topic.
    pub ends: BTreeMap<String, Vec<i64>>,
}

impl Watched {
    pub fn copied(&self) -> u64 {
        self.ends.values().flatten().map(|&o| o.max(0) as u64).sum()
    }
}

/// Polls the end offsets of `topics` (target topic names) on the target
/// every `interval` until `done(ends)` holds, the process exits, or the
/// env's timeout passes. Errors say which, with the contender's log tail.
pub fn watch(
    env: &Env,
    process: &mut Tracked,
    topics: &[String],
    interval: Duration,
    done: impl Fn(&BTreeMap<String, Vec<i64>>) -> bool,
) -> Result<Watched> {
    watch_all(env, &mut [process], topics, interval, done)
}

/// [`watch`] for several processes sharing the work (W5): times count from
/// the first one's start, and any of them exiting ends the watch.
pub fn watch_all(
    env: &Env,
    processes: &mut [&mut Tracked],
    topics: &[String],
    interval: Duration,
    done: impl Fn(&BTreeMap<String, Vec<i64>>) -> bool,
) -> Result<Watched> {
    let offsets = Offsets::new(&env.target.client_config())?;
    let mut watched = Watched::default();
    let mut exited: Option<(usize, Instant)> = None;
    loop {
        let tick = Instant::now();
        // A new target topic's leaders may not answer ListOffsets yet
        // (NotLeaderForPartition): such errors are transient, so keep the
        // last answer and ask again; the timeout bounds it all.
        let mut complete = false;
        if let Ok(existing) = offsets.topics() {
            let present: BTreeMap<String, i32> = topics
                .iter()
                .filter_map(|t| existing.get(t).map(|&n| (t.clone(), n)))
                .collect();
            if let Ok(ends) = offsets.end_offsets(&present) {
                complete = present.len() == topics.len();
                watched.ends = ends;
            }
        }
        let elapsed = processes[0].elapsed();
        if watched.first.is_none() && watched.copied() > 0 {
            watched.first = Some(elapsed);
        }
        if complete && done(&watched.ends) {
            watched.done = Some(elapsed);
            return Ok(watched);
        }
        if let Some((which, at)) = exited {
            // One more look after the exit (the last records may have landed
            // between two polls), then it is a failure.
            if at.elapsed() > interval {
                let process = &mut processes[which];
                let status = match process.poll_exit()? {
                    Some((status, ..)) => status.to_string(),
                    None => "unknown status".to_string(),
                };
                bail!(
                    "{} exited ({status}) after {:.1}s with {} of the records on the target; last output:\n{}",
                    process.name,
                    elapsed.as_secs_f64(),
                    watched.copied(),
                    process.log_tail(12)
                );
            }
        } else {
            for (which, process) in processes.iter_mut().enumerate() {
                if process.poll_exit()?.is_some() {
                    exited = Some((which, Instant::now()));
                    break;
                }
            }
        }
        if elapsed > env.timeout {
            bail!(
                "{} did not finish within {:?} ({} records on the target); last output:\n{}",
                processes[0].name,
                env.timeout,
                watched.copied(),
                processes[0].log_tail(12)
            );
        }
        std::thread::sleep(interval.saturating_sub(tick.elapsed()));
    }
}

/// Every partition of every topic holds at least what `expected` says.
pub fn all_copied(
    expected: &BTreeMap<String, Vec<i64>>,
) -> impl Fn(&BTreeMap<String, Vec<i64>>) -> bool + '_ {
    move |ends| {
        expected.iter().all(|(topic, want)| {
            ends.get(topic).is_some_and(|got| {
                got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g >= w)
            })
        })
    }
}

/// Every partition of `topic` shows its last source record to a
/// `read_committed` reader (see [`TailWatch`]). For any replicator, not
/// only transactional ones: end offsets count transaction markers and
/// duplicates too, and would say "done" too early.
pub fn last_records_visible<'a>(
    topic: &'a str,
    tail: &'a TailWatch,
) -> impl Fn(&BTreeMap<String, Vec<i64>>) -> bool + 'a {
    move |ends| ends.get(topic).is_some_and(|stable| tail.caught_up(stable))
}

/// What is wrong with a target read back, one line each; duplicates only
/// with `duplicates_count`.
pub fn delivery_problems(d: &Delivered, duplicates_count: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if d.missing > 0 {
        problems.push(format!(
            "{} source records missing on the target",
            d.missing
        ));
    }
    if duplicates_count && d.duplicates > 0 {
        problems.push(format!(
            "{} duplicate records on the target (read_committed)",
            d.duplicates
        ));
    }
    if d.unexpected > 0 {
        problems.push(format!(
            "{} records on the target that are not their partition's source records",
            d.unexpected
        ));
    }
    problems
}

/// Ends a contender after [`watch`]: a process that exits by itself gets
/// up to a minute to do so and is measured by its rusage; a daemon is
/// sampled from `/proc` and then SIGTERMed.
pub fn finish(launched: &mut Launched) -> Result<(ProcStats, Option<Duration>)> {
    let process = &mut launched.process;
    if launched.exits_by_itself {
        match process.wait_exit(Duration::from_secs(60))? {
            Some((status, stats, at)) if status.success() => Ok((stats, Some(at))),
            Some((status, ..)) => bail!(
                "{} copied everything but exited with {status}; last output:\n{}",
                process.name,
                process.log_tail(12)
            ),
            None => {
                let stats = process.sample()?;
                process.stop()?;
                bail!(
                    "{} copied everything but did not exit within a minute (CPU {:.1}s); last output:\n{}",
                    process.name,
                    stats.cpu_time.as_secs_f64(),
                    process.log_tail(12)
                )
            }
        }
    } else {
        let stats = process.sample()?;
        let status = process.stop()?;
        if !status.success() && status.code() != Some(143) && status.code() != Some(130) {
            // MirrorMaker exits 130/143 on SIGTERM in some versions; a
            // crash on the way out is worth saying but not fatal.
            eprintln!("ferry-bench: note: {} stopped with {status}", process.name);
        }
        Ok((stats, None))
    }
}

/// Fills the throughput and resource fields of `result`.
pub fn fill_throughput(
    result: &mut ContenderResult,
    watched: &Watched,
    stats: ProcStats,
    exit: Option<Duration>,
    bytes: u64,
) {
    let records = result.records_expected as f64;
    let secs = |d: Duration| d.as_secs_f64();
    result.wall_seconds = watched.done.map(secs);
    result.first_record_seconds = watched.first.map(secs);
    result.exit_seconds = exit.map(secs);
    result.records_per_sec = watched.done.map(|d| records / secs(d));
    result.mb_per_sec = watched.done.map(|d| bytes as f64 / 1e6 / secs(d));
    if let (Some(first), Some(done)) = (watched.first, watched.done) {
        if done > first {
            result.records_per_sec_after_first = Some(records / secs(done - first));
        }
    }
    result.cpu_seconds = Some(stats.cpu_time.as_secs_f64());
    result.cpu_seconds_per_gb = Some(stats.cpu_time.as_secs_f64() / (bytes as f64 / 1e9));
    result.peak_rss_bytes = Some(stats.peak_rss_bytes);
    result.host_load_1m = load_1m();
}

/// The machine's 1-minute load average.
pub fn load_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A failed result carrying `error`.
pub fn failed(contender: &str, expected: u64, error: String) -> ContenderResult {
    ContenderResult {
        contender: contender.to_string(),
        ok: false,
        error: Some(error),
        records_expected: expected,
        host_load_1m: load_1m(),
        ..Default::default()
    }
}

/// Deletes a contender's target topics unless the run keeps them.
pub fn cleanup(env: &Env, topics: &[String]) {
    if env.keep_topics {
        return;
    }
    if let Err(e) = crate::kafka::delete_topics(&env.target.client_config(), topics) {
        eprintln!(
            "ferry-bench: note: cannot delete {} target topics: {e}",
            topics.len()
        );
    }
    // Let the broker finish deleting files before the next contender.
    std::thread::sleep(Duration::from_secs(2));
}

/// One line saying how a contender did, for progress output.
pub fn progress_line(result: &ContenderResult) -> String {
    if result.ok {
        format!(
            "ok: {} records/s, CPU {} s, peak RSS {} MB",
            result
                .records_per_sec
                .map_or("-".into(), |v| format!("{v:.0}")),
            result.cpu_seconds.map_or("-".into(), |v| format!("{v:.1}")),
            result
                .peak_rss_bytes
                .map_or("-".into(), |v| format!("{:.0}", v as f64 / 1e6)),
        )
    } else {
        format!("FAILED: {}", result.error.as_deref().unwrap_or("?"))
    }
}
