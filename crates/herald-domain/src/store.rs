//! Storage, one fallible trait per concern, at the level of the domain (so SQL backends can
//! use transactions, indexes and constraints). **Every method that changes a box's messages
//! also advances that box's pts and records the update in the same transaction** (a log
//! entry, or for a new message the stored copy with its pts): that is the durability and
//! gap-free invariant `updates.getDifference` relies on.

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
    /// The keys bound to `user` (its logged-in sessions), most recently used first, without
    /// their key material (`key` is empty).
    async fn keys_of_user(&self, user: UserId) -> StoreResult<Vec<AuthKeyRecord>>;
    /// Binds the key to a user (login) or unbinds it (None, logout). Returns the user it
    /// was bound to before; fails when the key does not exist (it was collected).
    async fn bind_user(&self, id: i64, user: Option<UserId>) -> StoreResult<Option<UserId>>;
    /// Unbinds the key only if it is still bound to `user`; returns whether it was (a key
    /// that no longer exists was not).
    async fn unbind_if(&self, id: i64, user: UserId) -> StoreResult<bool>;
    async fn set_client_info(&self, id: i64, info: ClientInfo) -> StoreResult<()>;
    /// Records that the key was used at `at` (callers do this at most about once an hour).
    async fn touch_key(&self, id: i64, at: i64) -> StoreResult<()>;
    /// Deletes keys bound to no user and unused since `unused_before`, temporary keys expired
    /// by `now`, and, per creating address, the least recently used keys bound to no user
    /// beyond `unbound_per_addr`; returns how many went.
    async fn purge_keys(&self, unused_before: i64, now: i64, unbound_per_addr: usize) -> StoreResult<usize>;
    /// Binds temporary key `temp` to permanent key `perm`; false (nothing changed) unless
    /// `temp` is a temporary key not bound yet and `perm` a permanent one.
    async fn bind_temp(&self, temp: i64, perm: i64) -> StoreResult<bool>;
    /// Deletes the temporary keys bound to `perm` but those in `except`; returns them.
    async fn drop_temp_keys(&self, perm: i64, except: &[i64]) -> StoreResult<Vec<i64>>;
    /// Logged-in keys unused for longer than their account's session lifetime
    /// (`set_session_ttl`), as (key, user), at most `limit`.
    async fn stale_sessions(&self, now: i64, limit: usize) -> StoreResult<Vec<(i64, UserId)>>;
    /// How many days a session of `user` may go unused before it ends.
    async fn session_ttl(&self, user: UserId) -> StoreResult<i32>;
    async fn set_session_ttl(&self, user: UserId, days: i32) -> StoreResult<()>;
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
    /// `Conflict` if another user or a live group holds the name (case-insensitively; users
    /// and public channels share one namespace, checked atomically with the write).
    async fn set_username(&self, id: UserId, username: Option<&str>) -> StoreResult<()>;
    async fn update_profile(&self, id: UserId, first: &str, last: &str, about: &str) -> StoreResult<()>;
    /// Users `ids` (unknown ones dropped) with how `viewer` relates to each, in one read.
    async fn users_seen_by(&self, viewer: UserId, ids: &[UserId]) -> StoreResult<Vec<SeenUser>>;
    /// Adds or replaces an address-book entry; true when it is new.
    async fn put_contact(&self, contact: Contact) -> StoreResult<bool>;
    /// Removes `owner`'s entries for `targets`; returns those that were there.
    async fn delete_contacts(&self, owner: UserId, targets: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// `owner`'s address book, oldest entry first.
    async fn contacts(&self, owner: UserId) -> StoreResult<Vec<Contact>>;
    /// Replaces the account's privacy settings.
    async fn set_privacy(&self, id: UserId, privacy: &crate::privacy::Privacy) -> StoreResult<()>;
    /// Deletes an account as Telegram does: its messages stay with the others, shown from a
    /// "Deleted Account"; its name, username, about, phone number (free for a new account),
    /// address book, password and privacy settings go, and every key bound to it is unbound.
    /// Returns the keys that were bound. Nothing for an unknown or already deleted account.
    async fn delete_account(&self, id: UserId) -> StoreResult<Vec<i64>>;
    /// How many days the account may stay inactive before it is deleted.
    async fn set_account_ttl(&self, id: UserId, days: i32) -> StoreResult<()>;
    /// The auto-delete period the account's new private chats get (0: none).
    async fn default_history_ttl(&self, id: UserId) -> StoreResult<i32>;
    async fn set_default_history_ttl(&self, id: UserId, period: i32) -> StoreResult<()>;
    /// Makes photo `photo_id` (a stored photo) the account's current profile photo, and keeps
    /// it among its photos (newest first).
    async fn add_profile_photo(&self, user: UserId, photo_id: i64, date: i32) -> StoreResult<()>;
    /// The account's profile photos, newest (current) first, at most `limit`: (id, date).
    async fn profile_photos(&self, user: UserId, limit: usize) -> StoreResult<Vec<(i64, i32)>>;
    /// Removes those of `ids` that are the account's photos (the newest left becomes current);
    /// returns the ones removed.
    async fn delete_profile_photos(&self, user: UserId, ids: Vec<i64>) -> StoreResult<Vec<i64>>;
    /// Accounts (not service accounts) with no activity — key use, going offline, sign-up —
    /// for longer than their `set_account_ttl`, at most `limit`.
    async fn inactive_accounts(&self, now: i64, limit: usize) -> StoreResult<Vec<UserId>>;
    /// Records when the account went offline.
    async fn set_last_seen(&self, id: UserId, at: i64) -> StoreResult<()>;
    /// Users who have `target` among their contacts, at most `limit`.
    async fn contact_owners(&self, target: UserId, limit: usize) -> StoreResult<Vec<UserId>>;
    /// Users whose username starts with `prefix` (lower case), at most `limit`.
    async fn users_by_username_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<User>>;
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

/// A message to write into one box; the store gives it the box's next id (`message.id` and
/// `message.owner` are ignored).
#[derive(Clone, Debug)]
pub struct NewCopy {
    pub message: Message,
    /// Kept with the copy for deduplication (see [`MessageStore::apply`]).
    pub random_id: Option<i64>,
    /// The copy is unread for the box's owner: its dialog's unread counter goes up by one.
    pub unread: bool,
}

/// One change to one box. Each op that changes something advances that box's pts by its
/// count and records the update **in the same transaction** (gap-free pts, complete record);
/// an op that changes nothing (ids that do not exist, a read mark that does not move) produces
/// no update and no pts.
// Appends are most ops and carry a whole message; boxing them would add an allocation per
// copy to the hot path to shrink the rare others. Ops live only until `apply` takes them.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum BoxOp {
    /// Appends a message with the box's next id (pts + 1). In a user box it creates or
    /// updates the owner's dialog with `message.peer` (top message and date); in a channel box
    /// it updates the box's top message. Mentioned users (`message.mentions`) are recorded for
    /// their unread-mention counters (channel boxes).
    Append(NewCopy),
    /// Replaces a message's text and entities and sets its edit date (pts + 1).
    /// New text and entities; new media when `media` is Some (the copy's file index moves
    /// with it).
    Edit { id: i32, text: String, entities: Vec<Entity>, media: Option<Box<Media>>, date: i32 },
    /// Deletes the messages that exist among `ids` (pts + their number, one update). Dialogs
    /// point at their newest remaining message; unread counters drop for unread ones.
    Delete { ids: Vec<i32> },
    /// User boxes: raises the dialog's inbox read mark to `max_id` (0, or past the top
    /// message: the top message) and recounts its unread messages (pts + 1).
    ReadInbox { peer: Peer, max_id: i32 },
    /// User boxes: raises the dialog's outbox read mark to `max_id` (pts + 1).
    ReadOutbox { peer: Peer, max_id: i32 },
    /// Records a pin or unpin of messages in `peer` (pts + 1; the pinned id itself lives
    /// with the group, see `GroupStore`).
    Pin { peer: Peer, ids: Vec<i32>, pinned: bool },
    /// A precondition, not a change: fails the whole `apply` with `Conflict("deactivated")`
    /// when `b`'s account was deleted, and with `Conflict("blocked")`,
    /// applying nothing, when `a` has blocked `b` or `b` has blocked `a`. Put it before the
    /// ops it guards; it is checked in the same transaction (no block can land in between).
    UnlessBlocked { a: UserId, b: UserId },
    /// No update: when neither `from` nor `to` has a dialog with the other yet and `from` has
    /// a default auto-delete period (`set_default_history_ttl`), the private chat gets it on
    /// both sides, so the messages appended after this op carry it.
    NewChatTtl { from: UserId, to: UserId },
}

