//! Herald's network layer: the only crate that owns sockets.
//!
//! One task per TCP connection runs a `select!` over the socket, the user's event
//! subscription, its deadlines and the shutdown signal. Bytes go through the sans-IO core
//! (`herald-mtproto`): transport → handshake or decrypt → session checks → RPC dispatch →
//! pack → encrypt → transport.
//!
//! Bounds (each with its overflow policy):
//! - connections: at most `max_connections`; more are closed on accept;
//! - a write that cannot complete within 30 s (a client that stopped reading) closes;
//! - frames: at most `max_frame` bytes, checked before allocation; bigger closes;
//! - a new connection must complete a frame within `init_timeout`, and any connection
//!   that stays silent for `idle_timeout` is closed (slowloris);
//! - sessions: at most [`sessions::MAX_SESSIONS`] in all and [`sessions::MAX_SESSIONS_PER_KEY`]
//!   per key; see `sessions.rs` for why eviction never reopens a replay window.

mod connection;
pub mod sessions;

use herald_domain::bus::EventBus;
use herald_domain::clock::Clock;
use herald_domain::store::AuthKeyStore;
use herald_mtproto::rsa::RsaKey;
use herald_mtproto::salt::Salts;
use herald_rpc::Dispatcher;
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
}

impl Gateway {
    /// Accepts connections until `shutdown` turns true, then waits (bounded) for open
    /// connections to finish their current work.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "connection limit reached; closing");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let gw = self.clone();
                    let shutdown = shutdown.clone();
                    tasks.spawn(async move {
                        connection::run(gw, stream, peer, shutdown).await;
                        drop(permit);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!(open = tasks.len(), "stopped accepting; closing connections");
        let _ = tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await;
    }
}
