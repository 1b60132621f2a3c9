//! The `herald` binary: `herald serve` runs every role in one process on embedded storage;
//! `herald pubkey` prints the public key clients need.

mod config;
mod keys;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, Overrides};
use herald_domain::accounts::AccountService;
use herald_domain::auth::{AuthConfig, AuthService};
use herald_domain::bus::{EventBus, InProcessBus};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::messages::MessageService;
use herald_mtproto::salt::Salts;
use herald_net::{Gateway, NetConfig};
use herald_rpc::{DcAddress, Dispatcher, ServerInfo, Services};
use herald_store_sqlite::SqliteStore;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "herald", version, about = "A messaging server that speaks Telegram's protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (all roles, embedded storage).
    Serve(Overrides),
    /// Print the server's RSA public key (PKCS#1 PEM), creating it if needed.
    Pubkey(Overrides),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Pubkey(o) => {
            let c = Config::load(&o)?;
            let k = keys::load_or_create(&c.data_dir)?;
            print!("{}", k.rsa.public_pem());
            Ok(())
        }
        Command::Serve(o) => {
            let c = Config::load(&o)?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(c))
        }
    }
}

async fn serve(c: Config) -> anyhow::Result<()> {
    let keys = keys::load_or_create(&c.data_dir)?;
    let store = SqliteStore::open(&c.data_dir.join("herald.db")).context("opening the database")?;
    let listener = tokio::net::TcpListener::bind(c.listen).await.with_context(|| format!("listening on {}", c.listen))?;
    let bound = listener.local_addr()?;
    let advertised = c.advertised(bound);

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let store_arc = Arc::new(store.clone());
    let messages = Arc::new(MessageService::new(store_arc.clone(), bus.clone(), clock.clone()));
    let accounts = Arc::new(AccountService::new(store_arc.clone(), store_arc.clone(), keys.secret));
    let auth = Arc::new(AuthService::new(
        store_arc.clone(),
        store_arc.clone(),
        store_arc.clone(),
        messages.clone(),
        bus.clone(),
        clock.clone(),
        AuthConfig { dc_id: c.dc, test_phones: c.test_phones },
    ));
    let services = Arc::new(Services {
        auth,
        accounts,
        messages,
        keys: store_arc.clone(),
        clock: clock.clone(),
        server: ServerInfo { dc_id: c.dc, addresses: vec![DcAddress { id: c.dc, ip: advertised.ip().to_string(), port: advertised.port() }] },
    });
    let fingerprint = keys.rsa.fingerprint();
    let gateway = Arc::new(Gateway {
        config: NetConfig { dc_id: c.dc, max_connections: c.max_connections, ..NetConfig::default() },
        dispatcher: Arc::new(Dispatcher::new(services)),
        keys: store_arc,
        bus,
        rsa: Arc::new(keys.rsa),
        salts: Salts::new(keys.secret),
        clock,
        sessions: Default::default(),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(gateway.serve(listener, stop_rx));
    if c.test_phones {
        tracing::warn!("test phones enabled: 99966XYYYY numbers log in with the code XXXXX");
    }
    tracing::info!(
        listen = %bound,
        advertised = %advertised,
        dc = c.dc,
        fingerprint = format_args!("{:016x}", fingerprint as u64),
        pubkey = %keys.public_path.display(),
        data_dir = %c.data_dir.display(),
        "ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
