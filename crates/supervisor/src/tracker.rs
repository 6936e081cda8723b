//! The per-partition acknowledgement tracker.
//!
//! Progress for a partition is the *contiguous acknowledged watermark*: the
//! first source offset whose record, or any earlier one, the target has not
//! yet acknowledged. It is never the highest offset seen. Offsets here are
//! exclusive ends: a watermark of 10 means records 0..=9 are safe and 10 is
//! the next to copy.
//!
//! Delivery reports for one partition arrive in produce order (idempotent
//! producer), so the in-flight queue is popped from the front.
//!
//! Offset map: a slot built `with_offsets` records every acknowledged
//! (source offset, target offset) pair, in delivery order, into its session
//! of the partition's offset map (`checkpoints::SessionHandle`), under the
//! slot's lock; a failed slot stops recording.
//!
//! Fencing: a slot belongs to one task epoch. When a partition is restarted
//! a new slot replaces it and the old one is fenced, so late delivery reports
//! addressed to the old slot cannot move the new slot's progress.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::checkpoints::SessionHandle;
use crate::status::SkipLedger;

/// Why a partition stopped moving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFailure {
    /// The first source offset that was not acknowledged.
    pub offset: i64,
    pub cause: String,
    /// Set when the target refused the record itself, so that retrying it
    /// cannot help and `on_record_error` applies.
    pub refusal: Option<Refusal>,
}

/// Why the target refused a record as such (as opposed to failing to take
/// it now: unreachable, unauthorized, timed out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than the target topic's `max.message.bytes`.
    TooLarge,
    /// The target topic's rules refuse it (e.g. no key on a compacted topic).
    InvalidRecord,
    /// Its timestamp is out of the target topic's allowed range.
    InvalidTimestamp,
}

impl Refusal {
    /// The Kafka error codes that refuse a record for what it is.
    pub fn of(code: rdkafka::error::RDKafkaErrorCode) -> Option<Refusal> {
        use rdkafka::error::RDKafkaErrorCode as C;
        match code {
            C::MessageSizeTooLarge | C::MessageBatchTooLarge => Some(Refusal::TooLarge),
            C::InvalidRecord => Some(Refusal::InvalidRecord),
            C::InvalidTimestamp => Some(Refusal::InvalidTimestamp),
            _ => None,
        }
    }

    /// The `reason` label of `ferry_records_skipped_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::InvalidRecord => "invalid_record",
            Refusal::InvalidTimestamp => "invalid_timestamp",
        }
    }
}

/// The target's acknowledgement of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// Where the record landed in the target partition.
    pub target_offset: i64,
    /// The record's CreateTime in milliseconds, -1 when it has none.
    pub timestamp_ms: i64,
}

/// A failed delivery: the cause as text, and whether it was a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub cause: String,
    pub refusal: Option<Refusal>,
}

impl From<String> for DeliveryError {
    fn from(cause: String) -> Self {
        Self {
            cause,
            refusal: None,
        }
    }
}

impl From<&str> for DeliveryError {
    fn from(cause: &str) -> Self {
        cause.to_string().into()
    }
}

/// A refused record the next task epoch resolves by `on_record_error`
/// instead of producing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub offset: i64,
    pub refusal: Refusal,
    pub cause: String,
    /// The records after it, up to here (exclusive), were acknowledged by
    /// the target after the refusal: already copied, not to copy again.
    pub copied_until: i64,
}

/// What the pump does with a record of a slot that resolves a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The refused record: skip it or dead-letter it.
    Refused(Resolution),
    /// A record after it that the target already acknowledged.
    AlreadyCopied,
}

/// One record handed to the producer and not yet answered.
#[derive(Debug)]
struct InFlight {
    offset: i64,
    bytes: u32,
    /// Set when this is a refused record's copy in the dead-letter topic:
    /// its acknowledgement resolves the record without mapping offsets.
    dead_letter: Option<Resolution>,
}

#[derive(Debug)]
struct SlotState {
    /// Records produced and not yet acknowledged, in order.
    in_flight: VecDeque<InFlight>,
    /// The offset after the last record produced or deliberately skipped.
    next_unhandled: i64,
    failure: Option<PartitionFailure>,
    /// The refused record this epoch resolves rather than copies.
    resolution: Option<Resolution>,
    /// After a failure: the records right after the failed one that the
    /// target acknowledged nonetheless.
    acked_past_failure: AckedPastFailure,
}

