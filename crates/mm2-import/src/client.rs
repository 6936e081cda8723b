//! Java client properties (`X.producer.*`, `X.consumer.*`, `X.admin.*`,
//! `X.<security property>`) → librdkafka properties for
//! `[clusters.X.client]`.
//!
//! Only what has the same meaning on both sides is translated. The
//! properties whose value depends on others (key stores, JAAS, MSK IAM) are
//! translated per cluster in `security`; everything not named here is
//! reported as untranslated.

/// What a Java client property becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The same meaning under this librdkafka name (often the same name).
    Rename(&'static str),
    /// A byte count in Java, kilobytes in librdkafka.
    Kilobytes(&'static str),
    /// Java `""` means "no hostname check", librdkafka spells it `none`.
    EndpointIdentification,
    /// Translated together with other properties of the cluster
    /// (`security::translate`).
    Security,
    /// Decides where a flow starts: `flows[].start_from`.
    AutoOffsetReset,
    /// Not translated; the text says why.
    Skip(&'static str),
}

const MANAGED: &str = "Ferry sets it itself to keep its delivery guarantees";
const JVM_ONLY: &str = "a JVM setting with no librdkafka equivalent";
const CUSTOM_CLASS: &str = "a Java class; Ferry cannot load it";
const BYTES: &str = "Ferry copies keys and values as bytes, as MirrorMaker 2 does";

/// Java client properties librdkafka knows under the same name, with the
/// same meaning and unit.
const SAME_NAME: &[&str] = &[
    "security.protocol",
    "acks",
    "linger.ms",
    "batch.size",
    "compression.type",
    "request.timeout.ms",
    "retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "max.in.flight.requests.per.connection",
    "delivery.timeout.ms",
    "transaction.timeout.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "connections.max.idle.ms",
    "metadata.max.age.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "client.rack",
    "socket.connection.setup.timeout.ms",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.key.password",
];

/// The rule for a Java client property, or `None` when it is unknown.
pub fn rule(java: &str) -> Option<Rule> {
    use Rule::*;
    if let Some(same) = SAME_NAME.iter().find(|name| **name == java) {
        return Some(Rename(same));
    }
    Some(match java {
        "fetch.max.wait.ms" => Rename("fetch.wait.max.ms"),
        "receive.buffer.bytes" => Rename("socket.receive.buffer.bytes"),
        "send.buffer.bytes" => Rename("socket.send.buffer.bytes"),
        "ssl.truststore.certificates" => Rename("ssl.ca.pem"),
        "ssl.keystore.certificate.chain" => Rename("ssl.certificate.pem"),
        "ssl.keystore.key" => Rename("ssl.key.pem"),
        "buffer.memory" => Kilobytes("queue.buffering.max.kbytes"),
        "ssl.endpoint.identification.algorithm" => EndpointIdentification,
        "sasl.mechanism" | "sasl.jaas.config" | "sasl.client.callback.handler.class"
        | "sasl.login.callback.handler.class" | "ssl.keystore.location"
        | "ssl.keystore.password" | "ssl.keystore.type" | "ssl.truststore.location"
        | "ssl.truststore.password" | "ssl.truststore.type" => Security,
        "auto.offset.reset" => AutoOffsetReset,
        "group.id" | "enable.auto.commit" | "isolation.level" | "transactional.id"
        | "enable.idempotence" | "bootstrap.servers" => Skip(MANAGED),
        "client.id" => Skip("Ferry names its clients itself (scale-out recognises its members by it)"),
        "max.request.size" => Skip(
            "Ferry sets message.max.bytes itself so that the target producer takes any record the source holds",
        ),
        "key.serializer" | "value.serializer" | "key.deserializer" | "value.deserializer" => {
            Skip(BYTES)
        }
        "interceptor.classes" | "partitioner.class" | "metric.reporters"
        | "ssl.engine.factory.class" | "sasl.server.callback.handler.class"
        | "security.providers" => Skip(CUSTOM_CLASS),
        "ssl.protocol" | "ssl.enabled.protocols" | "ssl.provider" | "ssl.keymanager.algorithm"
        | "ssl.trustmanager.algorithm" | "ssl.secure.random.implementation"
        | "sasl.kerberos.ticket.renew.window.factor" | "sasl.kerberos.ticket.renew.jitter"
        | "sasl.login.refresh.window.factor" | "sasl.login.refresh.window.jitter"
        | "sasl.login.refresh.min.period.seconds" | "sasl.login.refresh.buffer.seconds" => {
            Skip(JVM_ONLY)
        }
        "ssl.cipher.suites" => Skip(
            "Java names cipher suites differently from OpenSSL; set librdkafka's ssl.cipher.suites by hand if needed",
        ),
        _ => return None,
    })
}

/// Java client properties that may be given without a `producer.`,
/// `consumer.` or `admin.` prefix, for a cluster (`X.security.protocol`) or
/// every cluster: MirrorMaker 2's `MirrorClientConfig.CLIENT_CONFIG_DEF`,
/// the security settings (and `bootstrap.servers`, handled apart).
pub fn is_cluster_wide(java: &str) -> bool {
    java == "security.protocol" || java.starts_with("ssl.") || java.starts_with("sasl.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_same_named_property_maps_to_itself() {
        for java in [
            "security.protocol",
            "linger.ms",
            "ssl.key.password",
            "client.rack",
        ] {
            assert_eq!(rule(java), Some(Rule::Rename(java)));
        }
        assert_eq!(
            rule("fetch.max.wait.ms"),
            Some(Rule::Rename("fetch.wait.max.ms"))
        );
        assert!(matches!(rule("group.id"), Some(Rule::Skip(_))));
        assert_eq!(rule("some.unknown.thing"), None);
    }
}
