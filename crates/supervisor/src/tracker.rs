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

/// Why a partition stopped moving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFailure {
    /// The first source offset that was not acknowledged.
    pub offset: i64,
    pub cause: String,
}

#[derive(Debug)]
struct SlotState {
    /// (source offset, bytes) produced and not yet acknowledged, in order.
    in_flight: VecDeque<(i64, u32)>,
    /// The offset after the last record produced or deliberately skipped.
    next_unhandled: i64,
    failure: Option<PartitionFailure>,
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
        }
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
        // A panic while holding this lock cannot leave the queue half-updated
        // in a way that matters more than stopping would, so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A record was handed to the producer.
    pub fn on_produced(&self, source_offset: i64, bytes: u32) {
        let mut s = self.state();
        s.in_flight.push_back((source_offset, bytes));
        s.next_unhandled = source_offset + 1;
    }

    /// A record was deliberately not copied (cycle protection): it counts as
    /// done once everything before it is acknowledged.
    pub fn on_skipped(&self, source_offset: i64) {
        self.state().next_unhandled = source_offset + 1;
    }

    /// A delivery report arrived for the oldest in-flight record.
    /// Returns what was released, so the flow can return its bytes.
    pub fn on_delivered(&self, result: Result<(i64, i64), String>) -> Option<Delivered> {
        let mut s = self.state();
        let (source_offset, bytes) = s.in_flight.pop_front()?;
        match result {
            Ok((target_offset, timestamp)) => {
                if s.failure.is_none() {
                    self.records_acked.fetch_add(1, Ordering::Relaxed);
                    self.bytes_acked
                        .fetch_add(u64::from(bytes), Ordering::Relaxed);
                    self.last_target_offset
                        .store(target_offset, Ordering::Relaxed);
                    self.last_timestamp_ms.store(timestamp, Ordering::Relaxed);
                    // After a failure the records that follow sit beyond a
                    // hole the next task re-copies: not facts to map.
                    if let Some(offsets) = &self.offsets {
                        offsets.on_ack(source_offset, target_offset);
                    }
                }
            }
            Err(cause) => {
                // Keep the first failure: progress must stop at the oldest
                // unacknowledged record, whatever happens after it.
                if s.failure.is_none() {
                    s.failure = Some(PartitionFailure {
                        offset: source_offset,
                        cause,
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

    /// The next source offset to copy if the process stopped now.
    pub fn watermark(&self) -> i64 {
        let s = self.state();
        let pending = s.in_flight.front().map_or(s.next_unhandled, |(o, _)| *o);
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
    pub fn fail_local(&self, source_offset: i64, cause: String) -> Option<u32> {
        let mut s = self.state();
        let bytes = match s.in_flight.back() {
            Some((o, b)) if *o == source_offset => {
                let b = *b;
                s.in_flight.pop_back();
                Some(b)
            }
            _ => None,
        };
        if s.failure.is_none() {
            s.failure = Some(PartitionFailure {
                offset: source_offset,
                cause,
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
        s.on_delivered(Ok((0, 1)));
        s.on_delivered(Ok((1, 1)));
        assert_eq!(s.watermark(), 102);
        for t in 2..5 {
            s.on_delivered(Ok((t, 1)));
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
        s.on_delivered(Ok((0, 0)));
        s.on_delivered(Err("MSG_SIZE_TOO_LARGE".into()));
        s.on_delivered(Ok((1, 0)));
        s.on_delivered(Ok((2, 0)));
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
        s.on_delivered(Ok((0, 0)));
        assert!(!woken(&notify).await, "an acknowledgement wakes nobody");

        s.on_produced(1, 1);
        s.on_delivered(Err("TOPIC_AUTHORIZATION_FAILED".into()));
        assert!(woken(&notify).await, "a refused record wakes the task");

        let local = slot(5).with_failure_notify(notify.clone());
        local.on_produced(5, 1);
        local.fail_local(5, "queue full for too long".into());
        assert!(woken(&notify).await, "a local failure wakes the task");
        assert!(local.is_failed());
    }

    #[test]
    fn skipped_records_count_once_earlier_ones_are_acknowledged() {
        let s = slot(0);
        s.on_produced(0, 1);
        s.on_skipped(1);
        assert_eq!(s.watermark(), 0);
        s.on_delivered(Ok((0, 0)));
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
        s.on_delivered(Ok((0, 0)));
        assert_eq!(s.watermark(), 5);
        s.on_delivered(Ok((1, 0)));
        assert_eq!(s.watermark(), 6);
    }
}
