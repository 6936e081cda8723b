//! `ferry verify`: source and target compared partition by partition over
//! the replicated range.
//!
//! # The range compared
//! Per source partition, on the source: from the later of the source log
//! start and the flow's start position (`earliest`: the log start; a
//! timestamp: the first offset at or after it; `latest` and `unconsumed`:
//! where the copy of the target's first copied record is on the source) up
//! to the source end offset captured when verify starts. When replication
//! runs, verify first waits (up to `--wait`) until the flow's saved progress
//! reaches those end offsets.
//!
//! On the target the range starts at the copy of the first source record:
//! found through the offset map rebuilt from the offset-syncs topic where it
//! covers that record exactly, else by looking the record up on the target
//! (timestamp index, then a bounded scan comparing content). Target records
//! before it (a topic that already held records) are left out and noted.
//!
//! # Alignment
//! Target offsets need not equal source offsets (`start_from` other than
//! `earliest`, transaction markers and aborted records, compaction, topics
//! that already held records). Records are aligned by sequence instead: the
//! Nth record read on the target from its start is the copy of the Nth
//! record read on the source from its start, both read `read_committed`.
//! Under identity naming with cycle protection, source records that have
//! already been on the target (never copied) are left out, and so are
//! target records that this flow did not write (their provenance does not
//! end with the source) when a reverse flow writes to the same topic
//! (active-active). On a one-way flow such a record is a mismatch.
//!
//! The target's end is read after the wait and before the source's, so a
//! verify during live replication never sees a copy whose original is past
//! the source end it read; target records past the range are compared with
//! the source records after it, and only what has no source counterpart is
//! extra.
//!
//! # Outcomes
//! - `match`: every source record of the range was compared with its copy,
//!   and nothing differs.
//! - `mismatch`: a record differs, is missing though progress says it was
//!   copied, is extra, or is foreign on a one-way flow's target.
//! - `incomplete`: fewer records compared than the range holds (records not
//!   yet on the target, a range cut short by an open transaction, a start
//!   that cannot be located), or the partition could not be read. Never
//!   reported as a match.
//!
//! # What is reported
//! Per partition: both ranges, the coverage (records compared of the source
//! records in the range), record counts and SHA-256 digests, and the first
//! divergence: the source offset where the sequences part, both records
//! described, and its kind — `altered` (both sides have a record there and
//! they differ; the differing fields are named), `missing` (the source
//! record is not on the target: the target's record there is the source's
//! next one, or the target ended although progress is past it), `extra`
//! (the target record is not on the source), `foreign` (a one-way flow's
//! target holds a record this flow did not write).
//!
//! # Cost
//! Reads only: no group is joined, nothing is committed or produced.
//! Partitions are read on `parallel` blocking threads, each with one
//! consumer per side that is reused from partition to partition; each side
//! holds one record at a time, so memory does not grow with the data.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::records::reader::ReaderContext;
use crate::records::{Field, RecordDescription};
use ferry_checkpoint::Segment;
use ferry_config::{Cluster, Flow, StartFrom, TopicNaming, Topology};
use ferry_supervisor::checkpoints::{offset_syncs_location, read_syncs};
use ferry_supervisor::{progress, topics, EngineError};
use futures::StreamExt;
use rdkafka::consumer::BaseConsumer;
use regex::Regex;
use serde::Serialize;

pub mod acls;
mod compare;
mod render;
pub mod schemas;

use compare::run_job;
pub(crate) use render::table;
pub use render::{progress_line, render};

/// How long reading an internal topic (progress, offset syncs) may take.
const INTERNAL_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Watermark and timestamp-index requests.
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(15);
/// Partitions read at once unless told otherwise.
pub const DEFAULT_PARALLEL: usize = 4;
/// How long verify waits for replication to reach the source end offsets
/// unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// While waiting: if no partition's saved progress moved for this long, no
/// replication is running (or it is stuck) and waiting longer changes
/// nothing.
const PROGRESS_IDLE: Duration = Duration::from_secs(5);
/// How often saved progress is read while waiting.
const PROGRESS_POLL: Duration = Duration::from_secs(1);
/// Records read past a timestamp-index hint while looking for a record's
/// copy on the other side.
const SEARCH_LIMIT: u64 = 10_000;
/// Partitions whose end offsets are asked for at once.
const WATERMARK_CONCURRENCY: usize = 16;

