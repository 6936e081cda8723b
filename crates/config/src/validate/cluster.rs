//! `[clusters.NAME]`: bootstrap servers, client properties and the SASL
//! token sources (AWS MSK IAM, OIDC).

use super::*;

/// Properties Ferry sets itself; letting users override them would break the
/// delivery guarantees (offsets are Ferry's, reads are read_committed).
const MANAGED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
];

/// Cluster names end up in topic names (`primary.orders`) and metric labels.
fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_bootstrap(list: &str) -> Result<(), String> {
    if list.trim().is_empty() {
        return Err("must list at least one host:port".into());
    }
    for server in list.split(',').map(str::trim) {
        let server = server
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(server);
        let Some((host, port)) = server.rsplit_once(':') else {
            return Err(format!("\"{server}\" is not host:port"));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "\"{server}\" is not host:port with a port from 1 to 65535"
            ));
        }
    }
    Ok(())
}

pub(super) fn check_cluster(
    checker: &mut Checker<'_>,
    name: &str,
    raw: RawCluster,
) -> Option<Cluster> {
    let path = format!("clusters.{name}");
    let before = checker.issues.len();
    if !valid_cluster_name(name) {
        checker.issue(
            &path,
            format!(
                "invalid cluster name \"{name}\": use letters, digits, '_' and '-' (at most 64)"
            ),
        );
    }
    let bootstrap = match raw.bootstrap_servers {
        None => {
            checker.issue(
                format!("{path}.bootstrap_servers"),
                "missing (e.g. \"broker1:9092,broker2:9092\")",
            );
            String::new()
        }
        Some(b) => {
            let key = format!("{path}.bootstrap_servers");
            match checker.interpolated(&key, &b) {
                Some((value, _)) => {
                    if let Err(e) = valid_bootstrap(&value) {
                        checker.issue(key, e);
                    }
                    value
                }
                None => String::new(),
            }
        }
    };
    let mut client = ClientProperties::default();
    for (key, value) in raw.client {
        let key_path = format!("{path}.client.\"{key}\"");
        if MANAGED_PROPERTIES.contains(&key.as_str()) {
            let hint = if key == "bootstrap.servers" {
                "set bootstrap_servers on the cluster instead"
            } else {
                "Ferry manages it to keep its delivery guarantees"
            };
            checker.issue(
                key_path,
                format!("property \"{key}\" cannot be set here: {hint}"),
            );
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                checker.issue(key_path, "must be a string, number or boolean");
                continue;
            }
        };
        if let Some((value, secret)) = checker.interpolated(&key_path, &text) {
            client.insert(key, value, secret);
        }
    }
    let msk_iam_configured = raw.aws_msk_iam.is_some();
    let aws_msk_iam = raw
        .aws_msk_iam
        .and_then(|iam| check_aws_msk_iam(checker, &path, iam, &client));
    // MSK IAM is an OAUTHBEARER provider of its own (its rules above).
    if !msk_iam_configured {
        check_oauthbearer(checker, &path, &client);
    }
    (checker.issues.len() == before).then(|| Cluster {
        name: name.to_string(),
        bootstrap_servers: bootstrap,
        client,
        aws_msk_iam,
    })
}

