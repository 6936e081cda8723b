//! The translation of realistic MirrorMaker 2 files (`fixtures/`) and of the
//! corner cases of each rule: what the topology says, what is warned about,
//! what is refused, and that no secret gets through.

use std::path::{Path, PathBuf};

use ferry_mm2_import::{import_file, translate, ImportError, Translation};

/// Every secret in the fixtures contains this.
const SECRET_MARK: &str = "5ecret";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn import(name: &str) -> Translation {
    import_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ok(text: &str) -> Translation {
    translate(text, "mm2.properties").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn problems(text: &str) -> String {
    match translate(text, "mm2.properties") {
        Err(e @ ImportError::Invalid { .. }) => e.to_string(),
        other => panic!("expected problems, got {other:?}"),
    }
}

fn warnings(t: &Translation) -> String {
    t.warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The topology validated by Ferry's own loader, with every environment
/// variable it names set.
fn validated(t: &Translation) -> ferry_config::Topology {
    for var in &t.env_vars {
        let value = if var.name.ends_with("_AWS_REGION") {
            "us-east-1"
        } else {
            "test-value"
        };
        std::env::set_var(&var.name, value);
    }
    match ferry_config::parse(&t.toml, "translated", Path::new(".")) {
        Ok(loaded) => loaded.topology,
        Err(e) => panic!("{e}\n{}", t.toml),
    }
}

fn table(t: &Translation) -> toml::Table {
    t.toml.parse().unwrap_or_else(|e| panic!("{e}\n{}", t.toml))
}

const TWO_CLUSTERS: &str = "clusters = a, b\na.bootstrap.servers = a1:9092\nb.bootstrap.servers = b1:9092\na->b.enabled = true\n";

#[test]
fn strimzi_style_file() {
    let t = import("strimzi.properties");
    let topology = validated(&t);
    let flow = &topology.flows[0];
    assert_eq!(flow.id().to_string(), "source->target");
    assert_eq!(flow.topic_naming, ferry_config::TopicNaming::Prefix);
    assert!(flow.topics.matches("payments") && flow.topics.matches("audit-42"));
    assert!(!flow.topics.matches("audit-x") && !flow.topics.matches("orders-tmp"));
    assert!(flow.sync_group_offsets && flow.emit_checkpoints && flow.emit_heartbeats);
    // The shorter of emit.checkpoints (60 s) and sync.group.offsets (30 s).
    assert_eq!(flow.checkpoint_interval.as_secs(), 30);
    assert_eq!(flow.heartbeat_interval.as_secs(), 5);
    assert_eq!(flow.refresh_interval.as_secs(), 60);
    assert_eq!(flow.replication_factor, Some(3));
    assert_eq!(
        flow.topic_configs_exclude,
        ["min.insync.replicas", "retention.bytes"]
    );

    let source = &topology.clusters["source"].client;
    assert_eq!(
        source.get("sasl.username").unwrap().expose(),
        "mirror-maker-2"
    );
    assert_eq!(
        source.get("sasl.mechanism").unwrap().expose(),
        "SCRAM-SHA-512"
    );
    // A PKCS#12 trust store has no librdkafka equivalent: a commented line
    // to fill in, and a warning.
    assert!(source.get("ssl.ca.location").is_none());
    assert!(t
        .toml
        .contains("# \"ssl.ca.location\" = \"/path/to/ca.pem\""));
    let target = &topology.clusters["target"].client;
    assert_eq!(
        target.get("ssl.ca.location").unwrap().expose(),
        "/opt/kafka/cluster-ca-certs/ca.crt"
    );
    assert_eq!(
        target.get("ssl.keystore.location").unwrap().expose(),
        "/tmp/kafka/clusters/target.keystore.p12"
    );
    assert_eq!(
        target
            .get("ssl.endpoint.identification.algorithm")
            .unwrap()
            .expose(),
        "none"
    );

    let warned = warnings(&t);
    for (line, property) in [
        (12, "source.ssl.truststore.location"),
        (33, "offset-syncs.topic.replication.factor"),
        (36, "sync.topic.acls.enabled"),
        (40, "refresh.groups.interval.seconds"),
        (47, "tasks.max"),
        (50, "key.converter"),
        (53, "target.offset.storage.replication.factor"),
    ] {
        assert!(
            warned.contains(&format!("strimzi.properties:{line}: {property}: ")),
            "{property}:\n{warned}"
        );
    }
    // The built-in filter class translates silently.
    assert!(!warned.contains("topic.filter.class"), "{warned}");
    assert_eq!(
        t.env_vars
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        [
            "FERRY_SOURCE_SASL_PASSWORD",
            "FERRY_TARGET_SSL_KEYSTORE_PASSWORD",
            "FERRY_TARGET_SSL_KEY_PASSWORD"
        ]
    );
}

#[test]
fn msk_migration_with_identity_naming_iam_and_group_offsets() {
    let t = import("msk-migration.properties");
    let topology = validated(&t);
    let iam = topology.clusters["msk"].aws_msk_iam.as_ref().unwrap();
    assert_eq!(iam.region, "eu-west-1");
    assert_eq!(iam.profile.as_deref(), Some("replication"));
    let msk = &topology.clusters["msk"].client;
    // Ferry sets the mechanism and protocol for MSK IAM itself.
    assert!(msk.get("sasl.mechanism").is_none() && msk.get("security.protocol").is_none());
    assert_eq!(msk.get("compression.type").unwrap().expose(), "zstd");

    let onprem = &topology.clusters["onprem"];
    // A continuation line joined, blanks dropped.
    assert_eq!(
        onprem.bootstrap_servers,
        "kafka-1.dc1.example.com:9094,kafka-2.dc1.example.com:9094,kafka-3.dc1.example.com:9094"
    );
    assert_eq!(
        onprem.client.get("ssl.ca.location").unwrap().expose(),
        "/etc/kafka/dc1-ca.pem"
    );

    assert_eq!(topology.flows.len(), 2);
    let forward = &topology.flows[0];
    assert_eq!(forward.id().to_string(), "onprem->msk");
    assert!(forward.enabled);
    assert!(
        !topology.flows[1].enabled,
        "msk->onprem.enabled = false is kept, disabled"
    );
    assert_eq!(forward.topic_naming, ferry_config::TopicNaming::Identity);
    assert!(forward.sync_group_offsets);
    assert_eq!(forward.checkpoint_interval.as_secs(), 10);
    assert_eq!(
        forward.offset_syncs_location,
        ferry_config::SyncsLocation::Target
    );
    assert_eq!(forward.start_from, ferry_config::StartFrom::Earliest);
    // topics.blacklist is the old name of topics.exclude.
    assert!(forward.topics.matches("orders.eu") && !forward.topics.matches("orders.scratch"));
    assert!(!forward.groups.matches("test-load") && forward.groups.matches("billing"));

    let warned = warnings(&t);
    for property in [
        "onprem.consumer.max.poll.records",
        "msk.producer.max.request.size",
        "tasks.max",
    ] {
        assert!(
            warned.contains(&format!(": {property}: ")),
            "{property}:\n{warned}"
        );
    }
}

#[test]
fn active_active_identity_both_ways_with_shared_security() {
    let t = import("active-active.properties");
    let topology = validated(&t);
    let ids: Vec<String> = topology.flows.iter().map(|f| f.id().to_string()).collect();
    assert_eq!(ids, ["east->west", "west->east"]);
    for flow in &topology.flows {
        assert_eq!(flow.topic_naming, ferry_config::TopicNaming::Identity);
        assert!(flow.cycle_protection, "records must not loop");
        assert!(!flow.sync_group_offsets);
        assert_eq!(
            flow.offset_syncs_location,
            ferry_config::SyncsLocation::Source
        );
        assert!(!flow.groups.matches("console-consumer-1") && flow.groups.matches("connect-x"));
    }
    // The per-flow topics beat the top-level default.
    assert!(topology.flows[0].topics.matches("clicks"));
    assert!(!topology.flows[1].topics.matches("clicks"));
    // The top-level security settings apply to both clusters, each with its
    // own secret variable.
    for name in ["east", "west"] {
        let client = &topology.clusters[name].client;
        assert_eq!(
            client.get("security.protocol").unwrap().expose(),
            "SASL_SSL"
        );
        assert_eq!(client.get("sasl.username").unwrap().expose(), "mm2");
        assert!(t.toml.contains(&format!(
            "\"sasl.password\" = \"${{env:FERRY_{}_SASL_PASSWORD}}\"",
            name.to_uppercase()
        )));
    }
}

#[test]
fn custom_separator_is_emitted_as_the_flow_key() {
    let t = import("custom-separator.properties");
    assert!(
        t.toml.contains(
            "# from custom-separator.properties:8 replication.policy.separator\ntopic_separator = '_'\n"
        ),
        "{}",
        t.toml
    );
    assert!(t.toml.contains("topic_naming = 'prefix'"));
    assert!(t.toml.contains("emit_checkpoints = false"));
    let warned = warnings(&t);
    assert!(
        warned.contains("custom-separator.properties:9: topic.filter.class: not translated"),
        "{warned}"
    );
    // The default separator is not written.
    let t = ok(&format!("{TWO_CLUSTERS}replication.policy.separator = .\n"));
    assert!(!t.toml.contains("topic_separator"), "{}", t.toml);
}

#[test]
fn no_secret_reaches_the_output_or_a_message() {
    for name in [
        "strimzi.properties",
        "msk-migration.properties",
        "active-active.properties",
        "custom-separator.properties",
    ] {
        let t = import(name);
        assert!(!t.toml.contains(SECRET_MARK), "{name}:\n{}", t.toml);
        assert!(!warnings(&t).contains(SECRET_MARK), "{name}");
        assert!(!t.env_vars.iter().any(|s| s.holds.contains(SECRET_MARK)));
    }
    // Nor when a file with secrets is refused.
    let err = problems(&format!(
        "{TWO_CLUSTERS}a.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required password=\"x-5ecret\"\nb.topics = ok\na->b.topics = bad(\n"
    ));
    assert!(!err.contains(SECRET_MARK), "{err}");
    let err = problems(&format!(
        "{TWO_CLUSTERS}a.sasl.jaas.config = PlainLoginModule required password=\"x-5ecret\"\n"
    ));
    assert!(
        err.contains("mm2.properties:5: a.sasl.jaas.config: cannot read the JAAS configuration"),
        "{err}"
    );
    assert!(!err.contains(SECRET_MARK), "{err}");
    // Secrets given as properties of their own.
    let t = ok(&format!(
        "{TWO_CLUSTERS}a.ssl.key.password = k-5ecret\nb.producer.sasl.oauthbearer.token.endpoint.url = https://idp/token\na.sasl.mechanism = OAUTHBEARER\na.sasl.login.callback.handler.class = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\na.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"ferry\" clientSecret=\"c-5ecret\" scope=\"kafka\";\n"
    ));
    assert!(
        !t.toml.contains(SECRET_MARK) && !warnings(&t).contains(SECRET_MARK),
        "{}",
        t.toml
    );
    assert!(t.toml.contains("\"sasl.oauthbearer.client.secret\" = \"${env:FERRY_A_SASL_OAUTHBEARER_CLIENT_SECRET}\""), "{}", t.toml);
    assert!(
        t.toml.contains("\"sasl.oauthbearer.method\" = 'oidc'"),
        "{}",
        t.toml
    );
    assert!(t
        .toml
        .contains("\"ssl.key.password\" = \"${env:FERRY_A_SSL_KEY_PASSWORD}\""));
    // The header names each variable to set.
    assert!(
        t.toml.contains("#   FERRY_A_SSL_KEY_PASSWORD: "),
        "{}",
        t.toml
    );
}

#[test]
fn client_settings_resolve_like_mirrormaker_2() {
    // X.producer.p over X.p over producer.p over p.
    let t = ok(&format!(
        "{TWO_CLUSTERS}\
         sasl.kerberos.service.name = k1\n\
         producer.sasl.kerberos.service.name = k2\n\
         a.sasl.kerberos.service.name = k3\n\
         a.producer.linger.ms = 7\n\
         a.consumer.linger.ms = 8\n\
         b.admin.sasl.kerberos.service.name = k4\n\
         consumer.fetch.max.wait.ms = 250\n\
         b.producer.buffer.memory = 33554432\n\
         b.producer.client.id = mm2\n\
         b.consumer.group.id = mm2\n"
    ));
    let topology = validated(&t);
    let a = &topology.clusters["a"].client;
    let b = &topology.clusters["b"].client;
    assert_eq!(a.get("sasl.kerberos.service.name").unwrap().expose(), "k3");
    assert_eq!(b.get("sasl.kerberos.service.name").unwrap().expose(), "k4");
    assert_eq!(b.get("fetch.wait.max.ms").unwrap().expose(), "250");
    assert_eq!(
        b.get("queue.buffering.max.kbytes").unwrap().expose(),
        "32768"
    );
    assert!(b.get("client.id").is_none() && b.get("group.id").is_none());
    // One client configuration per cluster: differing roles are named.
    let warned = warnings(&t);
    assert!(
        warned.contains("a.producer.linger.ms: differs from a.consumer.linger.ms (line 9)")
            || warned.contains("a.consumer.linger.ms: differs from a.producer.linger.ms (line 8)"),
        "{warned}"
    );
    assert!(
        warned.contains("mm2.properties:13: b.producer.client.id: not translated"),
        "{warned}"
    );
    assert!(
        warned.contains("mm2.properties:14: b.consumer.group.id: not translated"),
        "{warned}"
    );
}

#[test]
fn key_stores_and_logins() {
    let t = ok(&format!(
        "{TWO_CLUSTERS}\
         a.ssl.keystore.location = /k.jks\n\
         a.ssl.keystore.password = ks-5ecret\n\
         a.security.protocol = SASL_PLAINTEXT\n\
         a.sasl.mechanism = GSSAPI\n\
         a.sasl.kerberos.service.name = kafka\n\
         a.sasl.jaas.config = com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab=\"/etc/mm2.keytab\" principal=\"mm2@CORP\";\n\
         b.ssl.truststore.location = /t.jks\n\
         b.sasl.jaas.config = com.example.CustomLogin required;\n"
    ));
    let topology = validated(&t);
    let a = &topology.clusters["a"].client;
    assert_eq!(
        a.get("sasl.kerberos.keytab").unwrap().expose(),
        "/etc/mm2.keytab"
    );
    assert_eq!(
        a.get("sasl.kerberos.principal").unwrap().expose(),
        "mm2@CORP"
    );
    assert!(a.get("ssl.keystore.location").is_none());
    let warned = warnings(&t);
    for expected in [
        "mm2.properties:5: a.ssl.keystore.location: JKS key store not translated",
        "mm2.properties:6: a.ssl.keystore.password: not translated",
        "mm2.properties:11: b.ssl.truststore.location: JKS trust store not translated",
        "mm2.properties:12: b.sasl.jaas.config: login module com.example.CustomLogin not translated",
    ] {
        assert!(warned.contains(expected), "{expected}\n{warned}");
    }
}

#[test]
fn msk_region_unknown_becomes_a_variable() {
    let t = ok(&format!(
        "{TWO_CLUSTERS}b.sasl.mechanism = AWS_MSK_IAM\nb.security.protocol = SASL_SSL\n"
    ));
    assert!(
        t.toml
            .contains("aws_msk_iam = { region = \"${env:FERRY_B_AWS_REGION}\" }"),
        "{}",
        t.toml
    );
    assert!(warnings(&t).contains("b.bootstrap.servers: no AWS region"));
    assert_eq!(t.env_vars[0].name, "FERRY_B_AWS_REGION");
    let topology = validated(&t);
    assert!(topology.clusters["b"].aws_msk_iam.is_some());
}

#[test]
fn filters_defaults_and_regex_syntax() {
    let t = ok(TWO_CLUSTERS);
    let flow = &validated(&t).flows[0];
    // MirrorMaker 2's default excludes, written out.
    for name in [
        "x-internal",
        "x.internal",
        "x.replica",
        "__consumer_offsets",
    ] {
        assert!(!flow.topics.matches(name), "{name}");
    }
    for name in ["console-consumer-123", "connect-mm2", "__x"] {
        assert!(!flow.groups.matches(name), "{name}");
    }
    assert!(flow.topics.matches("orders") && flow.groups.matches("billing"));
    assert!(
        !flow.sync_group_offsets,
        "MirrorMaker 2 syncs no group offsets by default"
    );
    assert!(t
        .toml
        .contains("# MirrorMaker 2's default (sync.group.offsets.enabled unset)"));

    // Each comma item matches the whole name; \Q…\E quotes.
    let t = ok(&format!(
        "{TWO_CLUSTERS}topics = orders, \\\\Qa.b\\\\E.*, \n"
    ));
    let flow = &validated(&t).flows[0];
    assert!(flow.topics.matches("orders") && !flow.topics.matches("orders2"));
    assert!(flow.topics.matches("a.b-1") && !flow.topics.matches("axb"));
    // An empty list replicates nothing, as in MirrorMaker 2.
    let t = ok(&format!("{TWO_CLUSTERS}topics =\n"));
    assert!(!validated(&t).flows[0].topics.matches("orders"));
}

#[test]
fn intervals_and_switches() {
    let t = ok(&format!(
        "{TWO_CLUSTERS}emit.checkpoints.interval.seconds = -1\nemit.heartbeats.interval.seconds = -1\nsync.group.offsets.enabled = TRUE\nrefresh.topics.interval.seconds = -1\n"
    ));
    let flow = &validated(&t).flows[0];
    assert!(!flow.emit_checkpoints && !flow.emit_heartbeats && flow.sync_group_offsets);
    assert!(warnings(&t).contains("mm2.properties:8: refresh.topics.interval.seconds: "));
}

#[test]
fn flow_scoped_settings_of_flows_not_enabled_are_named() {
    let t = ok(&format!(
        "{TWO_CLUSTERS}b->a.topics = x\na->b.producer.linger.ms = 5\nmystery.setting = 1\n"
    ));
    let warned = warnings(&t);
    assert!(
        warned.contains("mm2.properties:5: b->a.topics: not translated: flow b->a is not enabled"),
        "{warned}"
    );
    assert!(warned.contains("mm2.properties:6: a->b.producer.linger.ms: not translated: client settings are per cluster"), "{warned}");
    assert!(
        warned.contains("mm2.properties:7: mystery.setting: not translated: unknown property"),
        "{warned}"
    );
    // A login kept behind a config provider cannot be read, but is named.
    let t = ok(&format!(
        "{TWO_CLUSTERS}b.sasl.jaas.config = ${{file:/opt/kafka/connect.properties:sasl.jaas.config}}\n"
    ));
    assert!(
        warnings(&t)
            .contains("mm2.properties:5: b.sasl.jaas.config: a Kafka config provider reference"),
        "{}",
        warnings(&t)
    );
    // A producer setting given for the whole cluster is ignored by
    // MirrorMaker 2, and named here.
    let t = ok(&format!("{TWO_CLUSTERS}b.linger.ms = 5\n"));
    assert!(!t.toml.contains("linger.ms"), "{}", t.toml);
    assert!(
        warnings(&t).contains("mm2.properties:5: b.linger.ms: not translated: MirrorMaker 2 gives"),
        "{}",
        warnings(&t)
    );
    // OAUTHBEARER needs OIDC client credentials in Ferry.
    let t = ok(&format!("{TWO_CLUSTERS}a.sasl.mechanism = OAUTHBEARER\n"));
    assert!(
        warnings(&t).contains("mm2.properties:5: a.sasl.mechanism: OAUTHBEARER without clientId"),
        "{}",
        warnings(&t)
    );
    // MirrorMaker 2's own settings are not taken for client properties.
    let t = ok(&format!("{TWO_CLUSTERS}admin.timeout.ms = 60000\n"));
    assert!(
        warnings(&t).contains("admin.timeout.ms: not translated: no equivalent in Ferry"),
        "{}",
        warnings(&t)
    );
    // In line order.
    let lines: Vec<usize> = t.warnings.iter().filter_map(|w| w.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn comments_name_the_file_line_and_property() {
    let t = import("msk-migration.properties");
    assert!(t.toml.contains(
        "# from msk-migration.properties:6 onprem.bootstrap.servers\nbootstrap_servers = "
    ));
    // Only the file name: no path of the machine the file was on.
    assert!(!t.toml.contains(env!("CARGO_MANIFEST_DIR")));
    table(&t);
}

#[test]
fn bad_input_names_line_and_property() {
    let cases: &[(&str, &str)] = &[
        ("", "mm2.properties: clusters: missing"),
        (
            "clusters = a, b\na.bootstrap.servers = x:1\n",
            "mm2.properties:1: b.bootstrap.servers: missing",
        ),
        (
            &format!("{TWO_CLUSTERS}a->c.enabled = true\n"),
            "mm2.properties:5: a->c.enabled: unknown cluster alias \"c\" (clusters: a, b)",
        ),
        (
            &format!("{TWO_CLUSTERS}a->a.enabled = true\n"),
            "mm2.properties:5: a->a.enabled: a flow cannot replicate cluster \"a\" to itself",
        ),
        (
            &format!("{TWO_CLUSTERS}just-a-key\n"),
            "mm2.properties:5: just-a-key: no \"=\"",
        ),
        (
            &format!("{TWO_CLUSTERS}a->b.topics = ok, orders(\n"),
            "mm2.properties:5: a->b.topics: invalid regex \"orders(\"",
        ),
        (
            &format!("{TWO_CLUSTERS}topics.exclude = (?!keep).*\n"),
            "mm2.properties:5: topics.exclude: invalid regex \"(?!keep).*\"",
        ),
        (
            &format!("{TWO_CLUSTERS}groups = app-\\\\d*+x\n"),
            "mm2.properties:5: groups: invalid regex \"app-\\d*+x\" for Ferry: it has no possessive quantifiers",
        ),
        (
            &format!("{TWO_CLUSTERS}sync.group.offsets.enabled = yes\n"),
            "mm2.properties:5: sync.group.offsets.enabled: invalid boolean \"yes\"",
        ),
        (
            &format!("{TWO_CLUSTERS}emit.checkpoints.interval.seconds = 1m\n"),
            "mm2.properties:5: emit.checkpoints.interval.seconds: invalid number of seconds",
        ),
        (
            &format!("{TWO_CLUSTERS}offset-syncs.topic.location = both\n"),
            "mm2.properties:5: offset-syncs.topic.location: invalid value \"both\"",
        ),
        (
            "clusters = a.b\n",
            "mm2.properties:1: clusters: alias \"a.b\" cannot name a Ferry cluster",
        ),
        (
            "clusters = a\na.bootstrap.servers = \\u00zz\n",
            "mm2.properties:2: a.bootstrap.servers: malformed \\uXXXX escape",
        ),
    ];
    for (text, expected) in cases {
        let err = problems(text);
        assert!(
            err.contains(expected),
            "expected `{expected}` in:\n{err}\nfor:\n{text}"
        );
    }
    // Every problem at once.
    let err = problems(&format!(
        "{TWO_CLUSTERS}a->c.enabled = true\ntopics = bad(\n"
    ));
    assert_eq!(err.lines().count(), 2, "{err}");
    // A file that is not there.
    let err = import_file(Path::new("/nonexistent/mm2.properties")).unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/mm2.properties"));
}
