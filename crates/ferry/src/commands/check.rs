//! `ferry check`: validate, summarise, optionally connect.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ferry_admin::RetryPolicy;
use ferry_config::{Flow, StartFrom, Topology, DEFAULT_TOPIC_SEPARATOR};

use crate::exit;

/// `--connect` retries a cluster that answers nothing (a broker still
/// starting) for up to 30 s beyond the first 10 s attempt.
const PROBE_RETRY: RetryPolicy = RetryPolicy {
    deadline: Duration::from_secs(30),
    ..RetryPolicy::COMMAND
};

pub fn check(path: &Path, connect: bool, timeout: Duration) -> u8 {
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let topology = &loaded.topology;
    // The HTTPS certificate and key are parsed in full, as `ferry run`
    // will: a key that does not match its certificate is bad input.
    if let Some(files) = &topology.http.tls {
        if let Err(e) = ferry_http::TlsIdentity::read(&files.cert, &files.key) {
            eprintln!("error: {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
    }
    print!("{}", summary(topology));
    if !connect {
        println!("ok: {} is valid", path.display());
        return exit::OK;
    }
    // librdkafka's own warnings (TLS, SASL) are worth seeing while probing.
    crate::logging::init(&topology.log);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAILURE;
        }
    };
    // Probe every cluster at once: a check is as slow as the slowest
    // cluster, not the sum of their timeouts.
    let clusters: Vec<_> = topology.clusters.values().collect();
    let results =
        rt.block_on(futures::future::join_all(clusters.iter().map(|c| {
            ferry_supervisor::clients::probe(c, timeout, &PROBE_RETRY)
        })));
    let mut failed = false;
    let mut answered = BTreeSet::new();
    for (cluster, result) in clusters.iter().zip(results) {
        match result {
            Ok(r) => {
                println!(
                    "connected: cluster {} ({} brokers, {} topics)",
                    cluster.name, r.brokers, r.topics
                );
                answered.insert(cluster.name.as_str());
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    // A target that did not answer is already reported.
    let exactly_once: Vec<&Flow> = topology
        .flows
        .iter()
        .filter(|f| f.exactly_once() && answered.contains(f.target.as_str()))
        .collect();
    let results = rt.block_on(futures::future::join_all(exactly_once.iter().map(|f| {
        ferry_supervisor::clients::probe_transactions(
            &topology.clusters[&f.target],
            f,
            &topology.engine.transactional_id_prefix,
            timeout,
        )
    })));
    for (flow, result) in exactly_once.iter().zip(results) {
        match result {
            Ok(()) => println!(
                "transactions: cluster {} supports them (flow {}, exactly-once)",
                flow.target,
                flow.id()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        exit::FAILURE
    } else {
        println!("ok: {} is valid and every cluster answered", path.display());
        exit::OK
    }
}

fn summary(t: &Topology) -> String {
    let mut out = format!("clusters ({}):\n", t.clusters.len());
    for c in t.clusters.values() {
        let auth = match &c.aws_msk_iam {
            Some(iam) => format!(
                ", AWS MSK IAM in {}{}",
                iam.region,
                iam.profile
                    .as_deref()
                    .map(|p| format!(" with profile {p}"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {:<16} {} ({} client properties{auth})\n",
            c.name,
            c.bootstrap_servers,
            c.client.len()
        ));
    }
    if !t.registries.is_empty() {
        out.push_str(&format!("registries ({}):\n", t.registries.len()));
    }
    for r in t.registries.values() {
        // The user name is shown, never the password.
        let auth = r
            .basic_auth
            .as_ref()
            .map(|a| format!(", basic auth as {}", a.username))
            .unwrap_or_default();
        let tls = match (&r.tls_ca, &r.tls_client) {
            (_, Some(_)) => ", client certificate",
            (Some(_), None) => ", own CA",
            (None, None) => "",
        };
        out.push_str(&format!("  {:<16} {}{auth}{tls}\n", r.name, r.url));
    }
    out.push_str(&format!("flows ({}):\n", t.flows.len()));
    for f in &t.flows {
        let start = match f.start_from {
            StartFrom::Earliest => "earliest".to_string(),
            StartFrom::Latest => "latest".to_string(),
            StartFrom::Unconsumed => "unconsumed".to_string(),
            StartFrom::Timestamp(ms) => format!("timestamp {ms} ms"),
        };
        let delivery = if f.exactly_once() {
            format!(
                "{} (transaction_interval {:?})",
                f.delivery.as_str(),
                f.transaction_interval
            )
        } else {
            f.delivery.as_str().to_string()
        };
        let mut naming = format!("{:?}", f.topic_naming);
        if f.topic_separator != DEFAULT_TOPIC_SEPARATOR {
            naming.push_str(&format!(" (separator {:?})", f.topic_separator));
        }
        for rule in &f.rename {
            naming.push_str(&format!(", rename {:?} -> {:?}", rule.from(), rule.to()));
        }
        out.push_str(&format!(
            "  {:<24} topics {:?} except {:?}, naming {naming}, start {}, checkpoints every {:?}, delivery {delivery}{}\n",
            f.id().to_string(),
            f.topics.include_patterns(),
            f.topics.exclude_patterns(),
            start,
            f.checkpoint_interval,
            if f.enabled { "" } else { " (disabled)" }
        ));
        if let Some(s) = &f.schemas {
            out.push_str(&format!(
                "  {:<24} schemas {} -> {}, subjects {:?}, {}{}\n",
                "",
                s.source.name,
                s.target.name,
                s.subjects.include_patterns(),
                s.mode.as_str(),
                if s.required { ", required" } else { "" }
            ));
        }
    }
    out.push_str(&format!("http: {}\n", t.http.listen));
    out
}
