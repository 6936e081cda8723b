//! Helpers shared by the end-to-end suites: topologies for the shared test
//! clusters, running the real `ferry` binary, waiting, comparing.

#![allow(dead_code)] // Each suite uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::data::{compare_partitions, CompareReport};
use ferry_testkit::KafkaCluster;

/// Writes a topology with clusters `src` and `dst` and the given flows
/// (TOML `[[flows]]` tables) to `dir/topology.toml`.
pub fn write_topology(
    dir: &Path,
    source: &KafkaCluster,
    target: &KafkaCluster,
    flows: &str,
) -> PathBuf {
    let path = dir.join("topology.toml");
    let text = format!(
        r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"

{flows}

[http]
listen = "127.0.0.1:0"   # tests run daemons side by side
status_public = true     # lock_http() replaces this line with a control token

[log]
level = "info"
"#,
        source.bootstrap_servers(),
        target.bootstrap_servers()
    );
    std::fs::write(&path, text).expect("write topology");
    path
}

/// Gives a topology written by `write_topology` a control token, read from
/// the file `control-token` next to it, and makes `/status` need it too.
pub fn lock_http(topology: &Path, token: &str) {
    let token_file = topology.with_file_name("control-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write the token file");
    // 0600 like a real secret file, so the load warns about nothing.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(topology).expect("read topology");
    assert!(text.contains("status_public = true"), "{text}");
    let text = text.replacen(
        "status_public = true",
        "control_token = \"${file:control-token}\"",
        1,
    );
    std::fs::write(topology, text).expect("write topology");
}

/// The topology at `topology` with `http.listen` set to the running
/// daemon's address, so commands find it (`ferry status`, `resume-topics`).
pub fn pointing_at(topology: &std::path::Path, addr: std::net::SocketAddr) -> std::path::PathBuf {
    let with_port = topology.with_file_name("with-port.toml");
    let text = std::fs::read_to_string(topology)
        .unwrap()
        .replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&with_port, text).unwrap();
    with_port
}

/// One `src -> dst` flow with a fast refresh, plus `extra` keys.
pub fn one_flow(extra: &str) -> String {
    format!("[[flows]]\nsource = \"src\"\ntarget = \"dst\"\nrefresh_interval = \"2s\"\n{extra}\n")
}

pub fn ferry(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A running `ferry run` daemon whose log goes to a file; if the test
/// fails while it runs, the log is printed so the failure explains itself.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn child(&self) -> &Child {
        self.child.as_ref().expect("daemon running")
    }

    /// The address the daemon's HTTP server bound (from its start-up line).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        wait_for("the daemon's HTTP address", Duration::from_secs(30), || {
            self.log().lines().find_map(|l| {
                let rest = &l[l.find(" http=")? + 6..];
                rest.split_whitespace().next()?.parse().ok()
            })
        })
    }

    /// GET `path` from the daemon: (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http_addr(), path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- ferry log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}

