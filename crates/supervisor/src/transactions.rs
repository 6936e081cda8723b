//! Exactly-once delivery: one transactional producer per slot.
//!
//! A slot's records, the progress of its partitions and the offset syncs
//! describing them go to the target in one Kafka transaction, so a
//! `read_committed` reader sees all of them or none, and a slot always
//! resumes exactly where its last commit left it:
//!
//! - **Fencing.** The transactional id is `<prefix>.<source>-<target>.<slot>`.
//!   A new owner's `InitTransactions` aborts whatever transaction the
//!   previous owner left open and fences its producer: a paused or cut-off
//!   process can never commit for the slot again. Progress is read only
//!   after that, so it includes everything the previous owner committed.
//! - **Commits.** Each slot commits `transaction_interval` after its last
//!   commit, and earlier once half of the lane's in-flight window waits. A
//!   commit runs on a thread of its own (`commit_in_background`); the
//!   lane's pump goes on feeding the other slots and holds the committing
//!   slot's records back until it is done. On revocation and at shutdown
//!   the pump commits every slot at once and waits.
//! - **Failures.** A transaction that cannot commit is aborted, and the
//!   slot's partitions resume from their committed progress. A fenced
//!   producer gives its slot up (the group moves slots only between live
//!   members, so another Ferry process owns it), and is counted.
//!
//! Acknowledgements of a transaction's records update the partition's ack
//! tracker as under at-least-once; its offset-map facts wait in the
//! partition's session until the commit (see `SessionHandle::stage_syncs`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_config::Cluster;
use ferry_http::{FlowMetrics, TransactionResult};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};

use crate::checkpoints::link_headers;
use crate::clients::{client_config, Role};
use crate::progress;
use crate::pump::{DeliveryContext, TargetProducer};
use crate::tracker::PartitionSlot;
use crate::EngineError;

/// How long one commit, abort or `InitTransactions` may take. Commits
/// normally take milliseconds; this bounds a target that stopped
/// answering, after which the transaction is aborted and copied again.
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a slot's transactions write besides the copied records.
#[derive(Debug, Clone)]
pub(crate) struct TransactionTopics {
    /// The flow's progress topic on the target.
    pub progress: String,
    /// The flow's offset-syncs topic on the target.
    pub syncs: String,
}

/// The health of a slot's producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Health {
    Usable = 0,
    /// Another process initialised the slot's transactional id.
    Fenced = 1,
    /// A fatal error other than fencing: a new producer is needed.
    Broken = 2,
}

/// What one commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// Nothing was open and no progress moved.
    Idle,
    Committed,
    /// Aborted (or fenced, or broken): the partitions were failed with the
    /// cause and resume from their committed progress.
    Failed(TransactionResult),
}

/// Wakes a commit waiting for delivery reports (see `SlotTransactions::drain`).
#[derive(Debug, Default)]
struct ReportsServed {
    lock: Mutex<()>,
    signal: Condvar,
}

