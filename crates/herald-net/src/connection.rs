//! One client connection.

use crate::Gateway;
use herald_domain::bus::Event;
use herald_domain::model::{AuthKeyRecord, UserId};
use herald_mtproto::crypto::{decrypt_client_message, encrypt_server_message, AuthKey};
use herald_mtproto::handshake::{Handshake, Step};
use herald_mtproto::rng::{OsRng, Rng};
use herald_mtproto::session::{split_plaintext, Event as SessionEvent, Now, OutMessage, Output};
use herald_mtproto::transport::{Framing, ServerTransport};
use herald_mtproto::wire;
use herald_rpc::push::{self, Push};
use herald_rpc::{CallCtx, ConnState};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Duration, Instant};

const TRANSPORT_AUTH_KEY_NOT_FOUND: i32 = -404;
const TRANSPORT_FLOOD: i32 = -429;
const TRANSPORT_WRONG_DC: i32 = -444;
/// Completed key exchanges one connection may run before it is closed with -429.
const MAX_KEY_EXCHANGES: u32 = 8;
/// How long one write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The authorization key this connection speaks with, and what calls may change about it.
struct Keyed {
    key: AuthKey,
    ctx: CallCtx,
    /// The session that last wrote: pushes go there.
    session_id: Option<i64>,
    /// A request was answered here that was not wrapped in `invokeWithoutUpdates`: the
    /// connection is subscribed and pushes may flow.
    wants_updates: bool,
    subscription: Option<(UserId, mpsc::Receiver<Event>)>,
}

enum Verdict {
    Continue,
    /// Send these framed bytes (if any), then close.
    Close(Option<i32>),
}

struct Conn {
    gw: Arc<Gateway>,
    peer: SocketAddr,
    wr: OwnedWriteHalf,
    transport: ServerTransport,
    handshake: Handshake,
    rng: OsRng,
    keyed: Option<Keyed>,
    out: Vec<u8>,
    disconnect_at: Option<Instant>,
    last_plain_msg_id: i64,
    /// Completed key exchanges on this connection (Telethon retries a few on one socket).
    key_exchanges: u32,
}

pub(crate) async fn run(gw: Arc<Gateway>, stream: TcpStream, peer: SocketAddr, mut shutdown: watch::Receiver<bool>) {
    tracing::debug!(%peer, "connection opened");
    let (mut rd, wr) = stream.into_split();
    let mut c = Conn {
        wr,
        transport: ServerTransport::new(gw.config.max_frame),
        handshake: Handshake::new(gw.config.dc_id),
        rng: OsRng,
        keyed: None,
        out: Vec::new(),
        disconnect_at: None,
        last_plain_msg_id: 0,
        key_exchanges: 0,
        peer,
        gw,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut deadline = Instant::now() + c.gw.config.init_timeout;
    let reason = loop {
        let wake = c.disconnect_at.map_or(deadline, |d| d.min(deadline));
        let verdict = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => break "closed by client",
                Err(_) => break "read error",
                Ok(n) => {
                    c.transport.feed(&buf[..n]);
                    let (v, frames) = c.drain_frames().await;
                    // Only complete frames count as activity: trickled bytes do not.
                    if frames > 0 {
                        deadline = Instant::now() + c.gw.config.idle_timeout;
                    }
                    v
                }
            },
            ev = next_event(&mut c.keyed) => {
                c.on_event(ev).await;
                Verdict::Continue
            }
            _ = sleep_until(wake) => break "timed out",
            _ = shutdown.changed() => break "server shutting down",
        };
        if !c.flush().await {
            break "write failed or timed out";
        }
        if let Verdict::Close(code) = verdict {
            if let Some(code) = code {
                let bytes = c.transport.encode_error(code, &mut c.rng);
                c.out.extend_from_slice(&bytes);
                c.flush().await;
            }
            break "protocol";
        }
    };
    let _ = c.wr.shutdown().await;
    tracing::debug!(peer = %c.peer, reason, "connection closed");
}

