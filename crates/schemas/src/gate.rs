//! The schema IDs the target registry knows, shared between the flow's
//! schema sync (which fills it) and the data plane's pump threads (which
//! check every record that carries an ID against it).
//!
//! The pump's check is a byte comparison, and for records with an ID one
//! atomic load plus a hash lookup in a snapshot the pump keeps: the shared
//! map is locked only when a sync published a new one.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_config::SchemaMode;

use crate::wire::schema_id;

/// What the IDs of the target registry are, as far as the last sync knows.
#[derive(Debug, Default)]
struct Known {
    /// Source ID → target ID of every copied schema.
    ids: HashMap<u32, u32>,
    /// IDs that no copied subject uses (a value that merely starts with a
    /// zero byte, or a subject outside the flow's): records pass as they are.
    foreign: HashSet<u32>,
}

/// The shared state: one per flow with `schemas`.
#[derive(Debug)]
pub struct SchemaIds {
    mode: SchemaMode,
    required: bool,
    generation: AtomicU64,
    known: Mutex<Arc<Known>>,
    /// IDs records carry that the target does not know yet.
    wanted: Mutex<BTreeSet<u32>>,
    wake: tokio::sync::Notify,
    /// False while the last sync failed (a registry unreachable): then,
    /// unless `required`, `preserve-ids` records go on without waiting.
    healthy: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SchemaIds {
    /// An empty map for a flow in `mode`.
    pub fn new(mode: SchemaMode, required: bool) -> Arc<Self> {
        Arc::new(Self {
            mode,
            required,
            generation: AtomicU64::new(0),
            known: Mutex::default(),
            wanted: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            healthy: AtomicBool::new(true),
        })
    }

    /// Publishes what the target holds now.
    pub fn publish(&self, ids: HashMap<u32, u32>, foreign: HashSet<u32>) {
        {
            let mut wanted = lock(&self.wanted);
            wanted.retain(|id| !ids.contains_key(id) && !foreign.contains(id));
        }
        *lock(&self.known) = Arc::new(Known { ids, foreign });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether the last sync went through.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Release);
    }

    /// The IDs records wait for, taken: a sync that starts now covers them.
    pub fn take_wanted(&self) -> BTreeSet<u32> {
        std::mem::take(&mut *lock(&self.wanted))
    }

    /// Whether any record waits for an ID.
    pub fn has_wanted(&self) -> bool {
        !lock(&self.wanted).is_empty()
    }

    /// Resolves when a record asked for an ID the target does not know.
    pub async fn wanted(&self) {
        self.wake.notified().await
    }

    fn want(&self, id: u32) {
        if lock(&self.wanted).insert(id) {
            self.wake.notify_one();
        }
    }

    /// A pump thread's view.
    pub fn view(self: &Arc<Self>) -> GateView {
        GateView {
            shared: self.clone(),
            cached: RefCell::new((u64::MAX, Arc::default())),
        }
    }
}

/// What to do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Copy it as it is.
    Pass,
    /// Hold it (and the partition's later records) back until the sync
    /// copied its schema.
    Wait,
    /// Copy it with these IDs written into its key and value (`None`: that
    /// part stays as it is).
    Rewrite {
        /// The key's new ID.
        key: Option<u32>,
        /// The value's new ID.
        value: Option<u32>,
    },
}

enum Part {
    Pass,
    Wait,
    Rewrite(u32),
}

/// One pump thread's view of [`SchemaIds`], with its own snapshot.
#[derive(Debug)]
pub struct GateView {
    shared: Arc<SchemaIds>,
    cached: RefCell<(u64, Arc<Known>)>,
}

impl GateView {
    /// The verdict on a record with this key and value.
    pub fn verdict(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Verdict {
        let key_id = key.and_then(schema_id);
        let value_id = value.and_then(schema_id);
        if key_id.is_none() && value_id.is_none() {
            return Verdict::Pass;
        }
        let (k, v) = (self.part(key_id), self.part(value_id));
        match (k, v) {
            (Part::Wait, _) | (_, Part::Wait) => Verdict::Wait,
            (Part::Pass, Part::Pass) => Verdict::Pass,
            (k, v) => Verdict::Rewrite {
                key: match k {
                    Part::Rewrite(id) => Some(id),
                    _ => None,
                },
                value: match v {
                    Part::Rewrite(id) => Some(id),
                    _ => None,
                },
            },
        }
    }

    fn part(&self, id: Option<u32>) -> Part {
        let Some(id) = id else { return Part::Pass };
        let generation = self.shared.generation.load(Ordering::Acquire);
        let mut cached = self.cached.borrow_mut();
        if cached.0 != generation {
            *cached = (generation, lock(&self.shared.known).clone());
        }
        if let Some(&target) = cached.1.ids.get(&id) {
            return if target == id {
                Part::Pass
            } else {
                Part::Rewrite(target)
            };
        }
        if cached.1.foreign.contains(&id) {
            return Part::Pass;
        }
        self.shared.want(id);
        // A record whose schema cannot be copied now goes on only where
        // its bytes stay right without it: the same ID, not required.
        let go_on = self.shared.mode == SchemaMode::PreserveIds
            && !self.shared.required
            && !self.shared.healthy.load(Ordering::Acquire);
        if go_on {
            Part::Pass
        } else {
            Part::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(id: u32) -> Vec<u8> {
        let mut b = vec![0];
        b.extend_from_slice(&id.to_be_bytes());
        b.push(42);
        b
    }

    #[test]
    fn records_wait_until_their_ids_are_published() {
        let ids = SchemaIds::new(SchemaMode::TranslateIds, false);
        let view = ids.view();
        assert_eq!(view.verdict(Some(b"plain"), None), Verdict::Pass);
        assert_eq!(view.verdict(None, Some(&framed(7))), Verdict::Wait);
        assert_eq!(ids.take_wanted(), BTreeSet::from([7]));
        ids.publish(HashMap::from([(7, 21), (8, 8)]), HashSet::from([9]));
        assert_eq!(
            view.verdict(Some(&framed(8)), Some(&framed(7))),
            Verdict::Rewrite {
                key: None,
                value: Some(21)
            }
        );
        assert_eq!(view.verdict(Some(&framed(9)), None), Verdict::Pass);
    }

    #[test]
    fn preserve_ids_goes_on_while_the_registry_is_down_unless_required() {
        for (required, expected) in [(false, Verdict::Pass), (true, Verdict::Wait)] {
            let ids = SchemaIds::new(SchemaMode::PreserveIds, required);
            let view = ids.view();
            assert_eq!(view.verdict(None, Some(&framed(3))), Verdict::Wait);
            ids.set_healthy(false);
            assert_eq!(view.verdict(None, Some(&framed(3))), expected);
        }
    }
}
