//! Encrypted sessions outlive connections: replay protection and msg_id ordering are per
//! (auth key, session_id), so a client that reconnects with the same session keeps them.
//!
//! **Forgetting a session never reopens a replay window.** Whenever a session is forgotten
//! (`destroy_session`, eviction), its key records a *floor*: the highest msg_id the session
//! accepted. A session created later for that key refuses msg_ids at or below the floor with
//! 16, so captured ciphertext cannot run again in it; a legitimate client's newer msg_ids
//! pass. A floor is kept until the msg_id time window (300 s past, 30 s future) refuses
//! everything below it by itself. The process start (when it locked the data directory) is a
//! floor for every key: a session of an earlier process may have run any msg_id up to then
//! (docs/security.md §3.4).
//!
//! Bounded per party, never globally exhaustible by one: a key holds at most `per_key`
//! sessions and a source address at most `per_addr` (beyond either, that key's or address's
//! own least recently used session is forgotten); the whole registry holds `max_sessions`,
//! beyond which the least recently used session anywhere is forgotten. Each session costs
//! its replay window, a sorted ring that grows with use to at most 8 KiB.
//!
//! **Least recently used, kept lazily.** Every encrypted message touches its session, so a
//! touch only records the time of use in the session's entry. The orders eviction reads
//! (global and per address) hold each session once, at the tick it was last *queued*;
//! eviction takes the front and, when that session was used since it was queued, queues it
//! again at its last use and looks again (each use moves a session at most once). A key's
//! sessions are one range of the (auth key, session) ordered map, so no per-key index is
//! kept: an idle signed-in connection's session costs about 150 bytes of registry, not 350.

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
    /// The last use.
    tick: u64,
    /// Where the session stands in `order` and in its address's order: its last use when
    /// it was last queued (`tick` when unused since).
    queued: u64,
    addr: IpAddr,
}

struct Floor {
    msg_id: i64,
    expires_ms: i64,
    addr: IpAddr,
}

