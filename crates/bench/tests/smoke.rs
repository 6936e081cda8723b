//! CI smoke runs of the benchmark harness against real Apache Kafka:
//! `ferry-bench w1 --quick` with Ferry, the limit and the naive Python peer
//! (the JSON summary parses, every contender copied every record),
//! `ferry-bench w4 --quick` with Ferry (every checkpoint exact, the
//! in-process offset maps too), and `ferry-bench w5 --quick` (one and two
//! processes copy everything with every slot owned once; a member joins and
//! leaves with nothing missing), and `ferry-bench eos --quick` with Ferry
//! at-least-once and exactly-once (W1 and W2 side by side; after a SIGKILL
//! mid-copy and a restart, nothing missing and, exactly-once, no duplicate
//! read `read_committed`). MirrorMaker 2 is left to the real benchmark
//! runs: its JVM start alone would take a third of this test's budget.
//!
//! Nothing is skipped: when a contender cannot run (no ferry binary, no
//! Kafka install, pip cannot install confluent-kafka) the harness fails with
//! a message saying why, and so does this test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferry_bench::report::{Summary, SCHEMA_VERSION};

/// The `ferry` binary cargo built next to `ferry-bench` (`cargo test
/// --workspace` builds it for Ferry's own end-to-end tests).
fn ferry_binary() -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_ferry-bench"));
    let ferry = bench.with_file_name("ferry");
    assert!(
        ferry.is_file(),
        "the smoke test runs the real ferry binary, which is missing at {}: \
         build it with `cargo build -p ferry` (or run `cargo test --workspace`)",
        ferry.display()
    );
    ferry
}

/// Each run starts its own pair of brokers: one run at a time, so two tests
/// never share the CI machine's cores with four brokers.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `ferry-bench <args> --quick` in `dir`, failing with its output
/// unless it succeeds within `budget`.
fn run_quick(dir: &Path, args: &[&str], budget: Duration) -> Output {
    let _one = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-bench"))
        .args(args)
        .args(["--quick", "--timeout", "120"])
        .arg("--json")
        .arg(dir.join("summary.json"))
        .arg("--work-dir")
        .arg(dir)
        .arg("--ferry")
        .arg(ferry_binary())
        .output()
        .expect("ferry-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ferry-bench {args:?} --quick failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(started.elapsed() < budget, "took {:?}", started.elapsed());
    output
}

fn summary(dir: &Path) -> Summary {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("the summary was written");
    serde_json::from_str(&text).expect("the summary parses")
}

#[test]
fn quick_w1_copies_every_record_with_every_contender() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = run_quick(
        dir.path(),
        &["w1", "--contenders", "ferry,limit,python"],
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = summary(dir.path());
    assert_eq!(summary.schema_version, SCHEMA_VERSION);
    let w1 = &summary.workloads["w1"];
    assert!(w1.quick);
    let names: Vec<&str> = w1.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["w1-200B", "w1-2KB"]);
    for case in &w1.cases {
        let contenders: Vec<&str> = case.results.iter().map(|r| r.contender.as_str()).collect();
        assert_eq!(contenders, ["ferry", "limit", "python"], "{}", case.name);
        for result in &case.results {
            let what = format!("{} / {}", case.name, result.contender);
            assert!(result.ok, "{what}: {:?}", result.error);
            assert!(
                result.copied_all,
                "{what}: copied {} of {}",
                result.records_copied, result.records_expected
            );
            assert_eq!(result.records_copied, case.records, "{what}");
            assert!(result.records_per_sec.is_some_and(|r| r > 0.0), "{what}");
            assert!(result.cpu_seconds.is_some(), "{what}");
            assert!(result.peak_rss_bytes.is_some_and(|b| b > 0), "{what}");
            if result.contender != "limit" {
                assert_eq!(result.spot_check_ok, Some(true), "{what}");
            }
        }
        let limit = &case.results[1];
        assert_eq!(limit.parts.len(), 2, "the limit has its two halves");
        assert!(
            case.ratios.contains_key("ferry/limit records_per_sec"),
            "{:?}",
            case.ratios
        );
        assert!(
            case.ratios.contains_key("ferry/python records_per_sec"),
            "{:?}",
            case.ratios
        );
    }
    assert!(
        stdout.contains("== w1-200B"),
        "the table is printed:\n{stdout}"
    );
}

#[test]
fn quick_w4_checkpoints_are_exact() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = run_quick(
        dir.path(),
        &["w4", "--contenders", "ferry"],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let w4 = &summary(dir.path()).workloads["w4"];
    assert!(w4.quick);
    let names: Vec<&str> = w4.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["w4", "w4-map-contiguous", "w4-map-gaps"]);

    let ferry = &w4.cases[0].results[0];
    assert!(ferry.ok, "{:?}", ferry.error);
    let c = ferry.checkpointing.as_ref().expect("checkpointing figures");
    assert_eq!(c.checkpoints.offsets, 10 * 8, "{c:?}");
    assert_eq!(c.checkpoints.exact, c.checkpoints.offsets, "{c:?}");
    let rule = c
        .mm2_rule_on_syncs
        .as_ref()
        .expect("MM2's rule on Ferry's syncs");
    assert_eq!(rule.offsets, c.checkpoints.offsets);
    assert_eq!(rule.ahead, 0, "MM2's rule is never ahead on these syncs");
    assert!(c.cycle.as_ref().is_some_and(|t| t.cycles > 0), "{c:?}");

    for case in &w4.cases[1..] {
        let result = &case.results[0];
        assert!(result.ok, "{}: {:?}", case.name, result.error);
        let map = result.offset_map.as_ref().expect("offset map figures");
        assert_eq!(
            map.translation.exact, map.translation.offsets,
            "{}",
            case.name
        );
        assert_eq!(map.cycle.cycles, 5, "{}", case.name);
    }
    assert!(stdout.contains("== w4 "), "the table is printed:\n{stdout}");
}

