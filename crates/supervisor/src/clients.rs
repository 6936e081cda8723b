//! librdkafka client construction for one cluster: Ferry's defaults, the
//! operator's pass-through properties on top, and a context that routes
//! librdkafka's logs and errors into `tracing` with the cluster named and
//! every secret scrubbed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_admin::{Admin, AdminError};
use ferry_auth::{MskIamSettings, MskTokenProvider};
use ferry_config::{Cluster, Flow, REDACTED};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};

/// librdkafka's largest `message.max.bytes`: larger than any record a Kafka
/// topic accepts.
pub const RECORD_MAX_BYTES: &str = "1000000000";
/// A fetch response holding one record of [`RECORD_MAX_BYTES`], with room
/// for the response's framing.
const RECEIVE_MAX_BYTES: &str = "1000100000";

/// Which client a config is for; each gets different defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads the source: manual assignment, no commits, read_committed.
    SourceConsumer,
    /// Writes mirrored records: idempotent, batched.
    TargetProducer,
    /// Low-volume internal topics (progress, syncs, checkpoints, heartbeats).
    InternalProducer,
    /// Reads internal topics and metadata.
    Reader,
}

/// Builds the librdkafka config for one cluster and role. Ferry's defaults
/// come first so an operator's explicit property always wins; validation has
/// already refused the properties Ferry must own.
pub fn client_config(cluster: &Cluster, role: Role, client_id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    // rust-rdkafka derives librdkafka's log level from the `log` crate, which
    // Ferry does not use; warnings carry the causes operators need
    // (authentication failed, certificate verify failed).
    // librdkafka's `debug` contexts (set in a cluster's client settings)
    // log at debug level: asking for them means wanting to see them.
    cfg.set_log_level(if cluster.client.get("debug").is_some() {
        RDKafkaLogLevel::Debug
    } else {
        RDKafkaLogLevel::Warning
    });
    cfg.set("bootstrap.servers", &cluster.bootstrap_servers)
        .set("client.id", client_id);
    match role {
        Role::SourceConsumer => {
            cfg.set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "earliest")
                // Prefetch is bounded per partition so one slow target cannot
                // make the process grow: 4 MiB × partitions at most.
                .set("queued.max.messages.kbytes", "4096")
                // With a prefetch cap this small the queue fills often, and
                // librdkafka's default reaction (the next fetch waits 1 s)
                // would leave a partition idle long after the pump drained
                // it; retry within the fetch wait instead.
                .set("fetch.queue.backoff.ms", "10")
                // A fetch response is one allocation; at 8 MiB and above
                // jemalloc serves it from fresh pages every time (its
                // oversize threshold), and librdkafka keeps it alive while
                // any of its records is in flight. Responses under 8 MiB
                // reuse memory (figures in crates/bench/README.md).
                .set("fetch.max.bytes", "8000000")
                .set("max.partition.fetch.bytes", "1048576")
                // A fetch returns as soon as any partition has data, so this
                // only paces fetches of idle partitions (and delays the first
                // fetch of a partition assigned at rest). librdkafka knows no
                // fetch sessions: every fetch names every assigned partition,
                // and matches each topic of the answer by a linear search, so
                // with thousands of idle partitions this is most of Ferry's
                // CPU at rest; shorter waits also keep the source broker
                // busy (figures in crates/bench/README.md).
                .set("fetch.wait.max.ms", "1000")
                // A record batch larger than the fetch limits is still
                // returned whole (KIP-74), so the only bound on the largest
                // record Ferry can read is the response size: allow the
                // largest record any Kafka topic can hold.
                .set("receive.message.max.bytes", RECEIVE_MAX_BYTES);
        }
        Role::TargetProducer => {
            cfg.set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set("batch.size", "1000000")
                .set("compression.type", "lz4")
                .set("queue.buffering.max.kbytes", "262144")
                .set("max.in.flight.requests.per.connection", "5")
                // librdkafka refuses, before sending, any record whose key,
                // value and headers exceed this (default 1,000,000), while
                // the source's `max.message.bytes` limits compressed batches:
                // any smaller value could refuse a record the source took.
                // The target still enforces its own limit, which Ferry
                // syncs from the source. Batches stay at `batch.size`: a
                // batch is at most min(message.max.bytes, batch.size) plus
                // one record, and each produce request carries one batch.
                .set("message.max.bytes", RECORD_MAX_BYTES);
        }
        Role::InternalProducer => {
            cfg.set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "0");
        }
        Role::Reader => {
            // librdkafka wants a group id even for manual assignment; this
            // one never subscribes or commits, so no group is ever created.
            cfg.set("group.id", "ferry-reader")
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false")
                .set("isolation.level", "read_committed");
        }
    }
    if cluster.aws_msk_iam.is_some() {
        // The token comes from `ClusterContext::generate_oauth_token`;
        // validation refused any other SASL set-up for this cluster.
        cfg.set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "OAUTHBEARER");
    }
    for (k, v) in cluster.client.iter_exposed() {
        cfg.set(k, v);
    }
    cfg
}