struct Inner {
    limits: SessionLimits,
    /// Ordered, so that a key's sessions are the range `(key, ..)`: at most `per_key`
    /// (64), most keys have one.
    map: BTreeMap<Id, Entry>,
    /// Every session by the tick it was queued at (see the module docs).
    order: BTreeMap<u64, Id>,
    /// Each address's sessions by the tick they were queued at.
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
        self.order.remove(&e.queued);
        if let Some(a) = self.per_addr.get_mut(&e.addr) {
            a.remove(&e.queued);
            if a.is_empty() {
                self.per_addr.remove(&e.addr);
            }
        }
        // Under the session's lock: nothing runs in it after this, so its maximum is final.
        let floor = e.session.lock().unwrap().retire();
        self.raise_floor(id.0, floor, e.addr, now_ms);
        true
    }

    /// The least recently used session of the whole registry (`addr` None) or of an
    /// address. Sessions used since they were queued are queued again at their last use on
    /// the way: at most one move per use, so the work is paid by the uses, though the first
    /// eviction from a full registry whose sessions were all used may do many at once.
    fn least_recent(&mut self, addr: Option<IpAddr>) -> Option<Id> {
        loop {
            let front = match addr {
                None => self.order.first_key_value(),
                Some(a) => self.per_addr.get(&a).and_then(|o| o.first_key_value()),
            };
            let (_, id) = front?;
            let id = *id;
            let e = self.map.get_mut(&id).expect("every queued session is in the map");
            if e.tick == e.queued {
                return Some(id);
            }
            let (old, new) = (std::mem::replace(&mut e.queued, e.tick), e.tick);
            self.order.remove(&old);
            self.order.insert(new, id);
            let o = self.per_addr.get_mut(&e.addr).expect("every session's address has an order");
            o.remove(&old);
            o.insert(new, id);
        }
    }

    /// A key's sessions, with their last uses.
    fn of_key(&self, key: i64) -> impl Iterator<Item = (Id, u64)> + '_ {
        self.map.range((key, i64::MIN)..=(key, i64::MAX)).map(|(id, e)| (*id, e.tick))
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
                map: BTreeMap::new(),
                order: BTreeMap::new(),
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
            e.tick = tick;
            return Some(e.session.clone());
        }
        let limits = g.limits;
        if g.floors_per_addr.get(&addr).is_some_and(|&n| n >= limits.floors_per_addr) {
            g.sweep(now_ms);
            if g.floors_per_addr.get(&addr).is_some_and(|&n| n >= limits.floors_per_addr) {
                return None;
            }
        }
        if g.of_key(auth_key_id).nth(limits.per_key.saturating_sub(1)).is_some() {
            if let Some((oldest, _)) = g.of_key(auth_key_id).min_by_key(|(_, used)| *used) {
                g.forget(oldest, now_ms);
            }
        }
        if g.per_addr.get(&addr).is_some_and(|a| a.len() >= limits.per_addr) {
            if let Some(oldest) = g.least_recent(Some(addr)) {
                g.forget(oldest, now_ms);
            }
        }
        if g.map.len() >= limits.max_sessions {
            if let Some(oldest) = g.least_recent(None) {
                g.forget(oldest, now_ms);
            }
        }
        let floor = g.floor_for(auth_key_id, now_ms);
        let s = Arc::new(Mutex::new(make().with_floor(floor)));
        g.map.insert(id, Entry { session: s.clone(), tick, queued: tick, addr });
        g.order.insert(tick, id);
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

    /// A session used since it was queued is not the one evicted: the registry's, an
    /// address's and a key's least recently used session goes, by last use.
    #[test]
    fn eviction_goes_by_last_use() {
        let r = SessionRegistry::new(SessionLimits { max_sessions: 3, per_key: 2, per_addr: 3, floors_per_addr: 1000 }, START);
        let alive = |key, sid| r.get(key, sid).is_some();
        // the registry: 1 is the oldest created but used last
        for key in 1..=3 {
            r.get_or_create(key, 0, a(key as u8), START, make(0));
        }
        r.get_or_create(1, 0, a(1), START, make(0));
        r.get_or_create(4, 0, a(4), START, make(0));
        assert!(alive(1, 0) && !alive(2, 0) && alive(3, 0) && alive(4, 0));
        // used twice since: 3 is requeued, 4 then goes
        r.get_or_create(3, 0, a(3), START, make(0));
        r.get_or_create(3, 0, a(3), START, make(0));
        r.get_or_create(1, 0, a(1), START, make(0));
        r.get_or_create(5, 0, a(5), START, make(0));
        assert!(alive(1, 0) && alive(3, 0) && !alive(4, 0) && alive(5, 0));

        // an address
        let r = SessionRegistry::new(SessionLimits { max_sessions: 100, per_key: 64, per_addr: 2, floors_per_addr: 1000 }, START);
        r.get_or_create(10, 0, a(7), START, make(0));
        r.get_or_create(11, 0, a(7), START, make(0));
        r.get_or_create(10, 0, a(7), START, make(0));
        r.get_or_create(12, 0, a(7), START, make(0));
        assert!(r.get(10, 0).is_some() && r.get(11, 0).is_none() && r.get(12, 0).is_some());
        assert_eq!(r.count_for(a(7)), 2);

        // a key
        let r = SessionRegistry::new(SessionLimits { max_sessions: 100, per_key: 2, per_addr: 100, floors_per_addr: 1000 }, START);
        r.get_or_create(20, 1, a(8), START, make(1));
        r.get_or_create(20, 2, a(8), START, make(2));
        r.get_or_create(21, 1, a(8), START, make(1));
        r.get_or_create(20, 1, a(8), START, make(1));
        r.get_or_create(20, 3, a(8), START, make(3));
        assert!(r.get(20, 1).is_some() && r.get(20, 2).is_none() && r.get(20, 3).is_some() && r.get(21, 1).is_some());
        let g = r.inner.lock().unwrap();
        assert_eq!((g.map.len(), g.order.len(), g.per_addr[&a(8)].len()), (3, 3, 3), "the orders hold each session once");
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
