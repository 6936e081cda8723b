//! `ferry-bench`: parse the command line, then either run workloads or one
//! half of the limit (see the crate docs in `lib.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferry_bench::cli::{Cli, Command, RunArgs};
use ferry_bench::contenders::limit;
use ferry_bench::contenders::Contender;
use ferry_bench::dataset::{now_ms, Dataset};
use ferry_bench::error::Result;
use ferry_bench::report::{render_case, CaseReport, Host, Summary, WorkloadReport};
use ferry_bench::workloads::{crash, w1, w2, w3, w4, w4_map, w5};
use ferry_bench::{default_work_dir, Env, EnvOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::LimitConsume {
            bootstrap,
            topic,
            partitions,
        } => limit::consume_main(&bootstrap, &topic, partitions).map(|()| true),
        Command::LimitProduce {
            bootstrap,
            topic,
            partitions,
            records,
            value_size,
            base_timestamp_ms,
        } => {
            let dataset = Dataset {
                partitions,
                records,
                value_size,
                base_timestamp_ms,
            };
            limit::produce_main(&bootstrap, &topic, &dataset).map(|()| true)
        }
        Command::W1(args) => run(&["w1"], args, CONTENDERS),
        Command::W2(args) => run(&["w2"], args, CONTENDERS),
        Command::W3(args) => run(&["w3"], args, CONTENDERS),
        Command::W4(args) => run(&["w4"], args, CONTENDERS),
        Command::W4Map {
            partitions,
            records_per_partition,
            gap_every,
            groups,
            cycles,
        } => w4_map::main(w4_map::Shape {
            partitions,
            records_per_partition,
            gap_every,
            groups,
            cycles,
        })
        .map(|()| true),
        Command::All(args) => run(&["w1", "w2", "w3", "w4"], args, CONTENDERS),
        Command::W5(mut args) => {
            // W5 compares ferry processes with each other only.
            args.contenders = None;
            run(&["w5"], args, &[Contender::Ferry])
        }
        Command::ScaleOut(args) => run(&["w1", "w5"], args, CONTENDERS),
        Command::Crash(args) => run(&["crash"], args, EOS_CONTENDERS),
        Command::Eos(args) => run(&["w1", "w2", "crash"], args, EOS_CONTENDERS),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("ferry-bench: some contenders failed (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The contenders of most workloads, unless `--contenders` says otherwise.
const CONTENDERS: &[Contender] = &[
    Contender::Ferry,
    Contender::Limit,
    Contender::Mm2,
    Contender::Python,
];
/// Exactly-once against Ferry's own at-least-once and MirrorMaker 2's
/// exactly-once (`crash`, `eos`).
const EOS_CONTENDERS: &[Contender] = &[Contender::Ferry, Contender::FerryEos, Contender::Mm2Eos];

/// Runs `workloads` in order with `--contenders` or else `contenders`;
/// true when every contender succeeded.
fn run(workloads: &[&str], args: RunArgs, contenders: &[Contender]) -> Result<bool> {
    let contenders = args
        .contenders
        .clone()
        .unwrap_or_else(|| contenders.to_vec());
    let work_dir = args.work_dir.clone().unwrap_or_else(default_work_dir);
    let json: PathBuf = args
        .json
        .clone()
        .unwrap_or_else(|| work_dir.join("summary.json"));
    let mut summary = Summary::load_or_default(&json);
    let env = Env::start(EnvOptions {
        contenders,
        quick: args.quick,
        ferry_bin: args.ferry.clone(),
        baseline_bin: args.baseline.clone(),
        work_dir,
        broker_dir: args.broker_dir.clone(),
        timeout: Duration::from_secs(args.timeout),
        keep_topics: args.keep_topics,
        ferry_source_client: args.ferry_source_client.clone(),
        ferry_target_client: args.ferry_target_client.clone(),
        ferry_flow: args.ferry_flow.clone(),
        ferry_env: args.ferry_env.clone(),
        limit_env: args.limit_env.clone(),
    })?;
    let mut all_ok = true;
    for &workload in workloads {
        let started = now_ms();
        let cases = match workload {
            "w1" => w1::run(&env)?,
            "w2" => w2::run(&env, w2_load(&args, &summary))?,
            "w3" => w3::run(&env)?,
            "w5" => w5::run(&env)?,
            "crash" => crash::run(&env)?,
            _ => w4::run(&env)?,
        };
        all_ok &= cases.iter().all(|c| c.results.iter().all(|r| r.ok));
        let tables: String = cases.iter().map(|c| render_case(workload, c)).collect();
        summary.workloads.insert(
            workload.to_string(),
            WorkloadReport {
                workload: workload.to_string(),
                started_at_unix_ms: started,
                finished_at_unix_ms: now_ms(),
                command: std::env::args().collect::<Vec<_>>().join(" "),
                quick: args.quick,
                host: host(),
                kafka_version: ferry_testkit::kafka::KAFKA_VERSION.to_string(),
                broker_data_dir: env.broker_dir.display().to_string(),
                ferry_version: env.ferry.version.clone(),
                cases,
            },
        );
        summary.write(&json)?;
        print!("{tables}");
        println!("\nsummary: {}", json.display());
    }
    Ok(all_ok)
}

/// W2's rate: `--rate`, else half of Ferry's W1 200 B records/s (from this
/// run or the summary file), else 20,000/s; `--quick` 1,000/s for 3 s.
fn w2_load(args: &RunArgs, summary: &Summary) -> w2::Load {
    let duration =
        Duration::from_secs_f64(args.duration.unwrap_or(if args.quick { 3.0 } else { 30.0 }));
    let ferry_w1 = || -> Option<f64> {
        let w1 = summary.workloads.get("w1")?;
        let case: &CaseReport = w1.cases.iter().find(|c| c.name == "w1-200B")?;
        case.result("ferry")?.records_per_sec
    };
    let rate = match (args.rate, args.quick) {
        (Some(rate), _) => rate,
        (None, true) => 1000.0,
        (None, false) => match ferry_w1() {
            Some(rps) => {
                eprintln!(
                    "ferry-bench: w2 rate = 50% of Ferry's W1 200 B rate ({rps:.0} records/s)"
                );
                (rps * 0.5).round()
            }
            None => {
                eprintln!("ferry-bench: w2: no Ferry W1 result to take 50% of; using 20,000 records/s (pass --rate)");
                20_000.0
            }
        },
    };
    w2::Load { rate, duration }
}

fn host() -> Host {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    Host {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_bytes,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}
