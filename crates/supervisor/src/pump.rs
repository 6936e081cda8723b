//! The data plane of one flow: one source consumer and one target producer,
//! shared by every topic of the flow, each driven by its own OS thread.
//!
//! - The *pump* thread polls the source consumer and hands each record to the
//!   producer, copying key, value and headers once from the borrowed message
//!   into librdkafka's buffer. It stops polling (back-pressure) while the
//!   flow's in-flight bytes are over the cap.
//! - The *delivery* thread polls the producer; delivery reports update the
//!   partition's ack tracker and return the record's bytes to the budget.
//!
//! librdkafka's poll calls block, so neither runs on the async runtime; the
//! per-topic tasks talk to the pump through a bounded channel.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use ferry_config::{Cluster, Flow, OnRecordError, TopicNaming};
use ferry_schemas::{GateView, SchemaIds, Verdict};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::batch::Batcher;
use crate::clients::{client_config, ClusterContext, Role};
use crate::lookups::visible_partitions;
use crate::tracker::{Acknowledged, DeliveryError, PartitionSlot, Pending, Refusal, Resolution};
use crate::transactions::{CommitOutcome, SlotTransactions, TransactionTopics};
use crate::EngineError;

/// Header naming the clusters a record has already been on, oldest first,
/// comma-separated. Written only under identity naming with cycle protection,
/// where topic names alone cannot stop a loop.
pub const PROVENANCE_HEADER: &str = "ferry.provenance";

/// Headers a dead-lettered record carries on top of its own: the source
/// cluster (as the topology names it), topic, partition and offset, and
/// the target's error.
pub const DEAD_LETTER_CLUSTER: &str = "ferry.source.cluster";
pub const DEAD_LETTER_TOPIC: &str = "ferry.source.topic";
pub const DEAD_LETTER_PARTITION: &str = "ferry.source.partition";
pub const DEAD_LETTER_OFFSET: &str = "ferry.source.offset";
pub const DEAD_LETTER_ERROR: &str = "ferry.error";

pub(crate) enum PumpCommand {
    /// Start copying these partitions from the given source offsets.
    Assign(Vec<(Arc<PartitionSlot>, i64)>),
    /// Stop copying these partitions; their slots are fenced.
    Unassign(Vec<Arc<PartitionSlot>>),
}

/// Delivery-report handling for the flow's target producer.
pub(crate) struct DeliveryContext {
    cluster: ClusterContext,
    in_flight_bytes: Arc<AtomicU64>,
    window: Arc<Window>,
    /// Observes source-CreateTime-to-target-ack latency per record.
    metrics: Option<ferry_http::FlowMetrics>,
    clock: BatchClock,
}

/// The wall clock for latency, read once per batch of delivery reports
/// rather than once per record: the delivery thread marks it stale before
/// each poll, and the first report the poll serves reads the clock. Reports
/// of one batch arrive together, so the error is far below a millisecond.
#[derive(Debug, Default)]
struct BatchClock {
    /// Epoch milliseconds; 0 when stale.
    now_ms: std::sync::atomic::AtomicI64,
}

impl BatchClock {
    fn invalidate(&self) {
        self.now_ms.store(0, Ordering::Relaxed);
    }

    fn now_ms(&self) -> i64 {
        let cached = self.now_ms.load(Ordering::Relaxed);
        if cached != 0 {
            return cached;
        }
        let now = crate::clock::now_ms();
        self.now_ms.store(now, Ordering::Relaxed);
        now
    }
}

impl DeliveryContext {
    fn new(
        target: &Cluster,
        in_flight_bytes: &Arc<AtomicU64>,
        window: &Arc<Window>,
        metrics: Option<ferry_http::FlowMetrics>,
    ) -> Self {
        DeliveryContext {
            cluster: ClusterContext::new(target),
            in_flight_bytes: in_flight_bytes.clone(),
            window: window.clone(),
            metrics,
            clock: BatchClock::default(),
        }
    }

    /// Removes secrets from a client error's text.
    pub fn scrub(&self, text: &str) -> String {
        self.cluster.scrub(text)
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.cluster.log(level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason)
    }
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.cluster.generate_oauth_token(config)
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<PartitionSlot>;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: Arc<PartitionSlot>) {
        // A transaction's own progress and sync records: its commit
        // reports how they fared.
        if SlotTransactions::is_own_record(&slot) {
            return;
        }
        let outcome = match result {
            Ok(m) => Ok(Acknowledged {
                target_offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis().unwrap_or(-1),
            }),
            Err((e, _)) => Err(DeliveryError {
                cause: self.cluster.scrub(&e.to_string()),
                refusal: e.rdkafka_error_code().and_then(Refusal::of),
            }),
        };
        let acked = outcome.is_ok();
        if let (Some(metrics), Ok(ack)) = (&self.metrics, &outcome) {
            if ack.timestamp_ms >= 0 {
                let now_ms = self.clock.now_ms();
                metrics.observe_latency((now_ms - ack.timestamp_ms) as f64 / 1000.0);
            }
        }
        if let Some(d) = slot.on_delivered(outcome) {
            if acked {
                self.window.on_acked(u64::from(d.bytes));
            }
            self.in_flight_bytes
                .fetch_sub(u64::from(d.bytes), Ordering::AcqRel);
            // An acknowledged record's bytes stay in the budget until
            // progress covers them (the window frees them then); a failed
            // record's bytes are free now.
            if !acked {
                if let Some(t) = self.window.pump.get() {
                    t.unpark();
                }
            }
        }
    }
}

pub(crate) type TargetProducer = BaseProducer<DeliveryContext>;

/// Bytes acknowledged by the target but not yet covered by persisted
/// progress. They count against the flow's in-flight cap together with the
/// unacknowledged bytes, so a crash (SIGKILL) can re-copy at most
/// `max_in_flight_bytes` worth of records.
///
/// Because of that, progress must be written as often as the cap needs,
/// not only on the flow's timer: at a few hundred MB/s a 64 MiB cap fills
/// between two timed writes and the pump would sit idle waiting for the
/// next one. Once an eighth of the cap is acknowledged but unpersisted, the
/// window asks the flow for a write at once.
#[derive(Debug)]
pub(crate) struct Window {
    acked: AtomicU64,
    persisted: AtomicU64,
    /// The snapshot the latest write started with: what it will cover.
    writing: AtomicU64,
    cap: u64,
    /// Set from the moment a write is asked for until the flow starts it,
    /// so that the delivery thread asks once, not once per record.
    write_requested: AtomicBool,
    write_due: tokio::sync::Notify,
    /// The pump, woken when a write frees budget.
    pump: OnceLock<Thread>,
}