/// The result of [`MessageStore::apply`]: the update of every op that changed something, in
/// op order.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub updates: Vec<(BoxId, PtsUpdate)>,
    /// The dedup key was seen before: nothing was applied, `updates` holds the original
    /// message's update.
    pub duplicate: bool,
}

impl Applied {
    /// The first update of `owner`'s box.
    pub fn of(&self, owner: BoxId) -> Option<&PtsUpdate> {
        self.updates.iter().find(|(b, _)| *b == owner).map(|(_, u)| u)
    }
}

/// Message boxes: messages, dialogs, read marks and the pts log. **It stores; it decides
/// nothing**: who gets a copy, reply translation, read receipts and revokes are the domain's
/// (`messages.rs`, `groups.rs`), which composes [`BoxOp`]s and applies them atomically.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Applies `ops` in one transaction, in order, and returns their updates. With `dedup =
    /// Some((box, from, random_id))`, when `box` already holds a message from `from` with that
    /// random_id nothing is applied and that message's original update (its pts, count 1) is
    /// returned with `duplicate` set: a retried send creates nothing.
    async fn apply(&self, ops: Vec<(BoxId, BoxOp)>, dedup: Option<(BoxId, UserId, i64)>) -> StoreResult<Applied>;
    /// Messages matching `q`, newest first (by date, then peer, then id), with how many
    /// match in all. Text is found through a full-text index kept in the same transactions
    /// as the messages.
    async fn search(&self, q: SearchQuery) -> StoreResult<(Vec<Message>, i32)>;
    /// Sets (`Some`) or removes (`None`) `user`'s one reaction to logical message `logical`,
    /// and refreshes the summary every copy carries, in one transaction. Returns the new
    /// summary, or `None` when nothing changed (the same reaction again, or none to remove).
    async fn react(&self, logical: i64, user: UserId, emoji: Option<String>, date: i32) -> StoreResult<Option<Reactions>>;
    /// Messages of one conversation, newest first, with its total message count. In a user
    /// box, the messages with `peer`; in a channel box, all of them.
    async fn history(&self, owner: BoxId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)>;
    /// The messages among `ids` that exist in the box, in no particular order.
    async fn messages_by_ids(&self, owner: BoxId, ids: &[i32]) -> StoreResult<Vec<Message>>;
    /// Every copy of the given logical messages: (box, id in that box).
    async fn copies(&self, logical_ids: &[i64]) -> StoreResult<Vec<(BoxId, i32)>>;
    /// The newest message in `owner`'s dialog with `peer` with id ≤ `max_id` that the owner
    /// received (not sent).
    async fn newest_incoming(&self, owner: UserId, peer: Peer, max_id: i32) -> StoreResult<Option<Message>>;
    /// Ids of up to `limit` of the newest messages of a conversation with id ≤ `max_id` (0:
    /// any), newest first.
    async fn ids_before(&self, owner: BoxId, peer: Peer, max_id: i32, limit: usize) -> StoreResult<Vec<i32>>;
    /// The user's dialogs, private chats, basic groups and the channels they are a member of
    /// together, ordered by their top message's date, newest first, before `(offset_date,
    /// offset_id)` when given, with the total dialog count. Unread counts come from counters
    /// (user boxes) or from the member's read mark against the channel's ids (channels).
    async fn dialogs(&self, owner: UserId, q: DialogsQuery) -> StoreResult<(Vec<Dialog>, i32)>;
    /// Sets the self-deletion period of messages appended from now on to box `owner`'s
    /// conversation with `peer` (a user box's dialog, or a channel box with its own peer).
    async fn set_ttl(&self, owner: BoxId, peer: Peer, period: i32) -> StoreResult<()>;
    /// Copies whose self-deletion time has come (`date + ttl_period <= now`), oldest first.
    async fn expired(&self, now: i32, limit: usize) -> StoreResult<Vec<(BoxId, i32)>>;
    /// Sets or clears (`None`) the draft of `owner`'s dialog with `peer`; true if it changed.
    async fn set_draft(&self, owner: UserId, peer: Peer, draft: Option<Draft>) -> StoreResult<bool>;
    /// Every draft `owner` has, with its dialog.
    async fn drafts(&self, owner: UserId) -> StoreResult<Vec<(Peer, Draft)>>;
    /// Whether `owner` has a draft in its dialog with `peer` (a read: a send with
    /// `clear_draft` asks this before it writes).
    async fn has_draft(&self, owner: UserId, peer: Peer) -> StoreResult<bool>;
    /// Pins (first in the list) or unpins a dialog; `Conflict("pinned")` when pinning would
    /// make more than `max` pinned dialogs in its folder. True if it changed.
    async fn set_pinned(&self, owner: UserId, peer: Peer, pinned: bool, max: usize) -> StoreResult<bool>;
    /// The pinned dialogs of a folder, in order (top first).
    async fn pinned(&self, owner: UserId, folder: i32) -> StoreResult<Vec<Peer>>;
    /// Makes `order` the folder's pinned dialogs, top first (others are unpinned).
    async fn set_pinned_order(&self, owner: UserId, folder: i32, order: &[Peer]) -> StoreResult<()>;
    /// Moves a dialog to a folder (0: main list, 1: archive); true if it changed. A dialog
    /// keeps no pin across folders.
    async fn set_folder(&self, owner: UserId, peer: Peer, folder: i32) -> StoreResult<bool>;
    /// Channels `owner` is a current member of whose latest message is dated `since` or
    /// later, at most `limit` of them (one query: getDifference names them).
    async fn channels_posted_since(&self, owner: UserId, since: i32, limit: usize) -> StoreResult<Vec<GroupId>>;
    /// One dialog, if the user has it (channels: if the user is a member).
    async fn dialog(&self, owner: UserId, peer: Peer) -> StoreResult<Option<Dialog>>;
    /// Removes an emptied dialog from the owner's list (one whose top message is 0).
    async fn drop_empty_dialog(&self, owner: UserId, peer: Peer) -> StoreResult<()>;
    /// The user box's pts and the sum of its dialogs' unread counters.
    async fn state(&self, owner: UserId) -> StoreResult<BoxState>;
    /// A box's current pts (a new box reports its initial pts, never 0).
    async fn pts(&self, owner: BoxId) -> StoreResult<i32>;
    /// Updates after `pts`, at most `limit` of them, in pts order.
    async fn difference(&self, owner: BoxId, pts: i32, limit: usize) -> StoreResult<Difference>;
    /// Forgets the pts log of every box older than the box's latest `keep` pts (at most
    /// `max_boxes` boxes a call); a later `difference` from before that is `too_long`. Returns
    /// how many entries went.
    async fn trim_log(&self, keep: i32, max_boxes: usize) -> StoreResult<usize>;
    /// Who sent messages with ids in `(after, up_to]` of `owner`: at most `limit` senders,
    /// in no particular order.
    async fn senders_between(&self, owner: BoxId, after: i32, up_to: i32, limit: usize) -> StoreResult<Vec<UserId>>;
    /// Sets or clears the unread mark of `owner`'s dialog with `peer` (a channel: the member
    /// row); returns whether it changed (false too when there is no such dialog). Raising a
    /// read mark (`BoxOp::ReadInbox`, `GroupStore::set_read`) clears it as well.
    async fn set_unread_mark(&self, owner: UserId, peer: Peer, mark: bool) -> StoreResult<bool>;
    /// The peers of `owner`'s dialogs marked unread.
    async fn unread_marks(&self, owner: UserId) -> StoreResult<Vec<Peer>>;
    /// Blocks (`blocked`) or unblocks `target` for `user`; returns whether that changed
    /// anything. A block keeps its first date.
    async fn set_blocked(&self, user: UserId, target: UserId, blocked: bool, date: i32) -> StoreResult<bool>;
    /// Whether `a` has blocked `b`, and whether `b` has blocked `a` (one read).
    async fn blocking(&self, a: UserId, b: UserId) -> StoreResult<(bool, bool)>;
    /// Whom `user` has blocked, newest first, from `offset`, at most `limit`, with the total.
    async fn blocked(&self, user: UserId, offset: i32, limit: i32) -> StoreResult<(Vec<(UserId, i32)>, i32)>;
    /// View counters of channel posts; with `viewer`, counts one view per viewer and post.
    async fn views(&self, channel: GroupId, ids: &[i32], viewer: Option<UserId>) -> StoreResult<Vec<i32>>;
}

