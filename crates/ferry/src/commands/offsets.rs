//! `ferry offsets`: how a flow's consumer group offsets translate to the
//! target, per group and partition. A standalone read: it rebuilds the offset
//! maps from the offset-syncs topic, so no daemon needs to run.

use std::path::Path;
use std::time::Duration;

use ferry_checkpoint::Translation;
use ferry_config::FlowId;
use ferry_migrate::offsets_report::{offsets_report, OffsetRow};
use ferry_supervisor::checkpoints;

use crate::exit;

/// How long the whole report may take.
const TIMEOUT: Duration = Duration::from_secs(180);

pub fn offsets(path: &Path, flow: &str, group: Option<&str>) -> u8 {
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let topology = loaded.topology;
    let id: FlowId = match flow.parse() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: --flow: {e}");
            return exit::BAD_INPUT;
        }
    };
    let Some(flow) = topology.flow(&id) else {
        let known: Vec<String> = topology.flows.iter().map(|f| f.id().to_string()).collect();
        eprintln!(
            "error: --flow: {} has no flow {id} (flows: {})",
            path.display(),
            known.join(", ")
        );
        return exit::BAD_INPUT;
    };
    let (Some(source), Some(target)) = (
        topology.cluster(&flow.source),
        topology.cluster(&flow.target),
    ) else {
        eprintln!("error: flow {id} names a cluster missing from the topology");
        return exit::BAD_INPUT;
    };
    // librdkafka's warnings (TLS, SASL, unreachable brokers) go to stderr.
    let rt = match super::start_command(&topology) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let report = rt.block_on(async {
        tokio::time::timeout(TIMEOUT, offsets_report(flow, source, target, group)).await
    });
    let rows = match report {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
        Err(_) => {
            eprintln!("error: no answer from the clusters within {TIMEOUT:?}");
            return exit::FAILURE;
        }
    };
    let (syncs_cluster, syncs_topic) = checkpoints::offset_syncs_location(flow, source, target);
    println!(
        "flow {id}: offset syncs {}/{syncs_topic}, checkpoints {}/{}",
        syncs_cluster.name,
        target.name,
        checkpoints::checkpoints_topic(flow)
    );
    if rows.is_empty() {
        match group {
            Some(g) => {
                println!("group {g} has no committed offsets on topics this flow replicates")
            }
            None => {
                println!("no matching group has committed offsets on topics this flow replicates")
            }
        }
        return exit::OK;
    }
    print!("{}", table(&rows));
    exit::OK
}

fn table(rows: &[OffsetRow]) -> String {
    let dash = || "-".to_string();
    let mut lines = vec![[
        "GROUP".to_string(),
        "TOPIC".into(),
        "PARTITION".into(),
        "SOURCE OFFSET".into(),
        "TARGET TOPIC".into(),
        "TRANSLATED".into(),
        "PRECISION".into(),
        "CHECKPOINT".into(),
        "TARGET GROUP OFFSET".into(),
    ]];
    for r in rows {
        let precision = match r.translated {
            Translation::Exact(_) => "exact",
            Translation::Conservative(_) => "conservative",
            Translation::Unknown => "unknown",
        };
        lines.push([
            r.group.clone(),
            r.topic.clone(),
            r.partition.to_string(),
            r.source_offset.to_string(),
            r.remote_topic.clone(),
            r.translated.offset().map_or_else(dash, |o| o.to_string()),
            precision.to_string(),
            r.checkpoint.map_or_else(dash, |o| o.to_string()),
            r.target_offset.map_or_else(dash, |o| o.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_marks_precision() {
        let row = |group: &str, t: Translation, target: Option<i64>| OffsetRow {
            group: group.into(),
            topic: "orders".into(),
            partition: 0,
            remote_topic: "src.orders".into(),
            source_offset: 42,
            translated: t,
            checkpoint: Some(40),
            target_offset: target,
        };
        let text = table(&[
            row("g1", Translation::Exact(40), Some(40)),
            row("group-two", Translation::Conservative(30), None),
            row("g3", Translation::Unknown, None),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("GROUP      TOPIC"), "{text}");
        assert!(lines[1].contains("40          exact"), "{text}");
        assert!(lines[2].contains("conservative"), "{text}");
        assert!(lines[3].contains("-           unknown"), "{text}");
        assert!(lines[3].ends_with('-'), "{text}");
    }
}
