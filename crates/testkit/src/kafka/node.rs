//! The broker JVMs of a [`KafkaCluster`]: their directories and
//! configuration, formatting, starting, readiness, stopping, and cleaning up
//! after runs that could not.

use super::*;

/// Creates each node's directory and `server.properties`.
pub(super) fn write_node_configs(dir: &Path, cluster: &ClusterProps<'_>) -> Result<Vec<Node>> {
    cluster
        .ports
        .iter()
        .enumerate()
        .map(|(index, ports)| {
            let id = index as i32 + 1;
            let node_dir = dir.join(format!("node-{id}"));
            let data = node_dir.join("data");
            fs::create_dir_all(&data).context(|| format!("cannot create {}", data.display()))?;
            let properties = node_dir.join("server.properties");
            fs::write(&properties, props::server_properties(cluster, index, &data))
                .context(|| format!("cannot write {}", properties.display()))?;
            Ok(Node {
                id,
                ports: *ports,
                properties,
                log: node_dir.join("broker.log"),
                process: Mutex::new(None),
            })
        })
        .collect()
}

impl KafkaCluster {
    /// Formats every node's log directory, in parallel (each is a JVM start).
    pub(super) fn format_storage(&self) -> Result<()> {
        let home = self.home()?;
        let cluster_id = random_cluster_id();
        // The KRaft way to create a SCRAM user: a record in the bootstrap
        // metadata, present before any client can connect.
        let scram: Vec<String> = self
            .security
            .sasl
            .iter()
            .chain(&self.scram_users)
            .map(|(user, password)| format!("{SCRAM_MECHANISM}=[name={user},password={password}]"))
            .collect();
        std::thread::scope(|scope| {
            let runs: Vec<_> = self
                .nodes
                .iter()
                .map(|node| {
                    let mut cmd = home.java(TOOL_JVM_OPTIONS, "kafka.tools.StorageTool");
                    cmd.args(["format", "--cluster-id", &cluster_id, "--config"])
                        .arg(&node.properties);
                    for user in &scram {
                        cmd.args(["--add-scram", user]);
                    }
                    let what = format!("formatting the storage of broker {}", node.id);
                    scope.spawn(move || run_tool(cmd, &what))
                })
                .collect();
            runs.into_iter().try_for_each(|run| {
                run.join().unwrap_or_else(|_| {
                    Err(HarnessError::Usage("a StorageTool thread panicked".into()))
                })
            })
        })
    }

    pub(super) fn spawn(&self, node: &Node) -> Result<()> {
        let home = self.home()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .context(|| format!("cannot open {}", node.log.display()))?;
        let log_err = log
            .try_clone()
            .context(|| format!("cannot open {}", node.log.display()))?;
        let mut jvm_options: Vec<String> = BROKER_JVM_OPTIONS
            .iter()
            .map(|o| o.to_string())
            .chain(self.broker_jvm_options.iter().cloned())
            .collect();
        if let Some(krb5_conf) = &self.krb5_conf {
            jvm_options.push(format!("-Djava.security.krb5.conf={}", krb5_conf.display()));
            // No replay cache file under /var/tmp shared between test runs.
            jvm_options.push("-Dsun.security.krb5.rcache=none".into());
        }
        let jvm_options: Vec<&str> = jvm_options.iter().map(String::as_str).collect();
        let mut cmd = home.java(&jvm_options, "kafka.Kafka");
        cmd.arg(&node.properties)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child =
            spawn_tied(cmd).context(|| format!("cannot start the JVM of broker {}", node.id))?;
        *lock(&node.process) = Some(child);
        Ok(())
    }