/// The run of records right after a failed one that the target
/// acknowledged nonetheless.
#[derive(Debug, Clone, Copy)]
struct AckedPastFailure {
    /// The end (exclusive) of the run.
    end: i64,
    /// Still growing: no second failure yet.
    growing: bool,
}

impl AckedPastFailure {
    /// A run that has not started: it ends right after `offset`, and
    /// grows while records after it are acknowledged.
    fn after(offset: i64, growing: bool) -> Self {
        Self {
            end: offset + 1,
            growing,
        }
    }
}

/// One source partition mirrored by one task epoch.
#[derive(Debug)]
pub struct PartitionSlot {
    pub topic: Arc<str>,
    pub partition: i32,
    pub target_topic: Arc<str>,
    state: Mutex<SlotState>,
    fenced: AtomicBool,
    failed: AtomicBool,
    /// Woken when the partition fails, so its topic task restarts it
    /// without polling.
    on_failure: Option<Arc<Notify>>,
    /// Cheap counters read by metrics and status without taking the lock.
    pub records_acked: AtomicU64,
    pub bytes_acked: AtomicU64,
    /// Target offset of the last acknowledged record (-1 before any).
    pub last_target_offset: AtomicI64,
    /// CreateTime (ms) of the last acknowledged record (-1 before any).
    pub last_timestamp_ms: AtomicI64,
    /// The source end offset as last read for lag (-1 before the first read).
    pub source_end: AtomicI64,
    /// This slot's session of the partition's offset map: every
    /// acknowledged (source, target) offset pair is recorded there, in
    /// order, for offset translation.
    offsets: Option<SessionHandle>,
    /// `Resolution::copied_until` while a resolution is pending, -1 when
    /// none: read on the hot path without the lock.
    pending_until: AtomicI64,
    /// Where resolved (skipped or dead-lettered) records are counted.
    skips: Option<Arc<SkipLedger>>,
    /// Under exactly-once: the watermark as of the slot's last committed
    /// transaction, which is where the partition resumes. Acknowledged
    /// records past it are not on the target for a `read_committed` reader
    /// until their transaction commits. `None` under at-least-once.
    committed: Option<AtomicI64>,
}

/// What a delivery report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub source_offset: i64,
    pub bytes: u32,
}

impl PartitionSlot {
    pub fn new(topic: Arc<str>, partition: i32, target_topic: Arc<str>, start_offset: i64) -> Self {
        Self {
            topic,
            partition,
            target_topic,
            state: Mutex::new(SlotState {
                in_flight: VecDeque::new(),
                next_unhandled: start_offset,
                failure: None,
                resolution: None,
                acked_past_failure: AckedPastFailure {
                    end: start_offset,
                    growing: false,
                },
            }),
            fenced: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            records_acked: AtomicU64::new(0),
            bytes_acked: AtomicU64::new(0),
            last_target_offset: AtomicI64::new(-1),
            last_timestamp_ms: AtomicI64::new(-1),
            source_end: AtomicI64::new(-1),
            offsets: None,
            on_failure: None,
            pending_until: AtomicI64::new(-1),
            skips: None,
            committed: None,
        }
    }

    /// Copies through a transaction: the partition resumes from what was
    /// committed, starting at its start offset.
    pub fn with_transactions(mut self) -> Self {
        let start = self.state().next_unhandled;
        self.committed = Some(AtomicI64::new(start));
        self
    }

    /// Whether records are copied through a transaction.
    pub fn is_transactional(&self) -> bool {
        self.committed.is_some()
    }

    /// The slot's transaction committed everything up to `watermark`.
    pub fn committed_to(&self, watermark: i64) {
        if let Some(c) = &self.committed {
            c.fetch_max(watermark, Ordering::AcqRel);
        }
    }

    /// The partition's offset-map session, if it feeds one.
    pub(crate) fn offsets(&self) -> Option<&SessionHandle> {
        self.offsets.as_ref()
    }

    /// The slot's transaction aborted (or could not commit): everything
    /// since the last commit is gone from the target for a
    /// `read_committed` reader, so the partition stops and resumes from
    /// its committed watermark.
    pub fn fail_transaction(&self, cause: String) {
        let committed = self.watermark();
        {
            let mut s = self.state();
            if s.failure.is_none() {
                s.acked_past_failure = AckedPastFailure::after(committed, false);
                s.failure = Some(PartitionFailure {
                    offset: committed,
                    cause,
                    refusal: None,
                });
            }
        }
        if let Some(offsets) = &self.offsets {
            offsets.abort_staged();
        }
        self.mark_failed();
    }

