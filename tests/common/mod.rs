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

[log]
level = "info"
"#,
        source.bootstrap_servers(),
        target.bootstrap_servers()
    );
    std::fs::write(&path, text).expect("write topology");
    path
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
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "signal {sig} delivered");
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

/// A minimal HTTP/1.1 GET over loopback, enough for /metrics and /status.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of a Prometheus sample whose line starts with `series`
/// (name plus labels, as exported), if present.
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
