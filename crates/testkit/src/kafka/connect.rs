//! A Kafka Connect worker in distributed mode (`connect-distributed`), from
//! the same jars as the brokers, for running connectors such as MirrorMaker
//! 2's `MirrorSourceConnector` the way Strimzi or MSK Connect host them.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::ports::free_ports;
use super::{tail, KafkaCluster, KafkaHome, LOG_TAIL_LINES};
use crate::error::{HarnessError, IoContext, Result};
use crate::proc::{signal, spawn_tied};

/// Heap of the worker JVM: one worker with one small connector fits.
const CONNECT_JVM_OPTIONS: &[&str] = &["-Xmx256m", "-XX:+UseSerialGC"];
/// How long the worker may take to answer on its REST port.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERMed worker may take to stop its tasks and flush offsets.
const STOP_GRACE: Duration = Duration::from_secs(60);
/// Upper bound of one REST request.
const REST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Connect worker, its own group of one. Its internal topics live
/// on the Kafka cluster it was started against and are named after `name`,
/// so several workers can share a cluster. Killed when dropped.
pub struct ConnectWorker {
    child: Option<Child>,
    rest: SocketAddr,
    offsets_topic: String,
    log: PathBuf,
    _dir: TempDir,
}

impl ConnectWorker {
    /// Starts a worker against `kafka` (where Connect keeps its offsets,
    /// configs and status, and where source connectors write) and waits
    /// until its REST API answers. `name` must be unique per cluster: it is
    /// the worker group and the prefix of the internal topics.
    pub fn start(kafka: &KafkaCluster, name: &str) -> Result<ConnectWorker> {
        let home = KafkaHome::locate()?;
        let dir = tempfile::Builder::new()
            .prefix("ferry-connect-")
            .tempdir()
            .context(|| "cannot create a Connect worker directory".to_string())?;
        let port = free_ports(1)?[0];
        let offsets_topic = format!("{name}-offsets");
        let properties = dir.path().join("worker.properties");
        fs::write(
            &properties,
            format!(
                "bootstrap.servers={bootstrap}
group.id={name}
listeners=http://127.0.0.1:{port}
rest.advertised.host.name=127.0.0.1
rest.advertised.port={port}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.storage.topic={offsets_topic}
offset.storage.replication.factor=1
offset.storage.partitions=5
config.storage.topic={name}-configs
config.storage.replication.factor=1
status.storage.topic={name}-status
status.storage.replication.factor=1
status.storage.partitions=1
offset.flush.interval.ms=1000
",
                bootstrap = kafka.bootstrap_servers(),
            ),
        )
        .context(|| format!("cannot write {}", properties.display()))?;
        let log = dir.path().join("connect.log");
        let file = File::create(&log).context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = home.java(
            CONNECT_JVM_OPTIONS,
            "org.apache.kafka.connect.cli.ConnectDistributed",
        );
        cmd.arg(&properties)
            .stdout(
                file.try_clone()
                    .context(|| "cannot share the log".to_string())?,
            )
            .stderr(file);
        let child = spawn_tied(cmd).context(|| "cannot start the Connect worker".to_string())?;
        let mut worker = ConnectWorker {
            child: Some(child),
            rest: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            offsets_topic,
            log,
            _dir: dir,
        };
        worker.wait_ready()?;
        Ok(worker)
    }

    /// The worker's `offset.storage.topic`, where source connectors'
    /// positions are kept under the connector's name.
    pub fn offsets_topic(&self) -> &str {
        &self.offsets_topic
    }

    /// The REST address (`http://` + this).
    pub fn rest_address(&self) -> SocketAddr {
        self.rest
    }

    /// Creates (or reconfigures) connector `name` with `config`, as
    /// `PUT /connectors/<name>/config` does.
    pub fn put_connector(&self, name: &str, config: &[(&str, &str)]) -> Result<()> {
        let body = format!(
            "{{{}}}",
            config
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect::<Vec<_>>()
                .join(",")
        );
        let (status, answer) = self.request("PUT", &format!("/connectors/{name}/config"), &body)?;
        if !(200..300).contains(&status) {
            return Err(self.failure(format!(
                "Connect refused connector {name} (HTTP {status}): {answer}"
            )));
        }
        Ok(())
    }

    /// Waits until connector `name` and at least one of its tasks run.
    pub fn wait_running(&mut self, name: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_alive()?;
            if let Ok((200, status)) =
                self.request("GET", &format!("/connectors/{name}/status"), "")
            {
                // The status holds `"state":"RUNNING"` once for the
                // connector and once per running task.
                if status.matches("\"RUNNING\"").count() >= 2 {
                    return Ok(());
                }
                if status.contains("\"FAILED\"") {
                    return Err(self.failure(format!("connector {name} failed: {status}")));
                }
                last = status;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(self.failure(format!(
            "connector {name} not running after {timeout:?}; last status: {last}"
        )))
    }

    /// SIGTERM, as an orchestrator stops a worker: Connect stops the tasks
    /// and commits their last positions on the way out.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().expect("a running worker has a child");
        // A worker that already exited cannot be signalled; `try_wait`
        // below reports its status either way.
        let _ = signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::Timeout {
                        what: format!(
                            "waiting for the Connect worker to stop; last lines of its log:\n{}",
                            tail(&self.log, LOG_TAIL_LINES)
                        ),
                        waited: STOP_GRACE,
                    });
                }
                Err(e) => return Err(HarnessError::io("cannot wait for the Connect worker", e)),
            }
        }
    }

    /// The last lines of the worker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = String::from("no answer yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match self.request("GET", "/", "") {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last_error = format!("HTTP {status}: {body}"),
                Err(e) => last_error = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(self.failure(format!(
            "the Connect worker's REST API on {} did not answer within {START_TIMEOUT:?}: {last_error}",
            self.rest
        )))
    }

    /// Fails, with the log, once the worker process has exited.
    fn check_alive(&mut self) -> Result<()> {
        let Some(child) = &mut self.child else {
            return Err(HarnessError::Usage("the Connect worker was stopped".into()));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(HarnessError::Command {
                what: "the Connect worker".into(),
                status: status.to_string(),
                output: tail(&self.log, LOG_TAIL_LINES),
            }),
            Err(e) => Err(HarnessError::io("cannot check the Connect worker", e)),
        }
    }

    fn failure(&self, message: String) -> HarnessError {
        HarnessError::Usage(format!(
            "{message}\n--- last lines of the Connect worker log ---\n{}",
            tail(&self.log, LOG_TAIL_LINES)
        ))
    }

    /// One HTTP/1.1 request with a JSON body; returns status and body.
    fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        let what = || format!("{method} http://{}{path}", self.rest);
        let mut stream = TcpStream::connect_timeout(&self.rest, REST_TIMEOUT).context(what)?;
        stream.set_read_timeout(Some(REST_TIMEOUT)).context(what)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.rest,
            body.len()
        )
        .context(what)?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).context(what)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                HarnessError::Usage(format!("{}: not an HTTP answer: {answer}", what()))
            })?;
        let body = answer
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_string());
        Ok((status, body))
    }
}

impl Drop for ConnectWorker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "--- last lines of the Connect worker log ---\n{}",
                    tail(&self.log, LOG_TAIL_LINES)
                );
            }
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }
}
