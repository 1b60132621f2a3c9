//! Domain services over the SQLite store, with a clock the tests control.

use herald_domain::accounts::AccountService;
use herald_domain::auth::{
    AuthConfig, AuthService, Requester, SignIn, CODES_PER_HOUR, CODE_MAX_ATTEMPTS, CODE_TTL_SECS, FAILURES_PER_DAY, FAILURES_PER_PHONE_DAY,
};
use herald_domain::bus::{Event, EventBus, InProcessBus};
use herald_domain::clock::Clock;
use herald_domain::error::{AccountError, AuthError, DomainError, MessageError};
use herald_domain::messages::{MessageService, SendRequest};
use herald_domain::model::*;
use herald_domain::store::AuthKeyStore;
use herald_store_sqlite::SqliteStore;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

struct FakeClock(AtomicI64);
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

struct World {
    store: Arc<SqliteStore>,
    clock: Arc<FakeClock>,
    bus: Arc<InProcessBus>,
    auth: AuthService,
    accounts: AccountService,
    messages: Arc<MessageService>,
}

fn world() -> World {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("herald-svc-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("h.db")).unwrap());
    let clock = Arc::new(FakeClock(AtomicI64::new(1_800_000_000_000)));
    let bus = Arc::new(InProcessBus::new());
    let messages = Arc::new(MessageService::new(store.clone(), bus.clone(), clock.clone()));
    let accounts = AccountService::new(store.clone(), store.clone(), [9; 32]);
    let auth = AuthService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        messages.clone(),
        bus.clone(),
        clock.clone(),
        AuthConfig { dc_id: 1, test_phones: true, log_codes: false },
    );
    World { store, clock, bus, auth, accounts, messages }
}

async fn key(w: &World, id: i64) {
    w.store
        .insert_key(AuthKeyRecord { id, key: vec![0; 256], created_at: 0, expires_at: None, user_id: None, client: None, first_salt: 0, last_used_at: 0 })
        .await
        .unwrap();
}

/// Key `k` on address 127.0.0.1.
fn who(k: i64) -> Requester {
    Requester::new(k, "127.0.0.1")
}

