//! Retrying transient Kafka errors within a deadline.
//!
//! A broker that has just started answers group requests with
//! `COORDINATOR_LOAD_IN_PROGRESS` while it loads `__consumer_offsets`, a
//! partition without a leader yet answers `LEADER_NOT_AVAILABLE`, a broker
//! being restarted drops connections: the same request succeeds a moment
//! later. [`retry`] repeats such a call with capped exponential backoff and
//! jitter until it succeeds, fails for good, or the deadline passes, and
//! logs one warning per retry. An [`Admin`](crate::Admin) handle made
//! [`with_retry`](crate::Admin::with_retry) does this for every call.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::{AdminError, ErrorCode};

/// How long and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No retry starts later than this after the first attempt.
    pub deadline: Duration,
    /// The first wait (at most); each next one doubles, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// For commands run by a person: up to a minute, waits of 250 ms to 5 s.
    pub const COMMAND: RetryPolicy = RetryPolicy {
        deadline: Duration::from_secs(60),
        initial_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(5),
    };
}

/// True for codes by which Kafka or librdkafka say "not now, try again":
/// coordinators loading or moving, leaders being elected, timeouts and lost
/// connections. Everything else (authorization, bad arguments, unknown
/// topics, groups with members) is an answer, not a hiccup.
pub fn is_retriable_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator
            | ErrorCode::WaitingForCoordinator
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::NotLeaderForPartition
            | ErrorCode::PreferredLeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::NotController
            | ErrorCode::OffsetNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::ThrottlingQuotaExceeded
            | ErrorCode::RequestTimedOut
            | ErrorCode::NetworkException
            | ErrorCode::BrokerNotAvailable
            | ErrorCode::BrokerTransportFailure
            | ErrorCode::AllBrokersDown
            | ErrorCode::OperationTimedOut
            | ErrorCode::Retry
    )
}

impl AdminError {
    /// True when the same request may succeed if sent again shortly (see
    /// [`is_retriable_code`]). A multi-partition failure is retriable when
    /// every failed partition is.
    pub fn is_retriable(&self) -> bool {
        match self {
            AdminError::Timeout { .. } => true,
            AdminError::Broker { code, .. } => is_retriable_code(*code),
            AdminError::Partitions { failures, .. } => {
                !failures.is_empty() && failures.iter().all(|f| is_retriable_code(f.code))
            }
            AdminError::Client(_)
            | AdminError::InvalidArgument { .. }
            | AdminError::UnsupportedVersion { .. }
            | AdminError::PolicyViolation { .. }
            | AdminError::GroupNotEmpty { .. }
            | AdminError::GroupNotFound { .. }
            | AdminError::TopicAlreadyExists { .. }
            | AdminError::UnknownTopicOrPartition { .. }
            | AdminError::Internal { .. } => false,
        }
    }
}

/// Runs `call` until it succeeds, fails with an error `retriable` rejects,
/// or the next retry would start after `policy.deadline`; then returns its
/// last result. Each retry logs one warning naming `what`, the attempt, the
/// wait and the error.
pub async fn retry<T, E, Fut>(
    policy: &RetryPolicy,
    what: &str,
    retriable: impl Fn(&E) -> bool,
    mut call: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    let mut backoff = Backoff::new(policy.initial_backoff, policy.max_backoff);
    loop {
        let error = match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !retriable(&e) => return Err(e),
            Err(e) => e,
        };
        attempt += 1;
        let wait = backoff.next_wait();
        if started.elapsed() + wait > policy.deadline {
            tracing::warn!(
                "{what}: giving up after {attempt} attempts in {:.1?}: {error}",
                started.elapsed()
            );
            return Err(error);
        }
        tracing::warn!("{what}: retriable error, retry {attempt} in {wait:.1?}: {error}");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PartitionError, Resource};
    use std::cell::Cell;

    fn broker(code: ErrorCode) -> AdminError {
        AdminError::Broker {
            op: "ListConsumerGroups",
            resource: Resource::Cluster,
            code,
            message: "m".into(),
        }
    }

    fn partitions(codes: &[ErrorCode]) -> AdminError {
        AdminError::Partitions {
            op: "ListConsumerGroupOffsets",
            group: Some("g".into()),
            failures: codes
                .iter()
                .map(|&code| PartitionError {
                    topic: "t".into(),
                    partition: 0,
                    code,
                    message: "m".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn transient_conditions_are_retriable_answers_are_not() {
        for code in [
            ErrorCode::CoordinatorLoadInProgress,
            ErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotCoordinator,
            ErrorCode::LeaderNotAvailable,
            ErrorCode::RequestTimedOut,
            ErrorCode::BrokerTransportFailure,
            ErrorCode::AllBrokersDown,
        ] {
            assert!(broker(code).is_retriable(), "{code:?}");
        }
        for code in [
            ErrorCode::GroupAuthorizationFailed,
            ErrorCode::TopicAuthorizationFailed,
            ErrorCode::InvalidPartitions,
            ErrorCode::Unknown,
        ] {
            assert!(!broker(code).is_retriable(), "{code:?}");
        }
        let timeout = AdminError::Timeout {
            op: "Metadata",
            resource: Resource::Cluster,
            timeout: Duration::from_secs(1),
        };
        assert!(timeout.is_retriable());
        let missing = AdminError::UnknownTopicOrPartition {
            op: "DescribeConfigs",
            resource: Resource::Topic("t".into()),
            code: ErrorCode::UnknownTopicOrPartition,
            message: "m".into(),
        };
        assert!(!missing.is_retriable());
        let busy = AdminError::GroupNotEmpty {
            op: "AlterConsumerGroupOffsets",
            group: "g".into(),
            code: ErrorCode::UnknownMemberId,
            message: "m".into(),
        };
        assert!(!busy.is_retriable());
        assert!(
            partitions(&[ErrorCode::NotCoordinator, ErrorCode::LeaderNotAvailable]).is_retriable()
        );
        assert!(!partitions(&[
            ErrorCode::NotCoordinator,
            ErrorCode::TopicAuthorizationFailed
        ])
        .is_retriable());
    }

    fn fast(deadline: Duration) -> RetryPolicy {
        RetryPolicy {
            deadline,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_retriable_errors_until_success() {
        let calls = Cell::new(0);
        let out = retry(
            &fast(Duration::from_secs(30)),
            "list",
            AdminError::is_retriable,
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 4 {
                        Err(broker(ErrorCode::CoordinatorLoadInProgress))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(out.unwrap(), 4);
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn stops_at_the_first_final_error() {
        let calls = Cell::new(0);
        let out: Result<(), _> = retry(
            &fast(Duration::from_secs(30)),
            "list",
            AdminError::is_retriable,
            || {
                calls.set(calls.get() + 1);
                async { Err(broker(ErrorCode::GroupAuthorizationFailed)) }
            },
        )
        .await;
        assert_eq!(
            out.unwrap_err().code(),
            Some(ErrorCode::GroupAuthorizationFailed)
        );
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_error_at_the_deadline() {
        let calls = Cell::new(0);
        let out: Result<(), _> = retry(
            &fast(Duration::ZERO),
            "list",
            AdminError::is_retriable,
            || {
                calls.set(calls.get() + 1);
                async { Err(broker(ErrorCode::CoordinatorLoadInProgress)) }
            },
        )
        .await;
        assert_eq!(
            out.unwrap_err().code(),
            Some(ErrorCode::CoordinatorLoadInProgress)
        );
        assert_eq!(calls.get(), 1, "no retry starts after the deadline");
    }
}
