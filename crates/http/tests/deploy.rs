//! Holds the files in `deploy/` to what Ferry actually serves:
//!
//! - every `ferry_*` metric the Grafana dashboard and the alert rules query is
//!   one `Metrics` exports (a renamed metric would otherwise leave an empty
//!   panel or an alert that can never fire);
//! - `promtool` accepts the rules and their unit tests pass;
//! - the probe and scrape paths of the Kubernetes manifests answer 200, and
//!   the stop timeouts leave room for Ferry's 30 s drain;
//! - Kubernetes runs several replicas and disrupts at most one at a time.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_http::{MetricKind, MetricsOptions, METRICS};
use util::Running;

/// How CI gets `promtool`; printed when it is missing.
const PROMTOOL_INSTALL: &str =
    "apt-get update && apt-get install -y --no-install-recommends prometheus";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `ferry_[a-z_]+` word in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("ferry_") {
        let start = i + found;
        let mut end = start + "ferry_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        // Part of a longer identifier (`xferry_…`) is not a metric name.
        let standalone =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if standalone && end > start + "ferry_".len() {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

/// The documented family a series name belongs to, if any.
fn family_of(series: &str) -> Option<&'static str> {
    METRICS.iter().map(|m| m.name).find(|&name| {
        series == name
            || METRICS.iter().any(|m| {
                m.name == name
                    && m.kind == MetricKind::Histogram
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| series.strip_suffix(suffix) == Some(name))
            })
    })
}

fn assert_all_exported(what: &str, names: &BTreeSet<String>) {
    assert!(!names.is_empty(), "{what}: no ferry_ metric found at all");
    let unknown: Vec<&String> = names.iter().filter(|n| family_of(n).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "{what} uses metrics ferry-http does not export: {unknown:?}\nexported: {:?}",
        METRICS.iter().map(|m| m.name).collect::<Vec<_>>()
    );
}

/// The PromQL of every `expr:` in a rules file, including `expr: |` blocks.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let key = line.trim_start().trim_start_matches("- ");
        let Some(rest) = key.strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            // A block scalar holds every following line indented deeper than
            // the key itself (which sits after any `- `).
            let indent = line.len() - key.len();
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push('\n');
                lines.next();
            }
            exprs.push(block);
        } else {
            exprs.push(rest.trim_matches(|c| c == '\'' || c == '"').to_string());
        }
    }
    exprs
}

fn collect_strings(value: &serde_json::Value, keys: &[&str], out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if keys.contains(&k.as_str()) => {
                        out.push(s.clone())
                    }
                    _ => collect_strings(v, keys, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_strings(v, keys, out);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboard_queries_only_exported_metrics_and_shows_all_of_them() {
    let text = read("grafana/ferry-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).expect("ferry-dashboard.json is valid JSON");

    // Panel queries, and the template variables' queries.
    let mut queries = Vec::new();
    collect_strings(&dashboard, &["expr", "definition"], &mut queries);
    let names: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    assert_all_exported("deploy/grafana/ferry-dashboard.json", &names);

    let shown: BTreeSet<&str> = names.iter().filter_map(|n| family_of(n)).collect();
    let missing: Vec<&str> = METRICS
        .iter()
        .map(|m| m.name)
        .filter(|n| !shown.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard shows no panel for {missing:?}"
    );
}

#[test]
fn dashboard_is_importable_with_a_prometheus_input() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana/ferry-dashboard.json")).unwrap();
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        let pos = &panel["gridPos"];
        let (x, w) = (pos["x"].as_u64().unwrap(), pos["w"].as_u64().unwrap());
        assert!(x + w <= 24, "{title} is wider than the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            assert!(
                target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                "{title}"
            );
        }
    }
}

