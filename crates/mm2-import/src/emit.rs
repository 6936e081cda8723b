//! The translated clusters and flows as TOML, each value under a comment
//! saying where it came from.

use std::fmt::Write as _;

use crate::EnvVar;

/// A value in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A plain string. Strings Ferry interpolates get `${` escaped.
    Str(String),
    /// `"${env:NAME}"`: a secret the operator provides.
    Env(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
    /// An inline table (`aws_msk_iam = { region = "…" }`).
    Table(Vec<(String, Value)>),
}

/// One `key = value` with the comment above it.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub comment: String,
}

impl Setting {
    pub fn new(key: impl Into<String>, value: Value, comment: impl Into<String>) -> Self {
        Setting {
            key: key.into(),
            value,
            comment: comment.into(),
        }
    }
}

/// `[clusters.NAME]`.
#[derive(Debug, Clone, Default)]
pub struct ClusterOut {
    pub name: String,
    /// `bootstrap_servers`, `aws_msk_iam`.
    pub settings: Vec<Setting>,
    /// `[clusters.NAME.client]`, keys are librdkafka property names.
    pub client: Vec<Setting>,
    /// Comment lines for what the operator must add by hand (a PEM CA for a
    /// Java trust store).
    pub todo: Vec<String>,
}

/// `[[flows]]`.
#[derive(Debug, Clone, Default)]
pub struct FlowOut {
    pub settings: Vec<Setting>,
}

/// The whole topology text.
pub fn render(
    file_name: &str,
    clusters: &[ClusterOut],
    flows: &[FlowOut],
    env_vars: &[EnvVar],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Ferry topology translated from the MirrorMaker 2 file {file_name} by `ferry import-mm2`.\n\
         # Review the warnings printed with it: they name every property not translated."
    );
    if !env_vars.is_empty() {
        out.push_str(
            "#\n# It reads these environment variables (secrets, and values the file did not\n\
             # give); set them before `ferry check` or `ferry run`:\n",
        );
        for s in env_vars {
            let _ = writeln!(out, "#   {}: {}", s.name, s.holds);
        }
    }
    for cluster in clusters {
        let _ = writeln!(out, "\n[clusters.{}]", cluster.name);
        write_settings(&mut out, &cluster.settings, false);
        if !cluster.client.is_empty() || !cluster.todo.is_empty() {
            let _ = writeln!(out, "\n[clusters.{}.client]", cluster.name);
            // By name, as librdkafka's documentation lists them.
            let mut client = cluster.client.clone();
            client.sort_by(|a, b| a.key.cmp(&b.key));
            write_settings(&mut out, &client, true);
            for line in &cluster.todo {
                let _ = writeln!(out, "# {line}");
            }
        }
    }
    for flow in flows {
        out.push_str("\n[[flows]]\n");
        write_settings(&mut out, &flow.settings, false);
    }
    out
}

fn write_settings(out: &mut String, settings: &[Setting], quote_keys: bool) {
    for s in settings {
        for line in s.comment.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let key = if quote_keys {
            basic_string(&s.key)
        } else {
            s.key.clone()
        };
        let _ = writeln!(out, "{key} = {}", value(&s.value));
    }
}

fn value(v: &Value) -> String {
    match v {
        // Ferry expands `${…}` in client values and bootstrap servers;
        // `$${` keeps a literal `${`.
        Value::Str(s) => string(&s.replace("${", "$${")),
        Value::Env(name) => basic_string(&format!("${{env:{name}}}")),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|s| string(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Table(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(k, v)| format!("{k} = {}", value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A TOML literal string (`'…'`, no escapes: regexes stay readable) where
/// possible, else a basic string.
fn string(s: &str) -> String {
    if s.contains('\'') || s.chars().any(char::is_control) {
        basic_string(s)
    } else {
        format!("'{s}'")
    }
}

fn basic_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        for s in [
            "orders\\..*",
            "it's",
            "tab\there",
            "quote\"back\\slash",
            "é\u{1}",
        ] {
            let text = format!("k = {}\nb = {}\n", string(s), basic_string(s));
            let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed["k"].as_str(), Some(s));
            assert_eq!(parsed["b"].as_str(), Some(s));
        }
    }

    #[test]
    fn interpolation_is_escaped_in_plain_values_only() {
        assert_eq!(value(&Value::Str("a${b}".into())), "'a$${b}'");
        assert_eq!(value(&Value::Env("X_Y".into())), "\"${env:X_Y}\"");
    }
}
