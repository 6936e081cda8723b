//! `ferry verify`: compares source and target partition by partition over
//! the replicated range (`ferry_migrate::verify`). Reads only. Exit 0 on a
//! match, 1 on any mismatch, 2 on bad input, 3 when incomplete: not every
//! source record of the range could be compared, or a cluster could not be
//! read at all. With `--acls`, compares ACLs instead
//! (`ferry_migrate::verify::acls`), with the same exit codes; with
//! `--schemas`, checks the schema IDs of the target records and the subject
//! lists of the registries (`ferry_migrate::verify::schemas`).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_migrate::verify::{self, Outcome, VerifyOptions};

use crate::exit;

pub fn verify(
    path: &Path,
    flow: Option<&str>,
    topics: Option<&str>,
    json: bool,
    parallel: usize,
    wait: Duration,
) -> u8 {
    let (topology, flows, filter, rt) = match super::start_topic_command(path, flow, topics) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let options = VerifyOptions {
        topics: filter.map(verify::TopicFilter::Pattern),
        parallel,
        wait,
        notice: Some(Arc::new(|line: &str| eprintln!("{line}"))),
    };
    // Per-partition progress for a person watching; scripts read the
    // report.
    let progress: Option<Arc<verify::Progress>> = std::io::stderr().is_terminal().then(|| {
        Arc::new(|r: &verify::PartitionResult, done: usize, total: usize| {
            eprintln!("{}", verify::progress_line(r, done, total));
        }) as Arc<verify::Progress>
    });
    let report = match rt.block_on(verify::verify(&topology, &flows, &options, progress)) {
        Ok(r) => r,
        Err(e) => {
            // Nothing (or not everything) could be compared: incomplete,
            // never to be read as a mismatch of the data.
            eprintln!("error: {e}");
            return exit::INCOMPLETE;
        }
    };
    if let (Some(pattern), 0) = (topics, report.partitions) {
        let names: Vec<String> = flows.iter().map(|f| f.id().to_string()).collect();
        eprintln!(
            "error: --topics \"{pattern}\" matches no source topic replicated by {}",
            names.join(", ")
        );
        return exit::BAD_INPUT;
    }
    report_and_exit(&report, report.result, json, verify::render)
}

/// `ferry verify --acls`.
pub fn verify_acls(path: &Path, flow: Option<&str>, json: bool) -> u8 {
    let (topology, flows, _, rt) = match super::start_topic_command(path, flow, None) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let report = rt.block_on(verify::acls::verify_acls(&topology, &flows));
    // Its admin clients are destroyed on their own threads right after the
    // comparison; exiting while one is inside librdkafka's teardown can
    // kill the process by a signal instead of the exit code below.
    ferry_admin::wait_for_teardown(Duration::from_secs(10));
    report_and_exit(&report, report.result, json, verify::acls::render)
}

/// `ferry verify --schemas`.
pub fn verify_schemas(path: &Path, flow: Option<&str>, json: bool) -> u8 {
    let (topology, flows, _, rt) = match super::start_topic_command(path, flow, None) {
        Ok(started) => started,
        Err(code) => return code,
    };
    if !flows.iter().any(|f| f.schemas.is_some()) {
        eprintln!("error: no selected flow copies schemas (flows[].schemas)");
        return exit::BAD_INPUT;
    }
    let report = rt.block_on(verify::schemas::verify_schemas(&topology, &flows));
    ferry_admin::wait_for_teardown(Duration::from_secs(10));
    report_and_exit(&report, report.result, json, verify::schemas::render)
}

/// Prints a report (JSON or text) and returns the exit code its outcome
/// calls for.
fn report_and_exit<R: serde::Serialize>(
    report: &R,
    result: Outcome,
    json: bool,
    render: fn(&R) -> String,
) -> u8 {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return exit::FAILURE;
            }
        }
    } else {
        print!("{}", render(report));
    }
    match result {
        Outcome::Match => exit::OK,
        Outcome::Mismatch => exit::FAILURE,
        Outcome::Incomplete | Outcome::Error => exit::INCOMPLETE,
    }
}