/// Basic groups and channels: their description, members, rights and invite links. Counters
/// (`participants_count`, `admins_count`, `kicked_count`, `banned_count`) are kept by the store
/// from the members' roles, in the same transaction as the change.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates a group with the next id, and `members` (the creator among them).
    async fn create_group(&self, new: NewGroup, members: Vec<Member>) -> StoreResult<Group>;
    async fn group(&self, id: GroupId) -> StoreResult<Option<Group>>;
    async fn groups(&self, ids: &[GroupId]) -> StoreResult<Vec<Group>>;
    /// Case-insensitive lookup of a public channel.
    async fn group_by_username(&self, username: &str) -> StoreResult<Option<Group>>;
    /// Public channels (not deleted) whose username starts with `prefix` (lower case).
    async fn groups_by_username_prefix(&self, prefix: &str, limit: usize) -> StoreResult<Vec<Group>>;
    /// Writes the group's description (title, about, username, flags, pinned message,
    /// migration links, deletion) and bumps its version; counters are left alone.
    /// `Conflict` when another group or a user holds the username (case-insensitively,
    /// checked atomically with the write).
    async fn update_group(&self, group: &Group) -> StoreResult<()>;
    async fn member(&self, group: GroupId, user: UserId) -> StoreResult<Option<Member>>;
    /// Members matching `filter`, newest first from `offset`, at most `limit`, with how many
    /// match in all.
    async fn members(&self, group: GroupId, filter: &MemberFilter, offset: i32, limit: i32) -> StoreResult<(Vec<Member>, i32)>;
    /// Ids of every current member (for basic groups, whose messages go to each member).
    async fn member_ids(&self, group: GroupId) -> StoreResult<Vec<UserId>>;
    /// Current members whose username (compared lowercased) is one of `usernames`, which
    /// are lowercase.
    async fn members_by_usernames(&self, group: GroupId, usernames: &[String]) -> StoreResult<Vec<UserId>>;
    /// Inserts or replaces a member row (the read mark is kept when the row exists) and
    /// adjusts the group's counters; returns the previous row.
    async fn set_member(&self, member: Member) -> StoreResult<Option<Member>>;
    /// Live groups both users are current members of, ids below `before_id` (0: no bound),
    /// newest (highest id) first, at most `limit` (`messages.getCommonChats`).
    async fn common_groups(&self, a: UserId, b: UserId, before_id: i64, limit: usize) -> StoreResult<Vec<GroupId>>;
    /// Groups the user is a current member of (channels only when `channels_only`).
    async fn user_groups(&self, user: UserId, channels_only: bool) -> StoreResult<Vec<GroupId>>;
    /// Raises a channel member's read mark to `max_id` (never lowers it), drops the member's
    /// mentions up to it, and, when `receipt`, in the same transaction raises the group's
    /// [`ReadTop`] with [`ReadTop::raised`]. Returns the mark and the `ReadTop` before and
    /// after when the mark moved (equal when not `receipt`); None when it did not (or the
    /// user is not a member).
    async fn set_read(&self, group: GroupId, user: UserId, max_id: i32, receipt: bool) -> StoreResult<Option<ReadMove>>;
    /// Records when a member last posted (slow mode).
    async fn set_last_post(&self, group: GroupId, user: UserId, date: i32) -> StoreResult<()>;
    /// Stores an invite link (replacing one with the same hash).
    async fn put_invite(&self, invite: &Invite) -> StoreResult<()>;
    async fn invite(&self, hash: &str) -> StoreResult<Option<Invite>>;
    /// A group's links made by `admin` (every admin's when None), newest first.
    async fn invites(&self, group: GroupId, admin: Option<UserId>, revoked: bool, limit: i32) -> StoreResult<Vec<Invite>>;
    /// Atomically counts one use of a link if it is live at `now` (not revoked, not expired,
    /// under its usage limit); false otherwise.
    async fn use_invite(&self, hash: &str, now: i32) -> StoreResult<bool>;
    async fn put_join_request(&self, req: &JoinRequest) -> StoreResult<()>;
    async fn join_requests(&self, group: GroupId) -> StoreResult<Vec<JoinRequest>>;
    /// Removes a pending request; false when there was none.
    async fn take_join_request(&self, group: GroupId, user: UserId) -> StoreResult<bool>;
}

