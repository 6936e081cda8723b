//! An MIT Kerberos KDC for tests of Kerberos-secured (SASL GSSAPI) Kafka.
//!
//! [`KdcServer::start`] creates a realm in a fresh temporary directory (its
//! own `kdc.conf`, database, stash file and a `krb5.conf` for clients), runs
//! `krb5kdc` in the foreground on a free loopback port and stops it when
//! dropped. Principals get random keys written to keytabs
//! ([`KdcRealm::add_principal`]): no passwords anywhere.
//!
//! The tools come from Debian's `krb5-kdc` (krb5kdc, kdb5_util) and
//! `krb5-admin-server` (kadmin.local) packages; clients need `krb5-user`
//! (kinit). When they are missing, starting fails and says which package to
//! install.

use std::ffi::OsString;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{HarnessError, IoContext, Result};
use crate::kafka::{free_ports, random_token, tail};
use crate::proc::{run_tool, spawn_tied};

/// The realm every [`KdcServer`] serves.
pub const REALM: &str = "FERRY.TEST";
/// How long the KDC may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running MIT Kerberos KDC serving [`REALM`] on a loopback port. It
/// dereferences to its [`KdcRealm`], which adds principals and configures
/// clients.
pub struct KdcServer {
    realm: KdcRealm,
    /// Owns the directory `realm` points into.
    _dir: TempDir,
    process: Option<Child>,
}

/// What clients and administration need of a running [`KdcServer`]: its
/// directory and port. Cheap to clone, e.g. into [`crate::KafkaOptions`];
/// valid while the server runs.
#[derive(Clone, Debug)]
pub struct KdcRealm {
    dir: PathBuf,
    port: u16,
}

impl std::ops::Deref for KdcServer {
    type Target = KdcRealm;

    fn deref(&self) -> &KdcRealm {
        &self.realm
    }
}

impl std::fmt::Debug for KdcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdcServer")
            .field("realm", &REALM)
            .field("port", &self.realm.port)
            .field("dir", &self.realm.dir)
            .finish()
    }
}