/// A librdkafka context that names its cluster in every log line.
pub struct ClusterContext {
    cluster: String,
    secrets: Vec<String>,
    /// The first warning-or-worse librdkafka reported, for probes.
    last_error: Mutex<Option<String>>,
    /// Signs OAUTHBEARER tokens for `aws_msk_iam` clusters; shared by every
    /// client with the same region and profile.
    msk_iam: Option<Result<Arc<MskTokenProvider>, String>>,
}

impl ClusterContext {
    /// The context of every client of `cluster`: its name for the logs,
    /// the secrets of its `client` properties to scrub, and the MSK IAM
    /// token provider when it authenticates that way.
    pub fn new(cluster: &Cluster) -> Self {
        Self {
            cluster: cluster.name.clone(),
            secrets: cluster
                .client
                .sensitive_values()
                .map(str::to_string)
                .collect(),
            last_error: Mutex::new(None),
            msk_iam: msk_iam_provider(cluster),
        }
    }

    pub(crate) fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Replaces any secret that a broker or librdkafka echoed back.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }

    /// Keeps the first cause: what follows it ("1/1 brokers are down") are
    /// consequences, not the reason an operator needs.
    fn remember(&self, cause: &str) {
        if let Ok(mut first) = self.last_error.lock() {
            first.get_or_insert_with(|| cause.to_string());
        }
    }

    /// The first client-level error seen (authentication, TLS, transport).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

type SharedMskProvider = Result<Arc<MskTokenProvider>, String>;

/// The process-wide MSK IAM token provider for a cluster with `aws_msk_iam`.
fn msk_iam_provider(cluster: &Cluster) -> Option<SharedMskProvider> {
    cluster.aws_msk_iam.as_ref().map(|iam| {
        MskTokenProvider::shared(&MskIamSettings {
            region: iam.region.clone(),
            profile: iam.profile.clone(),
        })
        .map_err(|e| e.to_string())
    })
}

/// A signed token and its expiry (ms since the epoch). A failure reaches
/// operators through librdkafka ("Failed to acquire SASL OAUTHBEARER
/// token: ..."); it names the credential source and endpoint, never a secret.
fn msk_iam_token(provider: Option<&SharedMskProvider>) -> Result<(String, i64), String> {
    let provider = match provider {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(format!("AWS MSK IAM: {e}")),
        None => return Err("no OAUTHBEARER token source is configured (aws_msk_iam)".into()),
    };
    provider
        .token()
        .map(|t| (t.token, t.expires_at_ms))
        .map_err(|e| format!("AWS MSK IAM (region {}): {e}", provider.settings().region))
}

