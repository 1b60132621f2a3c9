//! Encrypted sessions outlive connections: replay protection and msg_id ordering are per
//! (auth key, session_id), so a client that reconnects with the same session keeps them.

use herald_mtproto::session::Session;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sessions remembered at once; the least recently used is forgotten beyond this.
pub const MAX_SESSIONS: usize = 100_000;

type Shared = Arc<Mutex<Session>>;

#[derive(Default)]
pub struct SessionRegistry {
    // A std Mutex: lookups are short and never await.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<(i64, i64), (Shared, u64)>,
    tick: u64,
}

impl SessionRegistry {
    pub fn get_or_create(&self, auth_key_id: i64, session_id: i64, unique_id: impl FnOnce() -> i64) -> Shared {
        let mut g = self.inner.lock().unwrap();
        g.tick += 1;
        let tick = g.tick;
        if let Some((s, t)) = g.map.get_mut(&(auth_key_id, session_id)) {
            *t = tick;
            return s.clone();
        }
        if g.map.len() >= MAX_SESSIONS {
            if let Some(oldest) = g.map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                g.map.remove(&oldest);
            }
        }
        let s = Arc::new(Mutex::new(Session::new(session_id, auth_key_id, unique_id())));
        g.map.insert((auth_key_id, session_id), (s.clone(), tick));
        s
    }

    /// `destroy_session`: true if it existed.
    pub fn remove(&self, auth_key_id: i64, session_id: i64) -> bool {
        self.inner.lock().unwrap().map.remove(&(auth_key_id, session_id)).is_some()
    }
}
