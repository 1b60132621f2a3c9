//! The storage test suite: the domain's services over a real backend, with a clock the tests
//! control. Every backend runs the same cases (as Garage runs one suite on every engine):
//! its test crate calls [`storage_suite!`] with an expression that builds a fresh, empty
//! store, e.g. `crate::storage_suite!(Arc::new(SqliteStore::open(&tmp).unwrap()));`.
//! Compiled only with the `testsuite` feature.
#![allow(clippy::unwrap_used, clippy::disallowed_names)]

use crate::accounts::AccountService;
use crate::auth::{
    AuthConfig, AuthService, AuthStores, Requester, SignIn, CODES_PER_HOUR, CODE_MAX_ATTEMPTS, CODE_TTL_SECS, FAILURES_PER_DAY, FAILURES_PER_PHONE_DAY,
};
use crate::bus::{Event, EventBus, InProcessBus};
use crate::clock::Clock;
use crate::error::{AccountError, AuthError, DomainError, FileError, GroupError, MessageError, StoreError};
use crate::groups::GroupService;
use crate::messages::{MessageService, SendRequest};
use crate::model::*;
use crate::store::{
    AccountStore, Assembled, AuthKeyStore, BlobStore, FileStore, GroupStore, LoginCodeStore, MessageStore, PasswordStore, ScheduledStore, StoreResult, UploadId,
};
use sha2::Digest;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Every storage trait of one backend.
#[derive(Clone)]
pub struct Stores {
    pub keys: Arc<dyn AuthKeyStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub codes: Arc<dyn LoginCodeStore>,
    pub messages: Arc<dyn MessageStore>,
    pub groups: Arc<dyn GroupStore>,
    pub passwords: Arc<dyn PasswordStore>,
    pub scheduled: Arc<dyn ScheduledStore>,
    pub files: Arc<dyn FileStore>,
}

impl Stores {
    pub fn of<S: AuthKeyStore + AccountStore + LoginCodeStore + MessageStore + GroupStore + PasswordStore + ScheduledStore + FileStore + 'static>(
        s: Arc<S>,
    ) -> Self {
        Stores {
            keys: s.clone(),
            accounts: s.clone(),
            codes: s.clone(),
            messages: s.clone(),
            groups: s.clone(),
            passwords: s.clone(),
            scheduled: s.clone(),
            files: s,
        }
    }
}

/// A [`BlobStore`] in memory, for the suite (the backends' own blob stores have their own
/// tests): parts and complete files in maps. Every blob counts as idle (time is the
/// backends' business); the free space is what the suite sets.
#[derive(Default)]
pub struct MemBlobStore {
    parts: std::sync::Mutex<std::collections::HashMap<(UploadId, i32), Vec<u8>>>,
    blobs: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Assembled uploads: their part count and sizes, and what they made.
    done: std::sync::Mutex<std::collections::HashMap<UploadId, MemDone>>,
    pub free: std::sync::Mutex<Option<u64>>,
}

/// An assembled upload's part sizes and what it made.
type MemDone = (Vec<Option<u64>>, Assembled);

impl MemBlobStore {
    pub fn has(&self, blob: &str) -> bool {
        self.blobs.lock().unwrap().contains_key(blob)
    }
}

#[async_trait::async_trait]
impl BlobStore for MemBlobStore {
    async fn put_part(&self, up: UploadId, part: i32, bytes: Vec<u8>) -> StoreResult<()> {
        self.done.lock().unwrap().remove(&up);
        self.parts.lock().unwrap().insert((up, part), bytes);
        Ok(())
    }
    async fn part_sizes(&self, up: UploadId, parts: i32) -> StoreResult<Vec<Option<u64>>> {
        if let Some((sizes, _)) = self.done.lock().unwrap().get(&up).filter(|(s, _)| s.len() == parts as usize) {
            return Ok(sizes.clone());
        }
        let m = self.parts.lock().unwrap();
        Ok((0..parts).map(|p| m.get(&(up, p)).map(|b| b.len() as u64)).collect())
    }
    async fn assemble(&self, up: UploadId, parts: i32, _md5: bool) -> StoreResult<Assembled> {
        if let Some((_, a)) = self.done.lock().unwrap().get(&up).filter(|(s, _)| s.len() == parts as usize) {
            return Ok(a.clone());
        }
        let m = self.parts.lock().unwrap();
        let bytes: Vec<u8> = (0..parts).flat_map(|p| m.get(&(up, p)).cloned().unwrap_or_default()).collect();
        let blob = crate::files::hex(&sha2::Sha256::digest(&bytes));
        let a = Assembled { blob: blob.clone(), size: bytes.len() as i64, md5: None };
        self.blobs.lock().unwrap().insert(blob, bytes);
        Ok(a)
    }
    async fn release(&self, up: UploadId, parts: i32, made: &Assembled) -> StoreResult<()> {
        let mut m = self.parts.lock().unwrap();
        let sizes = (0..parts).map(|p| m.remove(&(up, p)).map(|b| b.len() as u64)).collect();
        self.done.lock().unwrap().insert(up, (sizes, made.clone()));
        Ok(())
    }
    async fn store(&self, bytes: Vec<u8>) -> StoreResult<Assembled> {
        let blob = crate::files::hex(&sha2::Sha256::digest(&bytes));
        let a = Assembled { blob: blob.clone(), size: bytes.len() as i64, md5: None };
        self.blobs.lock().unwrap().insert(blob, bytes);
        Ok(a)
    }
    async fn read(&self, blob: &str, offset: u64, limit: usize) -> StoreResult<Vec<u8>> {
        let m = self.blobs.lock().unwrap();
        let b = m.get(blob).ok_or_else(|| crate::error::StoreError::Backend(format!("no blob {blob}")))?;
        let start = (offset as usize).min(b.len());
        Ok(b[start..(start + limit).min(b.len())].to_vec())
    }
    async fn expire_uploads(&self, _max_age_secs: u64) -> StoreResult<usize> {
        Ok(0)
    }
    async fn held_bytes(&self, owner: UserId) -> StoreResult<u64> {
        Ok(self.parts.lock().unwrap().iter().filter(|((up, _), _)| up.owner == owner).map(|(_, b)| b.len() as u64).sum())
    }
    async fn free_bytes(&self) -> StoreResult<Option<u64>> {
        Ok(*self.free.lock().unwrap())
    }
    async fn idle_blobs(&self, _idle_secs: u64, limit: usize) -> StoreResult<Vec<String>> {
        Ok(self.blobs.lock().unwrap().keys().take(limit).cloned().collect())
    }
    async fn delete_if_idle(&self, blob: &str, _idle_secs: u64) -> StoreResult<bool> {
        Ok(self.blobs.lock().unwrap().remove(blob).is_some())
    }
}

pub struct FakeClock(AtomicI64);
impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
impl FakeClock {
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

pub struct World {
    pub stores: Stores,
    pub clock: Arc<FakeClock>,
    pub bus: Arc<InProcessBus>,
    pub auth: AuthService,
    pub accounts: AccountService,
    pub messages: Arc<MessageService>,
    pub groups: GroupService,
    pub scheduled: crate::schedule::ScheduleService,
    pub files: crate::files::FileService,
    pub blobs: Arc<MemBlobStore>,
}

pub fn world(stores: Stores) -> World {
    let clock = Arc::new(FakeClock(AtomicI64::new(1_800_000_000_000)));
    let bus = Arc::new(InProcessBus::new());
    let messages =
        Arc::new(MessageService::new(stores.messages.clone(), stores.groups.clone(), bus.clone(), clock.clone()).with_accounts(stores.accounts.clone()));
    let accounts = AccountService::new(stores.accounts.clone(), stores.messages.clone(), [9; 32], clock.clone());
    let auth = AuthService::new(
        AuthStores { accounts: stores.accounts.clone(), codes: stores.codes.clone(), keys: stores.keys.clone(), passwords: stores.passwords.clone() },
        messages.clone(),
        bus.clone(),
        clock.clone(),
        AuthConfig { dc_id: 1, test_phones: true, log_codes: false },
    );
    let groups = GroupService::new(stores.groups.clone(), stores.accounts.clone(), messages.clone(), bus.clone(), clock.clone());
    let scheduled = crate::schedule::ScheduleService::new(stores.scheduled.clone(), messages.clone(), bus.clone(), clock.clone());
    let blobs = Arc::new(MemBlobStore::default());
    let files = crate::files::FileService::new(blobs.clone(), stores.files.clone(), [9; 32], clock.clone(), 1);
    World { stores, clock, bus, auth, accounts, messages, groups, scheduled, files, blobs }
}

async fn key(w: &World, id: i64) {
    w.stores
        .keys
        .insert_key(AuthKeyRecord {
            id,
            key: vec![0; 256],
            created_at: 0,
            expires_at: None,
            user_id: None,
            client: None,
            first_salt: 0,
            last_used_at: 0,
            addr: String::new(),
            perm_key_id: None,
        })
        .await
        .unwrap();
}

/// Key `k` on address 127.0.0.1.
fn who(k: i64) -> Requester {
    Requester::new(k, "127.0.0.1")
}

async fn sign_up(w: &World, key_id: i64, phone: &str, name: &str) -> User {
    key(w, key_id).await;
    let code = crate::auth::test_phone_code(phone).unwrap();
    let sent = w.auth.send_code(&who(key_id), phone).await.unwrap();
    assert_eq!(w.auth.sign_in(&who(key_id), phone, &sent.hash, &code).await.unwrap(), SignIn::SignUpRequired);
    w.auth.sign_up(&who(key_id), phone, &sent.hash, name, "").await.unwrap()
}

fn auth_err(e: DomainError) -> AuthError {
    match e {
        DomainError::Auth(a) => a,
        other => panic!("expected an auth error, got {other:?}"),
    }
}

pub async fn sign_up_then_sign_in_binds_keys_and_ids_carry_the_dc(stores: Stores) {
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996611111", "Alice").await;
    assert_eq!(alice.id.home_dc(), Some(1));
    assert_eq!(w.stores.keys.get_key(1).await.unwrap().unwrap().user_id, Some(alice.id));
    key(&w, 2).await;
    let sent = w.auth.send_code(&who(2), "+999 661 1111").await.unwrap();
    assert_eq!(w.auth.sign_in(&who(2), "9996611111", &sent.hash, "11111").await.unwrap(), SignIn::Authorized(alice.clone()));
    // signing up without a verified code is refused
    let sent = w.auth.send_code(&who(2), "9996611111").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_up(&who(2), "9996611111", &sent.hash, "X", "").await.unwrap_err()), AuthError::PhoneCodeInvalid);
    w.auth.log_out(2, alice.id).await.unwrap();
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, None);
}

/// Sessions are the keys bound to the account; ending one unbinds it and tells its
/// connections (KeyUnbound), never the current one or another account's.
pub async fn sessions_are_listed_and_ended(stores: Stores) {
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996613131", "Alice").await;
    let bob = sign_up(&w, 9, "9996613132", "Bob").await;
    for k in [2, 3] {
        key(&w, k).await;
        let sent = w.auth.send_code(&who(k), "9996613131").await.unwrap();
        w.auth.sign_in(&who(k), "9996613131", &sent.hash, "11111").await.unwrap();
    }
    let mut ids: Vec<i64> = w.auth.sessions(alice.id).await.unwrap().into_iter().map(|k| k.id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(w.auth.sessions(alice.id).await.unwrap().iter().all(|k| k.key.is_empty()), "no key material in listings");
    let account_err = |e: DomainError| match e {
        DomainError::Account(a) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(account_err(w.auth.end_session(alice.id, 1, 1).await.unwrap_err()), AccountError::HashInvalid);
    assert_eq!(account_err(w.auth.end_session(alice.id, 1, 9).await.unwrap_err()), AccountError::HashInvalid);
    let mut rx = w.bus.subscribe(alice.id);
    w.auth.end_session(alice.id, 1, 2).await.unwrap();
    assert!(matches!(*rx.rx.try_recv().unwrap(), Event::KeyUnbound { auth_key_id: 2, .. }));
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, None);
    assert_eq!(account_err(w.auth.end_session(alice.id, 1, 2).await.unwrap_err()), AccountError::HashInvalid, "already ended");
    assert_eq!(w.auth.end_other_sessions(alice.id, 3).await.unwrap(), 1);
    assert_eq!(w.auth.sessions(alice.id).await.unwrap().into_iter().map(|k| k.id).collect::<Vec<_>>(), vec![3]);
    assert_eq!(w.auth.sessions(bob.id).await.unwrap().len(), 1, "bob's session untouched");
    assert_ne!(w.accounts.session_hash(alice.id, 2), w.accounts.session_hash(bob.id, 2));
}

pub async fn blocking_stops_private_messages_both_ways(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 4, "block").await;
    let (a, b, c, d) = (u[0].id, u[1].id, u[2].id, u[3].id);
    let msg_err = |e: DomainError| match e {
        DomainError::Message(m) => m,
        other => panic!("{other:?}"),
    };
    let mut rx = w.bus.subscribe(a);
    w.messages.set_blocked(a, b, true).await.unwrap();
    assert!(matches!(*rx.rx.try_recv().unwrap(), Event::PeerBlocked { peer, blocked: true, .. } if peer == b));
    w.messages.set_blocked(a, b, true).await.unwrap();
    assert!(rx.rx.try_recv().is_err(), "blocking twice changes nothing");
    assert_eq!(msg_err(w.messages.send(send(b, Peer::User(a), 1, "hi")).await.unwrap_err()), MessageError::UserIsBlocked);
    assert_eq!(msg_err(w.messages.send(send(a, Peer::User(b), 2, "hi")).await.unwrap_err()), MessageError::YouBlockedUser);
    w.messages.send(send(c, Peer::User(a), 3, "hi")).await.unwrap();
    assert_eq!(msg_err(w.messages.set_blocked(a, a, true).await.unwrap_err()), MessageError::ContactIdInvalid);
    w.clock.advance(5);
    w.messages.set_blocked(a, c, true).await.unwrap();
    w.clock.advance(5);
    w.messages.set_blocked(a, d, true).await.unwrap();
    let (page, count) = w.messages.blocked(a, 0, 2).await.unwrap();
    assert_eq!((page.iter().map(|(u, _)| *u).collect::<Vec<_>>(), count), (vec![d, c], 3), "newest first");
    assert_eq!(w.messages.blocked(a, 2, 2).await.unwrap().0.iter().map(|(u, _)| *u).collect::<Vec<_>>(), vec![b]);
    w.messages.set_blocked(a, b, false).await.unwrap();
    w.messages.send(send(b, Peer::User(a), 4, "again")).await.unwrap();
    assert!(!w.messages.is_blocked(a, b).await.unwrap() && w.messages.is_blocked(a, c).await.unwrap());
    // Both ways: the sender hears of their own block.
    w.messages.set_blocked(c, a, true).await.unwrap();
    assert_eq!(msg_err(w.messages.send(send(a, Peer::User(c), 5, "hi")).await.unwrap_err()), MessageError::YouBlockedUser);
}

/// Unread marks on an account dialog and on a channel dialog; reading new messages clears
/// them; a peer without a dialog is refused.
pub async fn dialogs_can_be_marked_unread(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 3, "mark").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    w.messages.send(send(b, Peer::User(a), 1, "hi")).await.unwrap();
    let g = w.groups.create_channel(b, 1, "Room", "", false).await.unwrap().group;
    w.groups.add_members(b, 1, g.id, &[a]).await.unwrap();
    let mut rx = w.bus.subscribe(a);
    for peer in [Peer::User(b), Peer::Channel(g.id)] {
        w.messages.mark_dialog_unread(a, peer, true).await.unwrap();
        assert!(matches!(*rx.rx.try_recv().unwrap(), Event::DialogUnreadMark { peer: p, unread: true, .. } if p == peer));
        w.messages.mark_dialog_unread(a, peer, true).await.unwrap();
        assert!(rx.rx.try_recv().is_err(), "no change, no event");
        assert!(w.messages.dialog(a, peer).await.unwrap().unwrap().unread_mark);
    }
    let mut marked = w.messages.unread_marks(a).await.unwrap();
    marked.sort_by_key(|p| p.marked());
    assert_eq!(marked.len(), 2);
    w.messages.send(send(b, Peer::User(a), 2, "news")).await.unwrap();
    w.messages.read_history(a, 1, Peer::User(b), 0).await.unwrap();
    w.messages.send(send(b, Peer::Channel(g.id), 3, "post")).await.unwrap();
    w.messages.read_channel(a, g.id, 0).await.unwrap();
    assert_eq!(w.messages.unread_marks(a).await.unwrap(), vec![], "reading cleared both");
    assert!(matches!(w.messages.mark_dialog_unread(a, Peer::User(c), true).await.unwrap_err(), DomainError::Message(MessageError::PeerIdInvalid)));
}

