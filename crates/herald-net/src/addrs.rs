//! Per-source-address accounting: what one address may hold, so that no single address can
//! lock everyone else out (docs/security.md §3).
//!
//! For each address: open connections, connections that have not yet spoken with an auth key
//! ("unauthenticated"), bytes buffered in partial frames, and a token bucket for key
//! exchanges with one key-exchange computation at a time. Across all addresses: the bytes
//! buffered in partial frames. Beyond a limit the caller answers transport -429 and closes.
//! An address's entry lives while it has connections, and after that until its key-exchange
//! bucket has refilled (so closing connections does not reset the rate).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Clone, Copy, Debug)]
pub struct AddrLimits {
    /// Open connections per address.
    pub connections: usize,
    /// Connections per address that have not yet sent a valid encrypted message.
    pub unauthenticated: usize,
    /// Key exchanges (req_DH_params) per second per address, sustained.
    pub key_exchanges_per_sec: f64,
    /// Key exchanges an address may start at once before the rate applies.
    pub key_exchange_burst: f64,
    /// Bytes of partial frames buffered per address.
    pub buffered: usize,
    /// Bytes of partial frames buffered across all connections.
    pub buffered_total: usize,
    /// Bytes of answers waiting to be written, per address and in all.
    pub output: usize,
    pub output_total: usize,
}

impl Default for AddrLimits {
    fn default() -> Self {
        Self {
            connections: 4096,
            // Key exchanges are serialised per address (one computation at a time), so the
            // bucket is generous; a load test from one address raises `unauthenticated`
            // (herald-bench spreads over several loopback addresses instead).
            unauthenticated: 512,
            key_exchanges_per_sec: 100.0,
            key_exchange_burst: 500.0,
            buffered: 16 << 20,
            buffered_total: 512 << 20,
            output: 64 << 20,
            output_total: 1 << 30,
        }
    }
}

/// The "address" limits count by: an IPv4 address (IPv4-mapped IPv6 included), or an IPv6
/// /64, the block one host or one customer is given, so that rotating through a prefix does
/// not multiply the allowance.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why an address was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Connections,
    Unauthenticated,
    KeyExchangeRate,
    Buffered,
    BufferedTotal,
    Output,
    OutputTotal,
    Sessions,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Connections => "connections_per_address",
            Refusal::Unauthenticated => "unauthenticated_per_address",
            Refusal::KeyExchangeRate => "key_exchange_rate",
            Refusal::Buffered => "buffered_per_address",
            Refusal::BufferedTotal => "buffered_total",
            Refusal::Output => "output_per_address",
            Refusal::OutputTotal => "output_total",
            Refusal::Sessions => "sessions_per_address",
        }
    }
}

struct AddrState {
    conns: usize,
    unauth: usize,
    buffered: usize,
    output: usize,
    tokens: f64,
    refilled: Instant,
    /// One key-exchange computation at a time per address.
    kx: Arc<Semaphore>,
    /// Refusals this address may still get answered with -429 (a token bucket).
    answer_tokens: f64,
    answered_at: Instant,
}

/// Refused connections per address answered with -429, at once and then per second; beyond,
/// they are closed without an answer.
pub const REFUSAL_ANSWERS_BURST: f64 = 100.0;
pub const REFUSAL_ANSWERS_PER_SEC: f64 = 20.0;

/// A refused connection: why, and whether to answer it with -429 (or just close it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: Refusal,
    pub answer: bool,
}

pub struct AddrTable {
    limits: AddrLimits,
    // A std Mutex: each operation is a map lookup and a few additions.
    inner: Mutex<HashMap<IpAddr, AddrState>>,
    buffered_total: AtomicUsize,
    output_total: AtomicUsize,
    /// Key-exchange computations across all addresses (the blocking pool is far larger).
    kx_global: Arc<Semaphore>,
}

/// Longest a key exchange waits for its address's token before it is refused instead.
const MAX_TOKEN_WAIT: Duration = Duration::from_secs(5);

