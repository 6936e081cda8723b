//! The limit: what plain rdkafka does on these brokers with nothing in
//! between. Two halves, each its own process (hidden subcommands of
//! `ferry-bench`), run one after the other:
//!
//! - `limit-consume`: drains the source topic with Ferry's source-consumer
//!   settings (`crates/supervisor/src/clients.rs`, `Role::SourceConsumer`)
//!   and no produce;
//! - `limit-produce`: writes the same records (same keys, sizes, header,
//!   timestamps, partitions) to a target topic with Ferry's target-producer
//!   settings and no consume.
//!
//! A replicator can be no faster than the slower half; its CPU is at least
//! the sum of both.

use std::process::Command;
use std::time::{Duration, Instant};

use ferry_config::Cluster;
use ferry_supervisor::clients::{client_config, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::bail;
use crate::dataset::{produce_dataset, Dataset};
use crate::error::{Context, Result};
use crate::kafka::Offsets;
use crate::measure::Tracked;
use crate::Env;

/// Ferry's own librdkafka settings for `role` (`ferry_supervisor::clients`,
/// the function the daemon calls), so the limit cannot drift from what
/// Ferry's clients are configured to do.
fn ferry_client_config(bootstrap: &str, role: Role, client_id: &str) -> ClientConfig {
    let cluster = Cluster {
        name: "limit".into(),
        bootstrap_servers: bootstrap.into(),
        client: Default::default(),
        aws_msk_iam: None,
    };
    client_config(&cluster, role, client_id)
}

/// Ferry's source-consumer settings, for one topic drained by assignment.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ferry_client_config(bootstrap, Role::SourceConsumer, "ferry-bench-limit-consume");
    cfg.set("group.id", "ferry-bench-limit");
    cfg
}

/// `ferry-bench limit-consume`: reads every partition of `topic` from the
/// start to the end offsets it sees at start; prints `{"records","bytes"}`.
pub fn consume_main(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let (records, bytes) = drain(bootstrap, topic, partitions)?;
    println!(
        "{}",
        serde_json::json!({ "records": records, "bytes": bytes })
    );
    Ok(())
}

/// Reads every partition of `topic` from the start to the end offsets seen
/// at start, touching what a replicator must copy: (records, bytes).
pub fn drain(bootstrap: &str, topic: &str, partitions: i32) -> Result<(u64, u64)> {
    let cfg = consumer_config(bootstrap);
    let ends = Offsets::new(&cfg)?.topic_end_offsets(topic, partitions)?;
    let consumer: BaseConsumer = cfg.create().context(|| "cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0;
    for (p, &end) in ends.iter().enumerate() {
        if end > 0 {
            assignment
                .add_partition_offset(topic, p as i32, Offset::Beginning)
                .context(|| "bad partition")?;
            remaining += 1;
        }
    }
    consumer.assign(&assignment).context(|| "cannot assign")?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (mut records, mut bytes) = (0u64, 0u64);
    while remaining > 0 {
        if Instant::now() > deadline {
            bail!("draining {topic:?} took longer than 30 minutes ({records} records read)");
        }
        let Some(result) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = result.context(|| format!("consuming {topic:?}"))?;
        records += 1;
        // Touch what a replicator must copy.
        bytes += (message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len))
            as u64;
        if let Some(headers) = message.headers() {
            for h in headers.iter() {
                bytes += (h.key.len() + h.value.map_or(0, <[u8]>::len)) as u64;
            }
        }
        if message.offset() + 1 == ends[message.partition() as usize] {
            remaining -= 1;
        }
    }
    Ok((records, bytes))
}

/// `ferry-bench limit-produce`: writes `dataset` to `topic`.
pub fn produce_main(bootstrap: &str, topic: &str, dataset: &Dataset) -> Result<()> {
    let mut cfg = ferry_client_config(bootstrap, Role::TargetProducer, "ferry-bench-limit-produce");
    // As the preload: a slow broker must not fail the run.
    cfg.set("message.timeout.ms", "300000");
    let bytes = produce_dataset(&cfg, topic, dataset)?;
    println!(
        "{}",
        serde_json::json!({ "records": dataset.records, "bytes": bytes })
    );
    Ok(())
}

/// Starts the consume-only half on the source.
pub fn launch_consume(env: &Env, topic: &str, partitions: i32, log_name: &str) -> Result<Tracked> {
    let mut cmd = Command::new(&env.bench_bin);
    cmd.arg("limit-consume")
        .args(["--bootstrap", env.source.bootstrap_servers()])
        .args(["--topic", topic])
        .args(["--partitions", &partitions.to_string()]);
    cmd.envs(env.limit_env.iter().map(|(k, v)| (k, v)));
    Tracked::spawn(
        "limit-consume",
        cmd,
        &env.run_dir.join(format!("{log_name}.log")),
    )
}

/// Starts the produce-only half, writing `dataset` to `topic` on the target.
pub fn launch_produce(
    env: &Env,
    topic: &str,
    dataset: &Dataset,
    log_name: &str,
) -> Result<Tracked> {
    let mut cmd = Command::new(&env.bench_bin);
    cmd.arg("limit-produce")
        .args(["--bootstrap", env.target.bootstrap_servers()])
        .args(["--topic", topic])
        .args(["--partitions", &dataset.partitions.to_string()])
        .args(["--records", &dataset.records.to_string()])
        .args(["--value-size", &dataset.value_size.to_string()])
        .args([
            "--base-timestamp-ms",
            &dataset.base_timestamp_ms.to_string(),
        ]);
    cmd.envs(env.limit_env.iter().map(|(k, v)| (k, v)));
    Tracked::spawn(
        "limit-produce",
        cmd,
        &env.run_dir.join(format!("{log_name}.log")),
    )
}
