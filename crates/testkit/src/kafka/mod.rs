//! Real Apache Kafka clusters for tests.
//!
//! Each [`KafkaCluster`] runs its nodes as JVMs from the jars that
//! `tests/brokers/install.sh` installs ([`KafkaHome`]), in KRaft combined mode
//! (every node is broker and controller), on free loopback ports, with a fresh
//! temporary directory for configuration and data. Every node has three
//! listeners: `CLIENT` (what tests and Ferry use: PLAINTEXT, SSL or
//! SASL_PLAINTEXT), `INTERNAL` (replication, PLAINTEXT) and `CONTROLLER`.
//! The SASL variants authenticate with SCRAM (users in the bootstrap
//! metadata), OAUTHBEARER (JWTs from a token endpoint the harness serves) or
//! Kerberos (GSSAPI, against a KDC the harness runs). With
//! [`KafkaOptions::authorizer`] the brokers enforce ACLs (KRaft's
//! `StandardAuthorizer`), and [`KafkaOptions::scram_user`] adds the users
//! ACLs are granted to.

mod connect;
mod home;
mod node;
mod oidc;
mod ports;
mod props;
mod shared;
mod tls;

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tempfile::TempDir;

pub use connect::ConnectWorker;
pub use home::{KafkaHome, KAFKA_HOME_ENV, KAFKA_VERSION};
pub use oidc::TokenRequests;
pub use shared::{shared, shared_pair, SOURCE_ENV, TARGET_ENV};

use crate::client::{consumer_failure, ErrorCapture};
use crate::error::{HarnessError, IoContext, Result};
use crate::kdc::KdcRealm;
pub(crate) use crate::proc::tail;
use crate::proc::{run_tool, spawn_tied};
use node::{sweep_stale_dirs, write_node_configs};
use oidc::OidcProvider;
pub(crate) use ports::free_ports;
use props::{
    BrokerKerberos, ClusterProps, NodePorts, GSSAPI_MECHANISM, OAUTHBEARER_MECHANISM,
    SCRAM_MECHANISM,
};

/// Heap of each broker JVM; with it a node stays around 0.5 GB resident.
const BROKER_JVM_OPTIONS: &[&str] = &["-Xmx512m"];
/// Options of short-lived tool JVMs (StorageTool): start fast, stay small.
const TOOL_JVM_OPTIONS: &[&str] = &["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];
/// Prefix of every cluster's temporary directory (see `sweep_stale_dirs`).
const DIR_PREFIX: &str = "ferry-kafka-";
/// File in a cluster directory naming the process that owns it.
const OWNER_FILE: &str = "owner.pid";
/// The SCRAM user the `sasl_scram` variant creates, and the Kerberos
/// client principal (`ferry@REALM`) of the `kerberos` variant.
const SASL_USER: &str = "ferry";
/// The JVM system property that lists the URLs Kafka's OAuth code may read.
const ALLOWED_URLS_PROPERTY: &str = "org.apache.kafka.sasl.oauthbearer.allowed.urls";
/// The broker's Kerberos service principal (before `@REALM`): service
/// `kafka`, host as the `CLIENT` listener advertises it.
const KERBEROS_SERVICE_PRINCIPAL: &str = "kafka/localhost";
/// How long a SIGTERMed broker may take for its controlled shutdown.
const STOP_GRACE: Duration = Duration::from_secs(60);
/// Upper bound of one readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Log lines per broker that errors quote.
const LOG_TAIL_LINES: usize = 40;

/// How to start a [`KafkaCluster`]. The default is one plaintext node.
///
/// ```no_run
/// # use ferry_testkit::KafkaOptions;
/// let cluster = KafkaOptions::new().brokers(3).sasl_scram(true).start()?;
/// # Ok::<(), ferry_testkit::HarnessError>(())
/// ```
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    brokers: usize,
    tls: bool,
    sasl_scram: bool,
    sasl_oauthbearer: bool,
    kerberos: Option<KdcRealm>,
    authorizer: bool,
    scram_users: Vec<(String, String)>,
    overrides: Vec<(String, String)>,
    start_timeout: Duration,
    data_parent: Option<PathBuf>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            brokers: 1,
            tls: false,
            sasl_scram: false,
            sasl_oauthbearer: false,
            kerberos: None,
            authorizer: false,
            scram_users: Vec::new(),
            overrides: Vec::new(),
            start_timeout: Duration::from_secs(60),
            data_parent: None,
        }
    }
}

