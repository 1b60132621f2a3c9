//! Herald's RPC layer. It owns the mapping between TL (layer 227) and the domain:
//! requests are decoded here, domain services are called, results and pushes are encoded
//! here. **Nothing below this crate sees a TL type.**
//!
//! - [`dispatch`]: the handler registry keyed by constructor id, and the invoke wrappers.
//! - [`handlers`]: one module per TL namespace.
//! - [`convert`]: domain ↔ TL objects.
//! - [`push`]: bus events → `Updates` pushed to sessions.
//! - [`errors`]: domain errors → `rpc_error`, in one place.

mod blank;
pub mod convert;
pub mod dispatch;
pub mod errors;
mod handlers;
pub mod push;
mod recursive;

use herald_domain::accounts::AccountService;
use herald_domain::auth::AuthService;
use herald_domain::clock::Clock;
use herald_domain::groups::GroupService;
use herald_domain::messages::MessageService;
use herald_domain::model::{ClientInfo, UserId};
use herald_domain::store::AuthKeyStore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

pub use dispatch::Dispatcher;
pub use errors::RpcError;

/// An address clients reach this DC at, for `help.getConfig`.
#[derive(Clone, Debug)]
pub struct DcAddress {
    pub id: i32,
    pub ip: String,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub dc_id: i32,
    pub addresses: Vec<DcAddress>,
}

/// What the handlers need, and nothing else.
pub struct Services {
    pub auth: Arc<AuthService>,
    pub accounts: Arc<AccountService>,
    pub messages: Arc<MessageService>,
    pub groups: Arc<GroupService>,
    pub scheduled: Arc<herald_domain::schedule::ScheduleService>,
    pub files: Arc<herald_domain::files::FileService>,
    pub keys: Arc<dyn AuthKeyStore>,
    /// The live state of every key with a connection here (the gateway's too).
    pub key_states: Arc<KeyStates>,
    pub clock: Arc<dyn Clock>,
    /// The flood limits; the domain services were built with the same table.
    pub flood: herald_domain::limits::FloodTable,
    pub server: ServerInfo,
}

/// The state calls can change about an auth key (login binds a user, initConnection records
/// the client), **shared by every connection of the key in this process** (see [`KeyStates`]):
/// a logout or a new login on one connection takes effect on all of them at once.
#[derive(Debug)]
pub struct KeyState {
    /// The binding and the login tokens accepted, with a version bumped at every change, and
    /// the connections waiting for one (see [`KeyState::poll_changed_since`]). Not a
    /// `tokio::sync::watch` (its channel is a separate allocation of about 400 bytes per key)
    /// nor a `Notify` (each waiter would keep a future of about 150 bytes in its task).
    watched: Mutex<WatchState>,
    // A std Mutex: held only to copy a value, never across an await.
    client: Mutex<Option<ClientInfo>>,
    /// When the client data was last written to the store (see [`KeyState::may_store_client`]).
    client_stored: Mutex<Option<std::time::Instant>>,
    /// Set by `auth.bindTempAuthKey` on a temporary key's state.
    bound_to: Mutex<Option<i64>>,
    /// The connection (its serial, see [`KeyState::claim_updates`]) that carries this key's
    /// updates; 0 when none holds them.
    updates_to: AtomicU64,
}

#[derive(Debug)]
struct WatchState {
    watched: Watched,
    version: u64,
    /// The waker of each connection (by serial) that saw the current version and waits.
    waiters: Vec<(u64, Waker)>,
}

/// What a key's connections follow (see [`KeyState::poll_changed_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched {
    /// The bound user: a login or logout on any connection of the key.
    pub user: Option<UserId>,
    /// Login tokens the key exported that were accepted (QR login), counted: each makes
    /// its connections push `updateLoginToken`.
    pub tokens_accepted: u64,
}

