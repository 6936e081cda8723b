//! `ferry cutover`: the guided switch of a flow's topics from the source to
//! the target cluster.
//!
//! Steps, each a check that refuses to go on when it fails, and each safe to
//! run again (a refused cutover is resumed by running the command again):
//!
//! 1. **preflight**: the topics exist, and no consumer group that is about
//!    to be moved already has members on the target;
//! 2. **lag**: every partition's saved progress reaches the source's end
//!    offset and stays there, with the end offsets unchanged, for the
//!    settle period. Partitions that keep growing are named: producers must
//!    be stopped first;
//! 3. **stop** (standalone): Ferry replicates the topics itself during the
//!    command and stops here, which flushes the last offset syncs and
//!    checkpoints; against a running daemon this is step 6;
//! 4. **group offsets**: every matching source group's committed offsets
//!    are translated through the offset map rebuilt from the offset-syncs
//!    topic and written into the target group (absent or empty there, never
//!    backwards);
//! 5. **verify**: source and target compared record by record;
//! 6. **stop**: the cutover is persisted on the target
//!    (`ferry_supervisor::cut_over`), by the daemon at `http.listen` when
//!    one runs the flow (`POST /control/stop-topics`, authorized by the
//!    topology's `http.control_token`, which also stops the topics there),
//!    else by this command; every daemon then keeps the topics stopped,
//!    across reloads and restarts, until `ferry resume-topics`;
//! 7. **next steps**: per group, the target offsets and what to do.
//!
//! Standalone or daemon: if a daemon answers at the topology's
//! `http.listen` and runs the flow, it is the replicator and cutover only
//! observes it until step 6; otherwise cutover runs the flow itself for the
//! chosen topics, so two replicators never copy the same partitions.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_admin::{Admin, AdminError, GroupDescription};
use ferry_checkpoint::group_sync::{self, TargetGroup};
use ferry_checkpoint::Translation;
use ferry_config::{Cluster, Flow, NameFilter, Secret, Topology};
use ferry_supervisor::{cut_over, topics, RunMode, Supervisor};
use regex::Regex;
use tokio_util::sync::CancellationToken;

mod lag;

use lag::wait_for_settled_lag;

use crate::offsets_report::{offsets_report, OffsetRow};
use crate::verify::{self, Outcome, TopicFilter, VerifyOptions, VerifyReport};
use crate::{admin, client_err, clusters};

/// How often lag is measured.
const POLL: Duration = Duration::from_secs(1);
/// Progress-topic and offset-syncs reads.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take to drop stopped topics from `/status`.
const DAEMON_STOP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct CutoverOptions {
    /// Only source topics this regex matches (whole name).
    pub topics: Option<Regex>,
    /// Lag must stay 0, and the source must not grow, this long.
    pub settle: Duration,
    /// How long lag may take to reach 0 and settle before cutover refuses.
    pub wait: Duration,
    /// How long to wait for exact translations (the last offset syncs)
    /// before going on with conservative ones.
    pub translation_wait: Duration,
}

impl Default for CutoverOptions {
    fn default() -> Self {
        Self {
            topics: None,
            settle: Duration::from_secs(10),
            wait: Duration::from_secs(300),
            translation_wait: Duration::from_secs(30),
        }
    }
}

/// Why cutover stopped.
#[derive(Debug, thiserror::Error)]
pub enum CutoverError {
    /// Bad input: the selection names no topic, the flow is unusable.
    #[error("{0}")]
    BadInput(String),
    /// A check failed; nothing after it ran. Exit 1.
    #[error("cutover refused at step \"{step}\": {reason}")]
    Refused { step: &'static str, reason: String },
    /// A cluster or the daemon could not be asked. Exit 1.
    #[error(transparent)]
    Engine(#[from] ferry_supervisor::EngineError),
}

fn refused(step: &'static str, reason: impl std::fmt::Display) -> CutoverError {
    CutoverError::Refused {
        step,
        reason: reason.to_string(),
    }
}

/// Who replicates during the cutover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicator {
    /// This command, for the chosen topics only.
    Standalone,
    /// The daemon answering at this address.
    Daemon(SocketAddr),
}

/// One partition's handed-over offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub topic: String,
    pub partition: i32,
    pub target_topic: String,
    pub source_offset: i64,
    /// The target group's offset after the sync (`None`: no translation).
    pub target_offset: Option<i64>,
    pub exact: bool,
    /// What happened, for the operator.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHandover {
    pub group: String,
    pub partitions: Vec<HandedOver>,
}

