//! What to copy from the source registry to the target ([`plan`]) and
//! copying it ([`apply`]), in dependency order: a version's references are
//! copied before it.
//!
//! Versions already copied are remembered in [`SyncOutcome`], so a
//! continuous sync asks the source only for new versions.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_config::{NameFilter, SchemaMode};

use crate::client::{RegistryClient, RegistryError, SchemaBody, SubjectVersion};

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A registry request failed (boxed: errors stay small).
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// `preserve-ids` needs IMPORT mode, which the target refused.
    #[error("preserve-ids: target registry {registry} cannot put subject {subject} in IMPORT mode: {cause}")]
    ImportMode {
        /// The target registry.
        registry: String,
        /// The subject.
        subject: String,
        /// The registry's answer.
        cause: Box<RegistryError>,
    },
    /// The target registered a version under another ID than asked.
    #[error("preserve-ids: target registry {registry} registered subject {subject} version {version} under ID {got} instead of ID {wanted}; it does not honour explicit IDs")]
    IgnoredId {
        /// The target registry.
        registry: String,
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
        /// The source's ID.
        wanted: u32,
        /// The target's.
        got: u32,
    },
}

impl From<RegistryError> for SyncError {
    fn from(e: RegistryError) -> Self {
        SyncError::Registry(Box::new(e))
    }
}

/// A version the target holds differently (another schema or another ID
/// under the same subject version or ID): it is refused, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The subject on the target.
    pub subject: String,
    /// The version.
    pub version: i32,
    /// The schema ID concerned.
    pub id: u32,
    /// What the target holds there.
    pub reason: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subject {} version {} (ID {}): {}; nothing was overwritten",
            self.subject, self.version, self.id, self.reason
        )
    }
}

/// One source version to copy.
#[derive(Debug, Clone)]
pub struct PlanItem {
    /// The subject on the source.
    pub source_subject: String,
    /// The subject on the target (renamed under prefix naming).
    pub target_subject: String,
    /// The version on the source.
    pub version: i32,
    /// The ID on the source.
    pub id: u32,
    /// The target's ID when it already holds this version as it should.
    pub present: Option<u32>,
    /// The schema, its references renamed like the subjects.
    body: SchemaBody,
    /// The references as the source names them.
    source_references: Vec<crate::client::Reference>,
}

/// What a sync would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Versions not known to be copied yet, references first.
    pub items: Vec<PlanItem>,
    /// Versions the target holds differently: never overwritten.
    pub conflicts: Vec<Conflict>,
}

/// A copied version: where it is on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The source's ID.
    pub source_id: u32,
    /// The target's ID (the same under `preserve-ids`).
    pub target_id: u32,
    /// The version number on the target.
    pub target_version: i32,
}

/// What the syncs so far copied, by (source subject, version).
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Every version known to be on the target.
    pub copied: BTreeMap<(String, i32), Copied>,
}

impl SyncOutcome {
    /// Source ID → target ID, for the record gate.
    pub fn ids(&self) -> HashMap<u32, u32> {
        self.copied
            .values()
            .map(|c| (c.source_id, c.target_id))
            .collect()
    }
}

