//! Storage, one fallible trait per concern, at the level of the domain (so SQL backends can
//! use transactions, indexes and constraints). **Every method that changes a box's messages
//! also advances that box's pts and logs the update in the same transaction**: that is the
//! durability and gap-free invariant `updates.getDifference` relies on.

use crate::error::StoreError;
use crate::model::*;
use async_trait::async_trait;

pub type StoreResult<T> = Result<T, StoreError>;

/// Authorization keys. A key is stored when its exchange completes, bound to a user at
/// login, and collected by [`AuthKeyStore::purge_keys`] when it never logged in and went
/// unused (or when a temporary key expired).
#[async_trait]
pub trait AuthKeyStore: Send + Sync {
    /// Stores a new key (its last use is its creation). Returns false, storing nothing,
    /// when the id is taken.
    async fn insert_key(&self, key: AuthKeyRecord) -> StoreResult<bool>;
    async fn get_key(&self, id: i64) -> StoreResult<Option<AuthKeyRecord>>;
    /// Binds the key to a user (login) or unbinds it (None, logout). Returns the user it
    /// was bound to before; fails when the key does not exist (it was collected).
    async fn bind_user(&self, id: i64, user: Option<UserId>) -> StoreResult<Option<UserId>>;
    async fn set_client_info(&self, id: i64, info: ClientInfo) -> StoreResult<()>;
    /// Records that the key was used at `at` (callers do this at most about once an hour).
    async fn touch_key(&self, id: i64, at: i64) -> StoreResult<()>;
    /// Deletes keys bound to no user and unused since `unused_before`, and temporary keys
    /// expired by `now`; returns how many went.
    async fn purge_keys(&self, unused_before: i64, now: i64) -> StoreResult<usize>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates a user with the next id of its home DC. `Conflict` if the phone is registered.
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive lookup.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// `Conflict` if another user holds the name (case-insensitively).
    async fn set_username(&self, id: UserId, username: Option<&str>) -> StoreResult<()>;
    async fn update_profile(&self, id: UserId, first: &str, last: &str, about: &str) -> StoreResult<()>;
}

/// Whose login attempts a limit counts (see `auth.rs` for the limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginScope<'a> {
    Phone(&'a str),
    PhoneAddr(&'a str, &'a str),
    PhoneKey(&'a str, i64),
    Addr(&'a str),
}

/// Login codes and the attempts made with them. Codes are keyed by (phone, hash); a deleted
/// code leaves a tombstone (empty code, expired) so that it still counts towards the
/// issuance limits until [`LoginCodeStore::purge_login_rows`] collects it.
#[async_trait]
pub trait LoginCodeStore: Send + Sync {
    /// Stores a code (replacing one with the same phone and hash).
    async fn put_code(&self, code: LoginCode) -> StoreResult<()>;
    async fn get_code(&self, phone: &str, hash: &str) -> StoreResult<Option<LoginCode>>;
    async fn update_code(&self, code: &LoginCode) -> StoreResult<()>;
    /// Makes the code unusable, keeping its issue time, phone, address and key for limits.
    async fn delete_code(&self, phone: &str, hash: &str) -> StoreResult<()>;
    /// Atomically spends one attempt on a live code that `auth_key_id` asked for (not
    /// expired, fewer than `max_attempts` tries so far) and returns it; None when there is no
    /// such code or no attempt is left (another key's code is left untouched). Concurrent
    /// callers can never spend more than `max_attempts` in total.
    async fn take_attempt(&self, phone: &str, hash: &str, auth_key_id: i64, now: i64, max_attempts: i32) -> StoreResult<Option<LoginCode>>;
    /// Issue times of the codes in `scope` since `since`, tombstones included.
    async fn codes_since(&self, scope: LoginScope<'_>, since: i64) -> StoreResult<Vec<i64>>;
    /// Records a wrong code entered for `phone` from `addr` with `auth_key_id`.
    async fn record_failure(&self, phone: &str, addr: &str, auth_key_id: i64, at: i64) -> StoreResult<()>;
    /// Times of wrong codes in `scope` since `since`.
    async fn failures_since(&self, scope: LoginScope<'_>, since: i64) -> StoreResult<Vec<i64>>;
    /// Deletes codes issued and failures recorded before `before` (they count for no limit
    /// any more); returns how many rows went.
    async fn purge_login_rows(&self, before: i64) -> StoreResult<usize>;
}

/// A message to append, already validated by the service.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub from: UserId,
    pub to: UserId,
    pub random_id: Option<i64>,
    pub logical_id: i64,
    pub date: i32,
    pub text: String,
    pub entities: Vec<crate::model::Entity>,
    /// Reply target as an id in the *sender's* box.
    pub reply_to: Option<i32>,
    /// Service messages (777000) exist only in the recipient's box.
    pub one_sided: bool,
}

/// The result of appending: the update for each affected box.
#[derive(Clone, Debug)]
pub struct Appended {
    /// The sender's update (None for one-sided messages).
    pub sender: Option<PtsUpdate>,
    /// The recipient's update (None when the recipient is the sender: Saved Messages).
    pub recipient: Option<PtsUpdate>,
    /// The random_id was seen before: nothing new was written, these are the originals.
    pub duplicate: bool,
}

/// Box updates a change produced, per owner.
pub type Changes = Vec<(UserId, PtsUpdate)>;

#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn append(&self, msg: NewMessage) -> StoreResult<Appended>;
    /// Messages of one dialog, newest first, with the dialog's total message count.
    async fn history(&self, owner: UserId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)>;
    async fn messages_by_ids(&self, owner: UserId, ids: &[i32]) -> StoreResult<Vec<Message>>;
    /// Dialogs ordered by their top message's date, newest first, before `(offset_date,
    /// offset_id)` when given, with the total dialog count.
    async fn dialogs(&self, owner: UserId, offset_date: i32, offset_id: i32, limit: i32) -> StoreResult<(Vec<Dialog>, i32)>;
    async fn has_dialog(&self, owner: UserId, peer: Peer) -> StoreResult<bool>;
    /// Marks incoming messages up to `max_id` read. Empty when nothing changed.
    async fn read_history(&self, owner: UserId, peer: Peer, max_id: i32) -> StoreResult<Changes>;
    async fn edit(&self, owner: UserId, id: i32, text: &str, entities: &[crate::model::Entity], date: i32) -> StoreResult<Changes>;
    /// Deletes messages from the owner's box, and with `revoke` their copies too.
    async fn delete(&self, owner: UserId, ids: &[i32], revoke: bool) -> StoreResult<Changes>;
    /// Deletes up to `limit` of a dialog's newest messages (with ids up to `max_id` when
    /// non-zero); with `keep_dialog` false the emptied dialog goes too. Returns the changes
    /// and whether messages remain to delete. Callers loop, so that one huge dialog is many
    /// short write jobs rather than one long one.
    async fn delete_history(&self, owner: UserId, peer: Peer, max_id: i32, revoke: bool, keep_dialog: bool, limit: usize) -> StoreResult<(Changes, bool)>;
    async fn state(&self, owner: UserId) -> StoreResult<BoxState>;
    /// Updates after `pts`, at most `limit` of them, in pts order.
    async fn difference(&self, owner: UserId, pts: i32, limit: usize) -> StoreResult<Difference>;
}