impl Window {
    fn new(cap: u64) -> Self {
        Self {
            acked: AtomicU64::new(0),
            persisted: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            cap,
            write_requested: AtomicBool::new(false),
            write_due: tokio::sync::Notify::new(),
            pump: OnceLock::new(),
        }
    }

    fn on_acked(&self, bytes: u64) {
        let acked = self.acked.fetch_add(bytes, Ordering::AcqRel) + bytes;
        // Bytes a write in flight will cover are not asked for again.
        let covered = self
            .persisted
            .load(Ordering::Acquire)
            .max(self.writing.load(Ordering::Acquire));
        if acked.saturating_sub(covered) >= self.cap / 8
            && !self.write_requested.swap(true, Ordering::AcqRel)
        {
            self.write_due.notify_one();
        }
    }

    /// Resolves when acknowledged bytes call for a progress write before
    /// the flow's timer would make one.
    pub async fn write_due(&self) {
        self.write_due.notified().await
    }

    /// Snapshot taken *before* reading watermarks for a progress write.
    pub fn begin_write(&self) -> u64 {
        self.write_requested.store(false, Ordering::Release);
        let snapshot = self.acked.load(Ordering::Acquire);
        self.writing.fetch_max(snapshot, Ordering::AcqRel);
        snapshot
    }

    /// Everything acknowledged up to `snapshot` is now in persisted progress.
    pub fn persisted_up_to(&self, snapshot: u64) {
        self.persisted.fetch_max(snapshot, Ordering::AcqRel);
        if let Some(pump) = self.pump.get() {
            pump.unpark();
        }
    }

    fn unpersisted(&self) -> u64 {
        self.acked
            .load(Ordering::Acquire)
            .saturating_sub(self.persisted.load(Ordering::Acquire))
    }
}

/// Handle to a running data plane.
pub(crate) struct DataPlane {
    commands: mpsc::Sender<PumpCommand>,
    pub window: Arc<Window>,
    /// Under exactly-once: the transactional producers of the slots this
    /// lane copies, by slot.
    pub transactions: Arc<TransactionRegistry>,
    in_flight_bytes: Arc<AtomicU64>,
    metrics: Option<ferry_http::FlowMetrics>,
    producer: Arc<TargetProducer>,
    /// Partitions per target topic as the producer's metadata shows them.
    producer_view: Batcher<String, usize>,
    /// Partitions per source topic as the source consumer's metadata shows
    /// them; asking also fills the consumer's metadata cache.
    consumer_view: Batcher<String, usize>,
    stop_pump: Arc<AtomicBool>,
    stop_delivery: Arc<AtomicBool>,
    pump: Option<JoinHandle<()>>,
    delivery: Option<JoinHandle<()>>,
}

/// How often a lane that copies nothing commits anyway: progress can move
/// past offsets the source consumer skipped (transaction markers, aborted
/// records) without a record to copy.
const IDLE_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Under exactly-once, the most bytes a lane's producers hold
/// unacknowledged (see `PumpTransactions::queue_cap`): enough to keep the
/// target busy for tens of milliseconds, little enough that a commit's wait
/// for its producer to drain stays short.
const TRANSACTION_QUEUE_BYTES: u64 = 8 << 20;

/// The slots' transactional producers of one lane (exactly-once only).
#[derive(Debug, Default)]
pub(crate) struct TransactionRegistry {
    by_slot: std::sync::Mutex<HashMap<u16, Arc<SlotTransactions>>>,
    /// Epoch milliseconds of the lane's last commit; 0 before any.
    pub last_commit_ms: std::sync::atomic::AtomicI64,
}

impl TransactionRegistry {
    pub fn get(&self, slot: u16) -> Option<Arc<SlotTransactions>> {
        crate::clock::lock(&self.by_slot).get(&slot).cloned()
    }

    pub fn insert(&self, txns: Arc<SlotTransactions>) -> Option<Arc<SlotTransactions>> {
        crate::clock::lock(&self.by_slot).insert(txns.slot, txns)
    }

    pub fn remove(&self, slot: u16) -> Option<Arc<SlotTransactions>> {
        crate::clock::lock(&self.by_slot).remove(&slot)
    }
}

/// How a lane's pump runs transactions (exactly-once only).
///
/// Each slot's producer commits on its own schedule and on its own thread
/// (`SlotTransactions::commit_in_background`), so the pump keeps feeding
/// the other slots while one commits, and holds only that slot's records
/// back (see `Route::backlog`). Commits of different slots drift apart,
/// so the target always has some slot's records to write.
struct PumpTransactions {
    registry: Arc<TransactionRegistry>,
    topics: TransactionTopics,
    interval: Duration,
    /// The flow's slot count, to find a partition's slot.
    slots: u16,
    /// When each slot's last commit finished (or, before its first, a
    /// staggered start), by slot.
    finished_at: HashMap<u16, Instant>,
    /// Producers committing in the background.
    in_commit: Vec<Arc<SlotTransactions>>,
    /// No slot is due before this: the pump looks at the slots only then
    /// (or under pressure).
    next_look: Instant,
    /// The most bytes the lane's producers hold unacknowledged. A commit
    /// waits for its producer's queue to drain, so a short queue keeps
    /// commits short; records fetched meanwhile wait in the budget.
    queue_cap: u64,
    metrics: Option<ferry_http::FlowMetrics>,
}

