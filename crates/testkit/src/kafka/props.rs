use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::oidc::{OidcProvider, AUDIENCE};
use super::tls::TlsMaterial;

/// The three listeners of one combined broker+controller node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodePorts {
    /// What clients (and Ferry) connect to; plain, TLS or SASL.
    pub client: u16,
    /// Broker-to-broker replication, always PLAINTEXT so that the security
    /// variants only change what clients see.
    pub internal: u16,
    /// KRaft controller quorum, PLAINTEXT.
    pub controller: u16,
}

/// What every node of a cluster shares.
pub(crate) struct ClusterProps<'a> {
    pub ports: &'a [NodePorts],
    /// `CLIENT` listener's protocol: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.
    pub client_protocol: &'static str,
    /// How the `CLIENT` listener is advertised: `127.0.0.1`, or `localhost`
    /// for Kerberos (the host part of the broker's service principal).
    pub client_host: &'static str,
    pub tls: Option<&'a TlsMaterial>,
    pub scram: bool,
    /// Enforce ACLs, with this SCRAM user as a super user.
    pub authorizer: Option<&'a str>,
    /// OAUTHBEARER with JWTs from this provider.
    pub oidc: Option<&'a OidcProvider>,
    pub kerberos: Option<&'a BrokerKerberos>,
    pub overrides: &'a [(String, String)],
}

/// SASL mechanism of the `sasl_scram` variant.
pub(crate) const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// SASL mechanism of the `sasl_oauthbearer` variant.
pub(crate) const OAUTHBEARER_MECHANISM: &str = "OAUTHBEARER";
/// SASL mechanism of the `kerberos` variant.
pub(crate) const GSSAPI_MECHANISM: &str = "GSSAPI";

/// The broker's Kerberos identity: its service principal and keytab.
#[derive(Clone, Debug)]
pub(crate) struct BrokerKerberos {
    pub principal: String,
    pub keytab: PathBuf,
}

