//! Encrypted sessions outlive connections: replay protection and msg_id ordering are per
//! (auth key, session_id), so a client that reconnects with the same session keeps them.
//!
//! **Forgetting a session never reopens a replay window.** Whenever a session is forgotten
//! (`destroy_session`, eviction), its key records a *floor*: the highest msg_id the session
//! accepted. A session created later for that key refuses msg_ids at or below the floor with
//! 16, so captured ciphertext cannot run again in it; a legitimate client's newer msg_ids
//! pass. A floor is kept until the msg_id time window (300 s past, 30 s future) refuses
//! everything below it by itself. The process start is a floor for every key: a session of
//! an earlier process may have run any msg_id up to then (docs/security.md §3.4).
//!
//! Bounded per party, never globally exhaustible by one: a key holds at most `per_key`
//! sessions and a source address at most `per_addr` (beyond either, that key's or address's
//! own least recently used session is forgotten); the whole registry holds `max_sessions`,
//! beyond which the least recently used session anywhere is forgotten. Each session costs
//! its replay window, a sorted ring that grows with use to at most 8 KiB.

use herald_mtproto::session::{msg_id_at, Session, MAX_FUTURE_SECS, MAX_PAST_SECS};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How long a floor must be kept: after this, the time window refuses what it covers.
pub const FLOOR_TTL_MS: i64 = (MAX_PAST_SECS + MAX_FUTURE_SECS + 5) * 1000;
/// Floors kept at most; more fold into the registry-wide floor (safe, but it makes
/// every new session refuse slightly older msg_ids). Per-address quotas (`floors_per_addr`)
/// keep one address from getting there.
pub const MAX_FLOORS: usize = 200_000;

#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub max_sessions: usize,
    pub per_key: usize,
    pub per_addr: usize,
    /// Floors an address's forgotten sessions may leave; past it the address gets no new
    /// session (-429) until they expire.
    pub floors_per_addr: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self { max_sessions: 200_000, per_key: 64, per_addr: 4096, floors_per_addr: 16_384 }
    }
}

type Shared = Arc<Mutex<Session>>;
type Id = (i64, i64);

struct Entry {
    session: Shared,
    tick: u64,
    addr: IpAddr,
}

struct Floor {
    msg_id: i64,
    expires_ms: i64,
    addr: IpAddr,
}

struct Inner {
    limits: SessionLimits,
    map: HashMap<Id, Entry>,
    /// Global least-recently-used order.
    order: BTreeMap<u64, Id>,
    /// Each key's sessions in least-recently-used order: (tick, session id), ticks rising.
    /// A vector, not a map: a key has at most `per_key` (64) sessions and most have one,
    /// which a B-tree node would hold in 200 bytes.
    per_key: HashMap<i64, Vec<(u64, i64)>>,
    /// Each address's sessions in least-recently-used order.
    per_addr: HashMap<IpAddr, BTreeMap<u64, Id>>,
    /// auth_key_id → its floor.
    floors: HashMap<i64, Floor>,
    /// How many floors each address's forgotten sessions left.
    floors_per_addr: HashMap<IpAddr, usize>,
    /// A floor for every key: the process start, raised when `floors` overflows.
    global_floor: i64,
    tick: u64,
}

impl Inner {
    /// Forgets a session, recording its key's floor.
    fn forget(&mut self, id: Id, now_ms: i64) -> bool {
        let Some(e) = self.map.remove(&id) else { return false };
        self.order.remove(&e.tick);
        if let Some(k) = self.per_key.get_mut(&id.0) {
            k.retain(|(t, _)| *t != e.tick);
            if k.is_empty() {
                self.per_key.remove(&id.0);
            }
        }
        if let Some(a) = self.per_addr.get_mut(&e.addr) {
            a.remove(&e.tick);
            if a.is_empty() {
                self.per_addr.remove(&e.addr);
            }
        }
        // Under the session's lock: nothing runs in it after this, so its maximum is final.
        let floor = e.session.lock().unwrap().retire();
        self.raise_floor(id.0, floor, e.addr, now_ms);
        true
    }

    fn raise_floor(&mut self, key: i64, floor: i64, addr: IpAddr, now_ms: i64) {
        if floor <= self.global_floor {
            return;
        }
        let expires_ms = now_ms + FLOOR_TTL_MS;
        if let Some(f) = self.floors.get_mut(&key) {
            f.msg_id = f.msg_id.max(floor);
            f.expires_ms = expires_ms;
            return;
        }
        if self.floors.len() >= MAX_FLOORS {
            self.global_floor = self.global_floor.max(floor);
        } else {
            self.floors.insert(key, Floor { msg_id: floor, expires_ms, addr });
            *self.floors_per_addr.entry(addr).or_default() += 1;
        }
    }

