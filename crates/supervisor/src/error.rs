//! The engine's error: where it happened (cluster, topic, partition) and
//! why, with the client library's own error as the source where there is
//! one, so that retry loops can tell a failure that needs an operator
//! (authorization refused, an invalid request) from a passing one (a
//! broker restarting, a request timing out).

use std::fmt;

use ferry_admin::AdminError;
use ferry_config::Cluster;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// An error of the engine. Its text always names the cluster, and the topic
/// and partition where there is one, then the cause.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A cluster-wide failure known only by its text: a client that cannot
    /// be created, a connection refused.
    #[error("cluster {cluster}: {cause}")]
    Client {
        /// The cluster's name in the topology.
        cluster: String,
        /// Why, secrets scrubbed.
        cause: String,
    },
    /// A failure about one topic, known only by its text.
    #[error("cluster {cluster}, topic {topic}: {cause}")]
    Topic {
        /// The cluster's name.
        cluster: String,
        /// The topic.
        topic: String,
        /// Why, secrets scrubbed.
        cause: String,
    },
    /// A failure about one partition, known only by its text.
    #[error("cluster {cluster}, topic {topic}, partition {partition}: {cause}")]
    Partition {
        /// The cluster's name.
        cluster: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why, secrets scrubbed.
        cause: String,
    },
    /// A request to a cluster failed; the client's error is the source.
    #[error("{place}: {doing}: {source}")]
    Request {
        /// Which cluster, topic and partition the request was about.
        place: Place,
        /// What the engine was doing, e.g. "metadata request failed".
        doing: String,
        /// Boxed: an admin error is large, and every engine `Result` would
        /// carry its size.
        #[source]
        source: Box<Cause>,
    },
    /// A broken expectation inside the engine (a task that panicked, a
    /// flow naming a cluster the validated topology lacks): a bug, not a
    /// cluster's failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where an [`EngineError`] happened: a cluster, and the topic and
/// partition when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The cluster's name in the topology.
    pub cluster: String,
    /// The topic, when the failure concerns one.
    pub topic: Option<String>,
    /// The partition of `topic`, when the failure concerns one.
    pub partition: Option<i32>,
}

impl Place {
    /// A whole cluster.
    pub fn cluster(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            topic: None,
            partition: None,
        }
    }

    /// One topic of a cluster.
    pub fn topic(cluster: &str, topic: &str) -> Self {
        Self {
            topic: Some(topic.to_string()),
            ..Self::cluster(cluster)
        }
    }

    /// One partition of a cluster's topic.
    pub fn partition(cluster: &str, topic: &str, partition: i32) -> Self {
        Self {
            partition: Some(partition),
            ..Self::topic(cluster, topic)
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster {}", self.cluster)?;
        if let Some(topic) = &self.topic {
            write!(f, ", topic {topic}")?;
        }
        if let Some(partition) = self.partition {
            write!(f, ", partition {partition}")?;
        }
        Ok(())
    }
}

/// The client library's error beneath an [`EngineError::Request`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// From librdkafka through rust-rdkafka: consumers, producers, metadata.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// From Ferry's admin client (`ferry-admin`): topics, configs, groups.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// An error code a broker gave for one topic or partition inside an
    /// otherwise successful answer (a metadata response, say).
    #[error(transparent)]
    Code(#[from] RDKafkaErrorCode),
}

impl Cause {
    /// The Kafka or librdkafka error code, when the error carries one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Cause::Kafka(e) => e.rdkafka_error_code(),
            Cause::Admin(e) => e.code(),
            Cause::Code(code) => Some(*code),
        }
    }
}

impl EngineError {
    /// A failed request at `place`, with the client's error as the source.
    pub fn request(place: Place, doing: impl Into<String>, source: impl Into<Cause>) -> Self {
        EngineError::Request {
            place,
            doing: doing.into(),
            source: Box::new(source.into()),
        }
    }

    /// A client of `cluster` that could not be created. Kept as text, with
    /// the cluster's secrets scrubbed, on purpose: librdkafka's message
    /// about a refused setting echoes its value, a password among them.
    pub(crate) fn client_creation(cluster: &Cluster, e: &dyn fmt::Display) -> Self {
        EngineError::Client {
            cluster: cluster.name.clone(),
            cause: crate::clients::scrub_for(cluster, &e.to_string()),
        }
    }

    /// [`EngineError::client_creation`] for a client meant to read `topic`.
    pub(crate) fn client_creation_for(
        cluster: &Cluster,
        topic: &str,
        e: &dyn fmt::Display,
    ) -> Self {
        EngineError::Topic {
            cluster: cluster.name.clone(),
            topic: topic.to_string(),
            cause: crate::clients::scrub_for(cluster, &e.to_string()),
        }
    }

    /// True when the same attempt cannot succeed until an operator acts:
    /// the cluster refuses authentication or authorization, or refuses the
    /// request itself (invalid, against a policy, an API the broker lacks).
    /// Errors known only by their text are not final: they are retried,
    /// since nothing shows that a retry cannot fix them.
    pub fn is_fatal(&self) -> bool {
        match self {
            EngineError::Request { source, .. } => source.code().is_some_and(is_final_code),
            _ => false,
        }
    }

    /// True when retrying the same attempt later may succeed: the opposite
    /// of [`EngineError::is_fatal`].
    pub fn is_retriable(&self) -> bool {
        !self.is_fatal()
    }
}

