//! `crash` — duplicates after a crash. One topic of 1,000,000 × 200 B over
//! 8 partitions (`--quick`: 200,000) is preloaded once. Each contender
//! starts copying it and is SIGKILLed once the target holds about half of
//! the records, then started again on the same topology (same target topic,
//! and the same progress, group and transactional ids, all kept on the
//! brokers) until the last record of every partition is visible to a
//! `read_committed` reader. The target is then read back `read_committed`
//! and every source record's copies are counted.
//!
//! An at-least-once replicator copies again what it had written but not yet
//! recorded as copied; exactly-once promises no duplicate. Duplicates fail
//! only an exactly-once contender, and so does a target without a single
//! transaction marker (it did not write through transactions at all).

use std::time::{Duration, Instant};

use super::{cleanup, delivery_problems, failed, finish, last_records_visible, watch};
use crate::contenders::{self, Contender, Job, Topics};
use crate::dataset::{produce_dataset, producer_config, Dataset};
use crate::error::Result;
use crate::kafka::{create_topics, Offsets};
use crate::readback::{read_back, TailWatch};
use crate::report::{CaseReport, ContenderResult, Crash};
use crate::{bail, Env};

pub const PARTITIONS: i32 = 8;
const VALUE_SIZE: usize = 200;
const TOPIC: &str = "crash-200b";
/// Part of the records on the target when the contender is killed.
const KILL_AT: f64 = 0.5;
/// How often the target is polled before the kill: at the quick size Ferry
/// copies the whole topic in about a second.
const KILL_POLL: Duration = Duration::from_millis(20);
/// How often the target is polled after the restart.
const POLL: Duration = Duration::from_millis(100);

pub fn run(env: &Env) -> Result<Vec<CaseReport>> {
    let records = if env.quick { 200_000 } else { 1_000_000 };
    let dataset = Dataset::new(PARTITIONS, records, VALUE_SIZE);
    create_topics(
        &env.source.client_config(),
        &[TOPIC.to_string()],
        PARTITIONS,
    )?;
    let started = Instant::now();
    let bytes = produce_dataset(
        &producer_config(env.source.bootstrap_servers()),
        TOPIC,
        &dataset,
    )?;
    eprintln!(
        "ferry-bench: preloaded {records} records into {TOPIC} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut report = CaseReport {
        name: "crash-200B".into(),
        description: format!(
            "SIGKILL after about {:.0}% of {records} records × {VALUE_SIZE} B over {PARTITIONS} partitions, restart, read back read_committed",
            KILL_AT * 100.0
        ),
        topics: 1,
        partitions_per_topic: PARTITIONS,
        value_size: VALUE_SIZE,
        records,
        bytes,
        ..Default::default()
    };
    for &contender in &env.contenders {
        eprintln!("ferry-bench: crash — {contender} ...");
        let result = if contender.is_ferry() || contender.is_mm2() {
            run_one(env, contender, &dataset)
                .unwrap_or_else(|e| failed(contender.name(), records, e.to_string()))
        } else {
            failed(
                contender.name(),
                records,
                "not run: the crash case restarts replicators that resume from their own progress (ferry, ferry-eos, baseline, mm2, mm2-eos)".into(),
            )
        };
        eprintln!(
            "ferry-bench: crash — {contender}: {}",
            summary_line(&result)
        );
        report.results.push(result);
    }
    Ok(vec![report])
}

fn summary_line(result: &ContenderResult) -> String {
    match (&result.delivered, result.ok) {
        (Some(d), ok) => format!(
            "{}: {} records read_committed, {} duplicates, {} missing, {} offsets of markers or aborted records{}",
            if ok { "ok" } else { "FAILED" },
            d.records,
            d.duplicates,
            d.missing,
            d.hidden_offsets,
            result
                .error
                .as_ref()
                .map_or(String::new(), |e| format!(" ({e})"))
        ),
        (None, _) => format!("FAILED: {}", result.error.as_deref().unwrap_or("?")),
    }
}

fn run_one(env: &Env, contender: Contender, dataset: &Dataset) -> Result<ContenderResult> {
    // Both runs share the alias: the restart finds the first run's
    // topology, target topic and state.
    let job = Job {
        alias: format!("{contender}_crash"),
        topics: Topics::Names(vec![TOPIC.to_string()]),
        catch_up: true,
        tasks: PARTITIONS as usize,
        checkpoint_interval: None,
    };
    let target_topic = job.target_topic(TOPIC);
    let outcome = (|| {
        let tail = TailWatch::new(
            &env.target.client_config(),
            &target_topic,
            dataset.per_partition(),
        )?;
        let mut first = contenders::launch(env, contender, &job, &format!("crash-{contender}"))?;
        let mut result = ContenderResult {
            contender: contender.to_string(),
            version: first.version.clone(),
            records_expected: dataset.records,
            log: Some(first.process.log_path().display().to_string()),
            ..Default::default()
        };
        let half = (dataset.records as f64 * KILL_AT) as u64;
        let topics = std::slice::from_ref(&target_topic);
        watch(env, &mut first.process, topics, KILL_POLL, |ends| {
            ends.values()
                .flatten()
                .map(|&o| o.max(0) as u64)
                .sum::<u64>()
                >= half
        })?;
        let killed_after = first.process.elapsed();
        first.process.crash()?;
        // High watermarks: what an open transaction had written counts too.
        let mut uncommitted = env.target.client_config();
        uncommitted.set("isolation.level", "read_uncommitted");
        let at_kill: u64 = Offsets::new(&uncommitted)?
            .topic_end_offsets(&target_topic, PARTITIONS)?
            .iter()
            .map(|&o| o.max(0) as u64)
            .sum();
        let stable = Offsets::new(&env.target.client_config())?
            .topic_end_offsets(&target_topic, PARTITIONS)?;
        if tail.caught_up(&stable) {
            bail!("{contender} had copied everything before it was killed: nothing to measure");
        }

        let mut second =
            contenders::launch(env, contender, &job, &format!("crash-{contender}-restart"))?;
        let watched = watch(
            env,
            &mut second.process,
            topics,
            POLL,
            last_records_visible(&target_topic, &tail),
        )?;
        finish(&mut second)?;
        result.host_load_1m = super::load_1m();
        result.crash = Some(Crash {
            killed_after_seconds: killed_after.as_secs_f64(),
            target_offsets_at_kill: at_kill,
            recovered_seconds: watched.done.map(|d| d.as_secs_f64()),
        });

        let back = read_back(
            &env.target.client_config(),
            &target_topic,
            dataset,
            env.timeout,
        )?;
        let d = back.delivered;
        let mut problems = back.problems;
        result.spot_check_ok = Some(problems.is_empty());
        result.records_copied = d.records;
        result.copied_all = d.missing == 0 && d.duplicates == 0 && d.unexpected == 0;
        let exactly_once = contender.exactly_once();
        if exactly_once && d.hidden_offsets == 0 {
            problems.push(
                "no transaction marker on the target: it did not write through transactions".into(),
            );
        }
        // Duplicates are what at-least-once allows: reported, not failed.
        problems.extend(delivery_problems(&d, exactly_once));
        result.ok = problems.is_empty();
        if !exactly_once && d.duplicates > 0 {
            problems.push(format!(
                "{} duplicate records on the target (read_committed)",
                d.duplicates
            ));
        }
        if !problems.is_empty() {
            result.error = Some(problems.join("; "));
        }
        result.delivered = Some(d);
        Ok(result)
    })();
    cleanup(env, &[target_topic]);
    outcome
}