impl PumpTransactions {
    /// When `txns` commits next: an interval after its last commit while
    /// records wait in its transaction, else (progress alone, past offsets
    /// the source consumer skipped) after the idle interval.
    fn due(&mut self, txns: &SlotTransactions, now: Instant) -> Instant {
        let interval = self.interval;
        let finished = *self.finished_at.entry(txns.slot).or_insert_with(|| {
            // Spread the first commits over an interval: slots that start
            // together would otherwise commit together for good.
            (now + interval.mul_f64(f64::from(txns.slot % 8) / 8.0))
                .checked_sub(interval)
                .unwrap_or(now)
        });
        if txns.is_open() {
            finished + interval
        } else {
            finished + IDLE_COMMIT_INTERVAL.max(interval)
        }
    }
}

/// A partition the pump copies, and the transaction its records go into
/// under exactly-once.
struct Route {
    slot: Arc<PartitionSlot>,
    transactions: Option<Arc<SlotTransactions>>,
    /// Records polled while the slot's transaction commits, in order; they
    /// go out (in a new transaction) once the commit is done. Only the
    /// pump thread touches it.
    backlog: RefCell<VecDeque<Deferred>>,
    /// Set while the backlog's first record waits for its schema to reach
    /// the target registry (`flows[].schemas`): the partition's later
    /// records wait behind it, in order.
    schema_hold: Cell<bool>,
}

impl Route {
    /// Whether a record for this partition must wait: its producer is
    /// committing, or earlier records wait already.
    fn must_wait(&self) -> bool {
        // Only exactly-once routes and schema holds ever hold records back.
        self.schema_hold.get()
            || self
                .transactions
                .as_ref()
                .is_some_and(|t| t.is_committing() || !self.backlog.borrow().is_empty())
    }
}

/// A record held back while its slot commits: an owned copy, because the
/// consumer's message does not outlive the poll.
struct Deferred {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: Option<i64>,
    /// `None` when cycle protection drops the record.
    headers: Option<Option<OwnedHeaders>>,
    bytes: u32,
}

impl Deferred {
    /// A record to `topic` with this one's key, value and timestamp.
    fn to_record<'r>(&'r self, topic: &'r str, slot: &Arc<PartitionSlot>) -> OutRecord<'r> {
        let mut out = BaseRecord::with_opaque_to(topic, slot.clone());
        if let Some(k) = &self.key {
            out = out.key(&k[..]);
        }
        if let Some(p) = &self.payload {
            out = out.payload(&p[..]);
        }
        if let Some(ts) = self.timestamp {
            out = out.timestamp(ts);
        }
        out
    }
}

struct Pump {
    consumer: Arc<BaseConsumer<ClusterContext>>,
    producer: Arc<TargetProducer>,
    commands: mpsc::Receiver<PumpCommand>,
    /// source topic → routes by partition number.
    routes: HashMap<String, Vec<Option<Route>>>,
    transactions: Option<PumpTransactions>,
    in_flight_bytes: Arc<AtomicU64>,
    /// Bytes of records held back in the routes' backlogs.
    backlog_bytes: Cell<u64>,
    window: Arc<Window>,
    cap: u64,
    stop: Arc<AtomicBool>,
    /// Set when records need a provenance header (identity naming + cycle
    /// protection): (source alias, target alias).
    provenance: Option<(String, String)>,
    /// What to do with a record the target refused (see `Resolution`).
    on_record_error: OnRecordError,
    /// The source cluster's name, for dead-letter headers.
    source_alias: String,
    last_poll_error: Option<Instant>,
    last_position_sync: Instant,
    /// `flows[].schemas`: the schema IDs the target registry knows. `None`
    /// without it, and then no record is looked at.
    schemas: Option<GateView>,
    /// How many routes have a schema hold.
    schema_holds: Cell<usize>,
}

