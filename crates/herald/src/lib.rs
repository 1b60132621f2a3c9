//! Wiring: builds every service on embedded storage and starts the gateway. Used by the
//! `herald` binary and by the wire-level tests, so both run the same server.

pub mod config;
pub mod keys;

use anyhow::Context;
use config::Config;
use herald_domain::accounts::AccountService;
use herald_domain::auth::{AuthConfig, AuthService};
use herald_domain::bus::{EventBus, InProcessBus};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::messages::MessageService;
use herald_mtproto::salt::Salts;
use herald_net::{Gateway, NetConfig};
use herald_rpc::{DcAddress, Dispatcher, ServerInfo, Services};
use herald_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub fingerprint: i64,
    pub public_key_path: std::path::PathBuf,
    pub rsa: Arc<herald_mtproto::rsa::RsaKey>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    store: SqliteStore,
}

impl Running {
    /// The store, for tests that check what was persisted.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Stops accepting, closes connections (bounded wait) and lets the store finish its
    /// pending commits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        drop(self.store);
    }
}

/// Builds everything and starts accepting connections.
pub async fn start(c: &Config) -> anyhow::Result<Running> {
    let keys = keys::load_or_create(&c.data_dir)?;
    let store = SqliteStore::open(&c.data_dir.join("herald.db")).context("opening the database")?;
    let listener = tokio::net::TcpListener::bind(c.listen).await.with_context(|| format!("listening on {}", c.listen))?;
    let addr = listener.local_addr()?;
    let advertised = c.advertised(addr);

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let db = Arc::new(store.clone());
    let messages = Arc::new(MessageService::new(db.clone(), bus.clone(), clock.clone()));
    let accounts = Arc::new(AccountService::new(db.clone(), db.clone(), keys.secret));
    let auth = Arc::new(AuthService::new(
        db.clone(),
        db.clone(),
        db.clone(),
        messages.clone(),
        bus.clone(),
        clock.clone(),
        AuthConfig { dc_id: c.dc, test_phones: c.test_phones },
    ));
    let services = Arc::new(Services {
        auth,
        accounts,
        messages,
        keys: db.clone(),
        clock: clock.clone(),
        server: ServerInfo { dc_id: c.dc, addresses: vec![DcAddress { id: c.dc, ip: advertised.ip().to_string(), port: advertised.port() }] },
    });
    let rsa = Arc::new(keys.rsa);
    let gateway = Arc::new(Gateway {
        config: NetConfig {
            dc_id: c.dc,
            max_connections: c.max_connections,
            init_timeout: Duration::from_secs(c.init_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            ..NetConfig::default()
        },
        dispatcher: Arc::new(Dispatcher::new(services)),
        keys: db,
        bus,
        rsa: rsa.clone(),
        salts: Salts::new(keys.secret),
        clock,
        sessions: Default::default(),
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(gateway.serve(listener, stop_rx));
    Ok(Running { addr, fingerprint: rsa.fingerprint(), public_key_path: keys.public_path, rsa, stop, task, store })
}
