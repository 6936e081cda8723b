//! The Schema Registry part of a plan (`flows[].schemas`): the subjects and
//! versions the daemon would copy to the target registry, the ones already
//! there, and the conflicts it would refuse. The rules are the daemon's own
//! (`ferry_schemas::plan`).

use ferry_config::Flow;
use ferry_schemas::RegistryClient;
use serde::Serialize;

/// One version to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaEntry {
    pub source_subject: String,
    pub target_subject: String,
    pub version: i32,
    /// The source's schema ID.
    pub id: u32,
}

/// A version the target holds differently: refused, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaConflict {
    pub subject: String,
    pub version: i32,
    pub id: u32,
    pub reason: String,
}

/// How the target registry compares with the source for one flow.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaPlan {
    pub source_registry: String,
    pub target_registry: String,
    /// `preserve-ids` or `translate-ids`.
    pub mode: &'static str,
    /// Versions to copy, references first.
    pub copy: Vec<SchemaEntry>,
    /// Versions the target already holds with the same ID (`preserve-ids`).
    pub present: usize,
    pub conflicts: Vec<SchemaConflict>,
    /// Why the registries could not be compared, if they could not: the
    /// rest of the plan stands.
    pub error: Option<String>,
}

/// Compares the registries of `flow`; `None` when it copies no schemas.
/// Registry calls block, so they run on a blocking thread.
pub async fn plan_schemas(flow: &Flow) -> Option<SchemaPlan> {
    let settings = flow.schemas.clone()?;
    let flow = flow.clone();
    let mut plan = SchemaPlan {
        source_registry: settings.source.name.clone(),
        target_registry: settings.target.name.clone(),
        mode: settings.mode.as_str(),
        copy: Vec::new(),
        present: 0,
        conflicts: Vec::new(),
        error: None,
    };
    let compared = tokio::task::spawn_blocking(move || {
        let source = RegistryClient::new(&settings.source).map_err(|e| e.to_string())?;
        let target = RegistryClient::new(&settings.target).map_err(|e| e.to_string())?;
        let rename = |s: &str| flow.remote_subject(s);
        ferry_schemas::plan(
            (&source, &target),
            &settings.subjects,
            settings.mode,
            &rename,
            &Default::default(),
        )
        .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("the registry comparison panicked: {e}")));
    match compared {
        Ok(found) => {
            for item in found.items {
                if item.present.is_some() {
                    plan.present += 1;
                } else {
                    plan.copy.push(SchemaEntry {
                        source_subject: item.source_subject,
                        target_subject: item.target_subject,
                        version: item.version,
                        id: item.id,
                    });
                }
            }
            plan.conflicts = found
                .conflicts
                .into_iter()
                .map(|c| SchemaConflict {
                    subject: c.subject,
                    version: c.version,
                    id: c.id,
                    reason: c.reason,
                })
                .collect();
        }
        Err(e) => plan.error = Some(e),
    }
    Some(plan)
}

/// The plan's schema section, for people.
pub fn render(plan: &SchemaPlan) -> String {
    let mut out = format!(
        "Schemas ({} -> {}, {}): {} version{} to copy, {} already on the target, {} conflict{}\n",
        plan.source_registry,
        plan.target_registry,
        plan.mode,
        plan.copy.len(),
        if plan.copy.len() == 1 { "" } else { "s" },
        plan.present,
        plan.conflicts.len(),
        if plan.conflicts.len() == 1 { "" } else { "s" },
    );
    if let Some(e) = &plan.error {
        out.push_str(&format!("  cannot compare the registries: {e}\n"));
    }
    for c in &plan.copy {
        let renamed = if c.source_subject == c.target_subject {
            String::new()
        } else {
            format!(" as {}", c.target_subject)
        };
        out.push_str(&format!(
            "  copy     {} version {} (ID {}){renamed}\n",
            c.source_subject, c.version, c.id
        ));
    }
    for c in &plan.conflicts {
        out.push_str(&format!(
            "  conflict {} version {} (ID {}): {}; refused, nothing is overwritten\n",
            c.subject, c.version, c.id, c.reason
        ));
    }
    out
}