/// A finished cutover.
#[derive(Debug, Clone)]
pub struct CutoverReport {
    pub flow: String,
    pub source: String,
    pub target: String,
    pub target_bootstrap: String,
    pub replicator: Replicator,
    /// Source topic → target topic.
    pub topics: BTreeMap<String, String>,
    pub groups: Vec<GroupHandover>,
    pub verify: VerifyReport,
}

/// Step progress for a person: one line at a time.
pub type Log<'a> = &'a (dyn Fn(&str) + Sync);

/// A group's committed source offset on (source topic, partition),
/// translated by what a caller knows better than the flow's offset syncs;
/// `None` leaves the offset-sync translation.
pub type KnownTranslation<'a> = &'a (dyn Fn(&str, i32, i64) -> Option<Translation> + Sync);

/// How the group offsets step hands groups over (the default: as
/// `ferry cutover` does).
#[derive(Clone, Copy, Default)]
pub struct Handover<'a> {
    /// Translations that replace the offset-sync ones where it answers.
    pub known: Option<KnownTranslation<'a>>,
    /// Refuse, naming every group partition, when a translation is not
    /// exact, instead of handing over a conservative one.
    pub exact_only: bool,
}

/// Runs the cutover of `flow`'s topics (all it selects, or those matching
/// `options.topics`).
pub async fn cutover(
    topology: &Topology,
    flow: &Flow,
    options: &CutoverOptions,
    log: Log<'_>,
) -> Result<CutoverReport, CutoverError> {
    cutover_with(topology, flow, options, log, Handover::default()).await
}

/// [`cutover`], with the group offsets step changed by `handover`
/// (`ferry failback` hands groups back with translations of its own).
pub async fn cutover_with(
    topology: &Topology,
    flow: &Flow,
    options: &CutoverOptions,
    log: Log<'_>,
    handover: Handover<'_>,
) -> Result<CutoverReport, CutoverError> {
    let (source, target) = clusters(topology, flow)?;
    let source_admin = admin(source, "ferry-cutover")?;
    let target_admin = admin(target, "ferry-cutover")?;

    // 1. preflight
    let partitions = selected_partitions(&source_admin, source, flow, options).await?;
    let names: Vec<&str> = partitions.keys().map(String::as_str).collect();
    let narrowed = Flow {
        topics: NameFilter::exactly(names.iter().copied()),
        ..flow.clone()
    };
    let topic_map: BTreeMap<String, String> = partitions
        .keys()
        .map(|t| (t.clone(), flow.remote_topic(t)))
        .collect();
    log(&format!(
        "[1/6] preflight: {} topic(s), {} partition(s): {}",
        partitions.len(),
        partitions.values().sum::<i32>(),
        names.join(", ")
    ));
    let rows = offsets_report(&narrowed, source, target, None).await?;
    refuse_active_groups(&target_admin, target, &rows).await?;
    let replicator = find_daemon(topology, flow)?;
    log(&match replicator {
        Replicator::Daemon(addr) => format!(
            "      the daemon at {addr} replicates flow {}; cutover observes it",
            flow.id()
        ),
        Replicator::Standalone => format!(
            "      no daemon runs flow {} at {}; cutover replicates the topics itself",
            flow.id(),
            topology.http.listen
        ),
    });

    // 2. lag, with the engine running in this process when standalone.
    let engine = match replicator {
        Replicator::Standalone => Some(Engine::start(topology, &narrowed)?),
        Replicator::Daemon(_) => None,
    };
    let settled = wait_for_settled_lag(
        &source_admin,
        source,
        target,
        flow,
        &partitions,
        options,
        log,
    )
    .await;
    // 3. stop (standalone): drain, save progress, flush syncs.
    let ends = if let Some(engine) = engine {
        let stopped = engine.stop().await;
        let ends = settled?;
        stopped?;
        log("[3/6] stop: replication of these topics stopped; progress, offset syncs and checkpoints saved");
        ends
    } else {
        let ends = settled?;
        log("[3/6] stop: the daemon keeps replicating until the checks below pass");
        ends
    };

    // 4. group offsets
    let rows =
        settled_translations(&narrowed, source, target, &ends, options, log, handover).await?;
    let groups = sync_group_offsets(&target_admin, target, rows).await?;
    log(&format!(
        "[4/6] group offsets: {} group(s) handed over to {}",
        groups.len(),
        target.name
    ));

    // 5. verify
    let verify_options = VerifyOptions {
        topics: Some(TopicFilter::Names(partitions.keys().cloned().collect())),
        ..VerifyOptions::default()
    };
    let report =
        verify::verify(topology, std::slice::from_ref(flow), &verify_options, None).await?;
    if report.result != Outcome::Match {
        return Err(refused(
            "verify",
            format!(
                "{}; nothing was stopped on the daemon, fix the cause and run cutover again\n{}",
                match report.result {
                    Outcome::Mismatch => "source and target differ",
                    _ => "not every source record could be compared",
                },
                verify::render(&report)
            ),
        ));
    }
    log(&format!(
        "[5/6] verify: match: {} partition(s), {} record(s) on each side",
        report.partitions, report.source_records
    ));

    // 6. stop, persisted on the target
    if let Replicator::Daemon(addr) = replicator {
        let endpoint = crate::daemon::endpoint(&topology.http).map_err(|e| refused("stop", e))?;
        stop_on_daemon(endpoint, topology.http.control_token.clone(), flow, &names).await?;
        log(&format!(
            "[6/6] stop: the daemon at {addr} no longer replicates these topics, and recorded it on {} so no daemon does until ferry resume-topics",
            target.name
        ));
    } else {
        let topics: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        cut_over::record(
            target,
            &flow.id(),
            &topics,
            "ferry cutover",
            flow.replication_factor,
        )
        .await
        .map_err(|e| {
            refused(
                "stop",
                format!("cannot persist the cutover, so a daemon started later would replicate these topics again: {e}; run cutover again"),
            )
        })?;
        log(&format!(
            "[6/6] stop: recorded on {} ({}): no daemon replicates these topics again until ferry resume-topics",
            target.name,
            cut_over::cut_over_topic(&flow.source)
        ));
    }
    Ok(CutoverReport {
        flow: flow.id().to_string(),
        source: source.name.clone(),
        target: target.name.clone(),
        target_bootstrap: target.bootstrap_servers.clone(),
        replicator,
        topics: topic_map,
        groups,
        verify: report,
    })
}

