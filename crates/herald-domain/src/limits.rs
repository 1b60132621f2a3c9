//! Flood control, one mechanism for every limit: token buckets keyed per account (or any
//! key), their sizes in one table ([`FloodTable`]) that operators may override and
//! docs/security.md §3.6 lists. A bucket holds up to `burst` tokens and refills at `per_sec`;
//! an action that costs more than what is left is refused with the seconds to wait
//! (`FLOOD_WAIT_X`). Repeat offenders wait longer: a refusal less than [`REPEAT_WINDOW_MS`]
//! after the previous wait ended doubles the wait (up to 2^[`MAX_STRIKES`] times, at most a
//! day), and a request made before its wait is over is refused for the rest of the wait. In
//! memory and per process: a limit, not a record, so losing it on restart costs nothing but a
//! fresh burst.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub burst: f64,
    pub per_sec: f64,
}

impl Bucket {
    /// `burst` at once, then `count` per `period_secs`.
    pub const fn per(burst: f64, count: f64, period_secs: f64) -> Self {
        Self { burst, per_sec: count / period_secs }
    }

    /// Parses `BURST,COUNT/UNIT` (UNIT one of `s`, `m`, `h`, `d`), e.g. `5000,1000/s`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = || format!("{spec:?} is not BURST,COUNT/UNIT (e.g. \"50,10/m\"; UNIT s, m, h or d)");
        let (burst, rate) = spec.split_once(',').ok_or_else(bad)?;
        let (count, unit) = rate.trim().split_once('/').ok_or_else(bad)?;
        let period = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(bad()),
        };
        let burst: f64 = burst.trim().parse().map_err(|_| bad())?;
        let count: f64 = count.trim().parse().map_err(|_| bad())?;
        if !(burst >= 1.0 && burst.is_finite() && count > 0.0 && count.is_finite()) {
            return Err(format!("{spec:?}: the burst must be at least 1 and the count positive"));
        }
        Ok(Self::per(burst, count, period))
    }
}

impl std::fmt::Display for Bucket {
    /// The form [`Bucket::parse`] reads, in the smallest unit with a whole count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (count, unit) = [("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86_400.0)]
            .into_iter()
            .map(|(u, secs)| (self.per_sec * secs, u))
            .find(|(c, _)| *c >= 1.0 && (c - c.round()).abs() < 1e-6)
            .unwrap_or((self.per_sec, "s"));
        write!(f, "{},{}/{}", self.burst, (count * 1e6).round() / 1e6, unit)
    }
}

/// Every flood limit by name, with Telegram-like defaults far above what a person does. The
/// names are what the `[flood]` table of the config file and `--flood NAME=SPEC` take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodTable {
    /// Messages sent or edited per account (also reactions, history TTL changes).
    pub sends: Bucket,
    /// Bytes an account adds to the store (text, entities, a fixed overhead per message).
    pub stored_bytes: Bucket,
    /// Post views counted per account (past it, answered without counting: no wait).
    pub counted_views: Bucket,
    /// Groups and channels created per account.
    pub group_creations: Bucket,
    /// Invite links exported or edited, and join requests filed, per account.
    pub invite_links: Bucket,
    /// Phone numbers looked up per account (`importContacts`, `resolvePhone`).
    pub phone_lookups: Bucket,
    /// Online/offline changes told to contacts per account (past it, not told: no wait).
    pub status_changes: Bucket,
    /// Emails with password codes per account.
    pub email_codes: Bucket,
    /// Typing notices per member and supergroup (past it, dropped: no wait).
    pub typing: Bucket,
    /// `messages.search`, `messages.searchGlobal`, `contacts.search` per account: each is a
    /// full-text or prefix query.
    pub search: Bucket,
    /// `contacts.resolveUsername` per account: the way to enumerate usernames.
    pub username_lookups: Bucket,
    /// Profile changes per account: name, about, username, birthday and the like.
    pub profile_edits: Bucket,
}

impl Default for FloodTable {
    fn default() -> Self {
        Self {
            sends: Bucket::per(5000.0, 1000.0, 1.0),
            stored_bytes: Bucket::per(256.0 * 1024.0 * 1024.0, 1024.0 * 1024.0 * 1024.0, 86_400.0),
            counted_views: Bucket::per(2000.0, 20.0, 1.0),
            group_creations: Bucket::per(50.0, 50.0, 86_400.0),
            invite_links: Bucket::per(200.0, 6.0, 60.0),
            phone_lookups: Bucket::per(500.0, 200.0, 3600.0),
            status_changes: Bucket::per(10.0, 10.0, 60.0),
            email_codes: Bucket::per(5.0, 5.0, 3600.0),
            typing: Bucket::per(1.0, 1.0, 3.0),
            search: Bucket::per(100.0, 5.0, 1.0),
            username_lookups: Bucket::per(500.0, 500.0, 3600.0),
            profile_edits: Bucket::per(50.0, 10.0, 60.0),
        }
    }
}

