//! The flow's schema sync task (`flows[].schemas`): copies the selected
//! subjects' versions from the source registry to the target once at
//! start, then every `refresh_interval`, and at once whenever a record
//! carries a schema ID the target does not know yet (the pump holds such
//! records back until the ID is published, see `ferry_schemas::SchemaIds`).
//!
//! Registry calls block, so each sync runs on a blocking thread.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_config::{Flow, SchemaSync};
use ferry_schemas::{RegistryClient, SchemaIds, SyncError, SyncOutcome};
use tokio_util::sync::CancellationToken;

/// The longest a failed sync waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);

struct State {
    flow: Flow,
    clients: (RegistryClient, RegistryClient),
    done: SyncOutcome,
    /// IDs a record carried that no selected subject uses.
    foreign: HashSet<u32>,
    /// Conflicts already logged, so each is reported once.
    reported: HashSet<(String, i32, u32)>,
}

/// Syncs until cancelled.
pub(super) async fn run_schema_sync(
    flow: Flow,
    settings: SchemaSync,
    ids: Arc<SchemaIds>,
    cancel: CancellationToken,
) {
    let clients = match (
        RegistryClient::new(&settings.source),
        RegistryClient::new(&settings.target),
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "schema sync cannot start; records that carry a schema ID are handled as if the registry were down");
            ids.set_healthy(false);
            return;
        }
    };
    let refresh = flow.refresh_interval;
    let mut state = Some(State {
        flow,
        clients,
        done: SyncOutcome::default(),
        foreign: HashSet::new(),
        reported: HashSet::new(),
    });
    // The first sync runs now; the timer's first tick is a refresh later.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
    let mut periodic = false;
    loop {
        let wanted = ids.take_wanted();
        let Some(mut s) = state.take() else { return };
        let settings2 = settings.clone();
        let joined = tokio::task::spawn_blocking(move || {
            if periodic {
                // An ID no subject used may have been given to a schema
                // since: each refresh looks at them again.
                s.foreign.clear();
            }
            let result = sync_once(&mut s, &settings2, &wanted);
            (s, result)
        })
        .await;
        let Ok((s, result)) = joined else {
            tracing::error!("schema sync panicked; stopping it");
            ids.set_healthy(false);
            return;
        };
        let failed = result.is_err();
        match result {
            Ok(()) => {
                ids.publish(s.done.ids(), s.foreign.clone());
                ids.set_healthy(true);
            }
            Err(e) => {
                tracing::warn!(error = %e, "schema sync failed; retrying");
                ids.set_healthy(false);
            }
        }
        state = Some(s);
        periodic = false;
        if failed {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(refresh.min(RETRY)) => {}
            }
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => periodic = true,
            _ = ids.wanted() => {}
        }
    }
}

fn sync_once(
    s: &mut State,
    settings: &SchemaSync,
    wanted: &BTreeSet<u32>,
) -> Result<(), SyncError> {
    let flow = &s.flow;
    let rename = |subject: &str| flow.remote_subject(subject);
    let clients = (&s.clients.0, &s.clients.1);
    let plan = ferry_schemas::plan(clients, &settings.subjects, settings.mode, &rename, &s.done)?;
    for c in &plan.conflicts {
        if s.reported.insert((c.subject.clone(), c.version, c.id)) {
            tracing::error!(registry = %settings.target.name, subject = %c.subject, version = c.version, id = c.id, "schema conflict: {c}; records that use this ID wait");
        }
    }
    let copied = ferry_schemas::apply(clients, settings.mode, &plan, &mut s.done)?;
    for item in &copied {
        let target_id = s
            .done
            .copied
            .get(&(item.source_subject.clone(), item.version))
            .map_or(item.id, |c| c.target_id);
        tracing::info!(
            subject = %item.target_subject,
            version = item.version,
            source_id = item.id,
            target_id,
            "schema copied"
        );
    }
    // An ID a record asked for before this sync started, which this sync
    // neither copied nor has to copy still: no selected subject uses it.
    let known = s.done.ids();
    let pending: HashSet<u32> = plan
        .items
        .iter()
        .map(|i| i.id)
        .chain(plan.conflicts.iter().map(|c| c.id))
        .collect();
    for id in wanted {
        if !known.contains_key(id) && !pending.contains(id) {
            s.foreign.insert(*id);
        }
    }
    Ok(())
}
