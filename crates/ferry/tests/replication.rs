//! The replication engine end to end, against real Apache Kafka: the real
//! `ferry` binary copies between two single-node clusters, and the target is
//! compared with the source record for record (key, value, headers in order,
//! timestamp, partition).

use std::time::Duration;

use ferry_testkit::check::{assert_same, compare, total, try_total};
use ferry_testkit::daemon::{stop_daemon, stop_daemon_with, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::shared_pair;
use ferry_testkit::topology::{one_flow, rename_clusters, write_topology};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

#[test]
fn copies_every_record_faithfully_partition_by_partition() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("fidelity");
    let topics: Vec<String> = (0..3).map(|i| format!("{prefix}-{i}")).collect();
    // 3 topics × 4 partitions × 8,334 records ≈ 100,000 records, with
    // headers (including a repeated name and a null value), null keys,
    // tombstones and explicit CreateTime timestamps.
    let mut spec = SequenceSpec::new(4, 8_334);
    spec.tombstone_every = 7;
    spec.null_key_every = 5;
    for t in &topics {
        data::create_topic(&source.client_config(), t, 4, 1, &[]).expect("create source topic");
        produce_sequence(&source.client_config(), t, &spec).expect("produce");
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{prefix}-.*\"]")),
    );
    FERRY.run_until_caught_up(&topology);
    for t in &topics {
        assert_same(source, t, target, &format!("src.{t}"), 4 * 8_334);
        assert_eq!(
            data::partition_count(&target.client_config(), &format!("src.{t}")).unwrap(),
            4
        );
    }
    // A second bounded run finds nothing new to copy: progress was saved.
    FERRY.run_until_caught_up(&topology);
    for t in &topics {
        assert_same(source, t, target, &format!("src.{t}"), 4 * 8_334);
    }
}

#[test]
fn sigterm_under_load_then_restart_loses_nothing_and_duplicates_nothing() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("sigterm");
    data::create_topic(&source.client_config(), &topic, 4, 1, &[]).expect("create");
    let mut spec = SequenceSpec::new(4, 25_000);
    spec.value_padding = 200;
    produce_sequence(&source.client_config(), &topic, &spec).expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    let daemon = FERRY.start(&topology);
    let remote = format!("src.{topic}");
    // Stop it mid-copy: once some, but not all, records have arrived.
    wait_for("replication to start", Duration::from_secs(60), || {
        let ends = data::end_offsets(&target.client_config(), &remote).ok()?;
        (ends.iter().sum::<i64>() > 0).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "graceful stop exits 0:\n{log}");
    let copied: i64 = data::end_offsets(&target.client_config(), &remote)
        .unwrap()
        .iter()
        .sum();
    assert!(
        copied < 100_000,
        "the stop should land mid-copy (copied {copied}); make the data larger"
    );

    // More traffic while stopped, then resume to the end.
    spec.first_seq = 25_000;
    spec.records_per_partition = 5_000;
    produce_sequence(&source.client_config(), &topic, &spec).expect("produce more");
    FERRY.run_until_caught_up(&topology);
    assert_same(source, &topic, target, &remote, 4 * 30_000);
}

#[test]
fn new_topics_and_partitions_are_picked_up_while_running() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("discover");
    let first = format!("{prefix}-a");
    data::create_topic(&source.client_config(), &first, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &first, &SequenceSpec::new(2, 100)).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{prefix}-.*\"]")),
    );
    let daemon = FERRY.start(&topology);
    wait_for("the first topic", Duration::from_secs(60), || {
        (try_total(target, &format!("src.{first}")).ok()? == 200).then_some(())
    });

    // A topic created while running is replicated within refresh_interval
    // (2 s here), give or take a metadata round trip.
    let second = format!("{prefix}-b");
    data::create_topic(&source.client_config(), &second, 3, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &second, &SequenceSpec::new(3, 50)).expect("produce");
    let created = std::time::Instant::now();
    wait_for("the new topic", Duration::from_secs(30), || {
        (try_total(target, &format!("src.{second}")).ok()? == 150).then_some(())
    });
    assert!(
        created.elapsed() < Duration::from_secs(10),
        "took {:?}",
        created.elapsed()
    );

    // Partitions added on the source appear on the target and are copied.
    data::add_partitions(&source.client_config(), &first, 4).expect("grow");
    let mut more = SequenceSpec::new(4, 25);
    more.partitions = vec![2, 3];
    produce_sequence(&source.client_config(), &first, &more).expect("produce to new partitions");
    wait_for("the new partitions", Duration::from_secs(30), || {
        (try_total(target, &format!("src.{first}")).ok()? == 250).then_some(())
    });
    assert_eq!(
        data::partition_count(&target.client_config(), &format!("src.{first}")).unwrap(),
        4
    );

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_same(source, &first, target, &format!("src.{first}"), 250);
    assert_same(source, &second, target, &format!("src.{second}"), 150);
}