/// A key's `initConnection` data is written to the store at most this often, however often
/// it changes (each write is a job for the single writer).
pub const CLIENT_STORE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl KeyState {
    pub fn new(user: Option<UserId>, client: Option<ClientInfo>) -> Self {
        Self {
            watched: Mutex::new(WatchState { watched: Watched { user, tokens_accepted: 0 }, version: 0, waiters: Vec::new() }),
            client: Mutex::new(client),
            client_stored: Mutex::new(None),
            bound_to: Mutex::new(None),
            updates_to: AtomicU64::new(0),
        }
    }
    /// Telegram sends a user's updates "into the last active connection (except for connections
    /// needed for downloading / uploading files)": one connection per key, the last to make a
    /// request that subscribes (`dispatch::Outcome::without_updates` false) takes them over.
    /// `conn` is a serial unique in the process, never 0.
    pub fn claim_updates(&self, conn: u64) {
        self.updates_to.store(conn, Ordering::Relaxed);
    }
    /// Whether connection `conn`, already subscribed, carries the key's updates now. When the
    /// connection that held them went away, the first subscribed one to ask takes them, so
    /// that each update still goes out exactly once.
    pub fn carries_updates(&self, conn: u64) -> bool {
        match self.updates_to.compare_exchange(0, conn, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => true,
            Err(holder) => holder == conn,
        }
    }
    pub fn user(&self) -> Option<UserId> {
        self.watched.lock().unwrap().watched.user
    }
    pub fn set_user(&self, user: Option<UserId>) {
        self.modify(|w| {
            w.user = user;
            true
        });
    }
    /// Sets the binding to `new` only if it is still `expected` (a read from the store must
    /// not undo a login or logout that happened since).
    pub fn replace_user(&self, expected: Option<UserId>, new: Option<UserId>) {
        self.modify(|w| {
            let change = w.user == expected && expected != new;
            if change {
                w.user = new;
            }
            change
        });
    }
    /// Applies `f`; if it says it changed something, bumps the version and wakes the waiters.
    fn modify(&self, f: impl FnOnce(&mut Watched) -> bool) {
        let mut w = self.watched.lock().unwrap();
        if f(&mut w.watched) {
            w.version += 1;
            // Woken under the lock a waiter registers under: none slips past. Each stays
            // registered until its connection lets the key go (`let_go`).
            for (_, waker) in &w.waiters {
                waker.wake_by_ref();
            }
        }
    }
    /// What the key's connections follow now, and its version.
    pub fn watched(&self) -> (Watched, u64) {
        let w = self.watched.lock().unwrap();
        (w.watched, w.version)
    }
    /// Ready once the version is no longer `seen`: the binding changed (login, logout) or a
    /// login token was accepted, on any connection of the key. Otherwise connection `conn`'s
    /// waker is registered (one per connection, replaced when it changes), so no change is
    /// missed. A poll function, so a connection keeps no future for it.
    pub fn poll_changed_since(&self, seen: u64, conn: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = self.watched.lock().unwrap();
        if w.version != seen {
            return Poll::Ready(());
        }
        match w.waiters.iter_mut().find(|(c, _)| *c == conn) {
            Some((_, waker)) if waker.will_wake(cx.waker()) => {}
            Some((_, waker)) => *waker = cx.waker().clone(),
            None => {
                // Most keys have one connection: room for exactly one, not `push`'s four.
                if w.waiters.capacity() == 0 {
                    w.waiters.reserve_exact(1);
                }
                w.waiters.push((conn, cx.waker().clone()))
            }
        }
        Poll::Pending
    }
    /// Connection `conn` lets the key go (it closed or moved to another key): it stops
    /// carrying the key's updates and waiting for its changes.
    pub fn let_go(&self, conn: u64) {
        let _ = self.updates_to.compare_exchange(conn, 0, Ordering::Relaxed, Ordering::Relaxed);
        let mut w = self.watched.lock().unwrap();
        w.waiters.retain(|(c, _)| *c != conn);
        if w.waiters.is_empty() {
            w.waiters = Vec::new();
        }
    }
    /// Records that this (temporary) key was bound to permanent key `perm`: each of its
    /// connections then acts as `perm` (see `KeyState::bound_to`).
    pub fn set_bound_to(&self, perm: i64) {
        *self.bound_to.lock().unwrap() = Some(perm);
    }
    /// The permanent key this (temporary) key was bound to, if any.
    pub fn bound_to(&self) -> Option<i64> {
        *self.bound_to.lock().unwrap()
    }

    /// Tells the key's connections that a login token it exported was accepted.
    pub fn login_token_accepted(&self) {
        self.modify(|w| {
            w.tokens_accepted += 1;
            true
        });
    }
    pub fn client(&self) -> Option<ClientInfo> {
        self.client.lock().unwrap().clone()
    }
    pub fn set_client(&self, info: ClientInfo) {
        *self.client.lock().unwrap() = Some(info);
    }
    /// True (and the time recorded) when changed client data may be written to the store now.
    pub fn may_store_client(&self) -> bool {
        let mut last = self.client_stored.lock().unwrap();
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < CLIENT_STORE_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// The live [`KeyState`] of every auth key that has a connection in this process. An entry
/// lives as long as a connection holds it.
#[derive(Default)]
pub struct KeyStates {
    // A std Mutex: a map lookup per connection and key.
    map: Mutex<HashMap<i64, Weak<KeyState>>>,
    /// Keys deleted while connections may hold them (`auth.dropTempAuthKeys`): those
    /// connections answer -404 from their next message. Kept per process, bounded.
    revoked: Mutex<std::collections::HashSet<i64>>,
}

/// Revoked key ids remembered at most; past it the set starts over (the keys are gone from
/// the store, so only connections open across that moment are not cut).
const REVOKED_MAX: usize = 100_000;

impl KeyStates {
    /// The shared state of `auth_key_id`, built by `load` when no connection has it.
    pub fn get_or_insert(&self, auth_key_id: i64, load: impl FnOnce() -> KeyState) -> Arc<KeyState> {
        let mut m = self.map.lock().unwrap();
        if let Some(s) = m.get(&auth_key_id).and_then(Weak::upgrade) {
            return s;
        }
        if m.len() > 1024 && m.len().is_power_of_two() {
            m.retain(|_, w| w.strong_count() > 0);
        }
        let s = Arc::new(load());
        m.insert(auth_key_id, Arc::downgrade(&s));
        s
    }

    /// Cuts the connections holding key `id` (deleted from the store) at their next message.
    pub fn revoke(&self, id: i64) {
        let mut r = self.revoked.lock().unwrap();
        if r.len() >= REVOKED_MAX {
            r.clear();
        }
        r.insert(id);
    }

    pub fn is_revoked(&self, id: i64) -> bool {
        self.revoked.lock().unwrap().contains(&id)
    }

    /// The live state of a key, if a connection holds it.
    pub fn get(&self, auth_key_id: i64) -> Option<Arc<KeyState>> {
        self.map.lock().unwrap().get(&auth_key_id).and_then(Weak::upgrade)
    }
}

/// Who is calling.
#[derive(Clone, Debug)]
pub struct CallCtx {
    /// The key the caller acts as: the one it encrypts with, or, for a temporary key bound to
    /// a permanent one (`auth.bindTempAuthKey`), the permanent one.
    pub auth_key_id: i64,
    pub key: Arc<KeyState>,
    /// The client's network address (for per-address limits).
    pub peer: IpAddr,
    /// The key this request was encrypted with, its session and its msg_id (what
    /// `auth.bindTempAuthKey` checks its inner message against).
    pub crypto_key_id: i64,
    pub session_id: i64,
    pub msg_id: i64,
}

impl CallCtx {
    /// The logged-in user, or 401 AUTH_KEY_UNREGISTERED.
    pub fn user(&self) -> Result<UserId, RpcError> {
        self.key.user().ok_or_else(RpcError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waiting connection is woken by every change until it lets the key go, is registered
    /// once however often it polls, and a change made before it polls is seen at once.
    #[test]
    fn key_changes_wake_each_waiting_connection_until_it_lets_go() {
        let key = KeyState::new(None, None);
        let (count_a, count_b) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (waker_a, waker_b) = (Waker::from(count_a.clone()), Waker::from(count_b.clone()));
        let (mut cx_a, mut cx_b) = (Context::from_waker(&waker_a), Context::from_waker(&waker_b));
        let (_, seen) = key.watched();
        assert!(key.poll_changed_since(seen, 1, &mut cx_a).is_pending());
        assert!(key.poll_changed_since(seen, 1, &mut cx_a).is_pending());
        assert!(key.poll_changed_since(seen, 2, &mut cx_b).is_pending());
        assert_eq!(key.watched.lock().unwrap().waiters.len(), 2, "one entry per connection");

        key.set_user(Some(UserId(7)));
        assert_eq!((count_a.0.load(Ordering::SeqCst), count_b.0.load(Ordering::SeqCst)), (1, 1));
        assert!(key.poll_changed_since(seen, 1, &mut cx_a).is_ready(), "the version moved");
        let (watched, seen) = key.watched();
        assert_eq!(watched.user, Some(UserId(7)));

        key.let_go(2);
        key.set_user(None);
        assert_eq!((count_a.0.load(Ordering::SeqCst), count_b.0.load(Ordering::SeqCst)), (2, 1), "2 let the key go");
        assert!(key.poll_changed_since(seen, 2, &mut cx_b).is_ready(), "a change before the poll is not missed");
        key.let_go(1);
        assert!(key.watched.lock().unwrap().waiters.is_empty());
    }
}