#[test]
fn alert_rules_query_only_exported_metrics() {
    let rules = read("prometheus/ferry-alerts.yml");
    let exprs = rule_exprs(&rules);
    assert!(
        exprs.len() >= 6,
        "expected at least 6 alerts, found {exprs:?}"
    );
    let names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert_all_exported("deploy/prometheus/ferry-alerts.yml", &names);
    for needed in [
        "ferry_replication_lag_records",
        "ferry_records_replicated_total",
        "ferry_task_restarts_total",
        "ferry_config_reloads_total",
        "ferry_ready",
        "ferry_errors_total",
    ] {
        assert!(names.contains(needed), "no alert on {needed}");
    }

    // The rule unit tests must feed the rules real series names too.
    let tests = read("prometheus/ferry-alerts.test.yml");
    let series: BTreeSet<String> = tests
        .lines()
        .filter(|l| l.trim_start().starts_with("- series:"))
        .flat_map(metric_names)
        .collect();
    assert_all_exported("deploy/prometheus/ferry-alerts.test.yml", &series);
}

fn promtool(args: &[&str]) -> std::process::Output {
    let program = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    match Command::new(&program)
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
    {
        Ok(output) => output,
        // Fail, never skip: a skipped check is a check nobody runs.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` not found, so the alert rules cannot be checked.\n\
             Install it with:  {PROMTOOL_INSTALL}\n\
             (Debian's `prometheus` package installs /usr/bin/promtool), \
             or point PROMTOOL at a promtool binary."
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

fn assert_success(what: &str, output: std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_alert_rules() {
    assert_success(
        "promtool check rules ferry-alerts.yml",
        promtool(&["check", "rules", "ferry-alerts.yml"]),
    );
}

#[test]
fn alert_rule_unit_tests_pass() {
    assert_success(
        "promtool test rules ferry-alerts.test.yml",
        promtool(&["test", "rules", "ferry-alerts.test.yml"]),
    );
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // Grafana's variables replaced by what they expand to, each query wrapped
    // as a recording rule, so promtool's parser checks every panel query.
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana/ferry-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    collect_strings(&dashboard, &["expr"], &mut exprs);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        let promql = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$flow", ".*")
            .replace("$topic", ".*");
        assert!(!promql.contains('$'), "unknown variable in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&promql).unwrap()
        ));
    }
    let path =
        std::env::temp_dir().join(format!("ferry-dashboard-{}.rules.yml", std::process::id()));
    std::fs::write(&path, rules).unwrap();
    let output = promtool(&["check", "rules", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_success("promtool check rules (the dashboard's queries)", output);
}

/// The values of `key: value` lines (YAML) anywhere in `text`.
fn yaml_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim_start().trim_start_matches("- ").strip_prefix(key))
        .filter_map(|rest| rest.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .collect()
}

#[test]
fn kubernetes_probes_and_scrape_path_answer() {
    let deployment = read("kubernetes/deployment.yaml");
    let mut paths = yaml_values(&deployment, "path");
    paths.extend(yaml_values(&deployment, "prometheus.io/path"));
    assert!(
        paths.contains(&"/health/live") && paths.contains(&"/health/ready"),
        "{paths:?}"
    );
    assert!(paths.contains(&"/metrics"), "{paths:?}");

    let server = Running::start(MetricsOptions::default());
    for path in paths {
        assert_eq!(server.get(path).status, 200, "GET {path}");
    }

    // One port everywhere: topology listen, container, service, scrape, image.
    assert!(yaml_values(&deployment, "containerPort").contains(&"9644"));
    assert!(yaml_values(&deployment, "prometheus.io/port").contains(&"9644"));
    assert!(yaml_values(&read("kubernetes/service.yaml"), "port").contains(&"9644"));
    assert!(read("kubernetes/topology.toml").contains("listen = \"0.0.0.0:9644\""));
    assert!(read("container/Dockerfile").contains("EXPOSE 9644"));
}

#[test]
fn stop_timeouts_leave_room_for_the_30s_drain() {
    let grace: u64 = yaml_values(
        &read("kubernetes/deployment.yaml"),
        "terminationGracePeriodSeconds",
    )
    .first()
    .expect("terminationGracePeriodSeconds")
    .parse()
    .unwrap();
    assert!(grace > 30, "terminationGracePeriodSeconds {grace}");
    let topology = read("kubernetes/topology.toml");
    let drain = topology
        .lines()
        .find_map(|l| l.trim().strip_prefix("shutdown_timeout = "))
        .map(|v| v.trim_matches('"'))
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(30);
    assert!(
        grace > drain,
        "terminationGracePeriodSeconds {grace} must exceed engine.shutdown_timeout {drain}s"
    );

    for name in ["systemd/ferry.service", "systemd/ferry@.service"] {
        let unit = read(name);
        let stop: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .unwrap_or_else(|| panic!("{name}: TimeoutStopSec"))
            .trim()
            .parse()
            .unwrap();
        assert!(stop > 30, "{name}: TimeoutStopSec {stop}");
        let reload = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecReload="))
            .unwrap_or_else(|| panic!("{name}: ExecReload"));
        assert!(
            reload.starts_with("/bin/sh -c '")
                && reload.contains("ferry check")
                && reload.contains("&&"),
            "{name}: systemd runs no shell: `&&` needs /bin/sh -c: {reload}"
        );
    }
}

/// The lines of a unit from its hardening block on.
fn hardening(unit: &str) -> Vec<&str> {
    unit.lines()
        .skip_while(|l| !l.starts_with("# --- Hardening"))
        .collect()
}

#[test]
fn systemd_template_runs_one_topology_on_its_own_port() {
    let template = read("systemd/ferry@.service");
    let start = template
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    // One topology file for every instance (different files would be a
    // topology mismatch within the group), the port from the instance name.
    assert!(
        start.contains("-c /etc/ferry/topology.toml") && start.contains("--http-listen "),
        "{start}"
    );
    assert!(start.ends_with(":%i"), "{start}");
    let single = read("systemd/ferry.service");
    assert!(!hardening(&single).is_empty());
    assert_eq!(
        hardening(&template),
        hardening(&single),
        "ferry@.service and ferry.service must be hardened alike"
    );
}

#[test]
fn kubernetes_runs_several_replicas_one_disruption_at_a_time() {
    let deployment = read("kubernetes/deployment.yaml");
    assert_eq!(yaml_values(&deployment, "replicas"), ["3"]);
    assert!(yaml_values(&deployment, "type").contains(&"RollingUpdate"));
    assert_eq!(yaml_values(&deployment, "maxUnavailable"), ["1"]);

    let kustomization = read("kubernetes/kustomization.yaml");
    let resources: Vec<&str> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    assert!(
        resources.contains(&"poddisruptionbudget.yaml"),
        "{resources:?}"
    );
    let budget = read("kubernetes/poddisruptionbudget.yaml");
    assert_eq!(yaml_values(&budget, "kind"), ["PodDisruptionBudget"]);
    assert_eq!(yaml_values(&budget, "maxUnavailable"), ["1"]);
    // The budget must select the Deployment's pods.
    assert!(yaml_values(&budget, "app.kubernetes.io/name").contains(&"ferry"));
}

#[test]
fn metric_name_scan() {
    let names = metric_names(
        "histogram_quantile(0.9, rate(ferry_replication_latency_seconds_bucket[5m])) \
         / xferry_not_this + ferry_ready",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["ferry_ready", "ferry_replication_latency_seconds_bucket"]
    );
    assert_eq!(
        family_of("ferry_replication_latency_seconds_count"),
        Some("ferry_replication_latency_seconds")
    );
    assert_eq!(family_of("ferry_ready_bucket"), None);
    assert_eq!(
        rule_exprs("  - expr: |\n      a > 0\n        and b\n    for: 5m\n  - expr: up == 0\n"),
        ["a > 0\nand b\n", "up == 0"]
    );
}
