//! `ferry demo`: the whole engine on two embedded in-process clusters
//! (librdkafka's mock brokers), no install beyond cargo. It creates sample
//! topics, produces live traffic, runs the real supervisor on a generated
//! topology, shows progress, then verifies the target record for record.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_migrate::records::digest_partition;
use ferry_supervisor::{RunMode, Supervisor};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::{exit, logging};

const TOPICS: &[(&str, i32)] = &[("orders", 4), ("payments", 2)];

pub fn demo(records: u64, quiet: bool) -> u8 {
    match run(records, quiet) {
        Ok(true) => exit::OK,
        Ok(false) => exit::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn run(records: u64, quiet: bool) -> Result<bool, String> {
    let primary = MockCluster::new(3).map_err(|e| format!("cannot start mock cluster: {e}"))?;
    let backup = MockCluster::new(3).map_err(|e| format!("cannot start mock cluster: {e}"))?;
    for (topic, partitions) in TOPICS {
        primary
            .create_topic(topic, *partitions, 1)
            .map_err(|e| e.to_string())?;
        // The mock brokers lack the CreateTopics API, so the demo creates the
        // target topics Ferry would otherwise create itself.
        backup
            .create_topic(&format!("primary.{topic}"), *partitions, 1)
            .map_err(|e| e.to_string())?;
    }
    // Ferry's and MirrorMaker 2's internal topics, likewise.
    for internal in [
        "ferry-progress.primary.internal",
        "mm2-offset-syncs.primary.internal",
        "primary.checkpoints.internal",
        "heartbeats",
    ] {
        backup
            .create_topic(internal, 1, 1)
            .map_err(|e| e.to_string())?;
    }
    // One partition per slot of the flow (16 by default).
    backup
        .create_topic("ferry-slots.primary-backup", 16, 1)
        .map_err(|e| e.to_string())?;

    let topology_text = format!(
        r#"
[clusters.primary]
bootstrap_servers = "{}"
[clusters.backup]
bootstrap_servers = "{}"

[[flows]]
source = "primary"
target = "backup"
topics = ["orders", "payments"]
topic_naming = "prefix"
start_from = "earliest"
refresh_interval = "2s"
# The mock brokers cannot describe configs or list consumer groups.
sync_topic_configs = false
emit_checkpoints = false
sync_group_offsets = false

[log]
level = "{}"
"#,
        primary.bootstrap_servers(),
        backup.bootstrap_servers(),
        if quiet { "error" } else { "warn" }
    );
    let topology = ferry_config::parse(&topology_text, "demo topology", std::path::Path::new("."))
        .map_err(|e| e.to_string())?
        .topology;
    logging::init(&topology.log);
    let source = topology.clusters["primary"].clone();
    let target = topology.clusters["backup"].clone();
    println!("ferry demo: two in-process clusters, primary -> backup, topics orders (4 partitions) and payments (2)");

    let rt = super::runtime().map_err(|e| e.to_string())?;
    let produced = Arc::new(AtomicU64::new(0));
    let producing = Arc::new(AtomicBool::new(true));
    let producer_thread = {
        let (bootstrap, produced, producing) = (
            primary.bootstrap_servers(),
            produced.clone(),
            producing.clone(),
        );
        std::thread::spawn(move || {
            let r = produce_traffic(&bootstrap, records, &produced);
            producing.store(false, Ordering::Release);
            r
        })
    };

    let ok = rt.block_on(async {
        let cancel = CancellationToken::new();
        let metrics = Arc::new(ferry_http::Metrics::new(
            ferry_http::MetricsOptions::default(),
        ));
        let supervisor = Supervisor::new(topology, RunMode::Continuous, metrics);
        let status = supervisor.status();
        let engine = tokio::spawn(supervisor.run(cancel.clone()));
        let started = Instant::now();
        let mut last_line = Instant::now() - Duration::from_secs(1);
        let caught_up = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let replicated: u64 = status
                .flows()
                .iter()
                .flat_map(|(_, f)| f.replicated_totals().into_values())
                .map(|(records, _)| records)
                .sum();
            let total = produced.load(Ordering::Relaxed);
            if last_line.elapsed() >= Duration::from_secs(1) {
                println!(
                    "  {:>5.1}s  produced {total:>8}  replicated {replicated:>8}",
                    started.elapsed().as_secs_f64()
                );
                last_line = Instant::now();
            }
            if !producing.load(Ordering::Acquire) && replicated >= total && total > 0 {
                break true;
            }
            if started.elapsed() > Duration::from_secs(120) {
                eprintln!("error: replication did not catch up within 120 s");
                break false;
            }
        };
        // Graceful stop: drain, persist progress, as on SIGTERM.
        cancel.cancel();
        let stopped_cleanly = matches!(engine.await, Ok(Ok(())));
        caught_up && stopped_cleanly
    });
    producer_thread
        .join()
        .map_err(|_| "producer thread panicked".to_string())??;
    if !ok {
        return Ok(false);
    }

    println!("verifying: every partition, record for record (key, value, headers, timestamp)");
    let mut all_match = true;
    for (topic, partitions) in TOPICS {
        for p in 0..*partitions {
            let timeout = Duration::from_secs(30);
            let src = digest_partition(&source, topic, p, timeout).map_err(|e| e.to_string())?;
            let dst = digest_partition(&target, &format!("primary.{topic}"), p, timeout)
                .map_err(|e| e.to_string())?;
            let same = src == dst;
            all_match &= same;
            println!(
                "  {topic:<8} partition {p}: source {:>7} records, target {:>7} records  {}",
                src.records,
                dst.records,
                if same { "match" } else { "MISMATCH" }
            );
        }
    }
    println!(
        "{}",
        if all_match {
            "demo ok: the target matches the source exactly"
        } else {
            "demo FAILED: the target differs from the source"
        }
    );
    Ok(all_match)
}

/// Live traffic: sequence-numbered records with keys (some null), headers,
/// explicit timestamps and a few tombstones, spread over every partition.
fn produce_traffic(bootstrap: &str, records: u64, produced: &AtomicU64) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for seq in 0..records {
        let (topic, partitions) = TOPICS[(seq % TOPICS.len() as u64) as usize];
        let partition = ((seq / TOPICS.len() as u64) % partitions as u64) as i32;
        let key = format!("key-{}", seq % 1000);
        let value = format!("{{\"seq\":{seq},\"amount\":{}}}", seq * 7 % 1000);
        let seq_text = seq.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(seq_text.as_bytes()),
            })
            .insert(Header {
                key: "source",
                value: Some("demo".as_bytes()),
            });
        let mut record: BaseRecord<'_, str, str> = BaseRecord::to(topic)
            .partition(partition)
            .timestamp(1_700_000_000_000 + seq as i64)
            .headers(headers);
        if seq % 10 != 0 {
            record = record.key(&key);
        }
        if seq % 50 != 0 {
            record = record.payload(&value);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
        produced.fetch_add(1, Ordering::Relaxed);
        // Spread the traffic over a few seconds so the demo shows live
        // replication rather than a single burst.
        let due = Duration::from_micros(seq * 4_000_000 / records.max(1));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| e.to_string())
}