/// The transactional producer of one slot, with its poll thread.
pub(crate) struct SlotTransactions {
    pub slot: u16,
    transactional_id: String,
    cluster: String,
    producer: Arc<TargetProducer>,
    /// The slot's epoch (see `membership`), written into its progress.
    epoch: AtomicI64,
    /// A transaction is open: `begin_transaction` was called since the
    /// last commit or abort.
    open: AtomicBool,
    /// A commit runs on its own thread: the pump holds the slot's records
    /// back meanwhile (the producer takes none while it commits).
    committing: AtomicBool,
    health: AtomicU8,
    /// The delivery opaque of the transaction's own records (progress and
    /// syncs), which no ack tracker waits for.
    own_records: Arc<PartitionSlot>,
    /// Signalled by the poll thread after each batch of delivery reports.
    reports_served: Arc<ReportsServed>,
    stop_poll: Arc<AtomicBool>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SlotTransactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTransactions")
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl SlotTransactions {
    /// Creates the slot's producer and initialises its transactions, which
    /// fences any earlier owner of the slot. `warm_topic` is a topic on the
    /// target whose metadata the producer asks for first. Blocking: call it
    /// off the async workers.
    pub fn start(
        target: &Cluster,
        transactional_id: String,
        slot: u16,
        context: DeliveryContext,
        warm_topic: &str,
    ) -> Result<Self, EngineError> {
        let started = Instant::now();
        let mut config = client_config(target, Role::TargetProducer, &transactional_id);
        config.set("transactional.id", &transactional_id);
        if target.client.get("retry.backoff.ms").is_none() {
            // A transaction's first write to a partition waits until the
            // coordinator finished the previous transaction's markers
            // (CONCURRENT_TRANSACTIONS), retried after this backoff: at
            // librdkafka's 100 ms every commit cycle would take that long.
            config.set("retry.backoff.ms", "10");
        }
        let producer: TargetProducer = config
            .create_with_context(context)
            .map_err(|e| EngineError::client_creation(target, &e))?;
        let producer = Arc::new(producer);
        let stop_poll = Arc::new(AtomicBool::new(false));
        let reports_served = Arc::new(ReportsServed::default());
        let poller = {
            let (producer, stop) = (producer.clone(), stop_poll.clone());
            let served = reports_served.clone();
            std::thread::Builder::new()
                .name(format!("txn {transactional_id}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.poll(crate::internal::ACK_POLL);
                        served.signal.notify_all();
                    }
                })
                .map_err(|e| EngineError::Internal(format!("cannot start thread: {e}")))?
        };
        let txns = SlotTransactions {
            slot,
            cluster: target.name.clone(),
            producer,
            epoch: AtomicI64::new(-1),
            open: AtomicBool::new(false),
            committing: AtomicBool::new(false),
            health: AtomicU8::new(Health::Usable as u8),
            own_records: Arc::new(PartitionSlot::new(Arc::from(""), -1, Arc::from(""), 0)),
            reports_served,
            stop_poll,
            poller: Mutex::new(Some(poller)),
            transactional_id,
        };
        let created = started.elapsed();
        // librdkafka looks for the transaction coordinator through a broker
        // that is up, and when none is it looks again only 500 ms later. A
        // new producer has none: its first metadata answer comes through
        // the bootstrap connection, which librdkafka then closes (KIP-899)
        // while it connects to the brokers it learned. So the metadata is
        // asked for twice: the second answer needs a learned broker up, and
        // fencing the slot then takes milliseconds. Failing here is no
        // error: `init_transactions` reports what it meets.
        for _ in 0..2 {
            let _ = txns
                .producer
                .client()
                .fetch_metadata(Some(warm_topic), TRANSACTION_TIMEOUT);
        }
        let connected = started.elapsed();
        txns.producer
            .init_transactions(TRANSACTION_TIMEOUT)
            .map_err(|e| EngineError::Topic {
                cluster: txns.cluster.clone(),
                topic: format!("transactional id {}", txns.transactional_id),
                cause: format!(
                    "cannot initialise transactions for slot {slot}: {}",
                    txns.producer.context().scrub(&e.to_string())
                ),
            })?;
        tracing::debug!(
            slot,
            ?created,
            ?connected,
            took = ?started.elapsed(),
            "transactions initialised"
        );
        Ok(txns)
    }

    /// The delivery opaque marking records the transaction writes itself.
    pub fn is_own_record(slot: &PartitionSlot) -> bool {
        slot.partition < 0
    }

    /// Whether records went into a transaction since the last commit.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Whether a commit is running on another thread.
    pub fn is_committing(&self) -> bool {
        self.committing.load(Ordering::Acquire)
    }

    /// Commits on a thread of its own: the caller goes on copying the
    /// other slots' records, and holds this slot's back until
    /// `is_committing` turns false. `finished` runs on that thread after
    /// the commit, once the flag is down.
    pub fn commit_in_background(
        self: &Arc<Self>,
        partitions: Vec<Arc<PartitionSlot>>,
        topics: TransactionTopics,
        metrics: Option<FlowMetrics>,
        finished: impl FnOnce(CommitOutcome) + Send + 'static,
    ) {
        self.committing.store(true, Ordering::Release);
        let txns = self.clone();
        let commit = move || {
            let outcome = txns.commit(&partitions, &topics, metrics.as_ref());
            txns.committing.store(false, Ordering::Release);
            finished(outcome);
        };
        // A thread per commit: a few per second per slot, and no thread
        // sits idle for slots that commit rarely.
        let spawned = std::thread::Builder::new()
            .name(format!("commit {}", self.slot))
            .spawn(commit);
        if let Err(e) = spawned {
            // Never happens short of exhausted resources; the next commit
            // (or the slot's restart after the abort) tries again.
            tracing::error!(cluster = %self.cluster, slot = self.slot, error = %e, "cannot start a commit thread");
            self.committing.store(false, Ordering::Release);
        }
    }

