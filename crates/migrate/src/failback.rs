//! `ferry failback`: after consumers and producers failed over from a
//! flow's source (`primary`) to its target (`backup`), hand the topics and
//! groups back to `primary`.
//!
//! Under identity naming with cycle protection a backup partition is
//! `[records copied from primary][records written on backup]`: the forward
//! flow's progress and offset syncs say where the copied prefix ends, and
//! every copied record carries `primary` in its provenance header. Steps,
//! each refusing (nothing written) when its check fails:
//!
//! 1. **preflight**: `primary` answers within `reach_timeout`, no daemon
//!    runs the reverse flow, and the reverse flow has none of the topics
//!    recorded as cut over (from an earlier failback);
//! 2. **writers**: `primary`'s end offsets do not move for `settle` (the
//!    producers must stay on backup until the hand-back);
//! 3. **boundary**, per partition: the backup offset `B` where the copied
//!    prefix ends. From the forward flow's last known position (its offset
//!    syncs and progress) the backup partition is read to its end: copied
//!    records (provenance names `primary`) continue the prefix, the first
//!    record without it starts the outage's records, and a copied record
//!    after that (an interleaving) is refused. `primary` records past the
//!    forward flow's progress never reached backup (the tail): refused
//!    unless accepted; `primary` ending before that progress lost records:
//!    refused;
//! 4. **reverse flow**: `backup->primary` (the topology's, or the forward
//!    flow turned around) starts each partition at `B`, through its saved
//!    progress on `primary`, so no record `primary` holds is copied back;
//! 5. the cutover of the reverse flow ([`crate::cutover`]): groups not
//!    active on `primary`, lag settled (producers stopped on backup), the
//!    group offsets translated back — a backup offset inside the prefix
//!    through the forward flow's map inverted, one past it through the
//!    reverse flow's own offset syncs, every one exact or refused — verify,
//!    and the reverse flow's topics recorded as cut over on `primary`.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_checkpoint::{OffsetMap, Translation};
use ferry_config::{Cluster, Flow, StartFrom, TopicNaming, Topology};
use ferry_supervisor::checkpoints::{offset_syncs_location, read_syncs};
use ferry_supervisor::{cut_over, progress, topics};
use regex::Regex;

use crate::cutover::{self, CutoverError, CutoverOptions, CutoverReport, Handover, Log};
use crate::records::provenance;
use crate::records::reader::{range_consumer, RangeReader};

/// Progress-topic and offset-syncs reads.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct FailbackOptions {
    /// Only topics this regex matches (whole name).
    pub topics: Option<Regex>,
    /// How long `primary`'s end offsets must stay put, and lag settle.
    pub settle: Duration,
    /// How long the reverse copy may take to settle before it refuses.
    pub wait: Duration,
    /// How long to wait for the reverse flow's last offset syncs.
    pub translation_wait: Duration,
    /// How long `primary` may take to answer.
    pub reach_timeout: Duration,
    /// Go on when `primary` holds records that never reached backup.
    pub accept_primary_tail: bool,
}

/// Where one partition's copied prefix ends on backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    pub topic: String,
    pub partition: i32,
    /// The primary offset after the last record copied to backup.
    pub copied_up_to: i64,
    /// The backup offset where the records written on backup begin.
    pub backup_offset: i64,
    /// Backup's end offset: `backup_end - backup_offset` records go back.
    pub backup_end: i64,
    /// Primary's end offset when failback read it.
    pub primary_end: i64,
    /// The primary offset of the first record copied back from backup (by
    /// an earlier failback that was refused later on), else `primary_end`.
    pub copies_back_from: i64,
}

impl Boundary {
    /// Records on primary that never reached backup: after the copied
    /// prefix, before anything copied back.
    pub fn tail(&self) -> i64 {
        (self.copies_back_from - self.copied_up_to).max(0)
    }
}