impl FloodTable {
    /// Every row, by name.
    pub fn rows(&self) -> Vec<(&'static str, Bucket)> {
        let mut copy = *self;
        copy.rows_mut().into_iter().map(|(n, b)| (n, *b)).collect()
    }

    fn rows_mut(&mut self) -> [(&'static str, &mut Bucket); 12] {
        [
            ("sends", &mut self.sends),
            ("stored_bytes", &mut self.stored_bytes),
            ("counted_views", &mut self.counted_views),
            ("group_creations", &mut self.group_creations),
            ("invite_links", &mut self.invite_links),
            ("phone_lookups", &mut self.phone_lookups),
            ("status_changes", &mut self.status_changes),
            ("email_codes", &mut self.email_codes),
            ("typing", &mut self.typing),
            ("search", &mut self.search),
            ("username_lookups", &mut self.username_lookups),
            ("profile_edits", &mut self.profile_edits),
        ]
    }

    /// Replaces row `name` with `spec` ([`Bucket::parse`]).
    pub fn set(&mut self, name: &str, spec: &str) -> Result<(), String> {
        let bucket = Bucket::parse(spec).map_err(|e| format!("flood limit {name}: {e}"))?;
        let mut rows = self.rows_mut();
        let known: Vec<&str> = rows.iter().map(|(n, _)| *n).collect::<Vec<_>>();
        let Some((_, row)) = rows.iter_mut().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flood limit {name:?}; known: {}", known.join(", ")));
        };
        **row = bucket;
        Ok(())
    }
}

/// Keys tracked before idle buckets are first swept out; after a sweep the next one waits
/// until the map has doubled, so sweeping stays amortised O(1) per call.
const SWEEP_AT: usize = 100_000;
/// A refusal this soon after the previous wait ended makes the key a repeat offender.
pub const REPEAT_WINDOW_MS: i64 = 3_600_000;
/// Doublings of the wait at most (64 times the plain wait).
pub const MAX_STRIKES: u32 = 6;
/// The longest wait ever asked.
pub const MAX_WAIT_SECS: i64 = 86_400;

struct State {
    tokens: f64,
    at: i64,
    /// Until when the key was told to wait (ms; 0: never).
    until: i64,
    /// Refusals in a row, each within [`REPEAT_WINDOW_MS`] of the previous wait's end.
    strikes: u32,
}

struct Buckets<K> {
    map: HashMap<K, State>,
    next_sweep: usize,
}

