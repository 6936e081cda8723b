//! `ferry verify --schemas`: for each flow with `schemas`, checks that
//!
//! - every schema ID that the flow's target records carry (keys and values
//!   in the Confluent wire format) resolves on the target registry to the
//!   same schema as on the source: under `preserve-ids` the same ID on the
//!   source; under `translate-ids` a version of a selected source subject
//!   with the same content;
//! - the subject lists match: every selected source subject is on the
//!   target under its target name (with the same versions under
//!   `preserve-ids`). Other target subjects are not the flow's concern.
//!
//! A registry or cluster that cannot be read makes the flow `error`.

use std::collections::{BTreeMap, BTreeSet};

use ferry_config::{Cluster, Flow, SchemaMode, Topology};
use ferry_schemas::{RegistryClient, SchemaBody};
use ferry_supervisor::topics;
use rdkafka::consumer::Consumer;
use rdkafka::Message;
use serde::Serialize;

use super::acls::outcome_word;
use super::Outcome;
use crate::records::reader::{range_consumer, RangeReader};

/// The report `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaReport {
    pub result: Outcome,
    pub flows: Vec<FlowSchemas>,
}

/// One flow's check.
#[derive(Debug, Clone, Serialize)]
pub struct FlowSchemas {
    pub flow: String,
    pub result: Outcome,
    /// Target records read that carry a schema ID.
    pub records_with_ids: u64,
    /// The distinct schema IDs in them, each checked.
    pub ids: Vec<u32>,
    /// Values in the wire format's shape whose "ID" neither registry knows
    /// (a payload that merely starts with a zero byte): not checked.
    pub unregistered: Vec<u32>,
    /// Source subjects checked on the target.
    pub subjects: usize,
    /// Everything that does not match, one line each.
    pub problems: Vec<String>,
    /// Why the flow could not be checked.
    pub error: Option<String>,
}

/// Checks every flow that copies schemas.
pub async fn verify_schemas(topology: &Topology, flows: &[Flow]) -> SchemaReport {
    let mut out = Vec::new();
    for flow in flows.iter().filter(|f| f.schemas.is_some()) {
        let checked = match target_topics(topology, flow).await {
            Ok((target, topics)) => {
                let (flow, target) = (flow.clone(), target.clone());
                tokio::task::spawn_blocking(move || check_flow(&flow, &target, &topics))
                    .await
                    .unwrap_or_else(|e| Err(format!("the check panicked: {e}")))
            }
            Err(e) => Err(e.to_string()),
        };
        out.push(checked.unwrap_or_else(|e| FlowSchemas {
            flow: flow.id().to_string(),
            result: Outcome::Error,
            records_with_ids: 0,
            ids: Vec::new(),
            unregistered: Vec::new(),
            subjects: 0,
            problems: Vec::new(),
            error: Some(e),
        }));
    }
    let result = if out.iter().any(|f| f.result == Outcome::Error) {
        Outcome::Error
    } else if out.iter().any(|f| f.result == Outcome::Mismatch) {
        Outcome::Mismatch
    } else {
        Outcome::Match
    };
    SchemaReport { result, flows: out }
}

/// The flow's target topics with their partition counts.
async fn target_topics<'t>(
    topology: &'t Topology,
    flow: &Flow,
) -> Result<(&'t Cluster, BTreeMap<String, usize>), ferry_supervisor::EngineError> {
    let (source, target) = crate::clusters(topology, flow)?;
    let source_admin = crate::admin(source, "ferry-verify")?;
    let target_admin = crate::admin(target, "ferry-verify")?;
    let on_target = crate::list_topics(&target_admin, target).await?;
    let topics = crate::list_topics(&source_admin, source)
        .await?
        .into_keys()
        .filter(|t| topics::selects(flow, t))
        .filter_map(|t| {
            let remote = flow.remote_topic(&t);
            on_target.get(&remote).map(|n| (remote, *n))
        })
        .collect();
    Ok((target, topics))
}

