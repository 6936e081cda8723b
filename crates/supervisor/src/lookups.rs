//! The questions every topic task of a flow asks the clusters when it starts
//! (does my target topic exist, please create it, where do my partitions
//! begin and end), answered in batches: with a thousand topics starting at
//! once, a handful of requests instead of thousands of round trips.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_admin::{Admin, AdminError, NewTopicSpec};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::batch::Batcher;
use crate::clients::ClusterContext;
use crate::{EngineError, Place};

/// Topics per CreateTopics request: the controller creates them one by one,
/// and all of them must be done within the request's timeout.
const CREATE_ROUND: usize = 200;
/// Partitions per ListOffsets round, and topics per metadata round.
const LOOKUP_ROUND: usize = 4096;

pub(crate) type Reader = Arc<BaseConsumer<ClusterContext>>;

/// Where a source partition's log begins and ends: the admin crate's type.
pub(crate) use ferry_admin::Watermarks;

/// Why ListOffsets gave a partition no offset.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum NoOffset {
    /// The request, or the partition's own answer, failed.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// An answer that is not an offset.
    #[error("the broker answered {0:?}")]
    Unexpected(Offset),
    /// The answer left the partition out.
    #[error("the broker did not answer for it")]
    Missing,
}

/// One metadata request covering `topics`: that topic alone when there is
/// one (cheap on a cluster with many topics), the whole cluster otherwise,
/// since librdkafka's metadata call names at most one topic.
pub(crate) fn metadata_for<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> KafkaResult<Metadata> {
    match topics {
        [one] => client.fetch_metadata(Some(one), timeout),
        _ => client.fetch_metadata(None, timeout),
    }
}

/// The partition count of each asked topic, `None` where the cluster does
/// not (yet) have it. A topic the cluster refuses to describe
/// (authorization, policy) is that topic's error, not a sign it is missing.
fn partition_counts(
    md: &Metadata,
    cluster: &str,
    topics: &[String],
) -> Vec<Result<Option<i32>, EngineError>> {
    let by_name: HashMap<&str, &MetadataTopic> =
        md.topics().iter().map(|t| (t.name(), t)).collect();
    topics
        .iter()
        .map(|name| {
            let Some(t) = by_name.get(name.as_str()) else {
                return Ok(None);
            };
            match t.error() {
                None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as i32)),
                None
                | Some(
                    RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                    | RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                ) => Ok(None),
                Some(err) => Err(EngineError::request(
                    Place::topic(cluster, name),
                    "the cluster refuses the topic",
                    rdkafka::error::RDKafkaErrorCode::from(err),
                )),
            }
        })
        .collect()
}

/// Partitions of each asked topic as `client`'s own metadata shows them
/// (0 when unknown). Asking also refreshes that client's metadata cache.
pub(crate) fn visible_partitions<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> Vec<usize> {
    let started = std::time::Instant::now();
    let md = metadata_for(client, topics, timeout)
        .inspect_err(|e| tracing::debug!(error = %e, asked = topics.len(), "metadata round failed"))
        .ok();
    let seen: HashMap<&str, usize> = md
        .as_ref()
        .map(|md| {
            md.topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| (t.name(), t.partitions().len()))
                .collect()
        })
        .unwrap_or_default();
    tracing::debug!(asked = topics.len(), listed = seen.len(), took = ?started.elapsed(), "metadata round");
    topics
        .iter()
        .map(|t| seen.get(t.as_str()).copied().unwrap_or(0))
        .collect()
}

/// Runs a blocking librdkafka call off the async workers; a panic in it
/// becomes `lost(cause)` for every question of the round.
async fn off_runtime<A: Send + 'static>(
    questions: usize,
    lost: impl Fn(String) -> A + Send,
    f: impl FnOnce() -> Vec<A> + Send + 'static,
) -> Vec<A> {
    match tokio::task::spawn_blocking(f).await {
        Ok(answers) => answers,
        Err(e) => (0..questions)
            .map(|_| lost(format!("lookup task failed: {e}")))
            .collect(),
    }
}

pub(crate) struct Lookups {
    target_partitions: Batcher<String, Result<Option<i32>, EngineError>>,
    creations: Batcher<NewTopicSpec, Result<bool, AdminError>>,
    source_watermarks: Batcher<(String, i32), Result<Watermarks, EngineError>>,
}