    /// The record at `resolution.offset` is resolved by `on_record_error`
    /// when it comes, not produced again.
    pub fn with_resolution(self, resolution: Resolution) -> Self {
        self.pending_until.store(
            resolution.copied_until.max(resolution.offset + 1),
            Ordering::Relaxed,
        );
        self.state().resolution = Some(resolution);
        self
    }

    /// Counts the records this slot resolves into `skips`.
    pub fn with_skip_ledger(mut self, skips: Arc<SkipLedger>) -> Self {
        self.skips = Some(skips);
        self
    }

    /// What to do with the record at `offset` instead of copying it, while
    /// a refusal is being resolved: the refused record itself, or one after
    /// it that the target already took. `None`: copy it as usual.
    pub fn pending(&self, offset: i64) -> Option<Pending> {
        let until = self.pending_until.load(Ordering::Relaxed);
        if offset >= until {
            if until >= 0 {
                // Past it all (a record the source no longer holds is
                // simply never resolved): back to the lock-free path.
                self.pending_until.store(-1, Ordering::Relaxed);
                self.state().resolution = None;
            }
            return None;
        }
        let mut s = self.state();
        match &s.resolution {
            Some(r) if offset < r.offset => None,
            Some(r) if offset == r.offset => s.resolution.take().map(Pending::Refused),
            _ => Some(Pending::AlreadyCopied),
        }
    }

    /// The end (exclusive) of the records right after the failed one that
    /// the target acknowledged nonetheless; the failed offset + 1 if none.
    pub fn acknowledged_past_failure(&self) -> i64 {
        self.state().acked_past_failure.end
    }

    /// A refused record was left out (`on_record_error = "skip"`): progress
    /// moves past it, and the offset map no longer vouches for the offsets
    /// around it.
    pub fn skip_refused(&self, resolution: &Resolution) {
        let mut s = self.state();
        s.next_unhandled = resolution.offset + 1;
        self.record_resolved(resolution, "skip");
    }

    /// A refused record's copy went to the dead-letter topic; it is resolved
    /// once acknowledged there.
    pub fn on_produced_dead_letter(&self, resolution: Resolution, bytes: u32) {
        let mut s = self.state();
        s.next_unhandled = resolution.offset + 1;
        s.in_flight.push_back(InFlight {
            offset: resolution.offset,
            bytes,
            dead_letter: Some(resolution),
        });
    }

    /// Counts a resolved record and breaks the offset map's chain there: a
    /// translation must not claim that the record exists on the target, nor
    /// that nothing lies between its neighbours' copies. Called under the
    /// slot's lock, in delivery order.
    fn record_resolved(&self, resolution: &Resolution, action: &'static str) {
        if let Some(offsets) = &self.offsets {
            offsets.on_unreplicated();
        }
        if let Some(skips) = &self.skips {
            skips.record(
                &self.topic,
                self.partition,
                resolution.offset,
                resolution.refusal,
            );
        }
        tracing::warn!(
            topic = %self.topic,
            partition = self.partition,
            offset = resolution.offset,
            action,
            cause = %resolution.cause,
            "record refused by the target resolved by on_record_error"
        );
    }

    /// Wakes `notify` when this partition fails.
    pub fn with_failure_notify(mut self, notify: Arc<Notify>) -> Self {
        self.on_failure = Some(notify);
        self
    }

    fn mark_failed(&self) {
        self.failed.store(true, Ordering::Release);
        if let Some(n) = &self.on_failure {
            // A stored permit covers a task that is not waiting yet.
            n.notify_one();
        }
    }

    /// Feeds this slot's acknowledgements into a session of the partition's
    /// offset map (see `checkpoints`).
    pub fn with_offsets(mut self, session: SessionHandle) -> Self {
        self.offsets = Some(session);
        self
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        crate::clock::lock(&self.state)
    }

    /// A record was handed to the producer.
    pub fn on_produced(&self, source_offset: i64, bytes: u32) {
        let mut s = self.state();
        s.in_flight.push_back(InFlight {
            offset: source_offset,
            bytes,
            dead_letter: None,
        });
        s.next_unhandled = source_offset + 1;
    }

    /// A record was deliberately not copied (cycle protection): it counts as
    /// done once everything before it is acknowledged.
    pub fn on_skipped(&self, source_offset: i64) {
        self.state().next_unhandled = source_offset + 1;
    }