/// Told about what verify is waiting for (a line for a person).
pub type Notice = dyn Fn(&str) + Send + Sync;

/// Which of a flow's source topics to verify.
#[derive(Debug, Clone)]
pub enum TopicFilter {
    /// `--topics`: the topics this regex matches (whole name).
    Pattern(Regex),
    /// Exactly these topics, by name (the topics a cutover moves).
    Names(BTreeSet<String>),
}

impl TopicFilter {
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicFilter::Pattern(r) => r.is_match(topic),
            TopicFilter::Names(names) => names.contains(topic),
        }
    }
}

/// What to verify, beyond the flows.
#[derive(Clone)]
pub struct VerifyOptions {
    /// Only these of the flows' source topics.
    pub topics: Option<TopicFilter>,
    /// Partitions read at once.
    pub parallel: usize,
    /// How long to wait for replication to reach the source end offsets
    /// captured at the start.
    pub wait: Duration,
    /// Where lines about waiting go.
    pub notice: Option<Arc<Notice>>,
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("topics", &self.topics)
            .field("parallel", &self.parallel)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            topics: None,
            parallel: DEFAULT_PARALLEL,
            wait: DEFAULT_WAIT,
            notice: None,
        }
    }
}

/// Compiles a `--topics` pattern; like the topology's filters it must
/// match the whole source topic name. `Err` names the pattern and the
/// problem.
pub fn topics_filter(pattern: &str) -> Result<Regex, InvalidTopicsPattern> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The last line of regex's message is the one-line cause.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(&text)
            .to_string();
        InvalidTopicsPattern {
            pattern: pattern.to_string(),
            reason,
        }
    })
}

/// A `--topics` pattern that is not a valid regex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--topics: invalid regex \"{pattern}\": {reason}")]
pub struct InvalidTopicsPattern {
    /// The pattern as the operator wrote it.
    pub pattern: String,
    /// The regex parser's one-line cause.
    pub reason: String,
}

/// The pattern a `--topics` filter was compiled from, as the operator wrote it.
pub fn filter_pattern(filter: &Regex) -> &str {
    filter
        .as_str()
        .trim_start_matches("^(?:")
        .trim_end_matches(")$")
}

/// Called after each partition: the result, how many are done, how many
/// there are.
pub type Progress = dyn Fn(&PartitionResult, usize, usize) + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Match,
    Mismatch,
    /// Fewer records compared than the source range holds, each partition
    /// saying why; never a match.
    Incomplete,
    /// The partition could not be read (counts as incomplete in the
    /// report's result).
    Error,
}

/// How the start of the target range was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The offset map rebuilt from the offset-syncs topic.
    OffsetMap,
    /// The first record of each side's range: the target's first record is
    /// the copy of the source's.
    LogStart,
    /// The copy of the first source record, looked up on the other side by
    /// timestamp and content.
    Search,
    /// Nothing copied yet (an empty target): the saved progress is where
    /// copying will start.
    NothingCopied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DivergenceKind {
    Altered,
    Missing,
    Extra,
    /// A record on a one-way flow's target that this flow did not write.
    Foreign,
}

/// The first place where source and target part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub kind: DivergenceKind,
    /// For `altered`: the fields that differ.
    pub fields: Vec<Field>,
    /// The source record's offset, or where the source range ended.
    pub source_offset: i64,
    /// The target record's offset, or where the target range ended.
    pub target_offset: i64,
    pub source_record: Option<RecordDescription>,
    pub target_record: Option<RecordDescription>,
}

/// One side of a partition's comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Side {
    /// First offset of the range.
    pub start: i64,
    /// Exclusive end of the range.
    pub end: i64,
    /// Records read (after the provenance rules).
    pub records: u64,
    /// SHA-256 of those records, in order ([`crate::records`]).
    pub digest: String,
}

