//! The daemon's control endpoint and `/status` behind `http.control_token`,
//! against real Apache Kafka with the real binary: anonymous and wrong
//! tokens are refused, the right token stops a topic for real, no token
//! configured disables control, and `ferry status` sends the token.

mod common;

use std::time::Duration;

use common::*;
use ferry_testkit::check::{assert_same, total, try_total};
use ferry_testkit::daemon::{signal, stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::scrape::{cut_over_topics, replicated_topics};
use ferry_testkit::topology::{lock_http, one_flow, pointing_at, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

const TOKEN: &str = "ctl-token-4f1d9a";

fn stop_request(topic: &str) -> String {
    format!("{{\"flow\":\"src->dst\",\"topics\":[\"{topic}\"]}}")
}

/// Produces `count` more records to partition 0 of `topic`, numbered from
/// `first`.
fn produce(source: &KafkaCluster, topic: &str, first: u64, count: u64) {
    let mut spec = SequenceSpec::new(1, count);
    spec.first_seq = first;
    produce_sequence(&source.client_config(), topic, &spec).expect("produce");
}

fn copied(target: &KafkaCluster, topic: &str, expected: i64) {
    let remote = format!("src.{topic}");
    wait_for(
        &format!("{expected} records on {remote}"),
        Duration::from_secs(60),
        || (try_total(target, &remote).ok()? == expected).then_some(()),
    );
}

/// A new one-partition topic with 20 records, and a topology in a new
/// folder replicating it (`/status` public, no control token).
fn one_topic_with_records(
    source: &KafkaCluster,
    target: &KafkaCluster,
    prefix: &str,
) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let topic = unique_name(prefix);
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    produce(source, &topic, 0, 20);
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    (topic, dir, topology)
}

#[test]
fn control_and_status_need_the_token_and_the_token_stops_a_topic() {
    let (source, target) = shared_pair().expect("test brokers start");
    let stopped = unique_name("ctl-stopped");
    let kept = unique_name("ctl-kept");
    for topic in [&stopped, &kept] {
        data::create_topic(&source.client_config(), topic, 1, 1, &[]).expect("create");
        produce(source, topic, 0, 50);
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{stopped}\", \"{kept}\"]")),
    );
    lock_http(&topology, TOKEN);
    let daemon = FERRY.start(&topology);
    copied(target, &stopped, 50);
    copied(target, &kept, 50);
    let addr = daemon.http_addr();

    // Prometheus and kubelets need no token.
    assert_eq!(daemon.get("/metrics").0, 200);
    assert_eq!(daemon.get("/health/live").0, 200);
    wait_for("ready", Duration::from_secs(30), || {
        (daemon.get("/health/ready").0 == 200).then_some(())
    });

    // /status is not public: no token or a wrong one is 401.
    let (code, body) = daemon.get("/status");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("http.status_public"), "{body}");
    let wrong = Some("ctl-token-4f1d9b");
    assert_eq!(http_request(addr, "GET", "/status", wrong, None).0, 401);
    let (code, status) = http_request(addr, "GET", "/status", Some(TOKEN), None);
    assert_eq!(code, 200, "{status}");
    assert!(status.contains(&format!("\"{stopped}\"")), "{status}");

    // `ferry status` reads the token from the topology file.
    let with_port = pointing_at(&topology, addr);
    let (code, table, stderr) = FERRY.output(&["status", "-c", with_port.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{table}\n{stderr}");
    assert!(table.contains(&stopped) && table.contains(&kept), "{table}");

    // Anonymous and wrong-token stop requests are refused, and change
    // nothing: the topic keeps replicating.
    let body = stop_request(&stopped);
    let (code, answer) = http_request(addr, "POST", "/control/stop-topics", None, Some(&body));
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = http_request(addr, "POST", "/control/stop-topics", wrong, Some(&body));
    assert_eq!(code, 401, "{answer}");
    produce(source, &stopped, 50, 10);
    copied(target, &stopped, 60);

    // With the token the request is honoured.
    let (code, answer) = http_request(
        addr,
        "POST",
        "/control/stop-topics",
        Some(TOKEN),
        Some(&body),
    );
    assert_eq!(code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
    assert_eq!(answer["stopped"], serde_json::json!([stopped]), "{answer}");
    // New records on both topics: the kept topic's arrive, which shows the
    // daemon is copying; the stopped topic's never do.
    produce(source, &stopped, 60, 10);
    produce(source, &kept, 50, 10);
    copied(target, &kept, 60);
    assert_eq!(total(target, &format!("src.{stopped}")), 60);
    let (_, status) = http_request(addr, "GET", "/status", Some(TOKEN), None);
    assert!(!replicated_topics(&status).contains(&stopped), "{status}");
    assert!(replicated_topics(&status).contains(&kept), "{status}");

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("control request refused: missing or wrong bearer token"),
        "{log}"
    );
}

#[test]
fn without_a_token_the_control_endpoint_is_disabled() {
    let (source, target) = shared_pair().expect("test brokers start");
    // No control_token; /status public as in every other suite.
    let (topic, _dir, topology) = one_topic_with_records(source, target, "ctl-disabled");
    let daemon = FERRY.start(&topology);
    copied(target, &topic, 20);
    let addr = daemon.http_addr();
    let body = stop_request(&topic);
    for token in [None, Some(TOKEN)] {
        let (code, answer) = http_request(addr, "POST", "/control/stop-topics", token, Some(&body));
        assert_eq!(code, 404, "{answer}");
        assert!(answer.contains("http.control_token"), "{answer}");
    }
    // Nothing stopped.
    produce(source, &topic, 20, 5);
    copied(target, &topic, 25);
    let (code, status) = daemon.get("/status");
    assert_eq!(code, 200, "{status}");
    assert!(status.contains(&format!("\"{topic}\"")), "{status}");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

/// A distinctive control token never shows up: not in `ferry check`, the
/// daemon's log (at debug level, through refused requests and a rejected
/// reload that changes it), `/status`, `/metrics` or any answer.
#[test]
fn the_control_token_appears_in_no_output() {
    let sentinel = "ctl-s3ntinel-Zq81x7";
    let (source, target) = shared_pair().expect("test brokers start");
    let (topic, _dir, topology) = one_topic_with_records(source, target, "ctl-sentinel");
    lock_http(&topology, sentinel);
    let text = std::fs::read_to_string(&topology)
        .unwrap()
        .replace("level = \"info\"", "level = \"debug\"");
    std::fs::write(&topology, text).unwrap();
    let path = topology.to_str().unwrap();

    let mut outputs = Vec::new();
    for args in [
        vec!["check", "-c", path],
        vec!["check", "-c", path, "--connect"],
    ] {
        let (code, stdout, stderr) = FERRY.output(&args);
        assert_eq!(code, Some(0), "{args:?}: {stdout}\n{stderr}");
        outputs.push((format!("ferry {args:?}"), format!("{stdout}{stderr}")));
    }

    let daemon = FERRY.start(&topology);
    copied(target, &topic, 20);
    let addr = daemon.http_addr();
    for (token, method, path, body) in [
        (Some(sentinel), "GET", "/status", None),
        (None, "GET", "/status", None),
        (None, "GET", "/metrics", None),
        (
            Some("wrong"),
            "POST",
            "/control/stop-topics",
            Some(stop_request(&topic)),
        ),
        (
            Some(sentinel),
            "POST",
            "/control/stop-topics",
            Some("{\"flow\":\"nowhere->dst\",\"topics\":[\"x\"]}".to_string()),
        ),
    ] {
        let (code, answer) = http_request(addr, method, path, token, body.as_deref());
        outputs.push((format!("{method} {path} -> {code}"), answer));
    }
    assert!(
        outputs.iter().any(|(what, _)| what == "GET /status -> 200"),
        "{outputs:?}"
    );
    assert!(
        outputs.iter().any(|(what, _)| what.ends_with("-> 409")),
        "{outputs:?}"
    );
    // A reload that changes the token is rejected without naming either.
    std::fs::write(
        topology.with_file_name("control-token"),
        "ctl-s3ntinel-rotated",
    )
    .unwrap();
    signal(daemon.child(), libc::SIGHUP);
    wait_for("the rejected reload", Duration::from_secs(30), || {
        daemon
            .log()
            .contains("http.control_token: the control token cannot change")
            .then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    outputs.push(("the daemon's log".to_string(), log));
    for (what, text) in &outputs {
        assert!(
            !text.contains(sentinel),
            "{what} shows the control token:\n{text}"
        );
        assert!(!text.contains("ctl-s3ntinel-rotated"), "{what}:\n{text}");
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, as `name.crt` and
/// `name.key` in `dir`.
fn self_signed(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("generate a certificate");
    let cert = dir.join(format!("{name}.crt"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        made.key_pair.serialize_pem(),
    )
    .unwrap();
    cert
}

#[test]
fn https_listener_serves_curl_and_ferry_status_and_a_sighup_installs_a_renewed_certificate() {
    let (source, target) = shared_pair().expect("test brokers start");
    let (topic, dir, topology) = one_topic_with_records(source, target, "https");
    let first = self_signed(dir.path(), "first");
    std::fs::copy(&first, dir.path().join("tls.crt")).unwrap();
    std::fs::copy(dir.path().join("first.key"), dir.path().join("tls.key")).unwrap();
    let text = std::fs::read_to_string(&topology).unwrap().replacen(
        "[http]\n",
        "[http]\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n",
        1,
    );
    std::fs::write(&topology, text).unwrap();
    lock_http(&topology, TOKEN);

    // A key that does not belong to the certificate is bad input.
    let mismatched = dir.path().join("mismatched.toml");
    let other = self_signed(dir.path(), "other");
    std::fs::write(
        &mismatched,
        std::fs::read_to_string(&topology)
            .unwrap()
            .replace("tls.crt", other.file_name().unwrap().to_str().unwrap()),
    )
    .unwrap();
    let (code, _, stderr) = FERRY.output(&["check", "-c", mismatched.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("http.tls_key: the key in"), "{stderr}");

    let daemon = FERRY.start(&topology);
    copied(target, &topic, 20);
    let url = format!("https://{}/metrics", daemon.http_addr());
    let curl = |cert: &std::path::Path| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(cert)
            .arg(&url)
            .output()
            .expect("curl runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, body) = curl(&first);
    assert_eq!(code, Some(0));
    assert!(body.contains("ferry_build_info"), "{body}");
    // `ferry status` speaks HTTPS too, trusting the topology's certificate
    // (the same file, with the port the daemon bound).
    let with_port = pointing_at(&topology, daemon.http_addr());
    let status = || FERRY.output(&["status", "-c", with_port.to_str().unwrap()]);
    let (code, stdout, stderr) = status();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&topic), "{stdout}");

    // Renew: new files in place, then SIGHUP.
    let second = self_signed(dir.path(), "second");
    std::fs::copy(&second, dir.path().join("tls.crt")).unwrap();
    std::fs::copy(dir.path().join("second.key"), dir.path().join("tls.key")).unwrap();
    signal(daemon.child(), libc::SIGHUP);
    wait_for(
        "the renewed certificate served",
        Duration::from_secs(30),
        || (curl(&second).0 == Some(0)).then_some(()),
    );
    assert_eq!(curl(&first).0, Some(60), "the old certificate is gone");
    let (code, stdout, stderr) = status();
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("HTTPS certificate reloaded"), "{log}");
    let key = std::fs::read_to_string(dir.path().join("second.key")).unwrap();
    assert!(
        !log.contains(key.lines().nth(1).unwrap()),
        "no key material in the log"
    );
}

/// A stop is persisted on the target: a restarted daemon keeps the topic
/// stopped while its other topics copy, `ferry status` lists it, bad
/// `resume-topics` input exits 2, and `resume-topics` makes the running
/// daemon copy it again from its saved progress, nothing lost or doubled.
#[test]
fn a_stop_survives_a_restart_until_resume_topics() {
    let (source, target) = shared_pair().expect("test brokers start");
    let stopped = unique_name("ctl-persist-stopped");
    let kept = unique_name("ctl-persist-kept");
    for topic in [&stopped, &kept] {
        data::create_topic(&source.client_config(), topic, 1, 1, &[]).expect("create");
        produce(source, topic, 0, 30);
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{stopped}\", \"{kept}\"]")),
    );
    lock_http(&topology, TOKEN);
    let daemon = FERRY.start(&topology);
    copied(target, &stopped, 30);
    copied(target, &kept, 30);
    let (code, answer) = http_request(
        daemon.http_addr(),
        "POST",
        "/control/stop-topics",
        Some(TOKEN),
        Some(&stop_request(&stopped)),
    );
    assert_eq!(code, 200, "{answer}");
    produce(source, &stopped, 30, 10);
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // A new process: the stopped topic stays stopped, the other copies.
    let daemon = FERRY.start(&topology);
    produce(source, &stopped, 40, 10);
    produce(source, &kept, 30, 10);
    copied(target, &kept, 40);
    let addr = daemon.http_addr();
    wait_for("the flow running", Duration::from_secs(30), || {
        let (_, status) = http_request(addr, "GET", "/status", Some(TOKEN), None);
        replicated_topics(&status).contains(&kept).then_some(())
    });
    // Give a wrongly resumed topic the time the kept one needed, and more.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        total(target, &format!("src.{stopped}")),
        30,
        "a cut-over topic was copied after a restart:\n{}",
        daemon.log()
    );
    let (code, status) = http_request(addr, "GET", "/status", Some(TOKEN), None);
    assert_eq!(code, 200, "{status}");
    // Other tests share the clusters and the flow's name: theirs may be
    // listed too.
    assert!(cut_over_topics(&status).contains(&stopped), "{status}");
    assert!(!replicated_topics(&status).contains(&stopped), "{status}");

    let with_port = pointing_at(&topology, addr);
    let config = with_port.to_str().unwrap();
    let (code, table, stderr) = FERRY.output(&["status", "-c", config]);
    assert_eq!(code, Some(0), "{table}\n{stderr}");
    assert!(
        table.contains(&format!("cut over: {stopped}")),
        "`ferry status` lists the cut-over topic:\n{table}"
    );

    // Bad input names the value and changes nothing.
    for (args, named) in [
        (["--flow", "src->nowhere", "--topics", ".*"], "src->nowhere"),
        (
            ["--flow", "src->dst", "--topics", "no-such-topic.*"],
            "no-such-topic.*",
        ),
    ] {
        let mut all = vec!["resume-topics", "-c", config];
        all.extend(args);
        let (code, stdout, stderr) = FERRY.output(&all);
        assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(named), "{args:?} names {named}: {stderr}");
    }
    assert_eq!(total(target, &format!("src.{stopped}")), 30);

    // Undo: the daemon copies the topic again from its saved progress.
    let (code, stdout, stderr) = FERRY.output(&[
        "resume-topics",
        "-c",
        config,
        "--flow",
        "src->dst",
        "--topics",
        &stopped,
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}\n{}", daemon.log());
    assert!(
        stdout.contains(&format!("the daemon at {addr}")),
        "{stdout}"
    );
    copied(target, &stopped, 50);
    assert_same(source, &stopped, target, &format!("src.{stopped}"), 50);
    assert_same(source, &kept, target, &format!("src.{kept}"), 40);
    let (_, status) = http_request(addr, "GET", "/status", Some(TOKEN), None);
    assert!(!cut_over_topics(&status).contains(&stopped), "{status}");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // Undone for good: the next start copies it too.
    let daemon = FERRY.start(&topology);
    produce(source, &stopped, 50, 5);
    copied(target, &stopped, 55);
    assert_same(source, &stopped, target, &format!("src.{stopped}"), 55);
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}