pub async fn codes_expire_burn_after_wrong_tries_and_are_rate_limited(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    let sent = w.auth.send_code(&who(1), "9996622222").await.unwrap(); // code 1
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &sent.hash, "12345").await.unwrap_err()), AuthError::PhoneCodeInvalid);
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", "nope", "22222").await.unwrap_err()), AuthError::PhoneCodeExpired);
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", "", "22222").await.unwrap_err()), AuthError::PhoneCodeHashEmpty);
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &sent.hash, "").await.unwrap_err()), AuthError::PhoneCodeEmpty);
    for _ in 1..CODE_MAX_ATTEMPTS {
        let _ = w.auth.sign_in(&who(1), "9996622222", &sent.hash, "00000").await;
    }
    // burnt: even the right code is refused now
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &sent.hash, "22222").await.unwrap_err()), AuthError::PhoneCodeExpired);
    // expiry
    let sent = w.auth.send_code(&who(1), "9996622222").await.unwrap(); // code 2
    w.clock.advance(CODE_TTL_SECS + 1);
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &sent.hash, "22222").await.unwrap_err()), AuthError::PhoneCodeExpired);
    // resend: a new hash (the old one dies) and a fresh attempt budget; cancel kills it
    let sent = w.auth.send_code(&who(1), "9996622222").await.unwrap(); // code 3
    let again = w.auth.resend_code(&who(1), "9996622222", &sent.hash).await.unwrap(); // code 4
    assert_ne!(again.hash, sent.hash);
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &sent.hash, "22222").await.unwrap_err()), AuthError::PhoneCodeExpired);
    w.auth.cancel_code(&who(1), "9996622222", &again.hash).await.unwrap();
    assert_eq!(auth_err(w.auth.sign_in(&who(1), "9996622222", &again.hash, "22222").await.unwrap_err()), AuthError::PhoneCodeExpired);
    // the hourly limit counts every code issued, resends included
    for _ in 4..CODES_PER_HOUR {
        w.auth.send_code(&who(1), "9996622222").await.unwrap();
    }
    match auth_err(w.auth.send_code(&who(1), "9996622222").await.unwrap_err()) {
        AuthError::FloodWait(s) => assert!(s > 0 && s <= 3600),
        other => panic!("{other:?}"),
    }
    // resending is no way around it
    assert!(matches!(auth_err(w.auth.resend_code(&who(1), "9996622222", &again.hash).await.unwrap_err()), AuthError::PhoneCodeExpired));
    assert_eq!(auth_err(w.auth.send_code(&who(1), "12").await.unwrap_err()), AuthError::PhoneNumberInvalid);
}

pub async fn parallel_guesses_share_one_attempt_budget(stores: Stores) {
    let w = Arc::new(world(stores));
    key(&w, 1).await;
    let sent = w.auth.send_code(&who(1), "9996677777").await.unwrap();
    let tries = (0..40).map(|i| {
        let (w, hash) = (w.clone(), sent.hash.clone());
        tokio::spawn(async move { w.auth.sign_in(&who(1), "9996677777", &hash, &format!("{:05}", i)).await })
    });
    let mut invalid = 0;
    for t in tries {
        match t.await.unwrap() {
            Err(e) if auth_err(e.clone()) == AuthError::PhoneCodeInvalid => invalid += 1,
            Err(e) => assert_eq!(auth_err(e), AuthError::PhoneCodeExpired),
            Ok(r) => panic!("a wrong code was accepted: {r:?}"),
        }
    }
    assert_eq!(invalid, CODE_MAX_ATTEMPTS as usize, "exactly the budget was spent on comparisons");
}

pub async fn wrong_codes_per_day_are_capped(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    let mut wrong = 0;
    'codes: loop {
        let sent = w.auth.send_code(&who(1), "9996688888").await.unwrap();
        for _ in 0..CODE_MAX_ATTEMPTS {
            match w.auth.sign_in(&who(1), "9996688888", &sent.hash, "00000").await.unwrap_err() {
                DomainError::Auth(AuthError::PhoneCodeInvalid) => wrong += 1,
                DomainError::Auth(AuthError::FloodWait(s)) => {
                    assert!(s > 3600 && s <= 86_400);
                    break 'codes;
                }
                other => panic!("{other:?}"),
            }
        }
        w.clock.advance(3600); // past the hourly code limit
    }
    assert_eq!(wrong, FAILURES_PER_DAY);
    // the right code is refused too until the day has passed
    let sent = w.auth.send_code(&who(1), "9996688888").await.unwrap();
    assert!(matches!(auth_err(w.auth.sign_in(&who(1), "9996688888", &sent.hash, "88888").await.unwrap_err()), AuthError::FloodWait(_)));
}

pub async fn login_code_reaches_the_other_sessions_through_777000(stores: Stores) {
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996633333", "Alice").await;
    let mut rx = w.bus.subscribe(alice.id);
    w.auth.send_code(&who(1), "9996633333").await.unwrap();
    let Event::Updates { updates, .. } = std::sync::Arc::unwrap_or_clone(rx.rx.recv().await.unwrap()) else { panic!() };
    let UpdateKind::NewMessage(m) = &updates[0].kind else { panic!() };
    assert_eq!((m.from, m.out), (SERVICE_USER_ID, false));
    assert!(m.text.contains("33333"));
}

pub async fn usernames_and_access_hashes(stores: Stores) {
    let w = world(stores);
    let a = sign_up(&w, 1, "9996644441", "A").await;
    let b = sign_up(&w, 2, "9996644442", "B").await;
    let err = |e: DomainError| match e {
        DomainError::Account(a) => a,
        other => panic!("{other:?}"),
    };
    w.accounts.update_username(a.id, "Alice_1").await.unwrap();
    assert_eq!(err(w.accounts.update_username(b.id, "alice_1").await.unwrap_err()), AccountError::UsernameOccupied);
    assert_eq!(err(w.accounts.update_username(a.id, "Alice_1").await.unwrap_err()), AccountError::UsernameNotModified);
    assert_eq!(err(w.accounts.update_username(b.id, "1bad").await.unwrap_err()), AccountError::UsernameInvalid);
    assert!(!w.accounts.check_username(b.id, "ALICE_1").await.unwrap());
    assert!(w.accounts.check_username(a.id, "alice_1").await.unwrap());
    assert_eq!(w.accounts.resolve_username("@ALICE_1").await.unwrap().id, a.id);
    // per-viewer hashes: right one works, a forged one and a hash meant for someone else do not
    let h = w.accounts.access_hash(b.id, a.id);
    assert_ne!(h, w.accounts.access_hash(a.id, b.id));
    assert_eq!(w.accounts.check_access(b.id, a.id, h, AccountError::PeerIdInvalid).await.unwrap().id, a.id);
    assert_eq!(err(w.accounts.check_access(b.id, a.id, h ^ 1, AccountError::PeerIdInvalid).await.unwrap_err()), AccountError::PeerIdInvalid);
    // hash 0: only for peers already known (no dialog yet)
    assert_eq!(err(w.accounts.check_access(b.id, a.id, 0, AccountError::UserIdInvalid).await.unwrap_err()), AccountError::UserIdInvalid);
    w.messages
        .send(SendRequest { from: a.id, peer: Peer::User(b.id), origin_key: 1, random_id: 1, text: "hi".into(), entities: vec![], reply_to: None })
        .await
        .unwrap();
    assert!(w.accounts.check_access(b.id, a.id, 0, AccountError::UserIdInvalid).await.is_ok());
}

