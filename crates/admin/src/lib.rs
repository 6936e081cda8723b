//! Safe, typed, async Kafka admin calls for Ferry.
//!
//! This crate is the one place in Ferry that touches `rdkafka-sys`. It wraps
//! the librdkafka admin APIs that rust-rdkafka 0.39 leaves unwrapped
//! (consumer-group listing/description, group offsets, incremental config
//! changes) and re-exposes the safe rust-rdkafka admin calls Ferry needs, so
//! callers use only [`Admin`].
//!
//! # Layout
//!
//! - `lib.rs` — [`Admin`]: construction, timeouts, and every public call. The
//!   `rdkafka-sys` calls go through `native`; the safe rust-rdkafka calls are
//!   run on a spawned task (admin futures) or on `spawn_blocking` (blocking
//!   metadata / watermark / offsets-for-times calls), so no tokio worker ever
//!   blocks and a caller that gives up never leaves a request half-owned.
//! - `native/` — all `unsafe` (the only module allowed it; the crate denies
//!   it in Cargo.toml): the result queue and its poll thread, the
//!   oneshot hand-off of result events, RAII owners for every librdkafka
//!   object, request builders and result decoders that copy results into
//!   owned Rust types. Its module docs state the ownership rules.
//! - `error.rs` — [`AdminError`] (thiserror) and [`Resource`]: every error
//!   names the operation, the group / topic / partition / config keys, and
//!   the broker error code and message; broker conditions callers must react
//!   to (`GroupNotEmpty`, `TopicAlreadyExists`, `UnsupportedVersion`,
//!   `PolicyViolation`, …) have their own variants.
//! - `retry.rs` — which errors are worth retrying
//!   ([`AdminError::is_retriable`]) and [`retry::retry`], capped exponential
//!   backoff with jitter within a deadline; [`Admin::with_retry`] applies it
//!   to every call of a handle.
//! - `types.rs` — owned request/result types ([`GroupListing`],
//!   [`GroupDescription`], [`GroupOffset`], [`ConfigEntry`],
//!   [`NewTopicSpec`], …).
//! - `tests/kafka.rs` — every call against a real Apache Kafka broker (the
//!   `ferry-testkit` shared cluster, or `FERRY_TEST_KAFKA_SOURCE`);
//!   `tests/no_broker.rs` — "broker lacks API" via librdkafka's mock cluster,
//!   timeouts, argument checks; `tests/teardown.rs` — client lifetime.
//!
//! # Timeouts
//!
//! Every call uses the handle's timeout ([`DEFAULT_TIMEOUT`] unless set with
//! [`Admin::with_timeout`] / [`Admin::clone_with_timeout`]). It is passed to
//! librdkafka as the request timeout, and the await is bounded by it plus a
//! short grace period, after which [`AdminError::Timeout`] is returned.
//!
//! # Runtime
//!
//! The async calls must run inside a tokio runtime (they use `tokio::spawn`,
//! `spawn_blocking` and `tokio::time`).

#![warn(missing_docs)]

pub mod backoff;
mod error;
mod native;
pub mod retry;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::Offset;

pub use error::{AdminError, ErrorCode, PartitionError, Resource};
pub use native::{member_id, wait_for_teardown, TokenSource};
pub use rdkafka::ClientConfig;
pub use retry::RetryPolicy;
pub use types::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
    ConfigChange, ConfigEntry, ConfigOp, ConfigSource, GroupDescription, GroupListing, GroupMember,
    GroupOffset, GroupState, GroupType, NewTopicSpec, PartitionOffset, Watermarks,
};

use error::{classify, classify_kafka};
use native::{Ctx, Native};

/// Timeout of every call unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much longer than the request timeout we wait for librdkafka's own
/// (timed-out) answer before giving up on it.
const GRACE: Duration = Duration::from_secs(5);

/// Longest timeout librdkafka accepts for an admin request (1 hour).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Each ACL checked locally (can librdkafka express it?), and the ones that
/// passed, in order.
fn check_acls(ctx: &Ctx, acls: &[AclBinding]) -> (Vec<Result<(), AdminError>>, Vec<AclBinding>) {
    let checked: Vec<_> = acls.iter().map(|a| native::check_acl(ctx, a)).collect();
    let valid = acls
        .iter()
        .zip(&checked)
        .filter(|(_, c)| c.is_ok())
        .map(|(a, _)| a.clone())
        .collect();
    (checked, valid)
}