/// Codes by which a cluster answers "no" rather than "not now": the same
/// request gets the same answer until someone changes the cluster's ACLs,
/// credentials or settings, or Ferry's configuration. Left out on purpose:
/// `InvalidPartitions`, which a partition count read from stale metadata
/// can cause, and librdkafka's `Fatal`, which a new client (the flow's
/// restart) clears.
fn is_final_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::DelegationTokenAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::SecurityDisabled
            | C::InvalidTopic
            | C::InvalidReplicationFactor
            | C::InvalidConfig
            | C::InvalidRequest
            | C::PolicyViolation
            | C::UnsupportedVersion
            | C::TopicDeletionDisabled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_and_invalid_requests_are_fatal_passing_failures_are_not() {
        let at = || Place::topic("dst", "src.orders");
        let refused = EngineError::request(
            at(),
            "the cluster refuses the topic",
            RDKafkaErrorCode::TopicAuthorizationFailed,
        );
        assert!(refused.is_fatal() && !refused.is_retriable());
        let metadata = EngineError::request(
            Place::cluster("src"),
            "metadata request failed",
            KafkaError::MetadataFetch(RDKafkaErrorCode::ClusterAuthorizationFailed),
        );
        assert!(metadata.is_fatal());
        let policy = EngineError::request(
            at(),
            "cannot create the topic",
            AdminError::PolicyViolation {
                op: "create_topics",
                resource: ferry_admin::Resource::Topic("src.orders".into()),
                message: "no".into(),
            },
        );
        assert!(policy.is_fatal());

        for passing in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::InvalidPartitions,
            RDKafkaErrorCode::Fatal,
        ] {
            let e = EngineError::request(
                Place::partition("dst", "src.orders", 3),
                "cannot read watermarks",
                KafkaError::OffsetFetch(passing),
            );
            assert!(e.is_retriable(), "{e}");
        }
        let timeout = EngineError::request(
            at(),
            "cannot create the topic",
            AdminError::Timeout {
                op: "create_topics",
                resource: ferry_admin::Resource::Topic("src.orders".into()),
                timeout: std::time::Duration::from_secs(15),
            },
        );
        assert!(timeout.is_retriable());
        // Causes known only as text keep being retried.
        let text = EngineError::Topic {
            cluster: "dst".into(),
            topic: "src.orders".into(),
            cause: "Topic authorization failed".into(),
        };
        assert!(text.is_retriable());
    }

    #[test]
    fn refused_internal_topic_reads_and_writes_are_fatal_their_timeouts_are_not() {
        let progress = || Place::topic("dst", "ferry-progress.src.internal");
        // What `progress::read_compacted` builds when the metadata says no.
        let refused = EngineError::request(
            progress(),
            "cannot load saved progress: not authorized to read the topic",
            RDKafkaErrorCode::from(
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            ),
        );
        assert!(refused.is_fatal(), "{refused}");
        // A progress write the target refuses, as the internal producer's
        // acknowledgement reports it.
        let write = EngineError::request(
            progress(),
            "writing progress of orders:0 failed",
            KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        assert!(write.is_fatal(), "{write}");
        for passing in [
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            KafkaError::MessageProduction(RDKafkaErrorCode::RequestTimedOut),
            KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut),
            KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure),
            // The producer dropped before the cluster answered.
            KafkaError::Canceled,
        ] {
            let e =
                EngineError::request(progress(), "writing progress of orders:0 failed", passing);
            assert!(e.is_retriable(), "{e}");
        }
    }

    #[test]
    fn a_client_that_cannot_be_created_is_reported_without_its_secrets() {
        let text = r#"
[clusters.dst]
bootstrap_servers = "k:9092"
[clusters.dst.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "ferry"
"sasl.password" = "hunter2"
[clusters.src]
bootstrap_servers = "s:9092"
[[flows]]
source = "src"
target = "dst"
topics = ["orders"]
"#;
        let cluster: Cluster = ferry_config::parse(text, "test", std::path::Path::new("."))
            .expect("a valid topology")
            .topology
            .clusters
            .remove("dst")
            .expect("cluster dst");
        let e = EngineError::client_creation(
            &cluster,
            &"Invalid value \"hunter2\" for configuration property \"sasl.password\"",
        );
        let text = e.to_string();
        assert!(text.starts_with("cluster dst: "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(e.is_retriable());
    }

    #[test]
    fn the_text_names_the_place_what_was_done_and_the_cause() {
        let e = EngineError::request(
            Place::partition("dst", "src.orders", 3),
            "cannot look up offsets for timestamp 17",
            KafkaError::OffsetFetch(RDKafkaErrorCode::TopicAuthorizationFailed),
        );
        let text = e.to_string();
        assert!(
            text.starts_with("cluster dst, topic src.orders, partition 3: cannot look up offsets for timestamp 17: "),
            "{text}"
        );
        assert!(text.contains("authorization"), "{text}");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            EngineError::request(
                Place::topic("dst", "src.locked"),
                "the cluster refuses the topic",
                RDKafkaErrorCode::TopicAuthorizationFailed
            )
            .to_string(),
            "cluster dst, topic src.locked: the cluster refuses the topic: \
             TopicAuthorizationFailed (Broker: Topic authorization failed)"
        );
    }
}