#[test]
fn quick_w5_shares_the_slots_and_measures_both_membership_changes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = run_quick(dir.path(), &["w5"], Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let w5 = &summary(dir.path()).workloads["w5"];
    assert!(w5.quick);
    let names: Vec<&str> = w5.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["w5-scale", "w5-rebalance"]);

    let scale = &w5.cases[0];
    for (result, processes) in scale.results.iter().zip([1, 2]) {
        let what = &result.contender;
        assert!(result.ok, "{what}: {:?}", result.error);
        // Duplicates are reported, not failed on here: the end-to-end
        // suites own that guarantee.
        assert!(result.records_copied >= scale.records, "{what}");
        assert_eq!(result.parts.len(), processes, "{what}");
        // Every slot owned by exactly one process, every record copied by
        // one of them.
        let mut slots: Vec<u16> = result
            .parts
            .iter()
            .flat_map(|p| p.slots.clone().expect("the slots from /status"))
            .collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..16).collect::<Vec<u16>>(), "{what}");
        for part in &result.parts {
            assert!(part.cpu_seconds.is_some_and(|c| c > 0.0), "{what}");
            assert!(part.peak_rss_bytes.is_some_and(|b| b > 0), "{what}");
        }
        let copied: u64 = result.parts.iter().map(|p| p.records_copied).sum();
        assert!(
            copied >= scale.records,
            "{what}: the processes copied {copied}"
        );
    }
    assert!(
        scale
            .ratios
            .contains_key("two-processes/one-process records_per_sec"),
        "{:?}",
        scale.ratios
    );

    let ferry = &w5.cases[1].results[0];
    assert!(ferry.ok, "{:?}", ferry.error);
    let rebalance = ferry.rebalance.as_ref().expect("rebalance figures");
    assert_eq!(rebalance.missing, 0, "{rebalance:?}");
    let phases: Vec<&str> = rebalance.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["join", "leave"]);
    for phase in &rebalance.phases {
        assert!(!phase.slots_moved.is_empty(), "{phase:?}");
        assert_eq!(phase.partitions_stayed + phase.partitions_moved, 24);
        assert!(phase.gap_max_moved_seconds.is_some(), "{phase:?}");
        assert!(phase.resumed_seconds.is_some(), "{phase:?}");
    }
    assert!(
        stdout.contains("== w5-rebalance"),
        "the table is printed:\n{stdout}"
    );
}

#[test]
fn quick_eos_runs_both_delivery_modes_and_exactly_once_survives_a_crash_without_duplicates() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = run_quick(
        dir.path(),
        &["eos", "--contenders", "ferry,ferry-eos"],
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = summary(dir.path());

    for case in &summary.workloads["w1"].cases {
        let contenders: Vec<&str> = case.results.iter().map(|r| r.contender.as_str()).collect();
        assert_eq!(contenders, ["ferry", "ferry-eos"], "{}", case.name);
        for result in &case.results {
            let what = format!("{} / {}", case.name, result.contender);
            assert!(result.ok, "{what}: {:?}", result.error);
            assert!(result.copied_all, "{what}");
            assert_eq!(result.spot_check_ok, Some(true), "{what}");
        }
        let eos = &case.results[1];
        let delivered = eos.delivered.as_ref().expect("ferry-eos is read back");
        assert_eq!(
            delivered.records, case.records,
            "{}: {delivered:?}",
            case.name
        );
        assert_eq!(
            (delivered.duplicates, delivered.missing),
            (0, 0),
            "{delivered:?}"
        );
        assert!(
            delivered.hidden_offsets > 0,
            "{}: no transaction marker on ferry-eos's target: {delivered:?}",
            case.name
        );
        assert!(
            case.ratios.contains_key("ferry-eos/ferry records_per_sec"),
            "{:?}",
            case.ratios
        );
    }

    let w2 = &summary.workloads["w2"].cases[0];
    for result in &w2.results {
        assert!(result.ok, "w2 / {}: {:?}", result.contender, result.error);
        let latency = result.latency_ms.as_ref().expect("latency figures");
        assert_eq!(latency.missing, 0, "w2 / {}", result.contender);
    }

    let crash = &summary.workloads["crash"].cases[0];
    let contenders: Vec<&str> = crash.results.iter().map(|r| r.contender.as_str()).collect();
    assert_eq!(contenders, ["ferry", "ferry-eos"]);
    for result in &crash.results {
        let what = &result.contender;
        assert!(result.ok, "crash / {what}: {:?}", result.error);
        let c = result.crash.as_ref().expect("crash figures");
        assert!(
            c.target_offsets_at_kill < crash.records,
            "crash / {what}: killed only after copying everything: {c:?}"
        );
        assert!(c.recovered_seconds.is_some(), "crash / {what}: {c:?}");
        let delivered = result.delivered.as_ref().expect("read back");
        assert_eq!(delivered.missing, 0, "crash / {what}: {delivered:?}");
        assert_eq!(delivered.unexpected, 0, "crash / {what}: {delivered:?}");
    }
    let eos = crash.results[1].delivered.as_ref().expect("read back");
    assert_eq!(eos.duplicates, 0, "exactly-once after a crash: {eos:?}");
    assert!(eos.hidden_offsets > 0, "{eos:?}");
    assert!(
        stdout.contains("== crash-200B"),
        "the table is printed:\n{stdout}"
    );
}