#[test]
fn active_active_identity_naming_copies_each_record_once_and_never_loops() {
    let (east, west) = shared_pair().expect("test brokers start");
    let topic = unique_name("events");
    for c in [east, west] {
        data::create_topic(&c.client_config(), &topic, 2, 1, &[]).expect("create");
    }
    // Disjoint sequence numbers tell the origin of every record.
    let mut from_east = SequenceSpec::new(2, 500);
    from_east.first_seq = 0;
    let mut from_west = SequenceSpec::new(2, 500);
    from_west.first_seq = 1_000_000;
    produce_sequence(&east.client_config(), &topic, &from_east).expect("produce east");
    produce_sequence(&west.client_config(), &topic, &from_west).expect("produce west");

    let dir = tempfile::tempdir().unwrap();
    let flows = format!(
        "[[flows]]\nsource = \"src\"\ntarget = \"dst\"\ntopic_naming = \"identity\"\ntopics = [\"{topic}\"]\nrefresh_interval = \"2s\"\n\
         [[flows]]\nsource = \"dst\"\ntarget = \"src\"\ntopic_naming = \"identity\"\ntopics = [\"{topic}\"]\nrefresh_interval = \"2s\"\n"
    );
    let topology = write_topology(dir.path(), east, west, &flows);
    let daemon = FERRY.start(&topology);
    wait_for(
        "both sides to hold both sides' records",
        Duration::from_secs(60),
        || {
            (try_total(east, &topic).ok()? == 2000 && try_total(west, &topic).ok()? == 2000)
                .then_some(())
        },
    );
    // Each flow reads its partitions in order: once a record written after
    // the copies has crossed in both directions, each flow has passed over
    // every copy the other flow wrote, and a loop would have shown itself.
    let mut marker_east = SequenceSpec::new(2, 10);
    marker_east.first_seq = 2_000_000;
    let mut marker_west = SequenceSpec::new(2, 10);
    marker_west.first_seq = 3_000_000;
    produce_sequence(&east.client_config(), &topic, &marker_east).expect("produce east");
    produce_sequence(&west.client_config(), &topic, &marker_west).expect("produce west");
    wait_for(
        "both sides to hold both sides' markers",
        Duration::from_secs(60),
        || {
            (try_total(east, &topic).ok()? >= 2040 && try_total(west, &topic).ok()? >= 2040)
                .then_some(())
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    for (name, cluster) in [("east", east), ("west", west)] {
        let partitions = data::read_topic(&cluster.client_config(), &topic).expect("read");
        let mut seen = std::collections::BTreeMap::new();
        for r in partitions.iter().flatten() {
            *seen
                .entry(r.sequence().expect("sequence record"))
                .or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 2040, "{name}: every record present");
        assert!(
            seen.values().all(|n| *n == 1),
            "{name}: a record arrived twice (loop)"
        );
    }
}

#[test]
fn a_bad_topic_reports_its_partition_and_cause_while_others_keep_flowing() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("badtopic");
    let (good, bad) = (format!("{prefix}-good"), format!("{prefix}-bad"));
    data::create_topic(&source.client_config(), &good, 1, 1, &[]).expect("create");
    data::create_topic(&source.client_config(), &bad, 1, 1, &[]).expect("create");
    // The target topic exists already and refuses records over 1 KB.
    data::create_topic(
        &target.client_config(),
        &format!("src.{bad}"),
        1,
        1,
        &[("max.message.bytes", "1024")],
    )
    .expect("create restrictive target");
    // Random bytes, so compression cannot shrink the batch under the limit.
    {
        use rand::RngCore;
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = source.client_config().create().expect("producer");
        let mut value = vec![0u8; 8192];
        for _ in 0..10 {
            rand::thread_rng().fill_bytes(&mut value);
            producer
                .send(
                    BaseRecord::<[u8], [u8]>::to(&bad)
                        .partition(0)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("send");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
    produce_sequence(&source.client_config(), &good, &SequenceSpec::new(1, 300)).expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{prefix}-.*\"]")),
    );
    let daemon = FERRY.start(&topology);
    wait_for("the good topic", Duration::from_secs(60), || {
        (try_total(target, &format!("src.{good}")).ok()? == 300).then_some(())
    });
    // The refused record has been tried three times (two retries).
    let failure = format!("topic src.{bad}, partition 0");
    wait_for("three refused attempts", Duration::from_secs(60), || {
        (daemon
            .log()
            .lines()
            .filter(|l| l.contains(&failure))
            .count()
            >= 3)
            .then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_same(source, &good, target, &format!("src.{good}"), 300);
    assert_eq!(
        total(target, &format!("src.{bad}")),
        0,
        "nothing past the refused record"
    );
    let line = log
        .lines()
        .find(|l| l.contains(&format!("topic src.{bad}, partition 0")))
        .unwrap_or_else(|| panic!("no error naming the partition in:\n{log}"));
    assert!(line.contains("cluster dst"), "{line}");
    assert!(
        line.to_lowercase().contains("too large"),
        "cause named: {line}"
    );
}

#[test]
fn start_from_unconsumed_copies_from_the_smallest_committed_offset() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("unconsumed");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 1000))
        .expect("produce");
    let (slow, fast) = (unique_name("slow-group"), unique_name("fast-group"));
    let admin = ferry_admin::Admin::new(&source.client_config()).expect("admin");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        admin
            .alter_consumer_group_offsets(
                &slow,
                &[(topic.as_str(), 0, 300), (topic.as_str(), 1, 800)],
            )
            .await
            .expect("commit slow");
        admin
            .alter_consumer_group_offsets(
                &fast,
                &[(topic.as_str(), 0, 600), (topic.as_str(), 1, 400)],
            )
            .await
            .expect("commit fast");
    });
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "topics = [\"{topic}\"]\nstart_from = \"unconsumed\"\ngroups = [\"{slow}\", \"{fast}\"]\nsync_group_offsets = false\n"
    );
    let topology = write_topology(dir.path(), source, target, &one_flow(&extra));
    FERRY.run_until_caught_up(&topology);
    let copied = data::read_topic(&target.client_config(), &format!("src.{topic}")).expect("read");
    // Partition 0: the smaller commit is 300; partition 1: 400.
    for (partition, from) in [(0usize, 300u64), (1, 400)] {
        let seqs: Vec<u64> = copied[partition]
            .iter()
            .map(|r| r.sequence().unwrap().seq)
            .collect();
        let expected: Vec<u64> = (from..1000).collect();
        assert_eq!(seqs, expected, "partition {partition}");
    }
    // A second run copies nothing new.
    FERRY.run_until_caught_up(&topology);
    assert_eq!(total(target, &format!("src.{topic}")), 700 + 600);
}

