//! `[registries.NAME]` and `flows[].schemas`.

use super::*;

/// `registries.NAME.timeout` when unset.
const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks one `[registries.NAME]` table. The password is a secret: no
/// message quotes it, and a literal one draws a warning.
pub(super) fn check_registry(
    checker: &mut Checker<'_>,
    name: &str,
    raw: RawRegistry,
) -> Option<Registry> {
    let path = format!("registries.{name}");
    let before = checker.issues.len();
    let url = match raw.url.as_deref() {
        None => {
            checker.issue(
                format!("{path}.url"),
                "missing: the registry's base URL, e.g. \"http://registry:8081\"",
            );
            String::new()
        }
        Some(raw_url) => match checker.interpolated(&format!("{path}.url"), raw_url) {
            Some((url, _)) => {
                let url = url.trim_end_matches('/').to_string();
                let host = url
                    .strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"));
                if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                    checker.issue(
                        format!("{path}.url"),
                        format!("invalid URL \"{url}\": expected http://HOST[:PORT][/PATH] or https://…"),
                    );
                }
                if url.contains('@') {
                    checker.issue(
                        format!("{path}.url"),
                        "credentials in the URL are not accepted: use username and password",
                    );
                }
                url
            }
            None => String::new(),
        },
    };
    let credentials = both_or_neither(
        checker,
        &path,
        ("username", raw.username),
        ("password", raw.password),
    );
    let basic_auth = match credentials {
        None => None,
        Some((user, password)) => {
            let key = format!("{path}.password");
            let user = checker
                .interpolated(&format!("{path}.username"), &user)
                .map(|(u, _)| u);
            let password = checker.interpolated(&key, &password);
            match (user, password) {
                (Some(username), Some((password, from_secret))) => {
                    if !from_secret {
                        checker.warnings.push(format!(
                            "{key}: written literally in the topology file; prefer \"${{file:PATH}}\" or \"${{env:NAME}}\""
                        ));
                    }
                    if username.contains(':') {
                        checker.issue(
                            format!("{path}.username"),
                            "a basic-auth username cannot contain ':'",
                        );
                    }
                    Some(BasicAuth {
                        username,
                        password: Secret::new(password),
                    })
                }
                _ => None,
            }
        }
    };
    let tls_ca = raw.tls_ca.as_deref().and_then(|ca| {
        super::http::check_pem_file(checker, &format!("{path}.tls_ca"), ca, &["CERTIFICATE"])
    });
    let tls_files = both_or_neither(
        checker,
        &path,
        ("tls_cert", raw.tls_cert),
        ("tls_key", raw.tls_key),
    );
    let tls_client = match tls_files {
        None => None,
        Some((cert, key)) => {
            let cert = super::http::check_pem_file(
                checker,
                &format!("{path}.tls_cert"),
                &cert,
                &["CERTIFICATE"],
            );
            let key = super::http::check_pem_file(
                checker,
                &format!("{path}.tls_key"),
                &key,
                &["PRIVATE KEY"],
            );
            cert.zip(key)
        }
    };
    if (tls_ca.is_some() || tls_client.is_some()) && url.starts_with("http://") {
        checker.issue(
            format!("{path}.url"),
            "TLS settings are given but the URL is http://: use https://",
        );
    }
    let timeout = checker.duration(
        format!("{path}.timeout"),
        raw.timeout.as_deref(),
        DEFAULT_REGISTRY_TIMEOUT,
    );
    (checker.issues.len() == before).then(|| Registry {
        name: name.to_string(),
        url,
        basic_auth,
        tls_ca,
        tls_client,
        timeout,
    })
}

/// Two keys of `path` that go together: both values, or `None` (with an
/// issue on the missing key when only one is set).
fn both_or_neither(
    checker: &mut Checker<'_>,
    path: &str,
    (a_key, a): (&str, Option<String>),
    (b_key, b): (&str, Option<String>),
) -> Option<(String, String)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        (Some(_), None) => {
            checker.issue(
                format!("{path}.{b_key}"),
                format!("missing: {a_key} needs {b_key}"),
            );
            None
        }
        (None, Some(_)) => {
            checker.issue(
                format!("{path}.{a_key}"),
                format!("missing: {b_key} needs {a_key}"),
            );
            None
        }
    }
}