fn check_flow(
    flow: &Flow,
    target_cluster: &Cluster,
    topics: &BTreeMap<String, usize>,
) -> Result<FlowSchemas, String> {
    let settings = flow.schemas.as_ref().ok_or("no schemas")?;
    let source = RegistryClient::new(&settings.source).map_err(|e| e.to_string())?;
    let target = RegistryClient::new(&settings.target).map_err(|e| e.to_string())?;
    let err = |e: ferry_schemas::RegistryError| e.to_string();
    let mut problems = Vec::new();

    // The subject lists, and the selected source versions' schemas (their
    // references named as on the target) for translate-ids.
    let on_target: BTreeSet<String> = target.subjects().map_err(err)?.into_iter().collect();
    let mut source_schemas: Vec<SchemaBody> = Vec::new();
    let mut subjects = 0;
    for subject in source.subjects().map_err(err)? {
        if !settings.subjects.matches(&subject) {
            continue;
        }
        subjects += 1;
        let renamed = flow.remote_subject(&subject);
        let versions = source.versions(&subject).map_err(err)?;
        if !on_target.contains(&renamed) {
            problems.push(format!(
                "subject {renamed} (source subject {subject}) is missing on target registry {}",
                target.name()
            ));
        } else if settings.mode == SchemaMode::PreserveIds {
            let there = target.versions(&renamed).map_err(err)?;
            if there != versions {
                problems.push(format!(
                    "subject {renamed}: versions {versions:?} on the source, {there:?} on the target"
                ));
            }
        }
        if settings.mode == SchemaMode::TranslateIds {
            for v in versions {
                if let Some(sv) = source.version(&subject, v).map_err(err)? {
                    let mut body = sv.body;
                    for r in &mut body.references {
                        r.subject = flow.remote_subject(&r.subject);
                    }
                    source_schemas.push(body);
                }
            }
        }
    }

    // The IDs the target records carry.
    let consumer =
        range_consumer(target_cluster, "ferry-verify-schemas").map_err(|e| e.to_string())?;
    // Per ID: where it first appears, and in how many records.
    let mut ids: BTreeMap<u32, (String, u64)> = BTreeMap::new();
    for (topic, partitions) in topics {
        for partition in 0..*partitions as i32 {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, std::time::Duration::from_secs(30))
                .map_err(|e| {
                    format!(
                        "cluster {}: cannot read the watermarks of {topic}[{partition}]: {e}",
                        target_cluster.name
                    )
                })?;
            let mut reader = RangeReader::new(&consumer, topic, partition, low, high)?;
            while let Some(m) = reader.next_record()? {
                let found: BTreeSet<u32> = [m.key(), m.payload()]
                    .into_iter()
                    .flatten()
                    .filter_map(ferry_schemas::wire::schema_id)
                    .collect();
                for id in found {
                    ids.entry(id)
                        .or_insert_with(|| {
                            (format!("{topic}[{partition}] offset {}", m.offset()), 0)
                        })
                        .1 += 1;
                }
            }
        }
    }
    let mut records_with_ids = 0;
    let mut checked = Vec::new();
    let mut unregistered = Vec::new();
    for (id, (first, count)) in &ids {
        let on_source = source.schema(*id).map_err(err)?;
        let Some(there) = target.schema(*id).map_err(err)? else {
            if on_source.is_none() {
                // No registry knows it: a value that merely starts with a
                // zero byte, copied as it is.
                unregistered.push(*id);
            } else {
                problems.push(format!(
                    "schema ID {id} (first at {first}) does not resolve on target registry {}",
                    target.name()
                ));
            }
            continue;
        };
        records_with_ids += count;
        checked.push(*id);
        let same = match settings.mode {
            SchemaMode::PreserveIds => match on_source {
                Some(mut original) => {
                    for r in &mut original.references {
                        r.subject = flow.remote_subject(&r.subject);
                    }
                    original.same_as(&there)
                }
                None => false,
            },
            SchemaMode::TranslateIds => source_schemas.iter().any(|s| s.same_content(&there)),
        };
        if !same {
            problems.push(format!(
                "schema ID {id} (first at {first}) resolves on target registry {} to a schema the source registry {} does not hold {}",
                target.name(),
                source.name(),
                if settings.mode == SchemaMode::PreserveIds { "under that ID" } else { "under a selected subject" }
            ));
        }
    }
    Ok(FlowSchemas {
        flow: flow.id().to_string(),
        result: if problems.is_empty() {
            Outcome::Match
        } else {
            Outcome::Mismatch
        },
        records_with_ids,
        ids: checked,
        unregistered,
        subjects,
        problems,
        error: None,
    })
}

/// The report, for people.
pub fn render(report: &SchemaReport) -> String {
    let mut out = String::new();
    for f in &report.flows {
        out.push_str(&format!(
            "flow {}: schemas {}\n",
            f.flow,
            outcome_word(f.result)
        ));
        if let Some(e) = &f.error {
            out.push_str(&format!("  error: {e}\n"));
            continue;
        }
        out.push_str(&format!(
            "  {} subjects checked; {} records with schema IDs, {} distinct IDs checked\n",
            f.subjects,
            f.records_with_ids,
            f.ids.len()
        ));
        for p in &f.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    if report.flows.is_empty() {
        out.push_str("no flow copies schemas (flows[].schemas)\n");
    }
    out.push_str(&format!("result: {}\n", outcome_word(report.result)));
    out
}