impl DataPlane {
    /// Starts lane `lane` of a flow, holding at most `cap` bytes in flight.
    pub fn start(
        flow: &Flow,
        (source, target): (&Cluster, &Cluster),
        metrics: Option<ferry_http::FlowMetrics>,
        (lane, cap): (usize, u64),
        schemas: Option<&Arc<SchemaIds>>,
    ) -> Result<Self, EngineError> {
        let flow_id = flow.id().to_string();
        let consumer: Arc<BaseConsumer<ClusterContext>> = Arc::new(
            client_config(source, Role::SourceConsumer, &format!("ferry-{flow_id}"))
                .set("group.id", format!("ferry-{}-{}", flow.source, flow.target))
                .create_with_context(ClusterContext::new(source))
                .map_err(|e| EngineError::client_creation(source, &e))?,
        );
        let in_flight_bytes = Arc::new(AtomicU64::new(0));
        let window = Arc::new(Window::new(cap));
        let producer: TargetProducer =
            client_config(target, Role::TargetProducer, &format!("ferry-{flow_id}"))
                .create_with_context(DeliveryContext::new(
                    target,
                    &in_flight_bytes,
                    &window,
                    metrics.clone(),
                ))
                .map_err(|e| EngineError::client_creation(target, &e))?;
        let transactions = Arc::new(TransactionRegistry::default());
        let producer = Arc::new(producer);
        let (tx, rx) = mpsc::channel(64);
        let stop_pump = Arc::new(AtomicBool::new(false));
        let stop_delivery = Arc::new(AtomicBool::new(false));
        let provenance = (flow.topic_naming == TopicNaming::Identity && flow.cycle_protection)
            .then(|| (flow.source.clone(), flow.target.clone()));

        // Not paced: a task asks once, just before it assigns its topic.
        let consumer_view = metadata_view(consumer.clone(), |c| c.client(), Duration::ZERO);
        let pump = Pump {
            consumer,
            producer: producer.clone(),
            commands: rx,
            routes: HashMap::new(),
            transactions: flow.exactly_once().then(|| PumpTransactions {
                registry: transactions.clone(),
                topics: TransactionTopics {
                    progress: crate::progress::progress_topic(&flow.source),
                    // Exactly-once keeps the syncs on the target.
                    syncs: ferry_checkpoint::wire::offset_syncs_topic(
                        &flow.source,
                        &flow.topic_separator,
                    ),
                },
                interval: flow.transaction_interval,
                slots: flow.slots,
                finished_at: HashMap::new(),
                in_commit: Vec::new(),
                next_look: Instant::now(),
                queue_cap: TRANSACTION_QUEUE_BYTES,
                metrics: metrics.clone(),
            }),
            in_flight_bytes: in_flight_bytes.clone(),
            backlog_bytes: Cell::new(0),
            window: window.clone(),
            cap,
            stop: stop_pump.clone(),
            provenance,
            on_record_error: flow.on_record_error.clone(),
            source_alias: flow.source.clone(),
            last_poll_error: None,
            last_position_sync: Instant::now(),
            schemas: schemas.map(|ids| ids.view()),
            schema_holds: Cell::new(0),
        };
        let spawn_err =
            |e: std::io::Error| EngineError::Internal(format!("cannot start thread: {e}"));
        let pump = std::thread::Builder::new()
            .name(format!("pump {flow_id} {lane}"))
            .spawn(move || pump.run())
            .map_err(spawn_err)?;
        let _ = window.pump.set(pump.thread().clone());
        let delivery = {
            let producer = producer.clone();
            let stop = stop_delivery.clone();
            std::thread::Builder::new()
                .name(format!("delivery {flow_id} {lane}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.context().clock.invalidate();
                        // Not a round 100 ms: see `ACK_POLL`.
                        producer.poll(crate::internal::ACK_POLL);
                    }
                })
                .map_err(spawn_err)?
        };
        // Paced: tasks ask again until their topic shows up, and every
        // round is a full metadata request that the target must answer.
        let producer_view =
            metadata_view(producer.clone(), |p| p.client(), Duration::from_millis(100));
        Ok(Self {
            commands: tx,
            window,
            transactions,
            in_flight_bytes,
            metrics,
            producer_view,
            consumer_view,
            producer,
            stop_pump,
            stop_delivery,
            pump: Some(pump),
            delivery: Some(delivery),
        })
    }

    /// A delivery context for another producer of this lane (a slot's
    /// transactional one): its acknowledgements count against the same
    /// window.
    pub fn delivery_context(&self, target: &Cluster) -> DeliveryContext {
        DeliveryContext::new(
            target,
            &self.in_flight_bytes,
            &self.window,
            self.metrics.clone(),
        )
    }

    pub async fn send(&self, command: PumpCommand) -> Result<(), EngineError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| EngineError::Internal("the flow's pump thread has stopped".into()))
    }

    /// Waits until the target producer's metadata shows `partitions` for
    /// `topic`. librdkafka refreshes topic metadata only every few minutes,
    /// so after Ferry grows a target topic the producer would otherwise
    /// refuse the new partitions as unknown. Topic tasks waiting at the same
    /// time share one metadata request per round.
    pub async fn await_target_partitions(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.producer_view.ask(topic.to_string()).await.unwrap_or(0);
            if seen >= partitions as usize {
                return Ok(());
            }
            if Instant::now() > deadline {
                // Ferry's own deadline, no client error beneath: text.
                return Err(EngineError::Topic {
                    cluster: self.producer.context().cluster.cluster().to_string(),
                    topic: topic.to_string(),
                    cause: format!(
                        "the target still reports {seen} partitions, expected {partitions}"
                    ),
                });
            }
            // No sleep: the view's rounds are paced, so asking again waits
            // for the next one.
        }
    }

    /// Puts `topic` into the source consumer's metadata cache before its
    /// partitions are assigned. librdkafka looks up the leaders of a newly
    /// assigned topic it knows nothing about only on its one-second topic
    /// scan, so every topic would start copying up to a second late; a
    /// topic found in the cache starts fetching at once. Best effort: a
    /// topic the cache still lacks is found by that scan.
    pub async fn warm_source_metadata(&self, topic: &str) {
        let _ = self.consumer_view.ask(topic.to_string()).await;
    }

    /// Stops fetching, then waits (up to `timeout`) for the target to
    /// acknowledge everything in flight. Blocking work runs off the runtime.
    pub async fn shutdown(mut self, timeout: Duration) -> Result<(), EngineError> {
        self.stop_pump.store(true, Ordering::Release);
        let pump = self.pump.take();
        let producer = self.producer.clone();
        let stop_delivery = self.stop_delivery.clone();
        let delivery = self.delivery.take();
        tokio::task::spawn_blocking(move || {
            if let Some(p) = pump {
                p.thread().unpark();
                let _ = p.join();
            }
            let flushed = producer.flush(timeout);
            stop_delivery.store(true, Ordering::Release);
            if let Some(d) = delivery {
                let _ = d.join();
            }
            flushed.map_err(|e| {
                EngineError::Internal(format!("flush did not finish in {timeout:?}: {e}"))
            })
        })
        .await
        .map_err(|e| EngineError::Internal(format!("shutdown task panicked: {e}")))?
    }
}

/// A batcher answering "how many partitions does the client's metadata show
/// for this topic", one metadata request per round, run off the runtime.
fn metadata_view<T, C>(
    handle: Arc<T>,
    client: fn(&T) -> &rdkafka::client::Client<C>,
    min_gap: Duration,
) -> Batcher<String, usize>
where
    T: Send + Sync + 'static,
    C: ClientContext + 'static,
{
    Batcher::spawn_paced(4096, min_gap, move |topics: Vec<String>| {
        let handle = handle.clone();
        async move {
            let asked = topics.len();
            tokio::task::spawn_blocking(move || {
                visible_partitions(client(&handle), &topics, Duration::from_secs(5))
            })
            .await
            .unwrap_or_else(|_| vec![0; asked])
        }
    })
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.stop_pump.store(true, Ordering::Release);
        self.stop_delivery.store(true, Ordering::Release);
    }
}