pub async fn sends_validate_dedup_and_notify_both_sides(stores: Stores) {
    let w = world(stores);
    let a = sign_up(&w, 1, "9996655551", "A").await;
    let b = sign_up(&w, 2, "9996655552", "B").await;
    let mut a_rx = w.bus.subscribe(a.id);
    let mut b_rx = w.bus.subscribe(b.id);
    let req = |text: &str, random_id| SendRequest {
        from: a.id,
        peer: Peer::User(b.id),
        origin_key: 1,
        random_id,
        text: text.into(),
        entities: vec![],
        reply_to: None,
    };
    let msg_err = |e: DomainError| match e {
        DomainError::Message(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(msg_err(w.messages.send(req("", 1)).await.unwrap_err()), MessageError::MessageEmpty);
    assert_eq!(msg_err(w.messages.send(req(&"x".repeat(4097), 1)).await.unwrap_err()), MessageError::MessageTooLong);
    assert!(w.messages.send(req(&"я".repeat(4096), 2)).await.is_ok());
    let first = w.messages.send(req("hello", 3)).await.unwrap();
    let again = w.messages.send(req("hello", 3)).await.unwrap();
    assert!(again.duplicate && !first.duplicate);
    assert_eq!(again.update, first.update);
    // the sender's event names its key (that session got the RPC result); the peer's does not
    let Event::Updates { origin, .. } = std::sync::Arc::unwrap_or_clone(a_rx.rx.recv().await.unwrap()) else { panic!() };
    assert_eq!(origin, Some(1));
    let Event::Updates { origin, updates, .. } = std::sync::Arc::unwrap_or_clone(b_rx.rx.recv().await.unwrap()) else { panic!() };
    assert_eq!(origin, None);
    assert_eq!(updates[0].pts, 2);
    // the duplicate published nothing
    let _ = b_rx.rx.recv().await.unwrap();
    assert!(b_rx.rx.try_recv().is_err());
    assert_eq!(w.messages.state(b.id).await.unwrap().pts, 3);
}

pub async fn a_strangers_failures_do_not_lock_the_owner_out(stores: Stores) {
    let w = world(stores);
    let owner = sign_up(&w, 1, "9996612121", "Owner").await;
    // an attacker on another address, rotating keys, burns codes until refused
    let attacker = |k: i64| Requester::new(k, "198.51.100.7");
    let mut wrong = 0;
    let mut refused = false;
    'outer: for k in 100..200 {
        key(&w, k).await;
        let sent = match w.auth.send_code(&attacker(k), "9996612121").await {
            Ok(s) => s,
            Err(e) => {
                assert!(matches!(auth_err(e), AuthError::FloodWait(_)));
                w.clock.advance(3600);
                continue;
            }
        };
        for _ in 0..CODE_MAX_ATTEMPTS {
            match auth_err(w.auth.sign_in(&attacker(k), "9996612121", &sent.hash, "00000").await.unwrap_err()) {
                AuthError::PhoneCodeInvalid => wrong += 1,
                AuthError::FloodWait(_) => {
                    refused = true;
                    break 'outer;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(refused && wrong == FAILURES_PER_DAY, "the attacker's address is capped ({wrong})");
    // the owner, from their own address and key, asks for a code and gets in
    key(&w, 2).await;
    let me = Requester::new(2, "203.0.113.5");
    let sent = w.auth.send_code(&me, "9996612121").await.unwrap();
    assert_eq!(w.auth.sign_in(&me, "9996612121", &sent.hash, "11111").await.unwrap(), SignIn::Authorized(owner));
}

pub async fn many_attacking_addresses_only_block_those_that_failed(stores: Stores) {
    let w = world(stores);
    let owner = sign_up(&w, 1, "9996613131", "Owner").await;
    // failures from many addresses add up past the phone's daily total
    let mut k = 1000;
    for n in 0..(FAILURES_PER_PHONE_DAY / 4) {
        let addr = format!("198.51.100.{n}");
        for _ in 0..4 {
            k += 1;
            key(&w, k).await;
            let r = Requester::new(k, &addr);
            let sent = w.auth.send_code(&r, "9996613131").await.unwrap();
            let _ = w.auth.sign_in(&r, "9996613131", &sent.hash, "00000").await;
        }
        w.clock.advance(60);
    }
    // an address that failed is now refused at once, even with the right code
    key(&w, 5000).await;
    let tainted = Requester::new(5000, "198.51.100.1");
    let sent = w.auth.send_code(&tainted, "9996613131").await.unwrap();
    assert!(matches!(auth_err(w.auth.sign_in(&tainted, "9996613131", &sent.hash, "11111").await.unwrap_err()), AuthError::FloodWait(_)));
    // the owner's clean address and key still sign in
    key(&w, 5001).await;
    let me = Requester::new(5001, "203.0.113.9");
    let sent = w.auth.send_code(&me, "9996613131").await.unwrap();
    assert_eq!(w.auth.sign_in(&me, "9996613131", &sent.hash, "11111").await.unwrap(), SignIn::Authorized(owner));
}

pub async fn codes_belong_to_the_key_that_asked_and_are_limited_per_address(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    key(&w, 2).await;
    let sent = w.auth.send_code(&who(1), "9996614141").await.unwrap();
    // another key cannot use, resend or cancel it
    assert_eq!(auth_err(w.auth.sign_in(&who(2), "9996614141", &sent.hash, "11111").await.unwrap_err()), AuthError::PhoneCodeExpired);
    assert_eq!(auth_err(w.auth.resend_code(&who(2), "9996614141", &sent.hash).await.unwrap_err()), AuthError::PhoneCodeExpired);
    w.auth.cancel_code(&who(2), "9996614141", &sent.hash).await.unwrap();
    assert_eq!(w.auth.sign_in(&who(1), "9996614141", &sent.hash, "11111").await.unwrap(), SignIn::SignUpRequired);
    // the hourly code limit is per (phone, address): another address still gets one
    for _ in 1..CODES_PER_HOUR {
        w.auth.send_code(&who(1), "9996614141").await.unwrap();
    }
    assert!(matches!(auth_err(w.auth.send_code(&who(1), "9996614141").await.unwrap_err()), AuthError::FloodWait(_)));
    w.auth.send_code(&Requester::new(2, "203.0.113.1"), "9996614141").await.unwrap();
    // rows no limit needs any more are collected
    w.clock.advance(2 * 86_400);
    assert!(w.auth.purge().await.unwrap() >= CODES_PER_HOUR);
}

pub async fn the_service_account_cannot_be_logged_into(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    for phone in ["42777", "+42777"] {
        assert_eq!(auth_err(w.auth.send_code(&who(1), phone).await.unwrap_err()), AuthError::PhoneNumberInvalid);
        assert_eq!(auth_err(w.auth.sign_in(&who(1), phone, "0000000000000000", "00000").await.unwrap_err()), AuthError::PhoneNumberInvalid);
    }
}

pub async fn names_are_cleaned_and_invisible_ones_refused(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    let sent = w.auth.send_code(&who(1), "9996615151").await.unwrap();
    w.auth.sign_in(&who(1), "9996615151", &sent.hash, "11111").await.unwrap();
    for blank in ["\u{200b}\u{200b}", "\u{2060}", "\u{3164}", " \u{200e} "] {
        assert_eq!(auth_err(w.auth.sign_up(&who(1), "9996615151", &sent.hash, blank, "").await.unwrap_err()), AuthError::FirstNameInvalid);
    }
    assert_eq!(auth_err(w.auth.sign_up(&who(1), "9996615151", &sent.hash, "Ann", &"x".repeat(65)).await.unwrap_err()), AuthError::LastNameInvalid);
    let u = w.auth.sign_up(&who(1), "9996615151", &sent.hash, "Ev\u{202e}il\u{7}", "Sm\u{202e}ith").await.unwrap();
    assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("Evil", "Smith"));
    let err = |e: DomainError| match e {
        DomainError::Account(a) => a,
        other => panic!("{other:?}"),
    };
    assert_eq!(err(w.accounts.update_profile(u.id, Some("\u{200b}"), None, None).await.unwrap_err()), AccountError::FirstNameInvalid);
    assert_eq!(err(w.accounts.update_profile(u.id, None, Some(&"x".repeat(65)), None).await.unwrap_err()), AccountError::LastNameInvalid);
    let u = w.accounts.update_profile(u.id, Some("B\u{2066}ob"), None, None).await.unwrap();
    assert_eq!(u.first_name, "Bob");
}

pub async fn sends_are_limited_per_account(stores: Stores) {
    use crate::limits::{Bucket, FloodTable};
    use crate::messages::MESSAGE_OVERHEAD_BYTES;
    let w = world(stores);
    let a = sign_up(&w, 1, "9996616161", "A").await;
    let b = sign_up(&w, 2, "9996616162", "B").await;
    let limits = FloodTable { sends: Bucket { burst: 20.0, per_sec: 1.0 }, stored_bytes: Bucket { burst: 40_000.0, per_sec: 100.0 }, ..FloodTable::default() };
    let messages = MessageService::with_limits(w.stores.messages.clone(), w.stores.groups.clone(), w.bus.clone(), w.clock.clone(), &limits);
    let req = |from: UserId, to: UserId, random_id, text: &str| SendRequest {
        from,
        peer: Peer::User(to),
        origin_key: 1,
        random_id,
        text: text.into(),
        entities: vec![],
        reply_to: None,
    };
    let mut sent = 0;
    let wait = loop {
        match messages.send(req(a.id, b.id, sent + 1, "hi")).await {
            Ok(_) => sent += 1,
            Err(DomainError::Message(MessageError::FloodWait(s))) => break s,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!((sent, wait), (20, 1), "the burst, then a one-second wait");
    // others are not affected, and the sender may go on after the wait
    messages.send(req(b.id, a.id, 1, "hi")).await.unwrap();
    w.clock.advance(wait);
    messages.send(req(a.id, b.id, 10_000, "hi")).await.unwrap();
    // the storage quota: long messages use it up long before the count does
    let long = "x".repeat(4000);
    let mut stored = 0;
    let wait = loop {
        w.clock.advance(1);
        match messages.send(req(b.id, a.id, 100 + stored, &long)).await {
            Ok(_) => stored += 1,
            Err(DomainError::Message(MessageError::FloodWait(s))) => break s,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert!((9..=11).contains(&stored), "{stored} long messages fit in 40 000 bytes");
    assert!(wait >= ((4000 + MESSAGE_OVERHEAD_BYTES) as i64 / 100) - 40, "{wait}");
    // invisible-only text is empty
    assert!(matches!(messages.send(req(a.id, b.id, 3, "\u{200b}\u{2060}")).await.unwrap_err(), DomainError::Message(MessageError::MessageEmpty)));
}

pub async fn one_address_asking_codes_for_many_numbers_is_limited(stores: Stores) {
    use crate::auth::CODES_PER_ADDR_HOUR;
    let w = world(stores);
    key(&w, 1).await;
    let me = Requester::new(1, "198.51.100.50");
    // ordinary numbers (not test numbers): each is a row and, in production, an SMS
    for n in 0..CODES_PER_ADDR_HOUR {
        w.auth.send_code(&me, &format!("1555{:07}", n)).await.unwrap();
    }
    match auth_err(w.auth.send_code(&me, "15559999999").await.unwrap_err()) {
        AuthError::FloodWait(s) => assert!((1..=3600).contains(&s), "{s}"),
        other => panic!("{other:?}"),
    }
    // another address is not affected, and test numbers stay usable for development
    w.auth.send_code(&Requester::new(1, "203.0.113.77"), "15559999999").await.unwrap();
    w.auth.send_code(&me, "9996617171").await.unwrap();
}

pub async fn a_second_sign_up_for_a_taken_number_is_occupied(stores: Stores) {
    let w = world(stores);
    key(&w, 1).await;
    key(&w, 2).await;
    // both keys verify a code for the same new number; the second sign-up finds it taken
    let mut hashes = Vec::new();
    for k in [1, 2] {
        let sent = w.auth.send_code(&who(k), "9996618181").await.unwrap();
        assert_eq!(w.auth.sign_in(&who(k), "9996618181", &sent.hash, "11111").await.unwrap(), SignIn::SignUpRequired);
        hashes.push(sent.hash);
    }
    let first = w.auth.sign_up(&who(1), "9996618181", &hashes[0], "First", "").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_up(&who(2), "9996618181", &hashes[1], "Second", "").await.unwrap_err()), AuthError::PhoneNumberOccupied);
    assert_eq!(w.stores.keys.get_key(1).await.unwrap().unwrap().user_id, Some(first.id));
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, None);
}

// ---- groups and channels ------------------------------------------------------------------

/// Users made straight in the store (fast enough for member lists in the thousands).
async fn users(w: &World, n: usize, prefix: &str) -> Vec<User> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let phone = format!("88{:08}{}", i, prefix.len());
        let u = w
            .stores
            .accounts
            .create_user(NewUser { phone, first_name: format!("{prefix}{i}"), last_name: String::new(), home_dc: 1, created_at: 0 })
            .await
            .unwrap();
        out.push(u);
    }
    out
}

fn group_err(e: DomainError) -> GroupError {
    match e {
        DomainError::Group(g) => g,
        other => panic!("expected a group error, got {other:?}"),
    }
}

fn send(from: UserId, peer: Peer, random_id: i64, text: &str) -> SendRequest {
    SendRequest { from, peer, origin_key: 1, random_id, text: text.into(), entities: vec![], reply_to: None }
}

fn new_message(u: &PtsUpdate) -> &Message {
    match &u.kind {
        UpdateKind::NewMessage(m) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

pub async fn basic_group_messages_go_to_every_members_box(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 4, "basic").await;
    let (a, b, c, d) = (u[0].id, u[1].id, u[2].id, u[3].id);
    let mut b_rx = w.bus.subscribe(b);
    let created = w.groups.create_chat(a, 1, "  Friends ", &[b, c]).await.unwrap();
    let g = created.group;
    assert_eq!((g.title.as_str(), g.participants_count, g.kind), ("Friends", 3, GroupKind::Basic));
    let peer = Peer::Chat(g.id);
    // the creation is a service message in every member's box, each with its own id
    for who in [a, b, c] {
        let (msgs, _) = w.messages.history(who, peer, HistoryQuery { limit: 10, ..Default::default() }).await.unwrap();
        assert!(matches!(msgs[0].action, Some(Action::ChatCreate { .. })), "{who:?}");
    }
    let Event::Updates { updates, .. } = std::sync::Arc::unwrap_or_clone(b_rx.rx.recv().await.unwrap()) else { panic!() };
    assert!(new_message(&updates[0]).action.is_some());
    // a message reaches the other members' boxes, incoming and unread for them
    let sent = w.messages.send(send(a, peer, 5, "hello all")).await.unwrap();
    assert!(new_message(&sent.update).out);
    let Event::Updates { updates, .. } = std::sync::Arc::unwrap_or_clone(b_rx.rx.recv().await.unwrap()) else { panic!() };
    let got = new_message(&updates[0]);
    assert!(!got.out && got.peer == peer && got.from == a && got.text == "hello all");
    let dialog = w.messages.dialog(b, peer).await.unwrap().unwrap();
    assert_eq!(dialog.unread_count, 2, "the creation and the message");
    // reading tells the sender (their outbox mark, in their own ids)
    w.messages.read_history(b, 2, peer, 0).await.unwrap().unwrap();
    assert_eq!(w.messages.dialog(b, peer).await.unwrap().unwrap().unread_count, 0);
    let a_dialog = w.messages.dialog(a, peer).await.unwrap().unwrap();
    assert_eq!(a_dialog.read_outbox_max_id, new_message(&sent.update).id);
    // an edit reaches every copy; a revoke removes them
    w.messages.edit(a, 1, peer, new_message(&sent.update).id, "hello everyone".into(), vec![]).await.unwrap();
    let b_copy = w.messages.history(b, peer, HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0.remove(0);
    assert_eq!(b_copy.text, "hello everyone");
    w.messages.delete(a, 1, &[new_message(&sent.update).id], true).await.unwrap();
    assert!(w.messages.messages_by_ids(BoxId::User(c), &[b_copy.id]).await.unwrap().iter().all(|m| m.text != "hello everyone"));
    // adding and removing members: service messages, and the removed may not write
    w.groups.add_members(a, 1, g.id, &[d]).await.unwrap();
    assert_eq!(group_err(w.groups.add_members(a, 1, g.id, &[d]).await.unwrap_err()), GroupError::UserAlreadyParticipant);
    assert_eq!(group_err(w.groups.remove_member(b, 2, g.id, c, false).await.unwrap_err()), GroupError::ChatAdminRequired);
    w.groups.remove_member(a, 1, g.id, d, true).await.unwrap();
    assert_eq!(group_err(w.messages.send(send(d, peer, 1, "let me in")).await.unwrap_err()), GroupError::ChatWriteForbidden);
    let (d_history, _) = w.messages.history(d, peer, HistoryQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert!(matches!(d_history[0].action, Some(Action::ChatDeleteUser { user }) if user == d.0), "the removed member sees their removal");
    // titles: cleaned, cut, never empty
    assert_eq!(group_err(w.groups.edit_title(b, 2, g.id, " \u{200b} ").await.unwrap_err()), GroupError::ChatTitleEmpty);
    let t = w.groups.edit_title(b, 2, g.id, &"t".repeat(300)).await.unwrap();
    assert_eq!(t.group.title.chars().count(), crate::groups::TITLE_MAX);
    assert_eq!(group_err(w.groups.edit_about(a, g.id, &"x".repeat(256)).await.unwrap_err()), GroupError::ChatAboutTooLong);
}

pub async fn basic_groups_hold_at_most_200(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 201, "max").await;
    let ids: Vec<UserId> = u.iter().map(|u| u.id).collect();
    assert_eq!(group_err(w.groups.create_chat(ids[0], 1, "big", &ids[1..]).await.unwrap_err()), GroupError::UsersTooMuch);
    let g = w.groups.create_chat(ids[0], 1, "big", &ids[1..200]).await.unwrap().group;
    assert_eq!(g.participants_count, 200);
    assert_eq!(group_err(w.groups.add_members(ids[0], 1, g.id, &[ids[200]]).await.unwrap_err()), GroupError::UsersTooMuch);
}

pub async fn a_channel_post_is_stored_once_with_the_channels_own_pts(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 1000, "chan").await;
    let owner = u[0].id;
    let g = w.groups.create_channel(owner, 1, "Big", "about", false).await.unwrap().group;
    let members: Vec<UserId> = u[1..].iter().map(|u| u.id).collect();
    for chunk in members.chunks(crate::groups::INVITE_BATCH_MAX) {
        w.groups.add_members(owner, 1, g.id, chunk).await.unwrap();
    }
    let ch = BoxId::Channel(g.id);
    let before = w.messages.pts(ch).await.unwrap();
    let user_pts = w.messages.state(members[5]).await.unwrap().pts;
    let mut follower = w.bus.subscribe(members[5]);
    w.bus.follow(follower.id, g.id);
    let sent = w.messages.send(send(members[5], Peer::Channel(g.id), 9, "hi all")).await.unwrap();
    assert_eq!(sent.owner, ch);
    assert_eq!(sent.update.pts, before + 1, "one copy, one pts step, whatever the member count");
    assert_eq!(w.messages.state(members[5]).await.unwrap().pts, user_pts, "members' own boxes do not move");
    let Event::Channel { channel, updates, .. } = std::sync::Arc::unwrap_or_clone(follower.rx.recv().await.unwrap()) else { panic!() };
    assert_eq!((channel, updates.len()), (g.id, 1));
    // the post is unread for others, read for its author; a mention counts for the mentioned
    let other = members[7];
    let d = w.messages.dialog(other, Peer::Channel(g.id)).await.unwrap().unwrap();
    assert_eq!(d.pts, Some(before + 1));
    assert!(d.unread_count >= 1);
    assert_eq!(w.messages.dialog(members[5], Peer::Channel(g.id)).await.unwrap().unwrap().unread_count, 0);
    let mention = Entity { offset: 0, length: 2, kind: EntityKind::MentionName { user_id: other.0 } };
    let mut req = send(members[5], Peer::Channel(g.id), 10, "yo there");
    req.entities = vec![mention];
    w.messages.send(req).await.unwrap();
    assert_eq!(w.messages.dialog(other, Peer::Channel(g.id)).await.unwrap().unwrap().unread_mentions, 1);
    w.messages.read_channel(other, g.id, 0).await.unwrap();
    let d = w.messages.dialog(other, Peer::Channel(g.id)).await.unwrap().unwrap();
    assert_eq!((d.unread_count, d.unread_mentions), (0, 0));
    // getChannelDifference: what was missed, in order, then nothing
    let diff = w.messages.channel_difference(other, g.id, before, 100).await.unwrap();
    assert_eq!(diff.updates.iter().map(|u| u.pts).collect::<Vec<_>>(), vec![before + 1, before + 2]);
    assert_eq!(diff.pts, before + 2);
    // deletes keep counts right
    w.messages.delete_channel_messages(owner, 1, g.id, &[new_message(&sent.update).id]).await.unwrap();
    let (hist, count) = w.messages.history(other, Peer::Channel(g.id), HistoryQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(count as usize, hist.len());
    // participants: paged over the whole list, counted, searchable
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let (page, count) = w.groups.participants(other, g.id, &MemberFilter::Recent, offset, 200).await.unwrap();
        assert_eq!(count, 1000);
        if page.is_empty() {
            break;
        }
        offset += page.len() as i32;
        for m in page {
            assert!(seen.insert(m.user), "pages do not overlap");
        }
    }
    assert_eq!(seen.len(), 1000);
    let (found, n) = w.groups.participants(other, g.id, &MemberFilter::Search("chan99".into()), 0, 200).await.unwrap();
    assert_eq!(n, 11, "chan99 and chan990..chan999");
    assert_eq!(found.len(), 11);
    let (admins, _) = w.groups.participants(other, g.id, &MemberFilter::Admins, 0, 10).await.unwrap();
    assert_eq!(admins.iter().map(|m| (m.user, m.role)).collect::<Vec<_>>(), vec![(owner, Role::Creator)]);
}

pub async fn channel_rights_are_enforced_with_telegrams_errors(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 4, "rights").await;
    let (owner, admin, member, stranger) = (u[0].id, u[1].id, u[2].id, u[3].id);
    let news = w.groups.create_channel(owner, 1, "News", "", true).await.unwrap().group;
    w.groups.add_members(owner, 1, news.id, &[admin, member]).await.unwrap();
    let peer = Peer::Channel(news.id);
    assert_eq!(group_err(w.messages.send(send(member, peer, 1, "me too")).await.unwrap_err()), GroupError::ChatAdminRequired);
    assert_eq!(group_err(w.messages.history(stranger, peer, HistoryQuery { limit: 1, ..Default::default() }).await.unwrap_err()), GroupError::ChannelPrivate);
    let rights = AdminRights(AdminRights::POST_MESSAGES | AdminRights::BAN_USERS | AdminRights::DELETE_MESSAGES);
    assert_eq!(group_err(w.groups.edit_admin(member, news.id, admin, rights, None).await.unwrap_err()), GroupError::ChatAdminRequired);
    w.groups.edit_admin(owner, news.id, admin, rights, Some("editor".into())).await.unwrap();
    let post = w.messages.send(send(admin, peer, 2, "news")).await.unwrap();
    assert!(new_message(&post.update).post, "a broadcast post is the channel's");
    // kicked: no reading, no rejoining by link
    w.groups.edit_banned(admin, 1, news.id, member, BannedRights { bits: BannedRights::VIEW_MESSAGES, until: 0 }).await.unwrap();
    assert_eq!(group_err(w.messages.history(member, peer, HistoryQuery { limit: 1, ..Default::default() }).await.unwrap_err()), GroupError::ChannelPrivate);
    let link = w.groups.export_invite(owner, news.id, None, None, false, None).await.unwrap();
    assert_eq!(group_err(w.groups.import_invite(member, 3, &link.hash).await.unwrap_err()), GroupError::UserBannedInChannel);
    assert_eq!(group_err(w.groups.edit_banned(admin, 1, news.id, owner, BannedRights { bits: 2, until: 0 }).await.unwrap_err()), GroupError::UserAdminInvalid);
    // a supergroup: restricted members may not write; slow mode
    let chat = w.groups.create_channel(owner, 1, "Chat", "", false).await.unwrap().group;
    w.groups.add_members(owner, 1, chat.id, &[member, stranger]).await.unwrap();
    let cpeer = Peer::Channel(chat.id);
    w.groups.edit_banned(owner, 1, chat.id, member, BannedRights { bits: BannedRights::SEND_MESSAGES, until: 0 }).await.unwrap();
    assert_eq!(group_err(w.messages.send(send(member, cpeer, 4, "hey")).await.unwrap_err()), GroupError::ChatWriteForbidden);
    assert!(w.messages.history(member, cpeer, HistoryQuery { limit: 1, ..Default::default() }).await.is_ok(), "restricted members still read");
    w.groups.toggle_slowmode(owner, chat.id, 30).await.unwrap();
    w.messages.send(send(stranger, cpeer, 5, "one")).await.unwrap();
    assert_eq!(group_err(w.messages.send(send(stranger, cpeer, 6, "two")).await.unwrap_err()), GroupError::SlowmodeWait(30));
    w.clock.advance(30);
    w.messages.send(send(stranger, cpeer, 7, "two")).await.unwrap();
    w.messages.send(send(owner, cpeer, 8, "admins are exempt")).await.unwrap();
    w.messages.send(send(owner, cpeer, 9, "admins are exempt")).await.unwrap();
    // deleting others' messages needs the right
    let mine = w.messages.send(send(owner, cpeer, 10, "mine")).await.unwrap();
    assert_eq!(
        group_err(w.messages.delete_channel_messages(stranger, 1, chat.id, &[new_message(&mine.update).id]).await.unwrap_err()),
        GroupError::MessageDeleteForbidden
    );
    // a deleted channel is gone for everyone
    w.groups.delete_channel(owner, chat.id).await.unwrap();
    assert_eq!(group_err(w.messages.history(stranger, cpeer, HistoryQuery { limit: 1, ..Default::default() }).await.unwrap_err()), GroupError::ChannelPrivate);
}

pub async fn invite_links_expire_run_out_and_may_need_approval(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 4, "invite").await;
    let (owner, a, b, c) = (u[0].id, u[1].id, u[2].id, u[3].id);
    let g = w.groups.create_channel(owner, 1, "Club", "", false).await.unwrap().group;
    let once = w.groups.export_invite(owner, g.id, None, Some(1), false, None).await.unwrap();
    assert!(matches!(w.groups.check_invite(a, &once.hash).await.unwrap(), crate::groups::InviteCheck::Invite { .. }));
    w.groups.import_invite(a, 2, &once.hash).await.unwrap();
    assert!(matches!(w.groups.check_invite(a, "nope").await.unwrap_err(), DomainError::Group(GroupError::InviteHashInvalid)));
    assert_eq!(group_err(w.groups.import_invite(b, 3, &once.hash).await.unwrap_err()), GroupError::InviteHashExpired);
    let timed = w.groups.export_invite(owner, g.id, Some(w.clock.now_secs() as i32 + 60), None, false, None).await.unwrap();
    w.clock.advance(61);
    assert_eq!(group_err(w.groups.import_invite(b, 3, &timed.hash).await.unwrap_err()), GroupError::InviteHashExpired);
    let ask = w.groups.export_invite(owner, g.id, None, None, true, None).await.unwrap();
    assert_eq!(group_err(w.groups.import_invite(b, 3, &ask.hash).await.unwrap_err()), GroupError::InviteRequestSent);
    assert_eq!(w.groups.join_requests(owner, g.id).await.unwrap().len(), 1);
    w.groups.decide_request(owner, 1, g.id, b, true).await.unwrap();
    assert!(w.messages.history(b, Peer::Channel(g.id), HistoryQuery { limit: 1, ..Default::default() }).await.is_ok());
    let revoked = w.groups.edit_invite(owner, g.id, &ask.hash, |i| i.revoked = true).await.unwrap();
    assert!(revoked.revoked);
    assert_eq!(group_err(w.groups.import_invite(c, 4, &ask.hash).await.unwrap_err()), GroupError::InviteHashExpired);
    assert_eq!(w.groups.invites(owner, g.id, None, false, 10).await.unwrap().len(), 2);
}

pub async fn a_migrated_group_keeps_its_history_and_moves_its_members(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 3, "migr").await;
    let g = w.groups.create_chat(u[0].id, 1, "Small", &[u[1].id, u[2].id]).await.unwrap().group;
    w.messages.send(send(u[1].id, Peer::Chat(g.id), 1, "before")).await.unwrap();
    let (old, new) = w.groups.migrate(u[0].id, 1, g.id).await.unwrap();
    assert_eq!(old.migrated_to, Some(new.id));
    assert_eq!((new.kind, new.migrated_from, new.participants_count), (GroupKind::Megagroup, Some(g.id), 3));
    assert_eq!(group_err(w.messages.send(send(u[1].id, Peer::Chat(g.id), 2, "after")).await.unwrap_err()), GroupError::ChatMigrated);
    let (hist, _) = w.messages.history(u[2].id, Peer::Chat(g.id), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert!(hist.iter().any(|m| m.text == "before"));
    let (hist, _) = w.messages.history(u[2].id, Peer::Channel(new.id), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert!(matches!(hist[0].action, Some(Action::ChannelMigrateFrom { .. })));
    w.messages.send(send(u[1].id, Peer::Channel(new.id), 3, "after")).await.unwrap();
}

/// Users and public channels share one username namespace, and the store enforces it on
/// its own (so two requests racing past the domain's checks cannot both take a name).
pub async fn users_and_channels_share_one_username_namespace(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 2, "names").await;
    let g = w.groups.create_channel(u[0].id, 1, "Public", "", true).await.unwrap().group;
    w.groups.update_username(u[0].id, g.id, "Shared_Name").await.unwrap();
    let occupied = matches!(w.accounts.update_username(u[1].id, "shared_name").await, Err(DomainError::Account(AccountError::UsernameOccupied)));
    assert!(occupied);
    assert!(matches!(w.stores.accounts.set_username(u[1].id, Some("SHARED_NAME")).await, Err(StoreError::Conflict(_))));
    w.accounts.update_username(u[1].id, "person_name").await.unwrap();
    let other = w.groups.create_channel(u[0].id, 1, "Other", "", true).await.unwrap().group;
    let mut taken = w.stores.groups.group(other.id).await.unwrap().unwrap();
    taken.username = Some("Person_Name".into());
    assert!(matches!(w.stores.groups.update_group(&taken).await, Err(StoreError::Conflict(_))));
    // A group keeps its own name through other edits.
    w.groups.edit_title(u[0].id, 1, g.id, "Renamed").await.unwrap();
}

/// The channels getDifference names: the member's, with a post dated `since` or later.
pub async fn channels_posted_since_lists_the_members_busy_channels(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 2, "busy").await;
    let (a, b) = (u[0].id, u[1].id);
    let quiet = w.groups.create_channel(a, 1, "Quiet", "", false).await.unwrap().group;
    let busy = w.groups.create_channel(a, 1, "Busy", "", false).await.unwrap().group;
    let gone = w.groups.create_channel(a, 1, "Left", "", false).await.unwrap().group;
    w.groups.add_members(a, 1, quiet.id, &[b]).await.unwrap();
    w.groups.add_members(a, 1, busy.id, &[b]).await.unwrap();
    w.groups.add_members(a, 1, gone.id, &[b]).await.unwrap();
    w.clock.advance(100);
    let since = w.clock.now_secs() as i32;
    w.messages.send(send(a, Peer::Channel(busy.id), 1, "news")).await.unwrap();
    w.messages.send(send(a, Peer::Channel(gone.id), 2, "news")).await.unwrap();
    w.groups.remove_member(b, 1, gone.id, b, false).await.unwrap();
    assert_eq!(w.messages.channels_posted_since(b, since, 10).await.unwrap(), vec![busy.id]);
    assert_eq!(w.messages.channels_posted_since(b, since, 0).await.unwrap(), vec![]);
    let mut all = w.messages.channels_posted_since(b, 0, 10).await.unwrap();
    all.sort();
    assert_eq!(all, vec![quiet.id, busy.id]);
}

/// Read receipts in a supergroup: a sender learns (updateReadChannelOutbox, and the
/// dialog's outbox mark) when someone else reads their messages, not when they read their
/// own; a broadcast channel's posts count as read.
pub async fn supergroup_senders_learn_when_others_read(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 3, "receipt").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    let g = w.groups.create_channel(a, 1, "Room", "", false).await.unwrap().group;
    w.groups.add_members(a, 1, g.id, &[b, c]).await.unwrap();
    let id = |sent: crate::messages::Sent| match sent.update.kind {
        UpdateKind::NewMessage(m) => m.id,
        other => panic!("{other:?}"),
    };
    let outbox = |user| {
        let w = &w;
        async move { w.messages.dialog(user, Peer::Channel(g.id)).await.unwrap().unwrap().read_outbox_max_id }
    };
    let a1 = id(w.messages.send(send(a, Peer::Channel(g.id), 1, "from a")).await.unwrap());
    let a2 = id(w.messages.send(send(a, Peer::Channel(g.id), 2, "again")).await.unwrap());
    assert!(outbox(a).await < a1, "the sender's own reading is no receipt");
    let mut a_rx = w.bus.subscribe(a);
    let mut b_rx = w.bus.subscribe(b);
    let receipts = |rx: &mut crate::bus::Subscription| {
        let mut v = vec![];
        while let Ok(e) = rx.rx.try_recv() {
            if let Event::ReadChannelOutbox { channel, max_id, .. } = *e {
                v.push((channel, max_id));
            }
        }
        v
    };

    // c reads the first: a hears of it.
    w.messages.read_channel(c, g.id, a1).await.unwrap();
    assert_eq!(receipts(&mut a_rx), vec![(g.id, a1)]);
    assert_eq!(outbox(a).await, a1);

    // b posts (which reads everything before it for b): a's messages are now read up to b's.
    let b1 = id(w.messages.send(send(b, Peer::Channel(g.id), 3, "from b")).await.unwrap());
    assert_eq!(receipts(&mut a_rx), vec![(g.id, b1)]);
    assert_eq!(outbox(a).await, b1);
    assert!(receipts(&mut b_rx).is_empty(), "nobody else has read b's post");
    assert_eq!(outbox(b).await, a2, "b's outbox: how far anyone else read");

    // c reads everything: b hears of it; a's mark was already past a2.
    w.messages.read_channel(c, g.id, 0).await.unwrap();
    assert_eq!(receipts(&mut b_rx), vec![(g.id, b1)]);
    assert!(receipts(&mut a_rx).is_empty());
    assert_eq!((outbox(a).await, outbox(b).await), (b1, b1));

    // A join (a service message by the joiner) reads nothing: no receipts.
    let d = users(&w, 1, "late").await[0].id;
    let b2 = id(w.messages.send(send(b, Peer::Channel(g.id), 5, "later")).await.unwrap());
    let _ = receipts(&mut a_rx);
    w.groups.add_members(a, 1, g.id, &[d]).await.unwrap();
    assert!(receipts(&mut b_rx).is_empty(), "b's post is unread by anyone else");
    assert_eq!(outbox(b).await, b1);
    w.messages.read_channel(d, g.id, b2).await.unwrap();
    assert_eq!(receipts(&mut b_rx), vec![(g.id, b2)]);

    // Typing: one notice per member and channel every 3 s; a cancel has its own allowance.
    let mut c_rx = w.bus.subscribe(c);
    w.bus.follow(c_rx.id, g.id);
    let typing = |rx: &mut crate::bus::Subscription| {
        let mut v = vec![];
        while let Ok(e) = rx.rx.try_recv() {
            if let Event::ChannelTyping { from, action, .. } = &*e {
                v.push((*from, action.clone()));
            }
        }
        v
    };
    w.messages.set_typing(a, Peer::Channel(g.id), TypingAction::Typing).await.unwrap();
    w.messages.set_typing(a, Peer::Channel(g.id), TypingAction::Typing).await.unwrap();
    w.messages.set_typing(a, Peer::Channel(g.id), TypingAction::Cancel).await.unwrap();
    assert_eq!(typing(&mut c_rx), vec![(a, TypingAction::Typing), (a, TypingAction::Cancel)]);
    w.clock.advance(3);
    w.messages.set_typing(a, Peer::Channel(g.id), TypingAction::Typing).await.unwrap();
    assert_eq!(typing(&mut c_rx), vec![(a, TypingAction::Typing)]);

    // A broadcast channel: posts count as read, no receipts.
    let news = w.groups.create_channel(a, 1, "News", "", true).await.unwrap().group;
    w.groups.add_members(a, 1, news.id, &[c]).await.unwrap();
    let p = id(w.messages.send(send(a, Peer::Channel(news.id), 4, "post")).await.unwrap());
    w.messages.read_channel(c, news.id, 0).await.unwrap();
    assert!(receipts(&mut a_rx).is_empty());
    assert_eq!(w.messages.dialog(a, Peer::Channel(news.id)).await.unwrap().unwrap().read_outbox_max_id, p);
}

