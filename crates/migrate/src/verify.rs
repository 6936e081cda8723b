//! `ferry verify`: source and target compared partition by partition over
//! the replicated range.
//!
//! # The replicated range
//! Per source partition, on the source: from the first offset Ferry copied
//! (the first fact of the partition's offset map, rebuilt from the
//! offset-syncs topic) — else the source log start — to the progress
//! watermark in `ferry-progress.<source>.internal` — else the source end.
//! On the target: from the offset where the map says that first copy
//! landed — else the target log start — to the target end. When retention
//! deleted the start of either side, both starts move forward together
//! along the map.
//!
//! # Alignment
//! Target offsets need not equal source offsets (`start_from` other than
//! `earliest`, transaction markers and aborted records, compaction, topics
//! that already held records). Records are aligned by sequence instead: the
//! Nth record read on the target from its start is the copy of the Nth
//! record read on the source from its start, both read `read_committed`.
//! Under identity naming with cycle protection, source records that have
//! already been on the target (never copied) and target records that this
//! flow did not write (their provenance does not end with the source) are
//! left out on their side.
//!
//! The target may be ahead of the progress watermark (progress is saved
//! every second): target records past the aligned range are compared with
//! the source records after the watermark, and only what has no source
//! counterpart is extra. The target's end is read before the source's, so a
//! verify during live replication never sees a copy whose original is past
//! the source end it read.
//!
//! # What is reported
//! Per partition: both ranges, record counts and SHA-256 digests, and the
//! first divergence: the source offset where the sequences part, both
//! records described, and its kind — `altered` (both sides have a record
//! there and they differ; the differing fields are named), `missing` (the
//! source record is not on the target: the target's record there is the
//! source's next one, or the target ended), `extra` (the target record is
//! not on the source: the target's next record is the source's record, or
//! the source ended).
//!
//! # Cost
//! Reads only: no group is joined, nothing is committed or produced.
//! Partitions are read on `parallel` blocking threads, each with one
//! consumer per side that is reused from partition to partition; each side
//! holds one record at a time, so memory does not grow with the data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_checkpoint::Segment;
use ferry_config::{Cluster, Flow, TopicNaming, Topology};
use ferry_supervisor::checkpoints::{offset_syncs_location, read_syncs};
use ferry_supervisor::verify::{
    describe, differences, provenance, range_consumer, same_record, Field, RangeReader,
    ReaderContext, RecordDescription, RecordDigest,
};
use ferry_supervisor::{progress, topics, EngineError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use regex::Regex;
use serde::Serialize;

/// How long reading an internal topic (progress, offset syncs) may take.
const INTERNAL_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Watermark requests.
const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(15);
/// Partitions read at once unless told otherwise.
pub const DEFAULT_PARALLEL: usize = 4;

/// What to verify, beyond the flows.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Only source topics this regex matches (whole name).
    pub topics: Option<Regex>,
    /// Partitions read at once.
    pub parallel: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            topics: None,
            parallel: DEFAULT_PARALLEL,
        }
    }
}

/// Compiles a `--topics` pattern; like the topology's filters it must
/// match the whole source topic name. `Err` names the pattern and the
/// problem.
pub fn topics_filter(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The last line of regex's message is the one-line cause.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(&text)
            .to_string();
        format!("--topics: invalid regex \"{pattern}\": {reason}")
    })
}

/// Called after each partition: the result, how many are done, how many
/// there are.
pub type Progress = dyn Fn(&PartitionResult, usize, usize) + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Match,
    Mismatch,
    /// The partition could not be read.
    Error,
}

/// Where the replicated range's start came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The offset map rebuilt from the offset-syncs topic.
    OffsetMap,
    /// No offset map: both log starts.
    LogStart,
    /// No offset map, an empty target and saved progress: nothing copied
    /// yet; the range is empty.
    NothingCopied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DivergenceKind {
    Altered,
    Missing,
    Extra,
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
    /// Records compared (after the provenance rules).
    pub records: u64,
    /// SHA-256 of those records, in order (`ferry_supervisor::verify`).
    pub digest: String,
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
    pub divergence: Option<Divergence>,
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
/// are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: u32,
    pub result: Outcome,
    pub partitions: usize,
    pub mismatched: usize,
    pub errors: usize,
    pub source_records: u64,
    pub target_records: u64,
    pub flows: Vec<FlowReport>,
}