/// A finished failback.
#[derive(Debug, Clone)]
pub struct FailbackReport {
    /// The forward flow (`primary->backup`).
    pub forward: String,
    /// The reverse flow that copied the records back.
    pub reverse: String,
    /// True when the topology had no reverse flow and failback ran one.
    pub reverse_synthesized: bool,
    pub boundaries: Vec<Boundary>,
    pub cutover: CutoverReport,
}

fn refused(step: &'static str, reason: impl std::fmt::Display) -> CutoverError {
    CutoverError::Refused {
        step,
        reason: reason.to_string(),
    }
}

/// What failback knows of one partition's copied prefix.
struct Prefix {
    boundary: Boundary,
    /// The forward flow's map (primary → backup offsets).
    map: OffsetMap,
    /// Backup offsets `[from, boundary)` past the map's last fact held
    /// copies in lockstep with primary offsets from `upstream`.
    lockstep: Option<(i64, i64)>,
    /// Primary's first offset still in the log.
    primary_start: i64,
}

impl Prefix {
    /// The primary offset for a group committed at backup offset `g`, when
    /// `g` lies in the prefix (at or before the boundary).
    fn translate(&self, g: i64) -> Option<Translation> {
        if g > self.boundary.backup_offset {
            return None;
        }
        if g == self.boundary.backup_offset {
            // Everything copied was consumed: next is the first record
            // after them on primary.
            return Some(Translation::Exact(self.boundary.copied_up_to));
        }
        if let Some((from, upstream)) = self.lockstep {
            if g >= from {
                return Some(Translation::Exact(upstream + (g - from)));
            }
        }
        let first = self.map.segments().next();
        Some(match self.map.translate_back(g) {
            Translation::Unknown => match first {
                // Consumed nothing, and the map starts at primary's log.
                Some(s)
                    if g == s.downstream_start() && s.upstream_start() <= self.primary_start =>
                {
                    Translation::Exact(s.upstream_start())
                }
                _ => Translation::Unknown,
            },
            other => other,
        })
    }
}