    pub fn set_epoch(&self, epoch: i64) {
        self.epoch.store(epoch, Ordering::Release);
    }

    pub fn producer(&self) -> &TargetProducer {
        &self.producer
    }

    fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            0 => Health::Usable,
            1 => Health::Fenced,
            _ => Health::Broken,
        }
    }

    /// Why records cannot be written through this producer, if they cannot.
    pub fn unusable(&self) -> Option<String> {
        match self.health() {
            Health::Usable => None,
            Health::Fenced => Some(format!(
                "slot {} was fenced by another Ferry process (transactional id {})",
                self.slot, self.transactional_id
            )),
            Health::Broken => Some(format!(
                "the transactional producer of slot {} failed and is being replaced",
                self.slot
            )),
        }
    }

    /// Whether a new producer should replace this one (not when fenced:
    /// that would fence the slot's owner in turn).
    pub fn is_broken(&self) -> bool {
        self.health() == Health::Broken
    }

    /// Opens a transaction if none is: records may be written then.
    pub fn ensure_open(&self) -> Result<(), String> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(why) = self.unusable() {
            return Err(why);
        }
        match self.producer.begin_transaction() {
            Ok(()) => {
                self.open.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                self.classify(&e);
                Err(self.describe(&e))
            }
        }
    }

    fn describe(&self, e: &KafkaError) -> String {
        format!(
            "transaction of slot {} on cluster {}: {}",
            self.slot,
            self.cluster,
            self.producer.context().scrub(&e.to_string())
        )
    }

    /// Marks the producer fenced or broken after a fatal error; true when
    /// the error was fatal.
    fn classify(&self, e: &KafkaError) -> bool {
        let fatal = match e {
            KafkaError::Transaction(t) => t.is_fatal(),
            _ => false,
        };
        let fenced = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            )
        );
        if fenced {
            if self.health.swap(Health::Fenced as u8, Ordering::AcqRel) != Health::Fenced as u8 {
                tracing::error!(
                    cluster = %self.cluster,
                    slot = self.slot,
                    transactional_id = %self.transactional_id,
                    error = %self.producer.context().scrub(&e.to_string()),
                    "fenced by another Ferry process: the slot is given up; its partitions stay stopped until the group assigns the slot to this process again"
                );
            }
            return true;
        }
        if fatal {
            self.health
                .compare_exchange(
                    Health::Usable as u8,
                    Health::Broken as u8,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .ok();
            tracing::error!(
                cluster = %self.cluster,
                slot = self.slot,
                error = %self.producer.context().scrub(&e.to_string()),
                "the slot's transactional producer failed fatally; it is replaced when its partitions restart"
            );
        }
        fatal
    }

    /// Commits the open transaction of the slot, with the progress and
    /// offset syncs of `partitions` (the slot's partitions on this lane).
    /// Blocking: runs on the pump's threads.
    pub fn commit(
        &self,
        partitions: &[Arc<PartitionSlot>],
        topics: &TransactionTopics,
        metrics: Option<&FlowMetrics>,
    ) -> CommitOutcome {
        if self.unusable().is_some() {
            return CommitOutcome::Idle;
        }
        let started = Instant::now();
        // Every record of the transaction answered: the watermarks below
        // include all of them.
        if let Err(e) = self.drain() {
            return self.abort(partitions, &e, metrics);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut moved = Vec::with_capacity(partitions.len());
        for part in partitions {
            let acknowledged = part.acknowledged_watermark();
            let syncs = part.offsets().and_then(|o| o.stage_syncs());
            let has_syncs = syncs.as_ref().is_some_and(|s| !s.syncs.is_empty());
            if acknowledged != part.watermark() || has_syncs {
                moved.push((part, acknowledged, syncs));
            }
        }
        if moved.is_empty() && !self.open.load(Ordering::Acquire) {
            return CommitOutcome::Idle;
        }
        if let Err(why) = self.ensure_open() {
            return self.give_up(partitions, &why, metrics);
        }
        for (part, acknowledged, syncs) in &moved {
            let key = progress::encode_key(&part.topic, part.partition);
            let value = progress::encode_value(*acknowledged, epoch);
            let record = BaseRecord::with_opaque_to(&topics.progress, self.own_records.clone())
                .key(key.as_bytes())
                .payload(value.as_bytes());
            if let Err(e) = self.send(record) {
                return self.abort(partitions, &e, metrics);
            }
            for sync in syncs.iter().flat_map(|s| s.syncs.iter()) {
                let Ok(encoded) = sync.encode(&part.topic, part.partition) else {
                    continue; // a topic name too long for MM2's format
                };
                let mut record =
                    BaseRecord::with_opaque_to(&topics.syncs, self.own_records.clone())
                        .partition(0)
                        .key(&encoded.key[..])
                        .payload(&encoded.value[..]);
                if let Some(headers) = link_headers(&encoded) {
                    record = record.headers(headers);
                }
                if let Err(e) = self.send(record) {
                    return self.abort(partitions, &e, metrics);
                }
            }
        }
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match self.producer.commit_transaction(TRANSACTION_TIMEOUT) {
                Ok(()) => break,
                // The broker did not answer in time, say: committing again
                // is what librdkafka asks for.
                Err(KafkaError::Transaction(t))
                    if t.is_retriable() && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return self.abort(partitions, &e, metrics),
            }
        }
        self.open.store(false, Ordering::Release);
        for (part, acknowledged, syncs) in moved {
            part.committed_to(acknowledged);
            if let (Some(offsets), Some(syncs)) = (part.offsets(), syncs) {
                offsets.commit_staged(syncs);
            }
        }
        if let Some(m) = metrics {
            m.transactions().ended(TransactionResult::Committed);
            m.transactions()
                .observe_commit(started.elapsed().as_secs_f64());
        }
        CommitOutcome::Committed
    }

    /// Waits until every record handed to the producer was acknowledged and
    /// its report served (by the poll thread), sending lingering batches at
    /// once. rdkafka's own `flush` polls in rounds of up to 100 ms, on a
    /// queue the poll thread serves first: most commits would wait a full
    /// round for nothing.
    fn drain(&self) -> Result<(), KafkaError> {
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            // A zero-timeout flush: expires `linger.ms` for what is queued,
            // and tells whether anything is still in flight.
            match self.producer.flush(Duration::ZERO) {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            let guard = crate::clock::lock(&self.reports_served.lock);
            // Bounded: a report served between the flush and this wait
            // is not missed for long.
            let _ = self
                .reports_served
                .signal
                .wait_timeout(guard, Duration::from_millis(5));
        }
    }

    /// Hands one of the transaction's own records to the producer, waiting
    /// while its queue is full.
    fn send(
        &self,
        mut record: BaseRecord<'_, [u8], [u8], Arc<PartitionSlot>>,
    ) -> Result<(), KafkaError> {
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Aborts the open transaction (unless the producer is fenced or
    /// broken), and stops the partitions: they resume from their committed
    /// progress.
    fn abort(
        &self,
        partitions: &[Arc<PartitionSlot>],
        error: &KafkaError,
        metrics: Option<&FlowMetrics>,
    ) -> CommitOutcome {
        self.classify(error);
        self.give_up(partitions, &self.describe(error), metrics)
    }

    /// Aborts what is open, if the producer still can, and fails the
    /// partitions with `cause`.
    fn give_up(
        &self,
        partitions: &[Arc<PartitionSlot>],
        cause: &str,
        metrics: Option<&FlowMetrics>,
    ) -> CommitOutcome {
        let mut result = TransactionResult::Aborted;
        if self.unusable().is_none() && self.open.load(Ordering::Acquire) {
            if let Err(e) = self.producer.abort_transaction(TRANSACTION_TIMEOUT) {
                self.classify(&e);
            }
        }
        if self.health() == Health::Fenced {
            result = TransactionResult::Fenced;
        }
        self.open.store(false, Ordering::Release);
        tracing::warn!(
            cluster = %self.cluster,
            slot = self.slot,
            partitions = partitions.len(),
            cause,
            "transaction not committed; the slot's partitions resume from their committed progress"
        );
        for part in partitions {
            part.fail_transaction(format!("transaction not committed: {cause}"));
        }
        if let Some(m) = metrics {
            m.transactions().ended(result);
            if result == TransactionResult::Fenced {
                m.membership().fenced(1);
            }
        }
        CommitOutcome::Failed(result)
    }
}

impl Drop for SlotTransactions {
    fn drop(&mut self) {
        self.stop_poll.store(true, Ordering::Release);
        if let Some(poller) = crate::clock::lock(&self.poller).take() {
            let _ = poller.join();
        }
    }
}
