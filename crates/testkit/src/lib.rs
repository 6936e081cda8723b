//! Test support for Ferry: real Apache Kafka brokers, librdkafka mock
//! clusters, and helpers that produce, read and compare data.
//!
//! # Layout
//!
//! - [`kafka`]: [`KafkaCluster`] starts Apache Kafka (KRaft, combined
//!   broker+controller nodes) from the jars that `tests/brokers/install.sh`
//!   installs, on free loopback ports, optionally with TLS, SASL/SCRAM or
//!   SASL/OAUTHBEARER (JWTs from a token endpoint the harness serves), with
//!   one or several brokers that tests can kill and restart. [`shared`] and
//!   [`shared_pair`] give every test in a process the same source/target
//!   clusters (or already-running ones named by `FERRY_TEST_KAFKA_SOURCE` /
//!   `FERRY_TEST_KAFKA_TARGET`). [`ConnectWorker`] runs a Kafka Connect
//!   worker (`connect-distributed`) against a cluster, for connectors such as
//!   MirrorMaker 2's.
//! - [`kdc`]: [`KdcServer`] runs an MIT Kerberos KDC with keytab-provisioned
//!   principals, for [`KafkaOptions::kerberos`] (SASL GSSAPI) clusters.
//! - [`data`]: unique names, topic creation, producing deterministic
//!   sequence-numbered records ([`data::SequenceSpec`]), reading partitions back
//!   and comparing a source topic with its replica ([`data::CompareReport`]).
//! - [`registry`]: [`SchemaRegistry`] runs a real Schema Registry (Apicurio,
//!   Confluent-compatible API) from the install `tests/registry/install.sh`
//!   makes, with the Python registry clients beside it.
//! - [`mock`]: librdkafka's in-process mock cluster, for fault injection.
//! - [`daemon`]: running the real `ferry` executable ([`daemon::Ferry`]) as
//!   a command or as a `ferry run` [`daemon::Daemon`], signals, and
//!   [`daemon::wait_for`]; [`topology`] writes the topology files they read.
//! - [`check`]: assertions over a replica (record-for-record comparison,
//!   counts, exactly-once on sequence records); [`groups`]: consumer-group
//!   offsets and consumers the way applications use them; [`inspect`]:
//!   topics and topic configs read through rdkafka's own clients; [`scrape`]:
//!   reading a daemon's `/metrics` and `/status`.
//! - [`members`]: several `ferry run` processes sharing one topology through
//!   a flow's consumer group: the slots each owns (typed `/status`), whether
//!   they share them exactly once, background load, end offsets sampled over
//!   time, and an at-least-once tally of a replica.
//! - [`proc`]: spawning children that die with the test process, and their
//!   peak RSS / CPU time, for benchmarks.
//! - `src/bin/ferry-testkit-brokers.rs`: starts shared clusters once for a
//!   whole CI run and prints their bootstrap addresses.
//!
//! Everything here is blocking, so it works from plain `#[test]`s and from
//! `#[tokio::test]`s alike. A helper that waits (reading until a record
//! arrives, starting a broker) blocks its thread, so an async test that also
//! runs Ferry on the same runtime should call helpers through
//! `tokio::task::spawn_blocking` or use `flavor = "multi_thread"`.
//!
//! Errors are [`HarnessError`]s whose message says what failed and why; when a
//! broker is involved it carries the tail of that broker's log. Tests that
//! need a broker fail when none can be started: nothing here skips silently.

pub mod check;
mod client;
pub mod daemon;
pub mod data;
mod error;
pub mod groups;
pub mod http_stub;
pub mod inspect;
pub mod kafka;
pub mod kdc;
pub mod members;
pub mod mock;
pub mod proc;
pub mod registry;
pub mod scrape;
pub mod topology;

pub use error::{HarnessError, Result};
pub use kafka::{shared, shared_pair, ConnectWorker, KafkaCluster, KafkaOptions};
pub use kdc::{KdcRealm, KdcServer};
pub use registry::SchemaRegistry;
