//! What a reload changes. A flow is "changed" when its own settings or either
//! of its clusters changed; untouched flows keep running as they are.

use crate::model::{FlowId, Topology};

/// What a reload would do to the running flows, and what it cannot do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TopologyDiff {
    /// Flows only in the new topology: started.
    pub added: Vec<FlowId>,
    /// Flows only in the old topology: stopped.
    pub removed: Vec<FlowId>,
    /// Flows whose settings or clusters changed: restarted.
    pub changed: Vec<FlowId>,
    /// Flows that keep running as they are.
    pub unchanged: Vec<FlowId>,
    /// Settings that cannot change while running, each with a reason.
    pub not_reloadable: Vec<String>,
}

impl TopologyDiff {
    /// True when no flow would start, stop or restart.
    pub fn is_noop(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares the running topology with a reloaded one.
pub fn diff(old: &Topology, new: &Topology) -> TopologyDiff {
    let mut d = TopologyDiff::default();
    if old.engine.group_prefix != new.engine.group_prefix {
        d.not_reloadable.push(format!(
            "engine.group_prefix: changed from {} to {}; the flows' groups cannot change at runtime, restart every process of the flows",
            old.engine.group_prefix, new.engine.group_prefix
        ));
    }
    if old.engine.transactional_id_prefix != new.engine.transactional_id_prefix {
        d.not_reloadable.push(format!(
            "engine.transactional_id_prefix: changed from {} to {}; the slots' transactional ids cannot change at runtime, restart every process of the flows",
            old.engine.transactional_id_prefix, new.engine.transactional_id_prefix
        ));
    }
    if old.http.listen != new.http.listen {
        d.not_reloadable.push(format!(
            "http.listen: changed from {} to {}; the listen address cannot change at runtime, restart Ferry",
            old.http.listen, new.http.listen
        ));
    }
    // The HTTP server is built once at start; its access rules with it.
    if old.http.control_token != new.http.control_token {
        d.not_reloadable.push(
            "http.control_token: the control token cannot change at runtime, restart Ferry"
                .to_string(),
        );
    }
    if old.http.status_public != new.http.status_public {
        d.not_reloadable
            .push("http.status_public: cannot change at runtime, restart Ferry".to_string());
    }
    if old.http.tls.is_some() != new.http.tls.is_some() {
        d.not_reloadable.push(
            "http.tls_cert: switching the HTTP listener between HTTP and HTTPS needs a restart; a reload re-reads the certificate files".to_string(),
        );
    }
    if old.http.partition_metrics != new.http.partition_metrics {
        d.not_reloadable
            .push("http.partition_metrics: cannot change at runtime, restart Ferry".to_string());
    }
    if old.log.format != new.log.format {
        d.not_reloadable
            .push("log.format: the log format cannot change at runtime, restart Ferry".to_string());
    }
    for flow in &new.flows {
        let id = flow.id();
        match old.flow(&id) {
            None => d.added.push(id),
            Some(before) => {
                let clusters_same = [&flow.source, &flow.target]
                    .iter()
                    .all(|c| old.cluster(c) == new.cluster(c));
                if before == flow && clusters_same {
                    d.unchanged.push(id);
                } else {
                    d.changed.push(id);
                }
            }
        }
    }
    d.removed = old
        .flows
        .iter()
        .map(|f| f.id())
        .filter(|id| new.flow(id).is_none())
        .collect();
    d
}