impl Pump {
    fn run(mut self) {
        while !self.stop.load(Ordering::Acquire) {
            while let Ok(cmd) = self.commands.try_recv() {
                self.apply(cmd);
            }
            if self.schema_holds.get() > 0 {
                self.release_schema_holds();
            }
            self.resume_committed();
            let held = self.in_flight_bytes.load(Ordering::Acquire)
                + self.window.unpersisted()
                + self.backlog_bytes.get();
            self.start_due_commits(held);
            let queued = self.in_flight_bytes.load(Ordering::Acquire);
            if held >= self.cap
                || self
                    .transactions
                    .as_ref()
                    .is_some_and(|t| queued >= t.queue_cap)
            {
                // Back-pressure: stop fetching until deliveries (and progress
                // writes or commits) free budget.
                std::thread::park_timeout(Duration::from_millis(20));
                continue;
            }
            if self.last_position_sync.elapsed() > Duration::from_millis(500) {
                self.sync_positions();
            }
            // While commits run, come back soon to send what they held up.
            let waiting = self
                .transactions
                .as_ref()
                .is_some_and(|t| !t.in_commit.is_empty());
            let timeout = Duration::from_millis(if waiting { 2 } else { 50 });
            match self.consumer.poll(timeout) {
                None => {}
                Some(Ok(msg)) => self.forward(&msg),
                Some(Err(e)) => self.poll_error(e),
            }
        }
        // A clean stop commits what was copied: nothing to copy again.
        self.commit_all();
    }

    /// The lane's routes grouped by transactional producer (a slot's
    /// producer may have been replaced while older partitions still name
    /// the old one).
    fn partitions_by_transactions(&self) -> Vec<(Arc<SlotTransactions>, Vec<Arc<PartitionSlot>>)> {
        let mut by_txn: Vec<(Arc<SlotTransactions>, Vec<Arc<PartitionSlot>>)> = Vec::new();
        for route in self.routes.values().flatten().flatten() {
            let Some(t) = &route.transactions else {
                continue;
            };
            match by_txn.iter_mut().find(|(x, _)| Arc::ptr_eq(x, t)) {
                Some((_, parts)) => parts.push(route.slot.clone()),
                None => by_txn.push((t.clone(), vec![route.slot.clone()])),
            }
        }
        by_txn
    }

    /// Under exactly-once: starts the commits that are due, each slot on
    /// its own interval, every open one once half the window (`held` bytes
    /// in flight, held back or waiting for a commit) waits.
    fn start_due_commits(&mut self, held: u64) {
        let Some(txns) = &self.transactions else {
            return;
        };
        let now = Instant::now();
        let pressure = held >= self.cap / 2;
        if now < txns.next_look && !pressure {
            return;
        }
        let groups = self.partitions_by_transactions();
        let Some(txns) = &mut self.transactions else {
            return;
        };
        // At least every interval: partitions assigned since may open
        // transactions.
        let mut next_look = now + txns.interval;
        for (producer, partitions) in groups {
            if producer.is_committing() {
                continue;
            }
            let due = txns.due(&producer, now);
            if now < due && !(pressure && producer.is_open()) {
                next_look = next_look.min(due);
                continue;
            }
            let (registry, window) = (txns.registry.clone(), self.window.clone());
            let snapshot = window.begin_write();
            producer.commit_in_background(
                partitions,
                txns.topics.clone(),
                txns.metrics.clone(),
                move |outcome| {
                    if outcome == CommitOutcome::Committed {
                        registry
                            .last_commit_ms
                            .store(crate::clock::now_ms(), Ordering::Relaxed);
                    }
                    // Committed bytes are persisted; aborted ones are gone
                    // from the target and come again from the source:
                    // either way they no longer hold budget. Wakes the pump.
                    window.persisted_up_to(snapshot);
                },
            );
            txns.in_commit.push(producer);
        }
        // Under pressure with every slot committing, look again soon.
        txns.next_look = if pressure {
            next_look.min(now + Duration::from_millis(1))
        } else {
            next_look
        };
    }

    /// Under exactly-once: notes the background commits that finished and
    /// sends the records their slots held back.
    fn resume_committed(&mut self) {
        let Some(txns) = &mut self.transactions else {
            return;
        };
        if txns.in_commit.iter().all(|t| t.is_committing()) {
            return;
        }
        let now = Instant::now();
        txns.in_commit.retain(|t| {
            let running = t.is_committing();
            if !running {
                txns.finished_at.insert(t.slot, now);
            }
            running
        });
        // A slot that finished is due again an interval from now.
        txns.next_look = txns.next_look.min(now + txns.interval);
        self.send_backlogs();
    }

    /// Sends the held-back records of every route whose producer is not
    /// committing.
    fn send_backlogs(&self) {
        if self.backlog_bytes.get() == 0 {
            return;
        }
        for route in self.routes.values().flatten().flatten() {
            self.drain(route);
        }
    }

    /// Sends the held-back records of `route` in order, as long as its
    /// producer is not committing and their schemas are on the target;
    /// the first record whose schema is not puts (or keeps) the route on
    /// hold.
    fn drain(&self, route: &Route) {
        loop {
            if route
                .transactions
                .as_ref()
                .is_some_and(|t| t.is_committing())
            {
                return;
            }
            let verdict = {
                let backlog = route.backlog.borrow();
                let Some(first) = backlog.front() else {
                    break;
                };
                self.schemas.as_ref().map_or(Verdict::Pass, |gate| {
                    gate.verdict(first.key.as_deref(), first.payload.as_deref())
                })
            };
            if verdict == Verdict::Wait {
                return self.hold(route);
            }
            let Some(mut record) = route.backlog.borrow_mut().pop_front() else {
                break;
            };
            if let Verdict::Rewrite { key, value } = verdict {
                rewrite_ids(&mut record, key, value);
            }
            self.send_deferred(route, record);
        }
        self.unhold(route);
    }

    /// Puts `route` on schema hold: its records wait in its backlog.
    fn hold(&self, route: &Route) {
        if !route.schema_hold.replace(true) {
            self.schema_holds.set(self.schema_holds.get() + 1);
        }
    }

    fn unhold(&self, route: &Route) {
        if route.schema_hold.replace(false) {
            self.schema_holds.set(self.schema_holds.get() - 1);
        }
    }

    /// Sends what the routes on schema hold can send now: the sync may have
    /// copied their schemas since.
    fn release_schema_holds(&self) {
        for route in self.routes.values().flatten().flatten() {
            if route.schema_hold.get() {
                self.drain(route);
            }
        }
    }