impl VerifyReport {
    fn new(flows: Vec<FlowReport>) -> Self {
        let all = || flows.iter().flat_map(|f| &f.partitions);
        let count = |o: Outcome| all().filter(|p| p.result == o).count();
        let (mismatched, errors) = (count(Outcome::Mismatch), count(Outcome::Error));
        Self {
            schema: SCHEMA_VERSION,
            result: if errors > 0 {
                Outcome::Error
            } else if mismatched > 0 {
                Outcome::Mismatch
            } else {
                Outcome::Match
            },
            partitions: all().count(),
            mismatched,
            errors,
            source_records: all().map(|p| p.source.records).sum(),
            target_records: all().map(|p| p.target.records).sum(),
            flows,
        }
    }
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
    progress: Option<i64>,
    segments: Vec<Segment>,
    /// Under identity naming with cycle protection: (source, target) alias.
    provenance: Option<(String, String)>,
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
        let (flow_jobs, topics) = plan_jobs(index, flow, source, target, options).await?;
        jobs.extend(flow_jobs);
        reports.push(FlowReport {
            flow: flow.id().to_string(),
            source: flow.source.clone(),
            target: flow.target.clone(),
            topics,
            partitions: Vec::new(),
        });
    }
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

/// The partitions of one flow, with everything a worker needs: progress,
/// offset-map segments, whether the target partition exists. Also returns
/// how many topics are verified.
async fn plan_jobs(
    index: usize,
    flow: &Flow,
    source: &Cluster,
    target: &Cluster,
    options: &VerifyOptions,
) -> Result<(Vec<Job>, usize), EngineError> {
    let source_admin = crate::admin(source, "ferry-verify")?;
    let target_admin = crate::admin(target, "ferry-verify")?;
    let source_topics = source_admin
        .topic_metadata()
        .await
        .map_err(crate::client_err(source, "cannot list topics"))?;
    let target_topics = target_admin
        .topic_metadata()
        .await
        .map_err(crate::client_err(target, "cannot list topics"))?;
    let selected: Vec<(&String, usize)> = source_topics
        .iter()
        .filter(|(t, _)| topics::selects(flow, t))
        .filter(|(t, _)| options.topics.as_ref().is_none_or(|r| r.is_match(t)))
        .map(|(t, n)| (t, *n))
        .collect();
    if selected.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let saved = progress::load(target, &flow.source, INTERNAL_READ_TIMEOUT).await?;
    let (syncs_cluster, syncs_topic) = offset_syncs_location(flow, source, target);
    let replay = read_syncs(syncs_cluster, &syncs_topic, INTERNAL_READ_TIMEOUT).await?;
    let provenance = (flow.topic_naming == TopicNaming::Identity && flow.cycle_protection)
        .then(|| (flow.source.clone(), flow.target.clone()));
    let (source, target) = (Arc::new(source.clone()), Arc::new(target.clone()));
    let mut jobs = Vec::new();
    for (topic, partitions) in &selected {
        let remote = flow.remote_topic(topic);
        let on_target = target_topics.get(&remote).copied();
        for partition in 0..*partitions as i32 {
            jobs.push(Job {
                flow: index,
                source: source.clone(),
                target: target.clone(),
                topic: topic.to_string(),
                remote: remote.clone(),
                partition,
                target_missing: match on_target {
                    None => Some("the target topic does not exist"),
                    Some(n) if partition as usize >= n => {
                        Some("the target topic has no such partition")
                    }
                    Some(_) => None,
                },
                progress: saved.get(&(topic.to_string(), partition)).copied(),
                segments: replay
                    .map(topic, partition)
                    .map(|m| m.segments().collect())
                    .unwrap_or_default(),
                provenance: provenance.clone(),
            });
        }
    }
    Ok((jobs, selected.len()))
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

fn run_job(
    job: &Job,
    consumers: &mut HashMap<(String, Role), BaseConsumer<ReaderContext>>,
) -> PartitionResult {
    let mut result = PartitionResult {
        topic: job.topic.clone(),
        partition: job.partition,
        target_topic: job.remote.clone(),
        result: Outcome::Error,
        basis: Basis::LogStart,
        source: Side::default(),
        target: Side::default(),
        divergence: None,
        notes: Vec::new(),
        error: None,
    };
    for (cluster, role) in [(&job.source, Role::Source), (&job.target, Role::Target)] {
        let key = (cluster.name.clone(), role);
        if let std::collections::hash_map::Entry::Vacant(slot) = consumers.entry(key) {
            match range_consumer(cluster, "ferry-verify") {
                Ok(c) => {
                    slot.insert(c);
                }
                Err(e) => {
                    result.error = Some(e.to_string());
                    return result;
                }
            }
        }
    }
    let src = &consumers[&(job.source.name.clone(), Role::Source)];
    let dst = &consumers[&(job.target.name.clone(), Role::Target)];
    if let Err(e) = compare(job, src, dst, &mut result) {
        result.result = Outcome::Error;
        result.error = Some(e);
    }
    result
}

/// Where the replicated range starts on each side: the map's first fact,
/// moved forward (along the map) past what retention deleted on either
/// side.
fn aligned_start(segments: &[Segment], source_low: i64, target_low: i64) -> (i64, i64) {
    let Some(first) = segments.first() else {
        return (source_low, target_low);
    };
    let (mut s, mut t) = (first.upstream_start(), first.downstream_start());
    if s < source_low {
        (s, t) = match segments.iter().find(|g| g.upstream_end() > source_low) {
            Some(g) => (
                source_low.max(g.upstream_start()),
                g.downstream_start() + (source_low - g.upstream_start()).max(0),
            ),
            None => (source_low, segments[segments.len() - 1].downstream_end()),
        };
    }
    if t < target_low {
        (s, t) = match segments.iter().find(|g| g.downstream_end() > target_low) {
            Some(g) => (
                g.upstream_start() + (target_low - g.downstream_start()).max(0),
                target_low.max(g.downstream_start()),
            ),
            None => (segments[segments.len() - 1].upstream_end(), target_low),
        };
    }
    (s, t)
}

fn watermarks(
    consumer: &BaseConsumer<ReaderContext>,
    cluster: &str,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), String> {
    consumer
        .fetch_watermarks(topic, partition, WATERMARKS_TIMEOUT)
        .map_err(|e| {
            format!(
                "cluster {cluster}: cannot read the watermarks of {topic}[{partition}]: {}",
                consumer.context().scrub(&e.to_string())
            )
        })
}

/// The sequence walk of one partition (see the module docs).
fn compare(
    job: &Job,
    src: &BaseConsumer<ReaderContext>,
    dst: &BaseConsumer<ReaderContext>,
    out: &mut PartitionResult,
) -> Result<(), String> {
    // The target first: while replication runs, every target record below
    // this end then has its source record below the source end read next.
    let (tlow, thigh) = match job.target_missing {
        Some(why) => {
            out.notes.push(why.to_string());
            (0, 0)
        }
        None => watermarks(dst, &job.target.name, &job.remote, job.partition)?,
    };
    let (low, high) = watermarks(src, &job.source.name, &job.topic, job.partition)?;
    let (basis, s0, t0) = if !job.segments.is_empty() {
        let (s, t) = aligned_start(&job.segments, low, tlow);
        (Basis::OffsetMap, s, t)
    } else {
        match job.progress {
            Some(p) if tlow == thigh => (Basis::NothingCopied, p, tlow),
            _ => (Basis::LogStart, low, tlow),
        }
    };
    out.basis = basis;
    let s0 = s0.clamp(low, high);
    let t0 = t0.clamp(tlow, thigh);
    // The source range ends at the progress watermark; the walk reads
    // further only while the target has records left.
    let src_end = job.progress.unwrap_or(high).clamp(s0, high);
    let mut s = SideReader::new(
        RangeReader::new(src, &job.topic, job.partition, s0, high)?,
        job.provenance
            .as_ref()
            .map(|(_, target)| Filter::NotVisited(target.clone())),
    );
    let mut t = match job.target_missing {
        Some(_) => None,
        None => Some(SideReader::new(
            RangeReader::new(dst, &job.remote, job.partition, t0, thigh)?,
            job.provenance
                .as_ref()
                .map(|(source, _)| Filter::CopiedFrom(source.clone())),
        )),
    };
    let (mut sd, mut td) = (RecordDigest::new(), RecordDigest::new());
    let mut first: Option<Divergence> = None;
    let mut pending: Option<(OwnedMessage, OwnedMessage)> = None;
    let mut source_next = s0;
    loop {
        let tr = match &mut t {
            Some(t) => t.next(None)?,
            None => None,
        };
        // Past the progress watermark only while the target has records.
        let sr = s.next(tr.is_none().then_some(src_end))?;
        if sr.is_none() && tr.is_none() {
            break;
        }
        if let Some(m) = &sr {
            sd.add(m);
            source_next = m.offset() + 1;
        }
        if let Some(m) = &tr {
            td.add(m);
        }
        if let Some((ps, pt)) = pending.take() {
            let missing = sr.as_ref().is_some_and(|m| same_record(&pt, m));
            let extra = tr.as_ref().is_some_and(|m| same_record(&ps, m));
            if let Some(d) = &mut first {
                match (missing, extra) {
                    (true, false) => {
                        d.kind = DivergenceKind::Missing;
                        d.fields.clear();
                    }
                    (false, true) => {
                        d.kind = DivergenceKind::Extra;
                        d.fields.clear();
                    }
                    _ => {}
                }
            }
        }
        if first.is_none() {
            let target_pos = t.as_ref().map_or(t0, |t| t.position());
            first = match (&sr, &tr) {
                (Some(a), Some(b)) if !same_record(a, b) => {
                    pending = Some((a.detach(), b.detach()));
                    Some(Divergence {
                        kind: DivergenceKind::Altered,
                        fields: differences(a, b),
                        source_offset: a.offset(),
                        target_offset: b.offset(),
                        source_record: Some(describe(a)),
                        target_record: Some(describe(b)),
                    })
                }
                (Some(a), None) => Some(Divergence {
                    kind: DivergenceKind::Missing,
                    fields: Vec::new(),
                    source_offset: a.offset(),
                    target_offset: target_pos,
                    source_record: Some(describe(a)),
                    target_record: None,
                }),
                (None, Some(b)) => Some(Divergence {
                    kind: DivergenceKind::Extra,
                    fields: Vec::new(),
                    source_offset: source_next.max(src_end),
                    target_offset: b.offset(),
                    source_record: None,
                    target_record: Some(describe(b)),
                }),
                _ => None,
            };
        }
    }
    if s.reader.ended_early() {
        out.notes.push(format!(
            "the source partition is readable only up to offset {} (an open transaction?), not {}",
            s.reader.position(),
            src_end
        ));
    }
    for (side, reader) in [("source", Some(&s)), ("target", t.as_ref())] {
        if let Some(r) = reader.filter(|r| r.skipped > 0) {
            out.notes.push(format!(
                "{} {side} records left out by cycle protection ({})",
                r.skipped,
                match side {
                    "source" => "they came from the target",
                    _ => "this flow did not write them",
                }
            ));
        }
    }
    if let Some(t) = t.as_ref().filter(|t| t.reader.ended_early()) {
        out.notes.push(format!(
            "the target partition is readable only up to offset {} (an open transaction?)",
            t.position()
        ));
    }
    out.source = Side {
        start: s0,
        end: src_end.max(source_next),
        records: sd.records(),
        digest: sd.finish(),
    };
    out.target = Side {
        start: t0,
        end: t.as_ref().map_or(t0, |t| t.position()),
        records: td.records(),
        digest: td.finish(),
    };
    out.result = if first.is_some() {
        Outcome::Mismatch
    } else {
        Outcome::Match
    };
    out.divergence = first;
    Ok(())
}

/// Records a side leaves out under cycle protection.
enum Filter {
    /// Source: skip records that have already been on this cluster (never
    /// copied to it).
    NotVisited(String),
    /// Target: keep only records this flow wrote (provenance ends with the
    /// source).
    CopiedFrom(String),
}

struct SideReader<'c> {
    reader: RangeReader<'c>,
    filter: Option<Filter>,
    skipped: u64,
}

