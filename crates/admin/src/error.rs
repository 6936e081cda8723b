//! Typed errors. Every variant names the operation and the resource it was
//! about, and carries the broker (or librdkafka) error code and message where
//! there is one.

use std::fmt;
use std::time::Duration;

use rdkafka::error::KafkaError;

/// A librdkafka / Kafka protocol error code (`RD_KAFKA_RESP_ERR_*`).
///
/// Negative values are local librdkafka errors, positive ones come from the
/// broker.
pub use rdkafka::types::RDKafkaErrorCode as ErrorCode;

/// The thing an admin call was about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource {
    /// The cluster as a whole (listing groups, metadata).
    Cluster,
    /// A consumer group.
    Group(String),
    /// Several consumer groups in one request.
    Groups(Vec<String>),
    /// A topic.
    Topic(String),
    /// Several topics in one request.
    Topics(Vec<String>),
    /// One partition of a topic.
    Partition {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
    },
    /// A group's committed offset for one partition.
    GroupPartition {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
    },
    /// Configuration keys of a topic.
    TopicConfig {
        /// Topic name.
        topic: String,
        /// The keys the request touched.
        keys: Vec<String>,
    },
    /// One ACL, or the ACLs a filter matches (`Topic:LITERAL:orders
    /// User:alice@* ALLOW READ`).
    Acl(String),
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Cluster => write!(f, "cluster"),
            Resource::Group(g) => write!(f, "group '{g}'"),
            Resource::Groups(gs) => write!(f, "groups {gs:?}"),
            Resource::Topic(t) => write!(f, "topic '{t}'"),
            Resource::Topics(ts) => write!(f, "topics {ts:?}"),
            Resource::Partition { topic, partition } => write!(f, "partition {topic}/{partition}"),
            Resource::GroupPartition {
                group,
                topic,
                partition,
            } => write!(f, "group '{group}' partition {topic}/{partition}"),
            Resource::TopicConfig { topic, keys } => {
                write!(f, "topic '{topic}' config {keys:?}")
            }
            Resource::Acl(acl) => write!(f, "ACL {acl}"),
        }
    }
}

/// The failure of one partition within a multi-partition call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The error code returned for this partition.
    pub code: ErrorCode,
    /// Human-readable description of `code`.
    pub message: String,
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}: {:?}: {}",
            self.topic, self.partition, self.code, self.message
        )
    }
}

