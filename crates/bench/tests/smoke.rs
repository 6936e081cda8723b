//! CI smoke run of the benchmark harness: `ferry-bench w1 --quick` with
//! Ferry, the limit and the naive Python peer against real Apache Kafka,
//! then checks that the JSON summary parses and that every contender copied
//! every record. MirrorMaker 2 is left to the real benchmark runs: its JVM
//! start alone would take a third of this test's budget.
//!
//! Nothing is skipped: when a contender cannot run (no ferry binary, no
//! Kafka install, pip cannot install confluent-kafka) the harness fails with
//! a message saying why, and so does this test.

use std::path::{Path, PathBuf};
use std::process::Command;
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

#[test]
fn quick_w1_copies_every_record_with_every_contender() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("summary.json");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-bench"))
        .args([
            "w1",
            "--quick",
            "--contenders",
            "ferry,limit,python",
            "--timeout",
            "120",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--work-dir")
        .arg(dir.path())
        .arg("--ferry")
        .arg(ferry_binary())
        .output()
        .expect("ferry-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ferry-bench w1 --quick failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "took {:?}",
        started.elapsed()
    );

    let text = std::fs::read_to_string(&json).expect("the summary was written");
    let summary: Summary = serde_json::from_str(&text).expect("the summary parses");
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
