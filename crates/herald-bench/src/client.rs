//! A minimal MTProto client over TCP (intermediate transport): key exchange, an encrypted
//! session, requests matched to their answers, and pushed updates on a channel.

use anyhow::{anyhow, bail, Context, Result};
use grammers_tl_types::{enums, functions, types, Deserializable, RemoteCall};
use herald_mtproto::rsa::RsaPublic;
use herald_mtproto::testing::{ClientHandshake, ClientSession};
use herald_mtproto::wire;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How often a client pings. Real clients ping (Telethon every minute) and acknowledge what
/// they receive; one that only listens is closed by the server's idle timeout (120 s), and a
/// receiver in a long run would miss what is pushed after that.
const KEEPALIVE: Duration = Duration::from_secs(30);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Opens a TCP connection from `src` (a loopback address, so that per-address limits see
/// several clients) and sends the intermediate transport's tag.
pub async fn open(server: SocketAddr, src: Option<IpAddr>) -> Result<TcpStream> {
    let sock = if server.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0)).with_context(|| format!("binding to {ip}"))?;
    }
    let mut s = sock.connect(server).await.with_context(|| format!("connecting to {server}"))?;
    s.set_nodelay(true)?;
    s.write_all(&[0xee; 4]).await?;
    Ok(s)
}

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), payload: &[u8]) -> Result<()> {
    let mut f = Vec::with_capacity(payload.len() + 4);
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    w.write_all(&f).await?;
    Ok(())
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let n = u32::from_le_bytes(len) as usize;
    if n > 8 << 20 {
        bail!("frame of {n} bytes");
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await?;
    if buf.len() == 4 {
        bail!("transport error {}", i32::from_le_bytes(buf[..4].try_into().unwrap()));
    }
    Ok(buf)
}

/// One plain (unencrypted) request of the key exchange and its answer.
async fn plain_exchange(s: &mut TcpStream, body: Vec<u8>) -> Result<Vec<u8>> {
    let mut msg = Vec::with_capacity(20 + body.len());
    msg.extend_from_slice(&0i64.to_le_bytes());
    msg.extend_from_slice(&((now_ms() << 20) & !3).to_le_bytes());
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&body);
    write_frame(s, &msg).await?;
    let f = tokio::time::timeout(TIMEOUT, read_frame(s)).await.context("key exchange timed out")??;
    let (_, body) = wire::parse_plain(&f).map_err(|_| anyhow!("not a plain message"))?;
    Ok(body.to_vec())
}

/// Runs the key exchange on a fresh connection; returns the stream and the new session,
/// whose salt is the one the exchange handed out.
pub async fn handshake(mut s: TcpStream, key: &RsaPublic, seed: u64) -> Result<(TcpStream, ClientSession)> {
    let mut c = ClientHandshake::with_public(key.clone(), seed, false);
    let r = plain_exchange(&mut s, c.req_pq()).await?;
    let r = plain_exchange(&mut s, c.req_dh(&r)).await?;
    let r = plain_exchange(&mut s, c.set_dh(&r)).await?;
    let key = c.finish(&r);
    let mut session = ClientSession::new(key, (seed as i64).wrapping_mul(0x9e37_79b9_7f4a_7c15u64 as i64) | 1);
    session.salt = c.first_salt();
    Ok((s, session))
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Vec<u8>>>>>>;

/// An encrypted connection: requests go out through [`Client::call`]; pushed `Updates`
/// arrive on [`Client::updates`].
pub struct Client {
    wr: tokio::sync::Mutex<OwnedWriteHalf>,
    session: Arc<Mutex<ClientSession>>,
    pending: Pending,
    /// Set by the reader when the connection ends (before it fails what is pending).
    closed: Arc<std::sync::atomic::AtomicBool>,
    pub updates: Mutex<Option<mpsc::UnboundedReceiver<Vec<u8>>>>,
}

/// What a client needs to come back with the same authorization key after a reconnect.
#[derive(Clone)]
pub struct Credentials {
    pub key: herald_mtproto::crypto::AuthKey,
    pub salt: i64,
}

impl Client {
    pub async fn connect(server: SocketAddr, src: Option<IpAddr>, key: &RsaPublic, seed: u64) -> Result<Arc<Self>> {
        let s = open(server, src).await?;
        let (s, session) = handshake(s, key, seed).await?;
        Ok(Self::start(s, session))
    }

    /// Connects again with an existing key (a new session; the salt the key exchange gave
    /// stays valid for the key's first half hour).
    pub async fn resume(server: SocketAddr, src: Option<IpAddr>, creds: &Credentials, seed: u64) -> Result<Arc<Self>> {
        let s = open(server, src).await?;
        let mut session = ClientSession::new(creds.key.clone(), (seed as i64).wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        session.salt = creds.salt;
        Ok(Self::start(s, session))
    }

    pub fn credentials(&self) -> Credentials {
        let s = self.session.lock().unwrap();
        Credentials { key: s.key.clone(), salt: s.salt }
    }

    fn start(s: TcpStream, session: ClientSession) -> Arc<Self> {
        let (rd, wr) = s.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let client = Arc::new(Self {
            wr: tokio::sync::Mutex::new(wr),
            session: Arc::new(Mutex::new(session)),
            pending: Default::default(),
            closed: Default::default(),
            updates: Mutex::new(Some(rx)),
        });
        let key = client.session.lock().unwrap().key.clone();
        let sid = client.session.lock().unwrap().session_id;
        tokio::spawn(read_loop(rd, ClientSession::new(key, sid), client.session.clone(), client.pending.clone(), client.closed.clone(), tx));
        let weak = Arc::downgrade(&client);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPALIVE).await;
                let Some(c) = weak.upgrade() else { break };
                if c.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                // The pong is not waited for: the reader drops what no request awaits.
                let ping = grammers_tl_types::Serializable::to_bytes(&functions::Ping { ping_id: now_ms() });
                let (_, bytes) = c.session.lock().unwrap().encrypt(&ping, now_ms());
                // Bounded, so a server that stops reading cannot keep the client alive here.
                let write = async { write_frame(&mut *c.wr.lock().await, &bytes).await };
                if !matches!(tokio::time::timeout(TIMEOUT, write).await, Ok(Ok(()))) {
                    break;
                }
            }
        });
        client
    }

    /// Sends a request and waits for its answer (the result object, or an error for an
    /// `rpc_error`).
    pub async fn call_raw(&self, body: &[u8]) -> Result<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        let (id, bytes) = {
            let mut s = self.session.lock().unwrap();
            let (id, bytes) = s.encrypt(body, now_ms());
            self.pending.lock().unwrap().insert(id, tx);
            (id, bytes)
        };
        // The reader sets `closed` before it fails what is pending: a request registered after
        // that would never be answered.
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            self.pending.lock().unwrap().remove(&id);
            bail!("connection closed");
        }
        write_frame(&mut *self.wr.lock().await, &bytes).await?;
        tokio::time::timeout(TIMEOUT, rx).await.context("request timed out")?.map_err(|_| anyhow!("connection closed"))?
    }

    pub async fn call<R: RemoteCall>(&self, req: &R) -> Result<R::Return> {
        let bytes = self.call_raw(&req.to_bytes()).await?;
        R::Return::from_bytes(&bytes).map_err(|e| anyhow!("decoding the answer: {e:?}"))
    }
}

