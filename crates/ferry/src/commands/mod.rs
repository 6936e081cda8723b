//! One module per CLI verb. Each returns a process exit code.

mod check;
mod cutover;
mod demo;
mod failback;
mod import_mm2;
mod offsets;
mod plan;
mod reset_progress;
mod resume_topics;
mod run;
mod status;
mod verify;
mod version;

use std::path::Path;

use ferry_config::Loaded;

use crate::cli::{Cli, Command};
use crate::exit;

pub fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run {
            config,
            until,
            http_listen,
            allow_reslot,
        } => run::run(
            &config,
            run::RunOptions {
                until,
                http_listen,
                allow_reslot,
            },
        ),
        Command::Check {
            config,
            connect,
            timeout,
        } => check::check(&config, connect, timeout),
        Command::Status { config, json } => status::status(&config, json),
        Command::Demo { records, quiet } => demo::demo(records, quiet),
        Command::ImportMm2 { file, output } => import_mm2::import_mm2(&file, output.as_deref()),
        Command::Version { verbose } => version::version(verbose),
        Command::Offsets {
            config,
            flow,
            group,
        } => offsets::offsets(&config, &flow, group.as_deref()),
        Command::Verify {
            config,
            flow,
            json,
            acls: true,
            ..
        } => verify::verify_acls(&config, flow.as_deref(), json),
        Command::Verify {
            config,
            flow,
            json,
            schemas: true,
            ..
        } => verify::verify_schemas(&config, flow.as_deref(), json),
        Command::Verify {
            config,
            flow,
            topics,
            json,
            parallel,
            wait,
            acls: false,
            schemas: false,
        } => verify::verify(
            &config,
            flow.as_deref(),
            topics.as_deref(),
            json,
            usize::from(parallel),
            wait,
        ),
        Command::Cutover {
            config,
            flow,
            topics,
            settle,
            wait,
        } => cutover::cutover(&config, &flow, topics.as_deref(), settle, wait),
        Command::Failback {
            config,
            flow,
            topics,
            settle,
            wait,
            accept_primary_tail,
        } => failback::failback(
            &config,
            &flow,
            topics.as_deref(),
            failback::Timing { settle, wait },
            accept_primary_tail,
        ),
        Command::ResumeTopics {
            config,
            flow,
            topics,
        } => resume_topics::resume_topics(&config, &flow, &topics),
        Command::Plan {
            config,
            flow,
            json,
            apply,
            throughput,
        } => plan::plan(&config, flow.as_deref(), json, apply, throughput.as_deref()),
        Command::ResetProgress {
            config,
            flow,
            topics,
            partitions,
        } => reset_progress::reset_progress(&config, &flow, &topics, &partitions),
    }
}

/// Loads and validates a topology, printing problems and warnings.
/// `Err` carries the exit code to use.
pub fn load_topology(path: &Path) -> Result<Loaded, u8> {
    match ferry_config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::BAD_INPUT)
        }
    }
}

/// Loads a topology and the flows a command targets (`--flow A->B`, or
/// every enabled flow). `Err` carries the exit code (2: bad input).
pub fn load_flows(
    path: &Path,
    flow: Option<&str>,
) -> Result<(ferry_config::Topology, Vec<ferry_config::Flow>), u8> {
    let topology = load_topology(path)?.topology;
    match ferry_migrate::select_flows(&topology, flow) {
        Ok(flows) => Ok((topology, flows)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::BAD_INPUT)
        }
    }
}

/// A `--topics REGEX` argument, compiled; `Err` (after printing why) is
/// the exit code for bad input.
pub fn topics_arg(topics: Option<&str>) -> Result<Option<regex::Regex>, u8> {
    topics
        .map(ferry_migrate::verify::topics_filter)
        .transpose()
        .map_err(|e| {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        })
}

/// Logging as the topology sets it, and the runtime of a command that talks
/// to clusters; `Err` (after printing why) is the exit code.
pub fn start_command(topology: &ferry_config::Topology) -> Result<tokio::runtime::Runtime, u8> {
    crate::logging::init(&topology.log);
    runtime().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        exit::FAILURE
    })
}

/// What a command over some flows' topics needs (`verify`, `cutover`):
/// the topology, its flows (`--flow`, or every enabled one), the compiled
/// `--topics` filter, and a runtime with logging set up. `Err` (after
/// printing why) is the exit code.
pub fn start_topic_command(
    path: &Path,
    flow: Option<&str>,
    topics: Option<&str>,
) -> Result<
    (
        ferry_config::Topology,
        Vec<ferry_config::Flow>,
        Option<regex::Regex>,
        tokio::runtime::Runtime,
    ),
    u8,
> {
    let (topology, flows) = load_flows(path, flow)?;
    let filter = topics_arg(topics)?;
    let rt = start_command(&topology)?;
    Ok((topology, flows, filter, rt))
}

/// A multi-threaded runtime for commands that talk to clusters.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
