//! One cluster's effective Java client properties → `[clusters.X.client]`
//! (librdkafka names) and `aws_msk_iam`.
//!
//! Key stores, JAAS logins and MSK IAM depend on several properties at
//! once, so they are translated here rather than property by property.
//! Every secret becomes a `${env:…}` reference; its value is dropped.

use std::collections::BTreeMap;

use crate::client::{self, Rule};
use crate::emit::{ClusterOut, Setting, Value};
use crate::jaas;
use crate::properties::Entry;
use crate::translate::{Ctx, StartFrom};

pub(crate) fn translate(
    ctx: &mut Ctx,
    alias: &str,
    bootstrap: Option<&str>,
    mut props: BTreeMap<String, Entry>,
    out: &mut ClusterOut,
) -> Option<StartFrom> {
    let msk_iam = is_msk_iam(&props);
    let oauthbearer = props
        .get("sasl.mechanism")
        .filter(|e| e.value.trim().eq_ignore_ascii_case("OAUTHBEARER"))
        .cloned();
    if msk_iam {
        msk_iam_settings(ctx, alias, bootstrap, &mut props, out);
    }
    key_stores(ctx, alias, &mut props, out);
    if let Some(entry) = props.remove("sasl.jaas.config") {
        jaas_login(ctx, alias, &entry, out);
    }
    let mut start_from = None;
    for (name, entry) in props {
        match client::rule(&name) {
            Some(Rule::Rename(librdkafka)) => {
                let value = if ferry_config::is_sensitive_name(librdkafka) {
                    ctx.env_var(alias, librdkafka, format!("the value of {} ({})", entry.key, ctx.place(&entry)))
                } else if entry.value.contains("${") {
                    ctx.warn(&entry, "a Kafka config provider reference: not translated; set the value by hand");
                    continue;
                } else {
                    Value::Str(entry.value.trim().to_string())
                };
                push(ctx, out, librdkafka, value, &entry);
            }
            Some(Rule::Kilobytes(librdkafka)) => match entry.value.trim().parse::<u64>() {
                Ok(bytes) => {
                    let kb = (bytes / 1024).max(1);
                    push(ctx, out, librdkafka, Value::Str(kb.to_string()), &entry);
                }
                Err(_) => ctx.problem(
                    Some(entry.line),
                    &entry.key,
                    format!("invalid byte count \"{}\"", entry.value.trim()),
                ),
            },
            Some(Rule::EndpointIdentification) => {
                let value = match entry.value.trim() {
                    "" => "none".to_string(),
                    other => other.to_ascii_lowercase(),
                };
                push(ctx, out, "ssl.endpoint.identification.algorithm", Value::Str(value), &entry);
            }
            Some(Rule::Security) => match name.as_str() {
                "sasl.mechanism" => {
                    push(ctx, out, "sasl.mechanism", Value::Str(entry.value.trim().to_string()), &entry)
                }
                "sasl.login.callback.handler.class"
                    if entry.value.trim().ends_with(".OAuthBearerLoginCallbackHandler") =>
                {
                    // Kafka's OIDC client-credentials login: librdkafka has
                    // it built in (sasl.oauthbearer.method = oidc, set from
                    // the JAAS options).
                }
                _ => ctx.warn(
                    &entry,
                    format!("{} not translated: a Java class; Ferry cannot load it", entry.key),
                ),
            },
            Some(Rule::AutoOffsetReset) => match entry.value.trim() {
                reset @ ("earliest" | "latest") => {
                    start_from = Some((reset.to_string(), ctx.from(&entry)));
                }
                _ => ctx.warn(
                    &entry,
                    "not translated: Ferry's flows[].start_from is earliest, latest, unconsumed or a timestamp",
                ),
            },
            Some(Rule::Skip(reason)) => ctx.warn(&entry, format!("not translated: {reason}")),
            None => ctx.warn(
                &entry,
                format!("not translated: no librdkafka equivalent of the Java client property {name} is known"),
            ),
        }
    }
    // librdkafka logs in with OAUTHBEARER only through its OIDC client
    // credentials flow; without them Ferry refuses the cluster.
    let oidc = out
        .client
        .iter()
        .any(|s| s.key == "sasl.oauthbearer.method");
    if let Some(entry) = oauthbearer.filter(|_| !msk_iam && !oidc) {
        ctx.warn(
            &entry,
            "OAUTHBEARER without clientId and clientSecret in sasl.jaas.config: set sasl.oauthbearer.method = \"oidc\", its client id and secret and sasl.oauthbearer.token.endpoint.url in the client section",
        );
    }
    start_from
}

fn push(ctx: &Ctx, out: &mut ClusterOut, key: &str, value: Value, entry: &Entry) {
    out.client.push(Setting::new(key, value, ctx.from(entry)));
}

