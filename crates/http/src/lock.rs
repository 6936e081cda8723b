//! Locks whose poisoning is ignored.
//!
//! Every lock in this crate guards a value that is replaced or extended in
//! one step (a map entry inserted whole, a certificate swapped), so a writer
//! that panicked cannot have left it half-updated. Failing every later
//! scrape or handshake over it would turn one panic into an outage.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `lock.read()`, poisoned or not.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// `lock.write()`, poisoned or not.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_reads_and_writes() {
        let lock = RwLock::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _guard = lock.write().unwrap();
            panic!("poison it");
        });
        assert!(lock.is_poisoned());
        *write(&lock) += 1;
        assert_eq!(*read(&lock), 2);
    }
}