fn unpack(body: Vec<u8>, out: &mut Vec<Vec<u8>>) {
    match wire::constructor_id(&body) {
        Some(wire::MSG_CONTAINER) => {
            if let Ok(inner) = wire::parse_container(&body[4..]) {
                for m in inner {
                    unpack(m.body, out);
                }
            }
        }
        Some(wire::GZIP_PACKED) => {
            if let Ok(b) = wire::gunzip_bounded(&body[4..], 16 << 20) {
                unpack(b, out);
            }
        }
        _ => out.push(body),
    }
}

/// An answer that is not a result: the server refused the message itself (a
/// `bad_msg_notification`, or `bad_server_salt`, after which the salt is updated and the
/// caller may send again). Kept apart from `rpc_error`s so callers can tell them from
/// transport failures.
#[derive(Debug)]
pub struct Refused(pub i32);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad_msg_notification {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// An `rpc_error` answer.
#[derive(Debug)]
pub struct RpcFailure {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for RpcFailure {}

impl RpcFailure {
    /// X of `FLOOD_WAIT_X`.
    pub fn flood_wait(&self) -> Option<u64> {
        self.message.strip_prefix("FLOOD_WAIT_").and_then(|s| s.parse().ok())
    }

    /// The error's name without its number (`FLOOD_WAIT_3` → `FLOOD_WAIT`).
    pub fn name(&self) -> &str {
        self.message.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('_')
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    session: ClientSession,
    shared: Arc<Mutex<ClientSession>>,
    pending: Pending,
    closed: Arc<std::sync::atomic::AtomicBool>,
    updates: mpsc::UnboundedSender<Vec<u8>>,
) {
    loop {
        let Ok(frame) = read_frame(&mut rd).await else { break };
        let Some((_, body)) = session.decrypt(&frame) else { break };
        let mut msgs = Vec::new();
        unpack(body, &mut msgs);
        for m in msgs {
            match wire::constructor_id(&m) {
                Some(wire::RPC_RESULT) if m.len() >= 12 => {
                    let req = i64::from_le_bytes(m[4..12].try_into().unwrap());
                    let mut result = m[12..].to_vec();
                    if wire::constructor_id(&result) == Some(wire::GZIP_PACKED) {
                        result = wire::gunzip_bounded(&result[4..], 16 << 20).unwrap_or_default();
                    }
                    let answer = match enums::RpcError::from_bytes(&result) {
                        Ok(enums::RpcError::Error(e)) if wire::constructor_id(&result) == Some(wire::RPC_ERROR) => {
                            Err(anyhow::Error::new(RpcFailure { code: e.error_code, message: e.error_message }))
                        }
                        _ => Ok(result),
                    };
                    if let Some(tx) = pending.lock().unwrap().remove(&req) {
                        let _ = tx.send(answer);
                    }
                }
                Some(_) if enums::BadMsgNotification::from_bytes(&m).is_ok() => {
                    let (bad, code) = match enums::BadMsgNotification::from_bytes(&m) {
                        Ok(enums::BadMsgNotification::Notification(n)) => (n.bad_msg_id, n.error_code),
                        Ok(enums::BadMsgNotification::BadServerSalt(b)) => {
                            shared.lock().unwrap().salt = b.new_server_salt;
                            (b.bad_msg_id, b.error_code)
                        }
                        Err(_) => continue,
                    };
                    if let Some(tx) = pending.lock().unwrap().remove(&bad) {
                        let _ = tx.send(Err(anyhow::Error::new(Refused(code))));
                    }
                }
                Some(id) if is_updates(id) => {
                    let _ = updates.send(m);
                }
                _ => {}
            }
        }
    }
    closed.store(true, std::sync::atomic::Ordering::SeqCst);
    for (_, tx) in pending.lock().unwrap().drain() {
        let _ = tx.send(Err(anyhow!("connection closed")));
    }
}

fn is_updates(id: u32) -> bool {
    use grammers_tl_types::Identifiable;
    [types::Updates::CONSTRUCTOR_ID, types::UpdateShort::CONSTRUCTOR_ID, types::UpdatesCombined::CONSTRUCTOR_ID, types::UpdateShortMessage::CONSTRUCTOR_ID]
        .contains(&id)
}

/// The texts of new messages in a pushed `Updates`.
pub fn new_messages(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let updates = match enums::Updates::from_bytes(bytes) {
        Ok(enums::Updates::Updates(u)) => u.updates,
        Ok(enums::Updates::Combined(u)) => u.updates,
        Ok(enums::Updates::UpdateShortMessage(m)) => {
            out.push(m.message);
            return out;
        }
        _ => return out,
    };
    for u in updates {
        if let enums::Update::NewMessage(n) = u {
            if let enums::Message::Message(m) = n.message {
                out.push(m.message);
            }
        }
    }
    out
}

/// Logs in with a test number (99966XYYYY, code XXXXX; the server runs with --test-phones),
/// signing up when the number is new. Returns the user's id.
pub async fn log_in(c: &Client, phone: &str) -> Result<i64> {
    let code: String = std::iter::repeat_n(phone.as_bytes()[5] as char, 5).collect();
    let sent = c.call(&herald_mtproto::testing::send_code(phone)).await?;
    let enums::auth::SentCode::Code(sent) = sent else { bail!("unexpected sentCode") };
    let hash = sent.phone_code_hash;
    let auth = c
        .call(&functions::auth::SignIn { phone_number: phone.into(), phone_code_hash: hash.clone(), phone_code: Some(code), email_verification: None })
        .await?;
    let auth = match auth {
        enums::auth::Authorization::Authorization(a) => a,
        enums::auth::Authorization::SignUpRequired(_) => {
            let up = functions::auth::SignUp {
                no_joined_notifications: true,
                phone_number: phone.into(),
                phone_code_hash: hash,
                first_name: "Bench".into(),
                last_name: String::new(),
            };
            match c.call(&up).await? {
                enums::auth::Authorization::Authorization(a) => a,
                other => bail!("sign-up answered {other:?}"),
            }
        }
    };
    match auth.user {
        enums::User::User(u) => Ok(u.id),
        enums::User::Empty(u) => Ok(u.id),
    }
}

pub use herald_mtproto::testing::send_message;

/// A test number for client `n` of a run (99966XYYYY: the server logs it in with XXXXX).
pub fn test_phone(n: usize) -> String {
    let n = n % 90_000;
    format!("99966{}{:04}", 1 + n / 10_000, n % 10_000)
}

/// Logs both in (numbers `phone_base`, `phone_base + 1`); the receiver takes `username`, which
/// the sender resolves. Returns the sender's user id and the receiver as the sender sees it.
pub async fn pair_up(sender: &Client, receiver: &Client, phone_base: usize, username: String) -> Result<(i64, enums::InputPeer)> {
    let sender_id = log_in(sender, &test_phone(phone_base)).await?;
    log_in(receiver, &test_phone(phone_base + 1)).await?;
    receiver.call(&functions::account::UpdateUsername { username: username.clone() }).await?;
    let enums::contacts::ResolvedPeer::Peer(r) = sender.call(&functions::contacts::ResolveUsername { username, referer: None }).await?;
    let Some(enums::User::User(u)) = r.users.into_iter().next() else { bail!("the receiver did not resolve") };
    Ok((sender_id, enums::InputPeer::User(types::InputPeerUser { user_id: u.id, access_hash: u.access_hash.unwrap_or(0) })))
}