fn join_failures(failures: &[PartitionError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The underlying librdkafka client could not be created (bad config).
    #[error("creating the Kafka admin client failed: {0}")]
    Client(#[source] KafkaError),

    /// An argument was rejected before anything was sent (NUL byte in a name,
    /// out-of-range value, …), or librdkafka rejected the request locally.
    #[error("{op}: invalid argument for {resource}: {message}")]
    InvalidArgument {
        /// The admin operation.
        op: &'static str,
        /// What the argument described.
        resource: Resource,
        /// Why it was rejected.
        message: String,
    },

    /// No answer within the configured timeout.
    #[error("{op} on {resource} timed out after {timeout:?}")]
    Timeout {
        /// The admin operation.
        op: &'static str,
        /// What the request was about.
        resource: Resource,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The broker does not implement the API (or the version of it) this call
    /// needs. Callers should report "broker lacks API" rather than fail hard.
    #[error(
        "{op}: the broker does not support the API needed for {resource}: {code:?}: {message}"
    )]
    UnsupportedVersion {
        /// The admin operation.
        op: &'static str,
        /// What the request was about.
        resource: Resource,
        /// `UnsupportedVersion` (broker) or `UnsupportedFeature` (librdkafka).
        code: ErrorCode,
        /// Broker / librdkafka message.
        message: String,
    },

    /// A broker-side policy (e.g. `create.topic.policy.class.name` or
    /// `alter.config.policy.class.name`) refused the request.
    #[error("{op}: broker policy refused the change to {resource}: {message}")]
    PolicyViolation {
        /// The admin operation.
        op: &'static str,
        /// What the request was about.
        resource: Resource,
        /// The policy's message.
        message: String,
    },

    /// The group has active members, so the broker refuses to change (or
    /// delete) its committed offsets.
    #[error("{op}: group '{group}' is not empty (it has active members): {code:?}: {message}")]
    GroupNotEmpty {
        /// The admin operation.
        op: &'static str,
        /// The group.
        group: String,
        /// The code the broker used to say so.
        code: ErrorCode,
        /// Broker message.
        message: String,
    },

    /// The group does not exist.
    #[error("{op}: group '{group}' does not exist: {message}")]
    GroupNotFound {
        /// The admin operation.
        op: &'static str,
        /// The group.
        group: String,
        /// Broker message.
        message: String,
    },

    /// `CreateTopics` for a topic that already exists.
    #[error("{op}: topic '{topic}' already exists: {message}")]
    TopicAlreadyExists {
        /// The admin operation.
        op: &'static str,
        /// The topic.
        topic: String,
        /// Broker message.
        message: String,
    },

    /// The topic or partition does not exist.
    #[error("{op}: {resource} does not exist: {code:?}: {message}")]
    UnknownTopicOrPartition {
        /// The admin operation.
        op: &'static str,
        /// The missing topic / partition.
        resource: Resource,
        /// The code used.
        code: ErrorCode,
        /// Broker message.
        message: String,
    },

    /// Any other error returned by the broker or librdkafka.
    #[error("{op} failed for {resource}: {code:?}: {message}")]
    Broker {
        /// The admin operation.
        op: &'static str,
        /// What the request was about.
        resource: Resource,
        /// The code.
        code: ErrorCode,
        /// Broker / librdkafka message.
        message: String,
    },

    /// Some partitions of a multi-partition call failed (the others
    /// succeeded).
    #[error("{op}: {} partition(s) failed{}: {}", failures.len(), group.as_deref().map(|g| format!(" for group '{g}'")).unwrap_or_default(), join_failures(failures))]
    Partitions {
        /// The admin operation.
        op: &'static str,
        /// The group, for group-offset calls.
        group: Option<String>,
        /// One entry per failed partition.
        failures: Vec<PartitionError>,
    },

    /// librdkafka answered with something this crate did not expect. A bug
    /// here or in librdkafka, never a broker condition.
    #[error("{op}: unexpected result: {message}")]
    Internal {
        /// The admin operation.
        op: &'static str,
        /// Description.
        message: String,
    },
}

impl AdminError {
    /// The error code behind this error, if there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AdminError::Client(e) => kafka_error_code(e),
            AdminError::InvalidArgument { .. } => Some(ErrorCode::InvalidArgument),
            AdminError::Timeout { .. } => Some(ErrorCode::OperationTimedOut),
            AdminError::UnsupportedVersion { code, .. }
            | AdminError::GroupNotEmpty { code, .. }
            | AdminError::UnknownTopicOrPartition { code, .. }
            | AdminError::Broker { code, .. } => Some(*code),
            AdminError::PolicyViolation { .. } => Some(ErrorCode::PolicyViolation),
            AdminError::GroupNotFound { .. } => Some(ErrorCode::GroupIdNotFound),
            AdminError::TopicAlreadyExists { .. } => Some(ErrorCode::TopicAlreadyExists),
            AdminError::Partitions { failures, .. } => failures.first().map(|f| f.code),
            AdminError::Internal { .. } => None,
        }
    }

    /// True for [`AdminError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, AdminError::Timeout { .. })
    }

    /// True for [`AdminError::UnsupportedVersion`]: the broker lacks the API.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, AdminError::UnsupportedVersion { .. })
    }
}

/// Extracts the code from a safe-rdkafka error (including `AdminOp`, which
/// `KafkaError::rdkafka_error_code` leaves out).
pub(crate) fn kafka_error_code(e: &KafkaError) -> Option<ErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Group-offset codes by which the broker says "this group has live members".
///
/// An OffsetCommit sent by an admin client (generation -1, no member id) to a
/// group that is not empty fails with `UNKNOWN_MEMBER_ID` on the classic
/// protocol (and with the member-epoch codes on the KIP-848 protocol); group
/// deletion says `NON_EMPTY_GROUP`.
pub(crate) fn means_group_active(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NonEmptyGroup
            | ErrorCode::UnknownMemberId
            | ErrorCode::RebalanceInProgress
            | ErrorCode::IllegalGeneration
            | ErrorCode::FencedMemberEpoch
            | ErrorCode::StaleMemberEpoch
    )
}

