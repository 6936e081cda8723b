//! `ferry offsets` and the checks of `plan` and `cutover`: per consumer
//! group and replicated partition, the source offset, its translation, the
//! last checkpoint and the target group's offset. Built from the engine's
//! own readers, so it never disagrees with what the daemon translates.

use std::time::Duration;

use ferry_checkpoint::{CheckpointKey, Translation};
use ferry_config::{Cluster, Flow};
use ferry_supervisor::checkpoints::{
    checkpoints_topic, offset_syncs_location, read_checkpoints, read_syncs,
};
use ferry_supervisor::{topics, EngineError};

/// How long reading the offset-syncs or checkpoints topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One line of `ferry offsets`.
#[derive(Debug, Clone)]
pub struct OffsetRow {
    pub group: String,
    /// The source topic.
    pub topic: String,
    pub partition: i32,
    pub remote_topic: String,
    /// The group's committed offset on the source.
    pub source_offset: i64,
    /// Ferry's translation from the offset-syncs topic.
    pub translated: Translation,
    /// The last checkpoint's downstream offset, if any.
    pub checkpoint: Option<i64>,
    /// The group's committed offset on the target.
    pub target_offset: Option<i64>,
}

/// What `ferry offsets` shows for a flow: per matching source group (or only
/// `group`) and replicated partition, the source offset, its translation
/// rebuilt from the offset-syncs topic, the last checkpoint and the target
/// group's offset. Needs no running daemon.
pub async fn offsets_report(
    flow: &Flow,
    source: &Cluster,
    target: &Cluster,
    group: Option<&str>,
) -> Result<Vec<OffsetRow>, EngineError> {
    // Run by commands, which retry what the daemon would ride out.
    let source_admin = crate::admin(source, "ferry-offsets")?;
    let target_admin = crate::admin(target, "ferry-offsets")?;
    let (syncs_cluster, syncs_topic) = offset_syncs_location(flow, source, target);
    let replay = read_syncs(syncs_cluster, &syncs_topic, READ_TIMEOUT).await?;
    let ledger = read_checkpoints(target, &checkpoints_topic(flow), READ_TIMEOUT)
        .await?
        .ledger;
    let groups: Vec<String> = match group {
        Some(g) => vec![g.to_string()],
        None => source_admin
            .list_consumer_groups()
            .await
            .map_err(crate::client_err(source, "cannot list consumer groups"))?
            .into_iter()
            .map(|g| g.group_id)
            .filter(|g| flow.groups.matches(g))
            .collect(),
    };
    let mut rows = Vec::new();
    for g in groups {
        let what = format!("cannot read the offsets of group {g}");
        let read_failed = |cluster| crate::client_err(cluster, &what);
        let committed = source_admin
            .list_consumer_group_offsets(&g, None)
            .await
            .map_err(read_failed(source))?;
        let mut group_rows: Vec<OffsetRow> = committed
            .into_iter()
            .filter(|o| topics::selects(flow, &o.topic))
            .filter_map(|o| {
                let offset = o.offset?;
                let remote_topic = flow.remote_topic(&o.topic);
                let translated = replay
                    .map(&o.topic, o.partition)
                    .map_or(Translation::Unknown, |m| m.translate(offset));
                let checkpoint = ledger
                    .get(&CheckpointKey {
                        group: g.clone(),
                        topic: remote_topic.clone(),
                        partition: o.partition,
                    })
                    .map(|w| w.downstream);
                Some(OffsetRow {
                    group: g.clone(),
                    topic: o.topic,
                    partition: o.partition,
                    remote_topic,
                    source_offset: offset,
                    translated,
                    checkpoint,
                    target_offset: None,
                })
            })
            .collect();
        if group_rows.is_empty() {
            continue;
        }
        let parts: Vec<(&str, i32)> = group_rows
            .iter()
            .map(|r| (r.remote_topic.as_str(), r.partition))
            .collect();
        let on_target = target_admin
            .committed_offsets(&g, &parts)
            .await
            .map_err(read_failed(target))?;
        for r in &mut group_rows {
            r.target_offset = on_target
                .get(&(r.remote_topic.clone(), r.partition))
                .copied();
        }
        group_rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        rows.extend(group_rows);
    }
    Ok(rows)
}
