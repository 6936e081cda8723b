//! Ferry's benchmark harness (`ferry-bench`), as `benchmarks.md` describes
//! it: real Apache Kafka brokers started by the harness, the data preloaded
//! once, each contender run as its own process one after another on fresh
//! target topics, and every figure that matters reported as a ratio measured
//! in the same run.
//!
//! ```text
//! cargo build --release -p ferry -p ferry-bench
//! cargo run --release -p ferry-bench -- w1 [--quick] [--json PATH] [--contenders ferry,limit,mm2,python]
//! cargo run --release -p ferry-bench -- w2 [--rate N] | w3 | w4 | w5 | all
//! cargo run --release -p ferry-bench -- scale-out --contenders ferry,baseline --baseline OLD/ferry
//! ```
//!
//! # Layout
//!
//! - `src/main.rs`: the command line ([`cli`]): parse, set up, run the
//!   workloads, print the tables, write the JSON summary.
//! - [`Env`] (here): the two single-node clusters (source, target) from
//!   `ferry-testkit`, the run directory (`target/bench/run-<time>/`: generated
//!   topologies, `mm2.properties`, every contender's log), the binaries.
//! - [`dataset`]: the records, a pure function of `(dataset, index)`, and a
//!   producer with Ferry's target-producer settings (preload, limit).
//! - [`kafka`]: batched topic creation/deletion and end offsets of many
//!   partitions in one ListOffsets round.
//! - [`measure`]: a contender process ([`measure::Tracked`]): tied to the
//!   harness, its CPU and peak RSS from `wait4`'s rusage or `/proc`, per-thread
//!   CPU, SIGTERM then SIGKILL.
//! - [`contenders`]: how Ferry, the limit (`limit-consume`/`limit-produce`
//!   hidden subcommands), MirrorMaker 2 and the naive Python peer
//!   (`bench/naive_peer.py`) are started.
//! - [`workloads`]: W1 catch-up, W2 steady-state latency, W3 breadth, W4
//!   offset translation (and its in-process offset maps), W5 scale-out (one
//!   ferry process against two, copy gaps while a member joins and leaves),
//!   `crash` (duplicates after a SIGKILL mid-copy and a restart),
//!   and the loop that watches the target until a contender has copied
//!   everything.
//! - [`readback`]: a target topic as a `read_committed` consumer sees it
//!   (every record counted by its sequence number: duplicates, gaps,
//!   transaction markers), and when its last records became visible.
//! - [`report`]: the JSON summary's types (schema in `SCHEMA.md`) and the
//!   tables.

pub mod cli;
pub mod contenders;
pub mod dataset;
pub mod error;
pub mod kafka;
pub mod measure;
pub mod readback;
pub mod report;
pub mod workloads;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ferry_testkit::kafka::KafkaHome;
use ferry_testkit::{KafkaCluster, KafkaOptions};

use crate::contenders::Contender;
use crate::error::{BenchError, Context, Result};

/// Everything a workload runs against.
pub struct Env {
    pub source: KafkaCluster,
    pub target: KafkaCluster,
    pub kafka_home: KafkaHome,
    /// Generated configs and contender logs of this invocation.
    pub run_dir: PathBuf,
    /// Where both brokers keep their data.
    pub broker_dir: PathBuf,
    /// The `ferry` contender's binary.
    pub ferry: FerryBinary,
    /// The `baseline` contender's binary, when it runs.
    pub baseline: Option<FerryBinary>,
    /// This executable, for the limit's subcommands.
    pub bench_bin: PathBuf,
    pub contenders: Vec<Contender>,
    pub quick: bool,
    /// Upper bound for one contender's run.
    pub timeout: Duration,
    /// Keep each contender's target topics (default: delete them after the
    /// checks, so every contender meets an equally empty target).
    pub keep_topics: bool,
    /// Extra `[clusters.*.client]` properties for Ferry's source and
    /// target (tuning experiments only).
    pub ferry_source_client: Vec<(String, String)>,
    pub ferry_target_client: Vec<(String, String)>,
    /// Extra `[[flows]]` keys for Ferry, values as TOML (experiments only).
    pub ferry_flow: Vec<(String, String)>,
    /// Extra environment of the ferry process (experiments only).
    pub ferry_env: Vec<(String, String)>,
    /// Extra environment of the limit's halves (experiments only).
    pub limit_env: Vec<(String, String)>,
    python: OnceLock<std::result::Result<PathBuf, String>>,
}

/// A `ferry` executable a contender runs, and what its `--version` said.
pub struct FerryBinary {
    pub path: PathBuf,
    pub version: Option<String>,
}

/// How to set up an [`Env`].
pub struct EnvOptions {
    pub contenders: Vec<Contender>,
    pub quick: bool,
    pub ferry_bin: Option<PathBuf>,
    /// The `baseline` contender's ferry binary.
    pub baseline_bin: Option<PathBuf>,
    pub work_dir: PathBuf,
    pub broker_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub keep_topics: bool,
    pub ferry_source_client: Vec<String>,
    pub ferry_target_client: Vec<String>,
    pub ferry_flow: Vec<String>,
    pub ferry_env: Vec<String>,
    pub limit_env: Vec<String>,
}

/// Parses `KEY=VALUE` pairs.
fn key_values(items: &[String]) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("expected KEY=VALUE, got {item:?}"),
        })
        .collect()
}