    /// Waits until every running node answers a Metadata request on its own
    /// client listener and lists every running node: then producers with
    /// `acks=all` and topic creation with the default replication work.
    pub(super) fn wait_ready(&self) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("none");
        loop {
            // A JVM that died will not become ready; its log says why.
            self.check_alive("while starting")?;
            let running: Vec<&Node> = self
                .nodes
                .iter()
                .filter(|n| lock(&n.process).is_some())
                .collect();
            let running_ids: Vec<i32> = running.iter().map(|n| n.id).collect();
            let mut ready = true;
            for node in &running {
                let config = self.client_config_for(&join_bootstrap(
                    client_host(self.security.kerberos.is_some()),
                    [node.ports.client].into_iter(),
                ));
                let timeout = PROBE_TIMEOUT.min(
                    self.start_timeout
                        .saturating_sub(started.elapsed())
                        .max(Duration::from_millis(100)),
                );
                match probe(&config, timeout) {
                    Ok(ids) if running_ids.iter().all(|id| ids.contains(id)) => continue,
                    Ok(ids) => {
                        last_error = format!(
                            "broker {} lists brokers {ids:?}, waiting for {running_ids:?}",
                            node.id
                        )
                    }
                    Err(e) => last_error = e.to_string(),
                }
                ready = false;
                break;
            }
            if ready {
                return Ok(());
            }
            if started.elapsed() >= self.start_timeout {
                return Err(HarnessError::NotReady {
                    bootstrap: self.bootstrap.clone(),
                    waited: started.elapsed(),
                    last_error,
                    log_tail: self.log_tails(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails with the log tail of the first node whose JVM has exited.
    pub(super) fn check_alive(&self, phase: &str) -> Result<()> {
        for node in &self.nodes {
            let mut process = lock(&node.process);
            let exited = match process.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                *process = None;
                return Err(HarnessError::BrokerExited {
                    broker: node.id,
                    phase: phase.to_string(),
                    status: status.to_string(),
                    log_tail: tail(&node.log, LOG_TAIL_LINES),
                });
            }
        }
        Ok(())
    }

    pub(super) fn halt(&self, broker_id: i32, signal: libc::c_int) -> Result<()> {
        let node = self.node(broker_id)?;
        let child = lock(&node.process).take();
        let mut child = child
            .ok_or_else(|| HarnessError::Usage(format!("broker {broker_id} is not running")))?;
        signal_and_reap(&mut child, signal)
            .map(drop)
            .context(|| format!("cannot stop broker {broker_id}"))
    }

    /// SIGKILLs every JVM and waits for it, so nothing writes into the
    /// directory while it is removed.
    pub(super) fn kill_all(&self) {
        for node in &self.nodes {
            if let Some(mut child) = lock(&node.process).take() {
                let _ = signal_and_reap(&mut child, libc::SIGKILL);
            }
        }
    }

    /// Kills the JVMs and removes the directory, for clusters that live in
    /// statics and are never dropped.
    pub(crate) fn shut_down_in_place(&self) {
        self.kill_all();
        if let Some(dir) = &self.dir {
            let _ = fs::remove_dir_all(dir.path());
        }
    }

    pub(super) fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- last lines of broker {} log ({}) ---\n{}",
                    n.id,
                    n.log.display(),
                    tail(&n.log, LOG_TAIL_LINES)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Sends `signal` and reaps the child; escalates to SIGKILL after
/// [`STOP_GRACE`].
fn signal_and_reap(child: &mut Child, signal: libc::c_int) -> io::Result<ExitStatus> {
    if signal == libc::SIGKILL {
        child.kill()?;
        return child.wait();
    }
    crate::proc::signal(child, signal)?;
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()
}

/// A Kafka cluster id: 16 random bytes in URL-safe base64 without padding,
/// as `StorageTool random-uuid` prints (without paying for a JVM start).
fn random_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let bits: u128 = rand::random();
        // 21 six-bit digits carry the top 126 bits, the last one the low two.
        let mut id: String = (0..21)
            .map(|i| ALPHABET[((bits >> (122 - 6 * i)) & 63) as usize] as char)
            .collect();
        id.push(ALPHABET[((bits & 3) << 4) as usize] as char);
        // Kafka's own generator avoids ids that look like command-line flags.
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Removes the directories of clusters whose owning process is gone: a test
/// run ended by Ctrl-C or SIGKILL gets no chance to clean up after itself.
pub(super) fn sweep_stale_dirs(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        let owner = fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|pid| pid.trim().parse::<libc::pid_t>().ok());
        // No owner file yet: another process is still creating it.
        if let Some(pid) = owner {
            if !process_exists(pid) {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_url_safe_base64_chars() {
        for _ in 0..100 {
            let id = random_cluster_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'));
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            // The last digit holds two bits followed by four zero bits.
            assert!("AQgw".contains(&id[21..]), "{id}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&log, 2), "b\nc");
        assert!(tail(&dir.path().join("missing"), 2).contains("cannot read"));
    }

    #[test]
    fn external_clusters_cannot_be_managed() {
        let cluster = KafkaCluster::external("127.0.0.1:1");
        assert_eq!(cluster.broker_count(), 0);
        let err = cluster.kill_broker(1).unwrap_err();
        assert!(err.to_string().contains("external"), "{err}");
        assert_eq!(
            cluster.client_config().get("security.protocol"),
            Some("PLAINTEXT")
        );
    }
}