pub struct Limiter<K> {
    spec: Bucket,
    /// Refusals are waits the client is told of (`FLOOD_WAIT_X`): enforced and escalated.
    /// Silent limiters (an action dropped, no error) only refill.
    escalate: bool,
    // A std Mutex: one map lookup per call.
    inner: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq> Limiter<K> {
    /// A limit answered with `FLOOD_WAIT_X`, longer for repeat offenders.
    pub fn new(spec: Bucket) -> Self {
        Self { spec, escalate: true, inner: Mutex::new(Buckets { map: HashMap::new(), next_sweep: SWEEP_AT }) }
    }

    /// A limit past which the action is dropped without telling the client (typing, counted
    /// views, status pushes): no wait to enforce, so none grows.
    pub fn silent(spec: Bucket) -> Self {
        Self { escalate: false, ..Self::new(spec) }
    }

    /// Spends `cost` tokens of `key`'s bucket at `now_ms`, or returns the whole seconds to
    /// wait (nothing is spent then).
    pub fn take(&self, key: K, cost: f64, now_ms: i64) -> Result<(), i64> {
        let Bucket { burst, per_sec } = self.spec;
        let cost = cost.min(burst);
        let mut g = self.inner.lock().unwrap();
        if g.map.len() >= g.next_sweep {
            g.map.retain(|_, s| s.tokens + (now_ms - s.at) as f64 / 1000.0 * per_sec < burst || now_ms < s.until + REPEAT_WINDOW_MS);
            g.next_sweep = (g.map.len() * 2).max(SWEEP_AT);
        }
        let s = g.map.entry(key).or_insert(State { tokens: burst, at: now_ms, until: 0, strikes: 0 });
        s.tokens = (s.tokens + (now_ms - s.at).max(0) as f64 / 1000.0 * per_sec).min(burst);
        s.at = now_ms;
        if self.escalate && now_ms < s.until {
            // Back before the wait it was told is over (or a request that was already in
            // flight): the rest of the wait, not a longer one.
            return Err(((s.until - now_ms + 999) / 1000).max(1));
        }
        if s.tokens >= cost {
            s.tokens -= cost;
            return Ok(());
        }
        let wait = (((cost - s.tokens) / per_sec).ceil() as i64).max(1);
        if !self.escalate {
            return Err(wait);
        }
        s.strikes = if s.until > 0 && now_ms - s.until < REPEAT_WINDOW_MS { (s.strikes + 1).min(MAX_STRIKES) } else { 0 };
        let wait = wait.saturating_mul(1 << s.strikes).min(MAX_WAIT_SECS);
        s.until = now_ms + wait * 1000;
        Err(wait)
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

    #[test]
    fn repeat_offenders_wait_longer_and_the_well_behaved_do_not() {
        let l = Limiter::new(Bucket { burst: 1.0, per_sec: 1.0 });
        assert_eq!(l.take(1, 1.0, 0), Ok(()));
        // Many requests in flight at once: one wait, the same for all.
        for _ in 0..5 {
            assert_eq!(l.take(1, 1.0, 0), Err(1));
        }
        // Back too early: the rest of the wait, even though a token has refilled meanwhile.
        assert_eq!(l.take(1, 1.0, 500), Err(1));
        // Back on time: served; then flooding again at once doubles the wait, and again.
        assert_eq!(l.take(1, 1.0, 1000), Ok(()));
        assert_eq!(l.take(1, 1.0, 1000), Err(2));
        assert_eq!(l.take(1, 1.0, 3000), Ok(()));
        assert_eq!(l.take(1, 1.0, 3000), Err(4));
        assert_eq!(l.take(1, 1.0, 4000), Err(3), "the rest of the wait");
        // Capped: at most 2^MAX_STRIKES times, however long it goes on.
        let mut now = 7000;
        for _ in 0..20 {
            assert_eq!(l.take(1, 1.0, now), Ok(()));
            let w = l.take(1, 1.0, now).unwrap_err();
            assert!(w <= 1 << MAX_STRIKES, "{w}");
            now += w * 1000;
        }
        assert_eq!(l.take(1, 1.0, now), Ok(()));
        assert_eq!(l.take(1, 1.0, now), Err(1 << MAX_STRIKES));
        // An hour of good behaviour forgives.
        now += (1 << MAX_STRIKES) * 1000 + REPEAT_WINDOW_MS;
        assert_eq!(l.take(1, 1.0, now), Ok(()));
        assert_eq!(l.take(1, 1.0, now), Err(1));
        // A client that spends its budget steadily, never refused, never waits.
        let steady = Limiter::new(Bucket { burst: 2.0, per_sec: 1.0 });
        for t in 0..100 {
            assert_eq!(steady.take(9, 1.0, t * 1000), Ok(()));
        }
    }

    #[test]
    fn silent_limits_neither_enforce_nor_grow_waits() {
        let l = Limiter::silent(Bucket { burst: 1.0, per_sec: 1.0 });
        assert_eq!(l.take(1, 1.0, 0), Ok(()));
        assert_eq!(l.take(1, 1.0, 0), Err(1));
        assert_eq!(l.take(1, 1.0, 0), Err(1));
        assert_eq!(l.take(1, 1.0, 1000), Ok(()));
        assert_eq!(l.take(1, 1.0, 1000), Err(1));
    }

    #[test]
    fn the_table_reads_and_writes_its_rows_by_name() {
        let mut t = FloodTable::default();
        assert_eq!(t.sends, Bucket { burst: 5000.0, per_sec: 1000.0 });
        t.set("sends", "100, 10/s").unwrap();
        assert_eq!(t.sends, Bucket { burst: 100.0, per_sec: 10.0 });
        t.set("group_creations", "5,50/d").unwrap();
        assert_eq!(t.group_creations, Bucket::per(5.0, 50.0, 86_400.0));
        assert!(t.set("sendz", "1,1/s").unwrap_err().contains("unknown flood limit"));
        for bad in ["", "5", "5,1", "5,1/w", "0,1/s", "5,0/s", "x,1/s", "5,-1/m", "inf,1/s"] {
            assert!(t.set("search", bad).is_err(), "{bad:?}");
        }
        // Every row prints in the form it is read back from.
        for (name, b) in FloodTable::default().rows() {
            let printed = b.to_string();
            let back = Bucket::parse(&printed).unwrap();
            assert!((back.burst - b.burst).abs() < 1e-9 && (back.per_sec - b.per_sec).abs() / b.per_sec < 1e-6, "{name}: {printed}");
        }
        assert_eq!(FloodTable::default().group_creations.to_string(), "50,50/d");
        assert_eq!(FloodTable::default().sends.to_string(), "5000,1000/s");
        assert_eq!(FloodTable::default().typing.to_string(), "1,20/m");
    }
}