impl KafkaOptions {
    /// One plaintext node.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes, each a broker and a controller in one static quorum.
    /// From three on, topics default to replication factor 3 and
    /// `min.insync.replicas=2`, internal topics likewise.
    pub fn brokers(mut self, count: usize) -> Self {
        self.brokers = count;
        self
    }

    /// Serve clients over TLS with a CA made at start-up
    /// ([`KafkaCluster::ca_pem_path`]).
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// Authenticate clients with SASL SCRAM-SHA-512 as user `ferry`
    /// ([`KafkaCluster::sasl_user`], [`KafkaCluster::sasl_password`]).
    /// Combined with [`tls`](Self::tls) the listener is SASL_SSL.
    pub fn sasl_scram(mut self, enabled: bool) -> Self {
        self.sasl_scram = enabled;
        self
    }

    /// Authenticate clients with SASL OAUTHBEARER: the brokers accept only
    /// RS256 JWTs signed by a key made at start-up (checked against a JWKS
    /// file, with audience and issuer), and the harness serves the OAuth 2.0
    /// token endpoint that issues them for the client credentials grant
    /// ([`KafkaCluster::oidc_token_endpoint`],
    /// [`KafkaCluster::oidc_client_id`], [`KafkaCluster::oidc_client_secret`]).
    /// Combined with [`tls`](Self::tls) the listener is SASL_SSL.
    pub fn sasl_oauthbearer(mut self, enabled: bool) -> Self {
        self.sasl_oauthbearer = enabled;
        self
    }

    /// Authenticate clients with SASL GSSAPI (Kerberos) against `kdc`: the
    /// `CLIENT` listener is SASL_PLAINTEXT, served as `localhost` by the
    /// principal `kafka/localhost` from a keytab; clients authenticate as
    /// `ferry` ([`KafkaCluster::kerberos_principal`],
    /// [`KafkaCluster::kerberos_keytab`]). Starting creates both principals.
    /// This process must have the KDC's client environment
    /// ([`crate::KdcRealm::export_client_env`]) before the cluster starts:
    /// the harness's own clients authenticate too. Not combinable with TLS
    /// or SCRAM.
    pub fn kerberos(mut self, kdc: &KdcRealm) -> Self {
        self.kerberos = Some(kdc.clone());
        self
    }

    /// Enforce ACLs with KRaft's `StandardAuthorizer`: a client may do only
    /// what an ACL allows (`allow.everyone.if.no.acl.found=false`), except
    /// the super users: the SCRAM user `ferry` and `User:ANONYMOUS`, the
    /// principal of the PLAINTEXT listeners the brokers and controllers
    /// use among themselves. Meant with [`sasl_scram`](Self::sasl_scram),
    /// so that clients have a name ACLs can grant to.
    pub fn authorizer(mut self, enabled: bool) -> Self {
        self.authorizer = enabled;
        self
    }

    /// Another SCRAM user, created with the cluster (needs
    /// [`sasl_scram`](Self::sasl_scram)); clients connect as it with
    /// [`KafkaCluster::client_config_as`].
    pub fn scram_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.scram_users.push((user.into(), password.into()));
        self
    }

    /// Sets a `server.properties` entry on every node, over the harness's
    /// own settings (e.g. `log.cleaner.backoff.ms` for compaction tests).
    pub fn broker_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// How long starting (or restarting a broker) may take before failing.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The directory under which the cluster keeps its logs and metadata
    /// [default: the system's temporary directory]. A memory-backed one
    /// (`/dev/shm`) takes the disk's fsync latency out of measurements.
    pub fn data_parent(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_parent = Some(dir.into());
        self
    }

    /// Starts the cluster; same as [`KafkaCluster::start`].
    pub fn start(&self) -> Result<KafkaCluster> {
        KafkaCluster::start(self)
    }
}

