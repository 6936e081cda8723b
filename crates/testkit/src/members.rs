//! Several `ferry run` processes of one topology, sharing its flows through
//! each flow's consumer group: what every process says it owns (its typed
//! `/status` membership and `/metrics`), whether the slots are shared out
//! exactly once, continuous load while processes come and go, the target's
//! end offsets sampled over time (to see a copy stall), and an
//! at-least-once tally of a replica that may hold duplicates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_http::client::Endpoint;
use ferry_http::{MembershipDocument, StatusDocument};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::daemon::{signal, Daemon, Ferry};
use crate::data::{self, produce_sequence, Record, SequenceId, SequenceSpec};

/// How long one `/status` or `/metrics` request may take: a live daemon
/// answers in milliseconds, and a stopped one must not hold a poll loop.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// One `ferry run` process of a shared topology, with its HTTP address.
pub struct Member {
    daemon: Daemon,
    addr: SocketAddr,
}

impl Member {
    /// Starts `ferry run` on `topology` and waits for its HTTP address
    /// (`http.listen = "127.0.0.1:0"` gives every process its own port).
    pub fn start(ferry: Ferry, topology: &Path) -> Member {
        let daemon = ferry.start(topology);
        let addr = daemon.http_addr();
        Member { daemon, addr }
    }

    /// The process.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Gives the process up, e.g. to `stop_daemon_with` it.
    pub fn into_daemon(self) -> Daemon {
        self.daemon
    }

    /// Its HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `sig` (SIGSTOP, SIGCONT, ...) without waiting for anything.
    pub fn signal(&self, sig: i32) {
        signal(self.daemon.child(), sig);
    }

    /// Its `/status` document; `None` while it does not answer.
    pub fn status(&self) -> Option<StatusDocument> {
        status_at(self.addr)
    }

    /// Its membership of `flow` (`source->target`); `None` while it does
    /// not answer or has not joined the flow's group.
    pub fn membership(&self, flow: &str) -> Option<MembershipDocument> {
        self.status()?.flow(flow)?.membership.clone()
    }

    /// The value of one `/metrics` series (name plus labels as exported).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let body = get(self.addr, "/metrics")?;
        crate::scrape::metric(&body, series)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let reply = ferry_http::client::request(
        &Endpoint::plain(addr),
        "GET",
        path,
        None,
        None,
        HTTP_TIMEOUT,
    )
    .ok()?;
    (reply.status == 200).then_some(reply.body)
}

fn status_at(addr: SocketAddr) -> Option<StatusDocument> {
    serde_json::from_str(&get(addr, "/status")?).ok()
}

/// How a flow's slots are spread over some members, from their membership
/// documents.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotShares {
    /// The slot count every member reported.
    pub slots_total: u16,
    /// The slots of each member, in the order the members were given.
    pub owned: Vec<Vec<u16>>,
    /// Each owned slot's epoch, as its owner reports it.
    pub epochs: BTreeMap<u16, i64>,
    /// Slots more than one member claims.
    pub doubled: Vec<u16>,
    /// Slots no member claims.
    pub unowned: Vec<u16>,
}

impl SlotShares {
    /// Reads the shares from one membership document per member.
    pub fn of(docs: &[MembershipDocument]) -> SlotShares {
        let slots_total = docs.first().map_or(0, |d| d.slots_total);
        let mut claims: BTreeMap<u16, usize> = BTreeMap::new();
        let mut epochs = BTreeMap::new();
        let owned = docs
            .iter()
            .map(|d| {
                d.slots
                    .iter()
                    .map(|s| {
                        *claims.entry(s.slot).or_default() += 1;
                        epochs.insert(s.slot, s.epoch);
                        s.slot
                    })
                    .collect()
            })
            .collect();
        SlotShares {
            slots_total,
            owned,
            epochs,
            doubled: claims
                .iter()
                .filter(|(_, &n)| n > 1)
                .map(|(s, _)| *s)
                .collect(),
            unowned: (0..slots_total)
                .filter(|s| !claims.contains_key(s))
                .collect(),
        }
    }