/// Turns a code + message about `resource` into the most specific variant.
pub(crate) fn classify(
    op: &'static str,
    resource: Resource,
    code: ErrorCode,
    message: Option<String>,
    timeout: Duration,
) -> AdminError {
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| describe(code));
    match code {
        ErrorCode::OperationTimedOut => AdminError::Timeout {
            op,
            resource,
            timeout,
        },
        ErrorCode::UnsupportedVersion | ErrorCode::UnsupportedFeature => {
            AdminError::UnsupportedVersion {
                op,
                resource,
                code,
                message,
            }
        }
        ErrorCode::PolicyViolation => AdminError::PolicyViolation {
            op,
            resource,
            message,
        },
        ErrorCode::InvalidArgument => AdminError::InvalidArgument {
            op,
            resource,
            message,
        },
        ErrorCode::TopicAlreadyExists => match resource {
            Resource::Topic(topic) => AdminError::TopicAlreadyExists { op, topic, message },
            resource => AdminError::Broker {
                op,
                resource,
                code,
                message,
            },
        },
        ErrorCode::GroupIdNotFound => match resource {
            Resource::Group(group) => AdminError::GroupNotFound { op, group, message },
            resource => AdminError::Broker {
                op,
                resource,
                code,
                message,
            },
        },
        ErrorCode::NonEmptyGroup => match resource {
            Resource::Group(group) => AdminError::GroupNotEmpty {
                op,
                group,
                code,
                message,
            },
            resource => AdminError::Broker {
                op,
                resource,
                code,
                message,
            },
        },
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::UnknownTopic
        | ErrorCode::UnknownPartition => AdminError::UnknownTopicOrPartition {
            op,
            resource,
            code,
            message,
        },
        _ => AdminError::Broker {
            op,
            resource,
            code,
            message,
        },
    }
}

/// Same as [`classify`] for an error of the safe rdkafka API.
pub(crate) fn classify_kafka(
    op: &'static str,
    resource: Resource,
    err: &KafkaError,
    timeout: Duration,
) -> AdminError {
    match kafka_error_code(err) {
        // librdkafka's description of the code; the `KafkaError` text only
        // repeats the code with a generic prefix.
        Some(code) => classify(op, resource, code, None, timeout),
        None => match err {
            KafkaError::Nul(_) | KafkaError::AdminOpCreation(_) => AdminError::InvalidArgument {
                op,
                resource,
                message: err.to_string(),
            },
            KafkaError::Canceled => AdminError::Internal {
                op,
                message: "the request was canceled by librdkafka".to_string(),
            },
            _ => AdminError::Internal {
                op,
                message: err.to_string(),
            },
        },
    }
}

/// librdkafka's text for a code (used when the broker sent no message).
pub(crate) fn describe(code: ErrorCode) -> String {
    // `Display` for the code is "Name (description)"; keep the description.
    let s = code.to_string();
    match (s.find('('), s.rfind(')')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn classify_picks_specific_variants() {
        let e = classify(
            "CreateTopics",
            Resource::Topic("t".into()),
            ErrorCode::TopicAlreadyExists,
            None,
            T,
        );
        assert!(matches!(e, AdminError::TopicAlreadyExists { ref topic, .. } if topic == "t"));
        assert!(e.to_string().contains("'t'"), "{e}");

        let e = classify(
            "IncrementalAlterConfigs",
            Resource::TopicConfig {
                topic: "t".into(),
                keys: vec!["retention.ms".into()],
            },
            ErrorCode::UnsupportedVersion,
            Some("nope".into()),
            T,
        );
        assert!(e.is_unsupported());
        assert!(e.to_string().contains("retention.ms"), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");

        let e = classify(
            "DeleteGroups",
            Resource::Group("g".into()),
            ErrorCode::NonEmptyGroup,
            Some(String::new()),
            T,
        );
        assert!(matches!(e, AdminError::GroupNotEmpty { .. }));
        // empty broker message falls back to librdkafka's description
        assert!(!e.to_string().ends_with(": "), "{e}");

        let e = classify(
            "X",
            Resource::Cluster,
            ErrorCode::OperationTimedOut,
            None,
            T,
        );
        assert!(e.is_timeout());
        assert_eq!(e.code(), Some(ErrorCode::OperationTimedOut));
    }

    #[test]
    fn partitions_error_lists_each_failure() {
        let e = AdminError::Partitions {
            op: "AlterConsumerGroupOffsets",
            group: Some("g1".into()),
            failures: vec![
                PartitionError {
                    topic: "a".into(),
                    partition: 0,
                    code: ErrorCode::UnknownTopicOrPartition,
                    message: "gone".into(),
                },
                PartitionError {
                    topic: "b".into(),
                    partition: 3,
                    code: ErrorCode::OffsetOutOfRange,
                    message: "bad".into(),
                },
            ],
        };
        let s = e.to_string();
        assert!(s.contains("2 partition(s) failed for group 'g1'"), "{s}");
        assert!(s.contains("a/0") && s.contains("b/3"), "{s}");
    }

    #[test]
    fn describe_strips_name() {
        let d = describe(ErrorCode::TopicAlreadyExists);
        assert!(!d.contains("TopicAlreadyExists"), "{d}");
        assert!(d.to_lowercase().contains("already exists"), "{d}");
    }
}