/// What clients need to reach the `CLIENT` listener.
#[derive(Clone, Debug)]
struct ClientSecurity {
    protocol: &'static str,
    ca_pem: Option<PathBuf>,
    sasl: Option<(String, String)>,
    /// Kerberos client principal and its keytab.
    kerberos: Option<(String, PathBuf)>,
}

impl ClientSecurity {
    const PLAINTEXT: ClientSecurity = ClientSecurity {
        protocol: "PLAINTEXT",
        ca_pem: None,
        sasl: None,
        kerberos: None,
    };
}

/// One combined broker+controller JVM.
struct Node {
    id: i32,
    ports: NodePorts,
    properties: PathBuf,
    log: PathBuf,
    process: Mutex<Option<Child>>,
}

/// A running Kafka cluster, or an external one named by a bootstrap string.
///
/// Dropping it SIGKILLs its JVMs and deletes its directory. If the test
/// process dies first, the kernel kills the JVMs (see [`crate::proc::spawn_tied`]).
pub struct KafkaCluster {
    bootstrap: String,
    security: ClientSecurity,
    /// Empty for an external cluster.
    nodes: Vec<Node>,
    home: Option<KafkaHome>,
    start_timeout: Duration,
    /// The token endpoint of an OAUTHBEARER cluster.
    oidc: Option<OidcProvider>,
    /// JVM options of this cluster's brokers beyond [`BROKER_JVM_OPTIONS`].
    broker_jvm_options: Vec<String>,
    /// `-Djava.security.krb5.conf=…` for the broker JVMs (Kerberos only).
    krb5_conf: Option<PathBuf>,
    /// SCRAM users beyond `ferry`, created when the storage is formatted.
    scram_users: Vec<(String, String)>,
    dir: Option<TempDir>,
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("bootstrap", &self.bootstrap)
            .field("protocol", &self.security.protocol)
            .field("brokers", &self.nodes.len())
            .field("dir", &self.dir.as_ref().map(TempDir::path))
            .finish()
    }
}

impl KafkaCluster {
    /// Starts a cluster and waits until every node answers Metadata requests
    /// listing all nodes.
    pub fn start(options: &KafkaOptions) -> Result<KafkaCluster> {
        let started = Instant::now();
        let count = options.brokers;
        if count == 0 {
            return Err(HarnessError::Usage(
                "a Kafka cluster needs at least one broker".into(),
            ));
        }
        if !options.scram_users.is_empty() && !options.sasl_scram {
            return Err(HarnessError::Usage(
                "extra SCRAM users need a SCRAM cluster (sasl_scram)".into(),
            ));
        }
        if options.sasl_scram && options.sasl_oauthbearer {
            return Err(HarnessError::Usage(
                "a Kafka cluster serves either SCRAM or OAUTHBEARER clients, not both".into(),
            ));
        }
        let home = KafkaHome::locate()?;
        let parent = options
            .data_parent
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        sweep_stale_dirs(&parent);
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&parent)
            .context(|| {
                format!(
                    "cannot create a directory for Kafka in {}",
                    parent.display()
                )
            })?;
        let owner = dir.path().join(OWNER_FILE);
        fs::write(&owner, std::process::id().to_string())
            .context(|| format!("cannot write {}", owner.display()))?;