/// MSK IAM as the aws-msk-iam-auth library configures it: mechanism
/// `AWS_MSK_IAM`, or OAUTHBEARER with its login callback handler.
fn is_msk_iam(props: &BTreeMap<String, Entry>) -> bool {
    let value = |k: &str| props.get(k).map(|e| e.value.trim().to_string());
    value("sasl.mechanism").as_deref() == Some("AWS_MSK_IAM")
        || value("sasl.login.callback.handler.class")
            .is_some_and(|c| c.starts_with("software.amazon.msk.auth.iam."))
        || value("sasl.jaas.config")
            .is_some_and(|j| j.contains("software.amazon.msk.auth.iam.IAMLoginModule"))
}

/// `aws_msk_iam = { region, profile }`: Ferry sets the protocol and the
/// mechanism and signs the tokens itself, so the Java SASL settings go.
fn msk_iam_settings(
    ctx: &mut Ctx,
    alias: &str,
    bootstrap: Option<&str>,
    props: &mut BTreeMap<String, Entry>,
    out: &mut ClusterOut,
) {
    let mut sources = Vec::new();
    for key in [
        "security.protocol",
        "sasl.mechanism",
        "sasl.client.callback.handler.class",
        "sasl.login.callback.handler.class",
    ] {
        if let Some(entry) = props.remove(key) {
            sources.push(ctx.from(&entry));
        }
    }
    let mut table = Vec::new();
    match bootstrap.and_then(msk_region) {
        Some(region) => table.push(("region".to_string(), Value::Str(region))),
        None => {
            let var = ctx.env_var(
                alias,
                "aws.region",
                format!("the AWS region of MSK cluster {alias}, e.g. us-east-1"),
            );
            ctx.warn_at(
                None,
                &format!("{alias}.bootstrap.servers"),
                "no AWS region in the MSK bootstrap servers: set the variable named in the output",
            );
            table.push(("region".to_string(), var));
        }
    }
    if let Some(entry) = props.remove("sasl.jaas.config") {
        sources.push(ctx.from(&entry));
        if let Some(login) = read_jaas(ctx, &entry) {
            for (option, value) in &login.options {
                match option.as_str() {
                    "awsProfileName" => table.push(("profile".into(), Value::Str(value.clone()))),
                    "awsDebugCreds" => {}
                    other => ctx.warn(
                        &entry,
                        format!("IAMLoginModule option {other} not translated: Ferry uses the standard AWS credential chain (environment, profile, web identity, container, instance role)"),
                    ),
                }
            }
        }
    }
    out.settings.push(Setting::new(
        "aws_msk_iam",
        Value::Table(table),
        format!(
            "MSK IAM: Ferry signs the tokens and sets SASL_SSL/OAUTHBEARER itself\n{}",
            sources.join("\n")
        ),
    ));
}

/// The region in an MSK broker address (`b-1.x.abc123.c2.kafka.eu-west-1.amazonaws.com`).
fn msk_region(bootstrap: &str) -> Option<String> {
    let host = bootstrap.split(',').next()?.trim();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let labels: Vec<&str> = host.split('.').collect();
    let at = labels
        .iter()
        .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
    let region = labels.get(at + 1)?;
    (labels.get(at + 2) == Some(&"amazonaws")).then(|| region.to_string())
}

/// Java trust and key stores: PEM trust stores and PKCS#12 key stores
/// translate; JKS (Java's default type) does not, and gets a warning and a
/// commented line to fill in.
fn key_stores(
    ctx: &mut Ctx,
    alias: &str,
    props: &mut BTreeMap<String, Entry>,
    out: &mut ClusterOut,
) {
    let store_type = |props: &BTreeMap<String, Entry>, key: &str| {
        props
            .get(key)
            .map_or("JKS".to_string(), |e| e.value.trim().to_ascii_uppercase())
    };
    let trust_type = store_type(props, "ssl.truststore.type");
    props.remove("ssl.truststore.type");
    let trust_password = props.remove("ssl.truststore.password");
    if let Some(entry) = props.remove("ssl.truststore.location") {
        if trust_type == "PEM" {
            push(
                ctx,
                out,
                "ssl.ca.location",
                Value::Str(entry.value.trim().to_string()),
                &entry,
            );
        } else {
            ctx.warn(
                &entry,
                format!("{trust_type} trust store not translated: librdkafka takes CA certificates as PEM; export them (keytool -exportcert -rfc, or openssl pkcs12 -nokeys) and set ssl.ca.location"),
            );
            out.todo.push(format!(
                "\"ssl.ca.location\" = \"/path/to/ca.pem\"   # TODO: PEM CA certificates of the trust store at {}",
                ctx.place(&entry)
            ));
        }
    }
    if let Some(entry) = trust_password {
        ctx.warn(
            &entry,
            "not translated: librdkafka reads PEM CA certificates without a password",
        );
    }

    let key_type = store_type(props, "ssl.keystore.type");
    props.remove("ssl.keystore.type");
    let key_password = props.remove("ssl.keystore.password");
    match props.remove("ssl.keystore.location") {
        Some(entry) if key_type == "PKCS12" => {
            push(
                ctx,
                out,
                "ssl.keystore.location",
                Value::Str(entry.value.trim().to_string()),
                &entry,
            );
            if let Some(pw) = key_password {
                let value = ctx.env_var(
                    alias,
                    "ssl.keystore.password",
                    format!("the password of the PKCS#12 key store ({})", ctx.place(&pw)),
                );
                push(ctx, out, "ssl.keystore.password", value, &pw);
            }
        }
        Some(entry) => {
            ctx.warn(
                &entry,
                format!("{key_type} key store not translated: librdkafka reads PKCS#12 key stores and PEM files; convert it (keytool -importkeystore -deststoretype PKCS12) and set ssl.keystore.location, or set ssl.certificate.location and ssl.key.location"),
            );
            out.todo.push(format!(
                "\"ssl.keystore.location\" = \"/path/to/client.p12\"   # TODO: PKCS#12 copy of the key store at {}",
                ctx.place(&entry)
            ));
            if let Some(pw) = key_password {
                ctx.warn(&pw, "not translated with its key store: set ssl.keystore.password with the PKCS#12 copy");
            }
        }
        None => {
            if let Some(pw) = key_password {
                ctx.warn(&pw, "not translated: no ssl.keystore.location");
            }
        }
    }
}

