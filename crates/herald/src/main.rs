//! The `herald` binary: `herald serve` runs every role in one process on embedded storage;
//! `herald pubkey` prints the public key clients need.

use clap::{Parser, Subcommand};
use herald::config::{Config, Overrides};

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
    /// Print the server's RSA public key (PKCS#1 PEM), initialising the data directory if
    /// it is new.
    Pubkey(Overrides),
    /// Run the database's full integrity check and verify the key files; exit 1 on problems.
    Check(Overrides),
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
            let (k, store) = herald::open_data_dir(&c.data_dir, c.init_database)?;
            drop(store);
            print!("{}", k.rsa.public_pem());
            Ok(())
        }
        Command::Check(o) => {
            let c = Config::load(&o)?;
            let problems = herald::datadir::check(&c.data_dir)?;
            if problems.is_empty() {
                println!("{}: ok", c.data_dir.display());
                Ok(())
            } else {
                for p in &problems {
                    println!("{p}");
                }
                eprintln!("{}: {} problem(s); restore from a backup (see README, \"Data directory\")", c.data_dir.display(), problems.len());
                std::process::exit(1);
            }
        }
        Command::Serve(o) => {
            let c = Config::load(&o)?;
            tokio::runtime::Builder::new_multi_thread()
                // Headroom for TL decoding, whose depth the dispatcher bounds.
                .thread_stack_size(8 << 20)
                .enable_all()
                .build()?
                .block_on(serve(c))
        }
    }
}

async fn serve(c: Config) -> anyhow::Result<()> {
    let running = herald::start(&c).await?;
    if c.test_phones {
        tracing::warn!("test phones enabled: 99966XYYYY numbers log in with the code XXXXX, and login codes are logged");
    } else if c.log_codes {
        tracing::warn!("login codes are written to the log (--log-codes): development only");
    }
    tracing::info!(
        listen = %running.addr,
        advertised = %c.advertised(running.addr),
        dc = c.dc,
        fingerprint = format_args!("{:016x}", running.fingerprint as u64),
        pubkey = %running.public_key_path.display(),
        data_dir = %c.data_dir.display(),
        metrics = ?running.metrics_addr,
        "ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
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