impl AddrTable {
    pub fn new(limits: AddrLimits) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Self {
            limits,
            inner: Mutex::new(HashMap::new()),
            buffered_total: AtomicUsize::new(0),
            output_total: AtomicUsize::new(0),
            kx_global: Arc::new(Semaphore::new(cores.max(2))),
        })
    }

    pub fn limits(&self) -> AddrLimits {
        self.limits
    }

    /// Admits a new connection from `addr`, counted as unauthenticated until
    /// [`Ticket::authenticated`].
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Ticket, Refused> {
        let mut g = self.inner.lock().unwrap();
        let burst = self.limits.key_exchange_burst;
        let s = g.entry(addr).or_insert_with(|| AddrState {
            conns: 0,
            unauth: 0,
            buffered: 0,
            output: 0,
            tokens: burst,
            refilled: Instant::now(),
            kx: Arc::new(Semaphore::new(1)),
            answer_tokens: REFUSAL_ANSWERS_BURST,
            answered_at: Instant::now(),
        });
        // An address whose partial frames already fill its budget gets no new connection to
        // send more on (reading it only to refuse it would cost the server the bytes).
        let refusal = if s.conns >= self.limits.connections {
            Some(Refusal::Connections)
        } else if s.unauth >= self.limits.unauthenticated {
            Some(Refusal::Unauthenticated)
        } else if s.buffered >= self.limits.buffered {
            Some(Refusal::Buffered)
        } else {
            None
        };
        if let Some(reason) = refusal {
            // -429 answers cost a task and a read each: an address that keeps reconnecting
            // gets them at a bounded rate, then plain closes.
            let now = Instant::now();
            s.answer_tokens = (s.answer_tokens + now.duration_since(s.answered_at).as_secs_f64() * REFUSAL_ANSWERS_PER_SEC).min(REFUSAL_ANSWERS_BURST);
            s.answered_at = now;
            let answer = s.answer_tokens >= 1.0;
            if answer {
                s.answer_tokens -= 1.0;
            }
            return Err(Refused { reason, answer });
        }
        s.conns += 1;
        s.unauth += 1;
        Ok(Ticket { table: self.clone(), addr, unauth: true, buffered: 0, output: 0 })
    }

    /// Takes a key-exchange token for `addr`: Ok(wait) when one is (or within a short wait
    /// will be) available, the caller sleeping `wait` first; Err when the address is over
    /// its rate.
    pub fn key_exchange_token(&self, addr: IpAddr) -> Result<Duration, Refusal> {
        let mut g = self.inner.lock().unwrap();
        let Some(s) = g.get_mut(&addr) else { return Ok(Duration::ZERO) };
        let now = Instant::now();
        let rate = self.limits.key_exchanges_per_sec.max(0.001);
        s.tokens = (s.tokens + now.duration_since(s.refilled).as_secs_f64() * rate).min(self.limits.key_exchange_burst);
        s.refilled = now;
        let wait = if s.tokens >= 1.0 { Duration::ZERO } else { Duration::from_secs_f64((1.0 - s.tokens) / rate) };
        if wait > MAX_TOKEN_WAIT {
            return Err(Refusal::KeyExchangeRate);
        }
        s.tokens -= 1.0;
        Ok(wait)
    }

    /// The semaphores a key-exchange computation holds: its address's (one at a time) and
    /// the global one (one per core).
    pub fn key_exchange_slots(&self, addr: IpAddr) -> (Option<Arc<Semaphore>>, Arc<Semaphore>) {
        let own = self.inner.lock().unwrap().get(&addr).map(|s| s.kx.clone());
        (own, self.kx_global.clone())
    }

    pub fn buffered_total(&self) -> usize {
        self.buffered_total.load(Ordering::Relaxed)
    }

    /// (connections, unauthenticated, buffered bytes) of `addr`.
    pub fn usage(&self, addr: IpAddr) -> (usize, usize, usize) {
        self.inner.lock().unwrap().get(&addr).map_or((0, 0, 0), |s| (s.conns, s.unauth, s.buffered))
    }

    pub fn addresses(&self) -> usize {
        self.inner.lock().unwrap().len()
    }
}