/// Hands `forward`'s topics and groups back from its target to its source:
/// see the [module docs](self).
pub async fn failback(
    topology: &Topology,
    forward: &Flow,
    options: &FailbackOptions,
    log: Log<'_>,
) -> Result<FailbackReport, CutoverError> {
    let (reverse, synthesized) = reverse_flow(topology, forward)?;
    let (primary, backup) = crate::clusters(topology, forward)?;
    // The topology the hand-back runs in: both flows enabled, so verify
    // knows that primary's own records are expected next to the copies.
    let mut both = topology.clone();
    both.flows.retain(|f| f.id() != reverse.id());
    for f in &mut both.flows {
        if f.id() == forward.id() {
            f.enabled = true;
        }
    }
    both.flows.push(reverse.clone());

    // 1. reach
    let primary_admin = crate::admin(primary, "ferry-failback")?;
    let backup_admin = crate::admin(backup, "ferry-failback")?;
    let on_primary = match tokio::time::timeout(
        options.reach_timeout,
        crate::list_topics(&primary_admin, primary),
    )
    .await
    {
        Ok(Ok(listed)) => listed,
        Ok(Err(e)) => {
            return Err(refused(
                "preflight",
                format!(
                    "cluster {} cannot be asked: {e}; failback needs it back",
                    primary.name
                ),
            ))
        }
        Err(_) => {
            return Err(refused(
                "preflight",
                format!(
                    "cluster {} ({}) is unreachable: no answer within {:?}; failback needs it back",
                    primary.name, primary.bootstrap_servers, options.reach_timeout
                ),
            ))
        }
    };
    let on_backup = crate::list_topics(&backup_admin, backup).await?;
    let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
    for (t, n) in &on_primary {
        if !topics::selects(forward, t) || options.topics.as_ref().is_some_and(|r| !r.is_match(t)) {
            continue;
        }
        let Some(m) = on_backup.get(t) else {
            continue;
        };
        if m != n {
            return Err(refused(
                "preflight",
                format!(
                    "topic {t} has {n} partition(s) on {} but {m} on {}; failback copies partition to partition",
                    primary.name, backup.name
                ),
            ));
        }
        partitions.insert(t.clone(), i32::try_from(*n).unwrap_or(i32::MAX));
    }
    if partitions.is_empty() {
        return Err(CutoverError::BadInput(match &options.topics {
            Some(r) => format!(
                "--topics \"{}\" matches no topic that flow {} copied to {}",
                crate::verify::filter_pattern(r),
                forward.id(),
                backup.name
            ),
            None => format!(
                "flow {} copied no topic that exists on both {} and {}",
                forward.id(),
                primary.name,
                backup.name
            ),
        }));
    }
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p)))
        .collect();
    log(&format!(
        "failback [1/4] preflight: {} answers; {} topic(s), {} partition(s): {}",
        primary.name,
        partitions.len(),
        keys.len(),
        partitions.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    if let cutover::Replicator::Daemon(addr) = cutover::find_daemon(&both, &reverse)? {
        return Err(refused(
            "preflight",
            format!(
                "the daemon at {addr} runs flow {}; failback starts that flow itself at the end of what {} copied: stop the daemon (or remove the flow from its topology) and run failback again",
                reverse.id(),
                primary.name
            ),
        ));
    }
    let stopped = cut_over::load(primary, &reverse.id()).await?;
    let stopped: Vec<&str> = partitions
        .keys()
        .filter(|t| stopped.contains_key(*t))
        .map(String::as_str)
        .collect();
    if !stopped.is_empty() {
        return Err(refused(
            "preflight",
            format!(
                "flow {} has {} recorded as cut over on {} (an earlier failback or cutover), so it would not copy them: run ferry resume-topics --flow {} --topics '{}' first, then failback again",
                reverse.id(),
                stopped.join(", "),
                primary.name,
                reverse.id(),
                stopped.iter().map(|t| regex::escape(t)).collect::<Vec<_>>().join("|")
            ),
        ));
    }

    // 2. writers
    let before = watermarks(&primary_admin, primary, &keys).await?;
    tokio::time::sleep(options.settle).await;
    let after = watermarks(&primary_admin, primary, &keys).await?;
    let grown: Vec<String> = keys
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| a.1 != b.1)
        .map(|((t, p), (b, a))| format!("{t}[{p}] {} -> {}", b.1, a.1))
        .collect();
    if !grown.is_empty() {
        return Err(refused(
            "writers",
            format!(
                "producers still write to {} (end offsets moved within {:?}: {}); keep producers on {} only until failback is done, then run it again",
                primary.name,
                options.settle,
                grown.join(", "),
                backup.name
            ),
        ));
    }
    log(&format!(
        "failback [2/4] writers: no record written to {} for {:?}",
        primary.name, options.settle
    ));

    // 3. boundary
    let prefixes = boundaries(
        forward,
        &reverse,
        primary,
        backup,
        &backup_admin,
        &keys,
        &after,
    )
    .await?;
    let tails: Vec<String> = prefixes
        .values()
        .filter(|p| p.boundary.tail() > 0)
        .map(|p| {
            let b = &p.boundary;
            format!(
                "{}[{}] offsets {}..{} ({} record(s))",
                b.topic,
                b.partition,
                b.copied_up_to,
                b.copies_back_from - 1,
                b.tail()
            )
        })
        .collect();
    if !tails.is_empty() {
        let what = format!(
            "{} holds records that never reached {} (written before the outage, after the last copy): {}",
            primary.name,
            backup.name,
            tails.join(", ")
        );
        if !options.accept_primary_tail {
            return Err(refused(
                "boundary",
                format!(
                    "{what}; the consumers on {} never saw them. Run failback with --accept-primary-tail to keep them on {} before the records copied back: groups still inside the copied prefix read them, groups past it skip them",
                    backup.name, primary.name
                ),
            ));
        }
        log(&format!("      accepted: {what}"));
    }
    let back: i64 = prefixes
        .values()
        .map(|p| p.boundary.backup_end - p.boundary.backup_offset)
        .sum();
    log(&format!(
        "failback [3/4] boundary: {back} record(s) written on {} during the outage go back; the copied prefix stays",
        backup.name
    ));

    // 4. the reverse flow starts at the boundary
    let starts: Vec<(String, i32, i64)> = prefixes
        .values()
        .map(|p| {
            (
                p.boundary.topic.clone(),
                p.boundary.partition,
                p.boundary.backup_offset,
            )
        })
        .collect();
    let moved = progress::advance(
        primary,
        &reverse.source,
        &starts,
        reverse.replication_factor,
    )
    .await?;
    log(&format!(
        "failback [4/4] reverse flow {}{}: starts at the boundary ({} partition(s) moved there, the others were past it)",
        reverse.id(),
        if synthesized { " (the forward flow turned around)" } else { "" },
        moved.len()
    ));

    let handover_options = CutoverOptions {
        topics: Some(exact_names(partitions.keys())),
        settle: options.settle,
        wait: options.wait,
        translation_wait: options.translation_wait,
    };
    let known = |topic: &str, partition: i32, offset: i64| {
        prefixes
            .get(&(topic.to_string(), partition))
            .and_then(|p| p.translate(offset))
    };
    let handover = Handover {
        known: Some(&known),
        exact_only: true,
    };
    let report = cutover::cutover_with(&both, &reverse, &handover_options, log, handover).await?;
    Ok(FailbackReport {
        forward: forward.id().to_string(),
        reverse: reverse.id().to_string(),
        reverse_synthesized: synthesized,
        boundaries: prefixes.into_values().map(|p| p.boundary).collect(),
        cutover: report,
    })
}

