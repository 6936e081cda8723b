use std::path::Path;

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
    assert_eq!(n.remote_topic("primary", "orders"), "primary.orders");
    assert_eq!(
        n.upstream_of("primary", "primary.orders").as_deref(),
        Some("orders")
    );
    assert_eq!(n.upstream_of("primary", "backup.orders"), None);
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