    fn floor_for(&self, key: i64, now_ms: i64) -> i64 {
        let own = self.floors.get(&key).filter(|f| f.expires_ms > now_ms).map_or(0, |f| f.msg_id);
        own.max(self.global_floor)
    }

    fn sweep(&mut self, now_ms: i64) {
        let per_addr = &mut self.floors_per_addr;
        self.floors.retain(|_, f| {
            let keep = f.expires_ms > now_ms;
            if !keep {
                if let Some(n) = per_addr.get_mut(&f.addr) {
                    *n -= 1;
                    if *n == 0 {
                        per_addr.remove(&f.addr);
                    }
                }
            }
            keep
        });
    }
}

pub struct SessionRegistry {
    // A std Mutex: every operation is a few map updates and never awaits.
    inner: Mutex<Inner>,
}

impl SessionRegistry {
    /// A registry for a process that started at `start_ms`: no session accepts a msg_id
    /// stamped before then.
    pub fn new(limits: SessionLimits, start_ms: i64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                limits,
                map: HashMap::new(),
                order: BTreeMap::new(),
                per_key: HashMap::new(),
                per_addr: HashMap::new(),
                floors: HashMap::new(),
                floors_per_addr: HashMap::new(),
                global_floor: msg_id_at(start_ms),
                tick: 0,
            }),
        }
    }

    /// The session, created if new (`make` builds it; the registry sets its floor). None when
    /// `addr` has used up its floor quota (the caller answers -429).
    pub fn get_or_create(&self, auth_key_id: i64, session_id: i64, addr: IpAddr, now_ms: i64, make: impl FnOnce() -> Session) -> Option<Shared> {
        let id = (auth_key_id, session_id);
        let mut g = self.inner.lock().unwrap();
        g.tick += 1;
        let tick = g.tick;
        if let Some(e) = g.map.get_mut(&id) {
            let (old, a) = (std::mem::replace(&mut e.tick, tick), e.addr);
            let s = e.session.clone();
            g.order.remove(&old);
            g.order.insert(tick, id);
            let k = g.per_key.entry(auth_key_id).or_default();
            k.retain(|(t, _)| *t != old);
            k.push((tick, session_id));
            let a = g.per_addr.entry(a).or_default();
            a.remove(&old);
            a.insert(tick, id);
            return Some(s);
        }
        let limits = g.limits;
        if g.floors_per_addr.get(&addr).is_some_and(|&n| n >= limits.floors_per_addr) {
            g.sweep(now_ms);
            if g.floors_per_addr.get(&addr).is_some_and(|&n| n >= limits.floors_per_addr) {
                return None;
            }
        }
        if g.per_key.get(&auth_key_id).is_some_and(|k| k.len() >= limits.per_key) {
            let oldest = g.per_key[&auth_key_id][0].1;
            g.forget((auth_key_id, oldest), now_ms);
        }
        if g.per_addr.get(&addr).is_some_and(|a| a.len() >= limits.per_addr) {
            let oldest = *g.per_addr[&addr].values().next().unwrap();
            g.forget(oldest, now_ms);
        }
        if g.map.len() >= limits.max_sessions {
            let oldest = *g.order.values().next().unwrap();
            g.forget(oldest, now_ms);
        }
        let floor = g.floor_for(auth_key_id, now_ms);
        let s = Arc::new(Mutex::new(make().with_floor(floor)));
        g.map.insert(id, Entry { session: s.clone(), tick, addr });
        g.order.insert(tick, id);
        g.per_key.entry(auth_key_id).or_default().push((tick, session_id));
        g.per_addr.entry(addr).or_default().insert(tick, id);
        Some(s)
    }

    /// An existing session (pushes never create one).
    pub fn get(&self, auth_key_id: i64, session_id: i64) -> Option<Shared> {
        self.inner.lock().unwrap().map.get(&(auth_key_id, session_id)).map(|e| e.session.clone())
    }

    /// `destroy_session`: true if it existed. Its key keeps a floor (see the module docs).
    pub fn remove(&self, auth_key_id: i64, session_id: i64, now_ms: i64) -> bool {
        self.inner.lock().unwrap().forget((auth_key_id, session_id), now_ms)
    }

    /// Drops floors the time window now covers by itself.
    pub fn sweep(&self, now_ms: i64) {
        self.inner.lock().unwrap().sweep(now_ms);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many sessions `addr` holds.
    pub fn count_for(&self, addr: IpAddr) -> usize {
        self.inner.lock().unwrap().per_addr.get(&addr).map_or(0, |a| a.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_800_000_000_000;
    fn a(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }
    fn small() -> SessionRegistry {
        SessionRegistry::new(SessionLimits { max_sessions: 100, per_key: 4, per_addr: 10, floors_per_addr: 1000 }, START)
    }
    fn make(sid: i64) -> impl FnOnce() -> Session {
        move || Session::new(sid, 0, 0)
    }
    /// Has the session accept one message stamped at `unix_ms` (+250 ms, a valid fraction).
    fn used(s: Option<Shared>, unix_ms: i64) -> bool {
        let Some(s) = s else { return false };
        let salts = herald_mtproto::salt::Salts::new([0; 32]);
        let now = herald_mtproto::session::Now { unix_ms: unix_ms + 250 };
        let mut g = s.lock().unwrap();
        let h = herald_mtproto::session::Header { salt: salts.current(0, now.secs()), session_id: g.id(), msg_id: msg_id_at(now.unix_ms), seq_no: 1 };
        let mut out = Default::default();
        g.receive(h, &1u32.to_le_bytes(), now, &salts, &mut out);
        true
    }

    #[test]
    fn a_key_or_an_address_only_ever_evicts_its_own_sessions() {
        let r = small();
        let victim = r.get_or_create(1, 1, a(1), START, make(1)).unwrap();
        for sid in 0..12 {
            r.get_or_create(2, sid, a(2), START, make(sid));
        }
        assert!(Arc::ptr_eq(&victim, &r.get(1, 1).unwrap()), "the victim's session survives");
        assert_eq!(r.len(), 1 + 4);
        // many keys from one address: the address's cap applies
        for key in 10..40 {
            r.get_or_create(key, 0, a(2), START, make(0));
        }
        assert_eq!(r.count_for(a(2)), 10);
        assert!(r.get(1, 1).is_some());
    }

    #[test]
    fn the_registry_cannot_be_filled_by_one_address() {
        let r = small();
        let victim = r.get_or_create(1, 1, a(1), START, make(1)).unwrap();
        for key in 100..1000 {
            r.get_or_create(key, 0, a(9), START, make(0));
        }
        assert!(r.get(1, 1).is_some_and(|s| Arc::ptr_eq(&s, &victim)));
        assert!(r.len() <= 11);
    }

    #[test]
    fn forgotten_sessions_leave_a_floor_for_their_key() {
        let r = small();
        let salts = herald_mtproto::salt::Salts::new([0; 32]);
        let now = herald_mtproto::session::Now { unix_ms: START + 5250 };
        let s = r.get_or_create(1, 1, a(1), now.unix_ms, make(1)).unwrap();
        let id = msg_id_at(now.unix_ms);
        let h = herald_mtproto::session::Header { salt: salts.current(0, now.secs()), session_id: 1, msg_id: id, seq_no: 1 };
        let mut out = Default::default();
        s.lock().unwrap().receive(h, &1u32.to_le_bytes(), now, &salts, &mut out);
        assert!(r.remove(1, 1, now.unix_ms) && !r.remove(1, 1, now.unix_ms));
        assert!(s.lock().unwrap().is_retired());
        let again = r.get_or_create(1, 1, a(1), now.unix_ms, make(1)).unwrap();
        assert_eq!(again.lock().unwrap().max_seen(), id);
        // another key is not affected beyond the process start
        let other = r.get_or_create(2, 1, a(1), now.unix_ms, make(1)).unwrap();
        assert_eq!(other.lock().unwrap().max_seen(), msg_id_at(START));
        // after the window the floor goes
        r.sweep(now.unix_ms + FLOOR_TTL_MS + 1);
        assert!(r.inner.lock().unwrap().floors.is_empty());
        assert!(r.inner.lock().unwrap().floors_per_addr.is_empty());
    }

    #[test]
    fn an_address_cannot_leave_floors_without_bound() {
        let r = SessionRegistry::new(SessionLimits { max_sessions: 100, per_key: 4, per_addr: 2, floors_per_addr: 5 }, START);
        // sessions of fresh keys from one address: each eviction leaves a floor for its key
        let t = START + 10_000;
        let mut created = 0;
        for key in 0..20 {
            if used(r.get_or_create(key, 0, a(2), t, make(0)), t) {
                created += 1;
            }
        }
        assert_eq!(created, 2 + 5, "two sessions, then five evictions' floors, then refusals");
        // other addresses are unaffected, and the global floor stayed at the process start
        assert!(r.get_or_create(100, 0, a(3), t, make(0)).is_some());
        assert_eq!(r.inner.lock().unwrap().global_floor, msg_id_at(START));
        // once the floors expire the address may go on
        assert!(r.get_or_create(50, 0, a(2), t + FLOOR_TTL_MS + 1, make(0)).is_some());
    }
}