        let ports: Vec<NodePorts> = ports::free_ports(3 * count)?
            .chunks(3)
            .map(|p| NodePorts {
                client: p[0],
                internal: p[1],
                controller: p[2],
            })
            .collect();
        let tls = match options.tls {
            true => Some(tls::generate(&dir.path().join("tls"), random_token(24))?),
            false => None,
        };
        let sasl = options
            .sasl_scram
            .then(|| (SASL_USER.to_string(), random_token(24)));
        let oidc = match options.sasl_oauthbearer {
            true => Some(OidcProvider::start(
                &dir.path().join("oidc"),
                random_token(24),
            )?),
            false => None,
        };
        // Kafka 4 reads JWKS and token URLs only when this system property
        // lists them.
        let broker_jvm_options: Vec<String> = oidc
            .iter()
            .map(|o| format!("-D{ALLOWED_URLS_PROPERTY}={}", o.jwks_url))
            .collect();
        let protocol = match (
            options.tls,
            options.sasl_scram || options.sasl_oauthbearer || options.kerberos.is_some(),
        ) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        let kerberos = match &options.kerberos {
            Some(_) if options.tls || options.sasl_scram => {
                return Err(HarnessError::Usage(
                    "the Kerberos listener does not combine with TLS or SCRAM".into(),
                ))
            }
            Some(kdc) => Some((
                kdc,
                BrokerKerberos {
                    principal: kdc.principal(KERBEROS_SERVICE_PRINCIPAL),
                    keytab: kdc.add_principal(KERBEROS_SERVICE_PRINCIPAL)?,
                },
                (kdc.principal(SASL_USER), kdc.add_principal(SASL_USER)?),
            )),
            None => None,
        };
        let cluster_props = ClusterProps {
            ports: &ports,
            client_protocol: protocol,
            client_host: client_host(kerberos.is_some()),
            tls: tls.as_ref(),
            scram: options.sasl_scram,
            authorizer: options.authorizer.then_some(SASL_USER),
            oidc: oidc.as_ref(),
            kerberos: kerberos.as_ref().map(|(_, broker, _)| broker),
            overrides: &options.overrides,
        };

        let nodes = write_node_configs(dir.path(), &cluster_props)?;

