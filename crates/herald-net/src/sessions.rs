//! Encrypted sessions outlive connections: replay protection and msg_id ordering are per
//! (auth key, session_id), so a client that reconnects with the same session keeps them.
//!
//! Bounded, without weakening replay protection: a key may hold [`MAX_SESSIONS_PER_KEY`]
//! (beyond that its own least recently used session is forgotten, which concerns nobody
//! else), and the whole registry [`MAX_SESSIONS`]. Globally, only a session idle longer than
//! the msg_id time window is forgotten (anything replayed from it would be refused with 16
//! anyway); when every session is younger than that, new ones are refused (the caller
//! answers -429).

use herald_mtproto::session::{Session, MAX_PAST_SECS};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const MAX_SESSIONS: usize = 100_000;
pub const MAX_SESSIONS_PER_KEY: usize = 64;
/// Idle time after which forgetting a session cannot enable a replay.
pub const SAFE_TO_FORGET_MS: i64 = (MAX_PAST_SECS + 30) * 1000;

type Shared = Arc<Mutex<Session>>;
type Id = (i64, i64);

struct Entry {
    session: Shared,
    tick: u64,
    last_ms: i64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Id, Entry>,
    /// Global least-recently-used order.
    order: BTreeMap<u64, Id>,
    /// Each key's sessions in least-recently-used order.
    per_key: HashMap<i64, BTreeMap<u64, i64>>,
    tick: u64,
}

impl Inner {
    fn remove(&mut self, id: Id) -> bool {
        let Some(e) = self.map.remove(&id) else { return false };
        self.order.remove(&e.tick);
        if let Some(k) = self.per_key.get_mut(&id.0) {
            k.remove(&e.tick);
            if k.is_empty() {
                self.per_key.remove(&id.0);
            }
        }
        true
    }
}

#[derive(Default)]
pub struct SessionRegistry {
    // A std Mutex: every operation is a few map updates and never awaits.
    inner: Mutex<Inner>,
}

impl SessionRegistry {
    /// The session, created if new; None when the registry is full of recently used
    /// sessions.
    pub fn get_or_create(&self, auth_key_id: i64, session_id: i64, now_ms: i64, unique_id: impl FnOnce() -> i64) -> Option<Shared> {
        let id = (auth_key_id, session_id);
        let mut g = self.inner.lock().unwrap();
        g.tick += 1;
        let tick = g.tick;
        if let Some(e) = g.map.get_mut(&id) {
            let old = std::mem::replace(&mut e.tick, tick);
            e.last_ms = now_ms;
            let s = e.session.clone();
            g.order.remove(&old);
            g.order.insert(tick, id);
            let k = g.per_key.entry(auth_key_id).or_default();
            k.remove(&old);
            k.insert(tick, session_id);
            return Some(s);
        }
        if g.per_key.get(&auth_key_id).is_some_and(|k| k.len() >= MAX_SESSIONS_PER_KEY) {
            let oldest = *g.per_key[&auth_key_id].values().next().unwrap();
            g.remove((auth_key_id, oldest));
        }
        if g.map.len() >= MAX_SESSIONS {
            let oldest = *g.order.values().next().unwrap();
            if g.map[&oldest].last_ms > now_ms - SAFE_TO_FORGET_MS {
                return None;
            }
            g.remove(oldest);
        }
        let s = Arc::new(Mutex::new(Session::new(session_id, auth_key_id, unique_id())));
        g.map.insert(id, Entry { session: s.clone(), tick, last_ms: now_ms });
        g.order.insert(tick, id);
        g.per_key.entry(auth_key_id).or_default().insert(tick, session_id);
        Some(s)
    }

    /// An existing session (pushes never create one).
    pub fn get(&self, auth_key_id: i64, session_id: i64) -> Option<Shared> {
        self.inner.lock().unwrap().map.get(&(auth_key_id, session_id)).map(|e| e.session.clone())
    }

    /// `destroy_session`: true if it existed.
    pub fn remove(&self, auth_key_id: i64, session_id: i64) -> bool {
        self.inner.lock().unwrap().remove((auth_key_id, session_id))
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_only_ever_evicts_its_own_sessions() {
        let r = SessionRegistry::default();
        let victim = r.get_or_create(1, 1, 0, || 0).unwrap();
        for sid in 0..(MAX_SESSIONS_PER_KEY as i64 * 3) {
            r.get_or_create(2, sid, 0, || 0).unwrap();
        }
        assert!(Arc::ptr_eq(&victim, &r.get(1, 1).unwrap()), "the victim's session survives");
        assert_eq!(r.len(), 1 + MAX_SESSIONS_PER_KEY);
        // the attacker's oldest sessions went first
        assert!(r.get(2, 0).is_none() && r.get(2, MAX_SESSIONS_PER_KEY as i64 * 3 - 1).is_some());
    }

    #[test]
    fn recently_used_sessions_are_never_forgotten_globally() {
        let r = SessionRegistry::default();
        // fill the registry with one session per key, all used just now
        for key in 0..MAX_SESSIONS as i64 {
            r.get_or_create(key, 0, 1_000_000, || 0).unwrap();
        }
        assert!(r.get_or_create(-1, 0, 1_000_001, || 0).is_none(), "full of recent sessions: refused");
        // once the oldest is idle past the window it may go
        let later = 1_000_000 + SAFE_TO_FORGET_MS + 1;
        assert!(r.get_or_create(-1, 0, later, || 0).is_some());
        assert!(r.get(0, 0).is_none());
        assert!(r.remove(1, 0) && !r.remove(1, 0));
    }
}