impl Env {
    /// Checks that every contender can run (fails before any broker starts
    /// when one cannot), then starts the source and target clusters.
    pub fn start(options: EnvOptions) -> Result<Env> {
        let kafka_home = KafkaHome::locate()?;
        let ferry_source_client = key_values(&options.ferry_source_client)?;
        let ferry_target_client = key_values(&options.ferry_target_client)?;
        let ferry_flow = key_values(&options.ferry_flow)?;
        let ferry_env = key_values(&options.ferry_env)?;
        let limit_env = key_values(&options.limit_env)?;
        let bench_bin =
            std::env::current_exe().context(|| "cannot find the ferry-bench executable")?;
        let wants = |c: Contender| options.contenders.contains(&c);
        let ferry_bin = match &options.ferry_bin {
            Some(path) => path.clone(),
            None => default_ferry_bin(&bench_bin),
        };
        let mut ferry_version = None;
        if wants(Contender::Ferry) || wants(Contender::FerryEos) {
            if !ferry_bin.is_file() {
                bail!(
                    "the ferry binary is missing at {}: build it with `cargo build --release -p ferry` \
                     or pass --ferry PATH",
                    ferry_bin.display()
                );
            }
            ferry_version = Some(contenders::ferry::version(&ferry_bin)?);
        }
        let baseline = match (&options.baseline_bin, wants(Contender::Baseline)) {
            (Some(path), true) => {
                if !path.is_file() {
                    bail!("--baseline: no ferry binary at {}", path.display());
                }
                Some(FerryBinary {
                    path: path.clone(),
                    version: Some(contenders::ferry::version(path)?),
                })
            }
            (None, true) => bail!("the baseline contender needs --baseline PATH"),
            (Some(_), false) => bail!("--baseline is given but `baseline` is not in --contenders"),
            (None, false) => None,
        };
        if wants(Contender::Mm2) || wants(Contender::Mm2Eos) {
            let jar = kafka_home.libs().join(format!(
                "connect-mirror-{}.jar",
                ferry_testkit::kafka::KAFKA_VERSION
            ));
            if !jar.is_file() {
                bail!(
                    "MirrorMaker 2 is not installed ({} is missing): run `bash tests/brokers/install.sh`",
                    jar.display()
                );
            }
        }
        let python = OnceLock::new();
        if wants(Contender::Python) {
            let _ = python.set(contenders::python::ensure_venv().map_err(|e| e.to_string()));
            if let Some(Err(e)) = python.get() {
                bail!("the python contender cannot run: {e}");
            }
        }

        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let run_dir = options
            .work_dir
            .join(format!("run-{stamp}-{}", std::process::id()));
        std::fs::create_dir_all(&run_dir)
            .context(|| format!("cannot create {}", run_dir.display()))?;

        let broker_dir = options.broker_dir.unwrap_or_else(default_broker_dir);
        eprintln!(
            "ferry-bench: starting the source and target Kafka clusters (data in {})",
            broker_dir.display()
        );
        let broker = KafkaOptions::new().data_parent(&broker_dir);
        let (source, target) = std::thread::scope(|s| {
            let a = s.spawn(|| broker.start());
            let b = s.spawn(|| broker.start());
            (a.join(), b.join())
        });
        let join = |r: std::thread::Result<ferry_testkit::Result<KafkaCluster>>, which: &str| {
            r.map_err(|_| BenchError::new(format!("starting the {which} cluster panicked")))?
                .context(|| format!("cannot start the {which} Kafka cluster"))
        };
        let source = join(source, "source")?;
        let target = join(target, "target")?;
        eprintln!(
            "ferry-bench: source {} target {}; logs in {}",
            source.bootstrap_servers(),
            target.bootstrap_servers(),
            run_dir.display()
        );
        Ok(Env {
            source,
            target,
            kafka_home,
            run_dir,
            broker_dir,
            ferry: FerryBinary {
                path: ferry_bin,
                version: ferry_version,
            },
            baseline,
            bench_bin,
            contenders: options.contenders,
            quick: options.quick,
            timeout: options.timeout,
            keep_topics: options.keep_topics,
            ferry_source_client,
            ferry_target_client,
            ferry_flow,
            ferry_env,
            limit_env,
            python,
        })
    }

    /// The venv's python (created on first use).
    pub fn python(&self) -> Result<PathBuf> {
        self.python
            .get_or_init(|| contenders::python::ensure_venv().map_err(|e| e.to_string()))
            .clone()
            .map_err(BenchError)
    }

    pub fn runs(&self, c: Contender) -> bool {
        self.contenders.contains(&c)
    }
}

/// `/dev/shm` when this process can write there, else the system's
/// temporary directory.
fn default_broker_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable = tempfile::tempdir_in(shm).is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `ferry` next to this executable (`cargo run --release` puts both in
/// `target/release`), else the workspace's `target/release/ferry`.
fn default_ferry_bin(bench_bin: &Path) -> PathBuf {
    let sibling = bench_bin.with_file_name("ferry");
    if sibling.is_file() {
        return sibling;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/ferry")
}

/// The default directory for run directories and the summary:
/// the workspace's `target/bench`.
pub fn default_work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    dir.canonicalize().unwrap_or(dir)
}

/// A free loopback TCP port (for Ferry's `/metrics`).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context(|| "cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}