pub async fn group_changes_and_counted_views_are_limited_per_account(stores: Stores) {
    use crate::limits::{Bucket, FloodTable};
    let w = world(stores);
    let u = users(&w, 3, "budget").await;
    let (owner, other, reader) = (u[0].id, u[1].id, u[2].id);
    let limits = FloodTable {
        group_creations: Bucket { burst: 2.0, per_sec: 0.1 },
        invite_links: Bucket { burst: 3.0, per_sec: 1.0 },
        counted_views: Bucket { burst: 1.0, per_sec: 0.01 },
        ..FloodTable::default()
    };
    let messages = Arc::new(MessageService::with_limits(w.stores.messages.clone(), w.stores.groups.clone(), w.bus.clone(), w.clock.clone(), &limits));
    let groups = GroupService::with_limits(w.stores.groups.clone(), w.stores.accounts.clone(), messages.clone(), w.bus.clone(), w.clock.clone(), &limits);

    // Creations: the burst, then FLOOD_WAIT for this account only, then one more after the wait.
    let news = groups.create_channel(owner, 1, "News", "", true).await.unwrap().group;
    groups.create_chat(owner, 1, "Chat", &[other]).await.unwrap();
    assert_eq!(group_err(groups.create_channel(owner, 1, "Third", "", false).await.unwrap_err()), GroupError::FloodWait(10));
    groups.create_channel(other, 2, "Theirs", "", false).await.unwrap();
    w.clock.advance(10);
    groups.create_chat(owner, 1, "Later", &[other]).await.unwrap();

    // Invite links: exports, edits and join requests share one budget.
    let link = groups.export_invite(owner, news.id, None, None, true, None).await.unwrap();
    groups.export_invite(owner, news.id, None, None, false, None).await.unwrap();
    groups.edit_invite(owner, news.id, &link.hash, |i| i.usage_limit = Some(5)).await.unwrap();
    assert_eq!(group_err(groups.export_invite(owner, news.id, None, None, false, None).await.unwrap_err()), GroupError::FloodWait(1));
    assert_eq!(group_err(groups.import_invite(reader, 3, &link.hash).await.unwrap_err()), GroupError::InviteRequestSent);
    w.clock.advance(1);
    groups.export_invite(owner, news.id, None, None, false, None).await.unwrap();

    // Counted views: the first post is counted, the second only read.
    groups.add_members(owner, 1, news.id, &[reader]).await.unwrap();
    let post =
        |n| SendRequest { from: owner, peer: Peer::Channel(news.id), origin_key: 1, random_id: n, text: format!("post {n}"), entities: vec![], reply_to: None };
    let id = |sent: crate::messages::Sent| match sent.update.kind {
        UpdateKind::NewMessage(m) => m.id,
        other => panic!("{other:?}"),
    };
    let a = id(messages.send(post(1)).await.unwrap());
    let b = id(messages.send(post(2)).await.unwrap());
    assert_eq!(messages.views(reader, news.id, &[a], true).await.unwrap(), vec![1]);
    assert_eq!(messages.views(reader, news.id, &[b], true).await.unwrap(), vec![0], "past the budget views are read, not counted");
}

fn srp_proof(info: &crate::password::PasswordInfo, x: &[u8; 256]) -> crate::password::Proof {
    let cur = info.current.as_ref().expect("a password is set");
    let mut a = [0u8; 256];
    a[128..].copy_from_slice(&[0x5a; 128]);
    let (big_a, m1) = herald_mtproto::srp::client_proof(x, &a, &cur.big_b.clone().try_into().unwrap(), &cur.salt1, &cur.salt2);
    crate::password::Proof { srp_id: cur.srp_id, a: big_a.to_vec(), m1: m1.to_vec() }
}

fn exponent(seed: u8) -> [u8; 256] {
    let mut x = [0u8; 256];
    x[224..].copy_from_slice(&[seed; 32]);
    x
}

fn new_password(seed: u8) -> crate::password::NewPassword {
    crate::password::NewPassword { salt1: vec![1; 40], salt2: vec![2; 16], verifier: herald_mtproto::srp::verifier(&exponent(seed)).to_vec() }
}

/// A password set with `updatePasswordSettings` parks the next login after its code until
/// `checkPassword` proves it: a wrong proof, a reused or expired exchange and a proof made
/// for an older password are refused; the right one binds the key. Changing and removing
/// the password need the current one.
pub async fn two_step_verification_guards_the_login(stores: Stores) {
    use crate::password::NewSettings;
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996614141", "Alice").await;
    let info = w.auth.password_info(alice.id).await.unwrap();
    assert!(info.current.is_none() && info.new_salt1.len() == 8);
    let set = NewSettings { password: Some(Some(new_password(7))), hint: Some("seven".into()), email: None };
    w.auth.update_password(&who(1), alice.id, None, set.clone()).await.unwrap();
    // Setting again needs the current password.
    assert_eq!(auth_err(w.auth.update_password(&who(1), alice.id, None, set.clone()).await.unwrap_err()), AuthError::PasswordHashInvalid);

    key(&w, 2).await;
    let sent = w.auth.send_code(&who(2), "9996614141").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_in(&who(2), "9996614141", &sent.hash, "11111").await.unwrap_err()), AuthError::SessionPasswordNeeded);
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, None, "not logged in before the password");
    assert_eq!(w.auth.password_user(&who(2), None).await.unwrap(), alice.id);
    assert_eq!(auth_err(w.auth.password_user(&who(3), None).await.unwrap_err()), AuthError::Unregistered);

    let info = w.auth.password_info(alice.id).await.unwrap();
    assert_eq!(info.hint, "seven");
    let wrong = srp_proof(&info, &exponent(8));
    assert_eq!(auth_err(w.auth.check_password(&who(2), &wrong).await.unwrap_err()), AuthError::PasswordHashInvalid);
    // The exchange is spent even by a wrong proof: the right proof for it now fails too.
    let right_but_spent = srp_proof(&info, &exponent(7));
    assert_eq!(auth_err(w.auth.check_password(&who(2), &right_but_spent).await.unwrap_err()), AuthError::SrpIdInvalid);
    // An exchange expires (checked where no parked login is involved: the logged-in key 1).
    let info = w.auth.password_info(alice.id).await.unwrap();
    w.clock.advance(crate::password::SRP_TTL_SECS + 1);
    let keep = NewSettings { hint: Some("still seven".into()), ..Default::default() };
    assert_eq!(auth_err(w.auth.update_password(&who(1), alice.id, Some(&srp_proof(&info, &exponent(7))), keep).await.unwrap_err()), AuthError::SrpIdInvalid);
    // A parked login does not wait for ever either: sign in again.
    w.clock.advance(crate::password::PENDING_LOGIN_TTL_SECS - crate::password::SRP_TTL_SECS);
    let info = w.auth.password_info(alice.id).await.unwrap();
    assert_eq!(auth_err(w.auth.check_password(&who(2), &srp_proof(&info, &exponent(7))).await.unwrap_err()), AuthError::SrpIdInvalid);
    let sent = w.auth.send_code(&who(2), "9996614141").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_in(&who(2), "9996614141", &sent.hash, "11111").await.unwrap_err()), AuthError::SessionPasswordNeeded);
    let info = w.auth.password_info(alice.id).await.unwrap();
    let proof = srp_proof(&info, &exponent(7));
    assert_eq!(w.auth.check_password(&who(2), &proof).await.unwrap(), alice);
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, Some(alice.id));
    // Replaying the accepted proof fails: the exchange was used.
    assert!(w.auth.check_password(&who(2), &proof).await.is_err());

    // A proof made before the password changed is refused as such.
    let stale = w.auth.password_info(alice.id).await.unwrap();
    let info = w.auth.password_info(alice.id).await.unwrap();
    let change = NewSettings { password: Some(Some(new_password(9))), hint: None, email: None };
    w.auth.update_password(&who(1), alice.id, Some(&srp_proof(&info, &exponent(7))), change).await.unwrap();
    assert_eq!(
        auth_err(w.auth.update_password(&who(1), alice.id, Some(&srp_proof(&stale, &exponent(7))), NewSettings::default()).await.unwrap_err()),
        AuthError::SrpPasswordChanged
    );
    // Bad new settings.
    let info = w.auth.password_info(alice.id).await.unwrap();
    let mut bad = new_password(3);
    bad.verifier = vec![1];
    let bad = NewSettings { password: Some(Some(bad)), ..Default::default() };
    assert_eq!(
        auth_err(w.auth.update_password(&who(1), alice.id, Some(&srp_proof(&info, &exponent(9))), bad).await.unwrap_err()),
        AuthError::NewSettingsInvalid
    );
    // Removing it.
    let info = w.auth.password_info(alice.id).await.unwrap();
    let remove = NewSettings { password: Some(None), ..Default::default() };
    w.auth.update_password(&who(1), alice.id, Some(&srp_proof(&info, &exponent(9))), remove).await.unwrap();
    assert!(w.auth.password_info(alice.id).await.unwrap().current.is_none());
    key(&w, 3).await;
    let sent = w.auth.send_code(&who(3), "9996614141").await.unwrap();
    assert_eq!(w.auth.sign_in(&who(3), "9996614141", &sent.hash, "11111").await.unwrap(), SignIn::Authorized(alice));
}