/// The flow that copies back: the topology's `target->source` flow, else
/// `forward` turned around. Both must keep names one to one and mark
/// provenance, or the prefix cannot be told apart.
fn reverse_flow(topology: &Topology, forward: &Flow) -> Result<(Flow, bool), CutoverError> {
    let fits = |f: &Flow| -> Result<(), CutoverError> {
        if f.topic_naming != TopicNaming::Identity || !f.cycle_protection {
            return Err(CutoverError::BadInput(format!(
                "flow {}: failback needs topic_naming = \"identity\" with cycle_protection = true, so that records copied between the clusters carry their provenance and keep their names",
                f.id()
            )));
        }
        if !f.rename.is_empty() {
            return Err(CutoverError::BadInput(format!(
                "flow {}: failback copies every topic back under its own name; flows with rename rules are not supported",
                f.id()
            )));
        }
        Ok(())
    };
    fits(forward)?;
    if let Some(f) = topology
        .flows
        .iter()
        .find(|f| f.source == forward.target && f.target == forward.source)
    {
        fits(f)?;
        return Ok((
            Flow {
                enabled: true,
                ..f.clone()
            },
            false,
        ));
    }
    Ok((
        Flow {
            source: forward.target.clone(),
            target: forward.source.clone(),
            enabled: true,
            // Failback sets every partition's start (its progress).
            start_from: StartFrom::Earliest,
            // Failback hands the groups over itself, once, exactly.
            sync_group_offsets: false,
            acls: Default::default(),
            mm2_offsets: ferry_config::Mm2Offsets::dedicated(&forward.target, &forward.source),
            ..forward.clone()
        },
        true,
    ))
}

/// A filter that matches exactly these names.
fn exact_names<'a>(names: impl Iterator<Item = &'a String>) -> Regex {
    let alternatives: Vec<String> = names.map(|n| regex::escape(n)).collect();
    Regex::new(&format!("^(?:{})$", alternatives.join("|"))).expect("escaped names compile")
}