/// One result per requested ACL: the local refusal, or the broker's answer
/// for it (`sent` holds the answers for the ACLs that passed, in order).
fn with_local_refusals<T>(
    checked: Vec<Result<(), AdminError>>,
    sent: Vec<Result<T, AdminError>>,
) -> Vec<Result<T, AdminError>> {
    let mut sent = sent.into_iter();
    checked
        .into_iter()
        .map(|c| match c {
            Err(e) => Err(e),
            Ok(()) => sent.next().unwrap_or_else(|| {
                Err(AdminError::Internal {
                    op: "ACLs",
                    message: "fewer results than ACLs sent".into(),
                })
            }),
        })
        .collect()
}

/// Result for one topic of [`Admin::create_topics`] / [`Admin::delete_topics`]
/// (or one group of [`Admin::delete_consumer_groups`]): the name on success.
pub type NameResult = Result<String, AdminError>;

/// A Kafka admin handle. Cheap to clone (an `Arc` inside); all clones share
/// one librdkafka client, which is destroyed — on a background thread — when
/// the last clone and the last in-flight request are gone.
#[derive(Clone)]
pub struct Admin {
    native: Arc<Native>,
    timeout: Duration,
    /// Retry retriable errors of every call (see [`Admin::with_retry`]).
    retry: Option<RetryPolicy>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Creates an admin client with [`DEFAULT_TIMEOUT`]. `config` needs at
    /// least `bootstrap.servers` (plus any security settings). Does no I/O.
    pub fn new(config: &ClientConfig) -> Result<Admin, AdminError> {
        Admin::with_timeout(config, DEFAULT_TIMEOUT)
    }

    /// Creates an admin client whose calls time out after `timeout`
    /// (1 ms ..= 1 h).
    pub fn with_timeout(config: &ClientConfig, timeout: Duration) -> Result<Admin, AdminError> {
        let timeout = check_timeout(timeout)?;
        Ok(Admin {
            native: Native::start(config, None)?,
            timeout,
            retry: None,
        })
    }

    /// Creates an admin client for a cluster whose OAUTHBEARER tokens the
    /// application signs (`sasl.mechanism = OAUTHBEARER` in `config`):
    /// every handle gets a token from `tokens` before its first request and
    /// a new one before the last expires.
    pub fn with_token_source(
        config: &ClientConfig,
        tokens: TokenSource,
    ) -> Result<Admin, AdminError> {
        Admin::with_timeout_and_token_source(config, DEFAULT_TIMEOUT, tokens)
    }

    /// [`Admin::with_token_source`] with calls timing out after `timeout`.
    pub fn with_timeout_and_token_source(
        config: &ClientConfig,
        timeout: Duration,
        tokens: TokenSource,
    ) -> Result<Admin, AdminError> {
        Ok(Admin {
            native: Native::start(config, Some(tokens))?,
            timeout: check_timeout(timeout)?,
            retry: None,
        })
    }

    /// A handle on the same client whose calls use another timeout.
    pub fn clone_with_timeout(&self, timeout: Duration) -> Result<Admin, AdminError> {
        Ok(Admin {
            native: Arc::clone(&self.native),
            timeout: check_timeout(timeout)?,
            retry: self.retry,
        })
    }

