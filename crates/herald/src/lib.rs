//! Wiring: builds every service on embedded storage and starts the gateway. Used by the
//! `herald` binary and by the wire-level tests, so both run the same server.

pub mod config;
pub mod datadir;
pub mod hook;
pub mod keys;

use anyhow::Context;
use config::Config;
use herald_domain::accounts::AccountService;
use herald_domain::auth::{AuthConfig, AuthService, AuthStores};
use herald_domain::bus::{EventBus, InProcessBus};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::groups::GroupService;
use herald_domain::messages::MessageService;
use herald_mtproto::salt::Salts;
use herald_net::addrs::{AddrLimits, AddrTable};
use herald_net::sessions::{SessionLimits, SessionRegistry};
use herald_net::{Gateway, NetConfig};
use herald_rpc::{DcAddress, Dispatcher, ServerInfo, Services};
use herald_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::Level;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub fingerprint: i64,
    pub public_key_path: std::path::PathBuf,
    pub rsa: Arc<herald_mtproto::rsa::RsaKey>,
    pub metrics_addr: Option<SocketAddr>,
    pub gateway: Arc<Gateway>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    store: SqliteStore,
    /// The data directory's lock (`datadir::lock`), released after the store has closed.
    _lock: std::fs::File,
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

/// Checks the data directory (see `datadir.rs`), creates what a first start needs, and
/// returns the key material and the open store.
pub fn open_data_dir(dir: &std::path::Path, init_database: bool) -> anyhow::Result<(keys::KeyMaterial, SqliteStore)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let found = datadir::guard(dir, init_database)?;
    if found == datadir::Found::NewDatabase {
        tracing::warn!(dir = %dir.display(), "creating a new database next to the existing keys (--init-database)");
    }
    let keys = keys::load_or_create(dir, found == datadir::Found::Fresh)?;
    let store = SqliteStore::open(&dir.join(datadir::DATABASE)).context("opening the database")?;
    Ok((keys, store))
}

/// How many connections the process's file limit leaves room for: the soft limit is raised
/// to the hard one, and `wanted` is clamped to what fits with some headroom.
#[allow(unsafe_code)] // getrlimit/setrlimit: std exposes no file-limit API
fn connection_budget(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        lim = raised;
                    }
                }
                let room = (lim.rlim_cur as usize).saturating_sub(256).max(64);
                if room < wanted {
                    tracing::info!(wanted, allowed = room, "the file limit caps connections");
                    return room;
                }
            }
        }
    }
    wanted
}

/// Builds everything and starts accepting connections.
pub async fn start(c: &Config) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&c.data_dir).with_context(|| format!("creating {}", c.data_dir.display()))?;
    let lock = datadir::lock(&c.data_dir)?;
    // The sessions' replay floor (`herald-net/src/sessions.rs`): every msg_id an earlier process
    // accepted was stamped before now, since it held this lock until it ended. Read before the
    // listener is bound: a client that connects while the rest starts (opening the store can
    // take a while) stamps its messages after this, and a floor read later refused them (16).
    let started_ms = SystemClock.now_ms();
    let (keys, store) = open_data_dir(&c.data_dir, c.init_database)?;
    let listener = tokio::net::TcpListener::bind(c.listen).await.with_context(|| format!("listening on {}", c.listen))?;
    let addr = listener.local_addr()?;
    let advertised = c.advertised(addr);

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let db = Arc::new(store.clone());
    let flood = c.flood_table()?;
    let messages = Arc::new(MessageService::with_limits(db.clone(), db.clone(), bus.clone(), clock.clone(), &flood).with_accounts(db.clone()));
    let groups = Arc::new(GroupService::with_limits(db.clone(), db.clone(), messages.clone(), bus.clone(), clock.clone(), &flood));
    let accounts = Arc::new(AccountService::new(db.clone(), db.clone(), keys.secret, clock.clone()).with_limits(&flood));
    let auth = AuthService::new(
        AuthStores { accounts: db.clone(), codes: db.clone(), keys: db.clone(), passwords: db.clone() },
        messages.clone(),
        bus.clone(),
        clock.clone(),
        AuthConfig { dc_id: c.dc, test_phones: c.test_phones, log_codes: c.log_codes },
    )
    .with_limits(&flood);
    let auth = Arc::new(match &c.code_hook {
        Some(program) => auth.with_hook(Arc::new(hook::CommandHook::new(program.clone()))),
        None => auth,
    });
    let scheduled = Arc::new(herald_domain::schedule::ScheduleService::new(db.clone(), messages.clone(), bus.clone(), clock.clone()));
    // File bytes live beside the database, never in it (herald-store-sqlite/src/blobs.rs).
    let blobs = Arc::new(herald_store_sqlite::blobs::FsBlobStore::open(&c.data_dir.join(datadir::FILES)).context("opening the file store")?);
    let files = Arc::new(
        herald_domain::files::FileService::new(blobs, db.clone(), keys.secret, clock.clone(), c.dc)
            .with_limits(c.file_limits())
            .with_reference_ttl(c.file_reference_secs.min(i32::MAX as u64) as i64),
    );
    let key_states = Arc::new(herald_rpc::KeyStates::default());
    let services = Arc::new(Services {
        auth,
        accounts,
        messages,
        groups,
        scheduled,
        files,
        keys: db.clone(),
        key_states: key_states.clone(),
        clock: clock.clone(),
        flood,
        server: ServerInfo { dc_id: c.dc, addresses: vec![DcAddress { id: c.dc, ip: advertised.ip().to_string(), port: advertised.port() }] },
    });
    let rsa = Arc::new(keys.rsa);
    let session_limits =
        SessionLimits { max_sessions: c.max_sessions, per_key: c.max_sessions_per_key, per_addr: c.max_sessions_per_addr, ..SessionLimits::default() };
    let addr_limits = AddrLimits {
        connections: c.max_connections_per_addr,
        unauthenticated: c.max_unauthenticated_per_addr,
        key_exchanges_per_sec: c.key_exchanges_per_sec,
        key_exchange_burst: c.key_exchange_burst,
        buffered: c.max_buffered_per_addr,
        buffered_total: c.max_buffered_total,
        ..AddrLimits::default()
    };
    let gateway = Arc::new(Gateway {
        config: NetConfig {
            dc_id: c.dc,
            max_connections: connection_budget(c.max_connections),
            init_timeout: Duration::from_secs(c.init_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            unauth_idle_timeout: Duration::from_secs(c.unauth_idle_timeout_secs),
            frame_timeout: Duration::from_secs(c.frame_timeout_secs),
            write_timeout: Duration::from_secs(c.write_timeout_secs),
            max_answer_bytes: c.max_answer_bytes,
            addr_limits,
            session_limits,
            ..NetConfig::default()
        },
        dispatcher: Arc::new(Dispatcher::new(services.clone())),
        keys: db.clone(),
        bus,
        rsa: rsa.clone(),
        salts: Salts::new(keys.secret),
        // No session of this process accepts a msg_id stamped before it started: an
        // earlier process may have run it (replay protection across restarts).
        sessions: SessionRegistry::new(session_limits, started_ms),
        clock: clock.clone(),
        addrs: AddrTable::new(addr_limits),
        kx: herald_net::kx::KxPool::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
        key_states,
        metrics: Default::default(),
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let metrics_addr = match c.metrics_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a).await.with_context(|| format!("listening for metrics on {a}"))?;
            let bound = l.local_addr()?;
            tokio::spawn(gateway.clone().serve_metrics(l, stop_rx.clone()));
            Some(bound)
        }
        None => None,
    };
    tokio::spawn(timers(services.clone(), stop_rx.clone()));
    tokio::spawn(maintenance(gateway.clone(), services, db, Duration::from_secs(c.unused_key_hours * 3600), stop_rx.clone()));
    let task = tokio::spawn(gateway.clone().serve(listener, stop_rx));
    Ok(Running { addr, fingerprint: rsa.fingerprint(), public_key_path: keys.public_path, rsa, metrics_addr, gateway, stop, task, store, _lock: lock })
}