/// (low, high) watermarks of every partition, in order.
async fn watermarks(
    admin: &ferry_admin::Admin,
    cluster: &Cluster,
    keys: &[(String, i32)],
) -> Result<Vec<(i64, i64)>, CutoverError> {
    let mut out = Vec::with_capacity(keys.len());
    for (t, p) in keys {
        let w = admin.watermarks(t, *p).await.map_err(crate::client_err(
            cluster,
            &format!("cannot read the end offsets of {t}[{p}]"),
        ))?;
        out.push((w.low, w.high));
    }
    Ok(out)
}

/// Step 3: every partition's copied prefix on backup.
async fn boundaries(
    forward: &Flow,
    reverse: &Flow,
    primary: &Cluster,
    backup: &Cluster,
    backup_admin: &ferry_admin::Admin,
    keys: &[(String, i32)],
    primary_marks: &[(i64, i64)],
) -> Result<BTreeMap<(String, i32), Prefix>, CutoverError> {
    let saved = progress::load(backup, &forward.source, READ_TIMEOUT).await?;
    let (syncs_cluster, syncs_topic) = offset_syncs_location(forward, primary, backup);
    let mut maps = read_syncs(syncs_cluster, &syncs_topic, READ_TIMEOUT)
        .await?
        .into_maps();
    let backup_marks = watermarks(backup_admin, backup, keys).await?;
    let copies = Leading::Visited(reverse.target.clone());
    let mut out = BTreeMap::new();
    for (((topic, partition), (primary_start, primary_end)), (backup_start, backup_end)) in
        keys.iter().zip(primary_marks).zip(&backup_marks)
    {
        let name = format!("{topic}[{partition}]");
        let map = maps
            .remove(&(topic.clone(), *partition))
            .unwrap_or_default();
        // After the map's last fact: (primary offset, backup offset).
        let known_end = map.last_pair().map(|p| (p.upstream + 1, p.downstream + 1));
        let progress = match saved.get(&(topic.clone(), *partition)) {
            Some(p) => *p,
            // Nothing was ever on primary: nothing was copied.
            None if primary_end == primary_start && known_end.is_none() => *primary_end,
            None => {
                return Err(refused(
                    "boundary",
                    format!(
                        "flow {} saved no progress for {name} on {}: nothing says which of its records came from {}",
                        forward.id(),
                        backup.name,
                        primary.name
                    ),
                ))
            }
        };
        // Copies the map knows of may lie past the saved progress (written
        // just before a crash); they count as copied.
        let (upstream_known, from) =
            known_end.unwrap_or(((*primary_start).min(progress), *backup_start));
        // Records of backup's own inside the prefix (before the first copy
        // the map knows, or between two of its runs) would never go back:
        // refused rather than left behind. The runs themselves are copies.
        let mut holes = Vec::new();
        let mut hole_start = *backup_start;
        for run in map.segments() {
            // Offsets below the log start are gone (retention): not read.
            let lo = hole_start.max(*backup_start);
            if lo < run.downstream_start() {
                holes.push((lo, run.downstream_start()));
            }
            hole_start = run.downstream_end();
        }
        let found = scan(backup, topic, *partition, &holes, copies.clone()).await?;
        if let Some(local) = found.first_other {
            return Err(refused(
                "boundary",
                format!(
                    "{name} on {}: offset {local} holds a record written on {} among the records copied from {}; failback copies back only the records after the copies, so it would never reach {}",
                    backup.name, backup.name, primary.name, primary.name
                ),
            ));
        }
        if from > *backup_end {
            return Err(refused(
                "boundary",
                format!(
                    "{name}: {} ends at offset {backup_end}, before the copies flow {} recorded there (up to offset {}): {} lost records",
                    backup.name,
                    forward.id(),
                    from - 1,
                    backup.name
                ),
            ));
        }
        let range = (from.max(*backup_start), *backup_end);
        let found = scan(backup, topic, *partition, &[range], copies.clone()).await?;
        if let Some((local, copied)) = found.interleaved {
            return Err(refused(
                "boundary",
                format!(
                    "{name} on {}: offset {copied} holds a record copied from {} after records written on {} (the first at offset {local}); failback cannot tell where {} should have them",
                    backup.name, primary.name, backup.name, primary.name
                ),
            ));
        }
        let boundary = found.first_other.unwrap_or(*backup_end);
        // Copies past the map's last fact: exact only in lockstep with
        // the saved progress.
        let past = boundary - from;
        let (copied_up_to, lockstep) = if past == 0 {
            (progress.max(upstream_known), None)
        } else if progress > upstream_known && progress - upstream_known == past {
            (progress, Some((from, upstream_known)))
        } else {
            return Err(refused(
                "boundary",
                format!(
                    "{name} on {}: {past} record(s) copied from {} at offsets {from}..{} that flow {}'s offset syncs and progress ({progress}) do not account for; the offsets cannot be translated exactly",
                    backup.name,
                    primary.name,
                    boundary - 1,
                    forward.id()
                ),
            ));
        };
        if *primary_end < copied_up_to {
            return Err(refused(
                "boundary",
                format!(
                    "{name}: {} ends at offset {primary_end}, before the {copied_up_to} its flow {} copied to {}: {} lost records (a restored or truncated log); failback would not put them back",
                    primary.name,
                    forward.id(),
                    backup.name,
                    primary.name
                ),
            ));
        }
        // Primary past the copied prefix: its own records that never
        // reached backup (the tail), then what an earlier, refused failback
        // already copied back from backup.
        let on_primary = scan(
            primary,
            topic,
            *partition,
            &[(copied_up_to.max(*primary_start), *primary_end)],
            Leading::NotCopiedFrom(backup.name.clone()),
        )
        .await?;
        if let Some((copy, own)) = on_primary.interleaved {
            return Err(refused(
                "boundary",
                format!(
                    "{name} on {}: offset {own} holds a record written there after records copied back from {} (the first at offset {copy}); producers wrote to both clusters",
                    primary.name, backup.name
                ),
            ));
        }
        out.insert(
            (topic.clone(), *partition),
            Prefix {
                boundary: Boundary {
                    topic: topic.clone(),
                    partition: *partition,
                    copied_up_to,
                    backup_offset: boundary,
                    backup_end: *backup_end,
                    primary_end: *primary_end,
                    copies_back_from: on_primary.first_other.unwrap_or(*primary_end),
                },
                map,
                lockstep,
                primary_start: *primary_start,
            },
        );
    }
    Ok(out)
}