/// Which byte budget a [`Ticket`] reports on.
#[derive(Clone, Copy)]
enum Budget {
    /// The input buffer (partial frames).
    Input,
    /// Answers waiting for the client to read them.
    Output,
}

/// One admitted connection's share of its address's accounting; released on drop.
pub struct Ticket {
    table: Arc<AddrTable>,
    addr: IpAddr,
    unauth: bool,
    buffered: usize,
    output: usize,
}

impl Ticket {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The connection sent a valid encrypted message: it no longer counts as
    /// unauthenticated.
    pub fn authenticated(&mut self) {
        if std::mem::take(&mut self.unauth) {
            if let Some(s) = self.table.inner.lock().unwrap().get_mut(&self.addr) {
                s.unauth -= 1;
            }
        }
    }

    pub fn is_authenticated(&self) -> bool {
        !self.unauth
    }

    /// Records that the connection's input buffer now holds `bytes`. Err when its address,
    /// or the server as a whole, is over its limit (the caller closes with -429).
    pub fn set_buffered(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.set_usage(Budget::Input, bytes)
    }

    /// Records that the connection has `bytes` of answers to write. Err when its address or
    /// the server is over its output budget (the caller drops them and closes).
    pub fn set_output(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.set_usage(Budget::Output, bytes)
    }

    fn set_usage(&mut self, budget: Budget, bytes: usize) -> Result<(), Refusal> {
        let l = self.table.limits;
        let (mine, total, cap, cap_total, over, over_total) = match budget {
            Budget::Input => (&mut self.buffered, &self.table.buffered_total, l.buffered, l.buffered_total, Refusal::Buffered, Refusal::BufferedTotal),
            Budget::Output => (&mut self.output, &self.table.output_total, l.output, l.output_total, Refusal::Output, Refusal::OutputTotal),
        };
        if bytes == *mine {
            return Ok(());
        }
        let mut g = self.table.inner.lock().unwrap();
        let Some(s) = g.get_mut(&self.addr) else { return Ok(()) };
        let at_addr = match budget {
            Budget::Input => &mut s.buffered,
            Budget::Output => &mut s.output,
        };
        *at_addr = *at_addr - *mine + bytes;
        let grew = bytes > *mine;
        let now_total = if grew {
            total.fetch_add(bytes - *mine, Ordering::Relaxed) + (bytes - *mine)
        } else {
            total.fetch_sub(*mine - bytes, Ordering::Relaxed) - (*mine - bytes)
        };
        *mine = bytes;
        if grew && *at_addr > cap {
            return Err(over);
        }
        if grew && now_total > cap_total {
            return Err(over_total);
        }
        Ok(())
    }
}

impl AddrState {
    /// No connection left and a full bucket: nothing worth remembering.
    fn forgettable(&self, limits: &AddrLimits, now: Instant) -> bool {
        let tokens = self.tokens + now.duration_since(self.refilled).as_secs_f64() * limits.key_exchanges_per_sec;
        self.conns == 0 && tokens >= limits.key_exchange_burst
    }
}