impl Lookups {
    pub fn start(
        (source_cluster, source_reader): (&str, Reader),
        (target_cluster, target_reader, target_admin): (&str, Reader, Admin),
        timeout: Duration,
    ) -> Self {
        let cluster = target_cluster.to_string();
        let target_partitions = Batcher::spawn(LOOKUP_ROUND, move |topics: Vec<String>| {
            let (reader, cluster) = (target_reader.clone(), cluster.clone());
            // A lookup task that panicked: no client error to keep.
            let lost = {
                let cluster = cluster.clone();
                move |cause| {
                    Err(EngineError::Client {
                        cluster: cluster.clone(),
                        cause,
                    })
                }
            };
            off_runtime(topics.len(), lost, move || {
                crate::clients::serve_token_refresh(&reader);
                match metadata_for(reader.client(), &topics, timeout) {
                    Ok(md) => partition_counts(&md, &cluster, &topics),
                    Err(e) => topics
                        .iter()
                        .map(|_| {
                            Err(EngineError::request(
                                Place::cluster(&cluster),
                                "metadata request failed",
                                e.clone(),
                            ))
                        })
                        .collect(),
                }
            })
        });

        let creations = Batcher::spawn(CREATE_ROUND, move |specs: Vec<NewTopicSpec>| {
            let admin = target_admin.clone();
            async move { create_topics(&admin, specs).await }
        });

        let cluster = source_cluster.to_string();
        let source_watermarks =
            Batcher::spawn(LOOKUP_ROUND, move |partitions: Vec<(String, i32)>| {
                let (reader, cluster) = (source_reader.clone(), cluster.clone());
                // A lookup task that panicked: no client error to keep.
                let lost = {
                    let cluster = cluster.clone();
                    move |cause| {
                        Err(EngineError::Client {
                            cluster: cluster.clone(),
                            cause,
                        })
                    }
                };
                off_runtime(partitions.len(), lost, move || {
                    watermarks(&reader, &cluster, &partitions, timeout)
                })
            });
        Self {
            target_partitions,
            creations,
            source_watermarks,
        }
    }

    /// The target topic's partition count, `None` if it does not exist.
    pub async fn target_partitions(&self, topic: &str) -> Result<Option<i32>, EngineError> {
        self.target_partitions
            .ask(topic.to_string())
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Creates a target topic; `Ok(false)` when it already existed.
    pub async fn create_topic(&self, spec: NewTopicSpec) -> Result<bool, AdminError> {
        let name = spec.name.clone();
        self.creations.ask(spec).await.unwrap_or_else(|| {
            Err(AdminError::Internal {
                op: "CreateTopics",
                message: format!("creating {name}: {}", stopped()),
            })
        })
    }

    /// Low and high watermark of a source partition.
    pub async fn source_watermarks(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Watermarks, EngineError> {
        self.source_watermarks
            .ask((topic.to_string(), partition))
            .await
            .unwrap_or_else(|| Err(stopped()))
    }
}

fn stopped() -> EngineError {
    EngineError::Internal("the flow's lookups have stopped".into())
}

/// One CreateTopics request for a round; per spec, whether it was created
/// (`false`: it already existed, another Ferry or an operator was first).
async fn create_topics(admin: &Admin, specs: Vec<NewTopicSpec>) -> Vec<Result<bool, AdminError>> {
    // librdkafka refuses a request naming a topic twice; the same name asked
    // twice gets the same answer.
    let mut unique: Vec<NewTopicSpec> = Vec::with_capacity(specs.len());
    for s in &specs {
        if !unique.iter().any(|u| u.name == s.name) {
            unique.push(s.clone());
        }
    }
    let answers: HashMap<String, Result<bool, AdminError>> =
        match admin.create_topics(&unique).await {
            Ok(results) if results.len() == unique.len() => unique
                .iter()
                .zip(results)
                .map(|(spec, r)| {
                    let created = match r {
                        Ok(_) => Ok(true),
                        Err(AdminError::TopicAlreadyExists { .. }) => Ok(false),
                        Err(e) => Err(e),
                    };
                    (spec.name.clone(), created)
                })
                .collect(),
            Ok(results) => {
                let e = AdminError::Internal {
                    op: "CreateTopics",
                    message: format!(
                        "the broker answered for {} of {} topics",
                        results.len(),
                        unique.len()
                    ),
                };
                unique
                    .iter()
                    .map(|s| (s.name.clone(), Err(e.clone())))
                    .collect()
            }
            Err(e) => unique
                .iter()
                .map(|s| (s.name.clone(), Err(e.clone())))
                .collect(),
        };
    specs.iter().map(|s| answers[&s.name].clone()).collect()
}

/// Partitions per `offsets_for_times` call: librdkafka merges each answer
/// into the request list by linear search, so the cost grows with the square
/// of the list's length; chunks keep thousands of partitions cheap.
const OFFSETS_CHUNK: usize = 500;

/// Builds a partition list in linear time (rust-rdkafka's
/// `add_partition_offset` searches the list for every element it sets).
pub(crate) fn partition_list<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, i32)>,
    at: Offset,
) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(entries.len());
    for (topic, partition) in entries {
        tpl.add_partition(topic, partition).set_offset(at)?;
    }
    Ok(tpl)
}