    /// A delivery report arrived for the oldest in-flight record.
    /// Returns what was released, so the flow can return its bytes.
    pub fn on_delivered(&self, result: Result<Acknowledged, DeliveryError>) -> Option<Delivered> {
        let mut s = self.state();
        let InFlight {
            offset: source_offset,
            bytes,
            dead_letter,
        } = s.in_flight.pop_front()?;
        match result {
            Ok(_) if dead_letter.is_some() => {
                if let (None, Some(resolution)) = (&s.failure, &dead_letter) {
                    self.record_resolved(resolution, "dead-letter");
                }
            }
            Ok(Acknowledged {
                target_offset,
                timestamp_ms,
            }) => {
                if s.failure.is_some() && s.acked_past_failure.growing {
                    let end = s.acked_past_failure.end.max(source_offset + 1);
                    s.acked_past_failure.end = end;
                }
                if s.failure.is_none() {
                    self.records_acked.fetch_add(1, Ordering::Relaxed);
                    self.bytes_acked
                        .fetch_add(u64::from(bytes), Ordering::Relaxed);
                    self.last_target_offset
                        .store(target_offset, Ordering::Relaxed);
                    self.last_timestamp_ms
                        .store(timestamp_ms, Ordering::Relaxed);
                    // After a failure the records that follow sit beyond a
                    // hole the next task re-copies: not facts to map.
                    if let Some(offsets) = &self.offsets {
                        offsets.on_ack(source_offset, target_offset);
                    }
                }
            }
            Err(error) => {
                // Keep the first failure: progress must stop at the oldest
                // unacknowledged record, whatever happens after it.
                match s.failure {
                    None => s.acked_past_failure = AckedPastFailure::after(source_offset, true),
                    Some(_) => s.acked_past_failure.growing = false,
                }
                if s.failure.is_none() {
                    s.failure = Some(PartitionFailure {
                        offset: source_offset,
                        // The dead-letter topic refusing the copy is not the
                        // record's refusal: stall rather than resolve again.
                        refusal: error.refusal.filter(|_| dead_letter.is_none()),
                        cause: match &dead_letter {
                            Some(_) => {
                                format!("writing to the dead-letter topic failed: {}", error.cause)
                            }
                            None => error.cause,
                        },
                    });
                }
                self.mark_failed();
            }
        }
        Some(Delivered {
            source_offset,
            bytes,
        })
    }

    /// The consumer has moved past `position` (it skips transaction markers
    /// and aborted records without handing them over): everything before it
    /// has been produced or skipped, so it is handled.
    pub fn advance_to(&self, position: i64) {
        let mut s = self.state();
        if position > s.next_unhandled {
            s.next_unhandled = position;
        }
    }

    /// Whether the source holds offsets this slot has not handled yet, as
    /// of the last end-offset read: records still to come, or transaction
    /// markers the consumer skipped silently (see `advance_to`).
    pub fn behind_source_end(&self) -> bool {
        self.state().next_unhandled < self.source_end.load(Ordering::Relaxed)
    }

    /// The next source offset to copy if the process stopped now: under
    /// exactly-once the committed watermark, else the acknowledged one.
    pub fn watermark(&self) -> i64 {
        match &self.committed {
            Some(c) => c.load(Ordering::Acquire),
            None => self.acknowledged_watermark(),
        }
    }

    /// The first source offset not yet acknowledged (nor deliberately
    /// skipped), or the failed one.
    pub fn acknowledged_watermark(&self) -> i64 {
        let s = self.state();
        let pending = s.in_flight.front().map_or(s.next_unhandled, |r| r.offset);
        match &s.failure {
            Some(f) => f.offset.min(pending),
            None => pending,
        }
    }

