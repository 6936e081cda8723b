use std::path::Path;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"
[clusters.primary]
bootstrap_servers = "10.0.0.1:9092,10.0.0.2:9092"
[clusters.primary.client]
"security.protocol" = "SASL_SSL"
"sasl.username" = "ferry"
"sasl.password" = "${env:FERRY_CONFIG_TEST_PW}"
"linger.ms" = 5

[clusters.backup]
bootstrap_servers = "10.1.0.1:9092"

[[flows]]
source = "primary"
target = "backup"
topics = ["orders\\..*", "payments"]
topics_exclude = [".*\\.tmp"]
start_from = "2026-01-02T03:04:05+01:00"
checkpoint_interval = "2s"
max_in_flight_bytes = "8MiB"

[http]
listen = "0.0.0.0:9644"
"#;

fn parse_ok(text: &str) -> Loaded {
    std::env::set_var("FERRY_CONFIG_TEST_PW", "pw-from-env-123");
    parse(text, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> Vec<Issue> {
    std::env::set_var("FERRY_CONFIG_TEST_PW", "pw-from-env-123");
    match parse(text, "test.toml", Path::new(".")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.issues().to_vec(),
    }
}

#[test]
fn good_topology_is_typed() {
    let t = parse_ok(GOOD).topology;
    assert_eq!(t.clusters.len(), 2);
    let f = &t.flows[0];
    assert_eq!(f.id().to_string(), "primary->backup");
    assert!(f.topics.matches("orders.eu"));
    assert!(f.topics.matches("payments"));
    assert!(
        !f.topics.matches("payments2"),
        "regexes match the whole name"
    );
    assert!(!f.topics.matches("orders.x.tmp"));
    assert_eq!(f.start_from, StartFrom::Timestamp(1_767_319_445_000));
    assert_eq!(f.checkpoint_interval, std::time::Duration::from_secs(2));
    assert_eq!(f.refresh_interval, DEFAULT_REFRESH_INTERVAL);
    assert_eq!(f.max_in_flight_bytes, 8 << 20);
    assert_eq!(f.remote_topic("orders.eu"), "primary.orders.eu");
    let pw = t.clusters["primary"].client.get("sasl.password").unwrap();
    assert_eq!(pw.expose(), "pw-from-env-123");
    assert_eq!(
        t.clusters["primary"]
            .client
            .get("linger.ms")
            .unwrap()
            .expose(),
        "5"
    );
}

#[test]
fn debug_of_topology_has_no_secret() {
    let t = parse_ok(GOOD).topology;
    let shown = format!("{t:?} {t:#?}");
    assert!(!shown.contains("pw-from-env-123"), "{shown}");
    assert!(shown.contains(REDACTED));
}

#[test]
fn every_problem_is_reported_at_once_with_key_paths() {
    let issues = parse_err(
        r#"
bogus = 1
[clusters.a]
bootstrap_servers = "a:9092"
colour = "red"
[clusters.b]
bootstrap_servers = "nonsense"
[[flows]]
source = "a"
target = "nowhere"
topics = ["ok", "orders("]
checkpoint_interval = "5 parsecs"
[[flows]]
source = "b"
target = "b"
start_from = "yesterday"
[http]
listen = "localhost"
[log]
format = "xml"
"#,
    );
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    for expected in [
        "bogus",
        "clusters.a.colour",
        "clusters.b.bootstrap_servers",
        "flows[0].target",
        "flows[0].topics[1]",
        "flows[0].checkpoint_interval",
        "flows[1].target",
        "flows[1].start_from",
        "http.listen",
        "log.format",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
    let regex = issues
        .iter()
        .find(|i| i.path == "flows[0].topics[1]")
        .unwrap();
    assert_eq!(regex.message, "invalid regex \"orders(\": unclosed group");
}

#[test]
fn duplicate_flows_and_identity_cycles_are_rejected() {
    let base = r#"
[clusters.a]
bootstrap_servers = "a:9092"
[clusters.b]
bootstrap_servers = "b:9092"
"#;
    let dup = format!(
        "{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\n[[flows]]\nsource=\"a\"\ntarget=\"b\"\n"
    );
    let issues = parse_err(&dup);
    assert_eq!(issues[0].path, "flows[1]");
    assert!(issues[0].message.contains("duplicate flow a->b"));

    let cycle = format!(
        "{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\ntopic_naming=\"identity\"\ncycle_protection=false\n\
         [[flows]]\nsource=\"b\"\ntarget=\"a\"\ntopic_naming=\"identity\"\ncycle_protection=false\n"
    );
    let issues = parse_err(&cycle);
    assert!(
        issues.iter().all(|i| i.message.contains("cycle")),
        "{issues:?}"
    );

    // With cycle protection (the default) the same shape is fine.
    let protected = format!(
        "{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\ntopic_naming=\"identity\"\n\
         [[flows]]\nsource=\"b\"\ntarget=\"a\"\ntopic_naming=\"identity\"\n"
    );
    parse_ok(&protected);
}

#[test]
fn unset_env_secret_is_named_without_value() {
    let issues = parse_err(
        r#"
[clusters.a]
bootstrap_servers = "a:9092"
[clusters.a.client]
"sasl.password" = "${env:FERRY_DEFINITELY_UNSET}"
[clusters.b]
bootstrap_servers = "b:9092"
[[flows]]
source = "a"
target = "b"
"#,
    );
    assert_eq!(issues[0].path, "clusters.a.client.\"sasl.password\"");
    assert!(issues[0].message.contains("FERRY_DEFINITELY_UNSET"));
}

#[test]
fn syntax_errors_do_not_echo_the_line() {
    let text =
        "[clusters.a]\nbootstrap_servers = \"a:9092\"\n\"sasl.password\" = \"hunter2\" junk\n";
    let err = parse(text, "t.toml", Path::new(".")).unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("t.toml:3:"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn type_errors_name_the_path() {
    let issues = parse_err(
        "[clusters.a]\nbootstrap_servers = \"a:9092\"\n[clusters.b]\nbootstrap_servers = \"b:9092\"\n\
         [[flows]]\nsource = \"a\"\ntarget = \"b\"\ntopics = \"orders\"\n",
    );
    assert_eq!(issues[0].path, "flows[0].topics", "{issues:?}");
}

#[test]
fn diff_reports_added_removed_changed_and_not_reloadable() {
    let old = parse_ok(GOOD).topology;
    let changed_text = GOOD
        .replace(
            "checkpoint_interval = \"2s\"",
            "checkpoint_interval = \"3s\"",
        )
        .replace("0.0.0.0:9644", "0.0.0.0:9645");
    let new = parse_ok(&changed_text).topology;
    let d = diff(&old, &new);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.not_reloadable.len(), 1);
    assert!(d.not_reloadable[0].starts_with("http.listen"));
    let same = diff(&old, &parse_ok(GOOD).topology);
    assert!(same.is_noop() && same.unchanged.len() == 1 && same.not_reloadable.is_empty());
}

#[test]
fn prefix_naming_round_trips() {
    let n = TopicNaming::Prefix;
    assert_eq!(n.remote_topic("primary", ".", "orders"), "primary.orders");
    assert_eq!(
        n.upstream_of("primary", ".", "primary.orders").as_deref(),
        Some("orders")
    );
    assert_eq!(n.upstream_of("primary", ".", "backup.orders"), None);
    assert_eq!(n.remote_topic("primary", "_", "orders"), "primary_orders");
    assert_eq!(
        n.upstream_of("primary", "_", "primary_orders").as_deref(),
        Some("orders")
    );
    assert_eq!(n.upstream_of("primary", "_", "primary.orders"), None);
}

#[test]
fn exact_and_excluding_filters_take_names_literally() {
    let only = NameFilter::exactly(["orders.v1", "pay+ments"]);
    assert!(only.matches("orders.v1") && only.matches("pay+ments"));
    assert!(!only.matches("ordersXv1"), "a dot is not a wildcard");
    assert!(!only.matches("orders.v10"), "whole names only");
    let all = NameFilter::exactly([]).excluding(["x"]);
    assert!(!all.matches("anything"), "no names: nothing selected");
    let loaded = parse_ok(
        "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
         [[flows]]\nsource=\"a\"\ntarget=\"b\"\ntopics=[\"orders.*\"]\n",
    );
    let topics = &loaded.topology.flows[0].topics;
    let fewer = topics.excluding(["orders.v1", "orders.v1"]);
    assert!(!fewer.matches("orders.v1") && fewer.matches("orders.v2"));
    assert_eq!(fewer.exclude_patterns(), ["orders\\.v1"], "added once");
}

/// A minimal valid topology plus an `[http]` section.
fn with_http(http: &str) -> String {
    format!(
        "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
         [[flows]]\nsource=\"a\"\ntarget=\"b\"\n[http]\n{http}\n"
    )
}

#[test]
fn control_token_from_a_file_is_a_redacted_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-sentinel-5e1f\n").unwrap();
    let text = with_http("control_token = \"${file:token}\"\nstatus_public = true");
    let loaded = parse(&text, "test.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let http = &loaded.topology.http;
    let token = http.control_token.as_ref().expect("a token");
    assert_eq!(
        token.expose(),
        "tok-sentinel-5e1f",
        "the newline is trimmed"
    );
    assert!(http.status_public);
    let shown = format!("{:?} {:#?}", loaded.topology, loaded.topology);
    assert!(!shown.contains("tok-sentinel-5e1f"), "{shown}");

    let plain = parse_ok(&with_http("")).topology.http;
    assert!(plain.control_token.is_none() && !plain.status_public);
}

#[test]
fn unreadable_or_empty_control_token_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    std::fs::write(dir.path().join("spaced"), "two words").unwrap();
    for (value, says) in [
        ("${file:missing}", "cannot read secret file"),
        ("${file:empty}", "is empty"),
        ("", "is empty"),
        ("${file:spaced}", "spaces"),
        ("two words", "spaces"),
    ] {
        let text = with_http(&format!("control_token = \"{value}\""));
        let issues = match parse(&text, "test.toml", dir.path()) {
            Ok(_) => panic!("{value:?} accepted"),
            Err(e) => e.issues().to_vec(),
        };
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "http.control_token", "{issues:?}");
        assert!(issues[0].message.contains(says), "{value:?}: {issues:?}");
        assert!(!issues[0].message.contains("two words"), "{issues:?}");
    }
}

#[test]
fn control_token_and_status_public_need_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t1"), "first").unwrap();
    std::fs::write(dir.path().join("t2"), "second").unwrap();
    let load = |http: &str| {
        parse(&with_http(http), "test.toml", dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .topology
    };
    let d = diff(
        &load("control_token = \"${file:t1}\""),
        &load("control_token = \"${file:t2}\"\nstatus_public = true"),
    );
    assert_eq!(d.not_reloadable.len(), 2, "{:?}", d.not_reloadable);
    assert!(d.not_reloadable[0].starts_with("http.control_token"));
    assert!(d.not_reloadable[1].starts_with("http.status_public"));
    assert!(!format!("{d:?}").contains("first") && !format!("{d:?}").contains("second"));
}

#[test]
fn partition_metrics_is_off_unless_asked_and_needs_a_restart() {
    let off = parse_ok(&with_http("")).topology;
    let on = parse_ok(&with_http("partition_metrics = true")).topology;
    assert!(!off.http.partition_metrics && on.http.partition_metrics);
    let d = diff(&off, &on);
    assert_eq!(d.not_reloadable.len(), 1, "{:?}", d.not_reloadable);
    assert!(d.not_reloadable[0].starts_with("http.partition_metrics"));
    let issues = parse_err(&with_http("partition_metrics = \"yes\""));
    assert_eq!(issues[0].path, "http.partition_metrics", "{issues:?}");
}

const MM2_BASE: &str = r#"
[clusters.a]
bootstrap_servers = "a:9092"
[clusters.b]
bootstrap_servers = "b:9092"
[clusters.connect]
bootstrap_servers = "c:9092"

[[flows]]
source = "a"
target = "b"
"#;

#[test]
fn mm2_offsets_default_to_dedicated_mode() {
    let loaded = parse_ok(MM2_BASE);
    let f = &loaded.topology.flows[0];
    assert_eq!(f.mm2_offsets, Mm2Offsets::dedicated("a", "b"));
    assert_eq!(f.mm2_offsets.topic, "mm2-offsets.a.internal");
    assert_eq!(f.mm2_offsets.connector, "MirrorSourceConnector");
    assert_eq!(f.mm2_offsets.cluster, "b");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w == "clusters.connect: not used by any flow"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn mm2_offsets_of_a_connect_cluster() {
    let on_target = format!(
        "{MM2_BASE}mm2_offsets = {{ topic = \"connect-offsets\", connector = \"mm2-src\" }}\n"
    );
    let f = parse_ok(&on_target).topology.flows[0].mm2_offsets.clone();
    assert_eq!(
        f,
        Mm2Offsets {
            cluster: "b".into(),
            topic: "connect-offsets".into(),
            connector: "mm2-src".into()
        }
    );
    let elsewhere = format!(
        "{MM2_BASE}mm2_offsets = {{ cluster = \"connect\", topic = \"co\", connector = \"x\" }}\n"
    );
    let loaded = parse_ok(&elsewhere);
    assert_eq!(loaded.topology.flows[0].mm2_offsets.cluster, "connect");
    assert!(
        !loaded
            .warnings
            .iter()
            .any(|w| w.contains("clusters.connect")),
        "the Connect cluster is used: {:?}",
        loaded.warnings
    );
}

#[test]
fn mm2_offsets_problems_name_their_keys() {
    let text = format!(
        "{MM2_BASE}mm2_offsets = {{ cluster = \"nope\", topic = \" \", color = \"red\" }}\n"
    );
    let issues = parse_err(&text);
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    for key in ["cluster", "topic", "connector", "color"] {
        assert!(
            paths.contains(&format!("flows[0].mm2_offsets.{key}").as_str()),
            "{key}: {issues:?}"
        );
    }
    let cluster = issues
        .iter()
        .find(|i| i.path == "flows[0].mm2_offsets.cluster")
        .unwrap();
    assert!(
        cluster.message.contains("unknown cluster \"nope\""),
        "{cluster:?}"
    );
}

#[test]
fn on_record_error_defaults_to_stall_and_dead_letter_names_its_topic() {
    let base = "[clusters.a]\nbootstrap_servers=\"x:1\"\n[clusters.b]\nbootstrap_servers=\"y:1\"\n";
    let flow = |extra: &str| format!("{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\n{extra}\n");
    let t = parse_ok(&flow("")).topology;
    assert_eq!(t.flows[0].on_record_error, OnRecordError::Stall);
    let t = parse_ok(&flow("on_record_error = \"skip\"")).topology;
    assert_eq!(t.flows[0].on_record_error, OnRecordError::Skip);
    let t = parse_ok(&flow(
        "on_record_error = \"dead-letter\"\ndead_letter_topic = \"refused.orders\"",
    ))
    .topology;
    assert_eq!(
        t.flows[0].on_record_error,
        OnRecordError::DeadLetter {
            topic: "refused.orders".into()
        }
    );
}

#[test]
fn on_record_error_problems_name_their_keys() {
    let base = "[clusters.a]\nbootstrap_servers=\"x:1\"\n[clusters.b]\nbootstrap_servers=\"y:1\"\n";
    let text = format!(
        "{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\non_record_error = \"dead-letter\"\n\
         [[flows]]\nsource=\"b\"\ntarget=\"a\"\non_record_error = \"drop\"\n"
    );
    let issues = parse_err(&text);
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        ["flows[0].dead_letter_topic", "flows[1].on_record_error"],
        "{issues:?}"
    );
    assert!(issues[1].message.contains("\"drop\""), "{issues:?}");

    let text = format!(
        "{base}[[flows]]\nsource=\"a\"\ntarget=\"b\"\ndead_letter_topic = \"dlq\"\n\
         [[flows]]\nsource=\"b\"\ntarget=\"a\"\non_record_error = \"dead-letter\"\ndead_letter_topic = \"no/slash\"\n"
    );
    let issues = parse_err(&text);
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        ["flows[0].dead_letter_topic", "flows[1].dead_letter_topic"],
        "{issues:?}"
    );
    assert!(issues[0].message.contains("only used with"), "{issues:?}");
}

const MSK_IAM: &str = r#"
[clusters.msk]
bootstrap_servers = "b-1.msk.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"
aws_msk_iam = { region = "eu-west-1", profile = "replication" }
[clusters.msk.client]
"security.protocol" = "SASL_SSL"
"client.rack" = "euw1-az1"

[clusters.local]
bootstrap_servers = "localhost:9092"

[[flows]]
source = "msk"
target = "local"
"#;

#[test]
fn aws_msk_iam_is_typed() {
    let t = parse_ok(MSK_IAM).topology;
    assert_eq!(
        t.clusters["msk"].aws_msk_iam,
        Some(AwsMskIam {
            region: "eu-west-1".into(),
            profile: Some("replication".into()),
        })
    );
    assert_eq!(t.clusters["local"].aws_msk_iam, None);
}

#[test]
fn aws_msk_iam_conflicts_are_all_reported() {
    let text = MSK_IAM
        .replace(
            r#""security.protocol" = "SASL_SSL""#,
            r#""security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "ferry"
"sasl.password" = "${env:FERRY_CONFIG_TEST_PW}"
"sasl.oauthbearer.method" = "oidc""#,
        )
        .replace(r#"region = "eu-west-1""#, r#"region = "Europe (Ireland)""#)
        .replace(
            r#"profile = "replication""#,
            r#"profile = "replication", role = "x""#,
        );
    let issues = parse_err(&text);
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            r#"clusters.msk.aws_msk_iam.role"#,
            r#"clusters.msk.client."sasl.mechanism""#,
            r#"clusters.msk.client."sasl.oauthbearer.method""#,
            r#"clusters.msk.client."sasl.password""#,
            r#"clusters.msk.client."sasl.username""#,
            r#"clusters.msk.client."security.protocol""#,
            r#"clusters.msk.aws_msk_iam.region"#,
        ],
        "{issues:#?}"
    );
    let all = issues
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("unknown key"), "{all}");
    assert!(all.contains("invalid region \"Europe (Ireland)\""), "{all}");
    assert!(
        !all.contains("pw-from-env-123"),
        "a secret leaked into: {all}"
    );
}