/// How much of the source range was compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Source records of the range that were compared with a target record.
    pub compared: u64,
    /// Source records in the range (after the provenance rules).
    pub in_range: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: i32,
    pub target_topic: String,
    pub result: Outcome,
    pub basis: Basis,
    pub source: Side,
    pub target: Side,
    pub coverage: Coverage,
    pub divergence: Option<Divergence>,
    /// Why the partition is `incomplete`.
    pub incomplete: Option<String>,
    /// Facts an operator should know (the target topic is missing, an open
    /// transaction cut the range short, records skipped by provenance).
    pub notes: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    pub flow: String,
    pub source: String,
    pub target: String,
    pub topics: usize,
    pub partitions: Vec<PartitionResult>,
}

/// The version of the JSON report's schema (`docs/migration.md`). Fields
/// are only ever added within a version. Version 2: the source range ends
/// at the end offsets captured at the start (not at saved progress),
/// `coverage`, `incomplete` and the `foreign` divergence.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: u32,
    /// `match`, `mismatch` or `incomplete` (partitions that could not be
    /// read make the report incomplete).
    pub result: Outcome,
    pub partitions: usize,
    pub mismatched: usize,
    /// Partitions incomplete or not readable.
    pub incomplete: usize,
    pub errors: usize,
    pub source_records: u64,
    pub target_records: u64,
    /// Source records compared, in total.
    pub compared: u64,
    /// Source records in the ranges, in total.
    pub in_range: u64,
    pub flows: Vec<FlowReport>,
}

impl VerifyReport {
    fn new(flows: Vec<FlowReport>) -> Self {
        let all = || flows.iter().flat_map(|f| &f.partitions);
        let count = |o: Outcome| all().filter(|p| p.result == o).count();
        let (mismatched, errors) = (count(Outcome::Mismatch), count(Outcome::Error));
        let incomplete = count(Outcome::Incomplete) + errors;
        Self {
            schema: SCHEMA_VERSION,
            result: if mismatched > 0 {
                Outcome::Mismatch
            } else if incomplete > 0 {
                Outcome::Incomplete
            } else {
                Outcome::Match
            },
            partitions: all().count(),
            mismatched,
            incomplete,
            errors,
            source_records: all().map(|p| p.source.records).sum(),
            target_records: all().map(|p| p.target.records).sum(),
            compared: all().map(|p| p.coverage.compared).sum(),
            in_range: all().map(|p| p.coverage.in_range).sum(),
            flows,
        }
    }
}

/// Where the flow starts copying a partition, as far as its configuration
/// tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowStart {
    /// `earliest`: the source log start.
    LogStart,
    /// A timestamp resolved to an offset (the end when no record is that
    /// recent).
    At(i64),
    /// `latest` or `unconsumed`: decided when the flow first ran; found
    /// from the target's first copied record.
    FromTarget,
}

/// One partition to compare.
struct Job {
    flow: usize,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    topic: String,
    remote: String,
    partition: i32,
    /// `None`: the target topic or this partition of it does not exist.
    target_missing: Option<&'static str>,
    /// Saved progress (next source offset to copy), re-read after waiting.
    progress: Option<i64>,
    /// The source end offset captured when verify started: the range's end.
    source_end: i64,
    start: FlowStart,
    segments: Vec<Segment>,
    /// Under identity naming with cycle protection: (source, target) alias.
    provenance: Option<(String, String)>,
    /// A reverse flow writes to the target topic too: records this flow did
    /// not write are expected there. Names that flow.
    reverse_flow: Option<String>,
}