/// Lists what the source has under the selected subjects (and what their
/// references need) that `done` does not cover, and checks each version
/// against the target. `rename` gives a source subject's target name.
pub fn plan(
    (source, target): (&RegistryClient, &RegistryClient),
    subjects: &NameFilter,
    mode: SchemaMode,
    rename: &dyn Fn(&str) -> String,
    done: &SyncOutcome,
) -> Result<Plan, SyncError> {
    let mut fetched: BTreeMap<(String, i32), SubjectVersion> = BTreeMap::new();
    let mut queue: Vec<(String, i32)> = Vec::new();
    for subject in source.subjects()? {
        if !subjects.matches(&subject) {
            continue;
        }
        for version in source.versions(&subject)? {
            queue.push((subject.clone(), version));
        }
    }
    // References may point outside the selected subjects: those versions
    // are needed all the same.
    while let Some(key) = queue.pop() {
        if done.copied.contains_key(&key) || fetched.contains_key(&key) {
            continue;
        }
        let Some(sv) = source.version(&key.0, key.1)? else {
            continue; // deleted meanwhile
        };
        for r in &sv.body.references {
            queue.push((r.subject.clone(), r.version));
        }
        fetched.insert(key, sv);
    }
    let mut order = Vec::new();
    let mut visiting = HashSet::new();
    for key in fetched.keys() {
        topo(key, &fetched, &mut visiting, &mut order);
    }
    let mut plan = Plan::default();
    for key in order {
        let sv = &fetched[&key];
        let target_subject = rename(&sv.subject);
        let body = renamed_references(&sv.body, rename);
        let mut present = None;
        if mode == SchemaMode::PreserveIds {
            match preserve_check(target, &target_subject, sv, &body)? {
                Check::Copy => {}
                Check::Present => present = Some(sv.id),
                Check::Conflict(reason) => {
                    plan.conflicts.push(Conflict {
                        subject: target_subject,
                        version: sv.version,
                        id: sv.id,
                        reason,
                    });
                    continue;
                }
            }
        }
        plan.items.push(PlanItem {
            source_subject: sv.subject.clone(),
            target_subject,
            version: sv.version,
            id: sv.id,
            present,
            body,
            source_references: sv.body.references.clone(),
        });
    }
    Ok(plan)
}

fn topo(
    key: &(String, i32),
    all: &BTreeMap<(String, i32), SubjectVersion>,
    visiting: &mut HashSet<(String, i32)>,
    order: &mut Vec<(String, i32)>,
) {
    if !visiting.insert(key.clone()) {
        return; // done, or a reference cycle (which registries refuse)
    }
    if let Some(sv) = all.get(key) {
        for r in &sv.body.references {
            topo(&(r.subject.clone(), r.version), all, visiting, order);
        }
        order.push(key.clone());
    }
}

/// The body with its references' subjects renamed as the subjects are.
fn renamed_references(body: &SchemaBody, rename: &dyn Fn(&str) -> String) -> SchemaBody {
    let mut out = body.clone();
    for r in &mut out.references {
        r.subject = rename(&r.subject);
    }
    out
}

enum Check {
    Copy,
    Present,
    Conflict(String),
}

/// Under `preserve-ids`: whether the target already has this version with
/// this ID, has something else there, or has neither.
fn preserve_check(
    target: &RegistryClient,
    subject: &str,
    sv: &SubjectVersion,
    body: &SchemaBody,
) -> Result<Check, SyncError> {
    if let Some(there) = target.version(subject, sv.version)? {
        if there.id == sv.id && there.body.same_as(body) {
            return Ok(Check::Present);
        }
        return Ok(Check::Conflict(if there.id != sv.id {
            format!("the target holds this version under ID {}", there.id)
        } else {
            "the target holds a different schema under this version and ID".to_string()
        }));
    }
    if let Some(there) = target.schema(sv.id)? {
        if !there.same_as(body) {
            return Ok(Check::Conflict(
                "the target holds a different schema under this ID".to_string(),
            ));
        }
    }
    Ok(Check::Copy)
}