        // From here on, dropping `cluster` on an error kills what was started.
        let cluster = KafkaCluster {
            bootstrap: join_bootstrap(
                cluster_props.client_host,
                nodes.iter().map(|n| n.ports.client),
            ),
            security: ClientSecurity {
                protocol,
                ca_pem: tls.map(|t| t.ca_pem),
                sasl,
                kerberos: kerberos.as_ref().map(|(_, _, client)| client.clone()),
            },
            nodes,
            home: Some(home),
            start_timeout: options.start_timeout,
            oidc,
            broker_jvm_options,
            krb5_conf: kerberos.as_ref().map(|(kdc, _, _)| kdc.krb5_conf()),
            scram_users: options.scram_users.clone(),
            dir: Some(dir),
        };
        cluster.format_storage()?;
        for node in &cluster.nodes {
            cluster.spawn(node)?;
        }
        cluster.wait_ready()?;
        tracing::info!(
            bootstrap = %cluster.bootstrap,
            protocol,
            brokers = count,
            elapsed = ?started.elapsed(),
            "Kafka cluster ready"
        );
        Ok(cluster)
    }

    /// A cluster that is already running elsewhere (PLAINTEXT), e.g. one that
    /// `ferry-testkit-brokers` started. The harness does not own its brokers.
    pub fn external(bootstrap: impl Into<String>) -> KafkaCluster {
        KafkaCluster {
            bootstrap: bootstrap.into(),
            security: ClientSecurity::PLAINTEXT,
            nodes: Vec::new(),
            home: None,
            start_timeout: KafkaOptions::default().start_timeout,
            oidc: None,
            broker_jvm_options: Vec::new(),
            krb5_conf: None,
            scram_users: Vec::new(),
            dir: None,
        }
    }

    /// Comma-separated `host:port` of every node's client listener.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// A client configuration that reaches this cluster: bootstrap servers
    /// plus whatever security the cluster requires.
    pub fn client_config(&self) -> ClientConfig {
        self.client_config_for(&self.bootstrap)
    }

    fn client_config_for(&self, bootstrap: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("security.protocol", self.security.protocol);
        if let Some(ca) = &self.security.ca_pem {
            config.set("ssl.ca.location", ca.display().to_string());
        }
        if let Some((user, password)) = &self.security.sasl {
            config
                .set("sasl.mechanism", SCRAM_MECHANISM)
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        if let Some(oidc) = &self.oidc {
            config
                .set("sasl.mechanism", OAUTHBEARER_MECHANISM)
                .set("sasl.oauthbearer.method", "oidc")
                .set("sasl.oauthbearer.client.id", &oidc.client_id)
                .set("sasl.oauthbearer.client.secret", &oidc.client_secret)
                .set("sasl.oauthbearer.token.endpoint.url", &oidc.token_endpoint);
        }
        if let Some((principal, keytab)) = &self.security.kerberos {
            config
                .set("sasl.mechanism", GSSAPI_MECHANISM)
                .set("sasl.kerberos.service.name", "kafka")
                .set("sasl.kerberos.principal", principal)
                .set("sasl.kerberos.keytab", keytab.display().to_string());
        }
        config
    }

    /// [`client_config`](Self::client_config), authenticating as another
    /// SCRAM user (see [`KafkaOptions::scram_user`]).
    pub fn client_config_as(&self, user: &str, password: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("sasl.username", user)
            .set("sasl.password", password);
        config
    }

    /// The OAuth 2.0 token endpoint (OAUTHBEARER only), for librdkafka's
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub fn oidc_token_endpoint(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.token_endpoint.as_str())
    }

    /// The client id the token endpoint knows (OAUTHBEARER only).
    pub fn oidc_client_id(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.client_id.as_str())
    }

    /// The client secret the token endpoint requires (OAUTHBEARER only).
    pub fn oidc_client_secret(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.client_secret.as_str())
    }

    /// How many token requests the endpoint served and refused so far
    /// (OAUTHBEARER only).
    pub fn oidc_token_requests(&self) -> Option<TokenRequests> {
        self.oidc.as_ref().map(OidcProvider::requests)
    }

    /// The PEM file of the CA that signed the broker certificates (TLS only).
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.security.ca_pem.as_deref()
    }

    /// The SCRAM user (SASL only).
    pub fn sasl_user(&self) -> Option<&str> {
        self.security.sasl.as_ref().map(|(user, _)| user.as_str())
    }

    /// The SCRAM password (SASL only).
    pub fn sasl_password(&self) -> Option<&str> {
        self.security
            .sasl
            .as_ref()
            .map(|(_, password)| password.as_str())
    }

    /// The Kerberos client principal, `ferry@REALM` (Kerberos only).
    pub fn kerberos_principal(&self) -> Option<&str> {
        self.security.kerberos.as_ref().map(|(p, _)| p.as_str())
    }

    /// The keytab holding the key of [`kerberos_principal`](Self::kerberos_principal).
    pub fn kerberos_keytab(&self) -> Option<&Path> {
        self.security.kerberos.as_ref().map(|(_, k)| k.as_path())
    }

    /// Gives the SCRAM user a new password on the brokers, through Kafka's
    /// own `kafka-configs` tool (AlterUserScramCredentials). Connections
    /// already authenticated stay open; new ones need the new password,
    /// which [`KafkaCluster::client_config`] uses from here on.
    pub fn change_scram_password(&mut self, new_password: &str) -> Result<()> {
        let home = self.home()?;
        let Some((user, old)) = self.security.sasl.clone() else {
            return Err(HarnessError::Usage(format!(
                "the Kafka cluster at {} has no SCRAM user",
                self.bootstrap
            )));
        };
        if self.security.ca_pem.is_some() {
            return Err(HarnessError::Usage(
                "changing the SCRAM password of a TLS cluster is not supported".into(),
            ));
        }
        let dir =
            self.dir.as_ref().map(TempDir::path).ok_or_else(|| {
                HarnessError::Usage("an external cluster has no directory".into())
            })?;
        // The tool authenticates with the current password.
        let command_config = dir.join("scram-admin.properties");
        fs::write(
            &command_config,
            format!(
                "security.protocol={}\nsasl.mechanism={SCRAM_MECHANISM}\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{old}\";\n",
                self.security.protocol
            ),
        )
        .context(|| format!("cannot write {}", command_config.display()))?;
        let mut cmd = home.java(TOOL_JVM_OPTIONS, "kafka.admin.ConfigCommand");
        cmd.args(["--bootstrap-server", &self.bootstrap, "--command-config"])
            .arg(&command_config)
            .args(["--alter", "--entity-type", "users", "--entity-name", &user])
            .args([
                "--add-config",
                &format!("{SCRAM_MECHANISM}=[password={new_password}]"),
            ]);
        run_tool(cmd, "changing the SCRAM password")?;
        self.security.sasl = Some((user, new_password.to_string()));
        Ok(())
    }

    /// Number of nodes the harness runs (0 for an external cluster).
    pub fn broker_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node ids (1..=n), as Kafka metadata names the brokers.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The process id of a running broker's JVM, e.g. for [`crate::proc::sample`].
    pub fn broker_pid(&self, broker_id: i32) -> Option<u32> {
        let node = self.node(broker_id).ok()?;
        let process = lock(&node.process);
        process.as_ref().map(Child::id)
    }

    /// SIGKILLs a broker: no controlled shutdown, as in a crash.
    pub fn kill_broker(&self, broker_id: i32) -> Result<()> {
        self.halt(broker_id, libc::SIGKILL)
    }

    /// SIGTERMs a broker and waits for its controlled shutdown to finish.
    pub fn stop_broker(&self, broker_id: i32) -> Result<()> {
        self.halt(broker_id, libc::SIGTERM)
    }

    /// Restarts a killed or stopped broker with the same node id, ports and
    /// data, and waits until the cluster is ready again.
    pub fn start_broker(&self, broker_id: i32) -> Result<()> {
        let node = self.node(broker_id)?;
        {
            let mut process = lock(&node.process);
            if let Some(child) = process.as_mut() {
                if child.try_wait().ok().flatten().is_none() {
                    return Err(HarnessError::Usage(format!(
                        "broker {broker_id} is already running"
                    )));
                }
                *process = None;
            }
        }
        self.spawn(node)?;
        self.wait_ready()
    }

    /// The last `lines` lines a broker logged (WARN and above, plus anything
    /// the JVM printed), across restarts.
    pub fn broker_log_tail(&self, broker_id: i32, lines: usize) -> String {
        match self.node(broker_id) {
            Ok(node) => tail(&node.log, lines),
            Err(e) => e.to_string(),
        }
    }

    fn node(&self, broker_id: i32) -> Result<&Node> {
        if self.nodes.is_empty() {
            return Err(HarnessError::Usage(format!(
                "the Kafka cluster at {} is external: the harness does not run its brokers",
                self.bootstrap
            )));
        }
        self.nodes
            .iter()
            .find(|n| n.id == broker_id)
            .ok_or_else(|| {
                HarnessError::Usage(format!(
                    "no broker {broker_id}: this cluster has brokers {:?}",
                    self.broker_ids()
                ))
            })
    }

    fn home(&self) -> Result<&KafkaHome> {
        self.home.as_ref().ok_or_else(|| {
            HarnessError::Usage(format!(
                "the Kafka cluster at {} is external: the harness cannot start its brokers",
                self.bootstrap
            ))
        })
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        self.kill_all();
        // `dir` (a TempDir) removes itself after this.
    }
}

