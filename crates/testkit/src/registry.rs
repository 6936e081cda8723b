//! A real Schema Registry for the schema migration tests: Apicurio Registry
//! with its Confluent-compatible API, from the install that
//! `tests/registry/install.sh` makes, one in-memory process per
//! [`SchemaRegistry`], on a free loopback port. It also installs the Python
//! venv whose confluent-kafka registry clients the tests decode with
//! ([`RegistryHome::python`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, IoContext, Result};
use crate::proc::{spawn_tied, tail};

/// The Apicurio Registry version `tests/registry/pom.xml` pins (a unit test
/// keeps the two in step); it names the default install directory.
pub const REGISTRY_VERSION: &str = "2.4.2.Final";

/// Environment variable naming the registry install directory.
pub const REGISTRY_HOME_ENV: &str = "FERRY_REGISTRY_HOME";

/// The path of the Confluent-compatible API below the server's root.
pub const CONFLUENT_API: &str = "/apis/ccompat/v7";

/// The install `tests/registry/install.sh` lays out.
#[derive(Clone, Debug)]
pub struct RegistryHome {
    root: PathBuf,
}

impl RegistryHome {
    /// Finds the install named by `FERRY_REGISTRY_HOME`, or
    /// `$HOME/.cache/ferry/apicurio-<version>`, and checks it is complete.
    pub fn locate() -> Result<RegistryHome> {
        let root = match std::env::var_os(REGISTRY_HOME_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var_os("HOME").ok_or_else(|| {
                    HarnessError::Usage(format!("neither {REGISTRY_HOME_ENV} nor HOME is set"))
                })?;
                Path::new(&home)
                    .join(".cache/ferry")
                    .join(format!("apicurio-{REGISTRY_VERSION}"))
            }
        };
        let home = RegistryHome { root };
        for path in [home.root.join(".installed"), home.runner(), home.python()] {
            if !path.exists() {
                return Err(HarnessError::Usage(format!(
                    "the test Schema Registry is not installed in {} ({} is missing). Run \
                     `bash tests/registry/install.sh` (set {REGISTRY_HOME_ENV} to use another directory)",
                    home.root.display(),
                    path.display()
                )));
            }
        }
        Ok(home)
    }

    fn runner(&self) -> PathBuf {
        self.root.join("app/runner.jar")
    }

    /// The venv's Python, with confluent-kafka and fastavro.
    pub fn python(&self) -> PathBuf {
        self.root.join("venv/bin/python")
    }
}

/// A running registry; stopped when dropped.
pub struct SchemaRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SchemaRegistry {
    /// Starts a registry with empty storage and waits until its API answers.
    pub fn start() -> Result<SchemaRegistry> {
        let home = RegistryHome::locate()?;
        let dir = tempfile::tempdir().context(|| "creating a registry directory".into())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context(|| "finding a free port".into())?
            .port();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .context(|| "cloning the log handle".into())?;
        let mut cmd = Command::new("java");
        cmd.arg("-Xmx384m")
            .arg("-XX:+UseSerialGC")
            .arg("-jar")
            .arg(home.runner())
            .env("HTTP_PORT", port.to_string())
            .env("QUARKUS_HTTP_HOST", "127.0.0.1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawn_tied(cmd).context(|| "starting the Schema Registry (java)".into())?;
        let mut registry = SchemaRegistry {
            child,
            port,
            log,
            _dir: dir,
        };
        registry.await_ready(Duration::from_secs(180))?;
        Ok(registry)
    }

    fn await_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::Usage(format!(
                    "the Schema Registry exited while starting ({status}); last lines of its log:\n{}",
                    tail(&self.log, 30)
                )));
            }
            if self.get("/subjects").is_some_and(|(s, _)| s == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(HarnessError::Timeout {
            what: format!(
                "waiting for the Schema Registry on port {}; last lines of its log:\n{}",
                self.port,
                tail(&self.log, 30)
            ),
            waited: timeout,
        })
    }

    /// The Confluent-compatible API's base URL, as clients are given it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{CONFLUENT_API}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A plain HTTP GET of `path` below [`SchemaRegistry::url`]: status and
    /// body, or `None` when the server does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request("GET", path, None)
    }

    /// A plain HTTP POST of a JSON body below [`SchemaRegistry::url`].
    pub fn post(&self, path: &str, json: &str) -> Option<(u16, String)> {
        self.request("POST", path, Some(json))
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {CONFLUENT_API}{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/vnd.schemaregistry.v1+json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_pom() {
        let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/registry/pom.xml");
        let pom = std::fs::read_to_string(pom).unwrap();
        let pinned = format!("<apicurio.version>{REGISTRY_VERSION}</apicurio.version>");
        assert!(pom.contains(&pinned), "pom.xml does not pin {pinned}");
    }
}