/// A recovery email waits for its code; a recovery code sent to the confirmed email ends
/// a forgotten password and completes the parked login.
pub async fn password_email_confirmation_and_recovery(stores: Stores) {
    use crate::password::NewSettings;
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996615151", "Alice").await;
    let no_recovery = w.auth.request_recovery(alice.id).await.unwrap_err();
    assert_eq!(auth_err(no_recovery), AuthError::PasswordEmpty);
    let set = NewSettings { password: Some(Some(new_password(7))), hint: None, email: Some("alice@example.com".into()) };
    assert_eq!(auth_err(w.auth.update_password(&who(1), alice.id, None, set).await.unwrap_err()), AuthError::EmailUnconfirmed(6));
    let info = w.auth.password_info(alice.id).await.unwrap();
    assert!(info.current.is_some() && !info.has_recovery);
    assert_eq!(info.email_unconfirmed_pattern.as_deref(), Some("a***@e***.com"));
    assert_eq!(auth_err(w.auth.request_recovery(alice.id).await.unwrap_err()), AuthError::PasswordRecoveryNa);
    assert_eq!(auth_err(w.auth.confirm_email(&who(1), alice.id, "000000x").await.unwrap_err()), AuthError::CodeInvalid);
    let code = w.stores.passwords.password(alice.id).await.unwrap().unwrap().code.unwrap().code;
    w.auth.confirm_email(&who(1), alice.id, &code).await.unwrap();
    let info = w.auth.password_info(alice.id).await.unwrap();
    assert!(info.has_recovery && info.email_unconfirmed_pattern.is_none());
    assert_eq!(w.auth.password_settings(&who(1), alice.id, Some(&srp_proof(&info, &exponent(7)))).await.unwrap().as_deref(), Some("alice@example.com"));

    // Forgotten: log in on key 2, then recover by email.
    key(&w, 2).await;
    let sent = w.auth.send_code(&who(2), "9996615151").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_in(&who(2), "9996615151", &sent.hash, "11111").await.unwrap_err()), AuthError::SessionPasswordNeeded);
    assert_eq!(w.auth.request_recovery(alice.id).await.unwrap(), "a***@e***.com");
    let code = w.stores.passwords.password(alice.id).await.unwrap().unwrap().code.unwrap().code;
    // Asking again re-sends the live code: no fresh guesses.
    w.auth.request_recovery(alice.id).await.unwrap();
    assert_eq!(w.stores.passwords.password(alice.id).await.unwrap().unwrap().code.unwrap().code, code);
    assert_eq!(auth_err(w.auth.recover(&who(2), alice.id, "1", None).await.unwrap_err()), AuthError::CodeInvalid);
    w.auth.check_recovery_code(&who(2), alice.id, &code).await.unwrap();
    assert_eq!(w.auth.recover(&who(2), alice.id, &code, None).await.unwrap(), alice);
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, Some(alice.id));
    assert!(w.auth.password_info(alice.id).await.unwrap().current.is_none());
    // Codes wear out after their tries.
    let set = NewSettings { password: Some(Some(new_password(7))), hint: None, email: Some("alice@example.com".into()) };
    let _ = w.auth.update_password(&who(1), alice.id, None, set).await;
    let code = w.stores.passwords.password(alice.id).await.unwrap().unwrap().code.unwrap().code;
    for _ in 0..crate::password::EMAIL_CODE_MAX_ATTEMPTS {
        let _ = w.auth.confirm_email(&who(1), alice.id, "bad").await;
    }
    assert_eq!(auth_err(w.auth.confirm_email(&who(1), alice.id, &code).await.unwrap_err()), AuthError::EmailHashExpired);
    // Code emails are limited per account (five so far: set, recovery twice, set again, and
    // this resend).
    w.auth.resend_email(alice.id).await.unwrap();
    assert!(matches!(auth_err(w.auth.resend_email(alice.id).await.unwrap_err()), AuthError::FloodWait(_)));
}

/// Importing by phone finds accounts (numbers without one are skipped), entries keep their
/// names, `has_viewer` makes a pair mutual, and deleting removes only the owner's entry.
pub async fn address_books_import_relate_and_delete(stores: Stores) {
    use crate::contacts::PhoneContact;
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996616161", "Alice").await;
    let bob = sign_up(&w, 2, "9996616162", "Bob").await;
    let pc = |id: i64, phone: &str, first: &str| PhoneContact { client_id: id, phone: phone.into(), first_name: first.into(), last_name: String::new() };
    let done = w.accounts.import_contacts(alice.id, vec![pc(1, "+999 661 6162", "Bobby"), pc(2, "9996616169", "Nobody"), pc(3, "bad", "x")]).await.unwrap();
    assert_eq!(done.imported, vec![(bob.id, 1)]);
    assert!(done.retry.is_empty());
    let book = w.accounts.contacts(alice.id).await.unwrap();
    assert_eq!(book.len(), 1);
    let c = book[0].contact.as_ref().unwrap();
    assert_eq!((c.first_name.as_str(), c.phone.as_str(), book[0].has_viewer), ("Bobby", "9996616162", false));
    // Bob sees Alice as someone who has him, not as his contact.
    let seen = w.accounts.users_seen_by(bob.id, &[alice.id]).await.unwrap();
    assert!(seen[0].contact.is_none() && seen[0].has_viewer);
    // Bob adds her back: mutual both ways.
    w.accounts.add_contact(bob.id, &alice, "Al", "", "").await.unwrap();
    assert!(w.accounts.contacts(alice.id).await.unwrap()[0].has_viewer);
    assert_eq!(w.accounts.contacts(bob.id).await.unwrap()[0].contact.as_ref().unwrap().phone, "", "added by id, no number known");
    assert!(matches!(w.accounts.add_contact(bob.id, &bob, "Me", "", "").await.unwrap_err(), DomainError::Account(AccountError::ContactIdInvalid)));
    // A number given with addContact is not kept against the target's AddedByPhone setting,
    // and deleteByPhones matches only numbers the owner knows.
    let carol0 = sign_up(&w, 4, "9996616164", "Carol").await;
    w.accounts.set_privacy(carol0.id, crate::privacy::PrivacyKey::AddedByPhone, vec![crate::privacy::Rule::AllowContacts]).await.unwrap();
    let carol0 = w.stores.accounts.user_by_id(carol0.id).await.unwrap().unwrap();
    w.accounts.add_contact(bob.id, &carol0, "C", "", "9996616164").await.unwrap();
    assert_eq!(w.accounts.contacts(bob.id).await.unwrap().iter().find(|s| s.user.id == carol0.id).unwrap().contact.as_ref().unwrap().phone, "");
    assert!(w.accounts.delete_by_phones(bob.id, &["9996616164".into()]).await.unwrap().is_empty());
    assert!(matches!(w.accounts.add_contact(bob.id, &alice, " ", "", "").await.unwrap_err(), DomainError::Account(AccountError::ContactNameEmpty)));
    // Search: contacts by a word of their names, others by username prefix.
    w.accounts.update_username(bob.id, "bobthebuilder").await.unwrap();
    let carol = sign_up(&w, 3, "9996616163", "Carol").await;
    let found = w.accounts.search(carol.id, "@BobThe", 10).await.unwrap();
    assert_eq!((found.mine, found.others), (vec![], vec![bob.id]));
    let found = w.accounts.search(alice.id, "bob", 10).await.unwrap();
    assert_eq!((found.mine, found.others), (vec![bob.id], vec![]));
    assert!(w.accounts.search(alice.id, "@", 10).await.is_err());
    // Deleting.
    assert_eq!(w.accounts.delete_by_phones(alice.id, &["+9996616162".into()]).await.unwrap(), vec![bob.id]);
    assert!(w.accounts.contacts(alice.id).await.unwrap().is_empty());
    assert!(!w.accounts.contacts(bob.id).await.unwrap()[0].has_viewer);
    assert_eq!(w.accounts.delete_contacts(bob.id, &[alice.id, carol.id]).await.unwrap(), vec![alice.id]);
    assert_eq!(w.accounts.resolve_phone(carol.id, "9996616162").await.unwrap().id, bob.id);
    assert!(matches!(w.accounts.resolve_phone(carol.id, "9996616199").await.unwrap_err(), DomainError::Account(AccountError::PhoneNotOccupied)));
}

/// Phone lookups are budgeted per account: past the burst an import hands the rest back as
/// `retry`, and `resolvePhone` answers FLOOD_WAIT; the budget refills with time.
pub async fn phone_lookups_are_budgeted(stores: Stores) {
    use crate::contacts::PhoneContact;
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996617171", "Alice").await;
    let burst = crate::limits::FloodTable::default().phone_lookups.burst as i64;
    let list: Vec<PhoneContact> =
        (0..burst + 3).map(|i| PhoneContact { client_id: i, phone: format!("1555{i:07}"), first_name: "N".into(), last_name: String::new() }).collect();
    let done = w.accounts.import_contacts(alice.id, list).await.unwrap();
    assert!(done.imported.is_empty());
    assert_eq!(done.retry, vec![burst, burst + 1, burst + 2]);
    assert!(matches!(w.accounts.resolve_phone(alice.id, "9996617171").await.unwrap_err(), DomainError::Account(AccountError::FloodWait(_))));
    w.clock.advance(3600);
    assert_eq!(w.accounts.resolve_phone(alice.id, "9996617171").await.unwrap().id, alice.id);
}

/// Full-text search finds messages by word prefixes in the searcher's boxes only; edits and
/// one-sided deletes keep the index true; global search covers the searcher's channels and
/// pages by (date, peer, id).
pub async fn messages_are_found_by_words(stores: Stores) {
    use crate::search::{Search, SearchFilter};
    let w = world(stores);
    let u = users(&w, 3, "find").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    let q = |text: &str| Search {
        q: text.into(),
        from: None,
        filter: SearchFilter::Everything,
        min_date: 0,
        max_date: 0,
        offset_id: 0,
        add_offset: 0,
        limit: 50,
        max_id: 0,
        min_id: 0,
    };
    let texts = |r: (Vec<Message>, i32)| (r.0.into_iter().map(|m| m.text).collect::<Vec<_>>(), r.1);
    let first = w.messages.send(send(a, Peer::User(b), 1, "Déjà vu at the Rendezvous")).await.unwrap();
    w.clock.advance(1);
    w.messages.send(send(b, Peer::User(a), 2, "rendez-vous confirmed")).await.unwrap();
    w.messages.send(send(c, Peer::User(b), 3, "rendezvous with c")).await.unwrap();
    w.clock.advance(1);
    // Prefixes, case and accents ignored; only a's own box.
    assert_eq!(
        texts(w.messages.search(a, Some(Peer::User(b)), q("rendez")).await.unwrap()),
        (vec!["rendez-vous confirmed".into(), "Déjà vu at the Rendezvous".into()], 2)
    );
    assert_eq!(texts(w.messages.search(a, None, q("DEJA")).await.unwrap()).1, 1);
    assert_eq!(texts(w.messages.search(a, None, q("vu rendezvous")).await.unwrap()).1, 1, "every word must match");
    assert_eq!(texts(w.messages.search(a, None, q("with")).await.unwrap()).1, 0, "c's message is not a's");
    assert_eq!(texts(w.messages.search(b, None, q("rendezvous")).await.unwrap()).1, 2);
    assert_eq!(texts(w.messages.search(a, None, q("?!")).await.unwrap()).1, 0);
    let mut from_b = q("");
    from_b.from = Some(b);
    assert_eq!(texts(w.messages.search(a, Some(Peer::User(b)), from_b).await.unwrap()).0, vec!["rendez-vous confirmed".to_string()]);
    // An edit changes what is found, on both sides.
    let first_id = match &first.update.kind {
        UpdateKind::NewMessage(m) => m.id,
        _ => unreachable!(),
    };
    w.messages.edit(a, 1, Peer::User(b), first_id, "Meeting at noon".into(), vec![]).await.unwrap();
    assert_eq!(texts(w.messages.search(b, None, q("deja")).await.unwrap()).1, 0);
    assert_eq!(texts(w.messages.search(b, None, q("noon")).await.unwrap()).1, 1);
    // Deleting for oneself removes it from one's own results only.
    w.messages.delete(a, 1, &[first_id], false).await.unwrap();
    assert_eq!(texts(w.messages.search(a, None, q("noon")).await.unwrap()).1, 0);
    assert_eq!(texts(w.messages.search(b, None, q("noon")).await.unwrap()).1, 1);
    // Global: channel posts of the searcher's channels, newest first, paged.
    let news = w.groups.create_channel(c, 1, "News", "", true).await.unwrap().group;
    w.groups.add_members(c, 1, news.id, &[a]).await.unwrap();
    for i in 0..3 {
        w.clock.advance(1);
        w.messages.send(send(c, Peer::Channel(news.id), 10 + i, &format!("bulletin number {i}"))).await.unwrap();
    }
    let (all, count) = w.messages.search_global(a, q("bulletin"), None).await.unwrap();
    assert_eq!((all.len(), count), (3, 3));
    assert_eq!(all[0].text, "bulletin number 2");
    let mut page = q("bulletin");
    page.limit = 2;
    let (p1, _) = w.messages.search_global(a, page.clone(), None).await.unwrap();
    let last = p1.last().unwrap();
    let (p2, _) = w.messages.search_global(a, page, Some((last.date, last.peer, last.id))).await.unwrap();
    assert_eq!(p1.iter().chain(&p2).map(|m| m.text.as_str()).collect::<Vec<_>>(), ["bulletin number 2", "bulletin number 1", "bulletin number 0"]);
    assert_eq!(w.messages.search_global(b, q("bulletin"), None).await.unwrap().1, 0, "b is not in the channel");
    assert_eq!(w.messages.search(a, Some(Peer::Channel(news.id)), q("number 1")).await.unwrap().1, 1);
}