    /// This handle, retrying every call that fails with a retriable error
    /// ([`AdminError::is_retriable`]: coordinator loading or moving, leader
    /// elections, timeouts, lost connections) per `policy`, with one
    /// warning logged per retry. Without it a call is tried once.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Admin {
        self.retry = Some(policy);
        self
    }

    /// Runs one call, retried when the handle has a retry policy.
    async fn call<T, Fut>(
        &self,
        op: &'static str,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, AdminError>
    where
        Fut: Future<Output = Result<T, AdminError>>,
    {
        match &self.retry {
            None => attempt().await,
            Some(policy) => retry::retry(policy, op, AdminError::is_retriable, attempt).await,
        }
    }

    /// The timeout of this handle's calls.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn ctx(&self, op: &'static str) -> Ctx {
        Ctx {
            op,
            timeout: self.timeout,
        }
    }

    /// Awaits a native request's result event and decodes it.
    async fn finish<T>(
        &self,
        ctx: &Ctx,
        resource: impl FnOnce() -> Resource,
        rx: native::Rx,
        decode: impl FnOnce(&native::Event) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        match tokio::time::timeout(self.timeout + GRACE, rx).await {
            Err(_) => Err(AdminError::Timeout {
                op: ctx.op,
                resource: resource(),
                timeout: self.timeout,
            }),
            Ok(Err(_)) => Err(AdminError::Internal {
                op: ctx.op,
                message: "the admin poll thread dropped the request".into(),
            }),
            Ok(Ok(event)) => decode(&event),
        }
    }

    /// Runs a future built on the safe rdkafka admin API on its own task, so
    /// the request is seen through even if the caller stops waiting, and
    /// waits for it with the timeout.
    async fn detached<T: Send + 'static>(
        &self,
        op: &'static str,
        resource: impl FnOnce() -> Resource,
        fut: impl Future<Output = Result<T, AdminError>> + Send + 'static,
    ) -> Result<T, AdminError> {
        join_with_timeout(op, self.timeout, resource, tokio::spawn(fut)).await
    }

    /// Runs a blocking librdkafka call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        resource: impl FnOnce() -> Resource,
        f: impl FnOnce(&Native, Duration) -> Result<T, AdminError> + Send + 'static,
    ) -> Result<T, AdminError> {
        let native = Arc::clone(&self.native);
        let timeout = self.timeout;
        let handle = tokio::task::spawn_blocking(move || f(&native, timeout));
        join_with_timeout(op, self.timeout, resource, handle).await
    }

    /// Options for the safe rdkafka admin calls. The broker-side operation
    /// timeout (how long CreateTopics & co. wait for the controller) is kept
    /// below the request timeout so the broker answers in time.
    fn rd_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout * 2 / 3))
    }

    // ----------------------------------------------------------------------
    // Consumer groups (rdkafka-sys)
    // ----------------------------------------------------------------------

    /// Lists every consumer group of the cluster (`ListGroups` on every
    /// broker). Fails if any broker could not be asked, rather than
    /// returning a partial list.
    pub async fn list_consumer_groups(&self) -> Result<Vec<GroupListing>, AdminError> {
        self.call("ListConsumerGroups", || async move {
            let ctx = self.ctx("ListConsumerGroups");
            let rx = native::list_consumer_groups(&self.native, &ctx)?;
            self.finish(
                &ctx,
                || Resource::Cluster,
                rx,
                |ev| native::decode_list_consumer_groups(&ctx, ev),
            )
            .await
        })
        .await
    }

    /// Describes the given groups. A group that could not be described has
    /// its [`GroupDescription::error`] set (e.g. [`AdminError::GroupNotFound`]);
    /// the call itself fails only for request-level errors.
    pub async fn describe_consumer_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<GroupDescription>, AdminError> {
        self.call("DescribeConsumerGroups", || async move {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            let ctx = self.ctx("DescribeConsumerGroups");
            let rx = native::describe_consumer_groups(&self.native, &ctx, groups)?;
            self.finish(
                &ctx,
                || Resource::Groups(groups.iter().map(|g| g.to_string()).collect()),
                rx,
                |ev| native::decode_describe_consumer_groups(&ctx, ev, groups),
            )
            .await
        })
        .await
    }

    /// The committed offsets of `group` — all of them, or only those of
    /// `partitions` (partitions without a commit then have `offset: None`).
    /// Works for any group without joining it.
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[(&str, i32)]>,
    ) -> Result<Vec<GroupOffset>, AdminError> {
        self.call("ListConsumerGroupOffsets", || async move {
            let ctx = self.ctx("ListConsumerGroupOffsets");
            let rx = native::list_consumer_group_offsets(&self.native, &ctx, group, partitions)?;
            self.finish(
                &ctx,
                || Resource::Group(group.to_string()),
                rx,
                |ev| native::decode_list_consumer_group_offsets(&ctx, ev, group),
            )
            .await
        })
        .await
    }

    /// The offsets `group` has committed on `partitions`, by (topic,
    /// partition); partitions without a commit are absent. A group that does
    /// not exist has committed nothing, so it gives an empty map rather than
    /// an error: callers compare what should be committed with what is.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: &[(&str, i32)],
    ) -> Result<HashMap<(String, i32), i64>, AdminError> {
        match self
            .list_consumer_group_offsets(group, Some(partitions))
            .await
        {
            Ok(list) => Ok(list
                .into_iter()
                .filter_map(|o| Some(((o.topic, o.partition), o.offset?)))
                .collect()),
            Err(AdminError::GroupNotFound { .. }) => Ok(HashMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Sets `group`'s committed offsets for the given `(topic, partition,
    /// offset)`s. The broker only accepts this for a group without active
    /// members: otherwise [`AdminError::GroupNotEmpty`]. Other per-partition
    /// failures come back as [`AdminError::Partitions`].
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), AdminError> {
        self.call("AlterConsumerGroupOffsets", || async move {
            if offsets.is_empty() {
                return Ok(());
            }
            let ctx = self.ctx("AlterConsumerGroupOffsets");
            let rx = native::alter_consumer_group_offsets(&self.native, &ctx, group, offsets)?;
            self.finish(
                &ctx,
                || Resource::Group(group.to_string()),
                rx,
                |ev| native::decode_alter_consumer_group_offsets(&ctx, ev, group),
            )
            .await
        })
        .await
    }

    /// Deletes consumer groups (safe rdkafka API). Per group: the name, or
    /// [`AdminError::GroupNotEmpty`] / [`AdminError::GroupNotFound`] / other.
    pub async fn delete_consumer_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<NameResult>, AdminError> {
        self.call("DeleteGroups", || async move {
            const OP: &str = "DeleteGroups";
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let (native, opts, timeout) =
                (Arc::clone(&self.native), self.rd_options(), self.timeout);
            let res_names = names.clone();
            self.detached(OP, move || Resource::Groups(res_names), async move {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let results = native
                    .client
                    .delete_groups(&refs, &opts)
                    .await
                    .map_err(|e| {
                        classify_kafka(OP, Resource::Groups(names.clone()), &e, timeout)
                    })?;
                Ok(results
                    .into_iter()
                    .map(|r| {
                        r.map_err(|(name, code)| {
                            classify(OP, Resource::Group(name), code, None, timeout)
                        })
                    })
                    .collect())
            })
            .await
        })
        .await
    }

    // ----------------------------------------------------------------------
    // Topic configs (rdkafka-sys)
    // ----------------------------------------------------------------------

    /// Applies `changes` to `topic`'s config with IncrementalAlterConfigs
    /// (keys not mentioned keep their value). A broker without the API gives
    /// [`AdminError::UnsupportedVersion`]; a refusing alter-config policy
    /// [`AdminError::PolicyViolation`]; a bad key or value names the topic
    /// and keys. The change is made by the controller; other brokers (and
    /// so [`Admin::describe_topic_configs`]) see it a moment later.
    pub async fn incremental_alter_configs(
        &self,
        topic: &str,
        changes: &[ConfigChange],
    ) -> Result<(), AdminError> {
        self.call("IncrementalAlterConfigs", || async move {
            if changes.is_empty() {
                return Ok(());
            }
            let ctx = self.ctx("IncrementalAlterConfigs");
            let rx = native::incremental_alter_configs(&self.native, &ctx, topic, changes)?;
            self.finish(
                &ctx,
                || Resource::TopicConfig {
                    topic: topic.to_string(),
                    keys: changes.iter().map(|c| c.key.clone()).collect(),
                },
                rx,
                |ev| native::decode_incremental_alter_configs(&ctx, ev, topic, changes),
            )
            .await
        })
        .await
    }

    /// Every config key of `topic`, defaults included. A missing topic gives
    /// [`AdminError::UnknownTopicOrPartition`] (the safe rdkafka call would
    /// silently return nothing, hence the native one).
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, AdminError> {
        self.call("DescribeConfigs", || async move {
            let ctx = self.ctx("DescribeConfigs");
            let rx = native::describe_topic_configs(&self.native, &ctx, topic)?;
            self.finish(
                &ctx,
                || Resource::Topic(topic.to_string()),
                rx,
                |ev| native::decode_describe_topic_configs(&ctx, ev, topic),
            )
            .await
        })
        .await
    }

    // ----------------------------------------------------------------------
    // ACLs (rdkafka-sys)
    // ----------------------------------------------------------------------

    /// The ACLs `filter` matches, literal and prefixed (DescribeAcls). A
    /// cluster without an authorizer gives [`AdminError::Broker`] with
    /// `SecurityDisabled`; a principal not allowed to describe the cluster
    /// gives `ClusterAuthorizationFailed`.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, AdminError> {
        self.call("DescribeAcls", || async move {
            let ctx = self.ctx("DescribeAcls");
            let rx = native::describe_acls(&self.native, &ctx, filter)?;
            self.finish(
                &ctx,
                || Resource::Acl(format!("{filter:?}")),
                rx,
                |ev| native::decode_describe_acls(&ctx, ev, filter),
            )
            .await
        })
        .await
    }

    /// Creates ACLs (CreateAcls). The outer error is for the request as a
    /// whole; then one result per ACL, in order: the broker accepts or
    /// refuses each one on its own (an unknown principal type, say), and an
    /// ACL librdkafka cannot express (a value from a newer broker, a NUL
    /// byte) is refused with [`AdminError::InvalidArgument`] without
    /// holding up the others. Creating an ACL that exists already succeeds.
    pub async fn create_acls(
        &self,
        acls: &[AclBinding],
    ) -> Result<Vec<Result<(), AdminError>>, AdminError> {
        self.call("CreateAcls", || async move {
            let ctx = self.ctx("CreateAcls");
            let (checked, valid) = check_acls(&ctx, acls);
            if valid.is_empty() {
                return Ok(with_local_refusals(checked, Vec::new()));
            }
            let rx = native::create_acls(&self.native, &ctx, &valid)?;
            let sent = self
                .finish(
                    &ctx,
                    || Resource::Acl(format!("{} ACLs", valid.len())),
                    rx,
                    |ev| native::decode_create_acls(&ctx, ev, &valid),
                )
                .await?;
            Ok(with_local_refusals(checked, sent))
        })
        .await
    }

    /// Deletes exactly these ACLs (DeleteAcls with one fully specified
    /// filter each). Per ACL, in order: how many ACLs were deleted (0 when
    /// it did not exist), or why it was refused (as for
    /// [`Admin::create_acls`]).
    pub async fn delete_acls(
        &self,
        acls: &[AclBinding],
    ) -> Result<Vec<Result<usize, AdminError>>, AdminError> {
        self.call("DeleteAcls", || async move {
            let ctx = self.ctx("DeleteAcls");
            let (checked, valid) = check_acls(&ctx, acls);
            if valid.is_empty() {
                return Ok(with_local_refusals(checked, Vec::new()));
            }
            let rx = native::delete_acls(&self.native, &ctx, &valid)?;
            let sent = self
                .finish(
                    &ctx,
                    || Resource::Acl(format!("{} ACLs", valid.len())),
                    rx,
                    |ev| native::decode_delete_acls(&ctx, ev, &valid),
                )
                .await?;
            Ok(with_local_refusals(checked, sent))
        })
        .await
    }

    // ----------------------------------------------------------------------
    // Topics (safe rdkafka)
    // ----------------------------------------------------------------------

    /// Creates topics. The outer error is for the request as a whole; per
    /// topic: the name, [`AdminError::TopicAlreadyExists`], or another error.
    /// Waits (up to 2/3 of the timeout) for the controller to finish creating
    /// them.
    pub async fn create_topics(
        &self,
        topics: &[NewTopicSpec],
    ) -> Result<Vec<NameResult>, AdminError> {
        self.call("CreateTopics", || async move {
            const OP: &str = "CreateTopics";
            if topics.is_empty() {
                return Ok(Vec::new());
            }
            let specs = topics.to_vec();
            let all = move || Resource::Topics(topics.iter().map(|t| t.name.clone()).collect());
            let names = all();
            let (native, opts, timeout) =
                (Arc::clone(&self.native), self.rd_options(), self.timeout);
            self.detached(OP, all, async move {
                let new_topics: Vec<NewTopic<'_>> = specs
                    .iter()
                    .map(|s| {
                        let replication = TopicReplication::Fixed(s.replication.unwrap_or(-1));
                        let mut t = NewTopic::new(&s.name, s.partitions, replication);
                        for (k, v) in &s.configs {
                            t = t.set(k, v);
                        }
                        t
                    })
                    .collect();
                let results = native
                    .client
                    .create_topics(&new_topics, &opts)
                    .await
                    .map_err(|e| classify_kafka(OP, names, &e, timeout))?;
                Ok(topic_results(OP, results, timeout))
            })
            .await
        })
        .await
    }

    /// Deletes topics. Per topic: the name, or e.g.
    /// [`AdminError::UnknownTopicOrPartition`].
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<Vec<NameResult>, AdminError> {
        self.call("DeleteTopics", || async move {
            const OP: &str = "DeleteTopics";
            if topics.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
            let res_names = names.clone();
            let (native, opts, timeout) =
                (Arc::clone(&self.native), self.rd_options(), self.timeout);
            self.detached(OP, move || Resource::Topics(res_names), async move {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let results = native
                    .client
                    .delete_topics(&refs, &opts)
                    .await
                    .map_err(|e| {
                        classify_kafka(OP, Resource::Topics(names.clone()), &e, timeout)
                    })?;
                Ok(topic_results(OP, results, timeout))
            })
            .await
        })
        .await
    }

    /// Grows `topic` to `new_total` partitions (Kafka cannot shrink).
    pub async fn create_partitions(&self, topic: &str, new_total: usize) -> Result<(), AdminError> {
        self.call("CreatePartitions", || async move {
            const OP: &str = "CreatePartitions";
            let name = topic.to_string();
            let (native, opts, timeout) =
                (Arc::clone(&self.native), self.rd_options(), self.timeout);
            self.detached(OP, || Resource::Topic(topic.to_string()), async move {
                let req = NewPartitions::new(&name, new_total);
                let results = native
                    .client
                    .create_partitions([&req], &opts)
                    .await
                    .map_err(|e| classify_kafka(OP, Resource::Topic(name.clone()), &e, timeout))?;
                match topic_results(OP, results, timeout).into_iter().next() {
                    Some(r) => r.map(drop),
                    None => Err(AdminError::Internal {
                        op: OP,
                        message: format!("no result for topic '{name}'"),
                    }),
                }
            })
            .await
        })
        .await
    }

    /// Deletes the records before `offset` in each `(topic, partition,
    /// offset)`. Returns each partition's new low watermark.
    pub async fn delete_records(
        &self,
        before: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionOffset>, AdminError> {
        self.call("DeleteRecords", || async move {
            const OP: &str = "DeleteRecords";
            if before.is_empty() {
                return Ok(Vec::new());
            }
            let all_topics = || {
                let mut t: Vec<String> = before.iter().map(|(t, _, _)| t.to_string()).collect();
                t.dedup();
                Resource::Topics(t)
            };
            let tpl = native::partition_list(
                OP,
                &all_topics(),
                before.iter().map(|(t, p, o)| (t.to_string(), *p, Some(*o))),
            )?;
            let resource = all_topics();
            let (native, opts, timeout) =
                (Arc::clone(&self.native), self.rd_options(), self.timeout);
            self.detached(OP, all_topics, async move {
                let result = native
                    .client
                    .delete_records(&tpl, &opts)
                    .await
                    .map_err(|e| classify_kafka(OP, resource, &e, timeout))?;
                partition_offsets(OP, &result)
            })
            .await
        })
        .await
    }

    // ----------------------------------------------------------------------
    // Metadata and offsets (safe rdkafka, blocking → spawn_blocking)
    // ----------------------------------------------------------------------

    /// Every topic of the cluster (internal ones included) with its partition
    /// count. Topics whose metadata carries an error (e.g. still being
    /// created) are left out.
    pub async fn topic_metadata(&self) -> Result<BTreeMap<String, usize>, AdminError> {
        self.call("Metadata", || async move {
            const OP: &str = "Metadata";
            self.blocking(
                OP,
                || Resource::Cluster,
                |native, timeout| {
                    let md = native
                        .client
                        .inner()
                        .fetch_metadata(None, timeout)
                        .map_err(|e| classify_kafka(OP, Resource::Cluster, &e, timeout))?;
                    Ok(md
                        .topics()
                        .iter()
                        .filter(|t| {
                            if let Some(err) = t.error() {
                                tracing::debug!(
                                    topic = t.name(),
                                    ?err,
                                    "skipping topic with metadata error"
                                );
                                false
                            } else {
                                true
                            }
                        })
                        .map(|t| (t.name().to_string(), t.partitions().len()))
                        .collect())
                },
            )
            .await
        })
        .await
    }

    /// Low and high watermark of one partition.
    pub async fn watermarks(&self, topic: &str, partition: i32) -> Result<Watermarks, AdminError> {
        self.call("Watermarks", || async move {
            const OP: &str = "Watermarks";
            let resource = || Resource::Partition {
                topic: topic.to_string(),
                partition,
            };
            let name = topic.to_string();
            self.blocking(OP, resource, move |native, timeout| {
                let (low, high) = native
                    .client
                    .inner()
                    .fetch_watermarks(&name, partition, timeout)
                    .map_err(|e| {
                        let r = Resource::Partition {
                            topic: name.clone(),
                            partition,
                        };
                        classify_kafka(OP, r, &e, timeout)
                    })?;
                Ok(Watermarks { low, high })
            })
            .await
        })
        .await
    }

    /// For each `(topic, partition, timestamp_ms)`: the earliest offset whose
    /// timestamp is at or after the timestamp, or `None` if there is none.
    pub async fn offsets_for_times(
        &self,
        query: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionOffset>, AdminError> {
        self.call("OffsetsForTimes", || async move {
            const OP: &str = "OffsetsForTimes";
            if query.is_empty() {
                return Ok(Vec::new());
            }
            let all_topics = || {
                let mut t: Vec<String> = query.iter().map(|(t, _, _)| t.to_string()).collect();
                t.dedup();
                Resource::Topics(t)
            };
            if let Some((t, p, ts)) = query.iter().find(|(_, _, ts)| *ts < 0) {
                return Err(AdminError::InvalidArgument {
                    op: OP,
                    resource: Resource::Partition {
                        topic: t.to_string(),
                        partition: *p,
                    },
                    message: format!("negative timestamp {ts}"),
                });
            }
            let tpl = native::partition_list(
                OP,
                &all_topics(),
                query
                    .iter()
                    .map(|(t, p, ts)| (t.to_string(), *p, Some(*ts))),
            )?;
            let resource = all_topics();
            self.blocking(OP, all_topics, move |native, timeout| {
                let result = native
                    .consumer()?
                    .offsets_for_times(tpl, timeout)
                    .map_err(|e| classify_kafka(OP, resource, &e, timeout))?;
                partition_offsets(OP, &result)
            })
            .await
        })
        .await
    }
}

fn check_timeout(timeout: Duration) -> Result<Duration, AdminError> {
    if timeout < Duration::from_millis(1) || timeout > MAX_TIMEOUT {
        return Err(AdminError::InvalidArgument {
            op: "Admin::new",
            resource: Resource::Cluster,
            message: format!("timeout {timeout:?} is outside 1ms..=1h"),
        });
    }
    Ok(timeout)
}

async fn join_with_timeout<T>(
    op: &'static str,
    timeout: Duration,
    resource: impl FnOnce() -> Resource,
    handle: tokio::task::JoinHandle<Result<T, AdminError>>,
) -> Result<T, AdminError> {
    match tokio::time::timeout(timeout + GRACE, handle).await {
        Err(_) => Err(AdminError::Timeout {
            op,
            resource: resource(),
            timeout,
        }),
        Ok(Err(join)) => Err(AdminError::Internal {
            op,
            message: format!("the admin task failed: {join}"),
        }),
        Ok(Ok(r)) => r,
    }
}

fn topic_results(
    op: &'static str,
    results: Vec<rdkafka::admin::TopicResult>,
    timeout: Duration,
) -> Vec<NameResult> {
    results
        .into_iter()
        .map(|r| r.map_err(|(name, code)| classify(op, Resource::Topic(name), code, None, timeout)))
        .collect()
}

fn partition_offsets(
    op: &'static str,
    tpl: &rdkafka::TopicPartitionList,
) -> Result<Vec<PartitionOffset>, AdminError> {
    let mut out = Vec::with_capacity(tpl.count());
    let mut failures = Vec::new();
    for e in tpl.elements() {
        if let Err(err) = e.error() {
            let code = error::kafka_error_code(&err).unwrap_or(ErrorCode::Unknown);
            failures.push(PartitionError {
                topic: e.topic().to_string(),
                partition: e.partition(),
                code,
                message: error::describe(code),
            });
            continue;
        }
        out.push(PartitionOffset {
            topic: e.topic().to_string(),
            partition: e.partition(),
            offset: match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            },
        });
    }
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(AdminError::Partitions {
            op,
            group: None,
            failures,
        })
    }
}