/// The source topics the cutover moves, with their partition counts.
async fn selected_partitions(
    source_admin: &Admin,
    source: &Cluster,
    flow: &Flow,
    options: &CutoverOptions,
) -> Result<BTreeMap<String, i32>, CutoverError> {
    let listed = crate::list_topics(source_admin, source).await?;
    let chosen: BTreeMap<String, i32> = listed
        .into_iter()
        .filter(|(t, _)| topics::selects(flow, t))
        .filter(|(t, _)| options.topics.as_ref().is_none_or(|r| r.is_match(t)))
        .map(|(t, n)| (t, i32::try_from(n).unwrap_or(i32::MAX)))
        .collect();
    if chosen.is_empty() {
        return Err(CutoverError::BadInput(match &options.topics {
            Some(r) => format!(
                "--topics \"{}\" matches no source topic that flow {} replicates",
                verify::filter_pattern(r),
                flow.id()
            ),
            None => format!(
                "flow {} selects no topic on cluster {}",
                flow.id(),
                source.name
            ),
        }));
    }
    Ok(chosen)
}

/// The daemon that runs `flow`, if one answers at `http.listen`.
///
/// Something that answers HTTP there but refuses the status document is a
/// refusal, not a reason to replicate standalone: a daemon this command
/// cannot see into may be copying the same partitions. A daemon that runs
/// the flow without a control token cannot be asked to stop the topics at
/// the end, so that is refused before anything changes.
pub(crate) fn find_daemon(topology: &Topology, flow: &Flow) -> Result<Replicator, CutoverError> {
    let endpoint = crate::daemon::endpoint(&topology.http).map_err(|e| refused("preflight", e))?;
    let addr = endpoint.addr;
    let token = topology.http.control_token.as_ref();
    let id = flow.id().to_string();
    let fail = |why: String| {
        refused(
            "preflight",
            format!("the daemon at {addr} (http.listen): {why}"),
        )
    };
    use ferry_http::client::ClientError;
    let doc = match crate::daemon::status(&endpoint, token) {
        Ok(doc) => doc,
        // No HTTP answer at all: no daemon runs with this topology.
        Err(ClientError::NoAnswer(_)) => return Ok(Replicator::Standalone),
        Err(ClientError::Refused { code, reason }) => {
            let hint = if code == 401 {
                "; put the daemon's http.control_token in this topology file"
            } else {
                ""
            };
            return Err(fail(format!(
                "/status answered HTTP {code}: {}{hint}; cutover never replicates next to a daemon it cannot see",
                reason.trim()
            )));
        }
        Err(unreadable) => return Err(fail(unreadable.to_string())),
    };
    if doc.flow(&id).is_none() {
        return Ok(Replicator::Standalone);
    }
    if token.is_none() {
        return Err(fail(format!(
            "it replicates flow {id}, but the topology sets no http.control_token, so its control endpoint is disabled and cutover could not stop the topics there; \
             set http.control_token, restart the daemon and run cutover again"
        )));
    }
    Ok(Replicator::Daemon(addr))
}

