//! Herald's network layer: the only crate that owns sockets.
//!
//! One task per TCP connection runs a `select!` over the socket, the user's event
//! subscription, its deadlines and the shutdown signal. Bytes go through the sans-IO core
//! (`herald-mtproto`): transport → handshake or decrypt → session checks → RPC dispatch →
//! pack → encrypt → transport.
//!
//! Bounds (each with its overflow policy; the per-address ones are in `addrs.rs`):
//! - connections: at most `max_connections` in all, and per source address at most
//!   `addr_limits.connections`, of which `addr_limits.unauthenticated` may not yet have spoken
//!   with an auth key; beyond, the connection is answered -429 (once its first bytes name a
//!   transport, within a second) and closed, counted in metrics, logged rate-limited;
//! - a write that cannot complete within 30 s (a client that stopped reading) closes;
//! - frames: at most `max_frame` bytes, checked before allocation; bigger closes; a partial
//!   frame's bytes count against its address's and the server's budgets (-429 beyond) and
//!   must complete within `frame_timeout`;
//! - a new connection must complete a frame within `init_timeout`; a connection that has not
//!   yet sent an encrypted message is closed after `unauth_idle_timeout` of silence, any
//!   other after `idle_timeout` (slowloris);
//! - key exchanges: a token bucket per address, one computation at a time per address and
//!   one per core overall;
//! - the answers to one received message (a container) at most `max_answer_bytes` (plus those
//!   already running when it is crossed);
//! - requests: at most `connection::MAX_IN_FLIGHT` run at once per connection; beyond, the
//!   socket is not read until they start;
//! - sessions: bounded per key, per address and in all; see `sessions.rs` for why forgetting
//!   one never reopens a replay window.

pub mod addrs;
mod connection;
pub mod kx;
pub mod metrics;
pub mod sessions;

use addrs::{AddrLimits, AddrTable};
use herald_domain::bus::EventBus;
use herald_domain::clock::Clock;
use herald_domain::store::AuthKeyStore;
use herald_mtproto::rsa::RsaKey;
use herald_mtproto::salt::Salts;
use herald_rpc::{Dispatcher, KeyStates};
use metrics::{LogLimiter, Metrics};
use sessions::SessionLimits;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

#[derive(Clone, Debug)]
pub struct NetConfig {
    pub dc_id: i32,
    pub max_connections: usize,
    pub max_frame: usize,
    pub init_timeout: Duration,
    pub idle_timeout: Duration,
    pub unauth_idle_timeout: Duration,
    pub frame_timeout: Duration,
    /// How long one write may wait for a client that does not read.
    pub write_timeout: Duration,
    pub max_answer_bytes: usize,
    pub addr_limits: AddrLimits,
    pub session_limits: SessionLimits,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            dc_id: 1,
            max_connections: 10_000,
            // A 512 KiB file part plus headers and a container's worth of slack.
            max_frame: 1024 * 1024 + 64 * 1024,
            init_timeout: Duration::from_secs(10),
            // Telethon pings every 60 s.
            idle_timeout: Duration::from_secs(120),
            // Enough to finish a key exchange and send the first request.
            unauth_idle_timeout: Duration::from_secs(30),
            // A 1 MiB frame at 40 KiB/s.
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_answer_bytes: 2 << 20,
            addr_limits: AddrLimits::default(),
            session_limits: SessionLimits::default(),
        }
    }
}

/// Everything a connection needs, shared by all of them.
pub struct Gateway {
    pub config: NetConfig,
    pub dispatcher: Arc<Dispatcher>,
    pub keys: Arc<dyn AuthKeyStore>,
    pub bus: Arc<dyn EventBus>,
    pub rsa: Arc<RsaKey>,
    pub salts: Salts,
    pub clock: Arc<dyn Clock>,
    pub sessions: sessions::SessionRegistry,
    pub addrs: Arc<AddrTable>,
    pub kx: kx::KxPool,
    /// Shared with the RPC services (`Services::key_states`).
    pub key_states: Arc<KeyStates>,
    pub metrics: Arc<Metrics>,
}

