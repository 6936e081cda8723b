//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::contenders::Contender;

#[derive(Debug, Parser)]
#[command(
    name = "ferry-bench",
    version,
    about = "Benchmarks Ferry against the rdkafka limit, MirrorMaker 2 and a naive Python peer on real Apache Kafka",
    after_help = "Results: a table per case on stdout, and the JSON summary (schema: crates/bench/SCHEMA.md).\n\
                  Build first: cargo build --release -p ferry -p ferry-bench"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// W1 catch-up: 2,000,000 × 200 B and 200,000 × 2 KB over 8 partitions.
    W1(RunArgs),
    /// W2 steady-state latency at a fixed rate (p50/p99/max).
    W2(RunArgs),
    /// W3 breadth: 1,000 topics × 4 partitions, light traffic.
    W3(RunArgs),
    /// W4 offset translation: 100 groups × 8 partitions against the truth,
    /// Ferry beside MirrorMaker 2, and offset maps at 10,000 partitions.
    W4(RunArgs),
    /// W5 scale-out: one ferry process against two on 3 topics × 8
    /// partitions, and the copy gaps while a second process joins and
    /// leaves (always and only ferry processes; --contenders is ignored).
    W5(RunArgs),
    /// W1, then W2 (at 50% of Ferry's W1 rate), W3 and W4, on the same brokers.
    All(RunArgs),
    /// W1 then W5 on the same brokers: with `--contenders ferry,baseline
    /// --baseline OLD/ferry`, one process against the code before
    /// scale-out beside the scale-out figures.
    ScaleOut(RunArgs),
    /// Duplicates after a crash: each contender SIGKILLed mid-copy of
    /// 1,000,000 × 200 B, restarted, and the target read back
    /// read_committed [default contenders: ferry,ferry-eos,mm2-eos].
    Crash(RunArgs),
    /// Exactly-once side by side: W1, W2 (at 50% of Ferry's W1 rate) and
    /// `crash`, on the same brokers [default contenders:
    /// ferry,ferry-eos,mm2-eos].
    Eos(RunArgs),
    /// The limit's consume-only half (run by the harness as its own process).
    #[command(hide = true)]
    LimitConsume {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
    },
    /// The limit's produce-only half (run by the harness as its own process).
    #[command(hide = true)]
    LimitProduce {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
        #[arg(long)]
        records: u64,
        #[arg(long)]
        value_size: usize,
        #[arg(long)]
        base_timestamp_ms: i64,
    },
    /// W4's in-process offset maps (run by the harness as its own process).
    #[command(hide = true)]
    W4Map {
        #[arg(long)]
        partitions: u64,
        #[arg(long)]
        records_per_partition: u64,
        /// Records per transaction (a marker after each); contiguous if unset.
        #[arg(long)]
        gap_every: Option<u64>,
        #[arg(long)]
        groups: u64,
        #[arg(long)]
        cycles: u64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Small sizes for a CI smoke run (W1: 20,000 × 200 B and 2,000 × 2 KB;
    /// W2: 3 s at 1,000 records/s; W3: 20 topics; W4: 4,000 records, 10
    /// groups, maps of 80 partitions; W5: 15,000 records, 1,200 records/s;
    /// crash: 200,000 records).
    #[arg(long)]
    pub quick: bool,
    /// Where to write the JSON summary [default: target/bench/summary.json].
    /// An existing summary keeps the other workloads' latest results.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Contenders, in the order they run: ferry, ferry-eos (the same binary
    /// with `delivery = "exactly-once"`), limit, mm2, mm2-eos (MirrorMaker 2
    /// with exactly-once source support), python, baseline [default:
    /// ferry,limit,mm2,python; crash and eos: ferry,ferry-eos,mm2-eos].
    #[arg(long, value_delimiter = ',')]
    pub contenders: Option<Vec<Contender>>,
    /// W2 produce rate in records/s [default: 50% of Ferry's W1 200 B rate
    /// from this run or the summary file, else 20,000].
    #[arg(long)]
    pub rate: Option<f64>,
    /// W2 measured phase in seconds [default: 30, --quick: 3].
    #[arg(long)]
    pub duration: Option<f64>,
    /// The ferry binary [default: next to ferry-bench, else target/release/ferry].
    #[arg(long)]
    pub ferry: Option<PathBuf>,
    /// Another ferry binary, run as the `baseline` contender (add it to
    /// --contenders): e.g. the build before a change, measured side by side.
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Directory for run directories (configs, logs) [default: target/bench].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where the brokers keep their data [default: /dev/shm when writable,
    /// else the system's temporary directory]. In memory, the disk's fsync
    /// latency (which made creating the W3 topics take 5 to 28 s on the same
    /// VM) cannot decide topic creation and W3.
    #[arg(long, value_name = "DIR")]
    pub broker_dir: Option<PathBuf>,
    /// Upper bound for one contender's run, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Extra librdkafka property for Ferry's source cluster
    /// (`[clusters.<alias>.client]`), e.g. `fetch.max.bytes=8388608`;
    /// repeatable. For tuning experiments: the defaults are what users get.
    #[arg(long, value_name = "KEY=VALUE")]
    pub ferry_source_client: Vec<String>,
    /// Extra librdkafka property for Ferry's target cluster; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub ferry_target_client: Vec<String>,
    /// Extra key of Ferry's flow (`[[flows]]`), the value written as TOML,
    /// e.g. `transaction_interval="1s"`; repeatable. For experiments.
    #[arg(long, value_name = "KEY=VALUE")]
    pub ferry_flow: Vec<String>,
    /// Extra environment variable for the ferry process (e.g.
    /// `LD_PRELOAD=...` or `MALLOC_ARENA_MAX=2`); repeatable. For experiments.
    #[arg(long, value_name = "KEY=VALUE")]
    pub ferry_env: Vec<String>,
    /// Extra environment variable for both halves of the limit (e.g.
    /// `LD_PRELOAD=...` to give them the allocator Ferry ships); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub limit_env: Vec<String>,
    /// Keep every contender's target topics instead of deleting them.
    #[arg(long)]
    pub keep_topics: bool,
}