/// Renders `server.properties` for node `index` (node id `index + 1`).
pub(crate) fn server_properties(
    cluster: &ClusterProps<'_>,
    index: usize,
    log_dir: &Path,
) -> String {
    let nodes = cluster.ports.len();
    let me = cluster.ports[index];
    // One node cannot replicate; from three on, survive one broker loss with
    // acknowledged writes intact (the realistic replication failure case).
    let replication = nodes.min(3);
    let min_isr = if nodes >= 3 { 2 } else { 1 };
    let voters = cluster
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.controller))
        .collect::<Vec<_>>()
        .join(",");

    let mut out = String::new();
    let mut set = |key: &str, value: &dyn std::fmt::Display| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{key}={value}");
    };
    set("process.roles", &"broker,controller");
    set("node.id", &(index + 1));
    set(
        "listeners",
        &format!(
            "CLIENT://127.0.0.1:{},INTERNAL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            me.client, me.internal, me.controller
        ),
    );
    set(
        "advertised.listeners",
        &format!(
            "CLIENT://{}:{},INTERNAL://127.0.0.1:{}",
            cluster.client_host, me.client, me.internal
        ),
    );
    set(
        "listener.security.protocol.map",
        &format!(
            "CLIENT:{},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            cluster.client_protocol
        ),
    );
    set("inter.broker.listener.name", &"INTERNAL");
    set("controller.listener.names", &"CONTROLLER");
    // A static quorum: every node is formatted alike, no --standalone needed.
    set("controller.quorum.voters", &voters);
    set("log.dirs", &log_dir.display());
    // Tests create their topics explicitly, as Ferry's users do.
    set("auto.create.topics.enable", &false);
    set("group.initial.rebalance.delay.ms", &0);
    set("num.partitions", &1);
    set("default.replication.factor", &replication);
    set("min.insync.replicas", &min_isr);
    set("offsets.topic.replication.factor", &replication);
    // Fewer partitions than the default 50 make the first consumer group
    // and the first transaction of a test seconds faster to set up.
    set("offsets.topic.num.partitions", &5);
    set("transaction.state.log.num.partitions", &5);
    set("transaction.state.log.replication.factor", &replication);
    set("transaction.state.log.min.isr", &min_isr);
    set(
        "share.coordinator.state.topic.replication.factor",
        &replication,
    );
    set("share.coordinator.state.topic.min.isr", &min_isr);
    // The controller fences a broker that stopped heartbeating after this
    // long, and only then moves its leaderships: the default 9 s would make
    // every killed-broker test wait that long.
    set("broker.heartbeat.interval.ms", &500);
    set("broker.session.timeout.ms", &4000);

    if let Some(tls) = cluster.tls {
        set("ssl.keystore.type", &"PKCS12");
        set("ssl.keystore.location", &tls.keystore.display());
        set("ssl.keystore.password", &tls.password);
        set("ssl.key.password", &tls.password);
        set("ssl.truststore.type", &"PKCS12");
        set("ssl.truststore.location", &tls.truststore.display());
        set("ssl.truststore.password", &tls.password);
    }
    if cluster.scram {
        // Users come from `StorageTool format --add-scram`; the JAAS entry
        // only selects the SCRAM login module for the client listener.
        set("sasl.enabled.mechanisms", &SCRAM_MECHANISM);
        set(
            &format!(
                "listener.name.client.{}.sasl.jaas.config",
                SCRAM_MECHANISM.to_lowercase()
            ),
            &"org.apache.kafka.common.security.scram.ScramLoginModule required;",
        );
    }
    if let Some(oidc) = cluster.oidc {
        // Tokens are validated, not trusted: signature against the JWKS
        // file, expiry, audience and issuer.
        set("sasl.enabled.mechanisms", &OAUTHBEARER_MECHANISM);
        set(
            "listener.name.client.oauthbearer.sasl.jaas.config",
            &"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        );
        set(
            "listener.name.client.oauthbearer.sasl.server.callback.handler.class",
            &"org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        );
        set("sasl.oauthbearer.jwks.endpoint.url", &oidc.jwks_url);
        set("sasl.oauthbearer.expected.audience", &AUDIENCE);
        set("sasl.oauthbearer.expected.issuer", &oidc.issuer);
    }
    if let Some(kerberos) = cluster.kerberos {
        // Only the CLIENT listener speaks SASL; brokers and controllers
        // talk PLAINTEXT among themselves.
        set("sasl.enabled.mechanisms", &GSSAPI_MECHANISM);
        set("sasl.kerberos.service.name", &"kafka");
        set(
            &format!(
                "listener.name.client.{}.sasl.jaas.config",
                GSSAPI_MECHANISM.to_lowercase()
            ),
            &format!(
                "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
                 storeKey=true keyTab=\"{}\" principal=\"{}\";",
                kerberos.keytab.display(),
                kerberos.principal
            ),
        );
    }
    if let Some(super_user) = cluster.authorizer {
        set(
            "authorizer.class.name",
            &"org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        );
        // ANONYMOUS is who brokers and controllers are to each other on
        // their PLAINTEXT listeners; without it they could not register.
        set("super.users", &format!("User:{super_user};User:ANONYMOUS"));
        set("allow.everyone.if.no.acl.found", &false);
    }
    // Java's Properties keeps the last value of a repeated key, so test
    // overrides win over everything above.
    for (key, value) in cluster.overrides {
        set(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_nodes() -> Vec<NodePorts> {
        (0..3)
            .map(|i| NodePorts {
                client: 1000 + i,
                internal: 2000 + i,
                controller: 3000 + i,
            })
            .collect()
    }

    #[test]
    fn three_nodes_share_a_static_quorum_and_replicate() {
        let ports = three_nodes();
        let overrides = vec![("min.insync.replicas".to_string(), "3".to_string())];
        let cluster = ClusterProps {
            ports: &ports,
            client_protocol: "SASL_PLAINTEXT",
            client_host: "127.0.0.1",
            tls: None,
            scram: true,
            authorizer: None,
            oidc: None,
            kerberos: None,
            overrides: &overrides,
        };
        let props = server_properties(&cluster, 1, Path::new("/data"));
        for line in [
            "node.id=2",
            "controller.quorum.voters=1@127.0.0.1:3000,2@127.0.0.1:3001,3@127.0.0.1:3002",
            "listeners=CLIENT://127.0.0.1:1001,INTERNAL://127.0.0.1:2001,CONTROLLER://127.0.0.1:3001",
            "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "default.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
        ] {
            assert!(props.lines().any(|l| l == line), "missing {line:?} in\n{props}");
        }
        // The override comes last, so it is the value Kafka keeps.
        let isr: Vec<&str> = props
            .lines()
            .filter(|l| l.starts_with("min.insync.replicas="))
            .collect();
        assert_eq!(isr.last(), Some(&"min.insync.replicas=3"));
    }

    #[test]
    fn kerberos_serves_gssapi_on_the_client_listener_only() {
        let ports = three_nodes();
        let broker = BrokerKerberos {
            principal: "kafka/localhost@FERRY.TEST".into(),
            keytab: PathBuf::from("/k/kafka.keytab"),
        };
        let cluster = ClusterProps {
            ports: &ports[..1],
            client_protocol: "SASL_PLAINTEXT",
            client_host: "localhost",
            tls: None,
            scram: false,
            authorizer: None,
            oidc: None,
            kerberos: Some(&broker),
            overrides: &[],
        };
        let props = server_properties(&cluster, 0, Path::new("/data"));
        for line in [
            "advertised.listeners=CLIENT://localhost:1000,INTERNAL://127.0.0.1:2000",
            "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms=GSSAPI",
            "sasl.kerberos.service.name=kafka",
            "listener.name.client.gssapi.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule \
             required useKeyTab=true storeKey=true keyTab=\"/k/kafka.keytab\" \
             principal=\"kafka/localhost@FERRY.TEST\";",
        ] {
            assert!(props.lines().any(|l| l == line), "missing {line:?} in\n{props}");
        }
    }
}