    /// Commits every transaction of the lane, the slots in parallel, once
    /// the background commits are done and every held-back record is
    /// sent; then frees the window's budget: committed records are
    /// persisted, aborted ones are copied again from the source.
    fn commit_all(&mut self) {
        let Some(txns) = &mut self.transactions else {
            return;
        };
        while txns.in_commit.iter().any(|t| t.is_committing()) {
            // Their end unparks this thread (see `start_due_commits`).
            std::thread::park_timeout(Duration::from_millis(5));
        }
        txns.in_commit.clear();
        self.send_backlogs();
        let by_txn = self.partitions_by_transactions();
        if by_txn.is_empty() {
            return;
        }
        let Some(txns) = &mut self.transactions else {
            return;
        };
        let snapshot = self.window.begin_write();
        let (topics, metrics) = (&txns.topics, txns.metrics.as_ref());
        let outcomes: Vec<CommitOutcome> = if by_txn.len() == 1 {
            vec![by_txn[0].0.commit(&by_txn[0].1, topics, metrics)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = by_txn
                    .iter()
                    .map(|(t, parts)| scope.spawn(move || t.commit(parts, topics, metrics)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(CommitOutcome::Idle))
                    .collect()
            })
        };
        // Each slot's next interval starts once this commit is done.
        let done = Instant::now();
        for (producer, _) in &by_txn {
            txns.finished_at.insert(producer.slot, done);
        }
        if outcomes.contains(&CommitOutcome::Committed) {
            txns.registry
                .last_commit_ms
                .store(crate::clock::now_ms(), Ordering::Relaxed);
        }
        // Committed bytes are persisted; aborted ones are gone from the
        // target and come again from the source: either way they no longer
        // hold budget.
        self.window.persisted_up_to(snapshot);
    }

    fn apply(&mut self, cmd: PumpCommand) {
        let mut tpl = TopicPartitionList::new();
        match cmd {
            PumpCommand::Assign(slots) => {
                for (slot, start) in slots {
                    if let Err(e) = tpl
                        .add_partition(&slot.topic, slot.partition)
                        .set_offset(Offset::Offset(start))
                    {
                        slot.fail_local(start, format!("cannot assign: {e}"));
                        continue;
                    }
                    let transactions = self.transactions_of(&slot);
                    let parts = self.routes.entry(slot.topic.to_string()).or_default();
                    let idx = slot.partition as usize;
                    if parts.len() <= idx {
                        parts.resize_with(idx + 1, || None);
                    }
                    let replaced = parts[idx].replace(Route {
                        slot,
                        transactions,
                        backlog: RefCell::default(),
                        schema_hold: Cell::new(false),
                    });
                    // A restarted partition's held-back records come again
                    // from the source.
                    if let Some(old) = replaced {
                        self.drop_backlog(&old);
                    }
                }
                if let Err(e) = self.consumer.incremental_assign(&tpl) {
                    tracing::error!(cluster = self.consumer.context().cluster(), error = %e, "assigning partitions failed");
                    for ((topic, partition), start) in tpl.to_topic_map() {
                        if let Some(s) = self.slot(&topic, partition) {
                            s.fail_local(
                                start.to_raw().unwrap_or(0),
                                format!("cannot assign partition: {e}"),
                            );
                        }
                    }
                }
            }
            PumpCommand::Unassign(slots) => {
                // Their copied records are committed (with their progress)
                // before the partitions are let go.
                self.commit_all();
                for slot in slots {
                    slot.fence();
                    let _ = tpl.add_partition(&slot.topic, slot.partition);
                    if let Some(parts) = self.routes.get_mut(&*slot.topic) {
                        if let Some(entry) = parts.get_mut(slot.partition as usize) {
                            if entry.as_ref().is_some_and(|r| Arc::ptr_eq(&r.slot, &slot)) {
                                if let Some(old) = entry.take() {
                                    self.drop_backlog(&old);
                                }
                            }
                        }
                    }
                }
                if let Err(e) = self.consumer.incremental_unassign(&tpl) {
                    tracing::warn!(cluster = self.consumer.context().cluster(), error = %e, "unassigning partitions failed");
                }
            }
        }
    }

    /// Under exactly-once, the transactional producer of `slot`'s slot;
    /// the partition fails at once when there is none it could use.
    fn transactions_of(&self, slot: &PartitionSlot) -> Option<Arc<SlotTransactions>> {
        let txns = self.transactions.as_ref()?;
        let number = ferry_config::slot_of(&slot.topic, slot.partition, txns.slots);
        let found = txns.registry.get(number);
        match found.as_ref().map(|t| t.unusable()) {
            Some(None) => {}
            Some(Some(why)) => slot.fail_transaction(why),
            None => slot.fail_transaction(format!(
                "slot {number} has no transactional producer in this process"
            )),
        }
        found
    }

    /// Lets slots move past offsets the consumer skipped on its own
    /// (transaction markers, aborted records). Runs on this thread, after
    /// every polled record was forwarded, so the position is safe to use.
    ///
    /// Only while some partition is behind the source's end: librdkafka
    /// finds each assigned partition by a linear search over the topics, so
    /// with thousands of idle partitions the call would be the daemon's
    /// main cost at rest.
    fn sync_positions(&mut self) {
        self.last_position_sync = Instant::now();
        let behind = self
            .routes
            .values()
            .flatten()
            .flatten()
            .any(|route| route.slot.behind_source_end());
        if !behind {
            return;
        }
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for ((topic, partition), offset) in positions.to_topic_map() {
            if let (Some(route), Offset::Offset(o)) = (self.route(&topic, partition), offset) {
                // The position is past held-back records, which are not
                // handled yet.
                if route.backlog.borrow().is_empty() {
                    route.slot.advance_to(o);
                }
            }
        }
    }

    fn route(&self, topic: &str, partition: i32) -> Option<&Route> {
        self.routes
            .get(topic)?
            .get(usize::try_from(partition).ok()?)?
            .as_ref()
    }

    fn slot(&self, topic: &str, partition: i32) -> Option<&Arc<PartitionSlot>> {
        self.route(topic, partition).map(|r| &r.slot)
    }

