//! `ferry cutover`: the guided switch of a flow's topics to the target
//! (`ferry_migrate::cutover`). Exit 0 when every step passed, 1 when a
//! check refused or a cluster failed, 2 on bad input.

use std::path::Path;
use std::time::Duration;

use ferry_migrate::cutover::{self, CutoverError, CutoverOptions};

use crate::exit;

pub fn cutover(
    path: &Path,
    flow: &str,
    topics: Option<&str>,
    settle: Duration,
    wait: Duration,
) -> u8 {
    let (topology, flows, filter, rt) = match super::start_topic_command(path, Some(flow), topics) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let options = CutoverOptions {
        topics: filter,
        settle,
        wait,
        // One checkpoint cycle brings the last offset syncs of a daemon.
        translation_wait: (flows[0].checkpoint_interval * 3).max(Duration::from_secs(15)),
    };
    let log = |line: &str| println!("{line}");
    match rt.block_on(cutover::cutover(&topology, &flows[0], &options, &log)) {
        Ok(report) => {
            print!("{}", cutover::render_next_steps(&report));
            exit::OK
        }
        Err(CutoverError::BadInput(e)) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
