//! librdkafka's in-process mock cluster, for fault-injection tests.
//!
//! It starts in milliseconds and needs no install, but implements only the
//! data-plane and group APIs: no CreateTopics, DescribeConfigs, ListGroups or
//! DeleteRecords, and topics are auto-created with 4 partitions unless made
//! with [`MockKafka::create_topic`]. Its strength is injecting faults through
//! [`MockKafka::cluster`]: `broker_down`/`broker_up`, per-API request errors,
//! leader moves and round-trip delays.

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{HarnessError, Result};

/// A running mock cluster; it stops when dropped.
pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl MockKafka {
    /// Starts a mock cluster with `brokers` brokers (ids `1..=brokers`).
    pub fn start(brokers: i32) -> Result<MockKafka> {
        let cluster = MockCluster::new(brokers).map_err(|e| {
            HarnessError::kafka(format!("cannot start a {brokers}-broker mock cluster"), e)
        })?;
        Ok(MockKafka { cluster })
    }

    /// Comma-separated `host:port` of the mock brokers.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// A client configuration that reaches the mock cluster.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap_servers());
        config
    }

    /// Creates a topic (the mock cluster has no CreateTopics API).
    pub fn create_topic(&self, name: &str, partitions: i32, replication: i32) -> Result<()> {
        self.cluster
            .create_topic(name, partitions, replication)
            .map_err(|e| HarnessError::kafka(format!("cannot create mock topic {name:?}"), e))
    }

    /// The underlying mock cluster, for fault injection.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