/// Checks `flows[i].schemas` against the declared registries.
pub(super) fn check_schemas(
    checker: &mut Checker<'_>,
    path: &str,
    raw: RawSchemas,
    registries: &BTreeMap<String, Option<Registry>>,
) -> Option<SchemaSync> {
    let path = format!("{path}.schemas");
    let before = checker.issues.len();
    let mut registry = |field: &str, value: Option<String>| -> Option<Registry> {
        match value {
            None => {
                checker.issue(
                    format!("{path}.{field}"),
                    "missing: name a registry from [registries]",
                );
                None
            }
            Some(name) => match registries.get(&name) {
                // Declared but invalid: its own issues say why.
                Some(r) => r.clone(),
                None => {
                    let known: Vec<&str> = registries.keys().map(String::as_str).collect();
                    checker.issue(
                        format!("{path}.{field}"),
                        if known.is_empty() {
                            format!("unknown registry \"{name}\": declare it as [registries.{name}] with a url")
                        } else {
                            format!(
                                "unknown registry \"{name}\": declared registries are {}",
                                known.join(", ")
                            )
                        },
                    );
                    None
                }
            },
        }
    };
    let source = registry("source", raw.source);
    let target = registry("target", raw.target);
    if let (Some(s), Some(t)) = (&source, &target) {
        if s.url == t.url {
            checker.issue(
                format!("{path}.target"),
                format!(
                    "registries \"{}\" and \"{}\" have the same url: a registry cannot be copied into itself",
                    s.name, t.name
                ),
            );
        }
    }
    let patterns = raw.subjects.unwrap_or_else(|| vec![".*".to_string()]);
    if patterns.is_empty() {
        checker.issue(
            format!("{path}.subjects"),
            "empty: name at least one subject pattern (\".*\" for all)",
        );
    }
    checker.regexes(&format!("{path}.subjects"), &patterns);
    let mode = match raw.mode.as_deref() {
        None => {
            checker.issue(
                format!("{path}.mode"),
                "missing: use \"preserve-ids\" or \"translate-ids\"",
            );
            SchemaMode::PreserveIds
        }
        Some("preserve-ids") => SchemaMode::PreserveIds,
        Some("translate-ids") => SchemaMode::TranslateIds,
        Some(other) => {
            checker.issue(
                format!("{path}.mode"),
                format!("invalid mode \"{other}\": use \"preserve-ids\" or \"translate-ids\""),
            );
            SchemaMode::PreserveIds
        }
    };
    if checker.issues.len() != before {
        return None;
    }
    Some(SchemaSync {
        source: source?,
        target: target?,
        subjects: NameFilter::new(patterns, Vec::new()).ok()?,
        mode,
        required: raw.required.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use crate::{parse, SchemaMode, SchemaSync};

    const BASE: &str = r#"
[clusters.a]
bootstrap_servers = "127.0.0.1:9092"
[clusters.b]
bootstrap_servers = "127.0.0.1:9093"
[registries.old]
url = "http://127.0.0.1:8081/"
[registries.new]
url = "https://registry.example:8081"
username = "ferry"
password = "${env:FERRY_TEST_REGISTRY_PASSWORD}"
"#;

    fn schemas_of(flow_extra: &str) -> Result<Option<SchemaSync>, Vec<(String, String)>> {
        std::env::set_var("FERRY_TEST_REGISTRY_PASSWORD", "hunter2");
        let text = format!("{BASE}[[flows]]\nsource = \"a\"\ntarget = \"b\"\n{flow_extra}");
        super::super::first_flow(&text, |f| f.schemas.clone())
    }

    #[test]
    fn schemas_are_typed_with_their_registries() {
        assert!(schemas_of("").unwrap().is_none());
        let s = schemas_of(
            "schemas = { source = \"old\", target = \"new\", subjects = [\"orders-.*\"], mode = \"translate-ids\", required = true }\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.source.url, "http://127.0.0.1:8081");
        assert_eq!(s.mode, SchemaMode::TranslateIds);
        assert!(s.required);
        assert!(s.subjects.matches("orders-value"));
        assert!(!s.subjects.matches("payments-value"));
        let auth = s.target.basic_auth.as_ref().unwrap();
        assert_eq!(auth.password.expose(), "hunter2");
        // The password never shows in Debug output.
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn subjects_follow_their_topics_under_prefix_naming() {
        std::env::set_var("FERRY_TEST_REGISTRY_PASSWORD", "hunter2");
        let text = format!(
            "{BASE}[[flows]]\nsource = \"a\"\ntarget = \"b\"\ntopics = [\"orders\"]\ntopic_naming = \"prefix\"\n"
        );
        let flow = parse(&text, "t.toml", std::path::Path::new("."))
            .unwrap()
            .topology
            .flows
            .remove(0);
        assert_eq!(flow.remote_subject("orders-value"), "a.orders-value");
        assert_eq!(flow.remote_subject("orders-key"), "a.orders-key");
        // Not a topic the flow copies, or not TopicNameStrategy: unchanged.
        assert_eq!(flow.remote_subject("payments-value"), "payments-value");
        assert_eq!(flow.remote_subject("com.acme.Address"), "com.acme.Address");
    }

    #[test]
    fn bad_schema_keys_are_named() {
        let issues = schemas_of(
            "schemas = { source = \"nope\", target = \"new\", mode = \"keep\", subjects = [\"(\"] }\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"flows[0].schemas.source"), "{issues:?}");
        assert!(paths.contains(&"flows[0].schemas.mode"), "{issues:?}");
        assert!(
            paths.contains(&"flows[0].schemas.subjects[0]"),
            "{issues:?}"
        );
        let issues = schemas_of("schemas = { source = \"old\", target = \"new\" }\n").unwrap_err();
        assert_eq!(issues[0].0, "flows[0].schemas.mode");
        let issues = schemas_of(
            "schemas = { source = \"old\", target = \"old\", mode = \"preserve-ids\" }\n",
        )
        .unwrap_err();
        assert_eq!(issues[0].0, "flows[0].schemas.target");
    }

    #[test]
    fn bad_registries_are_named_without_their_password() {
        std::env::set_var("FERRY_TEST_REGISTRY_PASSWORD", "hunter2");
        let text = r#"
[clusters.a]
bootstrap_servers = "127.0.0.1:9092"
[clusters.b]
bootstrap_servers = "127.0.0.1:9093"
[registries.old]
url = "ftp://x"
username = "u"
[registries.new]
password = "${env:FERRY_TEST_REGISTRY_PASSWORD}"
[[flows]]
source = "a"
target = "b"
"#;
        let err = parse(text, "t.toml", std::path::Path::new(".")).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("registries.old.url"), "{shown}");
        assert!(shown.contains("registries.old.password"), "{shown}");
        assert!(shown.contains("registries.new.url"), "{shown}");
        assert!(shown.contains("registries.new.username"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