/// Asks the cluster behind `config` for its metadata once and returns the ids
/// of the brokers it lists. The error says why it failed when librdkafka
/// knows (refused connection, TLS or SASL failure).
pub fn probe(config: &ClientConfig, timeout: Duration) -> Result<Vec<i32>> {
    let mut config = config.clone();
    // librdkafka backs off up to 10 s between reconnects by default, which
    // would make a probe of a starting broker wait long after it is up.
    config
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "250");
    let bootstrap = config.get("bootstrap.servers").unwrap_or("").to_string();
    let consumer: BaseConsumer<ErrorCapture> = config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create a Kafka client", e))?;
    let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| {
        consumer_failure(&consumer, format!("no Metadata answer from {bootstrap}"), e)
    })?;
    Ok(metadata.brokers().iter().map(|b| b.id()).collect())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock leaves valid data behind.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The host name clients use for the `CLIENT` listener. A Kerberos client
/// asks for a ticket to `kafka/<host>`, so that listener is reached and
/// advertised by name; the others by address, which skips name resolution.
fn client_host(kerberos: bool) -> &'static str {
    if kerberos {
        "localhost"
    } else {
        "127.0.0.1"
    }
}

fn join_bootstrap(host: &str, ports: impl Iterator<Item = u16>) -> String {
    ports
        .map(|p| format!("{host}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
