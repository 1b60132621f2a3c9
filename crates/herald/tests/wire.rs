//! Wire-level tests: a real server on loopback, driven with raw bytes. Each test is the
//! negative (or positive) case of a row in security.md, asserting the exact reaction.

use grammers_tl_types::{enums, functions, types, Deserializable, Serializable};
use herald::config::Config;
use herald_mtproto::crypto::AuthKey;
use herald_mtproto::session::Header;
use herald_mtproto::testing::{ClientHandshake, ClientSession};
use herald_mtproto::wire;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

static SEED: AtomicU64 = AtomicU64::new(1);

fn config() -> Config {
    let n = SEED.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("herald-wire-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Config { data_dir: dir, listen: "127.0.0.1:0".parse().unwrap(), init_timeout_secs: 1, test_phones: true, ..Config::default() }
}

async fn server() -> herald::Running {
    herald::start(&config()).await.unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A client speaking the intermediate transport.
struct Raw {
    s: TcpStream,
    padded: bool,
}

enum Got {
    Frame(Vec<u8>),
    Closed,
    Silence,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self::connect_with(addr, false).await
    }
    /// `padded`: the padded intermediate transport (`dddddddd`), 0–15 bytes of padding.
    async fn connect_with(addr: std::net::SocketAddr, padded: bool) -> Self {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&[if padded { 0xdd } else { 0xee }; 4]).await.unwrap();
        Self { s, padded }
    }
    /// An intermediate-transport client whose connection comes from `src` (a loopback
    /// address such as 127.0.0.2), as another machine's would.
    async fn connect_from(addr: std::net::SocketAddr, src: [u8; 4]) -> Self {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind((std::net::Ipv4Addr::from(src), 0).into()).unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        s.write_all(&[0xee; 4]).await.unwrap();
        Self { s, padded: false }
    }
    async fn send(&mut self, payload: &[u8]) {
        let pad = if self.padded { (payload.len() / 4) % 16 } else { 0 };
        let mut f = ((payload.len() + pad) as u32).to_le_bytes().to_vec();
        f.extend_from_slice(payload);
        f.extend(std::iter::repeat_n(0x5a, pad));
        self.s.write_all(&f).await.unwrap();
    }
    async fn recv(&mut self, wait_ms: u64) -> Got {
        let mut len = [0u8; 4];
        match timeout(Duration::from_millis(wait_ms), self.s.read_exact(&mut len)).await {
            Err(_) => return Got::Silence,
            Ok(Err(_)) => return Got::Closed,
            Ok(Ok(_)) => {}
        }
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        self.s.read_exact(&mut buf).await.unwrap();
        if self.padded {
            buf.truncate(buf.len() - buf.len() % 4);
        }
        Got::Frame(buf)
    }
    async fn frame(&mut self) -> Vec<u8> {
        match self.recv(5000).await {
            Got::Frame(f) => f,
            Got::Closed => panic!("connection closed"),
            Got::Silence => panic!("no answer"),
        }
    }
    async fn assert_closed_without_reply(&mut self) {
        assert!(matches!(self.recv(3000).await, Got::Closed), "expected a silent close");
    }
    async fn plain(&mut self, body: &[u8]) -> Vec<u8> {
        self.send(&wire::build_plain(now_ms() << 20, body)).await;
        let f = self.frame().await;
        let (_, body) = wire::parse_plain(&f).expect("a plain reply");
        body.to_vec()
    }
}

const ERR_404: [u8; 4] = (-404i32).to_le_bytes();

async fn handshake(raw: &mut Raw, rsa: &herald_mtproto::rsa::RsaKey, pad: bool) -> AuthKey {
    let mut c = ClientHandshake::new(rsa, SEED.fetch_add(1, Ordering::SeqCst), pad);
    let r = raw.plain(&c.req_pq()).await;
    let r = raw.plain(&c.req_dh(&r)).await;
    let r = raw.plain(&c.set_dh(&r)).await;
    c.finish(&r)
}

/// Logged-out client with a session whose salt is already right.
async fn session(srv: &herald::Running) -> (Raw, ClientSession) {
    session_with(srv, false).await
}

async fn session_with(srv: &herald::Running, padded: bool) -> (Raw, ClientSession) {
    let mut raw = Raw::connect_with(srv.addr, padded).await;
    let key = handshake(&mut raw, &srv.rsa, padded).await;
    let mut cs = ClientSession::new(key, 42);
    let (_, bytes) = cs.encrypt(&ping(1), now_ms());
    raw.send(&bytes).await;
    let (_, body) = cs.decrypt(&raw.frame().await).unwrap();
    let enums::BadMsgNotification::BadServerSalt(b) = enums::BadMsgNotification::from_bytes(&body).unwrap() else { panic!() };
    cs.salt = b.new_server_salt;
    (raw, cs)
}

/// invokeWithLayer(227, initConnection(api_id, strings..., query)).
fn init_connection(api_id: i32, strings: [&str; 6], query: &[u8]) -> Vec<u8> {
    let mut b = 0xda9b0d0du32.to_le_bytes().to_vec();
    b.extend_from_slice(&227i32.to_le_bytes());
    b.extend_from_slice(&0xc1cd5ea9u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&api_id.to_le_bytes());
    for s in strings {
        wire::write_bytes(&mut b, s.as_bytes());
    }
    b.extend_from_slice(query);
    b
}

fn has_pong(msgs: &[Vec<u8>]) -> bool {
    msgs.iter().any(|m| enums::Pong::from_bytes(m).is_ok())
}

fn ping(id: i64) -> Vec<u8> {
    functions::Ping { ping_id: id }.to_bytes()
}

/// Every message the reply contains (unpacking a container).
fn messages(body: Vec<u8>) -> Vec<Vec<u8>> {
    if wire::constructor_id(&body) == Some(wire::MSG_CONTAINER) {
        wire::parse_container(&body[4..]).unwrap().into_iter().map(|m| m.body).collect()
    } else {
        vec![body]
    }
}

async fn call(raw: &mut Raw, cs: &mut ClientSession, body: &[u8]) -> (i64, Vec<Vec<u8>>) {
    let (id, bytes) = cs.encrypt(body, now_ms());
    raw.send(&bytes).await;
    let f = raw.frame().await;
    let (h, b): (Header, Vec<u8>) = cs.decrypt(&f).unwrap_or_else(|| panic!("not a valid server message: {:?}", &f[..f.len().min(16)]));
    assert_eq!(h.session_id, cs.session_id);
    assert_eq!(h.msg_id % 2, 1, "server msg_ids are odd");
    (id, messages(b))
}

fn rpc_error_of(msgs: &[Vec<u8>], req: i64) -> (i32, String) {
    for m in msgs {
        if wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == req.to_le_bytes() {
            let enums::RpcError::Error(e) = enums::RpcError::from_bytes(&m[12..]).expect("an rpc_error");
            return (e.error_code, e.error_message);
        }
    }
    panic!("no rpc_result for {req}")
}