impl KdcServer {
    /// Creates the realm's database and starts `krb5kdc`; returns once the
    /// KDC accepts TCP connections.
    pub fn start() -> Result<KdcServer> {
        let krb5kdc = sbin_tool("krb5kdc", "krb5-kdc")?;
        let kdb5_util = sbin_tool("kdb5_util", "krb5-kdc")?;
        // Checked now so that a missing package fails here, not at the
        // first principal.
        sbin_tool("kadmin.local", "krb5-admin-server")?;

        let dir = tempfile::Builder::new()
            .prefix("ferry-kdc-")
            .tempdir()
            .context(|| "cannot create a directory for the KDC".to_string())?;
        let port = free_ports(1)?[0];
        let mut kdc = KdcServer {
            realm: KdcRealm {
                dir: dir.path().to_path_buf(),
                port,
            },
            _dir: dir,
            process: None,
        };
        let kdc_conf = kdc.dir.join("kdc.conf");
        fs::write(&kdc_conf, kdc.kdc_conf())
            .context(|| format!("cannot write {}", kdc_conf.display()))?;
        let krb5_conf = kdc.krb5_conf();
        fs::write(&krb5_conf, kdc.client_conf())
            .context(|| format!("cannot write {}", krb5_conf.display()))?;

        // The master key only protects the database file of this test.
        let mut create = kdc.tool(&kdb5_util);
        create
            .args(["create", "-s", "-r", REALM, "-P"])
            .arg(random_token(24));
        run_tool(create, "creating the Kerberos database (kdb5_util create)")?;

        let log = kdc.log_path();
        let out = File::create(&log).context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .context(|| format!("cannot open {}", log.display()))?;
        let mut cmd = kdc.tool(&krb5kdc);
        // -n: stay in the foreground, so the harness owns the process.
        cmd.args(["-n", "-r", REALM])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        kdc.process = Some(spawn_tied(cmd).context(|| "cannot start krb5kdc".to_string())?);
        kdc.wait_ready()?;
        tracing::info!(port, realm = REALM, "Kerberos KDC ready");
        Ok(kdc)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.process.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.process = None;
                    return Err(HarnessError::Command {
                        what: "krb5kdc".into(),
                        status: format!("exited while starting, {status}"),
                        output: tail(&self.log_path(), 40),
                    });
                }
            }
            if TcpStream::connect_timeout(
                &(Ipv4Addr::LOCALHOST, self.realm.port).into(),
                Duration::from_millis(500),
            )
            .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() >= START_TIMEOUT {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "waiting for krb5kdc to accept connections on port {}; its log:\n{}",
                        self.realm.port,
                        tail(&self.log_path(), 40)
                    ),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl KdcRealm {
    /// The realm, `FERRY.TEST`.
    pub fn realm(&self) -> &'static str {
        REALM
    }

    /// The loopback port the KDC serves (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `krb5.conf` that points clients at this KDC: give it to processes
    /// as `KRB5_CONFIG` and to JVMs as `-Djava.security.krb5.conf`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// Environment for a Kerberos client process (librdkafka's GSSAPI,
    /// kinit): this KDC's `krb5.conf` and a credential cache of its own, so
    /// that processes do not share (or overwrite) each other's tickets.
    pub fn client_env(&self, ccache: &Path) -> Vec<(&'static str, OsString)> {
        let mut cache = OsString::from("FILE:");
        cache.push(ccache);
        vec![
            ("KRB5_CONFIG", self.krb5_conf().into_os_string()),
            ("KRB5CCNAME", cache),
        ]
    }

    /// Sets [`client_env`](Self::client_env) in this process, with a cache in
    /// the KDC's directory. librdkafka reads it when it authenticates, so
    /// call this before creating any Kafka client, while no other thread
    /// reads the environment.
    pub fn export_client_env(&self) {
        for (key, value) in self.client_env(&self.dir.join("ccache-harness")) {
            std::env::set_var(key, value);
        }
    }

    /// Creates `principal` (e.g. `kafka/localhost`, realm appended when
    /// missing) with a random key and writes that key to a new keytab, whose
    /// path it returns.
    pub fn add_principal(&self, principal: &str) -> Result<PathBuf> {
        let kadmin = sbin_tool("kadmin.local", "krb5-admin-server")?;
        let full = self.principal(principal);
        let file_name: String = full
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let keytab = self.dir.join(format!("{file_name}.keytab"));
        let mut add = self.tool(&kadmin);
        add.args(["-r", REALM, "-q"])
            .arg(format!("addprinc -randkey {full}"));
        run_tool(add, &format!("creating the principal {full}"))?;
        let mut export = self.tool(&kadmin);
        export
            .args(["-r", REALM, "-q"])
            .arg(format!("ktadd -k {} -norandkey {full}", keytab.display()));
        run_tool(export, &format!("writing the keytab of {full}"))?;
        // kadmin.local reports some failures on stderr yet exits 0.
        if !keytab.is_file() {
            return Err(HarnessError::Usage(format!(
                "kadmin.local wrote no keytab for {full}; KDC log:\n{}",
                tail(&self.log_path(), 20)
            )));
        }
        Ok(keytab)
    }

    /// `name` with `@REALM` appended unless it names a realm already.
    pub fn principal(&self, name: &str) -> String {
        if name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{REALM}")
        }
    }

    /// The KDC's own log (requests granted and refused).
    pub fn log(&self) -> String {
        tail(&self.log_path(), 40)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("kdc.log")
    }

    /// A KDC tool with this realm's configuration (`KRB5_KDC_PROFILE` names
    /// the database, `KRB5_CONFIG` keeps the host's /etc/krb5.conf out).
    fn tool(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))
            .env("KRB5_CONFIG", self.krb5_conf());
        cmd
    }

    fn kdc_conf(&self) -> String {
        let dir = self.dir.display();
        let port = self.port;
        format!(
            "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
             [realms]\n {REALM} = {{\n  database_name = {dir}/principal\n  \
             key_stash_file = {dir}/stash\n  acl_file = {dir}/kadm5.acl\n  \
             kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n  \
             max_life = 1h\n  max_renewable_life = 1d\n  \
             supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }}\n\
             [logging]\n kdc = FILE:{dir}/kdc.log\n default = FILE:{dir}/kdc.log\n"
        )
    }

    /// `krb5.conf` for clients. Host names are taken as written (no DNS
    /// canonicalisation, no reverse lookups), so the broker's service
    /// principal is `kafka/<the host in its advertised listener>`. TCP only
    /// (`udp_preference_limit = 1`): Java and MIT agree on it.
    fn client_conf(&self) -> String {
        let port = self.port;
        format!(
            "[libdefaults]\n default_realm = {REALM}\n dns_lookup_realm = false\n \
             dns_lookup_kdc = false\n dns_canonicalize_hostname = false\n rdns = false\n \
             udp_preference_limit = 1\n ticket_lifetime = 1h\n forwardable = false\n\
             [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\
             [domain_realm]\n localhost = {REALM}\n"
        )
    }
}

impl Drop for KdcServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A KDC administration tool: on PATH, else in /usr/sbin (not on an
/// unprivileged user's PATH on Debian).
fn sbin_tool(name: &str, package: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            HarnessError::Usage(format!(
                "cannot start a Kerberos KDC: {name} not found on PATH or in /usr/sbin \
                 (install the Debian package {package}; scripts/test.sh does)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kinit (krb5-user), as librdkafka runs it, gets a ticket with a keytab
    /// this KDC wrote, and none for a principal the keytab does not hold.
    #[test]
    fn keytabs_get_tickets_from_the_kdc() {
        let kdc = KdcServer::start().unwrap_or_else(|e| panic!("{e}"));
        let keytab = kdc.add_principal("ferry").unwrap();
        // Adding it again (a second cluster on one KDC) keeps working.
        kdc.add_principal("ferry").unwrap();
        let kinit = |principal: &str, cache: &str| {
            let mut cmd = Command::new("kinit");
            cmd.envs(kdc.client_env(&kdc.dir.join(cache)))
                .args(["-k", "-t"])
                .arg(&keytab)
                .arg(principal);
            run_tool(cmd, &format!("kinit {principal}"))
        };
        kinit("ferry@FERRY.TEST", "cc-good").unwrap();
        assert!(kdc.dir.join("cc-good").is_file(), "ticket cache written");
        let err = kinit("nobody@FERRY.TEST", "cc-bad")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nobody@FERRY.TEST"), "{err}");
    }

    #[test]
    fn a_missing_kdc_tool_names_its_package() {
        let err = sbin_tool("ferry-no-such-krb5kdc", "krb5-kdc")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ferry-no-such-krb5kdc") && err.contains("krb5-kdc"),
            "{err}"
        );
    }
}