/// Verifies `flows` of `topology`. Runtime failures of a whole flow (a
/// cluster unreachable, topics not listable) are errors; a partition that
/// cannot be read is reported as [`Outcome::Error`] and the others go on.
pub async fn verify(
    topology: &Topology,
    flows: &[Flow],
    options: &VerifyOptions,
    progress: Option<Arc<Progress>>,
) -> Result<VerifyReport, EngineError> {
    let mut jobs = Vec::new();
    let mut reports = Vec::new();
    for (index, flow) in flows.iter().enumerate() {
        let (source, target) = crate::clusters(topology, flow)?;
        let reverse = reverse_flow(topology, flow);
        let (flow_jobs, topics) = plan_jobs(index, flow, reverse, source, target, options).await?;
        jobs.extend(flow_jobs);
        reports.push(FlowReport {
            flow: flow.id().to_string(),
            source: flow.source.clone(),
            target: flow.target.clone(),
            topics,
            partitions: Vec::new(),
        });
    }
    wait_for_replication(topology, flows, &mut jobs, options).await?;
    let parallel = options.parallel.max(1);
    let results = tokio::task::spawn_blocking(move || run_jobs(&jobs, parallel, progress))
        .await
        .map_err(|e| EngineError::Internal(format!("verify workers failed: {e}")))?;
    for (flow, result) in results {
        reports[flow].partitions.push(result);
    }
    for r in &mut reports {
        r.partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }
    Ok(VerifyReport::new(reports))
}

/// An enabled flow that copies the other way between the same clusters.
/// Whether it writes to a given target topic is [`writes_back`].
fn reverse_flow<'a>(topology: &'a Topology, flow: &Flow) -> Option<&'a Flow> {
    topology
        .flows
        .iter()
        .find(|f| f.enabled && f.source == flow.target && f.target == flow.source)
}

/// Whether `reverse` copies `remote` (a topic on `flow`'s target) back into
/// `topic` on `flow`'s source: then both flows write to both topics.
fn writes_back(reverse: &Flow, remote: &str, topic: &str) -> bool {
    topics::selects(reverse, remote) && reverse.remote_topic(remote) == topic
}

/// The partitions of one flow, with everything a worker needs: progress,
/// offset-map segments, whether the target partition exists, the source
/// end offsets as of now. Also returns how many topics are verified.
async fn plan_jobs(
    index: usize,
    flow: &Flow,
    reverse: Option<&Flow>,
    source: &Cluster,
    target: &Cluster,
    options: &VerifyOptions,
) -> Result<(Vec<Job>, usize), EngineError> {
    let source_admin = crate::admin(source, "ferry-verify")?;
    let target_admin = crate::admin(target, "ferry-verify")?;
    let source_topics = crate::list_topics(&source_admin, source).await?;
    let target_topics = crate::list_topics(&target_admin, target).await?;
    let selected: Vec<(&String, usize)> = source_topics
        .iter()
        .filter(|(t, _)| topics::selects(flow, t))
        .filter(|(t, _)| options.topics.as_ref().is_none_or(|f| f.matches(t)))
        .map(|(t, n)| (t, *n))
        .collect();
    if selected.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let partitions: Vec<(String, i32)> = selected
        .iter()
        .flat_map(|(t, n)| (0..*n as i32).map(move |p| (t.to_string(), p)))
        .collect();
    // The range ends here: captured before anything else is read.
    let ends = source_ends(&source_admin, source, &partitions).await?;
    let starts = flow_starts(&source_admin, source, flow, &partitions).await?;
    let saved = progress::load(target, &flow.source, INTERNAL_READ_TIMEOUT).await?;
    let (syncs_cluster, syncs_topic) = offset_syncs_location(flow, source, target);
    let replay = read_syncs(syncs_cluster, &syncs_topic, INTERNAL_READ_TIMEOUT).await?;
    let provenance = (flow.topic_naming == TopicNaming::Identity && flow.cycle_protection)
        .then(|| (flow.source.clone(), flow.target.clone()));
    let (source, target) = (Arc::new(source.clone()), Arc::new(target.clone()));
    let mut jobs = Vec::new();
    for ((topic, partition), (end, start)) in
        partitions.into_iter().zip(ends.into_iter().zip(starts))
    {
        let remote = flow.remote_topic(&topic);
        let on_target = target_topics.get(&remote).copied();
        jobs.push(Job {
            flow: index,
            source: source.clone(),
            target: target.clone(),
            target_missing: match on_target {
                None => Some("the target topic does not exist"),
                Some(n) if partition as usize >= n => {
                    Some("the target topic has no such partition")
                }
                Some(_) => None,
            },
            progress: saved.get(&(topic.clone(), partition)).copied(),
            source_end: end,
            start,
            segments: replay
                .map(&topic, partition)
                .map(|m| m.segments().collect())
                .unwrap_or_default(),
            provenance: provenance.clone(),
            reverse_flow: reverse
                .filter(|r| writes_back(r, &remote, &topic))
                .map(|r| r.id().to_string()),
            topic,
            remote,
            partition,
        });
    }
    Ok((jobs, selected.len()))
}