fn bad_msg_codes(msgs: &[Vec<u8>]) -> Vec<i32> {
    msgs.iter()
        .filter_map(|m| match enums::BadMsgNotification::from_bytes(m) {
            Ok(enums::BadMsgNotification::Notification(n)) => Some(n.error_code),
            Ok(enums::BadMsgNotification::BadServerSalt(s)) => Some(s.error_code),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn key_exchange_with_both_rsa_schemes_then_pong() {
    let srv = server().await;
    for pad in [false, true] {
        let mut raw = Raw::connect(srv.addr).await;
        let key = handshake(&mut raw, &srv.rsa, pad).await;
        let mut cs = ClientSession::new(key, 7);
        // C9: salt 0 → bad_server_salt (48) with the salt to use
        let (id, msgs) = call(&mut raw, &mut cs, &ping(5)).await;
        let enums::BadMsgNotification::BadServerSalt(b) = enums::BadMsgNotification::from_bytes(&msgs[0]).unwrap() else { panic!() };
        assert_eq!((b.bad_msg_id, b.error_code), (id, 48));
        cs.salt = b.new_server_salt;
        let (id, msgs) = call(&mut raw, &mut cs, &ping(6)).await;
        // C4: a new session is announced, then the pong
        assert!(msgs.iter().any(|m| matches!(enums::NewSession::from_bytes(m), Ok(enums::NewSession::Created(n)) if n.first_msg_id == id)));
        let pong = msgs.iter().find_map(|m| enums::Pong::from_bytes(m).ok()).expect("pong");
        let enums::Pong::Pong(p) = pong;
        assert_eq!((p.msg_id, p.ping_id), (id, 6));
    }
    srv.stop().await;
}

#[tokio::test]
async fn garbage_oversized_and_bad_crc_close_silently() {
    let srv = server().await;
    // Not a known transport: an obfuscated header with an unknown tag.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(&[0x42; 64]).await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap(), 0);
    // An intermediate length far over the frame limit.
    let mut raw = Raw::connect(srv.addr).await;
    raw.s.write_all(&0x7fff_fff0u32.to_le_bytes()).await.unwrap();
    raw.assert_closed_without_reply().await;
    // TcpFull with a wrong CRC.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut f = 16u32.to_le_bytes().to_vec();
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f.extend_from_slice(&0xdeadbeefu32.to_le_bytes());
    s.write_all(&f).await.unwrap();
    assert_eq!(timeout(Duration::from_secs(3), s.read(&mut buf)).await.unwrap().unwrap(), 0);
    // Truncated frame then silence: closed by the deadline (slowloris).
    let mut raw = Raw::connect(srv.addr).await;
    raw.s.write_all(&100u32.to_le_bytes()).await.unwrap();
    raw.s.write_all(&[1, 2, 3]).await.unwrap();
    raw.assert_closed_without_reply().await;
    srv.stop().await;
}

#[tokio::test]
async fn unknown_auth_key_gets_404_then_close() {
    let srv = server().await;
    let mut raw = Raw::connect(srv.addr).await;
    let mut f = 0x1234_5678_9abc_def0u64.to_le_bytes().to_vec();
    f.extend_from_slice(&[0u8; 64]);
    raw.send(&f).await;
    assert_eq!(raw.frame().await, ERR_404);
    raw.assert_closed_without_reply().await;
    srv.stop().await;
}

#[tokio::test]
async fn failed_key_exchange_is_sticky_404() {
    let srv = server().await;
    let mut raw = Raw::connect(srv.addr).await;
    // req_DH_params out of order
    let bogus =
        functions::ReqDhParams { nonce: [1; 16], server_nonce: [2; 16], p: vec![1], q: vec![1], public_key_fingerprint: 0, encrypted_data: vec![0; 256] };
    raw.send(&wire::build_plain(now_ms() << 20, &bogus.to_bytes())).await;
    assert_eq!(raw.frame().await, ERR_404);
    // a correct req_pq_multi afterwards still gets -404
    raw.send(&wire::build_plain(now_ms() << 20, &functions::ReqPqMulti { nonce: [3; 16] }.to_bytes())).await;
    assert_eq!(raw.frame().await, ERR_404);
    srv.stop().await;
}

#[tokio::test]
async fn tampered_message_closes_silently_and_others_carry_on() {
    let srv = server().await;
    let (mut bad, mut cs) = session(&srv).await;
    let (mut good, mut gs) = session(&srv).await;
    let (_, mut bytes) = cs.encrypt(&ping(9), now_ms());
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // C2: the msg_key no longer matches
    bad.send(&bytes).await;
    bad.assert_closed_without_reply().await;
    // the other client is unaffected
    let (_, msgs) = call(&mut good, &mut gs, &ping(10)).await;
    assert!(has_pong(&msgs));
    srv.stop().await;
}

#[tokio::test]
async fn msg_id_window_parity_and_replay() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    let (first, msgs) = call(&mut raw, &mut cs, &ping(1)).await;
    assert!(has_pong(&msgs));
    // C6: 301 s in the past → 16; 31 s in the future → 17
    for (offset, code) in [(-301_000, 16), (31_000, 17)] {
        let id = ((now_ms() + offset) / 1000) << 32 | 4;
        raw.send(&cs.encrypt_raw(cs.salt, id, 101, &ping(2))).await;
        let (_, b) = cs.decrypt(&raw.frame().await).unwrap();
        assert_eq!(bad_msg_codes(&messages(b)), vec![code]);
    }
    // C5: msg_id not divisible by 4 → 18
    let id = cs.next_msg_id(now_ms()) | 1;
    raw.send(&cs.encrypt_raw(cs.salt, id, 103, &ping(3))).await;
    let (_, b) = cs.decrypt(&raw.frame().await).unwrap();
    assert_eq!(bad_msg_codes(&messages(b)), vec![18]);
    // C10: a content-related message with an even seq_no → 35 (service messages such as
    // ping are accepted either way, as Telegram accepts them from TDLib)
    let id = cs.next_msg_id(now_ms());
    raw.send(&cs.encrypt_raw(cs.salt, id, 200, &functions::help::GetNearestDc {}.to_bytes())).await;
    let (_, b) = cs.decrypt(&raw.frame().await).unwrap();
    assert_eq!(bad_msg_codes(&messages(b)), vec![35]);
    // C7: replaying an already processed msg_id is ignored (no answer at all): the answer to
    // a later ping is the next thing the connection carries.
    raw.send(&cs.encrypt_raw(cs.salt, first, 1, &ping(1))).await;
    let (marker, msgs) = call(&mut raw, &mut cs, &ping(99)).await;
    let pongs: Vec<(i64, i64)> = msgs.iter().filter_map(|m| enums::Pong::from_bytes(m).ok()).map(|enums::Pong::Pong(p)| (p.msg_id, p.ping_id)).collect();
    assert_eq!(pongs, vec![(marker, 99)], "only the later ping is answered");
    srv.stop().await;
}

#[tokio::test]
async fn rpc_errors_are_named() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    // before login: 401 AUTH_KEY_UNREGISTERED
    let get_self = functions::users::GetUsers { id: vec![enums::InputUser::UserSelf] }.to_bytes();
    let (id, msgs) = call(&mut raw, &mut cs, &get_self).await;
    assert_eq!(rpc_error_of(&msgs, id), (401, "AUTH_KEY_UNREGISTERED".into()));
    // a known method we do not implement names itself
    let (id, msgs) = call(&mut raw, &mut cs, &functions::help::GetCdnConfig {}.to_bytes()).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "METHOD_NOT_IMPLEMENTED_HELP_GETCDNCONFIG".into()));
    // an id that is no method at all
    let (id, msgs) = call(&mut raw, &mut cs, &0x0badf00du32.to_le_bytes()).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_METHOD_INVALID_0BADF00D".into()));
    // a known method whose body does not parse (auth.sendCode cut after its id)
    let (id, msgs) = call(&mut raw, &mut cs, &0xa677244fu32.to_le_bytes()).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_FETCH_ERROR".into()));
    // a bare help.getConfig answers with the config
    let (id, msgs) = call(&mut raw, &mut cs, &functions::help::GetConfig {}.to_bytes()).await;
    let res = msgs.iter().find(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == id.to_le_bytes()).expect("an rpc_result");
    let mut body = res[12..].to_vec();
    if wire::constructor_id(&body) == Some(wire::GZIP_PACKED) {
        body = wire::gunzip_bounded(&body[4..], wire::MAX_INFLATED).unwrap();
    }
    assert!(matches!(enums::Config::from_bytes(&body), Ok(enums::Config::Config(c)) if c.this_dc == 1), "a config, not an error");
    // invokeWithLayer(initConnection(help.getConfig)) answers the config
    let init = init_connection(1, ["dev", "os", "1.0", "en", "", "en"], &functions::help::GetConfig {}.to_bytes());
    let (id, msgs) = call(&mut raw, &mut cs, &init).await;
    let res = msgs.iter().find(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == id.to_le_bytes()).unwrap();
    let mut body = res[12..].to_vec();
    if wire::constructor_id(&body) == Some(wire::GZIP_PACKED) {
        body = wire::gunzip_bounded(&body[4..], wire::MAX_INFLATED).unwrap();
    }
    let enums::Config::Config(cfg) = enums::Config::from_bytes(&body).unwrap();
    assert_eq!(cfg.this_dc, 1);
    srv.stop().await;
}

