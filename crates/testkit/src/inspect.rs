//! Reads of cluster metadata through rdkafka's own clients (Metadata and
//! DescribeConfigs), independent of the code under test that writes it.

use std::collections::BTreeMap;

use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::client::{consumer_failure, ErrorCapture};
use crate::data::TIMEOUT;
use crate::error::{HarnessError, Result};

/// Every topic of the cluster with its partition count. A topic whose
/// metadata carries an error is an error here, not a missing topic.
pub fn topic_partition_counts(config: &ClientConfig) -> Result<BTreeMap<String, usize>> {
    let consumer: BaseConsumer<ErrorCapture> = config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create a Kafka client", e))?;
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| consumer_failure(&consumer, "cannot list the cluster's topics", e))?;
    metadata
        .topics()
        .iter()
        .map(|t| match t.error() {
            None => Ok((t.name().to_string(), t.partitions().len())),
            Some(code) => Err(HarnessError::Usage(format!(
                "the metadata of topic {:?} carries {:?}",
                t.name(),
                rdkafka::error::RDKafkaErrorCode::from(code)
            ))),
        })
        .collect()
}

/// The topics of a cluster whose name contains `needle`, with their
/// partition counts.
pub fn topics_containing(config: &ClientConfig, needle: &str) -> Result<BTreeMap<String, usize>> {
    let mut topics = topic_partition_counts(config)?;
    topics.retain(|name, _| name.contains(needle));
    Ok(topics)
}

/// The configs set on a topic itself (its dynamic overrides), by name,
/// from DescribeConfigs. Sensitive entries have no value and are left out.
pub fn topic_overrides(config: &ClientConfig, topic: &str) -> Result<BTreeMap<String, String>> {
    let context = format!("cannot describe the configs of topic {topic:?}");
    let admin: AdminClient<ErrorCapture> = config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create an admin client", e))?;
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options),
    )
    .map_err(|e| admin.inner().context().fail(&context, e))?;
    let [result] = <[_; 1]>::try_from(results).map_err(|r| {
        HarnessError::Usage(format!("{context}: {} results for one topic", r.len()))
    })?;
    let resource = result.map_err(|code| {
        admin
            .inner()
            .context()
            .fail(&context, KafkaError::AdminOp(code))
    })?;
    Ok(resource
        .entries
        .into_iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .filter_map(|e| Some((e.name, e.value?)))
        .collect())
}