/// The flow replicated by this process for the cutover's topics.
struct Engine {
    cancel: CancellationToken,
    supervisor: Supervisor,
}

impl Engine {
    fn start(topology: &Topology, flow: &Flow) -> Result<Self, CutoverError> {
        let mut only = topology.clone();
        only.flows = vec![Flow {
            enabled: true,
            ..flow.clone()
        }];
        let metrics = Arc::new(ferry_http::Metrics::new(
            ferry_http::MetricsOptions::default(),
        ));
        let mut supervisor = Supervisor::new(only, RunMode::Continuous, metrics);
        let cancel = CancellationToken::new();
        supervisor.start(&cancel)?;
        Ok(Self { cancel, supervisor })
    }

    async fn stop(self) -> Result<(), CutoverError> {
        self.cancel.cancel();
        self.supervisor
            .wait()
            .await
            .map_err(|e| refused("stop", format!("the final drain failed: {e}")))
    }
}

/// Translations once the last offset syncs are in: every row exact, or at
/// the end of its partition (where a conservative translation is the true
/// position: nothing follows it). Waits at most `translation_wait`, then
/// goes on with what there is, which is never ahead of the truth.
async fn settled_translations(
    flow: &Flow,
    source: &Cluster,
    target: &Cluster,
    ends: &HashMap<(String, i32), i64>,
    options: &CutoverOptions,
    log: Log<'_>,
    handover: Handover<'_>,
) -> Result<Vec<OffsetRow>, CutoverError> {
    let started = Instant::now();
    loop {
        let mut rows = offsets_report(flow, source, target, None).await?;
        if let Some(known) = handover.known {
            for r in &mut rows {
                if let Some(t) = known(&r.topic, r.partition, r.source_offset) {
                    r.translated = t;
                }
            }
        }
        let settled = |r: &OffsetRow| match r.translated {
            Translation::Exact(_) => true,
            Translation::Conservative(_) => ends
                .get(&(r.topic.clone(), r.partition))
                .is_some_and(|end| r.source_offset >= *end),
            Translation::Unknown => false,
        };
        let open = rows.iter().filter(|r| !settled(r)).count();
        if open == 0 || started.elapsed() >= options.translation_wait {
            if open > 0 && handover.exact_only {
                let named: Vec<String> = rows
                    .iter()
                    .filter(|r| !settled(r))
                    .map(|r| {
                        format!(
                            "group {} {}[{}] at offset {} ({})",
                            r.group,
                            r.topic,
                            r.partition,
                            r.source_offset,
                            match r.translated {
                                Translation::Conservative(o) => format!("at best {o}, not exact"),
                                _ => "no translation".to_string(),
                            }
                        )
                    })
                    .collect();
                return Err(refused(
                    "group offsets",
                    format!(
                        "{open} group partition(s) cannot be translated exactly on {}: {}; no group offset was written",
                        target.name,
                        named.join("; ")
                    ),
                ));
            }
            if open > 0 {
                log(&format!(
                    "      {open} group partition(s) have no exact translation after {:?}; their offsets are conservative (never ahead: those consumers may re-read some records) or unknown",
                    options.translation_wait
                ));
            }
            return Ok(rows);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Step 1's group check: a group with members on the target is consuming
/// there already; moving its offsets would make it skip or re-read.
async fn refuse_active_groups(
    target_admin: &Admin,
    target: &Cluster,
    rows: &[OffsetRow],
) -> Result<(), CutoverError> {
    let mut names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    names.dedup();
    let described = target_admin
        .describe_consumer_groups(&names)
        .await
        .map_err(client_err(target, "cannot describe consumer groups"))?;
    let active: Vec<String> = described
        .iter()
        .filter(|d| has_members(d))
        .map(|d| {
            let hosts: Vec<String> = d
                .members
                .iter()
                .map(|m| format!("{}@{}", m.client_id, m.host))
                .collect();
            format!(
                "{} ({} member(s): {})",
                d.group_id,
                d.member_count,
                hosts.join(", ")
            )
        })
        .collect();
    if active.is_empty() {
        return Ok(());
    }
    Err(refused(
        "preflight",
        format!(
            "consumer group(s) already active on target cluster {}: {}; their consumers must stay stopped until cutover has written their offsets",
            target.name,
            active.join("; ")
        ),
    ))
}

/// Step 4: writes each group's translated offsets into the target group,
/// by the same rules as the daemon's group offset sync (absent or empty
/// groups only, never backwards).
async fn sync_group_offsets(
    target_admin: &Admin,
    target: &Cluster,
    rows: Vec<OffsetRow>,
) -> Result<Vec<GroupHandover>, CutoverError> {
    let mut by_group: BTreeMap<String, Vec<OffsetRow>> = BTreeMap::new();
    for r in rows {
        by_group.entry(r.group.clone()).or_default().push(r);
    }
    let names: Vec<&str> = by_group.keys().map(String::as_str).collect();
    let described = target_admin
        .describe_consumer_groups(&names)
        .await
        .map_err(client_err(target, "cannot describe consumer groups"))?;
    let mut handovers = Vec::new();
    for (group, rows) in by_group {
        let state = described
            .iter()
            .find(|d| d.group_id == group)
            .map_or(TargetGroup::Idle, |d| {
                if has_members(d) {
                    TargetGroup::Active
                } else {
                    TargetGroup::Idle
                }
            });
        if state == TargetGroup::Active {
            return Err(became_active(&group, target));
        }
        let desired: Vec<(&str, i32, i64)> = rows
            .iter()
            .filter_map(|r| Some((r.remote_topic.as_str(), r.partition, r.translated.offset()?)))
            .collect();
        let current: HashMap<(String, i32), i64> = rows
            .iter()
            .filter_map(|r| Some(((r.remote_topic.clone(), r.partition), r.target_offset?)))
            .collect();
        let plan = group_sync::plan(state, desired, &current);
        if !plan.write.is_empty() {
            let offsets: Vec<(&str, i32, i64)> = plan
                .write
                .iter()
                .map(|(t, p, o)| (t.as_str(), *p, *o))
                .collect();
            target_admin
                .alter_consumer_group_offsets(&group, &offsets)
                .await
                .map_err(|e| match e {
                    AdminError::GroupNotEmpty { .. } => became_active(&group, target),
                    e => client_err(
                        target,
                        &format!("cannot write the offsets of group {group}"),
                    )(e)
                    .into(),
                })?;
        }
        let written: HashMap<(&str, i32), i64> = plan
            .write
            .iter()
            .map(|(t, p, o)| ((t.as_str(), *p), *o))
            .collect();
        let skipped: HashMap<(&str, i32), String> = plan
            .skip
            .iter()
            .map(|(t, p, _, why)| ((t.as_str(), *p), why.to_string()))
            .collect();
        let partitions = rows
            .iter()
            .map(|r| {
                let key = (r.remote_topic.as_str(), r.partition);
                let (target_offset, note) = match (written.get(&key), skipped.get(&key)) {
                    (Some(o), _) => (Some(*o), "written".to_string()),
                    (None, Some(why)) => (r.target_offset, format!("kept: {why}")),
                    (None, None) => match r.translated.offset() {
                        Some(o) => (Some(o), "already there".to_string()),
                        None => (
                            r.target_offset,
                            "no translation: the committed offset is older than anything copied; the consumer starts by its auto.offset.reset".to_string(),
                        ),
                    },
                };
                HandedOver {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    target_topic: r.remote_topic.clone(),
                    source_offset: r.source_offset,
                    target_offset,
                    exact: r.translated.is_exact(),
                    note,
                }
            })
            .collect();
        handovers.push(GroupHandover { group, partitions });
    }
    Ok(handovers)
}

/// A described target group with live members (one that could not be
/// described, such as a group that does not exist, has none).
fn has_members(d: &GroupDescription) -> bool {
    d.error.is_none() && !d.state.has_no_members()
}

/// A group that joined on the target between the preflight and its sync.
fn became_active(group: &str, target: &Cluster) -> CutoverError {
    refused(
        "group offsets",
        format!(
            "consumer group {group} became active on target cluster {} during the cutover; stop its consumers and run cutover again",
            target.name
        ),
    )
}

/// Step 6 against a daemon: ask it to stop the topics, then wait until its
/// `/status` no longer lists them.
async fn stop_on_daemon(
    endpoint: crate::daemon::Endpoint,
    token: Option<Secret>,
    flow: &Flow,
    names: &[&str],
) -> Result<(), CutoverError> {
    let request = ferry_http::StopTopics {
        flow: flow.id().to_string(),
        topics: names.iter().map(|n| n.to_string()).collect(),
    };
    let body = serde_json::to_string(&request).expect("plain strings serialize");
    let addr = endpoint.addr;
    let fail = |why: String| refused("stop", format!("the daemon at {addr}: {why}"));
    tokio::task::spawn_blocking({
        let (token, endpoint) = (token.clone(), endpoint.clone());
        move || {
            crate::daemon::post(
                &endpoint,
                "/control/stop-topics",
                &body,
                token.as_ref(),
                DAEMON_STOP_TIMEOUT,
            )
        }
    })
    .await
    .map_err(|e| fail(format!("request task failed: {e}")))?
    .map_err(|e| fail(e.to_string()))?;
    let id = flow.id().to_string();
    let started = Instant::now();
    loop {
        let (token, endpoint) = (token.clone(), endpoint.clone());
        let doc =
            tokio::task::spawn_blocking(move || crate::daemon::status(&endpoint, token.as_ref()))
                .await
                .map_err(|e| fail(format!("request task failed: {e}")))?
                .map_err(|e| fail(e.to_string()))?;
        let still: Vec<String> = doc
            .flow(&id)
            .into_iter()
            .flat_map(|f| &f.topics)
            .filter(|t| names.contains(&t.topic.as_str()))
            .map(|t| t.topic.clone())
            .collect();
        if still.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= DAEMON_STOP_TIMEOUT {
            return Err(fail(format!(
                "still replicates {} after {DAEMON_STOP_TIMEOUT:?}",
                still.join(", ")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The closing instructions: per group, where its consumers resume on the
/// target, then what to change.
pub fn render_next_steps(report: &CutoverReport) -> String {
    let mut out = format!(
        "\ncutover of flow {} complete: {} topic(s) now live on cluster {} ({})\n",
        report.flow,
        report.topics.len(),
        report.target,
        report.target_bootstrap
    );
    out.push_str("\ntopics (source -> target):\n");
    for (s, t) in &report.topics {
        out.push_str(&format!("  {s} -> {t}\n"));
    }
    if report.groups.is_empty() {
        out.push_str("\nno consumer group had committed offsets on these topics\n");
    } else {
        out.push_str("\nconsumer groups on the target:\n");
        for g in &report.groups {
            out.push_str(&format!("  group {}\n", g.group));
            for p in &g.partitions {
                out.push_str(&format!(
                    "    {}[{}]  offset {}  ({}; source offset {}{})\n",
                    p.target_topic,
                    p.partition,
                    p.target_offset.map_or("-".to_string(), |o| o.to_string()),
                    p.note,
                    p.source_offset,
                    if p.exact { ", exact" } else { "" }
                ));
            }
        }
    }
    out.push_str("\nnext steps:\n");
    out.push_str(&format!(
        "  1. point consumers at {} ({}), subscribed to the target topics above; they resume at the offsets shown\n",
        report.target, report.target_bootstrap
    ));
    out.push_str(&format!(
        "  2. point producers at {} and start them\n",
        report.target
    ));
    out.push_str(&format!(
        "  3. remove these topics from flow {} in the topology file (or disable the flow){}\n",
        report.flow,
        match report.replicator {
            Replicator::Daemon(_) => {
                "; the running daemon already stopped them, and any daemon keeps them stopped, across restarts too, until ferry resume-topics"
            }
            Replicator::Standalone => "",
        }
    ));
    out
}
