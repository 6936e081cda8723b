//! Schema Registry migration end to end: the real `ferry` binary copies
//! records between two Apache Kafka clusters while it copies their schemas
//! between two real Schema Registry servers (Apicurio Registry through its
//! Confluent-compatible API, see tests/registry/README.md). Records are
//! decoded on the target by confluent-kafka's `AvroDeserializer`, the way
//! applications read them.
//!
//! The test registry cannot register a schema under a chosen ID (it has no
//! IMPORT mode), so `translate-ids` is tested in full and `preserve-ids`
//! against what such a target does: Ferry refuses it clearly, and records
//! carrying IDs wait or go on as `schemas.required` says.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, unique_name};
use ferry_testkit::registry::RegistryHome;
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster, SchemaRegistry};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

const ADDRESS: &str = r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}"#;
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"ship_to","type":"shop.Address"}]}"#;
const PAYMENT_V1: &str = r#"{"type":"record","name":"Payment","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"cents","type":"long"}]}"#;
const PAYMENT_V2: &str = r#"{"type":"record","name":"Payment","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"cents","type":"long"},{"name":"currency","type":"string","default":"EUR"}]}"#;

/// Registers `schema` under `subject`; its ID.
fn register(registry: &SchemaRegistry, subject: &str, schema: &str, references: &str) -> u32 {
    let body = serde_json::json!({
        "schema": schema,
        "references": serde_json::from_str::<serde_json::Value>(references).unwrap(),
    });
    let (status, answer) = registry
        .post(&format!("/subjects/{subject}/versions"), &body.to_string())
        .expect("the registry answers");
    assert_eq!(status, 200, "registering {subject}: {answer}");
    serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
        .as_u64()
        .unwrap() as u32
}

/// Avro's zig-zag varint encoding of a long.
fn avro_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn avro_string(out: &mut Vec<u8>, s: &str) {
    avro_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// The Confluent wire format: magic byte 0, the schema ID, the Avro body.
fn framed(id: u32, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    body(&mut out);
    out
}

fn order(id: u32, n: i64) -> Vec<u8> {
    framed(id, |b| {
        avro_long(b, n);
        avro_string(b, &format!("city-{n}"));
    })
}

fn payment(id: u32, n: i64, currency: Option<&str>) -> Vec<u8> {
    framed(id, |b| {
        avro_long(b, n);
        avro_long(b, n * 100);
        if let Some(c) = currency {
            avro_string(b, c);
        }
    })
}

fn produce(cluster: &KafkaCluster, topic: &str, values: &[Vec<u8>]) {
    let producer: BaseProducer = cluster
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        producer
            .send(BaseRecord::to(topic).key(&key).payload(v).partition(0))
            .expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

const DECODE: &str = r#"
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField

bootstrap, url, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "decode", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
decoded, deadline = [], time.time() + 60
while len(decoded) < count and time.time() < deadline:
    m = consumer.poll(0.5)
    if m is None or m.error():
        continue
    decoded.append(deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)))
print(json.dumps(decoded))
"#;

