//! Token buckets for flood control, keyed per account (or any key): a bucket holds up to
//! `burst` tokens and refills at `per_sec`; an action that costs more than what is left is
//! refused with the seconds to wait (`FLOOD_WAIT_X`). In memory and per process: a limit,
//! not a record, so losing it on restart costs nothing but a fresh burst.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub burst: f64,
    pub per_sec: f64,
}

/// Keys tracked before full (idle) buckets are first swept out; after a sweep the next one
/// waits until the map has doubled, so sweeping stays amortised O(1) per call.
const SWEEP_AT: usize = 100_000;

struct Buckets<K> {
    map: HashMap<K, (f64, i64)>,
    next_sweep: usize,
}

pub struct Limiter<K> {
    spec: Bucket,
    // A std Mutex: one map lookup per call.
    inner: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub fn new(spec: Bucket) -> Self {
        Self { spec, inner: Mutex::new(Buckets { map: HashMap::new(), next_sweep: SWEEP_AT }) }
    }

    /// Spends `cost` tokens of `key`'s bucket at `now_ms`, or returns the whole seconds to
    /// wait until they are there (nothing is spent then).
    pub fn take(&self, key: K, cost: f64, now_ms: i64) -> Result<(), i64> {
        let Bucket { burst, per_sec } = self.spec;
        let cost = cost.min(burst);
        let mut g = self.inner.lock().unwrap();
        if g.map.len() >= g.next_sweep {
            g.map.retain(|_, (tokens, at)| *tokens + (now_ms - *at) as f64 / 1000.0 * per_sec < burst);
            g.next_sweep = (g.map.len() * 2).max(SWEEP_AT);
        }
        let (tokens, at) = g.map.entry(key).or_insert((burst, now_ms));
        *tokens = (*tokens + (now_ms - *at).max(0) as f64 / 1000.0 * per_sec).min(burst);
        *at = now_ms;
        if *tokens >= cost {
            *tokens -= cost;
            return Ok(());
        }
        Err((((cost - *tokens) / per_sec).ceil() as i64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_waits_then_refills() {
        let l = Limiter::new(Bucket { burst: 3.0, per_sec: 0.5 });
        for _ in 0..3 {
            assert_eq!(l.take(1, 1.0, 0), Ok(()));
        }
        assert_eq!(l.take(1, 1.0, 0), Err(2));
        assert_eq!(l.take(2, 1.0, 0), Ok(()), "keys are independent");
        assert_eq!(l.take(1, 1.0, 1000), Err(1));
        assert_eq!(l.take(1, 1.0, 2000), Ok(()));
        // a cost above the burst takes a full bucket, so it is never refused forever
        assert_eq!(l.take(3, 10.0, 0), Ok(()));
        assert_eq!(l.take(3, 1.0, 0), Err(2));
    }
}