/// How often stale rows and floors are collected.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);

/// The scheduled collection: auth keys never logged in and unused for `unused_key_ttl`
/// (and expired temporary keys), login codes and failures no limit counts any more, and
/// replay floors the time window has made redundant.
/// Keys that never logged in kept per creating address (IPv4 address or IPv6 /64); the
/// least recently used beyond go at the next maintenance pass.
pub const UNBOUND_KEYS_PER_ADDR: usize = 1000;

/// How often due work (self-deleting messages) is looked for.
const TIMERS_EVERY: Duration = Duration::from_secs(1);

/// Work that falls due at a time: deleting messages whose period ran out, and sending
/// scheduled messages. Two indexed reads a second when nothing is due; a full batch is
/// followed at once by the next.
async fn timers(services: Arc<Services>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let expired = services.messages.expire_due().await;
        let sent = services.scheduled.send_due().await;
        let full = matches!(expired, Ok(n) if n >= herald_domain::ttl::EXPIRE_BATCH) || matches!(sent, Ok(n) if n >= herald_domain::schedule::DUE_BATCH);
        report(Level::DEBUG, "deleted self-deleting messages", expired);
        report(Level::DEBUG, "sent scheduled messages", sent);
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(TIMERS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Logs what a background pass did: how many rows it handled (at `level` when any), or why it
/// failed.
fn report(level: Level, what: &str, result: herald_domain::Result<usize>) {
    match result {
        Ok(0) => {}
        Ok(n) if level == Level::DEBUG => tracing::debug!(count = n, "{what}"),
        Ok(n) => tracing::info!(count = n, "{what}"),
        Err(e) => tracing::warn!(error = %e, "failed: {what}"),
    }
}

async fn maintenance(
    gw: Arc<Gateway>,
    services: Arc<Services>,
    keys: Arc<SqliteStore>,
    unused_key_ttl: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use herald_domain::store::AuthKeyStore;
    loop {
        let now = services.clock.now_secs();
        let unused_before = now - unused_key_ttl.as_secs() as i64;
        report(Level::INFO, "collected unused auth keys", keys.purge_keys(unused_before, now, UNBOUND_KEYS_PER_ADDR).await.map_err(Into::into));
        report(Level::INFO, "deleted accounts inactive past their lifetime", services.auth.delete_inactive_accounts().await);
        report(Level::INFO, "ended sessions unused past their account's lifetime", services.auth.end_stale_sessions().await);
        report(Level::INFO, "trimmed the pts logs", services.messages.trim_log().await);
        report(Level::INFO, "deleted uploads unused for a day", services.files.expire_uploads().await);
        report(Level::INFO, "deleted files and blobs nothing uses", services.files.collect(herald_domain::files::BLOB_GRACE_SECS).await);
        match services.auth.purge().await {
            Ok(n) => tracing::debug!(rows = n, "collected old login codes and failures"),
            Err(e) => tracing::warn!(error = %e, "collecting login rows failed"),
        }
        gw.sessions.sweep(services.clock.now_ms());
        gw.addrs.sweep();
        tokio::select! {
            _ = tokio::time::sleep(MAINTENANCE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