/// The admin client for a cluster, with the same settings as every other
/// client; MSK IAM clusters get their tokens from the same provider.
pub fn admin(cluster: &Cluster, client_id: &str) -> Result<Admin, AdminError> {
    let config = client_config(cluster, Role::Reader, client_id);
    match msk_iam_provider(cluster) {
        Some(provider) => {
            Admin::with_token_source(&config, Arc::new(move || msk_iam_token(Some(&provider))))
        }
        None => Admin::new(&config),
    }
}

/// `text` with `cluster`'s secrets replaced, for an error from a client
/// that could not be created (so has no context to scrub with).
pub(crate) fn scrub_for(cluster: &Cluster, text: &str) -> String {
    scrub(text, &secrets_of(cluster))
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |acc, s| acc.replace(s.as_str(), REDACTED))
}

impl ClientContext for ClusterContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let message = self.scrub(message);
        let cluster = self.cluster.as_str();
        // Authentication and TLS failures reach the log callback (called
        // from librdkafka's threads) long before any queued error event is
        // polled, so they are the cause to report.
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.remember(&message);
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(cluster, facility = fac, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(cluster, facility = fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(cluster, facility = fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(cluster, facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let reason = self.scrub(reason);
        tracing::warn!(cluster = self.cluster.as_str(), error = %error, "{reason}");
        self.remember(&reason);
    }

    /// librdkafka asks again at 80% of the returned lifetime. Runs on the
    /// thread that polls the client; it blocks only while credentials are
    /// fetched, once per credential lifetime, with short timeouts.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let (token, lifetime_ms) = msk_iam_token(self.msk_iam.as_ref())?;
        Ok(OAuthToken {
            token,
            // Only the client side sees this name; MSK derives the principal
            // from the signed request.
            principal_name: "aws-msk-iam".into(),
            lifetime_ms,
        })
    }
}

impl ConsumerContext for ClusterContext {}

/// Why a [`probe`] of a cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// librdkafka refused the configuration (a bad pass-through property,
    /// say), or the probe's task failed: nothing was sent.
    #[error("cluster {cluster}: cannot create a Kafka client: {reason}")]
    Create {
        /// The cluster's name.
        cluster: String,
        /// librdkafka's reason, secrets scrubbed.
        reason: String,
    },
    /// No metadata came back in time: nothing listens, or TLS or
    /// authentication failed.
    #[error("cluster {cluster}: not reachable at {bootstrap}: {reason}")]
    Unreachable {
        /// The cluster's name.
        cluster: String,
        /// The bootstrap servers tried.
        bootstrap: String,
        /// The first error librdkafka reported, secrets scrubbed.
        reason: String,
    },
    /// The cluster could not start a transactional producer for an
    /// exactly-once flow: InitProducerId was refused or not answered.
    #[error("cluster {cluster}: transactions unusable for flow {flow} (exactly-once, transactional id {transactional_id}): {reason}")]
    Transactions {
        /// The cluster's name.
        cluster: String,
        /// The flow, `source->target`.
        flow: String,
        /// The transactional id the probe used.
        transactional_id: String,
        /// The broker's or librdkafka's answer, secrets scrubbed.
        reason: String,
    },
}

/// What a successful probe saw.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Brokers in the cluster's metadata.
    pub brokers: usize,
    /// Topics visible to the client's principal.
    pub topics: usize,
}