/// The source end offset (high watermark) of every partition, asked a few
/// partitions at a time.
async fn source_ends(
    admin: &ferry_admin::Admin,
    source: &Cluster,
    partitions: &[(String, i32)],
) -> Result<Vec<i64>, EngineError> {
    let asks = partitions.iter().map(|(t, p)| async move {
        admin
            .watermarks(t, *p)
            .await
            .map(|w| w.high)
            .map_err(crate::client_err(
                source,
                "cannot read the source end offsets",
            ))
    });
    futures::stream::iter(asks)
        .buffered(WATERMARK_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Where the flow's configuration starts each partition.
async fn flow_starts(
    admin: &ferry_admin::Admin,
    source: &Cluster,
    flow: &Flow,
    partitions: &[(String, i32)],
) -> Result<Vec<FlowStart>, EngineError> {
    Ok(match flow.start_from {
        StartFrom::Earliest => vec![FlowStart::LogStart; partitions.len()],
        StartFrom::Latest | StartFrom::Unconsumed => {
            vec![FlowStart::FromTarget; partitions.len()]
        }
        StartFrom::Timestamp(ms) => {
            let query: Vec<(&str, i32, i64)> = partitions
                .iter()
                .map(|(t, p)| (t.as_str(), *p, ms))
                .collect();
            let answers = admin
                .offsets_for_times(&query)
                .await
                .map_err(crate::client_err(
                    source,
                    "cannot look up the start_from timestamp",
                ))?;
            let by_partition: HashMap<(&str, i32), Option<i64>> = answers
                .iter()
                .map(|a| ((a.topic.as_str(), a.partition), a.offset))
                .collect();
            partitions
                .iter()
                .map(|(t, p)| match by_partition.get(&(t.as_str(), *p)) {
                    Some(Some(o)) => FlowStart::At(*o),
                    // No record that recent: the flow starts at the end.
                    _ => FlowStart::At(i64::MAX),
                })
                .collect()
        }
    })
}

/// Waits (up to `options.wait`) until every partition's saved progress has
/// reached the source end captured at the start, then refreshes each job's
/// progress. Partitions without saved progress are not waited for: nothing
/// replicates them. Gives up early when no progress moves: no replication
/// is running, or it is stuck, and the partitions say so.
async fn wait_for_replication(
    topology: &Topology,
    flows: &[Flow],
    jobs: &mut [Job],
    options: &VerifyOptions,
) -> Result<(), EngineError> {
    let behind = |jobs: &[Job]| {
        jobs.iter()
            .filter(|j| j.progress.is_some_and(|p| p < j.source_end))
            .count()
    };
    if behind(jobs) == 0 || options.wait.is_zero() {
        return Ok(());
    }
    if let Some(notice) = &options.notice {
        notice(&format!(
            "waiting up to {} for replication to reach the source end offsets ({} partition(s) behind)",
            humantime::format_duration(options.wait),
            behind(jobs)
        ));
    }
    let started = tokio::time::Instant::now();
    let mut last_move = started;
    loop {
        tokio::time::sleep(PROGRESS_POLL).await;
        let mut moved = false;
        for (index, flow) in flows.iter().enumerate() {
            let (_, target) = crate::clusters(topology, flow)?;
            let saved = progress::load(target, &flow.source, INTERNAL_READ_TIMEOUT).await?;
            for job in jobs.iter_mut().filter(|j| j.flow == index) {
                let now = saved.get(&(job.topic.clone(), job.partition)).copied();
                moved |= now != job.progress;
                job.progress = now;
            }
        }
        let now = tokio::time::Instant::now();
        if moved {
            last_move = now;
        }
        let left = behind(jobs);
        if left == 0
            || now.duration_since(started) >= options.wait
            || now.duration_since(last_move) >= PROGRESS_IDLE
        {
            if left > 0 {
                if let Some(notice) = &options.notice {
                    notice(&format!(
                        "{left} partition(s) still behind the source end offsets; comparing what is there"
                    ));
                }
            }
            return Ok(());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Source,
    Target,
}

/// Runs the jobs on `parallel` threads; results tagged with their flow.
fn run_jobs(
    jobs: &[Job],
    parallel: usize,
    progress: Option<Arc<Progress>>,
) -> Vec<(usize, PartitionResult)> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, PartitionResult)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(jobs.len()) {
            scope.spawn(|| {
                let mut consumers: HashMap<(String, Role), BaseConsumer<ReaderContext>> =
                    HashMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let result = run_job(job, &mut consumers);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(p) = &progress {
                        p(&result, n, jobs.len());
                    }
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((job.flow, result));
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::compare::{map_origin, map_start};
    use super::*;
    use ferry_checkpoint::{OffsetMap, OffsetPair, SyncLink};

    fn segments(facts: &[(i64, i64)]) -> Vec<Segment> {
        let mut map = OffsetMap::new();
        for (u, d) in facts {
            map.record(*u, *d).unwrap();
        }
        map.segments().collect()
    }

    #[test]
    fn a_names_filter_reads_no_name_as_a_regex() {
        let f = TopicFilter::Names(BTreeSet::from(["orders.v1".to_string(), "a+b".to_string()]));
        assert!(f.matches("orders.v1") && f.matches("a+b"));
        assert!(!f.matches("ordersXv1") && !f.matches("orders.v12") && !f.matches("aab"));
    }

    #[test]
    fn topic_filters_match_whole_names_and_name_bad_patterns() {
        let r = topics_filter("orders|pay.*").unwrap();
        assert!(r.is_match("orders") && r.is_match("payments"));
        assert!(!r.is_match("old-orders"));
        let err = topics_filter("orders(").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--topics: invalid regex \"orders(\": unclosed group"
        );
    }

    #[test]
    fn the_map_places_the_copy_of_a_record_it_covers() {
        // start_from skipped 0..100 on the source; a marker at 103.
        let segs = segments(&[(100, 0), (101, 1), (102, 2), (104, 3), (105, 4)]);
        assert_eq!(map_start(&segs, 100, 0), Some((100, 0)));
        assert_eq!(map_start(&segs, 104, 0), Some((104, 3)));
        // Before the map, in a gap (the marker) or past it: not known.
        assert_eq!(map_start(&segs, 99, 0), None);
        assert_eq!(map_start(&segs, 103, 0), None);
        assert_eq!(map_start(&segs, 200, 0), None);
        // Retention deleted the target up to 2: both move forward.
        assert_eq!(map_start(&segs, 100, 2), Some((102, 2)));
        assert_eq!(map_start(&segs, 100, 9), None);
        assert_eq!(map_start(&[], 7, 0), None);
    }

    #[test]
    fn the_map_names_the_origin_of_a_copy() {
        let segs = segments(&[(100, 0), (101, 1), (104, 2)]);
        assert_eq!(map_origin(&segs, 0), Some(100));
        assert_eq!(map_origin(&segs, 2), Some(104));
        assert_eq!(map_origin(&segs, 3), None);
    }

    #[test]
    fn rebuilt_maps_give_the_same_start() {
        let mut map = OffsetMap::new();
        map.apply_sync(OffsetPair::new(40, 0), SyncLink::Foreign)
            .unwrap();
        let segs: Vec<Segment> = map.segments().collect();
        assert_eq!(map_start(&segs, 40, 0), Some((40, 0)));
    }

    fn result(topic: &str, outcome: Outcome, divergence: Option<Divergence>) -> PartitionResult {
        PartitionResult {
            topic: topic.into(),
            partition: 0,
            target_topic: format!("src.{topic}"),
            result: outcome,
            basis: Basis::OffsetMap,
            source: Side {
                start: 0,
                end: 10,
                records: 10,
                digest: "a".into(),
            },
            target: Side {
                start: 0,
                end: 9,
                records: 9,
                digest: "b".into(),
            },
            coverage: Coverage {
                compared: if outcome == Outcome::Match { 10 } else { 9 },
                in_range: 10,
            },
            divergence,
            incomplete: None,
            notes: vec![],
            error: None,
        }
    }

    #[test]
    fn the_report_names_the_first_divergence() {
        let d = Divergence {
            kind: DivergenceKind::Missing,
            fields: vec![],
            source_offset: 4,
            target_offset: 4,
            source_record: None,
            target_record: None,
        };
        let report = VerifyReport::new(vec![FlowReport {
            flow: "src->dst".into(),
            source: "src".into(),
            target: "dst".into(),
            topics: 2,
            partitions: vec![
                result("a", Outcome::Match, None),
                result("b", Outcome::Mismatch, Some(d)),
            ],
        }]);
        assert_eq!(report.result, Outcome::Mismatch);
        assert_eq!((report.partitions, report.mismatched), (2, 1));
        let text = render(&report);
        assert!(text.contains("b[0] -> src.b[0]: first divergent source offset 4 (target offset 4): the source record is missing on the target"), "{text}");
        assert!(text.contains("  TOPIC  PARTITION  TARGET TOPIC"), "{text}");
        assert!(text.ends_with("result: MISMATCH: 1 of 2 partitions differ; compared 19 of 20 source records; 20 source records, 18 target records\n"), "{text}");
        let row = [
            "a", "0", "src.a", "0..10", "0..9", "10", "9", "10/10", "match",
        ];
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == row),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["flows"][0]["partitions"][1]["divergence"]["kind"],
            "missing"
        );
        assert_eq!(json["result"], "mismatch");
    }

    #[test]
    fn an_incomplete_partition_is_never_reported_as_a_match() {
        let mut behind = result("b", Outcome::Incomplete, None);
        behind.incomplete =
            Some("1 source records from offset 9 are not (yet) on the target".into());
        let report = VerifyReport::new(vec![FlowReport {
            flow: "src->dst".into(),
            source: "src".into(),
            target: "dst".into(),
            topics: 2,
            partitions: vec![result("a", Outcome::Match, None), behind],
        }]);
        assert_eq!(report.result, Outcome::Incomplete);
        assert_eq!(
            (report.compared, report.in_range, report.incomplete),
            (19, 20, 1)
        );
        let text = render(&report);
        assert!(!text.contains("result: match"), "{text}");
        assert!(
            text.contains("b[0] -> src.b[0]: incomplete: 1 source records from offset 9"),
            "{text}"
        );
        assert!(text.ends_with("result: INCOMPLETE: 1 of 2 partitions not fully compared; compared 19 of 20 source records\n"), "{text}");
        // A partition that could not be read is incomplete too; a mismatch
        // anywhere wins.
        let unreadable = VerifyReport::new(vec![FlowReport {
            flow: "src->dst".into(),
            source: "src".into(),
            target: "dst".into(),
            topics: 1,
            partitions: vec![result("c", Outcome::Error, None)],
        }]);
        assert_eq!(unreadable.result, Outcome::Incomplete);
        let mixed = VerifyReport::new(vec![FlowReport {
            flow: "src->dst".into(),
            source: "src".into(),
            target: "dst".into(),
            topics: 2,
            partitions: vec![
                result("c", Outcome::Error, None),
                result("d", Outcome::Mismatch, None),
            ],
        }]);
        assert_eq!(mixed.result, Outcome::Mismatch);
        assert_eq!(
            serde_json::to_value(&report).unwrap()["result"],
            "incomplete"
        );
    }
}