/// Copies the plan's versions in order and records them in `done`. A
/// version whose references could not be copied is left for the next
/// sync. Returns the versions copied now.
pub fn apply(
    (source, target): (&RegistryClient, &RegistryClient),
    mode: SchemaMode,
    plan: &Plan,
    done: &mut SyncOutcome,
) -> Result<Vec<PlanItem>, SyncError> {
    let _ = source; // symmetric with `plan`; the plan holds the schemas
    let mut copied_now = Vec::new();
    for item in &plan.items {
        let key = (item.source_subject.clone(), item.version);
        if let Some(id) = item.present {
            done.copied.insert(
                key,
                Copied {
                    source_id: item.id,
                    target_id: id,
                    target_version: item.version,
                },
            );
            continue;
        }
        let mut body = item.body.clone();
        // References point at the target's version numbers, which differ
        // from the source's under translate-ids.
        let mut unresolved = false;
        for (r, source_ref) in body.references.iter_mut().zip(&item.source_references) {
            match done
                .copied
                .get(&(source_ref.subject.clone(), source_ref.version))
            {
                Some(c) => r.version = c.target_version,
                None => unresolved = true,
            }
        }
        if unresolved {
            // Its reference was refused or failed: it waits for the next
            // sync rather than pointing at the wrong version.
            continue;
        }
        let copied = match mode {
            SchemaMode::PreserveIds => {
                import(target, &item.target_subject, &body, item.id, item.version)?;
                Copied {
                    source_id: item.id,
                    target_id: item.id,
                    target_version: item.version,
                }
            }
            SchemaMode::TranslateIds => {
                let id = target.register(&item.target_subject, &body, None)?;
                let version = target
                    .lookup(&item.target_subject, &body)?
                    .map_or(item.version, |sv| sv.version);
                Copied {
                    source_id: item.id,
                    target_id: id,
                    target_version: version,
                }
            }
        };
        done.copied.insert(key, copied);
        copied_now.push(item.clone());
    }
    Ok(copied_now)
}

/// Registers one version with its source ID and version number: the
/// subject goes into IMPORT mode for it and back to its mode after.
fn import(
    target: &RegistryClient,
    subject: &str,
    body: &SchemaBody,
    id: u32,
    version: i32,
) -> Result<(), SyncError> {
    let import_error = |cause: RegistryError| SyncError::ImportMode {
        registry: target.name().to_string(),
        subject: subject.to_string(),
        cause: Box::new(cause),
    };
    let previous = target.mode(Some(subject)).map_err(import_error)?;
    target.set_mode(subject, "IMPORT").map_err(import_error)?;
    let registered = target.register(subject, body, Some((id, version)));
    // Restored whatever the registration did.
    let restored = match &previous {
        Some(mode) => target.set_mode(subject, mode),
        None => target.clear_mode(subject),
    };
    let got = registered?;
    restored?;
    if got != id {
        return Err(SyncError::IgnoredId {
            registry: target.name().to_string(),
            subject: subject.to_string(),
            version,
            wanted: id,
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Reference;

    fn version(subject: &str, v: i32, id: u32, refs: &[(&str, i32)]) -> SubjectVersion {
        SubjectVersion {
            subject: subject.into(),
            version: v,
            id,
            body: SchemaBody {
                schema: "\"string\"".into(),
                schema_type: None,
                references: refs
                    .iter()
                    .map(|(s, v)| Reference {
                        name: format!("{s}.name"),
                        subject: s.to_string(),
                        version: *v,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn references_come_before_the_versions_that_use_them() {
        let all: BTreeMap<(String, i32), SubjectVersion> = [
            version("a-orders", 1, 3, &[("z-address", 1), ("m-money", 2)]),
            version("m-money", 2, 2, &[("z-address", 1)]),
            version("z-address", 1, 1, &[]),
            version("b-plain", 1, 4, &[]),
        ]
        .into_iter()
        .map(|v| ((v.subject.clone(), v.version), v))
        .collect();
        let (mut order, mut seen) = (Vec::new(), HashSet::new());
        for key in all.keys() {
            topo(key, &all, &mut seen, &mut order);
        }
        let at = |s: &str| order.iter().position(|(x, _)| x == s).unwrap();
        assert_eq!(order.len(), 4);
        assert!(at("z-address") < at("m-money"));
        assert!(at("m-money") < at("a-orders"));
    }

    #[test]
    fn references_are_renamed_like_subjects() {
        let v = version(
            "orders-value",
            1,
            1,
            &[("orders-key", 1), ("shop.Address", 1)],
        );
        let renamed = renamed_references(&v.body, &|s: &str| {
            if s.starts_with("orders-") {
                format!("a.{s}")
            } else {
                s.to_string()
            }
        });
        let subjects: Vec<&str> = renamed
            .references
            .iter()
            .map(|r| r.subject.as_str())
            .collect();
        assert_eq!(subjects, ["a.orders-key", "shop.Address"]);
    }
}
