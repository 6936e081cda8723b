//! The comparison of one partition: where both ranges start, then the
//! sequence walk (see the parent module's docs).

use std::collections::HashMap;

use crate::records::reader::{range_consumer, RangeReader, ReaderContext};
use crate::records::{
    describe, differences, provenance, same_record, RecordDescription, RecordDigest,
};
use ferry_admin::Watermarks;
use ferry_checkpoint::Segment;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::{
    Basis, Coverage, Divergence, DivergenceKind, FlowStart, Job, Outcome, PartitionResult, Role,
    Side, SEARCH_LIMIT, WATERMARKS_TIMEOUT,
};

pub(super) fn run_job(
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
        coverage: Coverage::default(),
        divergence: None,
        incomplete: None,
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

/// One side of a partition as it is when the comparison starts.
struct Partition<'c> {
    consumer: &'c BaseConsumer<ReaderContext>,
    cluster: &'c str,
    topic: &'c str,
    partition: i32,
    low: i64,
    high: i64,
}

impl<'c> Partition<'c> {
    fn open(
        consumer: &'c BaseConsumer<ReaderContext>,
        cluster: &'c str,
        topic: &'c str,
        partition: i32,
    ) -> Result<Self, String> {
        let Watermarks { low, high } = watermarks(consumer, cluster, topic, partition)?;
        Ok(Self {
            consumer,
            cluster,
            topic,
            partition,
            low,
            high,
        })
    }