/// Per (topic, partition): an offset, or that partition's error.
pub(crate) type PartitionOffsets = HashMap<(String, i32), Result<i64, NoOffset>>;

/// Per partition, the offset ListOffsets answers for `at` (`Beginning`,
/// `End` or a timestamp), or that partition's error. The outer error is for
/// a failed request as a whole.
pub(crate) fn list_offsets(
    reader: &Reader,
    partitions: &[(String, i32)],
    at: Offset,
    timeout: Duration,
) -> KafkaResult<PartitionOffsets> {
    crate::clients::serve_token_refresh(reader);
    let mut answers = HashMap::with_capacity(partitions.len());
    for chunk in partitions.chunks(OFFSETS_CHUNK) {
        let tpl = partition_list(chunk.iter().map(|(t, p)| (t.as_str(), *p)), at)?;
        // Typed, not scrubbed: these errors carry a code, never text.
        let answered = reader.offsets_for_times(tpl, timeout)?;
        answers.extend(answered.elements().iter().map(|e| {
            let offset = match (e.error(), e.offset()) {
                (Err(err), _) => Err(NoOffset::Kafka(err)),
                (Ok(()), Offset::Offset(o)) => Ok(o),
                (Ok(()), other) => Err(NoOffset::Unexpected(other)),
            };
            ((e.topic().to_string(), e.partition()), offset)
        }));
    }
    Ok(answers)
}

/// Low and high watermarks of many partitions in two ListOffsets rounds
/// (earliest, latest) rather than two requests per partition.
fn watermarks(
    reader: &Reader,
    cluster: &str,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Vec<Result<Watermarks, EngineError>> {
    const DOING: &str = "cannot read watermarks";
    let fail = |topic: &str, partition: i32, why: &NoOffset| match why {
        NoOffset::Kafka(e) => EngineError::request(
            Place::partition(cluster, topic, partition),
            DOING,
            e.clone(),
        ),
        // An answer without an offset: no client error beneath.
        NoOffset::Unexpected(_) | NoOffset::Missing => EngineError::Partition {
            cluster: cluster.to_string(),
            topic: topic.to_string(),
            partition,
            cause: format!("{DOING}: {why}"),
        },
    };
    let both = list_offsets(reader, partitions, Offset::Beginning, timeout)
        .and_then(|low| Ok((low, list_offsets(reader, partitions, Offset::End, timeout)?)))
        .map_err(NoOffset::Kafka);
    partitions
        .iter()
        .map(|(t, p)| {
            let (low, high) = both.as_ref().map_err(|e| fail(t, *p, e))?;
            let key = (t.clone(), *p);
            let get = |m: &PartitionOffsets| match m.get(&key) {
                Some(Ok(o)) => Ok(*o),
                Some(Err(e)) => Err(fail(t, *p, e)),
                None => Err(fail(t, *p, &NoOffset::Missing)),
            };
            Ok(Watermarks {
                low: get(low)?,
                high: get(high)?,
            })
        })
        .collect()
}