#[test]
fn aws_region_codes() {
    for ok in [
        "us-east-1",
        "eu-central-1",
        "us-gov-west-1",
        "cn-north-1",
        "ap-southeast-7",
    ] {
        assert!(validate::valid_aws_region(ok), "{ok}");
    }
    for bad in [
        "",
        "us-east",
        "US-EAST-1",
        "useast1",
        "us-east-1a",
        "u-east-1",
        "us--1",
        "eu-west-1 ",
    ] {
        assert!(!validate::valid_aws_region(bad), "{bad:?}");
    }
    let missing = parse_err(&MSK_IAM.replace(r#"region = "eu-west-1", "#, ""));
    assert_eq!(missing[0].path, "clusters.msk.aws_msk_iam.region");
}

#[test]
fn oauthbearer_without_a_provider_names_every_missing_key() {
    let issues = parse_err(
        r#"
[clusters.a]
bootstrap_servers = "h:1"
[clusters.a.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "OAUTHBEARER"
[clusters.b]
bootstrap_servers = "h:2"
[clusters.b.client]
"sasl.mechanism" = "oauthbearer"
"sasl.oauthbearer.method" = "default"
"sasl.oauthbearer.client.credentials.client.id" = "ferry"
"sasl.oauthbearer.client.secret" = "oidc-sentinel-secret"
[[flows]]
source = "a"
target = "b"
topics = ["t"]
"#,
    );
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "clusters.a.client.\"sasl.oauthbearer.method\"",
            "clusters.a.client.\"sasl.oauthbearer.client.id\"",
            "clusters.a.client.\"sasl.oauthbearer.client.secret\"",
            "clusters.a.client.\"sasl.oauthbearer.token.endpoint.url\"",
            "clusters.b.client.\"sasl.oauthbearer.method\"",
            "clusters.b.client.\"sasl.oauthbearer.token.endpoint.url\"",
        ],
        "{issues:?}"
    );
    assert!(issues[0].message.contains("oidc"), "{issues:?}");
    assert!(issues[4].message.contains("\"default\""), "{issues:?}");
    let all = format!("{issues:?}");
    assert!(!all.contains("oidc-sentinel-secret"), "{all}");
}

#[test]
fn oidc_client_credentials_are_accepted_and_the_secret_redacted() {
    let loaded = parse_ok(
        r#"
[clusters.a]
bootstrap_servers = "h:1"
[clusters.a.client]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "OAUTHBEARER"
"sasl.oauthbearer.method" = "oidc"
"sasl.oauthbearer.client.id" = "ferry"
"sasl.oauthbearer.client.secret" = "oidc-sentinel-secret"
"sasl.oauthbearer.token.endpoint.url" = "https://idp.example.com/oauth2/token"
[clusters.b]
bootstrap_servers = "h:2"
[[flows]]
source = "a"
target = "b"
topics = ["t"]
"#,
    );
    let client = &loaded.topology.clusters["a"].client;
    assert!(client
        .get("sasl.oauthbearer.client.secret")
        .is_some_and(|v| v.is_sensitive()));
    let shown = format!("{:?}", loaded.topology);
    assert!(!shown.contains("oidc-sentinel-secret"), "{shown}");
    assert_eq!(
        client.redacted()["sasl.oauthbearer.token.endpoint.url"],
        "https://idp.example.com/oauth2/token"
    );
}

#[test]
fn slots_default_to_sixteen_and_out_of_range_counts_name_the_key() {
    let t = parse_ok(GOOD).topology;
    assert_eq!(t.flows[0].slots, 16);
    assert_eq!(t.engine.group_prefix, "ferry");
    assert_eq!(
        t.flows[0].group_id(&t.engine.group_prefix),
        "ferry.primary-backup"
    );
    assert_eq!(t.flows[0].slots_topic(), "ferry-slots.primary-backup");
    for bad in ["0", "1025", "-3"] {
        let issues = parse_err(&GOOD.replace(
            "max_in_flight_bytes = \"8MiB\"",
            &format!("max_in_flight_bytes = \"8MiB\"\nslots = {bad}"),
        ));
        let slots = issues
            .iter()
            .find(|i| i.path == "flows[0].slots")
            .unwrap_or_else(|| panic!("slots = {bad} accepted: {issues:?}"));
        assert_eq!(slots.message, format!("invalid slots {bad}: use 1..=1024"));
    }
    let one = parse_ok(&GOOD.replace(
        "max_in_flight_bytes = \"8MiB\"",
        "max_in_flight_bytes = \"8MiB\"\nslots = 1024",
    ));
    assert_eq!(one.topology.flows[0].slots, 1024);
}

#[test]
fn a_group_prefix_kafka_would_refuse_names_the_key() {
    let issues = parse_err(&format!(
        "{GOOD}\n[engine]\ngroup_prefix = \"ferry prod\"\n"
    ));
    assert!(
        issues.iter().any(|i| i.path == "engine.group_prefix"),
        "{issues:?}"
    );
    let ok = parse_ok(&format!("{GOOD}\n[engine]\ngroup_prefix = \"dr.eu-1\"\n"));
    assert_eq!(
        ok.topology.flows[0].group_id(&ok.topology.engine.group_prefix),
        "dr.eu-1.primary-backup"
    );
}

#[test]
fn a_partition_s_slot_depends_only_on_its_topic_and_number() {
    // Fixed values: a member of another version must compute the same slots.
    assert_eq!(slot_of("orders", 0, 16), slot_of("orders", 16, 16));
    assert_eq!(
        (slot_of("orders", 0, 16) + 1) % 16,
        slot_of("orders", 1, 16)
    );
    assert_eq!(slot_of("anything", 7, 1), 0);
    let first = slot_of("orders", 3, 16);
    assert_eq!(first, slot_of("orders", 3, 16));
    // Three topics of eight partitions over sixteen slots: no slot holds
    // more than three partitions.
    let mut load = [0u32; 16];
    for t in ["orders", "payments", "shipments"] {
        for p in 0..8 {
            load[slot_of(t, p, 16) as usize] += 1;
        }
    }
    assert!(load.iter().all(|n| *n <= 3), "{load:?}");
}

#[test]
fn delivery_defaults_to_at_least_once_and_takes_exactly_once() {
    let t = parse_ok(GOOD).topology;
    assert_eq!(t.flows[0].delivery, Delivery::AtLeastOnce);
    assert_eq!(t.flows[0].transaction_interval, Duration::from_millis(100));
    assert_eq!(t.engine.transactional_id_prefix, "ferry");
    let eos = GOOD.replacen(
        "[[flows]]",
        "[[flows]]\ndelivery = \"exactly-once\"\ntransaction_interval = \"250ms\"",
        1,
    );
    let t = parse_ok(&format!("{eos}\n[engine]\ngroup_prefix = \"dr\"\n")).topology;
    assert_eq!(t.flows[0].delivery, Delivery::ExactlyOnce);
    assert_eq!(t.flows[0].transaction_interval, Duration::from_millis(250));
    assert_eq!(
        t.flows[0].transactional_id(&t.engine.transactional_id_prefix, 7),
        format!("dr.{}-{}.7", t.flows[0].source, t.flows[0].target)
    );
}

#[test]
fn bad_delivery_settings_name_their_keys() {
    let with = |lines: &str| GOOD.replacen("[[flows]]", &format!("[[flows]]\n{lines}"), 1);
    for (lines, key) in [
        ("delivery = \"exactly-twice\"", "flows[0].delivery"),
        (
            "transaction_interval = \"5ms\"",
            "flows[0].transaction_interval",
        ),
        (
            "transaction_interval = \"61s\"",
            "flows[0].transaction_interval",
        ),
        (
            "delivery = \"exactly-once\"\noffset_syncs_location = \"source\"",
            "flows[0].offset_syncs_location",
        ),
        (
            "delivery = \"exactly-once\"\non_record_error = \"skip\"",
            "flows[0].on_record_error",
        ),
    ] {
        let issues = parse_err(&with(lines));
        assert!(
            issues.iter().any(|i| i.path == key),
            "{lines}: expected an issue at {key}, got {issues:?}"
        );
    }
}

#[test]
fn a_transaction_timeout_shorter_than_the_interval_is_refused_with_the_reason() {
    let text = GOOD
        .replacen("[[flows]]", "[[flows]]\ndelivery = \"exactly-once\"", 1)
        .replacen(
            "[clusters.backup]\nbootstrap_servers = \"10.1.0.1:9092\"\n",
            "[clusters.backup]\nbootstrap_servers = \"10.1.0.1:9092\"\n[clusters.backup.client]\n\"transaction.timeout.ms\" = \"50\"\n",
            1,
        );
    let issues = parse_err(&text);
    let issue = issues
        .iter()
        .find(|i| i.path == "clusters.backup.client.\"transaction.timeout.ms\"")
        .unwrap_or_else(|| panic!("no issue at the timeout: {issues:?}"));
    assert!(
        issue
            .message
            .contains("shorter than flows[0].transaction_interval"),
        "{issue:?}"
    );
}

#[test]
fn a_topic_separator_names_remote_and_checkpoint_topics_and_guards_cycles() {
    let with = |lines: &str| GOOD.replacen("[[flows]]", &format!("[[flows]]\n{lines}"), 1);
    let t = parse_ok(&with("topic_separator = \"_\"")).topology;
    let f = &t.flows[0];
    assert_eq!(f.remote_topic("orders.eu"), "primary_orders.eu");
    assert!(f.came_from_target("backup_orders.eu"));
    assert!(!f.came_from_target("backup.orders"), "another separator");
    assert!(!f.came_from_target("orders_backup"));
    // Under identity naming it still names the MirrorMaker 2 internal
    // topics, as MM2's IdentityReplicationPolicy does.
    let t = parse_ok(&with(
        "topic_naming = \"identity\"\ntopic_separator = \"-\"",
    ))
    .topology;
    assert_eq!(t.flows[0].topic_separator, "-");
    assert_eq!(t.flows[0].remote_topic("orders.eu"), "orders.eu");
    assert!(!t.flows[0].came_from_target("backup-orders"));
    for bad in ["\"\"", "\"/\"", "\"a b\""] {
        let issues = parse_err(&with(&format!("topic_separator = {bad}")));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "flows[0].topic_separator", "{issues:?}");
    }
}