    /// Every slot owned by exactly one member.
    pub fn exactly_once(&self) -> bool {
        self.slots_total > 0 && self.doubled.is_empty() && self.unowned.is_empty()
    }

    /// Exactly once, and every member within one slot of an even share:
    /// what the group settles to.
    pub fn balanced(&self) -> bool {
        let counts = self.owned.iter().map(Vec::len);
        let (min, max) = (counts.clone().min(), counts.max());
        self.exactly_once() && matches!((min, max), (Some(min), Some(max)) if max - min <= 1)
    }
}

impl fmt::Display for SlotShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} slots; owned:", self.slots_total)?;
        for (i, slots) in self.owned.iter().enumerate() {
            write!(f, " member {i} {slots:?}")?;
        }
        write!(
            f,
            "; doubled {:?}; unowned {:?}",
            self.doubled, self.unowned
        )
    }
}

/// Waits until `members` have all joined `flow` and together own its slots
/// exactly once, each within one slot of an even share; fails the test with
/// the last state seen after `timeout`. Returns the shares and the time it
/// took.
pub fn wait_until_balanced(
    members: &[&Member],
    flow: &str,
    timeout: Duration,
) -> (SlotShares, Duration) {
    let started = Instant::now();
    loop {
        let docs: Vec<Option<MembershipDocument>> =
            members.iter().map(|m| m.membership(flow)).collect();
        let silent: Vec<usize> = (0..docs.len()).filter(|&i| docs[i].is_none()).collect();
        let last = if silent.is_empty() {
            let shares = SlotShares::of(&docs.into_iter().flatten().collect::<Vec<_>>());
            if shares.balanced() {
                return (shares, started.elapsed());
            }
            shares.to_string()
        } else {
            format!("members {silent:?} show no membership of {flow}")
        };
        assert!(
            started.elapsed() < timeout,
            "after {timeout:?} the {} members do not share the slots of {flow} \
             exactly once and evenly; last seen: {last}",
            members.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A thread that works until told to stop, then hands back its result.
struct Background<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    /// Runs `work`, which must return soon after its flag is set.
    fn spawn(work: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Background<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || work(&stop))
        };
        Background {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for `work` to return by itself.
    fn join(mut self) -> T {
        let thread = self.thread.take().expect("a thread is set until stopped");
        thread.join().expect("the background thread panicked")
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Records produced in the background, batch after batch, to every
/// partition of some topics until [`Load::stop`]; sequence numbers continue
/// across batches so the replica can be checked record by record.
pub struct Load(Background<u64>);

impl Load {
    /// Produces `batch` (its `records_per_partition` records to each of its
    /// partitions) to each topic, then pauses `pause`, until stopped; each
    /// batch continues the sequence numbers of the one before.
    pub fn start(
        config: ClientConfig,
        topics: Vec<String>,
        batch: SequenceSpec,
        pause: Duration,
    ) -> Load {
        Load::batches(config, topics, batch, pause, u64::MAX)
    }

    /// [`Load::start`] that ends by itself after `count` batches.
    pub fn batches(
        config: ClientConfig,
        topics: Vec<String>,
        mut batch: SequenceSpec,
        pause: Duration,
        count: u64,
    ) -> Load {
        Load(Background::spawn(move |stop| {
            batch.first_seq = 0;
            for _ in 0..count {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for topic in &topics {
                    produce_sequence(&config, topic, &batch).expect("produce the load");
                }
                batch.first_seq += batch.records_per_partition;
                std::thread::sleep(pause);
            }
            batch.first_seq
        }))
    }

    /// Waits until a load of limited [`Load::batches`] is done: the records
    /// produced to each partition.
    pub fn finish(self) -> u64 {
        self.0.join()
    }

    /// Stops after the batch under way: the records produced to each
    /// partition.
    pub fn stop(self) -> u64 {
        self.0.stop()
    }
}

/// One partition that [`EndOffsetSampler`] watches: a source partition and
/// its copy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watched {
    pub source_topic: String,
    pub target_topic: String,
    pub partition: i32,
}

/// End offsets of watched source and target partitions at one moment.
#[derive(Clone, Debug)]
pub struct EndSample {
    pub at: Instant,
    /// Per watched partition, in the order given: (source end, target end).
    pub ends: Vec<(i64, i64)>,
}

/// Samples the end offsets of some partitions on both clusters every
/// `interval` in the background, through one long-lived client per cluster
/// (creating clients per sample would load the machine it measures).
pub struct EndOffsetSampler(Background<Vec<EndSample>>);

impl EndOffsetSampler {
    /// Starts sampling `watched` partitions.
    pub fn start(
        source: &ClientConfig,
        target: &ClientConfig,
        watched: Vec<Watched>,
        interval: Duration,
    ) -> EndOffsetSampler {
        let client = |config: &ClientConfig| -> BaseConsumer {
            config.create().expect("a client to sample end offsets")
        };
        let (source, target) = (client(source), client(target));
        EndOffsetSampler(Background::spawn(move |stop| {
            let mut samples = Vec::new();
            let timeout = Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let ends: Option<Vec<(i64, i64)>> = watched
                    .iter()
                    .map(|w| {
                        let (_, src) = source
                            .fetch_watermarks(&w.source_topic, w.partition, timeout)
                            .ok()?;
                        let (_, dst) = target
                            .fetch_watermarks(&w.target_topic, w.partition, timeout)
                            .ok()?;
                        Some((src, dst))
                    })
                    .collect();
                // A failed request leaves a longer interval between
                // samples, which can only make a stall look longer.
                if let Some(ends) = ends {
                    samples.push(EndSample { at, ends });
                }
                std::thread::sleep(interval.saturating_sub(at.elapsed()));
            }
            samples
        }))
    }

    /// Stops sampling: every sample taken.
    pub fn stop(self) -> Vec<EndSample> {
        self.0.stop()
    }
}

/// The longest time watched partition `index` was behind its source
/// without copy progress: from the first sample at which it was behind
/// with a given target end to the last sample at which it still was, with
/// the same end. Time caught up (nothing to copy) never counts. Each end
/// of a stall is known to within one sampling interval.
pub fn longest_stall(samples: &[EndSample], index: usize) -> Duration {
    let mut longest = Duration::ZERO;
    let mut behind_since: Option<(Instant, i64)> = None;
    for sample in samples {
        let (source_end, target_end) = sample.ends[index];
        if target_end >= source_end {
            behind_since = None;
            continue;
        }
        match behind_since {
            Some((from, end)) if end == target_end => longest = longest.max(sample.at - from),
            _ => behind_since = Some((sample.at, target_end)),
        }
    }
    longest
}

/// What a replica that may hold duplicates holds, compared with its
/// source record by record (by the sequence id every record carries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyTally {
    /// Source records.
    pub records: usize,
    /// Source records with no copy.
    pub missing: usize,
    /// Copies beyond the first of a record.
    pub duplicates: usize,
    /// Target records the source partition does not have.
    pub unexpected: Vec<String>,
    /// Copies whose key, value, headers or timestamp differ.
    pub altered: Vec<String>,
    /// Records whose first copy comes before the first copy of a record
    /// that precedes them in the source partition.
    pub reordered: Vec<String>,
}

impl CopyTally {
    /// Every record copied, unaltered, in order, nothing foreign: what
    /// at-least-once promises (duplicates allowed).
    pub fn at_least_once(&self) -> bool {
        self.missing == 0
            && self.unexpected.is_empty()
            && self.altered.is_empty()
            && self.reordered.is_empty()
    }
}

/// Reads `src_topic` on `source` and `dst_topic` on `target` and tallies
/// the replica (see [`CopyTally`]); a failed read fails the test.
pub fn tally(
    source: &ClientConfig,
    src_topic: &str,
    target: &ClientConfig,
    dst_topic: &str,
) -> CopyTally {
    let read = |config: &ClientConfig, topic: &str| {
        data::read_topic(config, topic).unwrap_or_else(|e| panic!("reading {topic}: {e}"))
    };
    let (source, target) = (read(source, src_topic), read(target, dst_topic));
    let mut tally = CopyTally::default();
    for (partition, originals) in source.iter().enumerate() {
        let by_id: BTreeMap<SequenceId, &Record> = originals
            .iter()
            .map(|r| (r.sequence().expect("a sequence record"), r))
            .collect();
        tally.records += by_id.len();
        let mut copied = BTreeSet::new();
        let mut highest_first_copy: Option<SequenceId> = None;
        for copy in target.get(partition).into_iter().flatten() {
            let at = format!("{dst_topic} partition {partition} offset {}", copy.offset);
            let Some((id, original)) = copy.sequence().and_then(|id| Some((id, *by_id.get(&id)?)))
            else {
                tally.unexpected.push(at);
                continue;
            };
            if let Some(diff) = original.content_diff(copy) {
                tally.altered.push(format!("{at} ({id}): {diff}"));
            }
            if !copied.insert(id) {
                tally.duplicates += 1;
                continue;
            }
            if highest_first_copy.is_some_and(|h| h > id) {
                tally.reordered.push(format!("{at} ({id})"));
            }
            highest_first_copy = highest_first_copy.max(Some(id));
        }
        tally.missing += by_id.len() - copied.len();
    }
    for (partition, extra) in target.iter().enumerate().skip(source.len()) {
        for copy in extra {
            tally.unexpected.push(format!(
                "{dst_topic} partition {partition} offset {}",
                copy.offset
            ));
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_http::SlotDocument;

    fn member(slots: &[u16]) -> MembershipDocument {
        MembershipDocument {
            slots_total: 4,
            slots: slots
                .iter()
                .map(|&slot| SlotDocument {
                    slot,
                    epoch: i64::from(slot) * 10,
                    partitions: 1,
                })
                .collect(),
            ..MembershipDocument::default()
        }
    }

    #[test]
    fn shares_see_doubled_unowned_and_uneven_slots() {
        let even = SlotShares::of(&[member(&[0, 2]), member(&[1, 3])]);
        assert!(even.balanced(), "{even}");
        assert_eq!(even.epochs[&3], 30);

        let uneven = SlotShares::of(&[member(&[0, 1, 2]), member(&[3]), member(&[])]);
        assert!(uneven.exactly_once() && !uneven.balanced(), "{uneven}");

        let broken = SlotShares::of(&[member(&[0, 1]), member(&[1])]);
        assert_eq!(
            (broken.doubled.clone(), broken.unowned.clone()),
            (vec![1], vec![2, 3])
        );
        assert!(!broken.exactly_once());
    }

    fn sample(ms: u64, start: Instant, ends: (i64, i64)) -> EndSample {
        EndSample {
            at: start + Duration::from_millis(ms),
            ends: vec![ends],
        }
    }

    #[test]
    fn a_stall_counts_only_while_behind_without_progress() {
        let t = Instant::now();
        let samples = [
            sample(0, t, (10, 5)),
            sample(200, t, (20, 5)),
            sample(400, t, (30, 5)), // 400 ms without progress, behind
            sample(600, t, (30, 30)),
            sample(1600, t, (30, 30)), // caught up: idle, not stalled
            sample(1800, t, (40, 30)),
            sample(2000, t, (40, 30)), // behind for 200 ms, not since 1600
            sample(2200, t, (40, 35)),
        ];
        assert_eq!(longest_stall(&samples, 0), Duration::from_millis(400));
    }
}
