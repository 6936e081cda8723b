//! `ferry resume-topics`: undoes a cutover (`ferry_migrate::resume`).
//! Exit 0 when the topics replicate again (or will at the next start), 1
//! when the target or the daemon failed, 2 on bad input.

use std::path::Path;

use ferry_migrate::resume::{self, ResumeError};

use crate::exit;

pub fn resume_topics(path: &Path, flow: &str, topics: &str) -> u8 {
    let (topology, flows, filter, rt) =
        match super::start_topic_command(path, Some(flow), Some(topics)) {
            Ok(started) => started,
            Err(code) => return code,
        };
    let filter = filter.expect("--topics is required");
    match rt.block_on(resume::resume_topics(&topology, &flows[0], &filter)) {
        Ok(report) => {
            print!("{}", resume::render(&report));
            exit::OK
        }
        Err(ResumeError::BadInput(e)) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}