/// Which records lead a scanned range.
#[derive(Clone)]
enum Leading {
    /// Copies that have been on this cluster (backup's prefix: copies
    /// from primary).
    Visited(String),
    /// Records not copied from this cluster (primary's own records, ahead
    /// of the copies from backup).
    NotCopiedFrom(String),
}

impl Leading {
    fn holds(&self, trail: Option<&str>) -> bool {
        match self {
            Leading::Visited(c) => trail.is_some_and(|p| p.split(',').any(|x| x == c)),
            Leading::NotCopiedFrom(c) => trail.and_then(|p| p.rsplit(',').next()) != Some(c),
        }
    }
}

/// How a range splits into leading records and the rest.
struct Scan {
    /// The first record that is not a leading one.
    first_other: Option<i64>,
    /// A leading record after that: (first other, it).
    interleaved: Option<(i64, i64)>,
}

/// Reads `topic[partition]` of `cluster` over `ranges` (in order, with
/// one consumer): leading records first, then the others, never mixed.
async fn scan(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    ranges: &[(i64, i64)],
    leading: Leading,
) -> Result<Scan, CutoverError> {
    let mut scan = Scan {
        first_other: None,
        interleaved: None,
    };
    if ranges.is_empty() {
        return Ok(scan);
    }
    let (cluster, topic, ranges) = (cluster.clone(), topic.to_string(), ranges.to_vec());
    let name = format!("{topic}[{partition}]");
    let cluster_name = cluster.name.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Scan, String> {
        let consumer = range_consumer(&cluster, "ferry-failback").map_err(|e| e.to_string())?;
        for (from, end) in ranges {
            let mut reader = RangeReader::new(&consumer, &topic, partition, from, end)?;
            while let Some(m) = reader.next_record()? {
                let offset = rdkafka::Message::offset(&m);
                match (leading.holds(provenance(&m).as_deref()), scan.first_other) {
                    (false, None) => scan.first_other = Some(offset),
                    (true, Some(other)) => {
                        scan.interleaved = Some((other, offset));
                        return Ok(scan);
                    }
                    _ => {}
                }
            }
            if reader.ended_early() {
                return Err(format!(
                    "the partition ended at offset {} before {end} (an open transaction?)",
                    reader.position()
                ));
            }
        }
        Ok(scan)
    })
    .await
    .map_err(|e| refused("boundary", format!("the reader of {name} failed: {e}")))?;
    read.map_err(|e| {
        refused(
            "boundary",
            format!("cannot read {name} on {cluster_name}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(pairs: &[(i64, i64)], boundary: i64, copied_up_to: i64) -> Prefix {
        let mut map = OffsetMap::new();
        for (u, d) in pairs {
            map.record(*u, *d).unwrap();
        }
        Prefix {
            boundary: Boundary {
                topic: "t".into(),
                partition: 0,
                copied_up_to,
                backup_offset: boundary,
                backup_end: boundary + 10,
                primary_end: copied_up_to,
                copies_back_from: copied_up_to,
            },
            map,
            lockstep: None,
            primary_start: 0,
        }
    }

    #[test]
    fn prefix_offsets_translate_back_exactly_or_not_at_all() {
        // primary 0..100 copied to backup 0..100; backup 100.. written there.
        let pairs: Vec<(i64, i64)> = (0..100).map(|i| (i, i)).collect();
        let p = prefix(&pairs, 100, 100);
        assert_eq!(p.translate(0), Some(Translation::Exact(0)));
        assert_eq!(p.translate(42), Some(Translation::Exact(42)));
        assert_eq!(
            p.translate(100),
            Some(Translation::Exact(100)),
            "the boundary"
        );
        assert_eq!(
            p.translate(101),
            None,
            "past the prefix: the reverse flow's map"
        );
        // A map that starts after primary's log start knows nothing before.
        let later: Vec<(i64, i64)> = (10..100).map(|i| (i, i - 10)).collect();
        let p = prefix(&later, 90, 100);
        assert_eq!(p.translate(0), Some(Translation::Unknown));
        assert_eq!(p.translate(5), Some(Translation::Exact(15)));
    }

    #[test]
    fn copies_past_the_map_count_only_in_lockstep() {
        let pairs: Vec<(i64, i64)> = (0..50).map(|i| (i, i + 3)).collect();
        let mut p = prefix(&pairs, 60, 57);
        assert_eq!(p.translate(55), Some(Translation::Conservative(50)));
        p.lockstep = Some((53, 50));
        assert_eq!(p.translate(55), Some(Translation::Exact(52)));
        assert_eq!(p.translate(60), Some(Translation::Exact(57)));
    }

    #[test]
    fn provenance_tells_copies_from_own_records() {
        let copied_here = Leading::Visited("primary".into());
        assert!(copied_here.holds(Some("primary")));
        assert!(copied_here.holds(Some("dc3,primary")));
        assert!(!copied_here.holds(Some("backup")));
        assert!(!copied_here.holds(None), "written on backup");
        let own = Leading::NotCopiedFrom("backup".into());
        assert!(own.holds(None), "written on primary");
        assert!(own.holds(Some("dc3")));
        assert!(!own.holds(Some("backup")), "copied back");
        assert!(
            !own.holds(Some("dc3,backup")),
            "the last hop was from backup"
        );
    }

    #[test]
    fn exact_names_match_whole_names_only() {
        let names = ["a.b".to_string(), "c".to_string()];
        let r = exact_names(names.iter());
        assert!(r.is_match("a.b") && r.is_match("c"));
        assert!(!r.is_match("axb") && !r.is_match("cc"));
    }
}
