//! The HTTP server against a fake engine, over real loopback sockets.

mod util;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_http::{
    HttpError, HttpServer, MetricKind, Metrics, MetricsOptions, Readiness, ReloadResult,
    SyncResult, METRICS, METRICS_CONTENT_TYPE, VERSION,
};
use tokio_util::sync::CancellationToken;
use util::{samples, topic, value, FakeEngine, Running};

fn with_partitions() -> MetricsOptions {
    MetricsOptions {
        partition_lag: true,
        ..MetricsOptions::default()
    }
}

/// Makes every event family hold at least one series.
fn record_events(metrics: &Metrics) {
    let flow = metrics.flow("primary->backup");
    flow.checkpoint_emitted();
    flow.observe_latency(0.003);
    flow.observe_latency(2.0);
    metrics.group_offsets_synced("primary->backup", SyncResult::Synced, 4);
    metrics.error("primary->backup", "produce");
    metrics.config_reload(ReloadResult::Applied);
}

#[test]
fn scrape_exports_every_documented_family_with_its_type_and_labels() {
    let server = Running::start(with_partitions());
    record_events(&server.metrics);

    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some(METRICS_CONTENT_TYPE));
    let text = reply.body;

    for m in METRICS {
        assert!(
            text.contains(&format!("# TYPE {} {}\n", m.name, m.kind)),
            "{} missing or not a {}:\n{text}",
            m.name,
            m.kind
        );
        assert!(
            text.contains(&format!("# HELP {} {}\n", m.name, m.help)),
            "{} has no help text from METRICS",
            m.name
        );
    }

    // Nothing undocumented, and every sample carries exactly the documented
    // labels (plus `le` on histogram buckets).
    let documented: BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();
    let typed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(typed, documented);
    for sample in samples(&text) {
        let doc = METRICS
            .iter()
            .find(|m| {
                m.name == sample.name
                    || (m.kind == MetricKind::Histogram
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| sample.name == format!("{}{s}", m.name)))
            })
            .unwrap_or_else(|| panic!("undocumented series {}", sample.name));
        let mut names: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        names.retain(|n| !(sample.name.ends_with("_bucket") && *n == "le"));
        assert_eq!(names, doc.labels, "labels of {}", sample.name);
    }

    // Label values and numbers from the view.
    let orders = [("flow", "primary->backup"), ("topic", "orders")];
    assert_eq!(
        value(&text, "ferry_records_replicated_total", &orders),
        Some(10.0)
    );
    assert_eq!(
        value(&text, "ferry_bytes_replicated_total", &orders),
        Some(1000.0)
    );
    assert_eq!(
        value(&text, "ferry_replication_lag_records", &orders),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "ferry_replication_lag_seconds", &orders),
        Some(0.5)
    );
    let dr = [("flow", "backup->dr"), ("topic", "orders")];
    assert_eq!(value(&text, "ferry_task_restarts_total", &dr), Some(2.0));
    assert_eq!(
        value(
            &text,
            "ferry_records_skipped_total",
            &[
                ("flow", "backup->dr"),
                ("topic", "orders"),
                ("reason", "too_large")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "ferry_replication_lag_seconds", &dr),
        Some(12.25)
    );
    assert_eq!(
        value(
            &text,
            "ferry_replication_partition_lag_records",
            &[
                ("flow", "primary->backup"),
                ("topic", "orders"),
                ("partition", "1")
            ]
        ),
        Some(2.0)
    );
    let flow = [("flow", "primary->backup")];
    assert_eq!(
        value(&text, "ferry_checkpoints_emitted_total", &flow),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "ferry_replication_latency_seconds_count", &flow),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "ferry_replication_latency_seconds_bucket",
            &[("flow", "primary->backup"), ("le", "0.005")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ferry_group_offsets_synced_total",
            &[("flow", "primary->backup"), ("result", "synced")]
        ),
        Some(4.0)
    );
    // Announcing a flow creates its other results at 0, for increase().
    assert_eq!(
        value(
            &text,
            "ferry_group_offsets_synced_total",
            &[("flow", "primary->backup"), ("result", "failed")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "ferry_errors_total",
            &[("flow", "primary->backup"), ("kind", "produce")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ferry_config_reloads_total",
            &[("result", "applied")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "ferry_config_reloads_total",
            &[("result", "rejected")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "ferry_build_info", &[("version", VERSION)]),
        Some(1.0)
    );
    assert_eq!(value(&text, "ferry_ready", &[]), Some(1.0));
}

#[test]
fn scraped_values_follow_the_engine() {
    let server = Running::start(MetricsOptions::default());
    let orders = [("flow", "primary->backup"), ("topic", "orders")];
    let before = server.get("/metrics").body;
    assert_eq!(
        value(&before, "ferry_records_replicated_total", &orders),
        Some(10.0)
    );

    *server.engine.topics.lock().unwrap() = vec![
        topic("primary->backup", "orders", 15, 1_500, 0, 0.0, 1),
        topic("primary->backup", "new-topic", 1, 10, 4, 1.0, 0),
    ];
    server.metrics.config_reload(ReloadResult::Rejected);

    let after = server.get("/metrics").body;
    assert_eq!(
        value(&after, "ferry_records_replicated_total", &orders),
        Some(15.0)
    );
    assert_eq!(
        value(&after, "ferry_bytes_replicated_total", &orders),
        Some(1500.0)
    );
    assert_eq!(
        value(&after, "ferry_replication_lag_records", &orders),
        Some(0.0)
    );
    assert_eq!(
        value(&after, "ferry_task_restarts_total", &orders),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "ferry_replication_lag_records",
            &[("flow", "primary->backup"), ("topic", "new-topic")]
        ),
        Some(4.0)
    );
    // A topic the engine no longer reports is no longer exported.
    assert!(!after.contains("flow=\"backup->dr\""), "{after}");
    assert_eq!(
        value(
            &after,
            "ferry_config_reloads_total",
            &[("result", "rejected")]
        ),
        Some(1.0)
    );
}

#[test]
fn per_partition_lag_is_opt_in() {
    let server = Running::start(MetricsOptions::default());
    let text = server.get("/metrics").body;
    assert!(
        !text.contains("ferry_replication_partition_lag_records"),
        "{text}"
    );
    assert_eq!(server.engine.partition_calls.load(Ordering::SeqCst), 0);

    let capped = Running::start(MetricsOptions {
        partition_lag: true,
        partition_lag_limit: 1,
    });
    let text = capped.get("/metrics").body;
    let partitions = samples(&text)
        .into_iter()
        .filter(|s| s.name == "ferry_replication_partition_lag_records")
        .count();
    assert_eq!(partitions, 1, "the limit bounds the series:\n{text}");
}

#[test]
fn no_topics_yet_is_a_valid_scrape() {
    let server = Running::start(with_partitions());
    server.engine.topics.lock().unwrap().clear();
    server.engine.partitions.lock().unwrap().clear();
    let reply = server.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("ferry_build_info"));
    assert!(!reply.body.contains("ferry_records_replicated_total"));
}

#[test]
fn a_topic_reported_twice_is_exported_once() {
    let server = Running::start(MetricsOptions::default());
    server.engine.topics.lock().unwrap().push(topic(
        "primary->backup",
        "orders",
        99,
        99,
        99,
        99.0,
        99,
    ));
    let text = server.get("/metrics").body;
    let series = samples(&text)
        .into_iter()
        .filter(|s| {
            s.name == "ferry_records_replicated_total"
                && s.labels
                    .iter()
                    .any(|(k, v)| k == "flow" && v == "primary->backup")
                && s.labels.iter().any(|(k, v)| k == "topic" && v == "orders")
        })
        .count();
    assert_eq!(series, 1, "{text}");
}

#[test]
fn readiness_follows_the_engine_and_flips_to_503_for_good_on_draining() {
    let server = Running::start(MetricsOptions::default());
    let live = server.get("/health/live");
    assert_eq!((live.status, live.body.as_str()), (200, "ok"));

    let ready = server.get("/health/ready");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));

    server.engine.ready.store(false, Ordering::SeqCst);
    let not_ready = server.get("/health/ready");
    assert_eq!(not_ready.status, 503);
    assert!(
        not_ready.body.starts_with("not ready: "),
        "{}",
        not_ready.body
    );
    assert_eq!(
        value(&server.get("/metrics").body, "ferry_ready", &[]),
        Some(0.0)
    );

    server.engine.ready.store(true, Ordering::SeqCst);
    assert_eq!(server.get("/health/ready").status, 200);

    server.readiness.mark_draining();
    let draining = server.get("/health/ready");
    assert_eq!(
        (draining.status, draining.body.as_str()),
        (503, "not ready: draining")
    );
    assert_eq!(
        value(&server.get("/metrics").body, "ferry_ready", &[]),
        Some(0.0)
    );
    // Liveness is not readiness: a draining process is still alive.
    assert_eq!(server.get("/health/live").status, 200);
}