/// MSK IAM owns the cluster's SASL settings: Ferry sets SASL_SSL and
/// OAUTHBEARER and supplies the token, so any other mechanism, a username or
/// password, or another OAUTHBEARER token source is a contradiction.
fn check_aws_msk_iam(
    checker: &mut Checker<'_>,
    path: &str,
    raw: RawAwsMskIam,
    client: &ClientProperties,
) -> Option<AwsMskIam> {
    let iam_path = format!("{path}.aws_msk_iam");
    for (key, value) in client.iter_exposed() {
        let conflict = match key {
            "sasl.username" | "sasl.password" => Some(format!(
                "cannot be set together with {iam_path}: MSK IAM signs in with AWS credentials, not a username and password"
            )),
            "sasl.mechanism" | "sasl.mechanisms" if !value.eq_ignore_ascii_case("OAUTHBEARER") => {
                Some(format!(
                    "\"{value}\" conflicts with {iam_path}, which uses OAUTHBEARER (omit it; Ferry sets it)"
                ))
            }
            "security.protocol" if !value.eq_ignore_ascii_case("SASL_SSL") => Some(format!(
                "\"{value}\" conflicts with {iam_path}: MSK IAM listeners use SASL_SSL (omit it; Ferry sets it)"
            )),
            k if k.starts_with("sasl.oauthbearer.") || k == "enable.sasl.oauthbearer.unsecure.jwt" => {
                Some(format!(
                    "cannot be set together with {iam_path}, which provides the OAUTHBEARER token itself"
                ))
            }
            _ => None,
        };
        if let Some(message) = conflict {
            checker.issue(format!("{path}.client.\"{key}\""), message);
        }
    }
    let region = match raw.region {
        None => {
            checker.issue(
                format!("{iam_path}.region"),
                "missing: the cluster's AWS region (e.g. \"us-east-1\")",
            );
            None
        }
        Some(r) => {
            let key = format!("{iam_path}.region");
            checker
                .interpolated(&key, &r)
                .map(|(v, _)| v)
                .filter(|v| {
                    let ok = valid_aws_region(v);
                    if !ok {
                        checker.issue(
                            &key,
                            format!("invalid region \"{v}\": expected an AWS region code such as \"us-east-1\" or \"eu-central-1\""),
                        );
                    }
                    ok
                })
        }
    };
    let profile = match raw.profile {
        Some(p) if p.trim().is_empty() => {
            checker.issue(
                format!("{iam_path}.profile"),
                "must name a profile of the shared AWS files, or be omitted",
            );
            None
        }
        Some(p) => checker
            .interpolated(&format!("{iam_path}.profile"), &p)
            .map(|(v, _)| v),
        None => None,
    };
    Some(AwsMskIam {
        region: region?,
        profile,
    })
}

/// `us-east-1`, `eu-central-1`, `us-gov-west-1`, `cn-north-1`: lower-case
/// words joined by dashes, ending in a number. The region is signed into
/// every token, so a typo would only surface as a rejected login.
pub(crate) fn valid_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// What an OIDC client-credentials login needs, each under its librdkafka
/// name and, where librdkafka has one, its alias.
const OIDC_REQUIRED: &[(&str, Option<&str>)] = &[
    (
        "sasl.oauthbearer.client.id",
        Some("sasl.oauthbearer.client.credentials.client.id"),
    ),
    (
        "sasl.oauthbearer.client.secret",
        Some("sasl.oauthbearer.client.credentials.client.secret"),
    ),
    ("sasl.oauthbearer.token.endpoint.url", None),
];

/// SASL OAUTHBEARER needs someone to fetch tokens. Ferry registers no token
/// callback, so the provider is librdkafka's OIDC client credentials login;
/// without it the client would never authenticate, and an OIDC login with a
/// key missing fails only once the daemon runs. Every gap is named at once.
fn check_oauthbearer(checker: &mut Checker<'_>, path: &str, client: &ClientProperties) {
    let mechanism = client
        .get("sasl.mechanism")
        .or_else(|| client.get("sasl.mechanisms"));
    if !mechanism.is_some_and(|m| m.expose().trim().eq_ignore_ascii_case("OAUTHBEARER")) {
        return;
    }
    let key_path = |key: &str| format!("{path}.client.\"{key}\"");
    match client.get("sasl.oauthbearer.method") {
        Some(m) if m.expose().trim().eq_ignore_ascii_case("oidc") => {}
        Some(m) => checker.issue(
            key_path("sasl.oauthbearer.method"),
            format!(
                "\"{}\" cannot authenticate with sasl.mechanism OAUTHBEARER: set \"oidc\" \
                 (OAuth 2.0 client credentials from a token endpoint)",
                m.display()
            ),
        ),
        None => checker.issue(
            key_path("sasl.oauthbearer.method"),
            "missing: sasl.mechanism OAUTHBEARER needs a token provider; set \"oidc\" \
             (OAuth 2.0 client credentials from a token endpoint)",
        ),
    }
    for (key, alias) in OIDC_REQUIRED {
        let given = client
            .get(key)
            .or_else(|| alias.and_then(|a| client.get(a)))
            .is_some_and(|v| !v.expose().trim().is_empty());
        // A value that failed to load (unset `${env:…}`) is already reported.
        let reported = checker.issues.iter().any(|i| i.path == key_path(key));
        if !given && !reported {
            checker.issue(
                key_path(key),
                "missing: sasl.mechanism OAUTHBEARER with sasl.oauthbearer.method \"oidc\" needs it",
            );
        }
    }
}
