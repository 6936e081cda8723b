//! `ferry failback`: a flow's topics and groups handed back to its source
//! after a failover (`ferry_migrate::failback`). Exit 0 when every step
//! passed, 1 when a check refused or a cluster failed, 2 on bad input.

use std::path::Path;
use std::time::Duration;

use ferry_migrate::cutover::{self, CutoverError};
use ferry_migrate::failback::{self, FailbackOptions};

use crate::exit;

/// How long the source may take to answer before failback refuses.
const REACH_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Timing {
    pub settle: Duration,
    pub wait: Duration,
}

pub fn failback(
    path: &Path,
    flow: &str,
    topics: Option<&str>,
    timing: Timing,
    accept_primary_tail: bool,
) -> u8 {
    let (topology, flows, filter, rt) = match super::start_topic_command(path, Some(flow), topics) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let options = FailbackOptions {
        topics: filter,
        settle: timing.settle,
        wait: timing.wait,
        // One checkpoint cycle brings the last offset syncs, as in cutover.
        translation_wait: (flows[0].checkpoint_interval * 3).max(Duration::from_secs(15)),
        reach_timeout: REACH_TIMEOUT,
        accept_primary_tail,
    };
    let log = |line: &str| println!("{line}");
    match rt.block_on(failback::failback(&topology, &flows[0], &options, &log)) {
        Ok(report) => {
            print!("{}", next_steps(&report));
            exit::OK
        }
        Err(CutoverError::BadInput(e)) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
        Err(e) => {
            // The hand-back's checks are cutover's: named as this command.
            eprintln!(
                "error: {}",
                e.to_string()
                    .replacen("cutover refused", "failback refused", 1)
                    .replace("run cutover again", "run failback again")
            );
            exit::FAILURE
        }
    }
}

/// Cutover's closing instructions for the reverse flow, told as a
/// failback: a reverse flow the topology lacks has nothing to remove, and
/// the forward flow comes last.
fn next_steps(report: &failback::FailbackReport) -> String {
    let text = cutover::render_next_steps(&report.cutover).replacen(
        "cutover of flow",
        "failback through flow",
        1,
    );
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !(report.reverse_synthesized && l.starts_with("  3. remove these topics")))
        .map(str::to_string)
        .collect();
    let step = if report.reverse_synthesized { 3 } else { 4 };
    lines.push(format!(
        "  {step}. to replicate {} to {} again, run flow {} as before: it resumes where it stopped, and cycle protection skips the records copied back",
        report.cutover.target, report.cutover.source, report.forward
    ));
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