/// The first `count` values of `topic` partition 0, decoded by
/// confluent-kafka's AvroDeserializer against the registry at `url`.
fn decode(
    dir: &Path,
    cluster: &KafkaCluster,
    url: &str,
    topic: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let script = dir.join("decode.py");
    std::fs::write(&script, DECODE).unwrap();
    let python = RegistryHome::locate().expect("registry installed").python();
    let out = Command::new(python)
        .arg(&script)
        .args([cluster.bootstrap_servers(), url, topic, &count.to_string()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "decoding {topic} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(decoded.len(), count, "decoded {topic}: {decoded:?}");
    decoded
}

fn values(cluster: &KafkaCluster, topic: &str) -> Vec<Vec<u8>> {
    data::read_topic(&cluster.client_config(), topic)
        .expect("read")
        .into_iter()
        .flatten()
        .map(|r| r.value.unwrap_or_default())
        .collect()
}

fn registries(source_url: &str, target_url: &str) -> String {
    format!(
        "\n[registries.old]\nurl = \"{source_url}\"\n[registries.new]\nurl = \"{target_url}\"\n"
    )
}

fn topology(dir: &Path, topics: &[&str], schemas: &str, urls: (&str, &str)) -> PathBuf {
    let (source, target) = shared_pair().expect("test brokers start");
    let list = topics
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let flows = format!(
        "{}{}",
        one_flow(&format!("topics = [{list}]\nschemas = {schemas}\n")),
        registries(urls.0, urls.1)
    );
    write_topology(dir, source, target, &flows)
}

/// Must show 2 and 3: `translate-ids` into a target registry whose IDs are
/// taken by unrelated schemas. Every record is rewritten to the target's
/// IDs and decodes there (a reference included); a version registered on
/// the source mid-run is on the target before its first record.
#[test]
fn translate_ids_rewrites_records_and_copies_new_versions_before_their_records() {
    let (source, target) = shared_pair().expect("test brokers start");
    let (old, new) = std::thread::scope(|s| {
        let old = s.spawn(|| SchemaRegistry::start().expect("source registry starts"));
        let new = SchemaRegistry::start().expect("target registry starts");
        (old.join().unwrap(), new)
    });
    // Unrelated schemas take the target's first IDs.
    for i in 0..3 {
        register(
            &new,
            &format!("unrelated-{i}"),
            &format!(r#"{{"type":"record","name":"U{i}","fields":[{{"name":"x","type":"int"}}]}}"#),
            "[]",
        );
    }
    let orders = unique_name("orders");
    let payments = unique_name("payments");
    let plain = unique_name("plain");
    for t in [&orders, &payments, &plain] {
        data::create_topic(&source.client_config(), t, 1, 1, &[]).expect("create topic");
    }
    let address_id = register(&old, "shop.Address", ADDRESS, "[]");
    let order_id = register(
        &old,
        &format!("{orders}-value"),
        ORDER,
        r#"[{"name":"shop.Address","subject":"shop.Address","version":1}]"#,
    );
    let payment_v1 = register(&old, &format!("{payments}-value"), PAYMENT_V1, "[]");
    assert_eq!(
        (address_id, order_id, payment_v1),
        (1, 2, 3),
        "a fresh source registry"
    );
    let order_values: Vec<Vec<u8>> = (0..20).map(|n| order(order_id, n)).collect();
    let payment_values: Vec<Vec<u8>> = (0..20).map(|n| payment(payment_v1, n, None)).collect();
    produce(source, &orders, &order_values);
    produce(source, &payments, &payment_values);
    // Records without the wire format pass untouched, even one that starts
    // with a zero byte but names no schema the source registry has.
    let plain_values: Vec<Vec<u8>> = vec![b"{\"json\":true}".to_vec(), vec![0, 0, 0, 3, 231, 1, 2]];
    produce(source, &plain, &plain_values);

    let dir = tempfile::tempdir().unwrap();
    // A long refresh: a version registered mid-run can only reach the
    // target because its first record asked for it.
    let path = topology(
        dir.path(),
        &[&orders, &payments, &plain],
        "{ source = \"old\", target = \"new\", subjects = [\".*\"], mode = \"translate-ids\" }",
        (&old.url(), &new.url()),
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("refresh_interval = \"2s\"", "refresh_interval = \"1h\"");
    std::fs::write(&path, text).unwrap();
    let config = path.to_str().unwrap();
    // `ferry plan` lists what the daemon will copy, references first.
    let (code, plan, err) = FERRY.output(&["plan", "--config", config]);
    assert_eq!(code, Some(0), "{plan}{err}");
    assert!(
        plan.contains("Schemas (old -> new, translate-ids): 3 versions to copy, 0 already on the target, 0 conflicts"),
        "{plan}"
    );
    let listed = |line: &str| {
        plan.find(line)
            .unwrap_or_else(|| panic!("{line} in:\n{plan}"))
    };
    assert!(
        listed("copy     shop.Address version 1 (ID 1)\n")
            < listed(&format!(
                "copy     {orders}-value version 1 (ID 2) as src.{orders}-value"
            ))
    );
    let daemon = FERRY.start(&path);
    let (r_orders, r_payments, r_plain) = (
        format!("src.{orders}"),
        format!("src.{payments}"),
        format!("src.{plain}"),
    );
    wait_for(
        "the first records to be copied",
        Duration::from_secs(120),
        || {
            let n: i64 = [&r_orders, &r_payments, &r_plain]
                .iter()
                .map(|t| {
                    data::end_offsets(&target.client_config(), t).map_or(0, |e| e.iter().sum())
                })
                .sum();
            (n == 42).then_some(())
        },
    );

    // Subjects follow their topics under prefix naming; others keep theirs.
    let (_, subjects) = new.get("/subjects").unwrap();
    for s in [
        "shop.Address".to_string(),
        format!("src.{orders}-value"),
        format!("src.{payments}-value"),
    ] {
        assert!(
            subjects.contains(&format!("\"{s}\"")),
            "{s} on the target: {subjects}"
        );
    }
    // The IDs moved: 1..3 belong to the unrelated schemas on the target.
    let copied = values(target, &r_orders);
    let target_order_id = ferry_schemas::wire::schema_id(&copied[0]).unwrap();
    assert_ne!(target_order_id, order_id);
    for (src, dst) in order_values.iter().zip(&copied) {
        assert_eq!(ferry_schemas::wire::schema_id(dst), Some(target_order_id));
        assert_eq!(src[5..], dst[5..], "only the ID is rewritten");
    }
    assert_eq!(
        values(target, &r_plain),
        plain_values,
        "no wire format: untouched"
    );
    let decoded = decode(dir.path(), target, &new.url(), &r_orders, 20);
    assert_eq!(decoded[7]["id"], 7);
    assert_eq!(decoded[7]["ship_to"]["city"], "city-7");
    let decoded = decode(dir.path(), target, &new.url(), &r_payments, 20);
    assert_eq!(decoded[19]["cents"], 1900);

    // Mid-run: a new version on the source, then records that use it.
    let payment_v2 = register(&old, &format!("{payments}-value"), PAYMENT_V2, "[]");
    produce(
        source,
        &payments,
        &(20..30)
            .map(|n| payment(payment_v2, n, Some("CHF")))
            .collect::<Vec<_>>(),
    );
    wait_for("the new version's records", Duration::from_secs(60), || {
        let ends = data::end_offsets(&target.client_config(), &r_payments).ok()?;
        (ends[0] == 30).then_some(())
    });
    let copied = values(target, &r_payments);
    let new_id = ferry_schemas::wire::schema_id(&copied[20]).unwrap();
    assert_ne!(new_id, payment_v2, "rewritten into the target's ID space");
    let (status, body) = new.get(&format!("/schemas/ids/{new_id}")).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("currency"), "{body}");
    let decoded = decode(dir.path(), target, &new.url(), &r_payments, 30);
    assert_eq!(decoded[25]["currency"], "CHF");
    assert_eq!(decoded[25]["cents"], 2500);

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("schema copied"), "{log}");
    // Every ID in the target records resolves to the source's schema.
    let (code, out, err) = FERRY.output(&["verify", "--config", config, "--schemas"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("schemas match"), "{out}");
    assert!(
        out.contains("50 records with schema IDs, 3 distinct IDs checked"),
        "{out}"
    );
}

/// `preserve-ids` against a target that cannot register under a chosen ID
/// (no IMPORT mode): Ferry says so naming the registry and the subject,
/// overwrites nothing, and with `required = true` holds the records that
/// carry schema IDs while records without one keep flowing.
#[test]
fn preserve_ids_refuses_a_target_without_import_mode_and_required_holds_records() {
    let (source, target) = shared_pair().expect("test brokers start");
    let (old, new) = std::thread::scope(|s| {
        let old = s.spawn(|| SchemaRegistry::start().expect("source registry starts"));
        let new = SchemaRegistry::start().expect("target registry starts");
        (old.join().unwrap(), new)
    });
    let payments = unique_name("payments");
    let refunds = unique_name("refunds");
    let plain = unique_name("plain");
    for t in [&payments, &refunds, &plain] {
        data::create_topic(&source.client_config(), t, 1, 1, &[]).expect("create topic");
    }
    let id = register(&old, &format!("{payments}-value"), PAYMENT_V1, "[]");
    // The target already holds version 1 of refunds' subject, under another
    // ID and with another schema: payments' schema, under payments' ID,
    // which is no conflict for payments.
    let refund_id = register(&old, &format!("{refunds}-value"), ADDRESS, "[]");
    let taken = register(&new, &format!("src.{refunds}-value"), PAYMENT_V1, "[]");
    assert_eq!((refund_id, taken), (2, 1));
    let sent: Vec<Vec<u8>> = (0..5).map(|n| payment(id, n, None)).collect();
    produce(source, &payments, &sent);
    produce(
        source,
        &refunds,
        &[framed(refund_id, |b| avro_string(b, "x"))],
    );
    produce(source, &plain, &[b"plain".to_vec()]);
    let dir = tempfile::tempdir().unwrap();
    let path = topology(
        dir.path(),
        &[&payments, &refunds, &plain],
        "{ source = \"old\", target = \"new\", mode = \"preserve-ids\", required = true }",
        (&old.url(), &new.url()),
    );
    let config = path.to_str().unwrap();
    let (code, plan, err) = FERRY.output(&["plan", "--config", config]);
    assert_eq!(code, Some(0), "{plan}{err}");
    let copy = format!("copy     {payments}-value version 1 (ID 1) as src.{payments}-value");
    assert!(plan.contains(&copy), "{plan}");
    let conflict = format!(
        "conflict src.{refunds}-value version 1 (ID 2): the target holds this version under ID 1; refused"
    );
    assert!(plan.contains(&conflict), "{plan}");

    let daemon = FERRY.start(&path);
    wait_for("the plain record", Duration::from_secs(120), || {
        let ends = data::end_offsets(&target.client_config(), &format!("src.{plain}")).ok()?;
        (ends[0] == 1).then_some(())
    });
    wait_for("the refusal in the log", Duration::from_secs(60), || {
        daemon.log().contains("IMPORT mode").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    for t in [&payments, &refunds] {
        let held = data::end_offsets(&target.client_config(), &format!("src.{t}"))
            .map_or(0, |e| e.iter().sum::<i64>());
        assert_eq!(
            held, 0,
            "{t}: records wait while their schemas cannot be copied"
        );
    }
    // Nothing was registered nor overwritten on the target.
    let (_, subjects) = new.get("/subjects").unwrap();
    assert!(!subjects.contains(&payments), "{subjects}");
    let (_, versions) = new
        .get(&format!("/subjects/src.{refunds}-value/versions"))
        .unwrap();
    assert_eq!(versions.trim(), "[1]");
    let (_, kept) = new.get("/schemas/ids/1").unwrap();
    assert!(kept.contains("cents"), "{kept}");
    assert_eq!(new.get("/schemas/ids/2").unwrap().0, 404);
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("target registry new cannot put subject") && log.contains(&payments),
        "{log}"
    );
    assert!(
        log.contains(&format!("subject src.{refunds}-value version 1 (ID 2)")),
        "the conflict is named:\n{log}"
    );
    // The subject lists do not match.
    let (code, out, err) = FERRY.output(&["verify", "--config", config, "--schemas"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let missing = format!(
        "subject src.{payments}-value (source subject {payments}-value) is missing on target registry new"
    );
    assert!(out.contains(&missing), "{out}");
}

/// An unreachable registry is a clear error; without `required` the
/// records go on, byte for byte, under `preserve-ids`.
#[test]
fn an_unreachable_registry_is_reported_and_records_go_on_unless_required() {
    let (source, target) = shared_pair().expect("test brokers start");
    let old = SchemaRegistry::start().expect("source registry starts");
    let payments = unique_name("payments");
    data::create_topic(&source.client_config(), &payments, 1, 1, &[]).expect("create topic");
    let id = register(&old, &format!("{payments}-value"), PAYMENT_V1, "[]");
    let sent: Vec<Vec<u8>> = (0..5).map(|n| payment(id, n, None)).collect();
    produce(source, &payments, &sent);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = topology(
        dir.path(),
        &[&payments],
        "{ source = \"old\", target = \"new\", mode = \"preserve-ids\" }",
        (&old.url(), &format!("http://127.0.0.1:{closed}")),
    );
    let daemon = FERRY.start(&path);
    let remote = format!("src.{payments}");
    wait_for("the records", Duration::from_secs(120), || {
        let ends = data::end_offsets(&target.client_config(), &remote).ok()?;
        (ends[0] == 5).then_some(())
    });
    assert_eq!(values(target, &remote), sent, "byte-identical");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!("schema registry new (http://127.0.0.1:{closed}"))
            && log.contains("cannot be reached"),
        "{log}"
    );
}