/// Two-step-verification passwords, the SRP exchanges opened against them, and logins that
/// passed their code and wait for the password.
#[async_trait]
pub trait PasswordStore: Send + Sync {
    async fn password(&self, user: UserId) -> StoreResult<Option<Password>>;
    /// Sets or replaces `user`'s password record.
    async fn put_password(&self, password: &Password) -> StoreResult<()>;
    async fn delete_password(&self, user: UserId) -> StoreResult<()>;
    /// Spends one try of the emailed code for `purpose`, atomically, and returns the record
    /// with the code as it was; `None` when there is no such live code with tries left.
    async fn take_code_attempt(&self, user: UserId, purpose: CodePurpose, now: i64, max_attempts: i32) -> StoreResult<Option<Password>>;
    /// Keeps a new exchange; the account's older ones beyond
    /// `password::CHALLENGES_PER_USER_MAX` are dropped.
    async fn put_challenge(&self, challenge: &SrpChallenge) -> StoreResult<()>;
    /// Removes and returns challenge `id` if it has not expired: each is used at most once.
    async fn take_challenge(&self, id: i64, now: i64) -> StoreResult<Option<SrpChallenge>>;
    /// Key `auth_key_id` passed its login code for `user`, whose password is still to come.
    async fn put_password_login(&self, auth_key_id: i64, user: UserId, expires_at: i64) -> StoreResult<()>;
    async fn password_login(&self, auth_key_id: i64, now: i64) -> StoreResult<Option<UserId>>;
    async fn end_password_login(&self, auth_key_id: i64) -> StoreResult<()>;
    /// Drops expired challenges and pending logins.
    async fn purge_password_rows(&self, now: i64) -> StoreResult<usize>;
}