async fn sign_up(w: &World, key_id: i64, phone: &str, name: &str) -> User {
    key(w, key_id).await;
    let code = herald_domain::auth::test_phone_code(phone).unwrap();
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

#[tokio::test]
async fn sign_up_then_sign_in_binds_keys_and_ids_carry_the_dc() {
    let w = world();
    let alice = sign_up(&w, 1, "9996611111", "Alice").await;
    assert_eq!(alice.id.home_dc(), Some(1));
    assert_eq!(w.store.get_key(1).await.unwrap().unwrap().user_id, Some(alice.id));
    key(&w, 2).await;
    let sent = w.auth.send_code(&who(2), "+999 661 1111").await.unwrap();
    assert_eq!(w.auth.sign_in(&who(2), "9996611111", &sent.hash, "11111").await.unwrap(), SignIn::Authorized(alice.clone()));
    // signing up without a verified code is refused
    let sent = w.auth.send_code(&who(2), "9996611111").await.unwrap();
    assert_eq!(auth_err(w.auth.sign_up(&who(2), "9996611111", &sent.hash, "X", "").await.unwrap_err()), AuthError::PhoneCodeInvalid);
    w.auth.log_out(2, alice.id).await.unwrap();
    assert_eq!(w.store.get_key(2).await.unwrap().unwrap().user_id, None);
}

#[tokio::test]
async fn codes_expire_burn_after_wrong_tries_and_are_rate_limited() {
    let w = world();
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

#[tokio::test]
async fn parallel_guesses_share_one_attempt_budget() {
    let w = Arc::new(world());
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

#[tokio::test]
async fn wrong_codes_per_day_are_capped() {
    let w = world();
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

#[tokio::test]
async fn login_code_reaches_the_other_sessions_through_777000() {
    let w = world();
    let alice = sign_up(&w, 1, "9996633333", "Alice").await;
    let mut rx = w.bus.subscribe(alice.id);
    w.auth.send_code(&who(1), "9996633333").await.unwrap();
    let Event::Updates { updates, .. } = rx.recv().await.unwrap() else { panic!() };
    let UpdateKind::NewMessage(m) = &updates[0].kind else { panic!() };
    assert_eq!((m.from, m.out), (SERVICE_USER_ID, false));
    assert!(m.text.contains("33333"));
}

#[tokio::test]
async fn usernames_and_access_hashes() {
    let w = world();
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
    w.messages.send(SendRequest { from: a.id, to: b.id, origin_key: 1, random_id: 1, text: "hi".into(), entities: vec![], reply_to: None }).await.unwrap();
    assert!(w.accounts.check_access(b.id, a.id, 0, AccountError::UserIdInvalid).await.is_ok());
}

#[tokio::test]
async fn sends_validate_dedup_and_notify_both_sides() {
    let w = world();
    let a = sign_up(&w, 1, "9996655551", "A").await;
    let b = sign_up(&w, 2, "9996655552", "B").await;
    let mut a_rx = w.bus.subscribe(a.id);
    let mut b_rx = w.bus.subscribe(b.id);
    let req = |text: &str, random_id| SendRequest { from: a.id, to: b.id, origin_key: 1, random_id, text: text.into(), entities: vec![], reply_to: None };
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
    let Event::Updates { origin, .. } = a_rx.recv().await.unwrap() else { panic!() };
    assert_eq!(origin, Some(1));
    let Event::Updates { origin, updates, .. } = b_rx.recv().await.unwrap() else { panic!() };
    assert_eq!(origin, None);
    assert_eq!(updates[0].pts, 2);
    // the duplicate published nothing
    let _ = b_rx.recv().await.unwrap();
    assert!(b_rx.try_recv().is_err());
    assert_eq!(w.messages.state(b.id).await.unwrap().pts, 3);
}

#[tokio::test]
async fn a_strangers_failures_do_not_lock_the_owner_out() {
    let w = world();
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

#[tokio::test]
async fn many_attacking_addresses_only_block_those_that_failed() {
    let w = world();
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

#[tokio::test]
async fn codes_belong_to_the_key_that_asked_and_are_limited_per_address() {
    let w = world();
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

#[tokio::test]
async fn the_service_account_cannot_be_logged_into() {
    let w = world();
    key(&w, 1).await;
    for phone in ["42777", "+42777"] {
        assert_eq!(auth_err(w.auth.send_code(&who(1), phone).await.unwrap_err()), AuthError::PhoneNumberInvalid);
        assert_eq!(auth_err(w.auth.sign_in(&who(1), phone, "0000000000000000", "00000").await.unwrap_err()), AuthError::PhoneNumberInvalid);
    }
}

#[tokio::test]
async fn names_are_cleaned_and_invisible_ones_refused() {
    let w = world();
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

#[tokio::test]
async fn sends_are_limited_per_account() {
    use herald_domain::limits::Bucket;
    use herald_domain::messages::{SendLimits, MESSAGE_OVERHEAD_BYTES};
    let w = world();
    let a = sign_up(&w, 1, "9996616161", "A").await;
    let b = sign_up(&w, 2, "9996616162", "B").await;
    let limits = SendLimits { sends: Bucket { burst: 20.0, per_sec: 1.0 }, stored_bytes: Bucket { burst: 40_000.0, per_sec: 100.0 } };
    let messages = MessageService::with_limits(w.store.clone(), w.bus.clone(), w.clock.clone(), limits);
    let req = |from: UserId, to: UserId, random_id, text: &str| SendRequest {
        from,
        to,
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

#[tokio::test]
async fn one_address_asking_codes_for_many_numbers_is_limited() {
    use herald_domain::auth::CODES_PER_ADDR_HOUR;
    let w = world();
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

#[tokio::test]
async fn a_second_sign_up_for_a_taken_number_is_occupied() {
    let w = world();
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
    assert_eq!(w.store.get_key(1).await.unwrap().unwrap().user_id, Some(first.id));
    assert_eq!(w.store.get_key(2).await.unwrap().unwrap().user_id, None);
}
