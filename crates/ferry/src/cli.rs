//! The command line. Usage errors exit with code 2 (clap's convention and
//! Ferry's "bad input").

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Kafka cluster replication and migration",
    long_about = None,
    after_help = "Commands that talk to clusters retry transient Kafka errors (coordinator loading, \
leader elections, timeouts, lost connections) for up to 60 s, printing one line per retry on stderr."
)]
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
        /// Serve metrics, health and `/status` here instead of the file's
        /// `http.listen`, so that several processes on one host can run the
        /// same topology file (its digest is how members recognise each
        /// other).
        #[arg(long, value_name = "HOST:PORT")]
        http_listen: Option<std::net::SocketAddr>,
        /// Acknowledge that a flow's `slots` changed: its slots topic is
        /// recreated with the new count. Stop every other process of the
        /// flow first.
        #[arg(long)]
        allow_reslot: bool,
    },
    /// Validate a topology file and print a summary of clusters and flows.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Also connect to every cluster (proves addresses, TLS and SASL),
        /// and prove that the target of every exactly-once flow supports
        /// transactions. A cluster that answers nothing yet is retried for
        /// up to 30 s.
        #[arg(long)]
        connect: bool,
        /// With --connect: how long each request waits for its answer.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        timeout: std::time::Duration,
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
    /// Compare source and target partition by partition over the replicated
    /// range: record counts, an order-sensitive digest of key, value,
    /// headers and timestamp, and the first divergent record of each side.
    /// The range runs from the later of the source log start and the flow's
    /// start position to the source end offsets captured at the start;
    /// while replication runs, verify first waits for it to get there.
    /// Reads only. Exit 0: match; 1: mismatch; 3: incomplete (source
    /// records not, or not yet, on the target, or a range that could not
    /// be compared; each partition says why).
    Verify {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this flow, as SOURCE->TARGET (default: every enabled flow).
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: Option<String>,
        /// Only source topics whose whole name matches this regex.
        #[arg(long, value_name = "REGEX")]
        topics: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Partitions read at once.
        #[arg(long, value_name = "N", default_value_t = 4,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        parallel: u16,
        /// How long to wait for running replication to reach the source
        /// end offsets captured at the start, e.g. "30s"; "0s" compares at
        /// once.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        wait: std::time::Duration,
        /// Compare ACLs instead of records: the ACLs each flow expects on
        /// its target (derived from the source's, as sync_acls copies them)
        /// with the target's.
        #[arg(long, conflicts_with_all = ["topics", "parallel", "wait"])]
        acls: bool,
        /// Check schemas instead of records (flows with `schemas`): every
        /// schema ID in the target records resolves on the target registry
        /// to the same schema as on the source, and the subject lists match.
        #[arg(long, conflicts_with_all = ["topics", "parallel", "wait", "acls"])]
        schemas: bool,
    },
    /// Show what replicating would do to the target (topics, configs,
    /// consumer groups, backlog, warnings) without changing anything; with
    /// --apply, create the topics and group offsets without copying data.
    /// Each partition starts where the daemon would start it; a partition
    /// whose saved progress is past the source log end (source topic
    /// recreated or truncated) is shown HELD: the daemon copies nothing of
    /// it until its progress is reset.
    Plan {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this flow, as SOURCE->TARGET (default: every enabled flow).
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: Option<String>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Metadata-only migration: create the planned topics with their
        /// configs and write consumer-group offsets on the target.
        #[arg(long)]
        apply: bool,
        /// Catch-up throughput to assume, e.g. "50MB/s" (the default) or
        /// "1GiB/s"; a bare number is MB/s.
        #[arg(long, value_name = "RATE")]
        throughput: Option<String>,
    },
    /// Switch a flow's topics to the target: wait until lag is 0 and stays
    /// 0 (producers stopped), hand consumer group offsets over, verify,
    /// stop replicating the topics (in the running daemon, or in this
    /// command when no daemon runs) and record that on the target, so no
    /// later run replicates them until `ferry resume-topics`, and print the
    /// next steps. Every step refuses to go on when its check fails (exit
    /// 1); run it again to resume. A running daemon is asked with the
    /// topology's http.control_token, which it must have too.
    Cutover {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The flow, as SOURCE->TARGET.
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: String,
        /// Only source topics whose whole name matches this regex.
        #[arg(long, value_name = "REGEX")]
        topics: Option<String>,
        /// How long lag must stay 0, with no new source records, e.g. "10s".
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        settle: std::time::Duration,
        /// How long lag may take to reach 0 and settle before cutover refuses.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        wait: std::time::Duration,
    },
    /// Hand a flow's topics and consumer groups back to its source after a
    /// failover to its target (identity naming with cycle protection):
    /// once the source answers and nobody writes to it, copy back what was
    /// written on the target meanwhile (none of the records the source
    /// holds), translate the group offsets back exactly, and finish as
    /// cutover does for the reverse flow. Refuses (exit 1) with the reason:
    /// the source unreachable, producers writing to it (or still to the
    /// target), records the source holds that never reached the target
    /// (unless --accept-primary-tail), offsets without an exact translation.
    Failback {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The flow that copied to the cluster failed over to, as
        /// SOURCE->TARGET (e.g. primary->backup).
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: String,
        /// Only topics whose whole name matches this regex.
        #[arg(long, value_name = "REGEX")]
        topics: Option<String>,
        /// How long the source must get no record, and lag stay 0, e.g. "10s".
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        settle: std::time::Duration,
        /// How long copying back may take to reach 0 lag and settle.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        wait: std::time::Duration,
        /// Go on although the source holds records that never reached the
        /// target (they stay before the records copied back).
        #[arg(long)]
        accept_primary_tail: bool,
    },
    /// Forget a flow's saved progress for the source topics matching
    /// --topics, so the next run starts those partitions by start_from (or
    /// where MirrorMaker 2 stopped) instead of resuming. The remedy for a
    /// target topic deleted after records were copied (recreated empty, it
    /// would never get them back) and for a partition held because its
    /// saved progress is past the source log end. Stop the daemon first: it
    /// is refused while a daemon for the flow answers at http.listen, and a
    /// daemon elsewhere would write the progress back.
    ResetProgress {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The flow, as SOURCE->TARGET.
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: String,
        /// Source topics whose whole name matches this regex.
        #[arg(long, value_name = "REGEX")]
        topics: String,
        /// Only these partitions, e.g. "0,3" (default: every partition).
        #[arg(long, value_name = "N,...", value_delimiter = ',')]
        partitions: Vec<i32>,
    },
    /// Undo a cutover: the flow's cut-over topics whose whole name matches
    /// --topics replicate again, from their saved progress. Removes their
    /// cut-over state on the target (ferry-cutover.<source>.internal); a
    /// daemon running the flow is told at once (with the topology's
    /// http.control_token) and restarts the flow, else the next `ferry run`
    /// picks them up. Exit 2 when the flow is unknown or --topics matches
    /// no cut-over topic.
    ResumeTopics {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The flow, as SOURCE->TARGET.
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: String,
        /// Cut-over source topics whose whole name matches this regex.
        #[arg(long, value_name = "REGEX")]
        topics: String,
    },
    /// Show a running daemon's status (from its /status endpoint at
    /// http.listen, sending the topology's http.control_token) as a table:
    /// flows, topics, records, lag, errors, the topics cut over, and
    /// warnings such as held partitions (saved progress past the source
    /// log end).
    Status {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Translate a MirrorMaker 2 properties file (connect-mirror-maker.properties)
    /// into a Ferry topology: clusters, client and security settings, flows,
    /// topic and group filters, naming, checkpoints, heartbeats and group
    /// offset sync. Every property that has no Ferry equivalent is named on
    /// stderr with its line; secrets become ${env:…} references listed at the
    /// top of the topology. Exit 2 when the file cannot be read or is not a
    /// valid MirrorMaker 2 configuration.
    ImportMm2 {
        /// The MirrorMaker 2 properties file.
        #[arg(value_name = "MM2_PROPERTIES")]
        file: PathBuf,
        /// Write the topology to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print Ferry's version; with --verbose also the librdkafka it was
    /// built with and that library's built-in features (sasl_oauthbearer,
    /// gssapi, ssl, zstd, curl, ...), which decide what a cluster's
    /// `client` properties can ask for.
    Version {
        #[arg(long)]
        verbose: bool,
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

/// A duration such as "10s", "2m" or "1h 30m".
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("\"{text}\": {e} (for example \"10s\" or \"2m\")"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    /// Every partition reached the source end offsets captured at start.
    CaughtUp,
}
