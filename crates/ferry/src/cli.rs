//! The command line. Usage errors exit with code 2 (clap's convention and
//! Ferry's "bad input").

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "Kafka cluster replication and migration", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the replication daemon for a topology file.
    Run {
        /// The topology file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Stop once every partition reached the end offsets seen at start.
        #[arg(long, value_enum, value_name = "CONDITION")]
        until: Option<Until>,
    },
    /// Validate a topology file and print a summary of clusters and flows.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Also connect to every cluster (proves addresses, TLS and SASL).
        #[arg(long)]
        connect: bool,
    },
    /// Show how a flow's consumer group offsets translate to the target: per
    /// group and partition, the source offset, Ferry's translation (exact or
    /// conservative), the last checkpoint and the target group's offset.
    Offsets {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The flow, as SOURCE->TARGET.
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: String,
        /// Only this consumer group.
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
    },
    /// Replicate live traffic between two embedded in-process clusters and
    /// verify the result (no brokers needed).
    Demo {
        /// How many records to produce.
        #[arg(long, default_value_t = 20_000)]
        records: u64,
        /// Only print the progress and the verification summary.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    /// Every partition reached the source end offsets captured at start.
    CaughtUp,
}
