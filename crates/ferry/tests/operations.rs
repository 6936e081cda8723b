//! Operating the daemon: metrics during replication, readiness, SIGHUP
//! reload, and no secret in any output. Against Apache Kafka, running the
//! real binary.

mod common;

use std::time::Duration;

use common::*;
use ferry_testkit::check::{assert_same, total, try_total};
use ferry_testkit::daemon::{signal, stop_daemon, stop_daemon_after_signal, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::scrape::metric;
use ferry_testkit::shared_pair;
use ferry_testkit::topology::{one_flow, pointing_at, write_topology};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

#[test]
fn metrics_count_every_record_and_lag_returns_to_zero() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("metrics");
    data::create_topic(&source.client_config(), &topic, 3, 1, &[]).expect("create");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        // A narrow window over large records keeps the copy behind the
        // producer for several lag refreshes (one a second).
        &one_flow(&format!(
            "topics = [\"{topic}\"]\nmax_in_flight_bytes = 16384"
        )),
    );
    let daemon = FERRY.start(&topology);
    let records = format!("ferry_records_replicated_total{{flow=\"src->dst\",topic=\"{topic}\"}}");
    let lag = format!("ferry_replication_lag_records{{flow=\"src->dst\",topic=\"{topic}\"}}");
    // The topic's series appear once its task runs.
    wait_for("the topic's series", Duration::from_secs(30), || {
        metric(&daemon.get("/metrics").1, &records)
    });

    let producer = {
        let (config, topic) = (source.client_config(), topic.clone());
        std::thread::spawn(move || {
            let mut spec = SequenceSpec::new(3, 2_000);
            spec.value_padding = 4_096;
            produce_sequence(&config, &topic, &spec).expect("produce");
        })
    };
    let mut saw_lag = false;
    wait_for(
        "lag above 0, then every record counted and lag back to 0",
        Duration::from_secs(60),
        || {
            let (code, body) = daemon.get("/metrics");
            assert_eq!(code, 200);
            let lag_now = metric(&body, &lag)?;
            saw_lag |= lag_now > 0.0;
            // Zero counts only after the gauge has shown the copy behind:
            // a gauge stuck at 0 never gets here.
            (saw_lag && metric(&body, &records)? == 6_000.0 && lag_now == 0.0).then_some(())
        },
    );
    producer.join().expect("producer");
    let (_, body) = daemon.get("/metrics");
    assert!(
        metric(
            &body,
            &format!("ferry_bytes_replicated_total{{flow=\"src->dst\",topic=\"{topic}\"}}")
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(metric(&body, "ferry_ready"), Some(1.0));
    // `ferry status` shows the same as a table, read from the daemon.
    let with_port = pointing_at(&topology, daemon.http_addr());
    let out = FERRY
        .command(&["status", "-c", with_port.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains("flow src->dst  state running"), "{table}");
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with(&topic))
        .expect("topic row");
    assert!(
        row.contains(&format!("src.{topic}")) && row.contains("6000"),
        "{row}"
    );
    assert!(body.contains("ferry_build_info{version="), "{body}");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // No daemon any more: a clear failure, exit 1.
    let out = FERRY
        .command(&["status", "-c", with_port.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /status"));
}

#[test]
fn ready_only_between_start_and_drain() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("ready");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");

    // A flow that cannot run (its source is unreachable) keeps the daemon
    // not ready, while it stays alive.
    let dir = tempfile::tempdir().unwrap();
    let unreachable = dir.path().join("unreachable.toml");
    std::fs::write(
        &unreachable,
        format!(
            "[clusters.src]\nbootstrap_servers = \"127.0.0.1:1\"\n[clusters.dst]\nbootstrap_servers = \"{}\"\n\
             [[flows]]\nsource = \"src\"\ntarget = \"dst\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
            target.bootstrap_servers()
        ),
    )
    .unwrap();
    let stuck = FERRY.start(&unreachable);
    for _ in 0..5 {
        assert_eq!(
            stuck.get("/health/ready").0,
            503,
            "not ready before its flow runs"
        );
        assert_eq!(stuck.get("/health/live").0, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (code, log) = stop_daemon(stuck);
    assert_eq!(code, Some(0), "{log}");

    // A healthy flow becomes ready, and turns not ready as soon as the
    // drain starts (the server keeps answering until the process exits).
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    let daemon = FERRY.start(&topology);
    wait_for("ready", Duration::from_secs(30), || {
        (daemon.get("/health/ready").0 == 200).then_some(())
    });
    let addr = daemon.http_addr();
    signal(daemon.child(), libc::SIGTERM);
    let mut saw_not_ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            break; // Exited.
        }
        if http_get(addr, "/health/ready").0 == 503 {
            saw_not_ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, log) = stop_daemon_after_signal(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(saw_not_ready, "readiness must turn 503 while draining");
}

#[test]
fn reload_adds_and_removes_topics_without_disturbing_the_others() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("reload");
    let (steady, added, removed) = (
        format!("{prefix}-steady"),
        format!("{prefix}-added"),
        format!("{prefix}-removed"),
    );
    for t in [&steady, &added, &removed] {
        data::create_topic(&source.client_config(), t, 2, 1, &[]).expect("create");
    }
    let dir = tempfile::tempdir().unwrap();
    let flow = |topics: &str| one_flow(&format!("topics = [{topics}]"));
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &flow(&format!("\"{steady}\", \"{removed}\"")),
    );
    let daemon = FERRY.start(&topology);

    // Steady traffic on the untouched topic across both reloads.
    let producer = {
        let (config, topic) = (source.client_config(), steady.clone());
        std::thread::spawn(move || {
            for batch in 0..20u64 {
                let mut spec = SequenceSpec::new(2, 250);
                spec.first_seq = batch * 250;
                produce_sequence(&config, &topic, &spec).expect("produce");
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    produce_sequence(
        &source.client_config(),
        &removed,
        &SequenceSpec::new(2, 300),
    )
    .expect("produce");
    produce_sequence(&source.client_config(), &added, &SequenceSpec::new(2, 200)).expect("produce");
    wait_for(
        "the removed-to-be topic copied",
        Duration::from_secs(60),
        || (try_total(target, &format!("src.{removed}")).ok()? == 600).then_some(()),
    );

    // Reload: add one topic, drop another.
    write_topology(
        dir.path(),
        source,
        target,
        &flow(&format!("\"{steady}\", \"{added}\"")),
    );
    signal(daemon.child(), libc::SIGHUP);
    wait_for("the added topic copied", Duration::from_secs(60), || {
        (try_total(target, &format!("src.{added}")).ok()? == 400).then_some(())
    });
    // Records written to the removed topic now stay on the source.
    let mut more = SequenceSpec::new(2, 50);
    more.first_seq = 300;
    produce_sequence(&source.client_config(), &removed, &more).expect("produce");

    // An invalid file: the running topology stays, the rejection is counted.
    std::fs::write(&topology, "this is not = = toml").unwrap();
    signal(daemon.child(), libc::SIGHUP);
    wait_for("the rejection counted", Duration::from_secs(30), || {
        (metric(
            &daemon.get("/metrics").1,
            "ferry_config_reloads_total{result=\"rejected\"}",
        )? == 1.0)
            .then_some(())
    });
    assert_eq!(
        metric(
            &daemon.get("/metrics").1,
            "ferry_config_reloads_total{result=\"applied\"}"
        ),
        Some(1.0)
    );

    producer.join().expect("producer");
    wait_for(
        "the steady topic caught up",
        Duration::from_secs(60),
        || (try_total(target, &format!("src.{steady}")).ok()? == 10_000).then_some(()),
    );
    // Records written to a replicated topic after those of the removed one,
    // and copied: the flow has fetched since, and left the removed one alone.
    let mut marker = SequenceSpec::new(2, 10);
    marker.first_seq = 200;
    produce_sequence(&source.client_config(), &added, &marker).expect("produce");
    wait_for(
        "the marker on the added topic",
        Duration::from_secs(60),
        || (try_total(target, &format!("src.{added}")).ok()? == 420).then_some(()),
    );
    assert_eq!(
        total(target, &format!("src.{removed}")),
        600,
        "removed topic stopped"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("reload rejected"), "rejection logged:\n{log}");
    // No gap and no duplicate on the untouched topic across the reloads.
    assert_same(source, &steady, target, &format!("src.{steady}"), 10_000);
}

#[test]
fn no_secret_reaches_status_metrics_or_logs() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("secrets");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(1, 100)).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let sentinel = "s3ntinel-pa55word-7a1c";
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, sentinel).unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(
        &topology,
        format!(
            r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.src.client]
"sasl.username" = "ferry"
"sasl.password" = "${{file:{}}}"
"ssl.key.password" = "{sentinel}"
[clusters.dst]
bootstrap_servers = "{}"
[[flows]]
source = "src"
target = "dst"
topics = ["{topic}"]
[http]
listen = "127.0.0.1:0"
status_public = true
[log]
level = "debug"
"#,
            source.bootstrap_servers(),
            pw_file.display(),
            target.bootstrap_servers()
        ),
    )
    .unwrap();
    ferry_testkit::topology::give_own_group(&topology);
    let daemon = FERRY.start(&topology);
    wait_for("the copy", Duration::from_secs(60), || {
        (try_total(target, &format!("src.{topic}")).ok()? == 100).then_some(())
    });
    let status = daemon.get("/status").1;
    let metrics = daemon.get("/metrics").1;
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let status_json: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    assert!(
        status_json["flows"][0]["topics"][0]["topic"] == topic.as_str(),
        "{status}"
    );
    for (what, text) in [("/status", &status), ("/metrics", &metrics), ("log", &log)] {
        assert!(!text.contains(sentinel), "{what} contains the secret");
    }
}

/// The per-partition lag samples of `topic` in a scrape: partition -> lag.
fn partition_lag(body: &str, topic: &str) -> std::collections::BTreeMap<i32, f64> {
    body.lines()
        .filter(|l| l.starts_with("ferry_replication_partition_lag_records{"))
        .filter(|l| l.contains(&format!("topic=\"{topic}\"")))
        .filter_map(|l| {
            let partition = l
                .split("partition=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()?;
            Some((partition, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn partition_metrics_appear_only_when_switched_on() {
    let (source, target) = shared_pair().expect("test brokers start");
    let dir = tempfile::tempdir().unwrap();
    // Two daemons side by side, each on its own topic: one with the key on,
    // one with the default.
    let mut runs = Vec::new();
    for (name, extra) in [("on", "partition_metrics = true\n"), ("off", "")] {
        let topic = unique_name(&format!("partition-metrics-{name}"));
        data::create_topic(&source.client_config(), &topic, 3, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(3, 100))
            .expect("produce");
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let topology = write_topology(
            &sub,
            source,
            target,
            &one_flow(&format!("topics = [\"{topic}\"]")),
        );
        let text = std::fs::read_to_string(&topology)
            .unwrap()
            .replace("[http]\n", &format!("[http]\n{extra}"));
        std::fs::write(&topology, text).unwrap();
        runs.push((topic, FERRY.start(&topology)));
    }
    for (topic, daemon) in &runs {
        let records =
            format!("ferry_records_replicated_total{{flow=\"src->dst\",topic=\"{topic}\"}}");
        wait_for(&format!("{topic} copied"), Duration::from_secs(60), || {
            (metric(&daemon.get("/metrics").1, &records)? == 300.0).then_some(())
        });
    }
    let (on_topic, on) = &runs[0];
    let per_partition = wait_for("per-partition lag at 0", Duration::from_secs(30), || {
        let lag = partition_lag(&on.get("/metrics").1, on_topic);
        (lag.len() == 3 && lag.values().all(|l| *l == 0.0)).then_some(lag)
    });
    assert_eq!(per_partition.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let (_, off) = &runs[1];
    let body = off.get("/metrics").1;
    assert!(
        !body.contains("ferry_replication_partition_lag_records"),
        "off by default:\n{body}"
    );
    for (_, daemon) in runs {
        let (code, log) = stop_daemon(daemon);
        assert_eq!(code, Some(0), "{log}");
    }
}

#[test]
fn a_changed_slot_count_is_refused_at_start_until_reslotting_is_acknowledged() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("reslot");
    data::create_topic(&source.client_config(), &topic, 4, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(4, 100)).expect("produce");
    // Cluster names of its own: the slots topic is named after them, and
    // the other suites' flows keep the default slot count.
    let alias = unique_name("rs").replace('-', "_");
    let (from, to) = (format!("{alias}_a"), format!("{alias}_b"));
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("reslot.toml");
    let write = |slots: u16| {
        std::fs::write(
            &topology,
            format!(
                "[clusters.{from}]\nbootstrap_servers = \"{}\"\n[clusters.{to}]\nbootstrap_servers = \"{}\"\n\
                 [[flows]]\nsource = \"{from}\"\ntarget = \"{to}\"\ntopics = [\"{topic}\"]\nslots = {slots}\n\
                 refresh_interval = \"2s\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
                source.bootstrap_servers(),
                target.bootstrap_servers()
            ),
        )
        .unwrap();
        ferry_testkit::topology::give_own_group(&topology);
    };
    write(4);
    FERRY.run_until_caught_up(&topology);
    let slots_topic = format!("ferry-slots.{from}-{to}");
    assert_eq!(
        data::end_offsets(&target.client_config(), &slots_topic)
            .unwrap()
            .len(),
        4
    );

    let mut more = SequenceSpec::new(4, 100);
    more.first_seq = 100;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");
    write(8);
    let config = topology.to_str().unwrap();
    let (code, stdout, stderr) = FERRY.output(&["run", "-c", config, "--until", "caught-up"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("flows[0].slots")
            && stderr.contains("has 4 partitions but the flow has 8 slots")
            && stderr.contains("--allow-reslot"),
        "{stderr}"
    );
    let remote = format!("{from}.{topic}");
    assert_eq!(total(target, &remote), 400, "nothing ran after the refusal");

    let (code, stdout, stderr) = FERRY.output(&[
        "run",
        "-c",
        config,
        "--until",
        "caught-up",
        "--allow-reslot",
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        data::end_offsets(&target.client_config(), &slots_topic)
            .unwrap()
            .len(),
        8
    );
    // Resumed from the progress saved under 4 slots: nothing copied twice.
    assert_same(source, &topic, target, &remote, 800);
    // The new count is the flow's count from now on.
    FERRY.run_until_caught_up(&topology);
}

/// `check --connect` proves that the target of an exactly-once flow
/// supports transactions: it sends InitProducerId with a transactional id
/// of its own, which no slot uses. An at-least-once flow is not probed.
#[test]
fn check_connect_proves_the_target_of_an_exactly_once_flow_supports_transactions() {
    let (source, target) = shared_pair().expect("test brokers start");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow("topics = [\"eos-check\"]\ndelivery = \"exactly-once\""),
    );
    let (code, stdout, stderr) =
        FERRY.output(&["check", "-c", topology.to_str().unwrap(), "--connect"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("delivery exactly-once (transaction_interval 100ms)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("transactions: cluster dst supports them (flow src->dst, exactly-once)"),
        "{stdout}"
    );

    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow("topics = [\"eos-check\"]"),
    );
    let (code, stdout, stderr) =
        FERRY.output(&["check", "-c", topology.to_str().unwrap(), "--connect"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("delivery at-least-once"), "{stdout}");
    assert!(!stdout.contains("transactions:"), "{stdout}");
}

/// A target whose transaction coordinator cannot work (its transaction log
/// wants three replicas; the cluster has one broker) fails the check with
/// exit code 1, naming the cluster, the flow and the broker's answer,
/// within `--timeout`.
#[test]
fn check_connect_fails_when_the_target_cannot_run_transactions() {
    let source = ferry_testkit::shared().expect("test broker starts");
    let target = ferry_testkit::KafkaOptions::new()
        .broker_config("transaction.state.log.replication.factor", "3")
        .start()
        .expect("target starts");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        &target,
        &one_flow("topics = [\"eos-check\"]\ndelivery = \"exactly-once\""),
    );
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = FERRY.output(&[
        "check",
        "-c",
        topology.to_str().unwrap(),
        "--connect",
        "--timeout",
        "3s",
    ]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("connected: cluster dst"), "{stdout}");
    assert!(!stdout.contains("transactions:"), "{stdout}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: cluster dst: transactions unusable for flow src->dst (exactly-once, transactional id "))
        .unwrap_or_else(|| panic!("no transactions error: {stderr}"));
    assert!(
        error.contains("no producer id within 3s; last answer: Failed to find transaction coordinator: COORDINATOR_NOT_AVAILABLE"),
        "{error}"
    );
    assert!(
        error.contains(".src-dst.check)"),
        "the probe's own transactional id, never a slot's: {error}"
    );
    // The metadata probe and the transactions probe each wait at most
    // --timeout, plus the client's start and stop.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}
