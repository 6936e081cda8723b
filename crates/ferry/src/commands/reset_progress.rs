//! `ferry reset-progress`: forget a flow's saved progress for some source
//! topics (`ferry_migrate::reset`). Exit 0 when progress was reset, 1 when
//! nothing matched, a daemon for the flow is running or a write failed, 2 on
//! bad input.

use std::path::Path;

use ferry_migrate::reset;

use crate::exit;

pub fn reset_progress(path: &Path, flow: &str, topics: &str, partitions: &[i32]) -> u8 {
    let (topology, flows, filter, rt) =
        match super::start_topic_command(path, Some(flow), Some(topics)) {
            Ok(started) => started,
            Err(code) => return code,
        };
    let filter = filter.expect("--topics is required");
    let flow = &flows[0];
    match rt.block_on(reset::reset_progress(&topology, flow, &filter, partitions)) {
        Ok(reset) if reset.is_empty() => {
            eprintln!(
                "error: flow {} has no saved progress for a source topic matching --topics \"{topics}\"{}; nothing reset",
                flow.id(),
                if partitions.is_empty() {
                    String::new()
                } else {
                    format!(" in --partitions {partitions:?}")
                }
            );
            exit::FAILURE
        }
        Ok(reset) => {
            for r in &reset {
                println!(
                    "reset: {} partition {} (saved progress was offset {})",
                    r.topic, r.partition, r.was
                );
            }
            println!(
                "reset the saved progress of {} partition(s) of flow {} on {}: the next run starts them by start_from",
                reset.len(),
                flow.id(),
                flow.target
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