/// The login of a `sasl.jaas.config`. A value that is wholly a Kafka
/// config provider reference (`${file:/path:sasl.jaas.config}`, as Strimzi
/// writes them) cannot be read here: a warning, not a problem.
fn read_jaas(ctx: &mut Ctx, entry: &Entry) -> Option<jaas::LoginModule> {
    if entry.value.trim_start().starts_with("${") {
        ctx.warn(
            entry,
            "a Kafka config provider reference: not translated; set the login (sasl.username, sasl.password, ...) by hand",
        );
        return None;
    }
    match jaas::parse(&entry.value) {
        Ok(login) => Some(login),
        Err(why) => {
            ctx.problem(
                Some(entry.line),
                &entry.key,
                format!("cannot read the JAAS configuration: {why}"),
            );
            None
        }
    }
}

/// `sasl.jaas.config` → librdkafka's SASL settings, by login module.
fn jaas_login(ctx: &mut Ctx, alias: &str, entry: &Entry, out: &mut ClusterOut) {
    let Some(login) = read_jaas(ctx, entry) else {
        return;
    };
    let from = ctx.from(entry);
    let module = login.simple_name().to_string();
    let set = |out: &mut ClusterOut, key: &str, value: Value| {
        out.client.push(Setting::new(
            key,
            value,
            format!("{from} ({module} option)"),
        ));
    };
    let place = ctx.place(entry);
    let mut unknown = Vec::new();
    match login.simple_name() {
        "PlainLoginModule" | "ScramLoginModule" => {
            for (option, value) in &login.options {
                match option.as_str() {
                    "username" => set(out, "sasl.username", Value::Str(value.clone())),
                    "password" => {
                        let env = ctx.env_var(
                            alias,
                            "sasl.password",
                            format!("the SASL password of sasl.jaas.config ({place})"),
                        );
                        set(out, "sasl.password", env);
                    }
                    other => unknown.push(other.to_string()),
                }
            }
        }
        "OAuthBearerLoginModule" => {
            if login.options.contains_key("clientId") {
                set(out, "sasl.oauthbearer.method", Value::Str("oidc".into()));
            }
            for (option, value) in &login.options {
                match option.as_str() {
                    "clientId" => set(out, "sasl.oauthbearer.client.id", Value::Str(value.clone())),
                    "clientSecret" => {
                        let env = ctx.env_var(
                            alias,
                            "sasl.oauthbearer.client.secret",
                            format!("the OAuth client secret of sasl.jaas.config ({place})"),
                        );
                        set(out, "sasl.oauthbearer.client.secret", env);
                    }
                    "scope" => set(out, "sasl.oauthbearer.scope", Value::Str(value.clone())),
                    other => unknown.push(other.to_string()),
                }
            }
        }
        "Krb5LoginModule" => {
            for (option, value) in &login.options {
                match option.as_str() {
                    "keyTab" => set(out, "sasl.kerberos.keytab", Value::Str(value.clone())),
                    "principal" => set(out, "sasl.kerberos.principal", Value::Str(value.clone())),
                    "serviceName" => {
                        set(out, "sasl.kerberos.service.name", Value::Str(value.clone()))
                    }
                    // What librdkafka's kinit does anyway.
                    "useKeyTab" | "storeKey" | "useTicketCache" => {}
                    other => unknown.push(other.to_string()),
                }
            }
        }
        _ => {
            ctx.warn(
                entry,
                format!(
                    "login module {} not translated: a Java class; Ferry cannot load it",
                    login.class
                ),
            );
            return;
        }
    }
    for option in unknown {
        ctx.warn(
            entry,
            format!("{} option {option} not translated", login.simple_name()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msk_regions_come_from_broker_addresses() {
        assert_eq!(
            msk_region("b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            msk_region("boot-abc.c1.kafka-serverless.us-east-2.amazonaws.com:9098").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(msk_region("kafka.internal:9092"), None);
    }
}
