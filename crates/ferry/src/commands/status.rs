//! `ferry status`: the running daemon's `/status`, as a table.

use std::path::Path;

use ferry_http::client;
use ferry_http::StatusDocument;
use ferry_migrate::daemon;

use crate::exit;

pub fn status(path: &Path, json: bool) -> u8 {
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let addr = match daemon::endpoint(&loaded.topology.http) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
    };
    let token = loaded.topology.http.control_token.as_ref();
    let body = match client::request(
        &addr,
        "GET",
        "/status",
        None,
        token.map(|t| t.expose()),
        client::STATUS_TIMEOUT,
    )
    .and_then(client::Reply::ok_body)
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read /status from the daemon at {addr} (http.listen): {e}; is ferry running with this topology?");
            return exit::FAILURE;
        }
    };
    // `--json` prints the document as served, whatever this version knows
    // of it; the table needs every field it shows.
    let printed = if json {
        serde_json::from_str::<serde_json::Value>(&body)
            .map(|doc| serde_json::to_string_pretty(&doc).unwrap_or(body))
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_str::<StatusDocument>(&body)
            .map(|doc| table(&doc))
            .map_err(|e| e.to_string())
    };
    match printed {
        Ok(text) if json => println!("{text}"),
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!(
                "error: the daemon at {addr} answered /status with something that is not a status document: {e}"
            );
            return exit::FAILURE;
        }
    }
    exit::OK
}

fn table(doc: &StatusDocument) -> String {
    let mut out = format!(
        "ready: {}   config digest: {}\n",
        if doc.ready { "yes" } else { "no" },
        doc.config_digest
    );
    for flow in &doc.flows {
        out.push_str(&format!(
            "\nflow {}  state {}{}\n",
            flow.flow,
            flow.state,
            flow.last_error
                .as_ref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        ));
        if let Some(m) = &flow.membership {
            out.push_str(&membership_lines(m));
        }
        out.push_str(&format!(
            "  {:<32} {:<40} {:>5} {:>12} {:>10} {:>8}  {}\n",
            "topic", "target topic", "parts", "records", "lag", "restarts", "last error"
        ));
        for t in &flow.topics {
            let lag: i64 = t.partition_status.iter().map(|p| p.lag_records).sum();
            out.push_str(&format!(
                "  {:<32} {:<40} {:>5} {:>12} {:>10} {:>8}  {}\n",
                t.topic,
                t.target_topic,
                t.partitions,
                t.records_replicated,
                lag,
                t.restarts,
                t.last_error.as_deref().unwrap_or("-")
            ));
        }
        for w in &flow.warnings {
            out.push_str(&format!("  warning: {}\n", w.message));
        }
        for c in &flow.cut_over {
            out.push_str(&format!(
                "  cut over: {}  (at {}, by {})\n",
                c.topic, c.at, c.by
            ));
        }
    }
    out
}

/// This process's slots and the group's members.
fn membership_lines(m: &ferry_http::MembershipDocument) -> String {
    let slots: Vec<String> = m.slots.iter().map(|s| s.slot.to_string()).collect();
    let mut out = format!(
        "  slots {}/{} [{}]  partitions {}  group {}  members {}  rebalances {} (last {:.0} s ago){}\n",
        m.slots.len(),
        m.slots_total,
        slots.join(","),
        m.partitions,
        m.group,
        m.members.len(),
        m.rebalances,
        m.seconds_since_rebalance,
        if m.topology_mismatch {
            "  MEMBERS RUN DIFFERENT TOPOLOGY FILES"
        } else {
            ""
        }
    );
    for member in &m.members {
        let slots: Vec<String> = member.slots.iter().map(u16::to_string).collect();
        let this = if member.member_id == m.member_id {
            " (this process)"
        } else {
            ""
        };
        out.push_str(&format!(
            "    member {} {} slots [{}]{this}\n",
            member.host,
            member.client_id,
            slots.join(",")
        ));
    }
    out
}