#[test]
fn status_is_the_engine_document_plus_ready_and_version() {
    let server = Running::start(MetricsOptions::default());
    let reply = server.get("/status");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(doc["flows"][0]["flow"], "primary->backup");
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["version"], VERSION);

    server.readiness.mark_draining();
    let doc: serde_json::Value = serde_json::from_str(&server.get("/status").body).unwrap();
    assert_eq!(doc["ready"], false);
}

#[test]
fn unknown_paths_are_404() {
    let server = Running::start(MetricsOptions::default());
    assert_eq!(server.get("/nope").status, 404);
}

#[test]
fn a_port_in_use_is_reported_at_bind_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let error = HttpServer::bind(
        addr,
        Arc::new(Metrics::default()),
        FakeEngine::new(),
        Readiness::new(),
    )
    .expect_err("the port is taken");
    assert!(matches!(error, HttpError::Bind { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("http.listen"), "{message}");
}

#[test]
fn cancel_stops_the_server_and_frees_the_port() {
    let mut server = Running::start(MetricsOptions::default());
    assert_eq!(server.get("/health/live").status, 200);
    let started = Instant::now();
    server.stop().expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        util::get(server.addr, "/health/live").is_err(),
        "still answering after stop"
    );
    // The port can be bound again straight away.
    std::net::TcpListener::bind(server.addr).expect("port released");
}