/// Forwards are new messages with the first origin in their header, one per random id (a
/// retry duplicates nothing), into private chats, Saved Messages and channels.
pub async fn forwards_carry_their_origin(stores: Stores) {
    use crate::forward::ForwardRequest;
    let w = world(stores);
    let u = users(&w, 3, "fwd").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    let sent = w.messages.send(send(a, Peer::User(b), 1, "original")).await.unwrap();
    let a_id = new_message(&sent.update).id;
    let theirs = w.messages.history(b, Peer::User(a), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0[0].id;
    w.clock.advance(5);
    fn fwd<'a>(from: UserId, from_peer: Peer, ids: &'a [i32], random_ids: &'a [i64], to: Peer) -> ForwardRequest<'a> {
        ForwardRequest { from, origin_key: 1, from_peer, ids, random_ids, to, drop_author: false }
    }
    // b forwards a's message to c: the header names a and the original date.
    let ids = [theirs, 999];
    let out = w.messages.forward(fwd(b, Peer::User(a), &ids, &[10, 11], Peer::User(c))).await.unwrap();
    assert_eq!(out.len(), 1, "a missing id is skipped");
    assert_eq!(out[0].0, 10);
    let m = new_message(&out[0].1.update).clone();
    let f = m.fwd.clone().unwrap();
    assert_eq!((m.text.as_str(), m.from, f.from, f.date, f.saved_from), ("original", b, Peer::User(a), new_message(&sent.update).date, None));
    // c's copy has it too; forwarding it on keeps a as the origin.
    let cs = w.messages.history(c, Peer::User(b), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0[0].clone();
    assert_eq!(cs.fwd.as_ref().unwrap().from, Peer::User(a));
    let on = w.messages.forward(fwd(c, Peer::User(b), &[cs.id], &[20], Peer::User(c))).await.unwrap();
    let saved = new_message(&on[0].1.update);
    assert_eq!(saved.fwd.as_ref().unwrap().from, Peer::User(a));
    assert_eq!(saved.fwd.as_ref().unwrap().saved_from, Some((Peer::User(b), cs.id)), "Saved Messages remember the source");
    // A retry with the same random id creates nothing new.
    let again = w.messages.forward(fwd(b, Peer::User(a), &ids, &[10, 11], Peer::User(c))).await.unwrap();
    assert!(again[0].1.duplicate);
    // Errors.
    assert!(matches!(
        w.messages.forward(fwd(b, Peer::User(a), &ids, &[10], Peer::User(c))).await.unwrap_err(),
        DomainError::Message(MessageError::RandomIdInvalid)
    ));
    assert!(matches!(
        w.messages.forward(fwd(b, Peer::User(a), &[12345], &[30], Peer::User(c))).await.unwrap_err(),
        DomainError::Message(MessageError::MessageIdInvalid)
    ));
    // a's forwards privacy hides a behind a name in new forwards (the origin is kept inside).
    w.accounts.set_privacy(a, crate::privacy::PrivacyKey::Forwards, vec![crate::privacy::Rule::DisallowAll]).await.unwrap();
    let hidden = w.messages.forward(fwd(b, Peer::User(a), &[theirs], &[40], Peer::User(c))).await.unwrap();
    let f = new_message(&hidden[0].1.update).fwd.clone().unwrap();
    assert_eq!((f.hidden_name.as_deref(), f.from), (Some("fwd0"), Peer::User(a)));
    // A message of a's own box cannot be forwarded by naming it in another chat.
    assert!(w.messages.forward(fwd(a, Peer::User(c), &[a_id], &[31], Peer::User(b))).await.is_err());
}

/// One reaction per user and message, shared by both copies of a private message, pushed to
/// both sides with each side's own message id and dialog.
pub async fn reactions_are_shared_and_pushed(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 2, "react").await;
    let (a, b) = (u[0].id, u[1].id);
    let sent = w.messages.send(send(a, Peer::User(b), 1, "react to me")).await.unwrap();
    let a_id = new_message(&sent.update).id;
    let b_id = w.messages.history(b, Peer::User(a), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0[0].id;
    let mut a_rx = w.bus.subscribe(a);
    let mut b_rx = w.bus.subscribe(b);
    let r = w.messages.react(b, Peer::User(a), b_id, Some("👍".into())).await.unwrap();
    assert_eq!(r.counts, vec![("👍".to_string(), 1)]);
    assert_eq!(r.recent.iter().map(|(u, e, _)| (*u, e.as_str())).collect::<Vec<_>>(), vec![(b.0, "👍")]);
    for (rx, user, peer, id) in [(&mut a_rx, a, Peer::User(b), a_id), (&mut b_rx, b, Peer::User(a), b_id)] {
        match &*rx.rx.try_recv().unwrap() {
            Event::Reactions { user: u, peer: p, msg_id, reactions } => assert_eq!((*u, *p, *msg_id, reactions), (user, peer, id, &r)),
            other => panic!("{other:?}"),
        }
    }
    // Both copies carry it when read.
    let mine = w.messages.history(a, Peer::User(b), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0[0].clone();
    assert_eq!(mine.reactions.as_deref(), Some(&r));
    // The same again changes nothing and tells nobody.
    w.messages.react(b, Peer::User(a), b_id, Some("👍".into())).await.unwrap();
    assert!(a_rx.rx.try_recv().is_err());
    // Another emoji replaces it; a second reactor adds to the count; removing takes one off.
    w.messages.react(b, Peer::User(a), b_id, Some("❤".into())).await.unwrap();
    let r = w.messages.react(a, Peer::User(b), a_id, Some("❤".into())).await.unwrap();
    assert_eq!(r.counts, vec![("❤".to_string(), 2)]);
    let r = w.messages.react(b, Peer::User(a), b_id, None).await.unwrap();
    assert_eq!((r.counts, r.recent.len()), (vec![("❤".to_string(), 1)], 1));
    assert_eq!(w.messages.reactions_of(a, Peer::User(b), &[a_id]).await.unwrap()[0].1.counts, vec![("❤".to_string(), 1)]);
    // Errors: not an emoji, no such message, a message of another chat.
    assert!(matches!(w.messages.react(a, Peer::User(b), a_id, Some("ok".into())).await.unwrap_err(), DomainError::Message(MessageError::ReactionInvalid)));
    assert!(matches!(w.messages.react(a, Peer::User(b), 999, Some("👍".into())).await.unwrap_err(), DomainError::Message(MessageError::MessageIdInvalid)));
    assert!(matches!(w.messages.react(a, Peer::User(a), a_id, Some("👍".into())).await.unwrap_err(), DomainError::Message(MessageError::MessageIdInvalid)));
}

/// Drafts sync to the other sessions; pins go first (at most five in the main list); the
/// archive takes dialogs out of the main list and their pins with them.
pub async fn dialog_drafts_pins_and_archive(stores: Stores) {
    use crate::dialogs::PINNED_MAX;
    let w = world(stores);
    let u = users(&w, 8, "dlg").await;
    let me = u[0].id;
    for (i, other) in u[1..].iter().enumerate() {
        w.clock.advance(1);
        w.messages.send(send(other.id, Peer::User(me), 100 + i as i64, "hello")).await.unwrap();
    }
    let main = |limit| DialogsQuery { folder: Some(0), offset_date: 0, offset_id: 0, limit, exclude_pinned: false };
    let peers = |d: &[Dialog]| d.iter().map(|d| d.peer).collect::<Vec<_>>();
    let newest_first: Vec<Peer> = u[1..].iter().rev().map(|x| Peer::User(x.id)).collect();
    assert_eq!(peers(&w.messages.dialogs(me, main(20)).await.unwrap().0), newest_first);

    // Drafts.
    let mut rx = w.bus.subscribe(me);
    let draft = Draft { text: "unsent".into(), entities: vec![], reply_to: None, date: 5 };
    w.messages.save_draft(me, 7, Peer::User(u[1].id), Some(draft.clone())).await.unwrap();
    assert!(matches!(&*rx.rx.try_recv().unwrap(), Event::Draft { peer, draft: Some(d), origin: 7, .. } if *peer == Peer::User(u[1].id) && d.text == "unsent"));
    w.messages.save_draft(me, 7, Peer::User(u[1].id), Some(draft.clone())).await.unwrap();
    assert!(rx.rx.try_recv().is_err(), "the same draft again changes nothing");
    assert_eq!(w.messages.dialog(me, Peer::User(u[1].id)).await.unwrap().unwrap().draft.unwrap().text, "unsent");
    assert_eq!(w.messages.drafts(me).await.unwrap().len(), 1);
    // A send's clear_draft where there is none changes nothing; where there is one, clears it.
    w.messages.clear_draft_after_send(me, 7, Peer::User(u[2].id)).await.unwrap();
    assert!(rx.rx.try_recv().is_err(), "no draft to clear: nothing changes");
    w.messages.clear_draft_after_send(me, 7, Peer::User(u[1].id)).await.unwrap();
    assert!(matches!(&*rx.rx.try_recv().unwrap(), Event::Draft { draft: None, .. }));
    w.messages.save_draft(me, 7, Peer::User(u[1].id), Some(draft.clone())).await.unwrap();
    assert!(rx.rx.try_recv().is_ok());
    w.messages.clear_drafts(me, 7).await.unwrap();
    assert!(matches!(&*rx.rx.try_recv().unwrap(), Event::Draft { draft: None, .. }));
    assert!(w.messages.drafts(me).await.unwrap().is_empty());

    // Pins: newest pin on top, first page only, at most PINNED_MAX.
    for x in &u[1..=PINNED_MAX] {
        w.messages.pin_dialog(me, 7, Peer::User(x.id), true).await.unwrap();
    }
    assert!(matches!(w.messages.pin_dialog(me, 7, Peer::User(u[7].id), true).await.unwrap_err(), DomainError::Message(MessageError::PinnedDialogsTooMuch)));
    let (first, _, count) = w.messages.dialogs(me, main(20)).await.unwrap();
    assert_eq!(count, 7);
    let pinned: Vec<Peer> = u[1..=PINNED_MAX].iter().rev().map(|x| Peer::User(x.id)).collect();
    assert_eq!(peers(&first[..PINNED_MAX]), pinned);
    assert!(first[..PINNED_MAX].iter().all(|d| d.pinned));
    assert_eq!(peers(&first[PINNED_MAX..]), vec![Peer::User(u[7].id), Peer::User(u[6].id)]);
    w.messages.reorder_pinned(me, 7, 0, &[Peer::User(u[1].id)], false).await.unwrap();
    assert_eq!(w.messages.pinned_peers(me, 0).await.unwrap()[0], Peer::User(u[1].id));
    w.messages.reorder_pinned(me, 7, 0, &[Peer::User(u[1].id)], true).await.unwrap();
    assert_eq!(w.messages.pinned_peers(me, 0).await.unwrap(), vec![Peer::User(u[1].id)]);

    // Archive: out of the main list, into folder 1, without its pin.
    let moved = w.messages.set_folders(me, 7, &[(Peer::User(u[1].id), ARCHIVE_FOLDER), (Peer::User(u[2].id), ARCHIVE_FOLDER)]).await.unwrap();
    assert_eq!(moved.len(), 2);
    let (main_list, _, count) = w.messages.dialogs(me, main(20)).await.unwrap();
    assert_eq!(count, 5);
    assert!(!peers(&main_list).contains(&Peer::User(u[1].id)));
    let archived = w.messages.dialogs(me, DialogsQuery { folder: Some(ARCHIVE_FOLDER), ..main(20) }).await.unwrap().0;
    // Without a folder: every dialog, archived ones included.
    assert_eq!(w.messages.dialogs(me, DialogsQuery { folder: None, ..main(20) }).await.unwrap().2, 7);
    assert_eq!(peers(&archived), vec![Peer::User(u[2].id), Peer::User(u[1].id)]);
    assert!(archived.iter().all(|d| d.folder == ARCHIVE_FOLDER && !d.pinned));
    assert!(w.messages.set_folders(me, 7, &[(Peer::User(u[1].id), ARCHIVE_FOLDER)]).await.unwrap().is_empty());
    assert!(matches!(w.messages.set_folders(me, 7, &[(Peer::User(u[1].id), 5)]).await.unwrap_err(), DomainError::Message(MessageError::FolderIdInvalid)));
}

/// Online for five minutes per report, offline with a last-seen time that the store keeps;
/// those who have the account as a contact hear of changes, not of repeats.
pub async fn online_status_is_reported_to_contacts(stores: Stores) {
    use crate::presence::{Status, ONLINE_FOR_SECS};
    let w = world(stores);
    let u = users(&w, 3, "status").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    let user = |id: UserId| {
        let store = w.stores.accounts.clone();
        async move { store.user_by_id(id).await.unwrap().unwrap() }
    };
    assert_eq!(w.accounts.status(&user(a).await), Status::Unknown);
    w.accounts.add_contact(b, &user(a).await, "A", "", "").await.unwrap();
    let mut b_rx = w.bus.subscribe(b);
    let mut c_rx = w.bus.subscribe(c);
    let now = w.clock.now_secs();
    w.accounts.update_status(a, false, w.bus.as_ref()).await.unwrap();
    assert_eq!(w.accounts.status(&user(a).await), Status::Online { expires: now + ONLINE_FOR_SECS });
    assert!(matches!(&*b_rx.rx.try_recv().unwrap(), Event::UserStatus { of, status: Status::Online { .. }, .. } if *of == a));
    assert!(c_rx.rx.try_recv().is_err(), "c does not have a as a contact");
    w.accounts.update_status(a, false, w.bus.as_ref()).await.unwrap();
    assert!(b_rx.rx.try_recv().is_err(), "still online: nothing to tell");
    w.clock.advance(10);
    w.accounts.update_status(a, true, w.bus.as_ref()).await.unwrap();
    assert!(matches!(&*b_rx.rx.try_recv().unwrap(), Event::UserStatus { status: Status::Offline { was_online }, .. } if *was_online == now + 10));
    assert_eq!(user(a).await.last_seen, now + 10, "last seen is stored");
    // A report runs out by itself.
    w.accounts.update_status(a, false, w.bus.as_ref()).await.unwrap();
    w.clock.advance(ONLINE_FOR_SECS + 5);
    assert_eq!(w.accounts.status(&user(a).await), Status::Offline { was_online: now + 10 + ONLINE_FOR_SECS });
}

/// A QR login token is shown by a key that is not logged in, accepted once by a logged-in
/// session within its lifetime, and collected by the same key.
pub async fn login_tokens_are_accepted_once_in_time(stores: Stores) {
    use crate::qr::{Exported, LOGIN_TOKEN_TTL_SECS};
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996618181", "Alice").await;
    key(&w, 2).await;
    let Exported::Token { token, .. } = w.auth.export_login_token(&who(2)).await.unwrap() else { panic!("a token") };
    // Not yet accepted: exporting again gives a new token (the old one dies).
    let Exported::Token { token: second, .. } = w.auth.export_login_token(&who(2)).await.unwrap() else { panic!("a token") };
    assert_ne!(token, second);
    assert_eq!(auth_err(w.auth.accept_login_token(alice.id, &token).unwrap_err()), AuthError::AuthTokenInvalid);
    assert_eq!(w.auth.accept_login_token(alice.id, &second).unwrap(), 2);
    assert_eq!(auth_err(w.auth.accept_login_token(alice.id, &second).unwrap_err()), AuthError::AuthTokenAlreadyAccepted);
    match w.auth.export_login_token(&who(2)).await.unwrap() {
        Exported::LoggedIn(u) => assert_eq!(u.id, alice.id),
        Exported::Token { .. } => panic!("accepted: logged in"),
    }
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, Some(alice.id));
    // Expired tokens cannot be accepted.
    key(&w, 3).await;
    let Exported::Token { token, .. } = w.auth.export_login_token(&who(3)).await.unwrap() else { panic!("a token") };
    w.clock.advance(LOGIN_TOKEN_TTL_SECS);
    assert_eq!(auth_err(w.auth.accept_login_token(alice.id, &token).unwrap_err()), AuthError::AuthTokenExpired);
}

/// A conversation's period stamps what is sent afterwards; due copies go on every side, with
/// the deletion told to both; earlier messages and the service message stay.
pub async fn self_deleting_messages_go_on_time(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 3, "ttl").await;
    let (a, b, c) = (u[0].id, u[1].id, u[2].id);
    w.messages.send(send(a, Peer::User(b), 1, "before")).await.unwrap();
    let set = w.messages.set_history_ttl(b, 1, Peer::User(a), 5).await.unwrap();
    assert!(matches!(new_message(&set.update).action, Some(Action::SetMessagesTtl { period: 5 })));
    assert_eq!(w.messages.dialog(a, Peer::User(b)).await.unwrap().unwrap().ttl_period, 5, "both sides");
    let sent = w.messages.send(send(a, Peer::User(b), 2, "vanishing")).await.unwrap();
    assert_eq!(new_message(&sent.update).ttl_period, Some(5));
    let mut a_rx = w.bus.subscribe(a);
    let mut b_rx = w.bus.subscribe(b);
    w.clock.advance(4);
    assert_eq!(w.messages.expire_due().await.unwrap(), 0);
    w.clock.advance(1);
    assert_eq!(w.messages.expire_due().await.unwrap(), 2, "one copy per side");
    for rx in [&mut a_rx, &mut b_rx] {
        let ev = rx.rx.try_recv().unwrap();
        assert!(matches!(&*ev, Event::Updates { updates, .. } if matches!(updates[0].kind, UpdateKind::DeleteMessages(_))));
    }
    let left: Vec<String> =
        w.messages.history(a, Peer::User(b), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().0.into_iter().map(|m| m.text).collect();
    assert_eq!(left, vec![String::new(), "before".to_string()], "the service message and the earlier one stay");
    // Off again; out-of-range periods are refused; in groups only admins may set it.
    w.messages.set_history_ttl(a, 1, Peer::User(b), 0).await.unwrap();
    w.messages.set_blocked(b, a, true).await.unwrap();
    assert!(matches!(w.messages.set_history_ttl(a, 1, Peer::User(b), 9).await.unwrap_err(), DomainError::Message(MessageError::UserIsBlocked)));
    w.messages.set_blocked(b, a, false).await.unwrap();
    assert_eq!(new_message(&w.messages.send(send(a, Peer::User(b), 3, "stays")).await.unwrap().update).ttl_period, None);
    assert!(matches!(w.messages.set_history_ttl(a, 1, Peer::User(b), -1).await.unwrap_err(), DomainError::Message(MessageError::TtlPeriodInvalid)));
    let g = w.groups.create_channel(a, 1, "Room", "", false).await.unwrap().group;
    w.groups.add_members(a, 1, g.id, &[c]).await.unwrap();
    assert!(matches!(w.messages.set_history_ttl(c, 1, Peer::Channel(g.id), 60).await.unwrap_err(), DomainError::Group(GroupError::ChatAdminRequired)));
    w.messages.set_history_ttl(a, 1, Peer::Channel(g.id), 60).await.unwrap();
    let post = w.messages.send(send(c, Peer::Channel(g.id), 4, "in the room")).await.unwrap();
    assert_eq!(new_message(&post.update).ttl_period, Some(60));
    assert_eq!(w.messages.dialog(c, Peer::Channel(g.id)).await.unwrap().unwrap().ttl_period, 60);
    w.clock.advance(60);
    assert_eq!(w.messages.expire_due().await.unwrap(), 1);
}

/// `messages.setDefaultHistoryTTL`: a private chat the account starts gets its period on both
/// sides from the first message on; chats that already exist, on either side, keep theirs.
pub async fn new_chats_get_the_default_auto_delete_period(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 4, "defttl").await;
    let (a, b, c, d) = (u[0].id, u[1].id, u[2].id, u[3].id);
    w.messages.send(send(a, Peer::User(b), 1, "old chat")).await.unwrap();
    w.messages.send(send(d, Peer::User(a), 1, "they wrote first")).await.unwrap();
    assert_eq!(w.accounts.default_history_ttl(a).await.unwrap(), 0);
    assert!(matches!(w.accounts.set_default_history_ttl(a, -1).await.unwrap_err(), DomainError::Message(MessageError::TtlPeriodInvalid)));
    assert!(matches!(
        w.accounts.set_default_history_ttl(a, crate::ttl::TTL_MAX_SECS + 1).await.unwrap_err(),
        DomainError::Message(MessageError::TtlPeriodInvalid)
    ));
    w.accounts.set_default_history_ttl(a, 86_400).await.unwrap();
    assert_eq!(w.accounts.default_history_ttl(a).await.unwrap(), 86_400);

    let first = w.messages.send(send(a, Peer::User(c), 2, "new chat")).await.unwrap();
    assert_eq!(new_message(&first.update).ttl_period, Some(86_400));
    assert_eq!(w.messages.dialog(a, Peer::User(c)).await.unwrap().unwrap().ttl_period, 86_400);
    assert_eq!(w.messages.dialog(c, Peer::User(a)).await.unwrap().unwrap().ttl_period, 86_400, "both sides");
    let theirs = w.messages.history(c, Peer::User(a), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0;
    assert_eq!(theirs[0].ttl_period, Some(86_400), "the receiver's copy too");
    let reply = w.messages.send(send(c, Peer::User(a), 3, "reply")).await.unwrap();
    assert_eq!(new_message(&reply.update).ttl_period, Some(86_400), "and what the other side sends");

    // Existing chats, whoever started them, keep no period.
    assert_eq!(new_message(&w.messages.send(send(a, Peer::User(b), 4, "still old")).await.unwrap().update).ttl_period, None);
    assert_eq!(new_message(&w.messages.send(send(a, Peer::User(d), 5, "answer")).await.unwrap().update).ttl_period, None);
    // The default is the sender's: someone without one starts chats without a period.
    assert_eq!(new_message(&w.messages.send(send(b, Peer::User(d), 6, "hello")).await.unwrap().update).ttl_period, None);
    // Off again: new chats start without.
    w.accounts.set_default_history_ttl(a, 0).await.unwrap();
    let e = users(&w, 1, "defttl-late").await[0].id;
    assert_eq!(new_message(&w.messages.send(send(a, Peer::User(e), 7, "later chat")).await.unwrap().update).ttl_period, None);
}

/// A file is made from its upload's parts, travels in a message, and is fetched by those
/// who can see a message carrying it, with their own access hash and a reference that
/// expires; a channel's file is its members'; deleting the message ends a receiver's access.
pub async fn files_reach_those_who_see_them(stores: Stores) {
    use crate::files::Uploaded;
    let w = world(stores);
    let u = users(&w, 4, "files").await;
    let (a, b, c, d) = (u[0].id, u[1].id, u[2].id, u[3].id);
    let part = vec![7u8; 128 * 1024];
    w.files.save_part(a, 42, 0, None, part.clone()).await.unwrap();
    w.files.save_part(a, 42, 1, None, b"tail".to_vec()).await.unwrap();
    let up = Uploaded { file_id: 42, parts: 3, big: false, md5: String::new(), name: "f.bin".into() };
    assert!(matches!(w.files.complete(a, &up, "application/x-test", vec![], None).await.unwrap_err(), DomainError::File(FileError::PartMissing(2))));
    let up = Uploaded { parts: 2, ..up };
    let file = w.files.complete(a, &up, "application/x-test", vec![], None).await.unwrap();
    assert_eq!((file.size, file.file_name()), (128 * 1024 + 4, Some("f.bin")), "the upload's name when no attribute gives one");
    // The uploader may use it before anyone else sees it; nobody else may.
    let mine = w.files.resolve(a, file.id, w.files.access_hash(a, file.id), None).await.unwrap();
    assert_eq!(mine, file);
    let bad = |e: DomainError| matches!(e, DomainError::File(FileError::FileIdInvalid));
    assert!(bad(w.files.resolve(b, file.id, w.files.access_hash(b, file.id), None).await.unwrap_err()));

    let sent = w.messages.send_media(send(a, Peer::User(b), 1, ""), Media::Document(file.clone())).await.unwrap();
    assert_eq!(new_message(&sent.update).media.as_deref(), Some(&Media::Document(file.clone())));
    let theirs = w.messages.history(b, Peer::User(a), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0;
    assert_eq!(theirs[0].media.as_deref(), Some(&Media::Document(file.clone())), "the receiver's copy carries it");
    let reference = w.files.reference(file.id);
    let got = w.files.resolve(b, file.id, w.files.access_hash(b, file.id), Some(&reference)).await.unwrap();
    assert_eq!(w.files.read(&got, "", 128 * 1024, 4096, false).await.unwrap(), b"tail");
    assert_eq!(w.files.read(&got, "", 0, 4096, false).await.unwrap(), vec![7u8; 4096]);
    assert!(matches!(w.files.read(&got, "m", 0, 4096, false).await.unwrap_err(), DomainError::File(FileError::LocationInvalid)), "a document has no sizes");
    // Another viewer's hash, or someone who sees no message with it: nothing.
    assert!(bad(w.files.resolve(b, file.id, w.files.access_hash(a, file.id), Some(&reference)).await.unwrap_err()));
    assert!(bad(w.files.resolve(c, file.id, w.files.access_hash(c, file.id), Some(&reference)).await.unwrap_err()));
    // References expire; a fresh one works.
    w.clock.advance(crate::files::REFERENCE_TTL_SECS + 3600);
    assert!(matches!(
        w.files.resolve(b, file.id, w.files.access_hash(b, file.id), Some(&reference)).await.unwrap_err(),
        DomainError::File(FileError::ReferenceExpired)
    ));
    let mut forged = w.files.reference(file.id);
    forged[5] ^= 1;
    assert!(matches!(
        w.files.resolve(b, file.id, w.files.access_hash(b, file.id), Some(&forged)).await.unwrap_err(),
        DomainError::File(FileError::ReferenceInvalid)
    ));
    w.files.resolve(b, file.id, w.files.access_hash(b, file.id), Some(&w.files.reference(file.id))).await.unwrap();

    // A channel's file: its members', not strangers'.
    let g = w.groups.create_channel(a, 1, "Files", "", false).await.unwrap().group;
    w.groups.add_members(a, 1, g.id, &[c]).await.unwrap();
    w.files.save_part(a, 43, 0, None, b"post".to_vec()).await.unwrap();
    let post_file = w
        .files
        .complete(a, &Uploaded { file_id: 43, parts: 1, big: false, md5: String::new(), name: String::new() }, "text/plain", vec![], None)
        .await
        .unwrap();
    w.messages.send_media(send(a, Peer::Channel(g.id), 2, "caption"), Media::Document(post_file.clone())).await.unwrap();
    w.files.resolve(c, post_file.id, w.files.access_hash(c, post_file.id), None).await.unwrap();
    assert!(bad(w.files.resolve(d, post_file.id, w.files.access_hash(d, post_file.id), None).await.unwrap_err()));
    assert!(bad(w.files.resolve(b, post_file.id, w.files.access_hash(b, post_file.id), None).await.unwrap_err()));

    // An album: one send per item, all with one grouped id, in order.
    let album = w
        .messages
        .send_album(vec![
            (send(a, Peer::User(b), 10, "one"), Media::Document(file.clone())),
            (send(a, Peer::User(b), 11, "two"), Media::Document(file.clone())),
        ])
        .await
        .unwrap();
    let (first, second) = (new_message(&album[0].update), new_message(&album[1].update));
    assert!(first.grouped_id.is_some() && first.grouped_id == second.grouped_id && first.id < second.id);
    assert!(w.messages.send_album(vec![]).await.is_err());

    // Deleting the message (for both sides) ends the receiver's access; the uploader keeps it.
    let b_copies: Vec<i32> =
        w.messages.history(b, Peer::User(a), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().0.iter().map(|m| m.id).collect();
    w.messages.delete(b, 1, &b_copies, true).await.unwrap();
    assert!(bad(w.files.resolve(b, file.id, w.files.access_hash(b, file.id), None).await.unwrap_err()));
    w.files.resolve(a, file.id, w.files.access_hash(a, file.id), None).await.unwrap();
}

/// Space: an account's uploads and stored files count against its quota (others are not
/// affected), the free-space floor refuses parts and assembly, and a file nothing refers to
/// any more is deleted with its blob once old enough, which gives the space back.
pub async fn space_is_bounded_and_unused_files_are_freed(stores: Stores) {
    use crate::files::{FileLimits, FileService, Uploaded, UNUSED_FILE_TTL_SECS};
    let w = world(stores);
    let u = users(&w, 2, "space").await;
    let (a, b) = (u[0].id, u[1].id);
    let files = FileService::new(w.blobs.clone(), w.stores.files.clone(), [9; 32], w.clock.clone(), 1)
        .with_limits(FileLimits { quota_bytes: 1 << 20, free_floor_bytes: 1 << 20 });
    let half = vec![1u8; 512 * 1024];
    let quota = |e: DomainError| matches!(e, DomainError::File(FileError::QuotaExceeded));
    let full = |e: DomainError| matches!(e, DomainError::File(FileError::StorageFull));
    files.save_part(a, 1, 0, None, half.clone()).await.unwrap();
    files.save_part(a, 1, 1, None, half.clone()).await.unwrap();
    assert!(quota(files.save_part(a, 2, 0, None, vec![2]).await.unwrap_err()), "one byte past the quota");
    files.save_part(b, 1, 0, None, half.clone()).await.unwrap();
    // Assembled, the upload's bytes count once, as a stored file.
    let up = Uploaded { file_id: 1, parts: 2, big: false, md5: String::new(), name: "a.bin".into() };
    let file = files.complete(a, &up, "application/octet-stream", vec![], None).await.unwrap();
    assert_eq!(w.stores.files.stored_bytes(a).await.unwrap(), 1 << 20);
    assert!(quota(files.save_part(a, 2, 0, None, vec![2]).await.unwrap_err()));
    let again = files.complete(a, &up, "application/octet-stream", vec![], None).await.unwrap();
    assert_eq!((again.blob.as_str(), again.size), (file.blob.as_str(), file.size), "an assembled upload may be used again (a file of its own)");

    // The floor: parts and assembly both refused while the disk is short.
    *w.blobs.free.lock().unwrap() = Some((1 << 20) + 1024);
    assert!(full(files.save_part(b, 1, 1, None, vec![3; 2048]).await.unwrap_err()));
    files.save_part(b, 1, 1, None, vec![3; 1024]).await.unwrap();
    let up_b = Uploaded { file_id: 1, parts: 2, big: false, md5: String::new(), name: String::new() };
    assert!(full(files.complete(b, &up_b, "application/octet-stream", vec![], None).await.unwrap_err()));
    *w.blobs.free.lock().unwrap() = None;
    let b_file = files.complete(b, &up_b, "application/octet-stream", vec![], None).await.unwrap();

    // Collection: a file in a message stays; so does an unused one younger than a day.
    w.messages.send_media(send(a, Peer::User(b), 1, ""), Media::Document(file.clone())).await.unwrap();
    w.clock.advance(UNUSED_FILE_TTL_SECS + 60);
    assert_eq!(files.collect(0).await.unwrap(), 3, "b's unused file and its blob, and a's unused second file (its blob is in use)");
    assert!(w.stores.files.file(b_file.id).await.unwrap().is_none() && !w.blobs.has(&b_file.blob));
    assert!(w.stores.files.file(again.id).await.unwrap().is_none());
    assert!(w.stores.files.file(file.id).await.unwrap().is_some() && w.blobs.has(&file.blob), "a's file is in a message");
    // Deleting the last message copy that carries it frees it (after the file's age).
    let ids: Vec<i32> = w.messages.history(a, Peer::User(b), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().0.iter().map(|m| m.id).collect();
    w.messages.delete(a, 2, &ids, false).await.unwrap();
    assert_eq!(files.collect(0).await.unwrap(), 0, "b's copy still carries it");
    let ids: Vec<i32> = w.messages.history(b, Peer::User(a), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().0.iter().map(|m| m.id).collect();
    w.messages.delete(b, 2, &ids, false).await.unwrap();
    assert_eq!(files.collect(0).await.unwrap(), 2);
    assert!(w.stores.files.file(file.id).await.unwrap().is_none() && !w.blobs.has(&file.blob));
    assert_eq!(w.stores.files.stored_bytes(a).await.unwrap(), 0, "the space is a's again");
    files.save_part(a, 2, 0, None, half.clone()).await.unwrap();

    // A chat photo: kept while it is the chat's (and while its service message lasts), seen by
    // members through that message.
    let g = w.groups.create_channel(a, 1, "Pictured", "", false).await.unwrap().group;
    w.groups.add_members(a, 1, g.id, &[b]).await.unwrap();
    files.save_part(a, 3, 0, None, vec![4; 1024]).await.unwrap();
    let pic =
        files.complete(a, &Uploaded { file_id: 3, parts: 1, big: false, md5: String::new(), name: String::new() }, "image/jpeg", vec![], None).await.unwrap();
    let changed = w.groups.edit_photo(a, 1, g.id, Some(pic.clone())).await.unwrap();
    assert_eq!(changed.group.photo_id, Some(pic.id));
    assert!(matches!(w.groups.edit_photo(a, 1, g.id, Some(pic.clone())).await.unwrap_err(), DomainError::Group(GroupError::ChatNotModified)));
    assert!(matches!(w.groups.edit_photo(b, 1, g.id, None).await.unwrap_err(), DomainError::Group(GroupError::ChatAdminRequired)));
    files.resolve(b, pic.id, files.access_hash(b, pic.id), None).await.unwrap();
    w.clock.advance(UNUSED_FILE_TTL_SECS + 60);
    files.collect(0).await.unwrap();
    assert!(w.stores.files.file(pic.id).await.unwrap().is_some() && w.blobs.has(&pic.blob));
    assert_eq!(w.groups.edit_photo(a, 1, g.id, None).await.unwrap().group.photo_id, None);

    // A scheduled document: kept until it goes out, and it goes out with its file.
    files.save_part(a, 4, 0, None, vec![5; 1024]).await.unwrap();
    let up = Uploaded { file_id: 4, parts: 1, big: false, md5: String::new(), name: "later.pdf".into() };
    let later = files.complete(a, &up, "application/pdf", vec![], None).await.unwrap();
    let due = w.clock.now_secs() as i32 + 2 * 86_400;
    let kept = w.scheduled.schedule(send(a, Peer::User(b), 50, "soon"), due, Some(Media::Document(later.clone()))).await.unwrap();
    assert_eq!(kept.as_message().media.as_deref(), Some(&Media::Document(later.clone())));
    assert!(w.scheduled.schedule(send(a, Peer::User(b), 51, &"c".repeat(1025)), due, Some(Media::Document(later.clone()))).await.is_err());
    w.clock.advance(UNUSED_FILE_TTL_SECS + 60);
    files.collect(0).await.unwrap();
    assert!(w.stores.files.file(later.id).await.unwrap().is_some() && w.blobs.has(&later.blob), "a scheduled message keeps its file");
    w.clock.advance(86_400);
    w.scheduled.send_due().await.unwrap();
    let got = w.messages.history(b, Peer::User(a), HistoryQuery { limit: 1, ..Default::default() }).await.unwrap().0;
    assert_eq!((got[0].text.as_str(), got[0].media.as_deref()), ("soon", Some(&Media::Document(later))));
}

/// A scheduled message waits aside (its own ids, listed by time), goes out once when due
/// (a second pass sends nothing), and its sessions hear it is gone; deleting one forgets it.
pub async fn scheduled_messages_go_out_once_when_due(stores: Stores) {
    use crate::schedule::SCHEDULED_PER_PEER_MAX;
    let w = world(stores);
    let u = users(&w, 2, "sched").await;
    let (a, b) = (u[0].id, u[1].id);
    let now = w.clock.now_secs() as i32;
    let later = w.scheduled.schedule(send(a, Peer::User(b), 7, "later"), now + 60, None).await.unwrap();
    let sooner = w.scheduled.schedule(send(a, Peer::User(b), 8, "sooner"), now + 30, None).await.unwrap();
    assert_eq!((later.id, sooner.id), (1, 2));
    assert_eq!(w.scheduled.schedule(send(a, Peer::User(b), 7, "later"), now + 60, None).await.unwrap().id, 1, "a retry is the same message");
    assert_eq!(w.scheduled.list(a, Peer::User(b), None).await.unwrap().iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["sooner", "later"]);
    assert!(w.messages.history(b, Peer::User(a), HistoryQuery { limit: 5, ..Default::default() }).await.unwrap().0.is_empty());
    let mut a_rx = w.bus.subscribe(a);
    w.clock.advance(30);
    assert_eq!(w.scheduled.send_due().await.unwrap(), 1);
    assert_eq!(w.scheduled.send_due().await.unwrap(), 0);
    let got: Vec<String> =
        w.messages.history(b, Peer::User(a), HistoryQuery { limit: 5, ..Default::default() }).await.unwrap().0.into_iter().map(|m| m.text).collect();
    assert_eq!(got, ["sooner"]);
    let mut gone = false;
    while let Ok(ev) = a_rx.rx.try_recv() {
        gone |= matches!(&*ev, Event::ScheduledGone { ids, sent, .. } if ids == &vec![2] && sent.len() == 1);
    }
    assert!(gone, "the owner's sessions hear the scheduled message went out");
    assert!(w.stores.scheduled.claim_scheduled(a, 1).await.unwrap());
    assert!(w.scheduled.delete(a, Peer::User(b), &[1]).await.unwrap().is_empty(), "being sent: past deleting");
    w.stores.scheduled.reschedule(a, 1, now + 60).await.unwrap();
    assert_eq!(w.scheduled.delete(a, Peer::User(b), &[1, 99]).await.unwrap(), vec![1]);
    w.clock.advance(60);
    assert_eq!(w.scheduled.send_due().await.unwrap(), 0);
    // Limits.
    assert!(matches!(
        w.scheduled.schedule(send(a, Peer::User(b), 9, "x"), now + 400 * 86_400, None).await.unwrap_err(),
        DomainError::Message(MessageError::ScheduleDateTooLate)
    ));
    let t = w.clock.now_secs() as i32 + 100;
    for i in 0..SCHEDULED_PER_PEER_MAX as i64 {
        w.scheduled.schedule(send(a, Peer::User(b), 100 + i, "many"), t, None).await.unwrap();
    }
    assert!(matches!(
        w.scheduled.schedule(send(a, Peer::User(b), 999, "one more"), t, None).await.unwrap_err(),
        DomainError::Message(MessageError::ScheduleTooMuch)
    ));
}

/// Privacy settings are kept and enforced where the domain decides: finding by number,
/// adding to groups, and who hears status changes.
pub async fn privacy_settings_are_enforced(stores: Stores) {
    use crate::contacts::PhoneContact;
    use crate::privacy::{PrivacyKey, Rule};
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996619191", "Alice").await;
    let bob = sign_up(&w, 2, "9996619192", "Bob").await;
    let carol = sign_up(&w, 3, "9996619193", "Carol").await;
    assert_eq!(w.accounts.privacy(alice.id, PrivacyKey::PhoneNumber).await.unwrap(), vec![Rule::AllowContacts], "Telegram's default");
    // Exceptions alone mean "nobody else".
    let set = w.accounts.set_privacy(alice.id, PrivacyKey::AddedByPhone, vec![Rule::AllowUsers(vec![bob.id.0])]).await.unwrap();
    assert_eq!(set, vec![Rule::AllowUsers(vec![bob.id.0]), Rule::DisallowAll]);
    assert!(matches!(
        w.accounts.set_privacy(alice.id, PrivacyKey::StatusTimestamp, vec![Rule::AllowAll, Rule::DisallowChats(vec![5])]).await.unwrap_err(),
        DomainError::Account(AccountError::PrivacyValueInvalid)
    ));
    let pc = |phone: &str| vec![PhoneContact { client_id: 1, phone: phone.into(), first_name: "A".into(), last_name: String::new() }];
    assert!(w.accounts.import_contacts(carol.id, pc("9996619191")).await.unwrap().imported.is_empty());
    assert!(matches!(w.accounts.resolve_phone(carol.id, "9996619191").await.unwrap_err(), DomainError::Account(AccountError::PhoneNotOccupied)));
    assert_eq!(w.accounts.import_contacts(bob.id, pc("9996619191")).await.unwrap().imported.len(), 1);
    // Adding to groups.
    w.accounts.set_privacy(alice.id, PrivacyKey::ChatInvite, vec![Rule::AllowContacts]).await.unwrap();
    let g = w.groups.create_channel(carol.id, 1, "Room", "", false).await.unwrap().group;
    assert!(matches!(w.groups.add_members(carol.id, 1, g.id, &[alice.id]).await.unwrap_err(), DomainError::Group(GroupError::UserPrivacyRestricted)));
    w.accounts.add_contact(alice.id, &carol, "Carol", "", "").await.unwrap();
    w.groups.add_members(carol.id, 1, g.id, &[alice.id]).await.unwrap();
    // Status changes reach only those allowed: Bob has Alice as a contact but is refused.
    w.accounts.set_privacy(alice.id, PrivacyKey::StatusTimestamp, vec![Rule::AllowAll, Rule::DisallowUsers(vec![bob.id.0])]).await.unwrap();
    w.accounts.add_contact(carol.id, &alice, "Al", "", "").await.unwrap();
    let mut bob_rx = w.bus.subscribe(bob.id);
    let mut carol_rx = w.bus.subscribe(carol.id);
    w.accounts.update_status(alice.id, false, w.bus.as_ref()).await.unwrap();
    assert!(bob_rx.rx.try_recv().is_err());
    assert!(matches!(&*carol_rx.rx.try_recv().unwrap(), Event::UserStatus { .. }));
}

/// Sessions unused past their account's lifetime end, as a logout elsewhere would; used ones
/// and other accounts' stay.
pub async fn unused_sessions_end_after_their_lifetime(stores: Stores) {
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996612121", "Alice").await;
    let bob = sign_up(&w, 2, "9996612122", "Bob").await;
    let now = w.clock.now_secs();
    w.stores.keys.touch_key(1, now - 3 * 86_400).await.unwrap();
    w.stores.keys.touch_key(2, now - 3 * 86_400).await.unwrap();
    assert_eq!(w.auth.session_ttl(alice.id).await.unwrap(), 180);
    assert!(matches!(w.auth.set_session_ttl(alice.id, 0).await.unwrap_err(), DomainError::Account(AccountError::TtlDaysInvalid)));
    w.auth.set_session_ttl(alice.id, 2).await.unwrap();
    let mut rx = w.bus.subscribe(alice.id);
    assert_eq!(w.auth.end_stale_sessions().await.unwrap(), 1);
    assert!(matches!(&*rx.rx.try_recv().unwrap(), Event::KeyUnbound { auth_key_id: 1, .. }));
    assert_eq!(w.stores.keys.get_key(1).await.unwrap().unwrap().user_id, None);
    assert_eq!(w.stores.keys.get_key(2).await.unwrap().unwrap().user_id, Some(bob.id), "Bob keeps the default 180 days");
}

/// The pts log is trimmed to a window: a difference from inside it replays, one from before
/// it is too long (the client reloads), and the box goes on numbering as before.
pub async fn trimmed_logs_answer_too_long(stores: Stores) {
    let w = world(stores);
    let u = users(&w, 2, "trim").await;
    let (a, b) = (u[0].id, u[1].id);
    let start = w.messages.state(a).await.unwrap().pts;
    // Messages in, each read: new messages and log entries alternate in a's box (a store may
    // keep new messages out of the log, as SQLite does).
    let mut at = start;
    for i in 0..15 {
        w.messages.send(send(b, Peer::User(a), 1000 + i, "x")).await.unwrap();
        let d = w.messages.difference(a, at).await.unwrap();
        let id = new_message(d.updates.last().expect("the new message")).id;
        w.messages.read_history(a, 0, Peer::User(b), id).await.unwrap().expect("a read moves the mark");
        at = w.messages.state(a).await.unwrap().pts;
        assert_eq!(at, start + 2 * (i as i32 + 1));
    }
    let now = w.messages.state(a).await.unwrap().pts;
    assert_eq!(w.messages.difference(a, start).await.unwrap().updates.len(), 30);
    let gone = w.stores.messages.trim_log(10, 100).await.unwrap();
    assert!(gone >= 10, "{gone}");
    let old = w.messages.difference(a, start).await.unwrap();
    assert!(old.too_long && old.pts == now && old.updates.is_empty());
    let recent = w.messages.difference(a, now - 10).await.unwrap();
    assert!(!recent.too_long && recent.updates.len() == 10);
    // Within the hysteresis nothing more is trimmed, and new pts continue.
    assert_eq!(w.stores.messages.trim_log(10, 100).await.unwrap(), 0);
    let next = w.messages.send(send(a, Peer::User(b), 5000, "y")).await.unwrap();
    assert_eq!(next.update.pts, now + 1);
}

/// Deleting an account (with its password when it has one) ends its sessions, frees its
/// number, and leaves a "Deleted Account" that takes no messages; inactive accounts go by
/// themselves after their lifetime.
pub async fn accounts_are_deleted_on_request_and_when_inactive(stores: Stores) {
    use crate::password::NewSettings;
    let w = world(stores);
    let alice = sign_up(&w, 1, "9996613141", "Alice").await;
    let bob = sign_up(&w, 2, "9996613142", "Bob").await;
    w.messages.send(send(bob.id, Peer::User(alice.id), 1, "hi")).await.unwrap();
    let set = NewSettings { password: Some(Some(new_password(7))), hint: None, email: None };
    w.auth.update_password(&who(1), alice.id, None, set).await.unwrap();
    assert_eq!(auth_err(w.auth.delete_account(&who(1), alice.id, None).await.unwrap_err()), AuthError::PasswordHashInvalid);
    let info = w.auth.password_info(alice.id).await.unwrap();
    let mut rx = w.bus.subscribe(alice.id);
    w.auth.delete_account(&who(1), alice.id, Some(&srp_proof(&info, &exponent(7)))).await.unwrap();
    assert!(matches!(&*rx.rx.try_recv().unwrap(), Event::KeyUnbound { auth_key_id: 1, .. }));
    let gone = w.stores.accounts.user_by_id(alice.id).await.unwrap().unwrap();
    assert!(gone.deleted && gone.first_name.is_empty() && gone.username.is_none());
    assert!(w.stores.passwords.password(alice.id).await.unwrap().is_none());
    assert!(matches!(
        w.messages.send(send(bob.id, Peer::User(alice.id), 2, "still there?")).await.unwrap_err(),
        DomainError::Message(MessageError::InputUserDeactivated)
    ));
    // Bob's history with her stays.
    assert_eq!(w.messages.history(bob.id, Peer::User(alice.id), HistoryQuery { limit: 5, ..Default::default() }).await.unwrap().0.len(), 1);
    // The number is free: signing up with it makes a new account.
    let again = sign_up(&w, 3, "9996613141", "Alice again").await;
    assert_ne!(again.id, alice.id);
    // Inactivity.
    assert!(matches!(w.auth.set_account_ttl(bob.id, 7).await.unwrap_err(), DomainError::Account(AccountError::TtlDaysInvalid)));
    w.auth.set_account_ttl(bob.id, 30).await.unwrap();
    let now = w.clock.now_secs();
    w.stores.keys.touch_key(2, now).await.unwrap();
    w.stores.keys.touch_key(3, now + 31 * 86_400).await.unwrap();
    w.clock.advance(29 * 86_400);
    assert_eq!(w.auth.delete_inactive_accounts().await.unwrap(), 0);
    w.clock.advance(2 * 86_400);
    assert_eq!(w.auth.delete_inactive_accounts().await.unwrap(), 1, "Bob, not the new Alice (used, 365 days)");
    assert!(w.stores.accounts.user_by_id(bob.id).await.unwrap().unwrap().deleted);
}

/// Keys that never log in are bounded per creating address: past the cap the least recently
/// used go; logged-in keys and other addresses' stay.
pub async fn unbound_keys_are_capped_per_address(stores: Stores) {
    let w = world(stores);
    let rec = |id: i64, addr: &str, used: i64| AuthKeyRecord {
        id,
        key: vec![0; 256],
        created_at: used,
        expires_at: None,
        user_id: None,
        client: None,
        first_salt: 0,
        last_used_at: used,
        addr: addr.into(),
        perm_key_id: None,
    };
    for (id, used) in [(101, 10), (102, 20), (103, 30), (104, 40), (105, 50)] {
        w.stores.keys.insert_key(rec(id, "10.0.0.1", used)).await.unwrap();
    }
    for id in [201, 202] {
        w.stores.keys.insert_key(rec(id, "10.0.0.2", 5)).await.unwrap();
    }
    w.stores.keys.insert_key(rec(301, "10.0.0.1", 1)).await.unwrap();
    let alice = w
        .stores
        .accounts
        .create_user(NewUser { phone: "9996614949".into(), first_name: "A".into(), last_name: String::new(), home_dc: 1, created_at: 0 })
        .await
        .unwrap();
    w.stores.keys.bind_user(301, Some(alice.id)).await.unwrap();
    assert_eq!(w.stores.keys.purge_keys(0, 0, 3).await.unwrap(), 2);
    for (id, kept) in [(101, false), (102, false), (103, true), (104, true), (105, true), (201, true), (202, true), (301, true)] {
        assert_eq!(w.stores.keys.get_key(id).await.unwrap().is_some(), kept, "key {id}");
    }
}

/// Runs every case of the suite against a backend: `storage_suite!(expr)` where `expr`
/// evaluates to a fresh, empty store implementing every storage trait (wrapped in `Arc`).
#[macro_export]
macro_rules! storage_suite {
    ($make:expr) => {
        $crate::storage_suite!(@cases $make;
            sign_up_then_sign_in_binds_keys_and_ids_carry_the_dc,
            two_step_verification_guards_the_login,
            address_books_import_relate_and_delete,
            messages_are_found_by_words,
            forwards_carry_their_origin,
            reactions_are_shared_and_pushed,
            dialog_drafts_pins_and_archive,
            online_status_is_reported_to_contacts,
            login_tokens_are_accepted_once_in_time,
            self_deleting_messages_go_on_time,
            new_chats_get_the_default_auto_delete_period,
            files_reach_those_who_see_them,
            space_is_bounded_and_unused_files_are_freed,
            scheduled_messages_go_out_once_when_due,
            privacy_settings_are_enforced,
            unused_sessions_end_after_their_lifetime,
            trimmed_logs_answer_too_long,
            accounts_are_deleted_on_request_and_when_inactive,
            unbound_keys_are_capped_per_address,
            phone_lookups_are_budgeted,
            password_email_confirmation_and_recovery,
            codes_expire_burn_after_wrong_tries_and_are_rate_limited,
            parallel_guesses_share_one_attempt_budget,
            wrong_codes_per_day_are_capped,
            login_code_reaches_the_other_sessions_through_777000,
            usernames_and_access_hashes,
            sends_validate_dedup_and_notify_both_sides,
            a_strangers_failures_do_not_lock_the_owner_out,
            many_attacking_addresses_only_block_those_that_failed,
            codes_belong_to_the_key_that_asked_and_are_limited_per_address,
            the_service_account_cannot_be_logged_into,
            names_are_cleaned_and_invisible_ones_refused,
            sends_are_limited_per_account,
            one_address_asking_codes_for_many_numbers_is_limited,
            a_second_sign_up_for_a_taken_number_is_occupied,
            basic_group_messages_go_to_every_members_box,
            basic_groups_hold_at_most_200,
            a_channel_post_is_stored_once_with_the_channels_own_pts,
            channel_rights_are_enforced_with_telegrams_errors,
            invite_links_expire_run_out_and_may_need_approval,
            a_migrated_group_keeps_its_history_and_moves_its_members,
            group_changes_and_counted_views_are_limited_per_account,
            supergroup_senders_learn_when_others_read,
            users_and_channels_share_one_username_namespace,
            channels_posted_since_lists_the_members_busy_channels,
            sessions_are_listed_and_ended,
            blocking_stops_private_messages_both_ways,
            dialogs_can_be_marked_unread,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::testsuite::$name($crate::testsuite::Stores::of($make)).await;
            }
        )*
    };
}