#[test]
fn aborted_transactions_are_never_copied() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("txn");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    let producer: BaseProducer = source
        .client_config()
        .set("transactional.id", unique_name("txn-producer"))
        .create()
        .expect("transactional producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    let mut committed = Vec::new();
    for txn in 0..10u32 {
        producer.begin_transaction().expect("begin");
        for i in 0..50u32 {
            let value = format!("txn{txn}-{i}");
            producer
                .send(
                    BaseRecord::<str, str>::to(&topic)
                        .partition(0)
                        .key("k")
                        .payload(&value),
                )
                .expect("send");
            if txn % 3 != 1 {
                committed.push(value);
            }
        }
        producer.flush(timeout).expect("flush");
        if txn % 3 == 1 {
            producer.abort_transaction(timeout).expect("abort");
        } else {
            producer.commit_transaction(timeout).expect("commit");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    FERRY.run_until_caught_up(&topology);
    let copied = data::read_topic(&target.client_config(), &format!("src.{topic}")).expect("read");
    let values: Vec<String> = copied[0]
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(values, committed, "exactly the committed records, in order");
    // Progress passed the trailing transaction marker: a second run copies
    // nothing (the copy is not transactional, so end offsets count records).
    FERRY.run_until_caught_up(&topology);
    assert_eq!(
        total(target, &format!("src.{topic}")),
        committed.len() as i64,
        "the second run copied again"
    );
}

#[test]
fn sigkill_three_times_under_load_loses_nothing_and_bounds_duplicates() {
    use rand::Rng;
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("sigkill");
    data::create_topic(&source.client_config(), &topic, 4, 1, &[]).expect("create");
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 1_000;
    let producer = {
        let (config, topic) = (source.client_config(), topic.clone());
        std::thread::spawn(move || {
            for b in 0..BATCHES {
                let mut spec = SequenceSpec::new(4, PER_BATCH);
                spec.first_seq = b * PER_BATCH;
                spec.value_padding = 100;
                produce_sequence(&config, &topic, &spec).expect("produce");
            }
        })
    };
    // A small window makes the bound below meaningful: at most this many
    // bytes are ever fetched-but-unacknowledged or acknowledged-but-unsaved.
    let window_bytes: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("topics = [\"{topic}\"]\nmax_in_flight_bytes = {window_bytes}\n");
    let topology = write_topology(dir.path(), source, target, &one_flow(&extra));
    let mut rng = rand::thread_rng();
    let produced = (BATCHES * PER_BATCH * 4) as i64;
    let remote = format!("src.{topic}");
    let mut landed_mid_copy = 0;
    for kill in 0..3 {
        let daemon = FERRY.start(&topology);
        std::thread::sleep(Duration::from_millis(rng.gen_range(2_000..5_000)));
        // What the target held just before the kill: a kill that lands
        // after everything was copied tests nothing.
        let copied = try_total(target, &remote).unwrap_or(0);
        let (code, _) = stop_daemon_with(daemon, libc::SIGKILL);
        assert_eq!(code, None, "kill {kill}: killed by a signal");
        eprintln!("kill {kill}: {copied} of {produced} records on the target");
        if copied > 0 && copied < produced {
            landed_mid_copy += 1;
        }
    }
    assert!(
        landed_mid_copy > 0,
        "no kill landed while records were being copied"
    );
    producer.join().expect("producer thread");
    FERRY.run_until_caught_up(&topology);

    let report = compare(source, &topic, target, &format!("src.{topic}"));
    let missing: usize = report.partitions.iter().map(|p| p.missing.len()).sum();
    let unexpected: usize = report.partitions.iter().map(|p| p.unexpected.len()).sum();
    let duplicates: usize = report.partitions.iter().map(|p| p.duplicates.len()).sum();
    assert_eq!(report.source_count(), (4 * BATCHES * PER_BATCH) as usize);
    assert_eq!(missing, 0, "no acknowledged record may be lost:\n{report}");
    assert_eq!(unexpected, 0, "{report}");
    // Each record is ~125 bytes (key + value); each kill can re-copy at most
    // one window.
    let window_records = (window_bytes / 110) as usize;
    eprintln!(
        "duplicates after 3 SIGKILLs: {duplicates} (bound {})",
        3 * window_records
    );
    assert!(
        duplicates <= 3 * window_records,
        "{duplicates} duplicates exceed 3 windows:\n{report}"
    );
}

#[test]
fn topic_configs_are_copied_and_kept_in_sync() {
    use ferry_admin::{Admin, ConfigChange};
    use ferry_testkit::inspect::topic_overrides;
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("configs");
    data::create_topic(
        &source.client_config(),
        &topic,
        1,
        1,
        &[
            ("retention.ms", "123456789"),
            ("min.insync.replicas", "1"),
            ("max.message.bytes", "2000000"),
        ],
    )
    .expect("create");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    let daemon = FERRY.start(&topology);
    // Ferry's own admin code only changes the source; the target is read
    // through rdkafka's DescribeConfigs.
    let src_admin = Admin::new(&source.client_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let remote = format!("src.{topic}");
    // A failed read fails the test: it must not pass the checks for an
    // absent override.
    let overrides = |name: &str| -> std::collections::BTreeMap<String, String> {
        topic_overrides(&target.client_config(), name)
            .unwrap_or_else(|e| panic!("reading the configs of {name}: {e}"))
    };
    let wait_overrides =
        |what: &str, check: &dyn Fn(&std::collections::BTreeMap<String, String>) -> bool| {
            wait_for(what, Duration::from_secs(30), || {
                // Until the daemon has created it.
                data::partition_count(&target.client_config(), &remote).ok()?;
                check(&overrides(&remote)).then_some(())
            })
        };
    wait_overrides("the configs copied at creation", &|o| {
        o.get("retention.ms").map(String::as_str) == Some("123456789")
            && o.get("max.message.bytes").map(String::as_str) == Some("2000000")
    });
    assert!(
        !overrides(&remote).contains_key("min.insync.replicas"),
        "excluded like MM2"
    );

    rt.block_on(
        src_admin
            .incremental_alter_configs(&topic, &[ConfigChange::set("retention.ms", "987654321")]),
    )
    .expect("alter source");
    wait_overrides("a changed config synced", &|o| {
        o.get("retention.ms").map(String::as_str) == Some("987654321")
    });
    rt.block_on(
        src_admin.incremental_alter_configs(&topic, &[ConfigChange::delete("max.message.bytes")]),
    )
    .expect("delete on source");
    wait_overrides("a removed override removed", &|o| {
        !o.contains_key("max.message.bytes")
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_target_topic_deleted_while_running_is_reported_and_recreated() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("deleted");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(1, 100)).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    let daemon = FERRY.start(&topology);
    let remote = format!("src.{topic}");
    wait_for("the first copy", Duration::from_secs(60), || {
        (try_total(target, &remote).ok()? == 100).then_some(())
    });
    let admin = ferry_admin::Admin::new(&target.client_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(admin.delete_topics(&[remote.as_str()]))
        .expect("delete target topic");
    let mut more = SequenceSpec::new(1, 100);
    more.first_seq = 100;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");
    // The records produced after the deletion arrive in a recreated topic.
    wait_for("the recreated topic", Duration::from_secs(180), || {
        let copied = data::read_topic(&target.client_config(), &remote).ok()?;
        let seqs: Vec<u64> = copied
            .first()?
            .iter()
            .filter_map(|r| Some(r.sequence()?.seq))
            .collect();
        (seqs == (100..200).collect::<Vec<_>>()).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("cluster dst, topic {remote}, partition 0"))),
        "the failure names cluster, topic and partition:\n{log}"
    );
}

#[test]
fn rename_rules_land_records_in_the_renamed_topic_and_never_merge_two_topics() {
    let (source, target) = shared_pair().expect("test brokers start");
    let renamed = unique_name("renamed");
    let kept = unique_name("kept");
    let merged = unique_name("merged");
    let legacy = |t: &str| format!("legacy.{t}");
    for t in [legacy(&renamed), kept.clone()] {
        data::create_topic(&source.client_config(), &t, 2, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), &t, &SequenceSpec::new(2, 200)).expect("produce");
    }
    let dir = tempfile::tempdir().unwrap();
    // Patterns, not literal names: which topics exist is only known at run
    // time, when the merge below shows up.
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!(
            "topics = [\".*{renamed}\", \".*{kept}\", \".*{merged}\"]\n\
             rename = [{{ from = \"legacy\\\\.(.*)\", to = \"$1\" }}]"
        )),
    );
    let config = topology.to_str().unwrap();
    let (code, plan, stderr) = FERRY.output(&["plan", "-c", config]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        plan.contains(&format!(
            "  src.{renamed} <- legacy.{renamed}: 2 partitions"
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("  src.{kept} <- {kept}: 2 partitions")),
        "{plan}"
    );

    FERRY.run_until_caught_up(&topology);
    assert_same(
        source,
        &legacy(&renamed),
        target,
        &format!("src.{renamed}"),
        400,
    );
    assert_same(source, &kept, target, &format!("src.{kept}"), 400);

    // `legacy.<merged>` renamed would land where `<merged>` goes: neither is
    // copied, and plan and run say so naming both and the target topic.
    for t in [legacy(&merged), merged.clone()] {
        data::create_topic(&source.client_config(), &t, 1, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), &t, &SequenceSpec::new(1, 10)).expect("produce");
    }
    let refusal = format!(
        "cluster dst, topic src.{merged}: would be written from two source topics, legacy.{merged}"
    );
    let (code, _, stderr) = FERRY.output(&["plan", "-c", config]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&refusal), "{stderr}");
    assert!(
        stderr.contains(&format!("and {merged} (flow src->dst)")),
        "{stderr}"
    );
    let (code, _, log) = FERRY.output(&["run", "-c", config, "--until", "caught-up"]);
    assert_eq!(code, Some(1), "a bounded run ends with the refusal:\n{log}");
    assert!(log.contains(&refusal), "{log}");
    let on_target = ferry_testkit::inspect::topic_partition_counts(&target.client_config())
        .expect("list target topics");
    assert!(
        !on_target.contains_key(&format!("src.{merged}")),
        "nothing was merged into src.{merged}"
    );
    assert_same(source, &kept, target, &format!("src.{kept}"), 400);
}