#[test]
fn rename_rules_apply_before_the_prefix() {
    let text = GOOD.replacen(
        "[[flows]]",
        "[[flows]]\nrename = [{ from = \"orders\\\\.(?P<region>.*)\", to = \"orders-${region}\" }, { from = \"payments\", to = \"pay\" }]",
        1,
    );
    let f = &parse_ok(&text).topology.flows[0];
    assert_eq!(f.remote_topic("orders.eu"), "primary.orders-eu");
    assert_eq!(f.remote_topic("payments"), "primary.pay");
    assert_eq!(f.remote_topic("other"), "primary.other");
}

#[test]
fn bad_rename_rules_name_their_keys() {
    let with = |rules: &str| {
        GOOD.replacen(
            "[[flows]]",
            &format!("[[flows]]\nrename = [{{ from = \"a\", to = \"b\" }}, {rules}]"),
            1,
        )
    };
    for (rules, key, says) in [
        (
            r#"{ from = "x(", to = "y" }"#,
            "flows[0].rename[1].from",
            "invalid regex \"x(\"",
        ),
        (
            r#"{ from = "x(.*)", to = "$2" }"#,
            "flows[0].rename[1].to",
            "refers to group $2",
        ),
        (
            r#"{ from = "x(.*)", to = "$1x" }"#,
            "flows[0].rename[1].to",
            "write ${1}x",
        ),
        (
            r#"{ from = "x(?P<a>.*)", to = "${b}" }"#,
            "flows[0].rename[1].to",
            "group $b",
        ),
        (r#"{ from = "x" }"#, "flows[0].rename[1]", "needs both from"),
        (
            r#"{ from = "x", to = "a b" }"#,
            "flows[0].rename[1].to",
            "invalid topic name",
        ),
    ] {
        let issues = parse_err(&with(rules));
        assert_eq!(issues.len(), 1, "{rules}: {issues:?}");
        assert_eq!(issues[0].path, key, "{rules}: {issues:?}");
        assert!(issues[0].message.contains(says), "{rules}: {issues:?}");
    }
    // Numbered and named references to groups that exist are fine.
    parse_ok(&with(r#"{ from = "x(?P<a>.*)-(.*)", to = "${a}.$2.$$" }"#));
}

#[test]
fn renames_that_merge_named_topics_are_refused_naming_both() {
    let text = GOOD.replacen(
        "topics = [\"orders\\\\..*\", \"payments\"]",
        "topics = [\"legacy\\\\.payments\", \"payments\", \"legacy\\\\..*\"]\nrename = [{ from = \"legacy\\\\.(.*)\", to = \"$1\" }]",
        1,
    );
    let issues = parse_err(&text);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "flows[0].rename[0]");
    assert_eq!(
        issues[0].message,
        "source topics \"legacy.payments\" and \"payments\" would both be written to \"primary.payments\" on backup: a rename must not merge topics"
    );
    // Regexes alone say nothing about which topics exist.
    parse_ok(&GOOD.replacen(
        "[[flows]]",
        "[[flows]]\nrename = [{ from = \"orders\\\\.(.*)\", to = \"$1\" }]",
        1,
    ));
}

#[test]
fn two_flows_writing_one_target_topic_are_refused_naming_both() {
    let text = format!(
        "{GOOD}\n[clusters.third]\nbootstrap_servers = \"10.2.0.1:9092\"\n\
         [[flows]]\nsource = \"third\"\ntarget = \"backup\"\ntopics = [\"payments\"]\n\
         rename = [{{ from = \"payments\", to = \"primary.payments\" }}]\ntopic_naming = \"identity\"\n"
    );
    let issues = parse_err(&text);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "flows[1]");
    assert_eq!(
        issues[0].message,
        "topic \"payments\" of flow third->backup and topic \"payments\" of flows[0] (primary->backup) would both be written to \"primary.payments\" on backup: two sources must not share a target topic"
    );
    // A disabled flow writes nothing.
    parse_ok(&text.replace(
        "topic_naming = \"identity\"",
        "topic_naming = \"identity\"\nenabled = false",
    ));
}

#[test]
fn delete_propagation_is_off_by_default_with_a_ten_minute_grace() {
    let t = parse_ok(GOOD).topology;
    assert_eq!(t.flows[0].deletes, DeletePropagation::default());
    assert!(!t.flows[0].deletes.enabled);
    assert_eq!(t.flows[0].deletes.grace, Duration::from_secs(600));
    let on = GOOD.replacen(
        "[[flows]]",
        "[[flows]]\npropagate_deletes = true\ndelete_grace = \"1h 30m\"",
        1,
    );
    let t = parse_ok(&on).topology;
    assert!(t.flows[0].deletes.enabled);
    assert_eq!(t.flows[0].deletes.grace, Duration::from_secs(5400));
}

#[test]
fn bad_delete_settings_name_their_keys() {
    let with = |lines: &str| GOOD.replacen("[[flows]]", &format!("[[flows]]\n{lines}"), 1);
    for (lines, why) in [
        (
            "propagate_deletes = true\ndelete_grace = \"soon\"",
            "invalid duration",
        ),
        (
            "propagate_deletes = true\ndelete_grace = \"0s\"",
            "greater than zero",
        ),
        (
            "delete_grace = \"5m\"",
            "only used with propagate_deletes = true",
        ),
    ] {
        let issues = parse_err(&with(lines));
        assert!(
            issues
                .iter()
                .any(|i| i.path == "flows[0].delete_grace" && i.message.contains(why)),
            "{lines}: expected an issue at flows[0].delete_grace ({why}), got {issues:?}"
        );
    }
    let issues = parse_err(&with("propagate_deletes = \"yes\""));
    assert!(
        issues.iter().any(|i| i.path.contains("propagate_deletes")),
        "{issues:?}"
    );
}

#[test]
fn changing_delete_propagation_restarts_the_flow_on_reload() {
    let old = parse_ok(GOOD).topology;
    let on = GOOD.replacen("[[flows]]", "[[flows]]\npropagate_deletes = true", 1);
    let d = diff(&old, &parse_ok(&on).topology);
    assert_eq!(d.changed, vec![old.flows[0].id()]);
    assert!(d.not_reloadable.is_empty(), "{d:?}");
    let grace = on.replacen(
        "propagate_deletes = true",
        "propagate_deletes = true\ndelete_grace = \"1m\"",
        1,
    );
    let d = diff(&parse_ok(&on).topology, &parse_ok(&grace).topology);
    assert_eq!(d.changed, vec![old.flows[0].id()]);
}