/// Refused connections answered with -429 at once (each waits up to a second for the
/// client's first bytes to learn its framing); beyond this they are just closed.
const MAX_REFUSING: usize = 256;

/// Answers a refused connection with transport error -429 in its own framing, then closes.
async fn refuse(mut stream: tokio::net::TcpStream, max_frame: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut t = herald_mtproto::transport::ServerTransport::new(max_frame);
    let mut buf = [0u8; 128];
    let detected = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(n) if n > 0 => {
                    t.feed(&buf[..n]);
                    if t.next_frame().is_err() {
                        return false;
                    }
                    if t.kind().is_some() {
                        return true;
                    }
                }
                _ => return false,
            }
        }
    })
    .await;
    if detected == Ok(true) {
        let bytes = t.encode_error(-429, &mut herald_mtproto::rng::OsRng);
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&bytes)).await;
    }
}

impl Gateway {
    /// Accepts connections until `shutdown` turns true, then waits (bounded) for open
    /// connections to finish their current work.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        static ACCEPT_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));
        static REFUSE_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            if let Some(held) = ACCEPT_LOG.allow() {
                                tracing::warn!(error = %e, similar_since_last = held, "accept failed");
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let admitted = match limit.clone().try_acquire_owned() {
                        Ok(permit) => self.addrs.admit(addrs::limit_key(peer.ip())).map(|t| (permit, t)).map_err(|r| (r.reason.label(), r.answer)),
                        Err(_) => Err(("connections_total", true)),
                    };
                    let (permit, ticket) = match admitted {
                        Ok(x) => x,
                        Err((reason, answer)) => {
                            self.metrics.refused(reason);
                            if let Some(held) = REFUSE_LOG.allow() {
                                tracing::warn!(%peer, reason, similar_since_last = held, "connection refused");
                            }
                            if !answer {
                                continue;
                            }
                            if let Ok(p) = refusing.clone().try_acquire_owned() {
                                let max_frame = self.config.max_frame;
                                tokio::spawn(async move {
                                    refuse(stream, max_frame).await;
                                    drop(p);
                                });
                            }
                            continue;
                        }
                    };
                    self.metrics.connections_accepted.inc();
                    self.metrics.connections_open.inc();
                    let _ = stream.set_nodelay(true);
                    let gw = self.clone();
                    let shutdown = shutdown.clone();
                    tasks.spawn(connection::run(Box::new(connection::Start { gw, stream, peer, ticket, shutdown, permit })));
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!(open = tasks.len(), "stopped accepting; closing connections");
        let _ = tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await;
    }
}

impl Gateway {
    /// The metrics text, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.sessions.set(self.sessions.len() as i64);
        self.metrics.buffered_bytes.set(self.addrs.buffered_total() as i64);
        self.metrics.render()
    }

    /// Serves `GET /metrics` (Prometheus text format) until `shutdown`. A deliberately small
    /// HTTP/1.1 responder: one request per connection, a 4 KiB request cap, 5 s to send it.
    pub async fn serve_metrics(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let slots = Arc::new(Semaphore::new(16));
        loop {
            let (mut stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
                _ = shutdown.changed() => return,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
            let gw = self.clone();
            tokio::spawn(async move {
                let mut req = Vec::with_capacity(512);
                let mut buf = [0u8; 512];
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 4096 {
                        match stream.read(&mut buf).await {
                            Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                            _ => return false,
                        }
                    }
                    true
                })
                .await;
                if read != Ok(true) {
                    return;
                }
                let (status, body) = if req.starts_with(b"GET /metrics ") || req.starts_with(b"GET /metrics?") {
                    ("200 OK", gw.render_metrics())
                } else {
                    ("404 Not Found", "not found\n".to_string())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
                drop(slot);
            });
        }
    }
}
