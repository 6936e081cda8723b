use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use rand::Rng;

use crate::error::{HarnessError, Result};

/// Ports are drawn below Linux's default ephemeral range (32768-60999): the
/// kernel hands ports from that range to every outgoing client connection, and
/// one of those could take a broker's port between our check and the JVM's
/// bind. Nothing assigns ports from this range on its own.
const PORT_RANGE: std::ops::Range<u16> = 20000..32000;

/// Returns `count` distinct loopback ports that were free when checked and
/// that no other cluster in this process has been given.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>> {
    // Remembering every port handed out keeps two clusters started
    // concurrently in one test process from choosing the same port before
    // either JVM has bound it.
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let mut chosen = HashSet::new();
    let mut rng = rand::thread_rng();
    for _ in 0..10_000 {
        if chosen.len() == count {
            break;
        }
        let port = rng.gen_range(PORT_RANGE);
        if handed_out.contains(&port) || chosen.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            chosen.insert(port);
        }
    }
    if chosen.len() < count {
        return Err(HarnessError::Usage(format!(
            "could not find {count} free loopback ports in {PORT_RANGE:?}"
        )));
    }
    let ports: Vec<u16> = chosen.into_iter().collect();
    handed_out.extend(&ports);
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_across_calls() {
        let a = free_ports(6).unwrap();
        let b = free_ports(6).unwrap();
        let all: HashSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 12);
        assert!(all.iter().all(|p| PORT_RANGE.contains(p)));
    }
}