#[tokio::test]
async fn gzip_bomb_is_refused_and_container_flood_gets_429() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    // S6: 1 KiB that inflates past the limit → INPUT_REQUEST_TOO_LONG, connection stays usable
    let bomb = wire::gzip_if_smaller(vec![0u8; 16 << 20]);
    assert!(bomb.len() < 200_000);
    let (id, msgs) = call(&mut raw, &mut cs, &bomb).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_REQUEST_TOO_LONG".into()));
    let (_, msgs) = call(&mut raw, &mut cs, &ping(1)).await;
    assert!(has_pong(&msgs));
    // C11/C13: a container of 1025 messages → transport -429, then close
    let inner: Vec<wire::InnerMessage> = (0..1025)
        .map(|_| {
            let id = cs.next_msg_id(now_ms());
            wire::InnerMessage { msg_id: id, seq_no: cs.next_seq(true), body: ping(2) }
        })
        .collect();
    let cid = cs.next_msg_id(now_ms());
    let seq = cs.next_seq(false);
    raw.send(&cs.encrypt_raw(cs.salt, cid, seq, &wire::container(&inner))).await;
    assert_eq!(raw.frame().await, (-429i32).to_le_bytes());
    raw.assert_closed_without_reply().await;
    srv.stop().await;
}

#[tokio::test]
async fn ping_delay_disconnect_closes_when_no_ping_follows() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    let body = functions::PingDelayDisconnect { ping_id: 77, disconnect_delay: 1 }.to_bytes();
    let (id, msgs) = call(&mut raw, &mut cs, &body).await;
    let pong = msgs.iter().find_map(|m| enums::Pong::from_bytes(m).ok()).expect("pong");
    let enums::Pong::Pong(p) = pong;
    assert_eq!((p.msg_id, p.ping_id), (id, 77));
    // no further ping within the delay: the server closes the connection
    raw.assert_closed_without_reply().await;
    srv.stop().await;
}

#[tokio::test]
async fn padded_intermediate_carries_a_whole_session() {
    let srv = server().await;
    let (mut raw, mut cs) = session_with(&srv, true).await;
    let (_, msgs) = call(&mut raw, &mut cs, &ping(2)).await;
    assert!(has_pong(&msgs));
    srv.stop().await;
}

#[tokio::test]
async fn init_connection_is_kept_per_auth_key() {
    use herald_domain::store::AuthKeyStore;
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    let init = init_connection(4242, ["Pixel", "Android 15", "9.9", "de", "android", "de"], &functions::help::GetNearestDc {}.to_bytes());
    call(&mut raw, &mut cs, &init).await;
    let rec = srv.store().get_key(cs.key.id()).await.unwrap().unwrap();
    let info = rec.client.expect("initConnection data stored with the key");
    assert_eq!((info.layer, info.api_id, info.device_model.as_str(), info.lang_code.as_str()), (227, 4242, "Pixel", "de"));
    srv.stop().await;
}

#[tokio::test]
async fn key_exchange_for_another_dc_gets_444() {
    let srv = server().await;
    let mut raw = Raw::connect(srv.addr).await;
    let mut c = ClientHandshake::new(&srv.rsa, 77, false);
    c.dc = Some(5); // this server is DC 1
    let r = raw.plain(&c.req_pq()).await;
    raw.send(&wire::build_plain(now_ms() << 20, &c.req_dh(&r))).await;
    assert_eq!(raw.frame().await, (-444i32).to_le_bytes());
    raw.assert_closed_without_reply().await;
    srv.stop().await;
}

/// Signs a fresh test number up on this session (test phones: 99966XYYYY, code XXXXX).
async fn log_in(raw: &mut Raw, cs: &mut ClientSession) {
    let phone = format!("999664{:04}", SEED.fetch_add(1, Ordering::SeqCst) % 10_000);
    let send = herald_mtproto::testing::send_code(&phone);
    let (id, msgs) = call(raw, cs, &send.to_bytes()).await;
    let hash = msgs
        .iter()
        .find(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == id.to_le_bytes())
        .map(|m| match enums::auth::SentCode::from_bytes(&m[12..]).expect("auth.sentCode") {
            enums::auth::SentCode::Code(c) => c.phone_code_hash,
            other => panic!("{other:?}"),
        })
        .unwrap();
    let sign_in =
        functions::auth::SignIn { phone_number: phone.clone(), phone_code_hash: hash.clone(), phone_code: Some("44444".into()), email_verification: None };
    call(raw, cs, &sign_in.to_bytes()).await;
    let sign_up = functions::auth::SignUp {
        no_joined_notifications: false,
        phone_number: phone,
        phone_code_hash: hash,
        first_name: "Wire".into(),
        last_name: String::new(),
    };
    call(raw, cs, &sign_up.to_bytes()).await;
    let get_self = functions::users::GetUsers { id: vec![enums::InputUser::UserSelf] }.to_bytes();
    let (id, msgs) = call(raw, cs, &get_self).await;
    assert!(msgs.iter().any(|m| m[4..12] == id.to_le_bytes() && wire::constructor_id(&m[12..]) == Some(wire::VECTOR)), "logged in");
}

#[tokio::test]
async fn deeply_nested_request_is_refused_without_crashing() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    log_in(&mut raw, &mut cs).await;
    // messages.getHistory whose peer is inputPeerUserFromMessage nested 200 000 times,
    // gzipped to fit in a frame: decoded naively it overflows the stack and aborts.
    let mut deep = 0x4423e6c5u32.to_le_bytes().to_vec();
    for _ in 0..200_000 {
        deep.extend_from_slice(&0xa87b0a1cu32.to_le_bytes());
    }
    let (id, msgs) = call(&mut raw, &mut cs, &wire::gzip_if_smaller(deep)).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_FETCH_ERROR".into()));
    let (_, msgs) = call(&mut raw, &mut cs, &ping(1)).await;
    assert!(has_pong(&msgs));
    srv.stop().await;
}

// ---- The front door (docs/security.md §3): one address cannot lock others out.

const ERR_429: [u8; 4] = (-429i32).to_le_bytes();
const ATTACKER: [u8; 4] = [127, 0, 0, 2];
const VICTIM: [u8; 4] = [127, 0, 0, 3];

async fn server_with(f: impl FnOnce(&mut Config)) -> herald::Running {
    let mut c = config();
    f(&mut c);
    herald::start(&c).await.unwrap()
}

/// A logged-out session over `raw`, salt already right.
async fn session_over(mut raw: Raw, rsa: &herald_mtproto::rsa::RsaKey) -> (Raw, ClientSession) {
    let key = handshake(&mut raw, rsa, false).await;
    let mut cs = ClientSession::new(key, SEED.fetch_add(1, Ordering::SeqCst) as i64);
    let (_, bytes) = cs.encrypt(&ping(1), now_ms());
    raw.send(&bytes).await;
    let (_, body) = cs.decrypt(&raw.frame().await).unwrap();
    let enums::BadMsgNotification::BadServerSalt(b) = enums::BadMsgNotification::from_bytes(&body).unwrap() else { panic!() };
    cs.salt = b.new_server_salt;
    (raw, cs)
}