/// Messages scheduled to be sent later (`schedule_date`), per account.
#[async_trait]
pub trait ScheduledStore: Send + Sync {
    /// Stores a scheduled message under the owner's next scheduled id (`s.id` is ignored), unless
    /// the owner already has `max_per_peer` waiting for that peer (`Conflict("scheduled")`).
    /// A message the owner already scheduled with the same random id is returned as it is.
    async fn put_scheduled(&self, s: Scheduled, max_per_peer: usize) -> StoreResult<Scheduled>;
    /// The owner's scheduled messages for `peer`, by time (ids: only those).
    async fn scheduled(&self, owner: UserId, peer: Peer, ids: Option<&[i32]>) -> StoreResult<Vec<Scheduled>>;
    /// Removes scheduled messages; returns those that were there. With `claimed_too` false, a
    /// message being sent (claimed) stays.
    async fn delete_scheduled(&self, owner: UserId, ids: &[i32], claimed_too: bool) -> StoreResult<Vec<Scheduled>>;
    /// Claims a scheduled message for sending (a delete by its owner then leaves it alone);
    /// false when it is gone.
    async fn claim_scheduled(&self, owner: UserId, id: i32) -> StoreResult<bool>;
    /// Gives a claimed message back, to be sent at `date`.
    async fn reschedule(&self, owner: UserId, id: i32, date: i32) -> StoreResult<()>;
    /// Scheduled messages whose time has come, oldest first.
    async fn due_scheduled(&self, now: i32, limit: usize) -> StoreResult<Vec<Scheduled>>;
}

