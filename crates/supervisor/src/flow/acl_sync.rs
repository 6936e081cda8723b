//! The flow's ACL sync task (`sync_acls = true`): after every topic
//! discovery, brings the target's ACLs for the flow's topics and groups in
//! line with the source's (the rules are in [`crate::acls`]). Best effort:
//! records keep flowing whatever happens here.

use std::collections::BTreeSet;
use std::sync::Arc;

use ferry_config::Flow;
use ferry_http::AclSyncResult;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::FlowContext;
use super::count_error;
use crate::acls;

/// What one sync covers: the flow as last reloaded and the source topics it
/// mirrors, as the latest discovery found them.
pub(super) type AclScope = Arc<(Flow, BTreeSet<String>)>;

/// The running task, as the flow sees it.
pub(super) struct AclSyncHandle {
    /// The latest scope; a sync runs for each new one (scopes sent while a
    /// sync runs collapse into the latest).
    pub scope: watch::Sender<AclScope>,
    /// Stops the task, even mid-sync, at the drain.
    pub cancel: CancellationToken,
}

/// Syncs once per scope received, until cancelled or the sender is gone.
pub(super) async fn run_acl_sync(
    ctx: Arc<FlowContext>,
    mut scope: watch::Receiver<AclScope>,
    cancel: CancellationToken,
) {
    loop {
        let current = scope.borrow_and_update().clone();
        let (flow, topics) = &*current;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sync_once(&ctx, flow, topics) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = scope.changed() => if changed.is_err() { return },
        }
    }
}

async fn sync_once(ctx: &FlowContext, flow: &Flow, topics: &BTreeSet<String>) {
    let count = |result, n: usize| {
        if let Some(m) = &ctx.metrics {
            m.acls_synced(result, n as u64);
        }
    };
    let outcome = acls::sync_acls(
        (&ctx.source_admin, &ctx.target_admin),
        (&ctx.source.name, &ctx.target.name),
        flow,
        topics,
    )
    .await;
    match outcome {
        Ok(done) => {
            count(AclSyncResult::Created, done.created.len());
            count(AclSyncResult::Deleted, done.deleted.len());
            count(AclSyncResult::Rejected, done.rejected.len());
            for acl in &done.created {
                tracing::info!(cluster = %ctx.target.name, %acl, "ACL created");
            }
            for acl in &done.deleted {
                tracing::info!(cluster = %ctx.target.name, %acl, "ACL deleted: no source counterpart");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "ACL sync failed; retrying after the next topic discovery");
            count(AclSyncResult::Failed, 1);
            count_error(&ctx.metrics, "acl");
        }
    }
}