    /// Records produced but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight.len()
    }

    pub fn failure(&self) -> Option<PartitionFailure> {
        self.state().failure.clone()
    }

    /// A produce call failed before the record left the process: take back
    /// the entry `on_produced` queued (only the pump pushes, so it is the
    /// last one) and stop the partition there.
    pub fn fail_local(&self, source_offset: i64, error: impl Into<DeliveryError>) -> Option<u32> {
        let error = error.into();
        let mut s = self.state();
        let bytes = match s.in_flight.back() {
            Some(r) if r.offset == source_offset => {
                let b = r.bytes;
                s.in_flight.pop_back();
                Some(b)
            }
            _ => None,
        };
        if s.failure.is_none() {
            s.acked_past_failure = AckedPastFailure::after(source_offset, false);
            s.failure = Some(PartitionFailure {
                offset: source_offset,
                cause: error.cause,
                refusal: error.refusal,
            });
        }
        self.mark_failed();
        bytes
    }

    /// Lock-free check for the hot path: has this partition stopped?
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(target_offset: i64, timestamp_ms: i64) -> Result<Acknowledged, DeliveryError> {
        Ok(Acknowledged {
            target_offset,
            timestamp_ms,
        })
    }

    fn slot(start: i64) -> PartitionSlot {
        PartitionSlot::new("t".into(), 0, "src.t".into(), start)
    }

    #[test]
    fn watermark_is_first_unacknowledged() {
        let s = slot(100);
        assert_eq!(s.watermark(), 100);
        for o in 100..105 {
            s.on_produced(o, 10);
        }
        assert_eq!(s.watermark(), 100, "nothing acknowledged yet");
        s.on_delivered(acked(0, 1));
        s.on_delivered(acked(1, 1));
        assert_eq!(s.watermark(), 102);
        for t in 2..5 {
            s.on_delivered(acked(t, 1));
        }
        assert_eq!(s.watermark(), 105);
        assert_eq!(s.records_acked.load(Ordering::Relaxed), 5);
        assert_eq!(s.bytes_acked.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn failure_freezes_progress_even_if_later_records_succeed() {
        let s = slot(0);
        for o in 0..4 {
            s.on_produced(o, 1);
        }
        s.on_delivered(acked(0, 0));
        s.on_delivered(Err("MSG_SIZE_TOO_LARGE".into()));
        s.on_delivered(acked(1, 0));
        s.on_delivered(acked(2, 0));
        assert_eq!(s.watermark(), 1);
        assert_eq!(s.failure().unwrap().offset, 1);
    }

    /// The topic task no longer polls its partitions: a failure, refused
    /// by the target or before the record left the process, must wake it,
    /// even when it was not waiting yet.
    #[tokio::test]
    async fn a_failure_wakes_the_topic_task() {
        async fn woken(notify: &Notify) -> bool {
            tokio::time::timeout(std::time::Duration::from_millis(200), notify.notified())
                .await
                .is_ok()
        }
        let notify = Arc::new(Notify::new());
        let s = slot(0).with_failure_notify(notify.clone());
        s.on_produced(0, 1);
        s.on_delivered(acked(0, 0));
        assert!(!woken(&notify).await, "an acknowledgement wakes nobody");

        s.on_produced(1, 1);
        s.on_delivered(Err("TOPIC_AUTHORIZATION_FAILED".into()));
        assert!(woken(&notify).await, "a refused record wakes the task");

        let local = slot(5).with_failure_notify(notify.clone());
        local.on_produced(5, 1);
        local.fail_local(5, "queue full for too long");
        assert!(woken(&notify).await, "a local failure wakes the task");
        assert!(local.is_failed());
    }

    /// A record the target refused and `on_record_error` resolved is not on
    /// the target: the offset map must not translate its offset exactly,
    /// unlike an offset the consumer passed over (transaction marker), and
    /// progress moves past it only once it is resolved.
    #[tokio::test]
    async fn a_resolved_refusal_breaks_exact_translation_and_then_moves_progress() {
        use crate::checkpoints::OffsetRegistry;
        use ferry_checkpoint::{SyncReplay, Translation};

        let (registry, _syncs) = OffsetRegistry::new();
        registry.install_history(SyncReplay::default());
        let topic: Arc<str> = Arc::from("orders");
        let refused = |offset| Resolution {
            offset,
            refusal: Refusal::TooLarge,
            cause: "Broker: Message size too large".into(),
            copied_until: offset + 1,
        };
        let ledger = Arc::new(SkipLedger::default());

        // Control: offset 1 never reached the producer (a marker).
        let marker = slot(0).with_offsets(registry.attach(&topic, 0, false));
        marker.on_produced(0, 1);
        marker.on_delivered(acked(0, 1));
        marker.on_produced(2, 1);
        marker.on_delivered(acked(1, 1));
        assert_eq!(registry.translate("orders", 0, 1), Translation::Exact(1));

        // Skipped: offset 1 resolved when the consumer hands it over.
        let skipping = PartitionSlot::new(topic.clone(), 1, "src.orders".into(), 0)
            .with_offsets(registry.attach(&topic, 1, false))
            .with_skip_ledger(ledger.clone())
            .with_resolution(refused(1));
        assert_eq!(skipping.pending(0), None);
        skipping.on_produced(0, 1);
        skipping.on_delivered(acked(0, 1));
        let Some(Pending::Refused(resolution)) = skipping.pending(1) else {
            panic!("offset 1 is resolved");
        };
        skipping.skip_refused(&resolution);
        assert_eq!(skipping.pending(2), None);
        assert_eq!(skipping.watermark(), 2);
        skipping.on_produced(2, 1);
        skipping.on_delivered(acked(1, 1));
        assert_eq!(registry.translate("orders", 1, 0), Translation::Exact(0));
        assert_eq!(
            registry.translate("orders", 1, 1),
            Translation::Conservative(1)
        );
        assert_eq!(registry.translate("orders", 1, 2), Translation::Exact(1));

        // Dead-lettered: progress waits for the dead-letter acknowledgement,
        // whose offset (in another topic) is not a fact of this partition.
        let dead = PartitionSlot::new(topic.clone(), 2, "src.orders".into(), 1)
            .with_offsets(registry.attach(&topic, 2, false))
            .with_skip_ledger(ledger.clone())
            .with_resolution(refused(1));
        let Some(Pending::Refused(resolution)) = dead.pending(1) else {
            panic!("offset 1 is resolved");
        };
        dead.on_produced_dead_letter(resolution, 5);
        assert_eq!(dead.watermark(), 1, "not resolved before acknowledged");
        dead.on_delivered(acked(70, 1));
        assert_eq!(dead.watermark(), 2);
        dead.on_produced(2, 1);
        dead.on_delivered(acked(0, 1));
        assert_eq!(dead.records_acked.load(Ordering::Relaxed), 1);
        assert!(!registry.translate("orders", 2, 1).is_exact());
        assert_eq!(registry.translate("orders", 2, 2), Translation::Exact(0));

        let skips = ledger.snapshot();
        for p in [1, 2] {
            let entry = &skips[&("orders".to_string(), p)];
            assert_eq!((entry.total(), entry.last_offset), (1, 1));
            assert_eq!(entry.by_reason.get("too_large"), Some(&1));
        }
    }

    /// Records the target took after refusing one are not copied again
    /// once the refused one is resolved.
    #[test]
    fn records_acknowledged_after_a_refusal_are_not_copied_again() {
        let failed = slot(0);
        for o in 0..5 {
            failed.on_produced(o, 1);
        }
        failed.on_delivered(acked(0, 1));
        failed.on_delivered(Err(DeliveryError {
            cause: "Broker: Message size too large".into(),
            refusal: Some(Refusal::TooLarge),
        }));
        failed.on_delivered(acked(1, 1));
        failed.on_delivered(acked(2, 1));
        assert_eq!(failed.acknowledged_past_failure(), 4);
        failed.on_delivered(Err("timed out".into()));
        assert_eq!(
            failed.acknowledged_past_failure(),
            4,
            "a second failure ends the run"
        );

        let next = slot(1).with_resolution(Resolution {
            offset: 1,
            refusal: Refusal::TooLarge,
            cause: String::new(),
            copied_until: 4,
        });
        assert!(matches!(next.pending(1), Some(Pending::Refused(_))));
        assert_eq!(next.pending(2), Some(Pending::AlreadyCopied));
        assert_eq!(next.pending(3), Some(Pending::AlreadyCopied));
        assert_eq!(next.pending(4), None);
        assert_eq!(next.pending(2), None, "resolved for good");
    }

    #[test]
    fn skipped_records_count_once_earlier_ones_are_acknowledged() {
        let s = slot(0);
        s.on_produced(0, 1);
        s.on_skipped(1);
        assert_eq!(s.watermark(), 0);
        s.on_delivered(acked(0, 0));
        assert_eq!(s.watermark(), 2);
        s.on_skipped(2);
        assert_eq!(s.watermark(), 3);
    }

    #[test]
    fn offsets_with_gaps_resume_after_the_last_handled() {
        // Transaction markers leave gaps in source offsets.
        let s = slot(0);
        s.on_produced(0, 1);
        s.on_produced(5, 1);
        s.on_delivered(acked(0, 0));
        assert_eq!(s.watermark(), 5);
        s.on_delivered(acked(1, 0));
        assert_eq!(s.watermark(), 6);
    }
}
