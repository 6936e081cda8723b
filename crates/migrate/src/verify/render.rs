//! The human-readable report and progress lines.

use crate::records::RecordDescription;

use super::{Basis, DivergenceKind, Outcome, PartitionResult, VerifyReport};

/// A line for a progress display: `[3/12] orders[1] -> src.orders: 500/500
/// records compared, match`.
pub fn progress_line(r: &PartitionResult, done: usize, total: usize) -> String {
    format!(
        "[{done}/{total}] {}[{}] -> {}: {}/{} records compared, {}",
        r.topic,
        r.partition,
        r.target_topic,
        r.coverage.compared,
        r.coverage.in_range,
        outcome_word(r)
    )
}

fn outcome_word(r: &PartitionResult) -> String {
    match r.result {
        Outcome::Match => "match".to_string(),
        Outcome::Mismatch => "MISMATCH".to_string(),
        Outcome::Incomplete => "INCOMPLETE".to_string(),
        Outcome::Error => format!("ERROR: {}", r.error.as_deref().unwrap_or("?")),
    }
}

/// The human-readable report.
pub fn render(report: &VerifyReport) -> String {
    let mut out = String::new();
    for flow in &report.flows {
        out.push_str(&format!(
            "flow {}: {} topic{}, {} partition{}\n",
            flow.flow,
            flow.topics,
            plural(flow.topics),
            flow.partitions.len(),
            plural(flow.partitions.len())
        ));
        if flow.partitions.is_empty() {
            out.push_str("  nothing to verify: no source topic is replicated by this flow\n");
            continue;
        }
        let mut rows = vec![[
            "TOPIC",
            "PARTITION",
            "TARGET TOPIC",
            "SOURCE RANGE",
            "TARGET RANGE",
            "SOURCE RECORDS",
            "TARGET RECORDS",
            "COMPARED",
            "RESULT",
        ]
        .map(String::from)];
        for p in &flow.partitions {
            rows.push([
                p.topic.clone(),
                p.partition.to_string(),
                p.target_topic.clone(),
                format!("{}..{}", p.source.start, p.source.end),
                format!("{}..{}", p.target.start, p.target.end),
                p.source.records.to_string(),
                p.target.records.to_string(),
                format!("{}/{}", p.coverage.compared, p.coverage.in_range),
                match p.result {
                    Outcome::Error => "ERROR".into(),
                    _ => outcome_word(p),
                },
            ]);
        }
        out.push_str(&table(&rows));
        for p in &flow.partitions {
            let head = format!(
                "{}[{}] -> {}[{}]",
                p.topic, p.partition, p.target_topic, p.partition
            );
            if let Some(e) = &p.error {
                out.push_str(&format!("  {head}: cannot verify: {e}\n"));
            }
            if let Some(why) = &p.incomplete {
                out.push_str(&format!("  {head}: incomplete: {why}\n"));
            }
            if let Some(d) = &p.divergence {
                let what = match d.kind {
                    DivergenceKind::Altered => format!(
                        "the records differ in {}",
                        d.fields
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    DivergenceKind::Missing => "the source record is missing on the target".into(),
                    DivergenceKind::Extra => "the target has a record the source does not".into(),
                    DivergenceKind::Foreign => {
                        format!(
                            "the target has a record that was not copied from {}",
                            flow.source
                        )
                    }
                };
                out.push_str(&format!(
                    "  {head}: first divergent source offset {} (target offset {}): {what}\n",
                    d.source_offset, d.target_offset
                ));
                let show = |r: &Option<RecordDescription>, end: i64| match r {
                    Some(r) => r.to_string(),
                    None => format!("no record (the range ends at offset {end})"),
                };
                out.push_str(&format!(
                    "    source: {}\n    target: {}\n",
                    show(&d.source_record, d.source_offset),
                    show(&d.target_record, d.target_offset)
                ));
                if p.source.records != p.target.records {
                    out.push_str(&format!(
                        "    counts: {} source records, {} target records\n",
                        p.source.records, p.target.records
                    ));
                }
            }
            for n in &p.notes {
                out.push_str(&format!("  {head}: note: {n}\n"));
            }
            if p.basis == Basis::LogStart && p.result == Outcome::Mismatch {
                out.push_str(&format!(
                    "  {head}: note: no offset map for this partition; both sides were aligned from the start of their ranges\n"
                ));
            }
        }
    }
    let coverage = format!(
        "compared {} of {} source records",
        report.compared, report.in_range
    );
    out.push_str(&match report.result {
        Outcome::Match => format!(
            "result: match: {} partition{}, {coverage}, {} records on each side\n",
            report.partitions,
            plural(report.partitions),
            report.source_records
        ),
        Outcome::Mismatch => format!(
            "result: MISMATCH: {} of {} partition{} differ{}; {coverage}; {} source records, {} target records\n",
            report.mismatched,
            report.partitions,
            plural(report.partitions),
            if report.incomplete > 0 {
                format!(", {} incomplete", report.incomplete)
            } else {
                String::new()
            },
            report.source_records,
            report.target_records
        ),
        Outcome::Incomplete | Outcome::Error => format!(
            "result: INCOMPLETE: {} of {} partition{} not fully compared{}; {coverage}\n",
            report.incomplete,
            report.partitions,
            plural(report.partitions),
            if report.errors > 0 {
                format!(" ({} could not be read)", report.errors)
            } else {
                String::new()
            },
        ),
    });
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