/// One failed probe, and whether trying again may help.
struct ProbeFailure {
    error: ClientError,
    retriable: bool,
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// Connects to a cluster and asks for its metadata, proving that the
/// address, TLS and SASL settings work. Runs librdkafka on a blocking thread.
/// Each attempt waits up to `timeout`; a retriable failure (a broker that
/// is starting and answers nothing yet, a leader election) is retried per
/// `retry`, with one warning per retry. A failure with a cause the client
/// reported (connection refused, authentication, TLS) is final.
pub async fn probe(
    cluster: &Cluster,
    timeout: Duration,
    retry: &ferry_admin::RetryPolicy,
) -> Result<ProbeReport, ClientError> {
    let what = format!("cluster {}: metadata request", cluster.name);
    ferry_admin::retry::retry(
        retry,
        &what,
        |f: &ProbeFailure| f.retriable,
        || {
            let cluster = cluster.clone();
            async move {
                tokio::task::spawn_blocking(move || probe_blocking(&cluster, timeout))
                    .await
                    .unwrap_or_else(|e| {
                        Err(ProbeFailure {
                            error: ClientError::Create {
                                cluster: "?".into(),
                                reason: format!("probe task failed: {e}"),
                            },
                            retriable: false,
                        })
                    })
            }
        },
    )
    .await
    .map_err(|f| f.error)
}

fn probe_blocking(cluster: &Cluster, timeout: Duration) -> Result<ProbeReport, ProbeFailure> {
    let context = ClusterContext::new(cluster);
    let consumer: BaseConsumer<ClusterContext> =
        client_config(cluster, Role::Reader, "ferry-probe")
            .create_with_context(context)
            .map_err(|e| ProbeFailure {
                error: ClientError::Create {
                    cluster: cluster.name.clone(),
                    reason: scrub_for(cluster, &e.to_string()),
                },
                retriable: false,
            })?;
    serve_token_refresh(&consumer);
    match consumer.fetch_metadata(None, timeout) {
        Ok(md) => Ok(ProbeReport {
            brokers: md.brokers().len(),
            topics: md.topics().len(),
        }),
        Err(e) => {
            // The metadata error is usually a bare timeout; the client-level
            // error (authentication failed, certificate verify failed) is the
            // cause an operator needs.
            let ctx = consumer.context();
            // The cause is often logged a moment after the request fails
            // (the broker connection is torn down first).
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while ctx.last_error().is_none() && std::time::Instant::now() < deadline {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            let cause = ctx.last_error();
            // No cause from the client: the brokers took the connection but
            // did not answer (yet), or answered with a transient error.
            let retriable = cause.is_none()
                && e.rdkafka_error_code()
                    .is_some_and(ferry_admin::retry::is_retriable_code);
            let reason = match cause {
                Some(cause) => format!("{cause} ({e})"),
                None => e.to_string(),
            };
            Err(ProbeFailure {
                error: ClientError::Unreachable {
                    cluster: cluster.name.clone(),
                    bootstrap: cluster.bootstrap_servers.clone(),
                    reason: ctx.scrub(&reason),
                },
                retriable,
            })
        }
    }
}

/// The transactional id [`probe_transactions`] uses for `flow`:
/// `<prefix>.<source>-<target>.check`. No slot has it, so a check never
/// fences a running slot's producer.
pub fn check_transactional_id(flow: &Flow, prefix: &str) -> String {
    format!("{prefix}.{}-{}.check", flow.source, flow.target)
}

/// Proves that `cluster`, the target of exactly-once `flow`, supports
/// transactions for Ferry's principal: a transactional producer with
/// [`check_transactional_id`] sends InitProducerId and waits up to
/// `timeout` for its answer. librdkafka retries a coordinator that is not
/// available yet within that time. Nothing is written; no transaction is
/// begun. Runs librdkafka on a blocking thread.
pub async fn probe_transactions(
    cluster: &Cluster,
    flow: &Flow,
    transactional_id_prefix: &str,
    timeout: Duration,
) -> Result<(), ClientError> {
    let transactional_id = check_transactional_id(flow, transactional_id_prefix);
    let failed = |reason: String| ClientError::Transactions {
        cluster: cluster.name.clone(),
        flow: flow.id().to_string(),
        transactional_id: transactional_id.clone(),
        reason,
    };
    let task = {
        let cluster = cluster.clone();
        let transactional_id = transactional_id.clone();
        tokio::task::spawn_blocking(move || {
            init_transactions_blocking(&cluster, &transactional_id, timeout)
        })
    };
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(InitFailure::Create(reason))) => Err(ClientError::Create {
            cluster: cluster.name.clone(),
            reason,
        }),
        Ok(Err(InitFailure::Refused(reason))) => Err(failed(reason)),
        Err(e) => Err(failed(format!("probe task failed: {e}"))),
    }
}