    /// A reader of this side from `from` to its high watermark.
    fn reader(&self, from: i64, filter: Option<Filter>) -> Result<SideReader<'c>, String> {
        Ok(SideReader::new(
            RangeReader::new(self.consumer, self.topic, self.partition, from, self.high)?,
            filter,
        ))
    }

    /// The first record at or after `from` that `filter` keeps.
    fn first_kept(
        &self,
        from: i64,
        filter: Option<Filter>,
    ) -> Result<Option<OwnedMessage>, String> {
        let mut reader = self.reader(from.max(self.low), filter)?;
        Ok(reader.next(None)?.map(|m| m.detach()))
    }

    /// The offset of `record`'s copy on this side: from the first offset
    /// whose timestamp is at or after the record's (copies keep
    /// timestamps), at most [`SEARCH_LIMIT`] records compared by content.
    fn find(&self, record: &OwnedMessage, filter: Option<Filter>) -> Result<Option<i64>, String> {
        let hint = match record.timestamp().to_millis() {
            Some(ts) if ts >= 0 => self.offset_for_time(ts)?,
            _ => None,
        };
        let mut reader = self.reader(hint.unwrap_or(self.low).max(self.low), filter)?;
        for _ in 0..SEARCH_LIMIT {
            match reader.next(None)? {
                Some(m) if same_record(&m, record) => return Ok(Some(m.offset())),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    fn offset_for_time(&self, ts: i64) -> Result<Option<i64>, String> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(self.topic, self.partition, Offset::Offset(ts))
            .map_err(|e| e.to_string())?;
        let answer = self
            .consumer
            .offsets_for_times(tpl, WATERMARKS_TIMEOUT)
            .map_err(|e| {
                format!(
                    "cluster {}: cannot look up a timestamp in {}[{}]: {}",
                    self.cluster,
                    self.topic,
                    self.partition,
                    self.consumer.context().scrub(&e.to_string())
                )
            })?;
        Ok(answer
            .find_partition(self.topic, self.partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
    }
}

/// Where both sides' ranges start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Alignment {
    source: i64,
    target: i64,
    basis: Basis,
}

/// Where the offset map puts the copy of the source record at `offset`,
/// moved forward along the map when retention deleted that copy on the
/// target. `None` when no segment covers the record.
pub(super) fn map_start(segments: &[Segment], offset: i64, target_low: i64) -> Option<(i64, i64)> {
    let g = segments
        .iter()
        .find(|g| g.upstream_start() <= offset && offset < g.upstream_end())?;
    let copy = g.downstream_start() + (offset - g.upstream_start());
    if copy >= target_low {
        return Some((offset, copy));
    }
    let g = segments.iter().find(|g| g.downstream_end() > target_low)?;
    Some((
        g.upstream_start() + (target_low - g.downstream_start()).max(0),
        target_low.max(g.downstream_start()),
    ))
}

/// The source offset of the target record at `offset`, where the map knows
/// it exactly.
pub(super) fn map_origin(segments: &[Segment], offset: i64) -> Option<i64> {
    segments
        .iter()
        .find(|g| g.downstream_start() <= offset && offset < g.downstream_end())
        .map(|g| g.upstream_start() + (offset - g.downstream_start()))
}

fn watermarks(
    consumer: &BaseConsumer<ReaderContext>,
    cluster: &str,
    topic: &str,
    partition: i32,
) -> Result<Watermarks, String> {
    consumer
        .fetch_watermarks(topic, partition, WATERMARKS_TIMEOUT)
        .map(|(low, high)| Watermarks { low, high })
        .map_err(|e| {
            format!(
                "cluster {cluster}: cannot read the watermarks of {topic}[{partition}]: {}",
                consumer.context().scrub(&e.to_string())
            )
        })
}

/// Where a flow that started at "latest" or "unconsumed" started on one
/// partition, as told by the records on its target.
enum StartOnTarget {
    /// At this source offset, known by this means.
    Known(i64, Basis),
    /// It cannot be told; the reason, for the operator.
    Unknown(String),
}

impl Job {
    fn source_filter(&self) -> Option<Filter> {
        self.provenance
            .as_ref()
            .map(|(_, target)| Filter::NotVisited(target.clone()))
    }

    fn target_filter(&self) -> Option<Filter> {
        self.provenance
            .as_ref()
            .map(|(source, _)| Filter::CopiedFrom(source.clone()))
    }

    /// Where a `latest` or `unconsumed` flow started on this partition: the
    /// source offset of the target's first copied record, or why it cannot
    /// be told. `Err`: a read failed.
    fn start_from_target(
        &self,
        source: &Partition,
        target: Option<&Partition>,
    ) -> Result<StartOnTarget, String> {
        let first = match target {
            Some(t) => t.first_kept(t.low, self.target_filter())?,
            None => None,
        };
        let Some(first) = first else {
            return Ok(match self.progress {
                Some(p) => StartOnTarget::Known(p, Basis::NothingCopied),
                None => StartOnTarget::Unknown(
                    "nothing has been copied and there is no saved progress: where a flow \
                     starting at \"latest\" or \"unconsumed\" starts is not known yet"
                        .into(),
                ),
            });
        };
        if let Some(origin) = map_origin(&self.segments, first.offset()) {
            return Ok(StartOnTarget::Known(origin, Basis::OffsetMap));
        }
        Ok(match source.find(&first, self.source_filter())? {
            Some(origin) => StartOnTarget::Known(origin, Basis::Search),
            None => StartOnTarget::Unknown(format!(
                "the target's first copied record (offset {}) is not on the source: where the \
                 flow started cannot be told",
                first.offset()
            )),
        })
    }

    /// Both ranges' starts, for a source range starting at `from` (see the
    /// module docs). `notes` gets what an operator should know about it.
    fn align(
        &self,
        from: i64,
        source: &Partition,
        target: &Partition,
        notes: &mut Vec<String>,
    ) -> Result<Alignment, String> {
        let Some(first) = source.first_kept(from, self.source_filter())? else {
            // Nothing to compare on the source: the target range starts at
            // its first copied record, so any copy there is extra.
            let start = target
                .first_kept(target.low, self.target_filter())?
                .map_or(target.high, |m| m.offset());
            return Ok(Alignment {
                source: from,
                target: start,
                basis: Basis::LogStart,
            });
        };
        if let Some((s, t)) = map_start(&self.segments, first.offset(), target.low) {
            if s > first.offset() {
                notes.push(format!(
                    "the target's log starts at offset {}: source records before offset {s} are no longer on the target and were not compared",
                    target.low
                ));
            }
            return Ok(Alignment {
                source: s,
                target: t,
                basis: Basis::OffsetMap,
            });
        }
        let target_first = target.first_kept(target.low, self.target_filter())?;
        match &target_first {
            None => {
                return Ok(Alignment {
                    source: first.offset(),
                    target: target.low,
                    basis: Basis::LogStart,
                })
            }
            Some(t) if same_record(t, &first) => {
                return Ok(Alignment {
                    source: first.offset(),
                    target: t.offset(),
                    basis: Basis::LogStart,
                })
            }
            Some(_) => {}
        }
        if let Some(t) = target.find(&first, self.target_filter())? {
            return Ok(Alignment {
                source: first.offset(),
                target: t,
                basis: Basis::Search,
            });
        }
        // The copy of the first source record is not on the target. When
        // the target's log no longer starts at 0, retention (or a
        // DeleteRecords) removed its first copies: start both sides at the
        // target's first record instead.
        if target.low > 0 {
            if let Some(t) = target_first {
                if let Some(s) = source.find(&t, self.source_filter())? {
                    notes.push(format!(
                        "the target's log starts at offset {}: source records before offset {s} are no longer on the target and were not compared",
                        target.low
                    ));
                    return Ok(Alignment {
                        source: s,
                        target: t.offset(),
                        basis: Basis::Search,
                    });
                }
            }
        }
        Ok(Alignment {
            source: first.offset(),
            target: target.low,
            basis: Basis::LogStart,
        })
    }
}

/// The sequence walk of one partition (see the module docs).
fn compare(
    job: &Job,
    src: &BaseConsumer<ReaderContext>,
    dst: &BaseConsumer<ReaderContext>,
    out: &mut PartitionResult,
) -> Result<(), String> {
    // The target first: while replication runs, every target record below
    // its end then has its source record below the source end read next.
    let target = match job.target_missing {
        Some(why) => {
            out.notes.push(why.to_string());
            None
        }
        None => Some(Partition::open(
            dst,
            &job.target.name,
            &job.remote,
            job.partition,
        )?),
    };
    let source = Partition::open(src, &job.source.name, &job.topic, job.partition)?;
    // The range ends at the source end captured when verify started.
    let end = job.source_end.min(source.high);
    let (flow_start, start_basis) = match job.start {
        FlowStart::LogStart => (source.low, None),
        FlowStart::At(offset) => (offset, None),
        FlowStart::FromTarget => match job.start_from_target(&source, target.as_ref())? {
            StartOnTarget::Known(offset, basis) => (offset, Some(basis)),
            StartOnTarget::Unknown(reason) => {
                out.result = Outcome::Incomplete;
                out.incomplete = Some(reason);
                out.source = Side {
                    start: source.low,
                    end,
                    ..Side::default()
                };
                return Ok(());
            }
        },
    };
    let from = flow_start.clamp(source.low, source.high);
    let alignment = match &target {
        Some(t) if start_basis != Some(Basis::NothingCopied) => {
            job.align(from, &source, t, &mut out.notes)?
        }
        _ => Alignment {
            source: from,
            target: target.as_ref().map_or(0, |t| t.low),
            basis: start_basis.unwrap_or(Basis::LogStart),
        },
    };
    out.basis = alignment.basis;
    let (s0, t0) = (alignment.source, alignment.target);
    if let Some(t) = &target {
        if t0 > t.low && alignment.basis != Basis::NothingCopied {
            out.notes.push(format!(
                "target offsets {}..{t0} precede the copy of the first source record and were not compared",
                t.low
            ));
        }
    }
    let mut s = source.reader(s0, job.source_filter())?;
    let mut t = match &target {
        Some(side) => Some(side.reader(t0, job.target_filter())?),
        None => None,
    };
    let (mut sd, mut td) = (RecordDigest::new(), RecordDigest::new());
    let mut coverage = Coverage::default();
    let mut first: Option<Divergence> = None;
    let mut pending: Option<(OwnedMessage, OwnedMessage)> = None;
    // The first source record the target ended before: (offset, record).
    let mut uncopied: Option<(i64, RecordDescription)> = None;
    // Where the source sequence stood when the first foreign target record
    // was passed over.
    let mut foreign_at: Option<i64> = None;
    let mut source_next = s0;
    loop {
        let tr = match &mut t {
            Some(t) => {
                let before = t.skipped;
                let record = t.next(None)?;
                if before == 0 && t.skipped > 0 {
                    foreign_at = Some(source_next);
                }
                record
            }
            None => None,
        };
        // Past the range's end only while the target has records.
        let sr = s.next(tr.is_none().then_some(end))?;
        if sr.is_none() && tr.is_none() {
            break;
        }
        if let Some(m) = &sr {
            sd.add(m);
            source_next = m.offset() + 1;
            if m.offset() < end {
                coverage.in_range += 1;
                if tr.is_some() {
                    coverage.compared += 1;
                }
            }
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
            match (&sr, &tr) {
                (Some(a), Some(b)) if !same_record(a, b) => {
                    pending = Some((a.detach(), b.detach()));
                    first = Some(Divergence {
                        kind: DivergenceKind::Altered,
                        fields: differences(a, b),
                        source_offset: a.offset(),
                        target_offset: b.offset(),
                        source_record: Some(describe(a)),
                        target_record: Some(describe(b)),
                    });
                }
                (Some(a), None) if uncopied.is_none() => {
                    uncopied = Some((a.offset(), describe(a)));
                }
                (None, Some(b)) => {
                    first = Some(Divergence {
                        kind: DivergenceKind::Extra,
                        fields: Vec::new(),
                        source_offset: source_next.max(end),
                        target_offset: b.offset(),
                        source_record: None,
                        target_record: Some(describe(b)),
                    });
                }
                _ => {}
            }
        }
    }
    let target_end = t.as_ref().map_or(t0, |t| t.position());
    // Not on the target although saved progress is past it: lost, not late.
    if let Some((offset, record)) = &uncopied {
        if first.is_none() && job.progress.is_some_and(|p| p > *offset) {
            first = Some(Divergence {
                kind: DivergenceKind::Missing,
                fields: Vec::new(),
                source_offset: *offset,
                target_offset: target_end,
                source_record: Some(record.clone()),
                target_record: None,
            });
        }
    }
    if let Some(reader) = t.as_mut() {
        if reader.skipped > 0 {
            match &job.reverse_flow {
                Some(reverse) => out.notes.push(format!(
                    "{} target records not copied from {} (expected: flow {reverse} writes to this topic too)",
                    reader.skipped, job.source.name
                )),
                None => {
                    out.notes.push(format!(
                        "{} target records not copied from {} (no flow writes them: a one-way flow's target holds only copies)",
                        reader.skipped, job.source.name
                    ));
                    if first.is_none() {
                        let record = reader.first_skipped.take();
                        first = Some(Divergence {
                            kind: DivergenceKind::Foreign,
                            fields: Vec::new(),
                            source_offset: foreign_at.unwrap_or(s0),
                            target_offset: record.as_ref().map_or(t0, |r| r.offset),
                            source_record: None,
                            target_record: record,
                        });
                    }
                }
            }
        }
    }
    if s.skipped > 0 {
        out.notes.push(format!(
            "{} source records left out by cycle protection (they came from the target)",
            s.skipped
        ));
    }
    if let Some(t) = t.as_ref().filter(|t| t.reader.ended_early()) {
        out.notes.push(format!(
            "the target partition is readable only up to offset {} (an open transaction?)",
            t.position()
        ));
    }
    out.result = if first.is_some() {
        Outcome::Mismatch
    } else if let Some((offset, _)) = uncopied {
        out.incomplete = Some(format!(
            "{} source records from offset {offset} are not (yet) on the target ({})",
            coverage.in_range - coverage.compared,
            match job.progress {
                Some(p) => format!("replication's saved progress is at offset {p}"),
                None => "no saved progress: nothing has replicated this partition".into(),
            }
        ));
        Outcome::Incomplete
    } else if s.reader.ended_early() && s.position() < end {
        out.incomplete = Some(format!(
            "the source partition is readable only up to offset {} (an open transaction?), not {end}: the rest could not be compared",
            s.position()
        ));
        Outcome::Incomplete
    } else {
        Outcome::Match
    };
    out.source = Side {
        start: s0,
        end: end.max(source_next),
        records: sd.records(),
        digest: sd.finish(),
    };
    out.target = Side {
        start: t0,
        end: target_end,
        records: td.records(),
        digest: td.finish(),
    };
    out.coverage = coverage;
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
    /// The first record the filter left out.
    first_skipped: Option<RecordDescription>,
}

impl<'c> SideReader<'c> {
    fn new(reader: RangeReader<'c>, filter: Option<Filter>) -> Self {
        Self {
            reader,
            filter,
            skipped: 0,
            first_skipped: None,
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
            if self.first_skipped.is_none() {
                self.first_skipped = Some(describe(&m));
            }
        }
    }
}
