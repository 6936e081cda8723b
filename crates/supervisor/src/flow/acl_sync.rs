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
use super::side_task::Scopes;
use crate::acls;

/// What one sync covers: the flow as last reloaded and the source topics it
/// mirrors, as the latest discovery found them.
pub(super) type AclScope = Arc<(Flow, BTreeSet<String>)>;

/// Syncs once per scope received, until cancelled or the sender is gone.
pub(super) async fn run_acl_sync(
    ctx: Arc<FlowContext>,
    scope: watch::Receiver<AclScope>,
    cancel: CancellationToken,
) {
    let mut scopes = Scopes::new(scope, cancel);
    while let Some(current) = scopes.next().await {
        let (flow, topics) = &*current;
        if scopes
            .unless_cancelled(sync_once(&ctx, flow, topics))
            .await
            .is_none()
        {
            return;
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