/// The reason the server has its own thread: when the data path saturates
/// the main runtime, `/metrics` and the probes must still answer.
#[test]
fn metrics_answer_while_the_main_runtime_is_blocked() {
    // The daemon's main runtime, shrunk to one worker so blocking it is easy.
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let engine = FakeEngine::new();
    let cancel = CancellationToken::new();
    // Started from inside the main runtime, as `ferry run` does.
    let (addr, handle) = main.block_on({
        let engine = engine.clone();
        let cancel = cancel.clone();
        async move {
            let server = HttpServer::bind(
                "127.0.0.1:0".parse().unwrap(),
                Arc::new(Metrics::default()),
                engine,
                Readiness::new(),
            )
            .unwrap();
            let addr = server.local_addr();
            (addr, server.serve(cancel).unwrap())
        }
    });

    // Occupy the only worker with a blocking call, as a misbehaving data
    // path would.
    let blocking = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    main.spawn({
        let blocking = blocking.clone();
        async move {
            blocking.store(true, Ordering::SeqCst);
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_secs(2));
            blocking.store(false, Ordering::SeqCst);
        }
    });
    started_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the blocking task started");
    // Proof the runtime is stuck: this task cannot run until the sleep ends.
    let probe_ran = Arc::new(AtomicBool::new(false));
    main.spawn({
        let probe_ran = probe_ran.clone();
        async move { probe_ran.store(true, Ordering::SeqCst) }
    });

    let asked = Instant::now();
    let metrics = util::get(addr, "/metrics").expect("/metrics answers");
    let ready = util::get(addr, "/health/ready").expect("/health/ready answers");
    let took = asked.elapsed();

    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("ferry_records_replicated_total"));
    assert_eq!(ready.status, 200);
    assert!(took < Duration::from_secs(1), "answers took {took:?}");
    assert!(
        blocking.load(Ordering::SeqCst),
        "the main runtime was blocked throughout"
    );
    assert!(
        !probe_ran.load(Ordering::SeqCst),
        "the main runtime was blocked throughout"
    );

    cancel.cancel();
    handle.join().unwrap().unwrap();
}