impl AddrTable {
    /// Forgets addresses with no connection whose bucket has refilled.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.inner.lock().unwrap().retain(|_, s| !s.forgettable(&self.limits, now));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut g = self.table.inner.lock().unwrap();
        self.table.buffered_total.fetch_sub(self.buffered, Ordering::Relaxed);
        self.table.output_total.fetch_sub(self.output, Ordering::Relaxed);
        if let Some(s) = g.get_mut(&self.addr) {
            s.conns -= 1;
            s.buffered -= self.buffered;
            s.output -= self.output;
            if self.unauth {
                s.unauth -= 1;
            }
            if s.forgettable(&self.table.limits, Instant::now()) {
                g.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn ipv6_counts_by_its_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(limit_key("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn limits_are_per_address_and_released_on_drop() {
        let t = AddrTable::new(AddrLimits { connections: 3, unauthenticated: 2, ..Default::default() });
        let mut x = t.admit(a(1)).unwrap();
        let _y = t.admit(a(1)).unwrap();
        assert_eq!(t.admit(a(1)).err().map(|r| r.reason), Some(Refusal::Unauthenticated));
        x.authenticated();
        let z = t.admit(a(1)).unwrap();
        assert_eq!(t.admit(a(1)).err().map(|r| r.reason), Some(Refusal::Connections));
        // a reconnect storm: answered with -429 at a bounded rate, then closed quietly
        let answered = (0..1000).filter(|_| t.admit(a(1)).err().is_some_and(|r| r.answer)).count();
        assert!(answered <= REFUSAL_ANSWERS_BURST as usize + 1, "{answered}");
        // another address is unaffected
        let _other = t.admit(a(2)).unwrap();
        drop(z);
        assert_eq!(t.usage(a(1)), (2, 1, 0));
        drop(x);
        drop(_y);
        assert_eq!(t.usage(a(1)), (0, 0, 0));
        assert_eq!(t.addresses(), 1);
        // an address that spent key-exchange tokens is remembered after its last close
        let _k = t.key_exchange_token(a(2));
        drop(_other);
        assert_eq!(t.addresses(), 1);
        t.sweep();
        assert_eq!(t.addresses(), 1, "its bucket has not refilled yet");
    }

    #[test]
    fn buffered_bytes_are_capped_per_address_and_in_total() {
        let t = AddrTable::new(AddrLimits { buffered: 100, buffered_total: 150, ..Default::default() });
        let mut x = t.admit(a(1)).unwrap();
        let mut y = t.admit(a(1)).unwrap();
        let mut z = t.admit(a(2)).unwrap();
        x.set_buffered(60).unwrap();
        assert_eq!(y.set_buffered(50), Err(Refusal::Buffered));
        y.set_buffered(0).unwrap();
        z.set_buffered(80).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.buffered_total(), 140);
        let mut w = t.admit(a(3)).unwrap();
        assert_eq!(w.set_buffered(20), Err(Refusal::BufferedTotal));
        // an address at its budget gets no new connection
        x.set_buffered(100).unwrap_or_default();
        assert_eq!(t.admit(a(1)).err().map(|r| r.reason), Some(Refusal::Buffered));
        x.set_buffered(60).unwrap();
        drop(w);
        drop(x);
        assert_eq!(t.buffered_total(), 80);
        // shrinking never refuses
        z.set_buffered(10).unwrap();
        // answers waiting for a reader are budgeted the same way
        let t = AddrTable::new(AddrLimits { output: 100, output_total: 1000, ..Default::default() });
        let mut x = t.admit(a(1)).unwrap();
        let mut y = t.admit(a(1)).unwrap();
        x.set_output(80).unwrap();
        assert_eq!(y.set_output(30), Err(Refusal::Output));
        x.set_output(0).unwrap();
        y.set_output(30).unwrap();
    }

    #[test]
    fn key_exchanges_follow_a_token_bucket() {
        let t = AddrTable::new(AddrLimits { key_exchanges_per_sec: 1.0, key_exchange_burst: 3.0, ..Default::default() });
        let _x = t.admit(a(1)).unwrap();
        for _ in 0..3 {
            assert_eq!(t.key_exchange_token(a(1)), Ok(Duration::ZERO));
        }
        // then each waits a second longer than the one before, up to the longest wait
        assert!(t.key_exchange_token(a(1)).unwrap() > Duration::from_millis(900));
        for _ in 1..MAX_TOKEN_WAIT.as_secs() {
            assert!(t.key_exchange_token(a(1)).is_ok());
        }
        assert_eq!(t.key_exchange_token(a(1)), Err(Refusal::KeyExchangeRate));
        let _y = t.admit(a(2)).unwrap();
        assert_eq!(t.key_exchange_token(a(2)), Ok(Duration::ZERO));
    }
}
