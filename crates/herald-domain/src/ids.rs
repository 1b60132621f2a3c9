//! Logical message ids: the id every copy of one message shares (replies, edits, revokes and
//! reactions find the copies by it; the full-text index uses it as its rowid).
//!
//! They rise: the time in milliseconds above 20 bits of counter, and never below the last id
//! given out. The store's index on them and the search index then grow at their right edge,
//! where random ids (what earlier versions made, and still valid: ids are only compared for
//! equality) dirtied a random page of each per message, about a quarter of the pages a
//! private message wrote (README, Benchmarks).
//!
//! Unique within one store: the store raises the floor at open to the largest id it holds
//! ([`raise_floor`]), so a clock stepped back across a restart cannot hand out an id again.
//! One server per data directory (`herald serve` holds a lock on it); a store shared by
//! several processes would need to hand out ranges instead.

use std::sync::atomic::{AtomicI64, Ordering};

/// Bits of counter below the milliseconds: a million ids per millisecond, and room in 63 bits
/// until the year 2248.
const COUNTER_BITS: u32 = 20;

/// The last id given out, or the floor the store set.
static LAST: AtomicI64 = AtomicI64::new(0);

/// Raises the floor: every later id is above `max` (the largest logical id a store holds).
pub fn raise_floor(max: i64) {
    LAST.fetch_max(max, Ordering::Relaxed);
}

/// A new logical id, above every id given out or stored before.
pub fn next() -> i64 {
    use crate::clock::Clock;
    next_at(crate::clock::SystemClock.now_ms())
}

fn next_at(now_ms: i64) -> i64 {
    let from_clock = now_ms.saturating_mul(1 << COUNTER_BITS);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let Some(after) = last.checked_add(1) else {
            // A store with random ids from an earlier version can hold one near the top of
            // the range; past it, ids are random again (unique with overwhelming probability).
            return (crate::clock::random_u64() >> 1) as i64;
        };
        let id = from_clock.max(after);
        match LAST.compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(now) => last = now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rise_follow_the_clock_and_stay_above_the_floor() {
        // The clock moves ids up; a clock stepped back does not move them down.
        let t = 1_800_000_000_000;
        let a = next_at(t);
        assert!(a >= t << COUNTER_BITS);
        let b = next_at(t);
        assert!(b > a);
        let c = next_at(t - 60_000);
        assert!(c > b);
        // A floor from the store lifts the next id above it.
        raise_floor(c + 1_000);
        assert!(next_at(t) > c + 1_000);
        // Concurrent callers never get the same id.
        let ids: Vec<i64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| (0..1000).map(|_| next()).collect::<Vec<_>>())).collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
}
