//! The topology file as written: plain serde structs with string-typed
//! values, so that a value's *meaning* is checked by `validate` with a
//! precise key path rather than by serde's first-error-wins parsing.
//!
//! Unknown keys are not rejected here; `serde_ignored` collects every one of
//! them so they can be reported together with all other problems.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawCluster {
    pub bootstrap_servers: Option<String>,
    #[serde(default)]
    pub client: BTreeMap<String, toml::Value>,
    pub aws_msk_iam: Option<RawAwsMskIam>,
}

/// `clusters.NAME.aws_msk_iam`: authenticate to Amazon MSK with IAM.
#[derive(Debug, Default, Deserialize)]
pub struct RawAwsMskIam {
    pub region: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawFlow {
    pub source: Option<String>,
    pub target: Option<String>,
    pub enabled: Option<bool>,
    pub topics: Option<Vec<String>>,
    pub topics_exclude: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub groups_exclude: Option<Vec<String>>,
    pub topic_naming: Option<String>,
    pub topic_separator: Option<String>,
    pub rename: Option<Vec<RawRename>>,
    pub start_from: Option<String>,
    pub unconsumed_fallback: Option<String>,
    pub sync_topic_configs: Option<bool>,
    pub topic_configs_exclude: Option<Vec<String>>,
    pub sync_group_offsets: Option<bool>,
    pub emit_checkpoints: Option<bool>,
    pub emit_heartbeats: Option<bool>,
    pub checkpoint_interval: Option<String>,
    pub refresh_interval: Option<String>,
    pub heartbeat_interval: Option<String>,
    pub replication_factor: Option<i32>,
    pub max_in_flight_bytes: Option<toml::Value>,
    pub cycle_protection: Option<bool>,
    pub offset_syncs_location: Option<String>,
    pub on_record_error: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub mm2_offsets: Option<RawMm2Offsets>,
    pub slots: Option<i64>,
    pub delivery: Option<String>,
    pub transaction_interval: Option<String>,
    pub sync_acls: Option<bool>,
    pub acls_exclude_principals: Option<Vec<String>>,
    pub acl_sync_deletes: Option<bool>,
    pub propagate_deletes: Option<bool>,
    pub delete_grace: Option<String>,
    pub schemas: Option<RawSchemas>,
}

/// `flows[].schemas`: copy Schema Registry subjects along with the records.
#[derive(Debug, Default, Deserialize)]
pub struct RawSchemas {
    pub source: Option<String>,
    pub target: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub mode: Option<String>,
    pub required: Option<bool>,
}

/// `[registries.NAME]`: one Schema Registry (Confluent REST API).
#[derive(Debug, Default, Deserialize)]
pub struct RawRegistry {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub timeout: Option<String>,
}

/// `flows[].rename[]`: one explicit rename rule.
#[derive(Debug, Default, Deserialize)]
pub struct RawRename {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `flows[].mm2_offsets`: where a MirrorMaker 2 hosted in Kafka Connect keeps
/// its source positions.
#[derive(Debug, Default, Deserialize)]
pub struct RawMm2Offsets {
    pub cluster: Option<String>,
    pub topic: Option<String>,
    pub connector: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawHttp {
    pub listen: Option<String>,
    pub control_token: Option<String>,
    pub status_public: Option<bool>,
    pub partition_metrics: Option<bool>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEngine {
    pub shutdown_timeout: Option<String>,
    pub group_prefix: Option<String>,
    pub transactional_id_prefix: Option<String>,
}