/// Why [`init_transactions_blocking`] failed (each reason scrubbed).
enum InitFailure {
    Create(String),
    Refused(String),
}

fn init_transactions_blocking(
    cluster: &Cluster,
    transactional_id: &str,
    timeout: Duration,
) -> Result<(), InitFailure> {
    let mut config = client_config(cluster, Role::TargetProducer, "ferry-probe");
    config.set("transactional.id", transactional_id);
    // librdkafka retries a coordinator that is not available until the
    // timeout and then reports only the timeout; the broker's answers are
    // in its transaction debug lines, which the context keeps.
    config
        .set("debug", "eos")
        .set_log_level(RDKafkaLogLevel::Debug);
    // Threaded: its poll thread serves the logs and an OAUTHBEARER token
    // refresh while init_transactions blocks this one.
    let producer: ThreadedProducer<TransactionsProbeContext> = config
        .create_with_context(TransactionsProbeContext {
            cluster: ClusterContext::new(cluster),
            broker_answer: Mutex::new(None),
        })
        .map_err(|e| InitFailure::Create(scrub_for(cluster, &e.to_string())))?;
    producer.init_transactions(timeout).map_err(|e| {
        let ctx = producer.context();
        let mut reason = match &e {
            // librdkafka's "retry call to resume" is advice for a caller
            // that goes on waiting; the probe does not.
            KafkaError::Transaction(t) if t.code() == RDKafkaErrorCode::OperationTimedOut => {
                format!(
                    "no producer id within {}",
                    humantime::format_duration(timeout)
                )
            }
            KafkaError::Transaction(t) => format!("{} ({:?})", t.string(), t.code()),
            other => other.to_string(),
        };
        if let Some(answer) = ctx.broker_answer() {
            reason.push_str(&format!("; last answer: {answer}"));
        }
        // A connection-level cause (authentication, TLS) says why no
        // broker answered at all.
        if let Some(cause) = ctx.cluster.last_error() {
            reason.push_str(&format!("; {cause}"));
        }
        InitFailure::Refused(ctx.cluster.scrub(&reason))
    })
}

/// The context of [`probe_transactions`]' producer: a [`ClusterContext`]
/// that also keeps the last failure librdkafka's transaction debug lines
/// report (e.g. "Failed to find transaction coordinator:
/// COORDINATOR_NOT_AVAILABLE").
struct TransactionsProbeContext {
    cluster: ClusterContext,
    broker_answer: Mutex<Option<String>>,
}

impl TransactionsProbeContext {
    fn broker_answer(&self) -> Option<String> {
        self.broker_answer.lock().ok().and_then(|a| a.clone())
    }
}

impl ClientContext for TransactionsProbeContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if message.contains("Failed") {
            // "[thrd:main]: Failed to …": the thread is of no interest.
            let text = match message.strip_prefix("[thrd:") {
                Some(rest) => rest.split_once("]: ").map_or(message, |(_, text)| text),
                None => message,
            };
            if let Ok(mut answer) = self.broker_answer.lock() {
                *answer = Some(self.cluster.scrub(text));
            }
        }
        self.cluster.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.cluster.generate_oauth_token(oauthbearer_config)
    }
}

/// It sends nothing: InitProducerId only.
impl ProducerContext for TransactionsProbeContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

fn secrets_of(cluster: &Cluster) -> Vec<String> {
    cluster
        .client
        .sensitive_values()
        .map(str::to_string)
        .collect()
}

/// Serves a pending OAUTHBEARER token refresh (queued when the client is
/// created) on a consumer that is about to be used without being polled,
/// e.g. only for metadata. Without a token no broker connection succeeds.
pub fn serve_token_refresh<C: ConsumerContext>(consumer: &BaseConsumer<C>) {
    let _ = consumer.poll(Duration::ZERO);
}