    fn poll_error(&mut self, e: KafkaError) {
        // Transport errors repeat every poll while a broker is down; one
        // line every 5 s is enough (librdkafka retries on its own).
        let now = Instant::now();
        if self
            .last_poll_error
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(5))
        {
            self.last_poll_error = Some(now);
            let cluster = self.consumer.context().cluster();
            tracing::warn!(cluster, error = %self.consumer.context().scrub(&e.to_string()), "fetch from source failed; retrying");
        }
    }

    fn forward(&self, msg: &BorrowedMessage<'_>) {
        let Some(route) = self.route(msg.topic(), msg.partition()) else {
            return; // Unassigned meanwhile: not ours to copy.
        };
        let slot = &route.slot;
        if slot.is_failed() || slot.is_fenced() {
            return;
        }
        if route.must_wait() {
            return self.defer(route, msg);
        }
        if let Some(gate) = &self.schemas {
            match gate.verdict(msg.key(), msg.payload()) {
                Verdict::Pass => {}
                Verdict::Wait => {
                    self.hold(route);
                    return self.defer(route, msg);
                }
                // The rewrite needs a copy of its own: through the backlog.
                Verdict::Rewrite { .. } => {
                    self.defer(route, msg);
                    return self.drain(route);
                }
            }
        }
        let Some(producer) = self.producer_for(route) else {
            return;
        };
        let offset = msg.offset();
        match slot.pending(offset) {
            None => {}
            Some(Pending::AlreadyCopied) => return slot.on_skipped(offset),
            Some(Pending::Refused(resolution)) => match &self.on_record_error {
                OnRecordError::Skip => return slot.skip_refused(&resolution),
                OnRecordError::DeadLetter { topic } => {
                    return self.dead_letter(msg, slot, topic, resolution)
                }
                // Never set under "stall"; copy the record as usual.
                OnRecordError::Stall => {}
            },
        }
        let headers = match self.copy_headers(msg) {
            Some(h) => h,
            None => {
                slot.on_skipped(offset);
                return;
            }
        };
        let (record, bytes) = copy_of(msg, &slot.target_topic, slot);
        let mut record = record.partition(msg.partition());
        if let Some(h) = headers {
            record = record.headers(h);
        }
        slot.on_produced(offset, bytes);
        self.send(producer, record, slot, offset, bytes);
    }

    /// The producer for `route`'s records: under exactly-once its slot's,
    /// with a transaction open. `None` when that cannot be (the partition
    /// is failed with the reason).
    fn producer_for<'a>(&'a self, route: &'a Route) -> Option<&'a TargetProducer> {
        match &route.transactions {
            None => Some(&self.producer),
            Some(t) => match t.ensure_open() {
                Ok(()) => Some(t.producer()),
                Err(why) => {
                    route.slot.fail_transaction(why);
                    None
                }
            },
        }
    }

    /// Holds `msg` back until its slot's commit is done (exactly-once).
    fn defer(&self, route: &Route, msg: &BorrowedMessage<'_>) {
        let (key, payload) = (msg.key(), msg.payload());
        let bytes = (key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len)) as u32;
        route.backlog.borrow_mut().push_back(Deferred {
            offset: msg.offset(),
            key: key.map(<[u8]>::to_vec),
            payload: payload.map(<[u8]>::to_vec),
            timestamp: msg.timestamp().to_millis(),
            headers: self.copy_headers(msg),
            bytes,
        });
        self.backlog_bytes
            .set(self.backlog_bytes.get() + u64::from(bytes));
    }

    /// Sends a held-back record, as `forward` would have. Under
    /// exactly-once a refused record can only stall, and nothing goes to a
    /// dead-letter topic.
    fn send_deferred(&self, route: &Route, mut record: Deferred) {
        self.backlog_bytes
            .set(self.backlog_bytes.get() - u64::from(record.bytes));
        let slot = &route.slot;
        // A failed partition restarts from its committed progress: the
        // record comes again.
        if slot.is_failed() || slot.is_fenced() {
            return;
        }
        let Some(producer) = self.producer_for(route) else {
            return;
        };
        let offset = record.offset;
        match slot.pending(offset) {
            None => {}
            Some(Pending::AlreadyCopied) => return slot.on_skipped(offset),
            // Outside exactly-once (records held for their schema), a
            // refused record is handled as `forward` would.
            Some(Pending::Refused(resolution)) if route.transactions.is_none() => {
                match &self.on_record_error {
                    OnRecordError::Skip => return slot.skip_refused(&resolution),
                    OnRecordError::DeadLetter { topic } => {
                        return self.dead_letter_deferred(record, slot, topic, resolution)
                    }
                    OnRecordError::Stall => {}
                }
            }
            Some(Pending::Refused(_)) => {}
        }
        let Some(headers) = record.headers.take() else {
            return slot.on_skipped(offset); // cycle protection
        };
        let mut out = record
            .to_record(&slot.target_topic, slot)
            .partition(slot.partition);
        if let Some(h) = headers {
            out = out.headers(h);
        }
        slot.on_produced(offset, record.bytes);
        self.send(producer, out, slot, offset, record.bytes);
    }

    /// Forgets the held-back records of a route the pump no longer copies.
    fn drop_backlog(&self, route: &Route) {
        self.unhold(route);
        let dropped: u64 = route
            .backlog
            .borrow_mut()
            .drain(..)
            .map(|r| u64::from(r.bytes))
            .sum();
        self.backlog_bytes.set(self.backlog_bytes.get() - dropped);
    }

    /// Hands a record that `slot` already counts as in flight to the
    /// producer, waiting while its queue is full.
    fn send(
        &self,
        producer: &TargetProducer,
        mut record: OutRecord<'_>,
        slot: &PartitionSlot,
        offset: i64,
        bytes: u32,
    ) {
        self.in_flight_bytes
            .fetch_add(u64::from(bytes), Ordering::AcqRel);
        loop {
            match producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The producer's queue is full: wait for deliveries, not an error.
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    let error = DeliveryError {
                        cause: self.consumer.context().scrub(&e.to_string()),
                        refusal: e.rdkafka_error_code().and_then(Refusal::of),
                    };
                    if let Some(b) = slot.fail_local(offset, error) {
                        self.in_flight_bytes
                            .fetch_sub(u64::from(b), Ordering::AcqRel);
                    }
                    return;
                }
            }
        }
    }

    /// Writes a refused record to the dead-letter topic instead: its key,
    /// value, headers and timestamp, plus headers naming where it came from
    /// and why the target refused it. The partition's progress passes it
    /// once the dead-letter topic acknowledged it.
    fn dead_letter(
        &self,
        msg: &BorrowedMessage<'_>,
        slot: &Arc<PartitionSlot>,
        topic: &str,
        resolution: Resolution,
    ) {
        let offset = resolution.offset;
        let headers = self.dead_letter_headers(
            msg.headers().map(|h| h.detach()),
            (msg.topic(), msg.partition()),
            &resolution,
        );
        let (record, bytes) = copy_of(msg, topic, slot);
        let record = record.headers(headers);
        slot.on_produced_dead_letter(resolution, bytes);
        self.send(&self.producer, record, slot, offset, bytes);
    }

    /// [`Pump::dead_letter`] for a record that was held back.
    fn dead_letter_deferred(
        &self,
        mut record: Deferred,
        slot: &Arc<PartitionSlot>,
        topic: &str,
        resolution: Resolution,
    ) {
        let offset = resolution.offset;
        let headers = self.dead_letter_headers(
            record.headers.take().flatten(),
            (&slot.topic, slot.partition),
            &resolution,
        );
        let out = record.to_record(topic, slot).headers(headers);
        slot.on_produced_dead_letter(resolution, record.bytes);
        self.send(&self.producer, out, slot, offset, record.bytes);
    }

    /// A dead-lettered record's headers: its own, then where it came from
    /// and why the target refused it.
    fn dead_letter_headers(
        &self,
        own: Option<OwnedHeaders>,
        (source_topic, partition): (&str, i32),
        resolution: &Resolution,
    ) -> OwnedHeaders {
        let (partition, offset_text) = (partition.to_string(), resolution.offset.to_string());
        let origin = [
            (DEAD_LETTER_CLUSTER, self.source_alias.as_bytes()),
            (DEAD_LETTER_TOPIC, source_topic.as_bytes()),
            (DEAD_LETTER_PARTITION, partition.as_bytes()),
            (DEAD_LETTER_OFFSET, offset_text.as_bytes()),
            (DEAD_LETTER_ERROR, resolution.cause.as_bytes()),
        ];
        let mut headers = own.unwrap_or_else(|| OwnedHeaders::new_with_capacity(origin.len()));
        for (key, value) in origin {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        headers
    }

    /// The headers to write, `Some(None)` when there are none, or `None` when
    /// cycle protection says the record has already been on the target.
    fn copy_headers(&self, msg: &BorrowedMessage<'_>) -> Option<Option<OwnedHeaders>> {
        let source_headers = msg.headers();
        let Some((source_alias, target_alias)) = &self.provenance else {
            // One native copy of the whole header list (names, values,
            // order), rather than re-parsing and re-adding each header.
            return Some(source_headers.map(|h| h.detach()));
        };
        let mut visited: Option<&[u8]> = None;
        let count = source_headers.map_or(0, |h| h.count());
        let mut out = OwnedHeaders::new_with_capacity(count + 1);
        if let Some(h) = source_headers {
            for header in h.iter() {
                if header.key == PROVENANCE_HEADER {
                    visited = header.value;
                } else {
                    out = out.insert(header);
                }
            }
        }
        let visited = visited.map(String::from_utf8_lossy).unwrap_or_default();
        if visited.split(',').any(|c| c == target_alias) {
            return None;
        }
        let trail = if visited.is_empty() {
            source_alias.clone()
        } else {
            format!("{visited},{source_alias}")
        };
        out = out.insert(Header {
            key: PROVENANCE_HEADER,
            value: Some(trail.as_bytes()),
        });
        Some(Some(out))
    }
}

