//! The contenders and how each is started as its own process.
//!
//! Every contender copies the source topic(s) to target topics named
//! `<alias>.<topic>`, where the alias is unique to the contender and the case
//! (`ferry_200b`, `mm2_200b`, ...): the source data is shared, the targets
//! never are.

pub mod ferry;
pub mod limit;
pub mod mm2;
pub mod python;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use ferry_config::Delivery;

use crate::bail;
use crate::error::{BenchError, Result};
use crate::measure::Tracked;
use crate::Env;

/// Who is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contender {
    /// The real `ferry` daemon with a generated topology.
    Ferry,
    /// Plain rdkafka: a consume-only drain and a produce-only writer.
    Limit,
    /// The same `ferry` binary with `delivery = "exactly-once"` on its flow.
    FerryEos,
    /// MirrorMaker 2, dedicated mode, from the test brokers' jars.
    Mm2,
    /// The same MirrorMaker 2 with exactly-once source support (KIP-618)
    /// on the target cluster.
    Mm2Eos,
    /// `bench/naive_peer.py` on confluent-kafka.
    Python,
    /// Another `ferry` binary (`--baseline PATH`, e.g. the previous
    /// release), run exactly as `ferry` is: a change is measured against
    /// the code before it on the same brokers in the same run, so the
    /// machine's drift between runs cannot pass for a difference.
    Baseline,
}

impl Contender {
    pub const ALL: [Contender; 4] = [
        Contender::Ferry,
        Contender::Limit,
        Contender::Mm2,
        Contender::Python,
    ];

    /// A `ferry` binary (this build or the baseline): both write offset
    /// syncs on the target and promise exact checkpoints.
    pub fn is_ferry(self) -> bool {
        matches!(
            self,
            Contender::Ferry | Contender::FerryEos | Contender::Baseline
        )
    }

    /// MirrorMaker 2, at-least-once or exactly-once.
    pub fn is_mm2(self) -> bool {
        matches!(self, Contender::Mm2 | Contender::Mm2Eos)
    }

    /// Writes through transactions: its target is read `read_committed`,
    /// and holding no transaction marker there means it did not.
    pub fn exactly_once(self) -> bool {
        matches!(self, Contender::FerryEos | Contender::Mm2Eos)
    }

    /// A process that copies from the source to the target (everything but
    /// the limit).
    pub fn is_replicator(self) -> bool {
        self != Contender::Limit
    }

    pub fn name(self) -> &'static str {
        match self {
            Contender::Ferry => "ferry",
            Contender::Limit => "limit",
            Contender::FerryEos => "ferry-eos",
            Contender::Mm2 => "mm2",
            Contender::Mm2Eos => "mm2-eos",
            Contender::Python => "python",
            Contender::Baseline => "baseline",
        }
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Contender {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Contender> {
        match s.trim() {
            "ferry" => Ok(Contender::Ferry),
            "limit" => Ok(Contender::Limit),
            "ferry-eos" => Ok(Contender::FerryEos),
            "mm2" => Ok(Contender::Mm2),
            "mm2-eos" => Ok(Contender::Mm2Eos),
            "python" => Ok(Contender::Python),
            "baseline" => Ok(Contender::Baseline),
            other => bail!(
                "unknown contender {other:?}: use ferry, ferry-eos, limit, mm2, mm2-eos, python, baseline"
            ),
        }
    }
}

/// Which source topics a job copies.
#[derive(Clone, Debug)]
pub enum Topics {
    Names(Vec<String>),
    /// A regex matched against whole topic names.
    Pattern(String),
}

impl Topics {
    /// As a regex alternation (Ferry's and MirrorMaker's topic filters).
    pub fn regex(&self) -> String {
        match self {
            Topics::Names(names) => names.join("|"),
            Topics::Pattern(p) => p.clone(),
        }
    }
}

/// One replication job for a replicator contender.
#[derive(Clone, Debug)]
pub struct Job {
    /// Source cluster alias: target topics are `<alias>.<topic>`.
    pub alias: String,
    pub topics: Topics,
    /// Exit once caught up with the source end offsets captured at start
    /// (Ferry `--until caught-up`, the naive peer's default); otherwise run
    /// as a daemon until SIGTERM. MirrorMaker 2 is always a daemon.
    pub catch_up: bool,
    /// MirrorMaker 2's `tasks.max`.
    pub tasks: usize,
    /// W4: both replicators checkpoint consumer groups at this interval
    /// (Ferry's `checkpoint_interval`, MM2's
    /// `emit.checkpoints.interval.seconds`), and Ferry logs every
    /// checkpoint cycle's duration. `None`: each contender's defaults.
    pub checkpoint_interval: Option<Duration>,
}

impl Job {
    pub fn target_topic(&self, source_topic: &str) -> String {
        format!("{}.{source_topic}", self.alias)
    }
}

/// A started replicator and how it will end.
pub struct Launched {
    pub process: Tracked,
    pub exits_by_itself: bool,
    /// Where Ferry serves `/metrics`, if it is Ferry.
    pub metrics_port: Option<u16>,
    pub version: Option<String>,
}

/// Starts `contender` on `job`, with its output in `<run dir>/<log_name>.log`.
pub fn launch(env: &Env, contender: Contender, job: &Job, log_name: &str) -> Result<Launched> {
    let log: PathBuf = env.run_dir.join(format!("{log_name}.log"));
    match contender {
        Contender::Ferry => ferry::launch(env, job, &log, &env.ferry, Delivery::AtLeastOnce),
        Contender::FerryEos => ferry::launch(env, job, &log, &env.ferry, Delivery::ExactlyOnce),
        Contender::Baseline => match &env.baseline {
            Some(baseline) => ferry::launch(env, job, &log, baseline, Delivery::AtLeastOnce),
            None => bail!("the baseline contender needs --baseline PATH"),
        },
        Contender::Mm2 => mm2::launch(env, job, &log, Delivery::AtLeastOnce),
        Contender::Mm2Eos => mm2::launch(env, job, &log, Delivery::ExactlyOnce),
        Contender::Python => python::launch(env, job, &log),
        Contender::Limit => {
            bail!("the limit is not a replicator; the workload runs its two halves")
        }
    }
}