impl<'c> SideReader<'c> {
    fn new(reader: RangeReader<'c>, filter: Option<Filter>) -> Self {
        Self {
            reader,
            filter,
            skipped: 0,
        }
    }

    fn position(&self) -> i64 {
        self.reader.position()
    }

    /// The next record this side compares; `None` at the end of the range
    /// or at the first record at or past `below`.
    fn next(&mut self, below: Option<i64>) -> Result<Option<BorrowedMessage<'c>>, String> {
        loop {
            let Some(m) = self.reader.next_record()? else {
                return Ok(None);
            };
            if below.is_some_and(|b| m.offset() >= b) {
                return Ok(None);
            }
            let keep = match &self.filter {
                None => true,
                Some(Filter::NotVisited(target)) => {
                    !provenance(&m).is_some_and(|p| p.split(',').any(|c| c == target))
                }
                Some(Filter::CopiedFrom(source)) => {
                    provenance(&m).is_some_and(|p| p.rsplit(',').next() == Some(source.as_str()))
                }
            };
            if keep {
                return Ok(Some(m));
            }
            self.skipped += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// A line for a progress display: `[3/12] orders[1] -> src.orders: 500
/// records, match`.
pub fn progress_line(r: &PartitionResult, done: usize, total: usize) -> String {
    let what = match r.result {
        Outcome::Match => "match".to_string(),
        Outcome::Mismatch => "MISMATCH".to_string(),
        Outcome::Error => format!("ERROR: {}", r.error.as_deref().unwrap_or("?")),
    };
    format!(
        "[{done}/{total}] {}[{}] -> {}: {} records, {what}",
        r.topic, r.partition, r.target_topic, r.source.records
    )
}

/// The human-readable report.
pub fn render(report: &VerifyReport) -> String {
    let mut out = String::new();
    for flow in &report.flows {
        out.push_str(&format!(
            "flow {}: {} topic{}, {} partition{}\n",
            flow.flow,
            flow.topics,
            plural(flow.topics),
            flow.partitions.len(),
            plural(flow.partitions.len())
        ));
        if flow.partitions.is_empty() {
            out.push_str("  nothing to verify: no source topic is replicated by this flow\n");
            continue;
        }
        let mut rows = vec![[
            "TOPIC",
            "PARTITION",
            "TARGET TOPIC",
            "SOURCE RANGE",
            "TARGET RANGE",
            "SOURCE RECORDS",
            "TARGET RECORDS",
            "RESULT",
        ]
        .map(String::from)];
        for p in &flow.partitions {
            rows.push([
                p.topic.clone(),
                p.partition.to_string(),
                p.target_topic.clone(),
                format!("{}..{}", p.source.start, p.source.end),
                format!("{}..{}", p.target.start, p.target.end),
                p.source.records.to_string(),
                p.target.records.to_string(),
                match p.result {
                    Outcome::Match => "match".into(),
                    Outcome::Mismatch => "MISMATCH".into(),
                    Outcome::Error => "ERROR".into(),
                },
            ]);
        }
        out.push_str(&table(&rows));
        for p in &flow.partitions {
            let head = format!(
                "{}[{}] -> {}[{}]",
                p.topic, p.partition, p.target_topic, p.partition
            );
            if let Some(e) = &p.error {
                out.push_str(&format!("  {head}: cannot verify: {e}\n"));
            }
            if let Some(d) = &p.divergence {
                let what = match d.kind {
                    DivergenceKind::Altered => format!(
                        "the records differ in {}",
                        d.fields
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    DivergenceKind::Missing => "the source record is missing on the target".into(),
                    DivergenceKind::Extra => "the target has a record the source does not".into(),
                };
                out.push_str(&format!(
                    "  {head}: first divergent source offset {} (target offset {}): {what}\n",
                    d.source_offset, d.target_offset
                ));
                let show = |r: &Option<RecordDescription>, end: i64| match r {
                    Some(r) => r.to_string(),
                    None => format!("no record (the range ends at offset {end})"),
                };
                out.push_str(&format!(
                    "    source: {}\n    target: {}\n",
                    show(&d.source_record, d.source_offset),
                    show(&d.target_record, d.target_offset)
                ));
                if p.source.records != p.target.records {
                    out.push_str(&format!(
                        "    counts: {} source records, {} target records\n",
                        p.source.records, p.target.records
                    ));
                }
            }
            for n in &p.notes {
                out.push_str(&format!("  {head}: note: {n}\n"));
            }
            if p.basis == Basis::LogStart && p.result != Outcome::Match {
                out.push_str(&format!(
                    "  {head}: note: no offset map for this partition; both sides were aligned from their log starts\n"
                ));
            }
        }
    }
    out.push_str(&match report.result {
        Outcome::Match => format!(
            "result: match: {} partition{}, {} records on each side\n",
            report.partitions,
            plural(report.partitions),
            report.source_records
        ),
        _ => format!(
            "result: MISMATCH: {} of {} partition{} differ{}; {} source records, {} target records\n",
            report.mismatched,
            report.partitions,
            plural(report.partitions),
            if report.errors > 0 {
                format!(", {} could not be read", report.errors)
            } else {
                String::new()
            },
            report.source_records,
            report.target_records
        ),
    });
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
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
    fn topic_filters_match_whole_names_and_name_bad_patterns() {
        let r = topics_filter("orders|pay.*").unwrap();
        assert!(r.is_match("orders") && r.is_match("payments"));
        assert!(!r.is_match("old-orders"));
        let err = topics_filter("orders(").unwrap_err();
        assert_eq!(err, "--topics: invalid regex \"orders(\": unclosed group");
    }

    #[test]
    fn the_range_starts_at_the_first_copied_record() {
        // start_from skipped 0..100 on the source; a marker at 103.
        let segs = segments(&[(100, 0), (101, 1), (102, 2), (104, 3), (105, 4)]);
        assert_eq!(aligned_start(&segs, 0, 0), (100, 0));
        // Retention deleted the source up to 103: the target starts at the
        // copy of 104.
        assert_eq!(aligned_start(&segs, 103, 0), (104, 3));
        assert_eq!(aligned_start(&segs, 101, 0), (101, 1));
        // Retention on the target up to 2.
        assert_eq!(aligned_start(&segs, 0, 2), (102, 2));
        // Everything mapped is gone on the source.
        assert_eq!(aligned_start(&segs, 200, 0), (200, 5));
        assert_eq!(aligned_start(&[], 7, 9), (7, 9));
    }

    #[test]
    fn rebuilt_maps_give_the_same_start() {
        let mut map = OffsetMap::new();
        map.apply_sync(OffsetPair::new(40, 0), SyncLink::Foreign)
            .unwrap();
        let segs: Vec<Segment> = map.segments().collect();
        assert_eq!(aligned_start(&segs, 0, 0), (40, 0));
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
            divergence,
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
        assert!(text.ends_with("result: MISMATCH: 1 of 2 partitions differ; 20 source records, 18 target records\n"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["flows"][0]["partitions"][1]["divergence"]["kind"],
            "missing"
        );
        assert_eq!(json["result"], "mismatch");
    }
}
