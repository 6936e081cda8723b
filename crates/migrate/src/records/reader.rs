//! [`RangeReader`]: one partition's committed records in `[from, end)`,
//! read by a manually assigned consumer (see the parent module's docs).

use std::time::{Duration, Instant};

use ferry_config::Cluster;
use ferry_supervisor::clients::{client_config, serve_token_refresh, ClusterContext, Role};
use ferry_supervisor::EngineError;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

/// How long a read may go without any record or end-of-partition before it
/// is given up, unless set with [`RangeReader::with_stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// After the broker said "end of partition" below the expected end, how long
/// to wait for more records before accepting that end (an open transaction
/// holds the last stable offset back; a stale end-of-partition event from a
/// previous assignment is followed by records well within this).
const END_GRACE: Duration = Duration::from_secs(2);

/// The context of a [`range_consumer`]: a [`ClusterContext`] that does not
/// report end-of-partition events as errors. A consumer reused from one
/// partition to the next receives the previous partition's last
/// end-of-partition event after it was unassigned, without a partition:
/// expected, not a problem.
pub struct ReaderContext(ClusterContext);

impl ReaderContext {
    pub fn new(cluster: &Cluster) -> Self {
        Self(ClusterContext::new(cluster))
    }

    /// Replaces any secret a broker or librdkafka echoed back.
    pub fn scrub(&self, text: &str) -> String {
        self.0.scrub(text)
    }

    /// The first client-level error seen.
    pub fn last_error(&self) -> Option<String> {
        self.0.last_error()
    }
}

impl ClientContext for ReaderContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.0.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            self.0.error(error, reason);
        }
    }
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.0.generate_oauth_token(config)
    }
}

impl ConsumerContext for ReaderContext {}

/// A consumer for [`RangeReader`]: manual assignment, `read_committed`,
/// end-of-partition events, no automatic offset reset (records deleted while
/// reading are an error, not a silent jump) and bounded prefetch.
pub fn range_consumer(
    cluster: &Cluster,
    client_id: &str,
) -> Result<BaseConsumer<ReaderContext>, EngineError> {
    let mut cfg = client_config(cluster, Role::Reader, client_id);
    cfg.set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100")
        // Bounded prefetch: about 6 MiB per consumer however large the
        // partition (librdkafka's defaults allow 64 MiB or 100k records
        // queued plus 50 MiB fetch responses) ...
        .set("fetch.max.bytes", "4194304")
        .set("max.partition.fetch.bytes", "1048576")
        .set("queued.max.messages.kbytes", "2048")
        .set("queued.min.messages", "10000")
        // ... without librdkafka's default 1 s pause whenever that queue is
        // full, which would make a reader wait a second per 2 MiB.
        .set("fetch.queue.backoff.ms", "5");
    cfg.create_with_context(ReaderContext::new(cluster))
        .inspect(serve_token_refresh)
        .map_err(|e| EngineError::Client {
            cluster: cluster.name.clone(),
            cause: format!("cannot create a consumer: {e}"),
        })
}

/// Streams the committed records of one partition from `from` up to, not
/// including, `end`.
pub struct RangeReader<'c> {
    consumer: &'c BaseConsumer<ReaderContext>,
    topic: String,
    partition: i32,
    /// The offset after the last record returned (or `from`).
    next: i64,
    end: i64,
    done: bool,
    ended_early: bool,
    stall: Duration,
    eof_since: Option<Instant>,
}

impl<'c> RangeReader<'c> {
    /// Assigns the partition at `from` (replacing the consumer's previous
    /// assignment). Nothing is fetched when `from >= end`.
    pub fn new(
        consumer: &'c BaseConsumer<ReaderContext>,
        topic: &str,
        partition: i32,
        from: i64,
        end: i64,
    ) -> Result<Self, String> {
        let done = from >= end;
        if !done {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Offset(from))
                .map_err(|e| e.to_string())?;
            consumer
                .assign(&tpl)
                .map_err(|e| consumer.context().scrub(&e.to_string()))?;
        }
        Ok(Self {
            consumer,
            topic: topic.to_string(),
            partition,
            next: from,
            end,
            done,
            ended_early: false,
            stall: DEFAULT_STALL_TIMEOUT,
            eof_since: None,
        })
    }

    pub fn with_stall_timeout(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// The offset after the last record returned; once the reader is done,
    /// where the readable range ended.
    pub fn position(&self) -> i64 {
        self.next
    }

    /// True when the partition ended (as far as a `read_committed` reader
    /// can see: an open transaction holds it back) before `end`.
    pub fn ended_early(&self) -> bool {
        self.ended_early
    }

    /// The next record, or `None` at the end of the range.
    pub fn next_record(&mut self) -> Result<Option<BorrowedMessage<'c>>, String> {
        let mut last_progress = Instant::now();
        while !self.done {
            if last_progress.elapsed() > self.stall {
                let cause = self
                    .consumer
                    .context()
                    .last_error()
                    .map(|e| format!(" (last client error: {e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no record for {:?} at offset {} (reading up to {}){cause}",
                    self.stall, self.next, self.end
                ));
            }
            if let Some(since) = self.eof_since {
                if since.elapsed() > END_GRACE {
                    self.done = true;
                    self.ended_early = self.next < self.end;
                    break;
                }
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(msg)) => {
                    // A record of an earlier assignment of this consumer.
                    if msg.topic() != self.topic
                        || msg.partition() != self.partition
                        || msg.offset() < self.next
                    {
                        continue;
                    }
                    self.eof_since = None;
                    if msg.offset() >= self.end {
                        self.done = true;
                        break;
                    }
                    self.next = msg.offset() + 1;
                    if self.next >= self.end {
                        self.done = true;
                    }
                    return Ok(Some(msg));
                }
                Some(Err(KafkaError::PartitionEOF(p))) if p == self.partition => {
                    last_progress = Instant::now();
                    // Offsets below `end` may be transaction markers or
                    // aborted records, which are never returned: the
                    // position says whether the reader is past them.
                    if let Some(pos) = self.assigned_position() {
                        if pos >= self.end {
                            self.next = self.next.max(self.end);
                            self.done = true;
                            break;
                        }
                    }
                    self.eof_since.get_or_insert_with(Instant::now);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if fatal(&e) => {
                    return Err(format!(
                        "cannot read at offset {}: {}",
                        self.next,
                        self.consumer.context().scrub(&e.to_string())
                    ));
                }
                // Anything else (a broker restarting, a leader moving)
                // librdkafka retries; the stall timeout bounds it.
                Some(Err(_)) => {}
            }
        }
        Ok(None)
    }

    fn assigned_position(&self) -> Option<i64> {
        let positions = self.consumer.position().ok()?;
        match positions
            .find_partition(&self.topic, self.partition)?
            .offset()
        {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }
}

impl Drop for RangeReader<'_> {
    fn drop(&mut self) {
        // The next reader on this consumer starts from a clean assignment.
        let _ = self.consumer.unassign();
    }
}

fn fatal(e: &KafkaError) -> bool {
    match e {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::AutoOffsetReset
                | RDKafkaErrorCode::OffsetOutOfRange
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
        ),
        _ => false,
    }
}
