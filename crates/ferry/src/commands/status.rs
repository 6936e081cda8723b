//! `ferry status`: the running daemon's `/status`, as a table.

use std::path::Path;

use ferry_migrate::daemon::{get, Endpoint};

use crate::exit;

pub fn status(path: &Path, json: bool) -> u8 {
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let addr = match Endpoint::of(&loaded.topology.http) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
    };
    let token = loaded.topology.http.control_token.as_ref();
    let body = match get(&addr, "/status", token) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read /status from the daemon at {addr} (http.listen): {e}; is ferry running with this topology?");
            return exit::FAILURE;
        }
    };
    let doc: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "error: the daemon at {addr} answered /status with something that is not JSON: {e}"
            );
            return exit::FAILURE;
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or(body));
    } else {
        print!("{}", table(&doc));
    }
    exit::OK
}

fn table(doc: &serde_json::Value) -> String {
    let mut out = format!(
        "ready: {}   config digest: {}\n",
        doc["ready"]
            .as_bool()
            .map_or("?", |r| if r { "yes" } else { "no" }),
        doc["config_digest"].as_str().unwrap_or("?")
    );
    for flow in doc["flows"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\nflow {}  state {}{}\n",
            flow["flow"].as_str().unwrap_or("?"),
            flow["state"].as_str().unwrap_or("?"),
            flow["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "  {:<32} {:<40} {:>5} {:>12} {:>10} {:>8}  {}\n",
            "topic", "target topic", "parts", "records", "lag", "restarts", "last error"
        ));
        for t in flow["topics"].as_array().into_iter().flatten() {
            let lag: i64 = t["partition_status"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["lag_records"].as_i64())
                .sum();
            out.push_str(&format!(
                "  {:<32} {:<40} {:>5} {:>12} {:>10} {:>8}  {}\n",
                t["topic"].as_str().unwrap_or("?"),
                t["target_topic"].as_str().unwrap_or("?"),
                t["partitions"].as_i64().unwrap_or(0),
                t["records_replicated"].as_u64().unwrap_or(0),
                lag,
                t["restarts"].as_u64().unwrap_or(0),
                t["last_error"].as_str().unwrap_or("-")
            ));
        }
        for w in flow["warnings"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  warning: {}\n",
                w["message"].as_str().unwrap_or("?")
            ));
        }
        let cut_over: Vec<String> = flow["cut_over"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "  cut over: {}  (at {}, by {})\n",
                    c["topic"].as_str().unwrap_or("?"),
                    c["at"].as_str().unwrap_or("?"),
                    c["by"].as_str().unwrap_or("?")
                )
            })
            .collect();
        out.push_str(&cut_over.concat());
    }
    out
}