/// An upload in progress: the client's random `file_id`, per account (two accounts may pick
/// the same id without meeting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UploadId {
    pub owner: UserId,
    pub file_id: i64,
}

/// A complete file made from an upload's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// The content hash, lower-case hex: the blob's name (see `FileMeta::blob`).
    pub blob: String,
    pub size: i64,
    /// The MD5 of the bytes, when asked for (only small uploads carry one to check).
    pub md5: Option<[u8; 16]>,
}

/// File bytes, kept out of the database and its single writer: the parts of uploads in
/// progress, and complete files named by their content's SHA-256 (identical content is kept
/// once). Every call streams: nothing holds a whole file in memory. A complete file becomes
/// visible only once written and synced, so a crash never leaves half of one. The embedded
/// backend is a directory (`herald-store-sqlite/src/blobs.rs`); an object store fits the same
/// calls.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores part `part` of `up` (a part sent again replaces the earlier one).
    async fn put_part(&self, up: UploadId, part: i32, bytes: Vec<u8>) -> StoreResult<()>;
    /// The sizes of parts `0..parts` of `up` (None where one is missing).
    async fn part_sizes(&self, up: UploadId, parts: i32) -> StoreResult<Vec<Option<u64>>>;
    /// Joins parts `0..parts` of `up`, in order, into a complete file (computing its MD5 too
    /// when `md5`). The parts stay, and count as held, until [`Self::release`].
    async fn assemble(&self, up: UploadId, parts: i32, md5: bool) -> StoreResult<Assembled>;
    /// After the file `made` from `up` is recorded: the upload then stands for that file until
    /// it expires (a client may use it again), and its parts are deleted and no longer count
    /// as held. An upload whose use failed is not released, so its parts stay counted.
    async fn release(&self, up: UploadId, parts: i32, made: &Assembled) -> StoreResult<()>;
    /// Stores `bytes` as a complete file (made by the server, such as a photo's sizes).
    async fn store(&self, bytes: Vec<u8>) -> StoreResult<Assembled>;
    /// Up to `limit` bytes of complete file `blob` from `offset` (fewer at its end).
    async fn read(&self, blob: &str, offset: u64, limit: usize) -> StoreResult<Vec<u8>>;
    /// Deletes uploads whose last part came more than `max_age_secs` ago; returns how many.
    async fn expire_uploads(&self, max_age_secs: u64) -> StoreResult<usize>;
    /// Bytes of parts `owner` holds in uploads not yet assembled (for the upload quota).
    async fn held_bytes(&self, owner: UserId) -> StoreResult<u64>;
    /// Bytes free where blobs are written (None: the backend has no such limit).
    async fn free_bytes(&self) -> StoreResult<Option<u64>>;
    /// Up to `limit` complete files neither written nor reused for `idle_secs`: candidates
    /// for deletion once the metadata store says nothing refers to them.
    async fn idle_blobs(&self, idle_secs: u64, limit: usize) -> StoreResult<Vec<String>>;
    /// Deletes `blob` if it is still idle for `idle_secs`, atomically with respect to
    /// assembly's reuse of it (which renews it); returns whether it went.
    async fn delete_if_idle(&self, blob: &str, idle_secs: u64) -> StoreResult<bool>;
}