async fn next_event(keyed: &mut Option<Keyed>) -> Option<Event> {
    match keyed.as_mut().and_then(|k| k.subscription.as_mut()) {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn now(gw: &Gateway) -> Now {
    Now { unix_ms: gw.clock.now_ms() }
}

impl Conn {
    /// Handles every complete frame buffered; returns the verdict and how many there were.
    async fn drain_frames(&mut self) -> (Verdict, usize) {
        let mut n = 0;
        loop {
            match self.transport.next_frame() {
                Ok(Some(frame)) => {
                    n += 1;
                    if let Verdict::Close(code) = self.on_frame(frame).await {
                        return (Verdict::Close(code), n);
                    }
                }
                Ok(None) => return (Verdict::Continue, n),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "transport error");
                    return (Verdict::Close(None), n);
                }
            }
        }
    }

    /// Writes what is buffered. A client that stops reading must not pin this task: each
    /// write is bounded in time. False when the connection is unusable.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let ok = matches!(tokio::time::timeout(WRITE_TIMEOUT, self.wr.write_all(&self.out)).await, Ok(Ok(())));
        self.out.clear();
        ok
    }

    /// Packs, encrypts and writes `replies` for `session`, leaving `replies` empty.
    async fn emit(&mut self, session: &std::sync::Mutex<herald_mtproto::session::Session>, key: &AuthKey, replies: &mut Vec<OutMessage>) -> bool {
        if replies.is_empty() {
            return true;
        }
        let plain = session.lock().unwrap().pack(std::mem::take(replies), now(&self.gw), &self.gw.salts);
        let enc = encrypt_server_message(key, &plain, &mut self.rng);
        self.send(&enc);
        self.flush().await
    }

    fn send(&mut self, payload: &[u8]) {
        let framed = self.transport.encode(payload, &mut self.rng);
        self.out.extend_from_slice(&framed);
    }

    async fn on_frame(&mut self, frame: Vec<u8>) -> Verdict {
        if frame.len() < 8 {
            return Verdict::Close(None);
        }
        let auth_key_id = i64::from_le_bytes(frame[..8].try_into().unwrap());
        if auth_key_id == 0 {
            return self.on_plain(&frame).await;
        }
        if self.keyed.as_ref().is_none_or(|k| k.key.id() != auth_key_id) {
            match self.load_key(auth_key_id).await {
                Some(k) => self.keyed = Some(k),
                None => {
                    tracing::debug!(peer = %self.peer, auth_key = format_args!("{auth_key_id:016x}"), "unknown auth key");
                    return Verdict::Close(Some(TRANSPORT_AUTH_KEY_NOT_FOUND));
                }
            }
        }
        let mut data = &frame[8..];
        // Padded intermediate may add up to 15 bytes; the transport strips len % 4 and
        // the rest is cut at the cipher's block boundary here.
        if self.transport.kind().is_some_and(|k| k.framing == Framing::PaddedIntermediate) && data.len() >= 16 {
            data = &data[..16 + (data.len() - 16) / 16 * 16];
        }
        self.on_encrypted(data).await
    }

    async fn load_key(&self, id: i64) -> Option<Keyed> {
        let rec = match self.gw.keys.get_key(id).await {
            Ok(r) => r?,
            Err(e) => {
                tracing::error!(error = %e, "loading an auth key failed");
                return None;
            }
        };
        if rec.expires_at.is_some_and(|t| t <= self.gw.clock.now_secs()) {
            return None;
        }
        let data: [u8; 256] = rec.key.as_slice().try_into().ok()?;
        let conn = Arc::new(ConnState::new(rec.user_id, rec.client));
        Some(Keyed {
            key: AuthKey::from_bytes(data),
            ctx: CallCtx { auth_key_id: id, conn },
            session_id: None,
            wants_updates: false,
            subscription: None,
        })
    }

    fn plain_msg_id(&mut self) -> i64 {
        let n = now(&self.gw);
        let mut id = (n.secs() << 32) | ((((n.unix_ms.rem_euclid(1000)) << 32) / 1000) & !3) | 1;
        if id <= self.last_plain_msg_id {
            id = self.last_plain_msg_id + 4;
        }
        self.last_plain_msg_id = id;
        id
    }

    async fn on_plain(&mut self, frame: &[u8]) -> Verdict {
        let Ok((_, body)) = wire::parse_plain(frame) else {
            return Verdict::Close(Some(TRANSPORT_AUTH_KEY_NOT_FOUND));
        };
        if self.key_exchanges >= MAX_KEY_EXCHANGES {
            tracing::debug!(peer = %self.peer, "too many key exchanges on one connection");
            return Verdict::Close(Some(TRANSPORT_FLOOD));
        }
        let now_secs = self.gw.clock.now_secs();
        // RSA and DH take milliseconds of CPU: run them off the runtime's threads.
        let mut hs = std::mem::replace(&mut self.handshake, Handshake::new(self.gw.config.dc_id));
        let (rsa, body) = (self.gw.rsa.clone(), body.to_vec());
        let Ok((hs, step)) = tokio::task::spawn_blocking(move || {
            let step = hs.handle(&body, now_secs, &rsa, &mut OsRng);
            (hs, step)
        })
        .await
        else {
            return Verdict::Close(None);
        };
        self.handshake = hs;
        match step {
            Step::Reply(reply) => {
                let id = self.plain_msg_id();
                self.send(&wire::build_plain(id, &reply));
            }
            Step::Completed(done) => {
                let rec = AuthKeyRecord {
                    id: done.key.id(),
                    key: done.key.bytes().to_vec(),
                    created_at: now_secs,
                    expires_at: done.expires_in.map(|e| now_secs + e as i64),
                    user_id: None,
                    client: None,
                };
                let reply = match self.gw.keys.insert_key(rec).await {
                    Ok(true) => {
                        self.handshake.finish();
                        self.key_exchanges += 1;
                        tracing::debug!(peer = %self.peer, auth_key = format_args!("{:016x}", done.key.id()), "auth key created");
                        done.reply
                    }
                    Ok(false) => self.handshake.collision(&done.key),
                    Err(e) => {
                        tracing::error!(error = %e, "storing an auth key failed");
                        return Verdict::Close(None);
                    }
                };
                let id = self.plain_msg_id();
                self.send(&wire::build_plain(id, &reply));
            }
            Step::WrongDc => {
                tracing::debug!(peer = %self.peer, "key exchange for another DC");
                return Verdict::Close(Some(TRANSPORT_WRONG_DC));
            }
            // Sticky: every later plain message on this connection gets -404 too.
            Step::Fail => {
                tracing::debug!(peer = %self.peer, "key exchange failed");
                let err = self.transport.encode_error(TRANSPORT_AUTH_KEY_NOT_FOUND, &mut self.rng);
                self.out.extend_from_slice(&err);
            }
        }
        Verdict::Continue
    }

    async fn on_encrypted(&mut self, data: &[u8]) -> Verdict {
        let gw = self.gw.clone();
        let keyed = self.keyed.as_mut().unwrap();
        let (key, ctx) = (keyed.key.clone(), keyed.ctx.clone());
        // Every failure up to and including the msg_key check looks the same: silent close.
        let Ok(plain) = decrypt_client_message(&key, data) else {
            tracing::debug!(peer = %self.peer, "message rejected before authentication");
            return Verdict::Close(None);
        };
        let Some((header, body)) = split_plaintext(&plain) else { return Verdict::Close(None) };
        keyed.session_id = Some(header.session_id);
        let unique = self.rng_i64();
        let Some(session) = gw.sessions.get_or_create(key.id(), header.session_id, gw.clock.now_ms(), || unique) else {
            tracing::warn!(peer = %self.peer, "session registry full of active sessions; refusing");
            return Verdict::Close(Some(TRANSPORT_FLOOD));
        };
        let mut out = Output::default();
        session.lock().unwrap().receive(header, body, now(&gw), &gw.salts, &mut out);

        // Service replies first; then each answer is sent as soon as it is ready, so what a
        // connection holds in memory is one answer, not a container's worth.
        let mut replies = std::mem::take(&mut out.replies);
        let mut close = None;
        for ev in out.events {
            match ev {
                SessionEvent::Request { msg_id, body } => {
                    let started = Instant::now();
                    let outcome = gw.dispatcher.dispatch(&ctx, &body).await;
                    let result = match outcome.result {
                        Ok(bytes) => {
                            tracing::debug!(method = outcome.method, elapsed_us = started.elapsed().as_micros() as u64, "rpc ok");
                            bytes
                        }
                        Err(e) => {
                            tracing::debug!(method = outcome.method, code = e.code, error = %e.message, "rpc error");
                            wire::rpc_error(e.code, &e.message)
                        }
                    };
                    if !outcome.without_updates {
                        if let Some(k) = self.keyed.as_mut() {
                            k.wants_updates = true;
                        }
                    }
                    replies.push(OutMessage::response(wire::rpc_result(msg_id, &wire::gzip_if_smaller(result))));
                    if !self.emit(&session, &key, &mut replies).await {
                        return Verdict::Close(None);
                    }
                }
                SessionEvent::Acks(_) => {}
                SessionEvent::DisconnectAfter(secs) => {
                    self.disconnect_at = Some(Instant::now() + Duration::from_secs(secs.clamp(0, 3600) as u64));
                }
                SessionEvent::DestroySession { msg_id: _, session_id } => {
                    let existed = session_id != header.session_id && gw.sessions.remove(key.id(), session_id);
                    let mut body = (if existed { 0xe22045fcu32 } else { 0x62d350c9u32 }).to_le_bytes().to_vec();
                    body.extend_from_slice(&session_id.to_le_bytes());
                    replies.push(OutMessage::response(body));
                }
                SessionEvent::Flood => close = Some(TRANSPORT_FLOOD),
            }
        }
        if !self.emit(&session, &key, &mut replies).await {
            return Verdict::Close(None);
        }
        self.sync_subscription();
        match close {
            Some(code) => Verdict::Close(Some(code)),
            None => Verdict::Continue,
        }
    }

    fn rng_i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        self.rng.fill(&mut b);
        i64::from_le_bytes(b)
    }

    /// Follows login and logout: subscribe to the bound user's events, or stop.
    fn sync_subscription(&mut self) {
        let Some(k) = self.keyed.as_mut() else { return };
        let user = k.ctx.conn.user();
        let current = k.subscription.as_ref().map(|(u, _)| *u);
        if user != current {
            k.subscription = user.map(|u| (u, self.gw.bus.subscribe(u)));
        }
    }

    async fn on_event(&mut self, ev: Option<Event>) {
        let gw = self.gw.clone();
        let Some(k) = self.keyed.as_mut() else { return };
        let Some(ev) = ev else {
            // The bus dropped this subscriber (its queue overflowed): events, a logout
            // among them, may be lost. Re-read the key's binding before subscribing again;
            // the client repairs missed updates with getDifference.
            k.subscription = None;
            let id = k.key.id();
            let user = match gw.keys.get_key(id).await {
                Ok(Some(rec)) => rec.user_id,
                _ => None,
            };
            if let Some(k) = self.keyed.as_mut() {
                k.ctx.conn.set_user(user);
            }
            self.sync_subscription();
            return;
        };
        let Some((viewer, _)) = k.subscription.as_ref() else { return };
        let viewer = *viewer;
        match push::encode(&gw.dispatcher.services().clone(), viewer, k.key.id(), &ev).await {
            Push::Skip => {}
            Push::Unbound => {
                k.ctx.conn.set_user(None);
                k.subscription = None;
            }
            Push::Send(bytes) => {
                let (Some(sid), true) = (k.session_id, k.wants_updates) else { return };
                let key = k.key.clone();
                let Some(session) = gw.sessions.get(key.id(), sid) else { return };
                let mut push = vec![OutMessage::push(wire::gzip_if_smaller(bytes))];
                self.emit(&session, &key, &mut push).await;
            }
        }
    }
}