/// Writes the target's schema IDs into a held-back record's key and value.
fn rewrite_ids(record: &mut Deferred, key: Option<u32>, value: Option<u32>) {
    if let (Some(id), Some(k)) = (key, record.key.as_mut()) {
        ferry_schemas::wire::set_schema_id(k, id);
    }
    if let (Some(id), Some(p)) = (value, record.payload.as_mut()) {
        ferry_schemas::wire::set_schema_id(p, id);
    }
}

/// A record handed to the target producer; its delivery report goes to
/// the slot.
type OutRecord<'m> = BaseRecord<'m, [u8], [u8], Arc<PartitionSlot>>;

/// A record for `topic` with `msg`'s key, value and timestamp (borrowed,
/// not copied), and its size as the in-flight budget counts it.
fn copy_of<'m>(
    msg: &'m BorrowedMessage<'_>,
    topic: &'m str,
    slot: &Arc<PartitionSlot>,
) -> (OutRecord<'m>, u32) {
    let (key, payload) = (msg.key(), msg.payload());
    let bytes = (key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len)) as u32;
    let mut record = BaseRecord::with_opaque_to(topic, slot.clone());
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(p) = payload {
        record = record.payload(p);
    }
    if let Some(ts) = msg.timestamp().to_millis() {
        record = record.timestamp(ts);
    }
    (record, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn window_asks_for_a_progress_write_once_an_eighth_is_unpersisted() {
        let window = Window::new(800);
        window.on_acked(99);
        let early = tokio::time::timeout(Duration::from_millis(50), window.write_due()).await;
        assert!(
            early.is_err(),
            "asked for a write below an eighth of the cap"
        );

        window.on_acked(1);
        window.on_acked(50); // asks once, not once per record
        tokio::time::timeout(Duration::from_secs(1), window.write_due())
            .await
            .expect("no write asked for at an eighth of the cap");
        let snapshot = window.begin_write();
        assert_eq!((snapshot, window.unpersisted()), (150, 150));

        window.on_acked(10); // acknowledged while the write is in flight
        window.persisted_up_to(snapshot);
        assert_eq!(window.unpersisted(), 10);
        let again = tokio::time::timeout(Duration::from_millis(50), window.write_due()).await;
        assert!(again.is_err(), "asked again though little is unpersisted");
    }
}