#[test]
fn prefix_naming_with_a_custom_separator_never_loops_between_two_clusters() {
    let (east, west) = shared_pair().expect("test brokers start");
    let topic = unique_name("ring");
    for c in [east, west] {
        data::create_topic(&c.client_config(), &topic, 2, 1, &[]).expect("create");
    }
    let mut from_west = SequenceSpec::new(2, 300);
    from_west.first_seq = 1_000_000;
    produce_sequence(&east.client_config(), &topic, &SequenceSpec::new(2, 300)).expect("produce");
    produce_sequence(&west.client_config(), &topic, &from_west).expect("produce");

    let dir = tempfile::tempdir().unwrap();
    // Each flow's patterns also match the other flow's copies (`east_ring…`
    // on west): only cycle protection keeps them from coming back.
    let flow = |source: &str, target: &str| {
        format!(
            "[[flows]]\nsource = \"{source}\"\ntarget = \"{target}\"\ntopic_separator = \"_\"\n\
             topics = [\".*{topic}\"]\nrefresh_interval = \"1s\"\n"
        )
    };
    let flows = format!("{}{}", flow("src", "dst"), flow("dst", "src"));
    let topology = write_topology(dir.path(), east, west, &flows);
    rename_clusters(&topology, &[("src", "east"), ("dst", "west")]);
    let daemon = FERRY.start(&topology);
    let (east_copy, west_copy) = (format!("west_{topic}"), format!("east_{topic}"));
    wait_for("both copies", Duration::from_secs(60), || {
        (try_total(east, &east_copy).ok()? == 600 && try_total(west, &west_copy).ok()? == 600)
            .then_some(())
    });
    // A loop would show as `east_west_…`/`west_east_…` topics within a refresh
    // or two of the copies appearing.
    std::thread::sleep(Duration::from_secs(6));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_same(east, &topic, west, &west_copy, 600);
    assert_same(west, &topic, east, &east_copy, 600);
    for (name, cluster, copy) in [("east", east, &east_copy), ("west", west, &west_copy)] {
        let mine: std::collections::BTreeSet<String> =
            ferry_testkit::inspect::topic_partition_counts(&cluster.client_config())
                .expect("list topics")
                .into_keys()
                .filter(|t| t.contains(&topic))
                .collect();
        let expected = std::collections::BTreeSet::from([copy.clone(), topic.clone()]);
        assert_eq!(mine, expected, "{name}: no topic came back");
    }
}