/// Another address gets a full key exchange and a ping answered.
async fn assert_others_served(srv: &herald::Running) {
    let (mut raw, mut cs) = session_over(Raw::connect_from(srv.addr, VICTIM).await, &srv.rsa).await;
    assert!(has_pong(&call(&mut raw, &mut cs, &ping(3)).await.1));
}

/// A plain req_pq_multi: the one valid frame a cheap flood sends.
fn req_pq() -> Vec<u8> {
    wire::build_plain(now_ms() << 20, &functions::ReqPqMulti { nonce: [7; 16] }.to_bytes())
}

#[tokio::test]
async fn attack_1_connection_flood_from_one_address_leaves_others_served() {
    let srv = server_with(|c| {
        c.max_connections_per_addr = 20;
        c.max_unauthenticated_per_addr = 10;
    })
    .await;
    // The attacker holds connections that each sent one valid frame.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut raw = Raw::connect_from(srv.addr, ATTACKER).await;
        raw.send(&req_pq()).await;
        raw.frame().await;
        held.push(raw);
    }
    // Beyond its unauthenticated allowance: -429 in its framing, then close.
    for _ in 0..3 {
        let mut raw = Raw::connect_from(srv.addr, ATTACKER).await;
        assert_eq!(raw.frame().await, ERR_429);
        raw.assert_closed_without_reply().await;
    }
    assert_others_served(&srv).await;
    // Refusals are counted.
    let text = srv.gateway.render_metrics();
    assert!(text.contains(r#"herald_connections_refused_total{reason="unauthenticated_per_address"} 3"#), "{text}");
    srv.stop().await;
}

#[tokio::test]
async fn attack_1_partial_frames_are_bounded_in_bytes_and_time() {
    let srv = server_with(|c| {
        c.max_buffered_per_addr = 3 << 19;
        c.frame_timeout_secs = 3;
        c.init_timeout_secs = 30;
        c.idle_timeout_secs = 60;
    })
    .await;
    // Each connection starts a 1 MiB frame; the address's budget allows about one.
    let mut refused = 0;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut raw = Raw::connect_from(srv.addr, ATTACKER).await;
        raw.s.write_all(&(1u32 << 20).to_le_bytes()).await.unwrap();
        let _ = raw.s.write_all(&vec![0x5a; 700 * 1024]).await;
        if let Got::Frame(f) = raw.recv(700).await {
            assert_eq!(f, ERR_429);
            refused += 1;
        }
        conns.push(raw);
    }
    assert_eq!(refused, 2, "only the first partial frame fits the address's budget");
    // The one that fits may not stall: closed once frame_timeout passes (not idle_timeout).
    let started = std::time::Instant::now();
    assert!(matches!(conns[0].recv(5000).await, Got::Closed));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(srv.gateway.render_metrics().contains("herald_partial_frame_timeouts_total 1"));
    assert_others_served(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn attack_2_sessions_of_one_address_cannot_fill_the_registry() {
    let srv = server_with(|c| {
        c.max_sessions = 40;
        c.max_sessions_per_addr = 10;
    })
    .await;
    let (mut victim, mut vs) = session_over(Raw::connect_from(srv.addr, VICTIM).await, &srv.rsa).await;
    assert!(has_pong(&call(&mut victim, &mut vs, &ping(1)).await.1));
    // The attacker opens sessions far past every cap, on a few keys.
    for _ in 0..3 {
        let (mut raw, mut cs) = session_over(Raw::connect_from(srv.addr, ATTACKER).await, &srv.rsa).await;
        for _ in 0..30 {
            cs.session_id = SEED.fetch_add(1, Ordering::SeqCst) as i64;
            assert!(has_pong(&call(&mut raw, &mut cs, &ping(2)).await.1));
        }
    }
    assert!(srv.gateway.sessions.count_for([127, 0, 0, 2].into()) <= 10);
    // The victim's session is still there (no new_session_created), and new ones work.
    let (_, msgs) = call(&mut victim, &mut vs, &ping(4)).await;
    assert!(has_pong(&msgs) && !msgs.iter().any(|m| enums::NewSession::from_bytes(m).is_ok()));
    vs.session_id += 1;
    assert!(has_pong(&call(&mut victim, &mut vs, &ping(5)).await.1));
    srv.stop().await;
}

#[tokio::test]
async fn attack_3_init_connection_strings_are_cut_and_container_answers_bounded() {
    use herald_domain::store::AuthKeyStore;
    let srv = server_with(|c| c.max_answer_bytes = 1024).await;
    let (mut raw, mut cs) = session(&srv).await;
    // 900 KB of device model: what is kept is at most 128 bytes.
    let huge = "x".repeat(900_000);
    let init = init_connection(1, [&huge, "os", "1.0", "en", "", "en"], &functions::help::GetNearestDc {}.to_bytes());
    let (id, msgs) = call(&mut raw, &mut cs, &wire::gzip_if_smaller(init)).await;
    assert!(msgs.iter().any(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == id.to_le_bytes()));
    let kept = srv.store().get_key(cs.key.id()).await.unwrap().unwrap().client.unwrap();
    assert_eq!(kept.device_model.len(), herald_rpc::dispatch::MAX_CLIENT_STRING);
    // A container of 20 help.getConfig (a few hundred bytes each): past 1 KB of answers the
    // rest are refused with FLOOD_WAIT_1, not run.
    let inner: Vec<wire::InnerMessage> = (0..20)
        .map(|_| wire::InnerMessage { msg_id: cs.next_msg_id(now_ms()), seq_no: cs.next_seq(true), body: functions::help::GetConfig {}.to_bytes() })
        .collect();
    let ids: Vec<i64> = inner.iter().map(|m| m.msg_id).collect();
    let (cid, seq) = (cs.next_msg_id(now_ms()), cs.next_seq(false));
    raw.send(&cs.encrypt_raw(cs.salt, cid, seq, &wire::container(&inner))).await;
    let mut answered = std::collections::HashMap::new();
    while answered.len() < ids.len() {
        let (_, body) = cs.decrypt(&raw.frame().await).unwrap();
        for m in messages(body) {
            if wire::constructor_id(&m) == Some(wire::RPC_RESULT) {
                let req = i64::from_le_bytes(m[4..12].try_into().unwrap());
                answered.insert(req, enums::RpcError::from_bytes(&m[12..]).ok());
            }
        }
    }
    let refused =
        ids.iter().filter(|id| matches!(&answered[id], Some(enums::RpcError::Error(e)) if e.error_code == 420 && e.error_message == "FLOOD_WAIT_1")).count();
    assert!((1..20).contains(&(20 - refused)), "a few answered, the rest refused: {refused} refused");
    srv.stop().await;
}

#[tokio::test]
async fn attack_4_key_exchanges_are_rate_limited_per_address() {
    let srv = server_with(|c| {
        c.key_exchanges_per_sec = 1.0;
        c.key_exchange_burst = 2.0;
    })
    .await;
    // First, what the other address's exchange takes on this machine with no attack.
    let started = std::time::Instant::now();
    let _ = session_over(Raw::connect_from(srv.addr, VICTIM).await, &srv.rsa).await;
    let alone = started.elapsed();
    // One after another, exchanges are paced to the rate (waited for, not refused)...
    let started = std::time::Instant::now();
    let exchange = |addr: std::net::SocketAddr, rsa: Arc<herald_mtproto::rsa::RsaKey>| async move {
        let mut raw = Raw::connect_from(addr, ATTACKER).await;
        let mut c = ClientHandshake::new(&rsa, SEED.fetch_add(1, Ordering::SeqCst), false);
        let r = raw.plain(&c.req_pq()).await;
        raw.send(&wire::build_plain(now_ms() << 20, &c.req_dh(&r))).await;
        // The server may hold an exchange for up to 5 s before it starts (the pacing's
        // longest wait, `MAX_TOKEN_WAIT` in herald-net), and exchanges from one address run one
        // at a time: on a loaded machine an answer comes well after `frame`'s 5 s.
        match raw.recv(20_000).await {
            Got::Frame(f) => f == ERR_429,
            Got::Closed => panic!("connection closed"),
            Got::Silence => panic!("no answer within 20 s"),
        }
    };
    for _ in 0..4 {
        assert!(!exchange(srv.addr, srv.rsa.clone()).await);
    }
    assert!(started.elapsed() >= Duration::from_millis(1800), "{:?}", started.elapsed());
    // ...and a burst beyond what a short wait covers is refused with -429, while another
    // address's exchange, started in the middle of it, is not held up by it.
    let burst: Vec<_> = (0..10).map(|_| tokio::spawn(exchange(srv.addr, srv.rsa.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let _ = session_over(Raw::connect_from(srv.addr, VICTIM).await, &srv.rsa).await;
    let victim = started.elapsed();
    let mut refused = 0;
    for b in burst {
        refused += b.await.unwrap() as usize;
    }
    assert!(refused >= 3, "{refused} of 10 refused");
    // Compared with the same exchange alone, not with a fixed time: on a loaded 2-core
    // machine (tests run in parallel) one exchange has taken a second by itself.
    assert!(victim < alone * 3 + Duration::from_millis(500), "the other address waited {victim:?} (alone: {alone:?})");
    srv.stop().await;
}

fn update_profile(first: &str) -> Vec<u8> {
    functions::account::UpdateProfile { first_name: Some(first.into()), last_name: None, about: None }.to_bytes()
}

async fn first_name(raw: &mut Raw, cs: &mut ClientSession) -> String {
    let get_self = functions::users::GetUsers { id: vec![enums::InputUser::UserSelf] }.to_bytes();
    let (id, msgs) = call(raw, cs, &get_self).await;
    let m = msgs.iter().find(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == id.to_le_bytes()).unwrap();
    let users = Vec::<enums::User>::from_bytes(&m[12..]).unwrap();
    match &users[0] {
        enums::User::User(u) => u.first_name.clone().unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn attack_5_captured_ciphertext_does_not_run_again_after_a_restart() {
    let c = config();
    let srv = herald::start(&c).await.unwrap();
    let (mut raw, mut cs) = session(&srv).await;
    log_in(&mut raw, &mut cs).await;
    // Captured: a profile edit, then the owner changes the name again.
    let (_, captured) = cs.encrypt(&update_profile("Old"), now_ms());
    raw.send(&captured).await;
    raw.frame().await;
    call(&mut raw, &mut cs, &update_profile("New")).await;
    srv.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The same data directory, a new process: the replay gets 16 and changes nothing.
    let c2 = Config { listen: "127.0.0.1:0".parse().unwrap(), ..c };
    let srv = herald::start(&c2).await.unwrap();
    let mut raw = Raw::connect(srv.addr).await;
    raw.send(&captured).await;
    let (_, body) = cs.decrypt(&raw.frame().await).unwrap();
    assert_eq!(bad_msg_codes(&messages(body)), vec![16]);
    assert_eq!(first_name(&mut raw, &mut cs).await, "New");
    srv.stop().await;
}

#[tokio::test]
async fn attack_5_captured_ciphertext_does_not_run_again_after_destroy_session() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    log_in(&mut raw, &mut cs).await;
    let (_, captured) = cs.encrypt(&update_profile("Old"), now_ms());
    raw.send(&captured).await;
    raw.frame().await;
    call(&mut raw, &mut cs, &update_profile("New")).await;
    // From another session of the key, the first one is destroyed.
    let old_session = cs.session_id;
    cs.session_id += 1000;
    let (_, msgs) = call(&mut raw, &mut cs, &functions::DestroySession { session_id: old_session }.to_bytes()).await;
    assert!(msgs.iter().any(|m| matches!(enums::DestroySessionRes::from_bytes(m), Ok(enums::DestroySessionRes::DestroySessionOk(_)))));
    // Replayed into the destroyed session's id: refused with 16, nothing changes.
    raw.send(&captured).await;
    let f = raw.frame().await;
    cs.session_id = old_session;
    let (_, body) = cs.decrypt(&f).unwrap();
    assert_eq!(bad_msg_codes(&messages(body)), vec![16]);
    cs.session_id += 1000;
    assert_eq!(first_name(&mut raw, &mut cs).await, "New");
    srv.stop().await;
}

#[tokio::test]
async fn types_sent_as_requests_are_invalid_methods_and_the_first_salt_is_accepted() {
    let srv = server().await;
    // The key exchange's salt works for the first message (no bad_server_salt round trip).
    let mut raw = Raw::connect(srv.addr).await;
    let mut c = ClientHandshake::new(&srv.rsa, SEED.fetch_add(1, Ordering::SeqCst), false);
    let r = raw.plain(&c.req_pq()).await;
    let r = raw.plain(&c.req_dh(&r)).await;
    let r = raw.plain(&c.set_dh(&r)).await;
    let mut cs = ClientSession::new(c.finish(&r), 5);
    cs.salt = c.first_salt();
    let (_, msgs) = call(&mut raw, &mut cs, &ping(1)).await;
    assert!(has_pong(&msgs) && bad_msg_codes(&msgs).is_empty());
    // boolTrue is a type, not a method: an invalid method, not an unimplemented one.
    let (id, msgs) = call(&mut raw, &mut cs, &0x997275b5u32.to_le_bytes()).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_METHOD_INVALID_997275B5".into()));
    // inputPeerSelf likewise
    let (id, msgs) = call(&mut raw, &mut cs, &0x7da07ec9u32.to_le_bytes()).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_METHOD_INVALID_7DA07EC9".into()));
    srv.stop().await;
}

// ---- Invariants ARCHITECTURE.md lists, each shown.

#[tokio::test]
async fn the_connection_cap_answers_429() {
    let srv = server_with(|c| {
        c.max_connections = 2;
        c.init_timeout_secs = 30;
    })
    .await;
    let (mut a, mut sa) = session(&srv).await;
    let _b = Raw::connect(srv.addr).await;
    let mut c = Raw::connect(srv.addr).await;
    assert_eq!(c.frame().await, ERR_429);
    c.assert_closed_without_reply().await;
    assert!(has_pong(&call(&mut a, &mut sa, &ping(1)).await.1), "held connections are unaffected");
    srv.stop().await;
}

#[tokio::test]
async fn a_connection_gets_eight_key_exchanges() {
    let srv = server().await;
    let mut raw = Raw::connect(srv.addr).await;
    for _ in 0..8 {
        handshake(&mut raw, &srv.rsa, false).await;
    }
    raw.send(&req_pq()).await;
    assert_eq!(raw.frame().await, ERR_429);
    srv.stop().await;
}

#[tokio::test]
async fn invoke_wrappers_nested_too_deep_are_refused() {
    let srv = server().await;
    let (mut raw, mut cs) = session(&srv).await;
    // invokeWithoutUpdates nine times around help.getNearestDc
    let mut body = Vec::new();
    for _ in 0..=herald_rpc::dispatch::MAX_WRAPPERS {
        body.extend_from_slice(&0xbf9459b7u32.to_le_bytes());
    }
    body.extend_from_slice(&functions::help::GetNearestDc {}.to_bytes());
    let (id, msgs) = call(&mut raw, &mut cs, &body).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INVOKE_TOO_DEEP".into()));
    srv.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let srv = server_with(|c| c.write_timeout_secs = 1).await;
    // A client with a small receive buffer, so that what the server writes fills it quickly.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(srv.addr).await.unwrap();
    s.write_all(&[0xee; 4]).await.unwrap();
    let (mut raw, mut cs) = session_over(Raw { s, padded: false }, &srv.rsa).await;
    // Containers of help.getConfig whose answers are never read: megabytes, more than the
    // socket buffers hold, so the server's writes block.
    for _ in 0..20 {
        let inner: Vec<wire::InnerMessage> = (0..1000)
            .map(|_| wire::InnerMessage { msg_id: cs.next_msg_id(now_ms()), seq_no: cs.next_seq(true), body: functions::help::GetConfig {}.to_bytes() })
            .collect();
        let (cid, seq) = (cs.next_msg_id(now_ms()), cs.next_seq(false));
        if raw
            .s
            .write_all(&{
                let p = cs.encrypt_raw(cs.salt, cid, seq, &wire::container(&inner));
                let mut f = (p.len() as u32).to_le_bytes().to_vec();
                f.extend_from_slice(&p);
                f
            })
            .await
            .is_err()
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Now read: what was sent before the timeout, then the end of the connection.
    let closed = timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match raw.s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the server closed the connection");
    srv.stop().await;
}

/// invokeAfterMsg(msg_id, query).
fn invoke_after(msg_id: i64, query: &[u8]) -> Vec<u8> {
    let mut b = 0xcb9f372du32.to_le_bytes().to_vec();
    b.extend_from_slice(&msg_id.to_le_bytes());
    b.extend_from_slice(query);
    b
}

/// Sends `bodies` in one container under the given msg_ids (from `cs.next_msg_id`, so a
/// request can name an earlier one); returns the ids.
async fn send_container(raw: &mut Raw, cs: &mut ClientSession, bodies: &[(i64, Vec<u8>)]) -> Vec<i64> {
    let inner: Vec<wire::InnerMessage> = bodies.iter().map(|(id, b)| wire::InnerMessage { msg_id: *id, seq_no: cs.next_seq(true), body: b.clone() }).collect();
    let ids = inner.iter().map(|m| m.msg_id).collect();
    let (cid, seq) = (cs.next_msg_id(now_ms()), cs.next_seq(false));
    raw.send(&cs.encrypt_raw(cs.salt, cid, seq, &wire::container(&inner))).await;
    ids
}

/// The next `rpc_result`s to arrive, as (request msg_id, result), in arrival order; None when
/// nothing arrives within `wait_ms`.
async fn next_results(raw: &mut Raw, cs: &mut ClientSession, wait_ms: u64) -> Option<Vec<(i64, Vec<u8>)>> {
    loop {
        let Got::Frame(f) = raw.recv(wait_ms).await else { return None };
        let (_, body) = cs.decrypt(&f).unwrap();
        let results: Vec<_> = messages(body)
            .into_iter()
            .filter(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT))
            .map(|m| (i64::from_le_bytes(m[4..12].try_into().unwrap()), m[12..].to_vec()))
            .collect();
        if !results.is_empty() {
            return Some(results);
        }
    }
}

/// Holds SQLite's write lock on the server's database, so that every write the server
/// tries waits (its busy timeout is 5 s) until the guard is dropped; reads go on (WAL).
fn hold_write_lock(cfg: &Config) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(cfg.data_dir.join("herald.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    db
}

#[tokio::test]
async fn requests_on_one_connection_run_concurrently() {
    let cfg = config();
    let srv = herald::start(&cfg).await.unwrap();
    let (mut raw, mut cs) = session(&srv).await;
    // sendCode writes (and so waits for the lock); getConfig only reads.
    let lock = hold_write_lock(&cfg);
    let (a, b) = (cs.next_msg_id(now_ms()), cs.next_msg_id(now_ms()));
    let ids =
        send_container(&mut raw, &mut cs, &[(a, herald_mtproto::testing::send_code("9996612345").to_bytes()), (b, functions::help::GetConfig {}.to_bytes())])
            .await;
    // The read is answered while the write still waits: before, it queued behind it.
    let first = next_results(&mut raw, &mut cs, 4000).await.expect("getConfig answered while sendCode waits");
    assert_eq!(first.iter().map(|r| r.0).collect::<Vec<_>>(), vec![ids[1]]);
    assert!(enums::Config::from_bytes(&first[0].1).is_ok());
    drop(lock);
    let second = next_results(&mut raw, &mut cs, 5000).await.expect("sendCode answered once the lock is gone");
    assert_eq!(second[0].0, ids[0]);
    assert!(enums::auth::SentCode::from_bytes(&second[0].1).is_ok(), "sendCode succeeded after waiting");
    srv.stop().await;
}

#[tokio::test]
async fn invoke_after_msg_orders_requests_and_reports_failures() {
    let cfg = config();
    let srv = herald::start(&cfg).await.unwrap();
    let (mut raw, mut cs) = session(&srv).await;
    // B waits for A even though A is slow and B would be instant.
    let lock = hold_write_lock(&cfg);
    let (a, b) = (cs.next_msg_id(now_ms()), cs.next_msg_id(now_ms()));
    let ids = send_container(
        &mut raw,
        &mut cs,
        &[(a, herald_mtproto::testing::send_code("9996612346").to_bytes()), (b, invoke_after(a, &functions::help::GetConfig {}.to_bytes()))],
    )
    .await;
    assert!(next_results(&mut raw, &mut cs, 500).await.is_none(), "B must not be answered before A");
    drop(lock);
    let mut order = vec![];
    while order.len() < 2 {
        order.extend(next_results(&mut raw, &mut cs, 5000).await.expect("both answered").into_iter().map(|r| r.0));
    }
    assert_eq!(order, ids, "A then B");
    // A request that waits for a failed one fails with MSG_WAIT_FAILED without running:
    // getDialogs needs a login.
    let get_dialogs = functions::messages::GetDialogs {
        exclude_pinned: false,
        folder_id: None,
        offset_date: 0,
        offset_id: 0,
        offset_peer: enums::InputPeer::Empty,
        limit: 1,
        hash: 0,
    }
    .to_bytes();
    let (failed, b) = (cs.next_msg_id(now_ms()), cs.next_msg_id(now_ms()));
    let ids = send_container(&mut raw, &mut cs, &[(failed, get_dialogs), (b, invoke_after(failed, &functions::help::GetConfig {}.to_bytes()))]).await;
    let mut results = std::collections::HashMap::new();
    while results.len() < 2 {
        results.extend(next_results(&mut raw, &mut cs, 5000).await.expect("both answered"));
    }
    let error = |id: i64| match enums::RpcError::from_bytes(&results[&id]) {
        Ok(enums::RpcError::Error(e)) => (e.error_code, e.error_message),
        _ => panic!("an rpc_error"),
    };
    assert_eq!(error(ids[0]), (401, "AUTH_KEY_UNREGISTERED".into()));
    assert_eq!(error(ids[1]), (400, "MSG_WAIT_FAILED".into()));
    // Waiting for more than 64 msg_ids is refused; the connection goes on.
    let mut many = 0x3dc4b4f0u32.to_le_bytes().to_vec(); // invokeAfterMsgs
    many.extend_from_slice(&wire::VECTOR.to_le_bytes());
    many.extend_from_slice(&65u32.to_le_bytes());
    for i in 0..65i64 {
        many.extend_from_slice(&(i * 4).to_le_bytes());
    }
    many.extend_from_slice(&functions::help::GetConfig {}.to_bytes());
    let (id, msgs) = call(&mut raw, &mut cs, &many).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "INPUT_REQUEST_TOO_LONG".into()));
    let (_, msgs) = call(&mut raw, &mut cs, &ping(9)).await;
    assert!(has_pong(&msgs));
    srv.stop().await;
}

#[tokio::test]
async fn a_connection_runs_at_most_sixteen_requests_and_reads_no_further() {
    let cfg = config();
    let srv = herald::start(&cfg).await.unwrap();
    let (mut raw, mut cs) = session(&srv).await;
    log_in(&mut raw, &mut cs).await;
    // 16 sends to Saved Messages, each waiting for the write lock, fill the connection.
    let lock = hold_write_lock(&cfg);
    let sends: Vec<(i64, Vec<u8>)> = (0..16)
        .map(|i| (cs.next_msg_id(now_ms()), herald_mtproto::testing::send_message(&enums::InputPeer::PeerSelf, format!("n{i}"), 1000 + i).to_bytes()))
        .collect();
    let ids = send_container(&mut raw, &mut cs, &sends).await;
    // A read sent after them is not even read while they run.
    let (config_id, bytes) = cs.encrypt(&functions::help::GetConfig {}.to_bytes(), now_ms());
    raw.send(&bytes).await;
    assert!(next_results(&mut raw, &mut cs, 700).await.is_none(), "nothing answered while the 16 wait");
    drop(lock);
    let mut order = vec![];
    while order.len() < 17 {
        order.extend(next_results(&mut raw, &mut cs, 5000).await.expect("all answered").into_iter().map(|r| r.0));
    }
    let mut sorted = order.clone();
    sorted.sort();
    let mut expected = ids.clone();
    expected.push(config_id);
    expected.sort();
    assert_eq!(sorted, expected, "each request answered once");
    assert_ne!(order[0], config_id, "the read came after a slot freed");
    srv.stop().await;
}

/// An `auth.bindTempAuthKey` for the temporary session `cs`, sealed with `perm` (MTProto 1.0),
/// with the inner message's fields as given; returns the request's msg_id and its answers.
async fn bind_temp(raw: &mut Raw, cs: &mut ClientSession, perm: &AuthKey, inner_msg_id: Option<i64>, expires_at: i32) -> (i64, Vec<Vec<u8>>) {
    let msg_id = cs.next_msg_id(now_ms());
    let nonce = 0x1122_3344_5566_7788;
    let inner = types::BindAuthKeyInner { nonce, temp_auth_key_id: cs.key.id(), perm_auth_key_id: perm.id(), temp_session_id: cs.session_id, expires_at };
    let mut rng = herald_mtproto::rng::SeededRng::new(5);
    let sealed = herald_mtproto::crypto::seal_bind_message(perm, inner_msg_id.unwrap_or(msg_id), &enums::BindAuthKeyInner::Inner(inner).to_bytes(), &mut rng);
    let req = functions::auth::BindTempAuthKey { perm_auth_key_id: perm.id(), nonce, expires_at, encrypted_message: sealed };
    let seq = cs.next_seq(true);
    raw.send(&cs.encrypt_raw(cs.salt, msg_id, seq, &req.to_bytes())).await;
    let (_, body) = cs.decrypt(&raw.frame().await).expect("a server message");
    (msg_id, messages(body))
}

fn is_true(msgs: &[Vec<u8>], req: i64) -> bool {
    msgs.iter().any(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == req.to_le_bytes() && m[12..16] == 0x997275b5u32.to_le_bytes())
}

/// Perfect forward secrecy as TDLib does it: a temporary key is bound to a logged-in
/// permanent key and then acts as it, on this connection and on new ones; the inner message
/// must match the request it rides in; `dropTempAuthKeys` ends the binding.
#[tokio::test]
async fn temporary_keys_bind_to_permanent_ones() {
    let srv = server().await;
    let (mut raw, mut perm) = session(&srv).await;
    log_in(&mut raw, &mut perm).await;
    let get_self = functions::users::GetUsers { id: vec![enums::InputUser::UserSelf] }.to_bytes();
    let logged_in = |msgs: &[Vec<u8>], id: i64| {
        msgs.iter().any(|m| {
            let answer = match wire::constructor_id(&m[12..]) {
                Some(wire::GZIP_PACKED) => wire::gunzip_bounded(&m[16..], 1 << 20).unwrap_or_default(),
                _ => m[12..].to_vec(),
            };
            m[4..12] == id.to_le_bytes() && wire::constructor_id(&answer) == Some(wire::VECTOR)
        })
    };

    // A temporary key: not logged in by itself.
    let mut traw = Raw::connect(srv.addr).await;
    let mut c = ClientHandshake::new(&srv.rsa, SEED.fetch_add(1, Ordering::SeqCst), true).temporary(3600);
    let r = traw.plain(&c.req_pq()).await;
    let r = traw.plain(&c.req_dh(&r)).await;
    let r = traw.plain(&c.set_dh(&r)).await;
    let temp_key = c.finish(&r);
    let mut temp = ClientSession::new(temp_key.clone(), 9090);
    let (_, bytes) = temp.encrypt(&ping(1), now_ms());
    traw.send(&bytes).await;
    let (_, body) = temp.decrypt(&traw.frame().await).unwrap();
    let enums::BadMsgNotification::BadServerSalt(b) = enums::BadMsgNotification::from_bytes(&body).unwrap() else { panic!() };
    temp.salt = b.new_server_salt;
    let (id, msgs) = call(&mut traw, &mut temp, &get_self).await;
    assert_eq!(rpc_error_of(&msgs, id), (401, "AUTH_KEY_UNREGISTERED".into()));

    // The inner message must name this very request.
    let expires = (now_ms() / 1000) as i32 + 3600;
    let (id, msgs) = bind_temp(&mut traw, &mut temp, &perm.key, Some(1), expires).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "ENCRYPTED_MESSAGE_INVALID".into()));
    // A permanent key cannot be bound as a temporary one.
    let (id, msgs) = bind_temp(&mut raw, &mut perm, &temp_key, None, expires).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "TEMP_AUTH_KEY_EMPTY".into()));

    let (id, msgs) = bind_temp(&mut traw, &mut temp, &perm.key, None, expires).await;
    assert!(is_true(&msgs, id), "bound");
    let (id, msgs) = call(&mut traw, &mut temp, &get_self).await;
    assert!(logged_in(&msgs, id), "the temporary key acts as the permanent one");
    let (id, msgs) = bind_temp(&mut traw, &mut temp, &perm.key, None, expires).await;
    assert_eq!(rpc_error_of(&msgs, id), (400, "TEMP_AUTH_KEY_ALREADY_BOUND".into()));
    // TDLib packs the query inside invokeWithLayer/initConnection with gzip_packed.
    let packed = wire::gzip_if_smaller(functions::users::GetUsers { id: vec![enums::InputUser::UserSelf; 200] }.to_bytes());
    assert_eq!(wire::constructor_id(&packed), Some(wire::GZIP_PACKED));
    let (id, msgs) = call(&mut traw, &mut temp, &init_connection(4, ["tdlib", "linux", "1.8.65", "en", "", "en"], &packed)).await;
    assert!(logged_in(&msgs, id), "a gzip_packed query inside initConnection");

    // A new connection with the temporary key is logged in too.
    let mut again = Raw::connect(srv.addr).await;
    let mut temp2 = ClientSession::new(temp_key.clone(), 9191);
    temp2.salt = temp.salt;
    let (id, msgs) = call(&mut again, &mut temp2, &get_self).await;
    assert!(logged_in(&msgs, id));

    // Dropped from the permanent key: the temporary key is unknown from then on.
    let (id, msgs) = call(&mut raw, &mut perm, &functions::auth::DropTempAuthKeys { except_auth_keys: vec![] }.to_bytes()).await;
    assert!(is_true(&msgs, id));
    let mut third = Raw::connect(srv.addr).await;
    let mut temp3 = ClientSession::new(temp_key, 9292);
    temp3.salt = temp.salt;
    let (_, bytes) = temp3.encrypt(&get_self, now_ms());
    third.send(&bytes).await;
    assert_eq!(third.frame().await, ERR_404.to_vec());
    // ...and the connections that were open on it are cut at their next message.
    let (_, bytes) = temp.encrypt(&get_self, now_ms());
    traw.send(&bytes).await;
    assert_eq!(traw.frame().await, ERR_404.to_vec());
}

/// The answer to request `req` among `msgs`, inflated if it came `gzip_packed`.
fn result_of(msgs: &[Vec<u8>], req: i64) -> Option<Vec<u8>> {
    let m = msgs.iter().find(|m| wire::constructor_id(m) == Some(wire::RPC_RESULT) && m[4..12] == req.to_le_bytes())?;
    Some(match wire::constructor_id(&m[12..]) {
        Some(wire::GZIP_PACKED) => wire::gunzip_bounded(&m[16..], 1 << 20).unwrap(),
        _ => m[12..].to_vec(),
    })
}

/// Reads this connection until the answer to `req` (when given) has come and a push holding
/// `marker` (when given) has too; returns every text marker (`hop-…`) pushed on the way.
async fn read_until(raw: &mut Raw, cs: &mut ClientSession, req: Option<i64>, marker: Option<&str>) -> Vec<String> {
    let (mut answered, mut seen) = (req.is_none(), Vec::new());
    while !answered || marker.is_some_and(|m| !seen.iter().any(|s| s == m)) {
        let (_, body) = cs.decrypt(&raw.frame().await).expect("a server message");
        for m in messages(body) {
            if req.is_some_and(|r| result_of(std::slice::from_ref(&m), r).is_some()) {
                answered = true;
                continue;
            }
            let m = match wire::constructor_id(&m) {
                Some(wire::GZIP_PACKED) => wire::gunzip_bounded(&m[4..], 1 << 20).unwrap(),
                _ => m,
            };
            let Ok(enums::Updates::Updates(u)) = enums::Updates::from_bytes(&m) else { continue };
            for up in u.updates {
                if let enums::Update::NewMessage(n) = up {
                    if let enums::Message::Message(msg) = n.message {
                        seen.push(msg.message);
                    }
                }
            }
        }
    }
    seen
}

/// Telegram sends a user's updates to the last active connection of the key, except ones
/// used for file transfers: each update goes out once however many connections the key has
/// (kurigram keeps a media session on the same key and would handle every update twice).
/// Absence is proven by a later marker that the same connection must carry first.
#[tokio::test]
async fn updates_go_to_the_keys_last_active_connection_only() {
    let srv = server().await;
    let get_self = functions::users::GetUsers { id: vec![enums::InputUser::UserSelf] }.to_bytes();
    // Alice, on two connections (two sessions) of one key.
    let (mut a1, mut s1) = session(&srv).await;
    log_in(&mut a1, &mut s1).await;
    let name = format!("hopper{}", SEED.fetch_add(1, Ordering::SeqCst));
    let (id, msgs) = call(&mut a1, &mut s1, &functions::account::UpdateUsername { username: name.clone() }.to_bytes()).await;
    assert!(result_of(&msgs, id).is_some_and(|r| enums::User::from_bytes(&r).is_ok()), "username set");
    let mut a2 = Raw::connect(srv.addr).await;
    let mut s2 = ClientSession::new(s1.key.clone(), 4343);
    s2.salt = s1.salt;
    // Bob finds her by username and writes.
    let (mut b, mut sb) = session(&srv).await;
    log_in(&mut b, &mut sb).await;
    let (id, msgs) = call(&mut b, &mut sb, &functions::contacts::ResolveUsername { username: name, referer: None }.to_bytes()).await;
    let enums::contacts::ResolvedPeer::Peer(resolved) = enums::contacts::ResolvedPeer::from_bytes(&result_of(&msgs, id).unwrap()).unwrap();
    let Some(enums::User::User(alice)) = resolved.users.into_iter().next() else { panic!("no user") };
    let peer = enums::InputPeer::User(types::InputPeerUser { user_id: alice.id, access_hash: alice.access_hash.unwrap() });
    let mut random_id = 1;
    let mut send = async |b: &mut Raw, sb: &mut ClientSession, text: &str| {
        random_id += 1;
        let req = herald_mtproto::testing::send_message(&peer, text.into(), random_id);
        let (id, msgs) = call(b, sb, &req.to_bytes()).await;
        assert!(result_of(&msgs, id).is_some_and(|r| enums::Updates::from_bytes(&r).is_ok()), "sent {text}");
    };

    // The second connection made the last request: it alone carries the message.
    let (id, bytes) = s2.encrypt(&get_self, now_ms());
    a2.send(&bytes).await;
    read_until(&mut a2, &mut s2, Some(id), None).await;
    send(&mut b, &mut sb, "hop-1").await;
    assert_eq!(read_until(&mut a2, &mut s2, None, Some("hop-1")).await, ["hop-1"]);
    // The first takes over with a request; "hop-1" never reached it.
    let (id, bytes) = s1.encrypt(&get_self, now_ms());
    a1.send(&bytes).await;
    read_until(&mut a1, &mut s1, Some(id), None).await;
    send(&mut b, &mut sb, "hop-2").await;
    assert_eq!(read_until(&mut a1, &mut s1, None, Some("hop-2")).await, ["hop-2"]);
    // A file transfer and a request wrapped in invokeWithoutUpdates take nothing over.
    let get_file = functions::upload::GetFile {
        precise: false,
        cdn_supported: false,
        location: enums::InputFileLocation::InputPeerPhotoFileLocation(types::InputPeerPhotoFileLocation {
            big: false,
            peer: enums::InputPeer::PeerSelf,
            photo_id: 1,
        }),
        offset: 0,
        limit: 4096,
    };
    let (id, bytes) = s2.encrypt(&get_file.to_bytes(), now_ms());
    a2.send(&bytes).await;
    let before = read_until(&mut a2, &mut s2, Some(id), None).await;
    let mut quiet = 0xbf9459b7u32.to_le_bytes().to_vec();
    quiet.extend_from_slice(&get_self);
    let (id, bytes) = s2.encrypt(&quiet, now_ms());
    a2.send(&bytes).await;
    let before = [before, read_until(&mut a2, &mut s2, Some(id), None).await].concat();
    send(&mut b, &mut sb, "hop-3").await;
    assert_eq!(read_until(&mut a1, &mut s1, None, Some("hop-3")).await, ["hop-3"]);
    // Back to the second connection: neither "hop-2" nor "hop-3" came to it.
    let (id, bytes) = s2.encrypt(&get_self, now_ms());
    a2.send(&bytes).await;
    let before = [before, read_until(&mut a2, &mut s2, Some(id), None).await].concat();
    send(&mut b, &mut sb, "hop-4").await;
    assert_eq!([before, read_until(&mut a2, &mut s2, None, Some("hop-4")).await].concat(), ["hop-4"]);
    // When the connection carrying the updates goes away, the other subscribed one takes them.
    drop(a2);
    let mut seen = Vec::new();
    for i in 5..40 {
        let text = format!("hop-{i}");
        send(&mut b, &mut sb, &text).await;
        if let Ok(got) = timeout(Duration::from_millis(500), read_until(&mut a1, &mut s1, None, Some(&text))).await {
            seen = got;
            break;
        }
    }
    assert!(!seen.is_empty() && seen.iter().all(|t| !["hop-1", "hop-4"].contains(&t.as_str())), "{seen:?}");
}