/// Starts the daemon, tied to this test process; its log goes next to the
/// topology file.
pub fn start_daemon(topology: &Path) -> Daemon {
    let log = topology.with_extension(format!("{}.log", std::process::id() ^ rand_suffix()));
    let file = std::fs::File::create(&log).expect("create log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["run", "-c", topology.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(file);
    let child = ferry_testkit::proc::spawn_tied(cmd).expect("start ferry");
    Daemon {
        child: Some(child),
        log,
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Sends `sig` and waits for the daemon to exit: its exit code and log.
pub fn stop_daemon_with(mut daemon: Daemon, sig: i32) -> (Option<i32>, String) {
    let mut child = daemon.child.take().expect("daemon running");
    signal(&child, sig);
    let status = child.wait().expect("ferry exits");
    (status.code(), daemon.log())
}

/// Waits for a daemon that was already signalled: exit code and log.
pub fn stop_daemon_after_signal(mut daemon: Daemon) -> (Option<i32>, String) {
    let mut child = daemon.child.take().expect("daemon running");
    let status = child.wait().expect("ferry exits");
    (status.code(), daemon.log())
}

/// SIGTERM, then the exit code and the daemon's log.
pub fn stop_daemon(daemon: Daemon) -> (Option<i32>, String) {
    stop_daemon_with(daemon, libc::SIGTERM)
}

pub fn signal(child: &Child, sig: i32) {
    if let Err(e) = ferry_testkit::proc::signal(child, sig) {
        panic!("signal {sig} not delivered: {e}");
    }
}

/// Runs `ferry run --until caught-up`, failing the test with the daemon's
/// log unless it exits 0. Returns the log.
pub fn run_until_caught_up(topology: &Path) -> String {
    let out = ferry(&[
        "run",
        "-c",
        topology.to_str().unwrap(),
        "--until",
        "caught-up",
    ])
    .output()
    .expect("ferry runs");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ferry run --until caught-up failed:\n{log}"
    );
    log
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn compare(
    source: &KafkaCluster,
    src_topic: &str,
    target: &KafkaCluster,
    dst_topic: &str,
) -> CompareReport {
    compare_partitions(
        &source.client_config(),
        src_topic,
        &target.client_config(),
        dst_topic,
    )
    .expect("compare")
}

/// The target topic equals the source topic record for record.
pub fn assert_same(
    source: &KafkaCluster,
    src_topic: &str,
    target: &KafkaCluster,
    dst_topic: &str,
    expected: usize,
) {
    let report = compare(source, src_topic, target, dst_topic);
    assert!(
        report.is_match(),
        "{src_topic} -> {dst_topic} differs:\n{report}"
    );
    assert_eq!(report.source_count(), expected);
    assert_eq!(report.target_count(), expected);
}

/// Total records in a topic (sum of end offsets minus nothing: test topics
/// are never truncated).
pub fn total(cluster: &KafkaCluster, topic: &str) -> i64 {
    ferry_testkit::data::end_offsets(&cluster.client_config(), topic)
        .map(|e| e.iter().sum())
        .unwrap_or(0)
}

/// `GET path` from a plain-HTTP daemon at `addr`: (status code, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None, None)
}

/// One `GET` or `POST` to a plain-HTTP daemon at `addr`, with
/// `Authorization: Bearer <token>` when a token is given and a JSON body
/// when one is given: (status code, body). Through the client `ferry`
/// itself uses; the wait covers a control request's 60 s answer.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (u16, String) {
    let endpoint = ferry_http::client::Endpoint::plain(addr);
    let reply = ferry_http::client::request(
        &endpoint,
        method,
        path,
        json_body,
        token,
        Duration::from_secs(70),
    )
    .unwrap_or_else(|e| panic!("{method} {path} at {addr}: {e}"));
    (reply.status, reply.body)
}

/// The value of a Prometheus sample whose line starts with `series`
/// (name plus labels, as exported), if present.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

// ---------------------------------------------------------------------------
// Consumer groups, checkpoints and failover
// ---------------------------------------------------------------------------

/// A consumer handle of `group` that never joins it: used to read and
/// commit the group's offsets the way clients do (OffsetFetch/OffsetCommit
/// through the group coordinator).
///
/// Why not the admin API: librdkafka 2.12's admin ListConsumerGroupOffsets
/// dereferences a null consumer-group handle when the broker answers
/// NOT_COORDINATOR (confluentinc/librdkafka#5040), which a freshly started
/// cluster does while `__consumer_offsets` loads; a consumer handle has a
/// group, so the same answer just re-queries the coordinator.
fn offsets_handle(cluster: &KafkaCluster, group: &str) -> rdkafka::consumer::BaseConsumer {
    cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Retries what a fresh cluster may refuse for a while (the group
/// coordinator is still loading `__consumer_offsets`).
fn retrying<T>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T, rdkafka::error::KafkaError>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A group's committed offsets for `topic`, by partition (absent: none, or
/// no such topic).
pub fn group_offsets(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
) -> std::collections::BTreeMap<i32, i64> {
    use rdkafka::consumer::Consumer;
    let Ok(partitions) = ferry_testkit::data::partition_count(&cluster.client_config(), topic)
    else {
        return Default::default();
    };
    let consumer = offsets_handle(cluster, group);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition(topic, p);
    }
    let committed = retrying(&format!("reading the offsets of group {group}"), || {
        consumer.committed_offsets(tpl.clone(), Duration::from_secs(15))
    });
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Commits offsets for a group without consuming (the group must be idle).
pub fn commit_group_offsets(cluster: &KafkaCluster, group: &str, offsets: &[(&str, i32, i64)]) {
    use rdkafka::consumer::{CommitMode, Consumer};
    let consumer = offsets_handle(cluster, group);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, rdkafka::Offset::Offset(*o))
            .unwrap();
    }
    retrying(&format!("committing offsets of group {group}"), || {
        consumer.commit(&tpl, CommitMode::Sync)
    });
}

/// The group coordinator of a freshly started cluster is not ready for a
/// moment (`__consumer_offsets` is being created and loaded); librdkafka
/// retries on its own and reports it on the way.
fn coordinator_not_ready(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
    matches!(
        e,
        KafkaError::MessageConsumption(
            C::NotCoordinator | C::CoordinatorLoadInProgress | C::CoordinatorNotAvailable
        )
    )
}

fn group_consumer(cluster: &KafkaCluster, group: &str) -> rdkafka::consumer::BaseConsumer {
    cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "20")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

fn owned(msg: &rdkafka::message::BorrowedMessage<'_>) -> ferry_testkit::data::Record {
    use rdkafka::message::Message;
    ferry_testkit::data::Record {
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers: Vec::new(),
        timestamp: msg.timestamp(),
    }
}

/// A consumer of `group` reads `counts[p]` records of each listed partition
/// of `topic` (from the group's committed offset, else the beginning) and
/// commits like a real consumer: the offset after the last record it
/// processed. Returns the records read and the committed offsets.
pub fn consume_and_commit(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    counts: &[(i32, usize)],
) -> (
    Vec<ferry_testkit::data::Record>,
    std::collections::BTreeMap<i32, i64>,
) {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer = group_consumer(cluster, group);
    // The committed offsets come from the admin API (retried while a fresh
    // cluster's coordinator loads), not from librdkafka's own fetch.
    let stored = group_offsets(cluster, group, topic);
    let mut tpl = TopicPartitionList::new();
    for (p, _) in counts {
        let start = stored
            .get(p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, *p, start).unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut read: std::collections::BTreeMap<i32, Vec<ferry_testkit::data::Record>> =
        counts.iter().map(|(p, _)| (*p, Vec::new())).collect();
    let want: std::collections::BTreeMap<i32, usize> = counts.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.iter().any(|(p, r)| r.len() < want[p]) {
        assert!(
            Instant::now() < deadline,
            "{group} could not read {counts:?} from {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let records = read.get_mut(&msg.partition()).unwrap();
                if records.len() < want[&msg.partition()] {
                    records.push(owned(&msg));
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) if coordinator_not_ready(&e) => {}
            Some(Err(e)) => panic!("{group} reading {topic}: {e}"),
        }
    }
    let mut commit = TopicPartitionList::new();
    let mut committed = std::collections::BTreeMap::new();
    for (p, records) in &read {
        let next = records
            .last()
            .map(|r| r.offset + 1)
            .expect("read something");
        commit
            .add_partition_offset(topic, *p, Offset::Offset(next))
            .unwrap();
        committed.insert(*p, next);
    }
    consumer.commit(&commit, CommitMode::Sync).expect("commit");
    (read.into_values().flatten().collect(), committed)
}

/// What a consumer of `group` reads from `topic` after failing over: from
/// the group's committed offsets (an error if a partition has none, rather
/// than a silent reset), to the end of each listed partition.
pub fn consume_from_committed(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<ferry_testkit::data::Record> {
    use rdkafka::consumer::Consumer;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: rdkafka::consumer::BaseConsumer = cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "20")
        .set("auto.offset.reset", "error")
        .create()
        .expect("consumer");
    let stored = group_offsets(cluster, group, topic);
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let Some(start) = stored.get(p) else {
            panic!("{group} has no committed offset for {topic}/{p} on the target: {stored:?}");
        };
        tpl.add_partition_offset(topic, *p, Offset::Offset(*start))
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut at_end = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions.len() {
        assert!(
            Instant::now() < deadline,
            "{group} did not reach the end of {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                at_end.remove(&rdkafka::message::Message::partition(&msg));
                out.push(owned(&msg));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            None => {}
            Some(Err(e)) if coordinator_not_ready(&e) => {}
            Some(Err(e)) => panic!("{group} failing over to {topic}: {e}"),
        }
    }
    out
}

/// A member that keeps `group` active on a cluster (subscribed to `topic`,
/// polling) until dropped.
pub struct ActiveMember {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActiveMember {
    pub fn join(cluster: &KafkaCluster, group: &str, topic: &str) -> ActiveMember {
        use rdkafka::consumer::Consumer;
        let consumer: rdkafka::consumer::BaseConsumer = cluster
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut told = false;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(100));
                    if !told
                        && consumer
                            .assignment()
                            .map(|a| a.count() > 0)
                            .unwrap_or(false)
                    {
                        let _ = ready_tx.send(());
                        told = true;
                    }
                }
                consumer.unsubscribe();
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the member joined and got an assignment");
        ActiveMember {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ActiveMember {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every checkpoint in `<source>.checkpoints.internal` on `target`, in
/// topic order.
pub fn read_checkpoints(
    target: &KafkaCluster,
    source_alias: &str,
) -> Vec<ferry_checkpoint::wire::Checkpoint> {
    let topic = ferry_checkpoint::wire::checkpoints_topic(source_alias);
    ferry_testkit::data::read_partition(&target.client_config(), &topic, 0, 0, None)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            ferry_checkpoint::wire::Checkpoint::decode(r.key.as_deref()?, r.value.as_deref()?).ok()
        })
        .collect()
}

/// The last checkpoint per partition for `group` and remote `topic`.
pub fn last_checkpoints(
    target: &KafkaCluster,
    source_alias: &str,
    group: &str,
    topic: &str,
) -> std::collections::BTreeMap<i32, (i64, i64)> {
    read_checkpoints(target, source_alias)
        .into_iter()
        .filter(|c| c.group == group && c.topic == topic)
        .map(|c| (c.partition, (c.upstream_offset, c.downstream_offset)))
        .collect()
}

/// Starts the daemon with extra environment (e.g. `RUST_LOG`).
pub fn start_daemon_with_env(topology: &Path, env: &[(&str, &str)]) -> Daemon {
    let log = topology.with_extension(format!("{}.log", std::process::id() ^ rand_suffix()));
    let file = std::fs::File::create(&log).expect("create log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["run", "-c", topology.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(file);
    let child = ferry_testkit::proc::spawn_tied(cmd).expect("start ferry");
    Daemon {
        child: Some(child),
        log,
    }
}

// ---------------------------------------------------------------------------
// Cluster metadata (migration tooling)
// ---------------------------------------------------------------------------

/// Runs `ferry` with `args` to completion: (exit code, stdout, stderr).
pub fn ferry_output(args: &[&str]) -> (Option<i32>, String, String) {
    let out = ferry(args).output().expect("ferry runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one `ferry_admin` call (topic metadata, configs, group listing; not
/// group offsets, see `offsets_handle`) on a throwaway runtime.
pub fn admin<T>(
    cluster: &KafkaCluster,
    f: impl for<'a> FnOnce(
        &'a ferry_admin::Admin,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let admin = {
        let _guard = rt.enter();
        ferry_admin::Admin::new(&cluster.client_config()).expect("admin client")
    };
    rt.block_on(f(&admin))
}

/// The topics of a cluster whose name contains `needle`, with their
/// partition counts.
pub fn topics_containing(
    cluster: &KafkaCluster,
    needle: &str,
) -> std::collections::BTreeMap<String, usize> {
    admin(cluster, |a| Box::pin(a.topic_metadata()))
        .expect("list topics")
        .into_iter()
        .filter(|(n, _)| n.contains(needle))
        .collect()
}

/// The configs set on a topic itself (its overrides), by name.
pub fn topic_overrides(
    cluster: &KafkaCluster,
    topic: &str,
) -> std::collections::BTreeMap<String, String> {
    let name = topic.to_string();
    admin(cluster, move |a| {
        Box::pin(async move { a.describe_topic_configs(&name).await })
    })
    .unwrap_or_else(|e| panic!("reading the configs of {topic}: {e}"))
    .into_iter()
    .filter(|e| matches!(e.source, ferry_admin::ConfigSource::DynamicTopic))
    .filter_map(|e| Some((e.name, e.value?)))
    .collect()
}

pub fn sequences(records: &[ferry_testkit::data::Record]) -> Vec<ferry_testkit::data::SequenceId> {
    records
        .iter()
        .filter_map(ferry_testkit::data::Record::sequence)
        .collect()
}

/// Asserts that what a failed-over consumer read is exactly `expected`: no
/// duplicate, nothing missing, nothing else (foreign records ignored when
/// `foreign_ok`).
pub fn assert_exactly(
    what: &str,
    got: &[ferry_testkit::data::SequenceId],
    expected: &std::collections::BTreeSet<ferry_testkit::data::SequenceId>,
) {
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: Vec<_> = got.iter().filter(|s| !seen.insert(**s)).collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    let unexpected: Vec<_> = seen.difference(expected).collect();
    assert!(
        duplicates.is_empty() && missing.is_empty() && unexpected.is_empty(),
        "{what}: {} duplicates {:?}..., {} missing {:?}..., {} unexpected {:?}...",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)],
        missing.len(),
        &missing[..missing.len().min(5)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)],
    );
}

pub fn all_sequences(cluster: &KafkaCluster, topic: &str) -> Vec<ferry_testkit::data::SequenceId> {
    ferry_testkit::data::read_topic(&cluster.client_config(), topic)
        .expect("read")
        .iter()
        .flatten()
        .filter_map(ferry_testkit::data::Record::sequence)
        .collect()
}

/// The source topics a `/status` document shows as replicated (not those
/// only listed as cut over).
pub fn replicated_topics(status: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(status).expect("/status is JSON");
    doc["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["topics"].as_array().into_iter().flatten())
        .filter_map(|t| t["topic"].as_str().map(str::to_string))
        .collect()
}

/// The source topics a `/status` document lists as cut over.
pub fn cut_over_topics(status: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(status).expect("/status is JSON");
    doc["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["cut_over"].as_array().into_iter().flatten())
        .filter_map(|t| t["topic"].as_str().map(str::to_string))
        .collect()
}