/// A file to record (its id is allocated by the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFile {
    pub owner: UserId,
    pub blob: String,
    pub size: i64,
    pub mime: String,
    pub date: i32,
    pub attributes: Vec<DocAttr>,
    pub sizes: Vec<PhotoSize>,
    pub stripped: Option<Vec<u8>>,
}

/// File metadata: which files exist and who may fetch them. Messages copy a file's metadata
/// ([`Media`]); the store also indexes which message copies carry which file, in the same
/// transaction as the messages, so access is checked against what a viewer can see.
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn create_file(&self, f: NewFile) -> StoreResult<FileMeta>;
    async fn file(&self, id: i64) -> StoreResult<Option<FileMeta>>;
    /// Whether `viewer` may fetch file `id`: they uploaded it, or a message in their box or
    /// in a channel they are a member of carries it.
    async fn file_visible(&self, viewer: UserId, id: i64) -> StoreResult<bool>;
    /// Bytes of the files `owner` uploaded that are stored (for the upload quota).
    async fn stored_bytes(&self, owner: UserId) -> StoreResult<i64>;
    /// Deletes up to `limit` files dated before `before` that nothing refers to any more (no
    /// message copy, scheduled message, profile photo or chat photo); returns how many.
    async fn delete_unused_files(&self, before: i32, limit: usize) -> StoreResult<usize>;
    /// Whether any file (or any of a photo's sizes) is stored as `blob`.
    async fn blob_in_use(&self, blob: &str) -> StoreResult<bool>;
}
