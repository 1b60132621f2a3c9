//! `herald-bench`: Herald's load generator. Real MTProto clients (key exchange, encrypted
//! sessions, the intermediate transport) on real TCP connections against a running server.
//!
//! Scenarios:
//! - `pairs`: N clients, N/2 senders each sending to its own receiver with W sends in flight;
//!   every message carries its send time, so delivery latency is measured at the receiver,
//!   and every message is counted exactly once (lost and duplicated ones are reported).
//! - `login`: key exchanges as fast as C concurrent clients can run them, for D seconds.
//! - `fanout`: a supergroup of M members with K online, one poster (fanout.rs).
//! - `idle`: K connections that finished a key exchange and one request, held open, with the
//!   server's RSS per connection.
//! - `files`: one client uploads S MiB and downloads it again, P parts in flight, with the
//!   server's RSS growth (files.rs).
//!
//! Each run also measures a loopback TCP echo at the same concurrency and message size, so
//! every rate is also a ratio to what this machine's loopback does. Output: a table on stderr
//! and one JSON line per run on stdout. Clients connect from `--sources` loopback addresses
//! (127.0.0.1, .2, ...) so that the server's per-address limits see several machines.

mod chaos;
mod client;
mod fanout;
mod files;
mod stats;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use client::{new_messages, now_us, Client};
use grammers_tl_types::{enums, functions};
use herald_mtproto::rsa::RsaPublic;
use serde::Serialize;
use stats::{Latencies, ServerProbe};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "herald-bench", about = "Load generator for a running Herald server")]
pub(crate) struct Cli {
    /// The server's MTProto address.
    #[arg(long, default_value = "127.0.0.1:4430")]
    server: SocketAddr,
    /// The server's public key (server.pub.pem in its data directory); not for `chaos`.
    #[arg(long)]
    pubkey: Option<PathBuf>,
    /// The server's process id, to report its CPU time and memory (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connect from this many loopback source addresses (127.0.0.1 upwards).
    #[arg(long, default_value_t = 8)]
    sources: u8,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Clone)]
enum Scenario {
    /// N clients in pairs: senders to receivers, W sends in flight each.
    Pairs {
        #[arg(long, default_value_t = 100)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        window: usize,
        /// Messages per sender.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// Bytes of text per message (at least what the timestamp needs).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Messages per second from all senders together, on a fixed schedule (sender p of P
        /// sends its k-th message at (k + p/P) / (rate / P) seconds, or as soon as the window
        /// allows when behind); unset: as fast as the window allows.
        #[arg(long)]
        rate: Option<u64>,
    },
    /// Key exchanges from C concurrent clients for D seconds.
    Login {
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// One supergroup of M members, K online on real connections, one poster: deliveries per
    /// second, latency to the last online member, server CPU per delivery, bytes per post.
    Fanout {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        #[arg(long, default_value_t = 1000)]
        online: usize,
        #[arg(long, default_value_t = 200)]
        posts: usize,
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// The server's data directory (to measure bytes stored per post).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Upload S MiB (512 KiB parts, P in flight), send it as a document, download it (1 MiB
    /// chunks, P in flight): MB/s each way and the server's RSS growth.
    Files {
        #[arg(long, default_value_t = 2048)]
        size_mib: u64,
        #[arg(long, default_value_t = 8)]
        streams: usize,
    },
    /// K connections held open after a key exchange and one request.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Log each connection in (test numbers, signing up when new) and ask for
        /// `updates.getState`, as a real client does: the server then also holds the session's
        /// user binding and its event subscription. Without it the one request is
        /// `help.getNearestDc`.
        #[arg(long)]
        signed_in: bool,
        /// Keep the connections this many seconds after the report (time to inspect the
        /// server, or to stop it with them held for a heap profiler's view).
        #[arg(long, default_value_t = 0)]
        hold_seconds: u64,
    },
    /// Pairs sending while the server (started by this command) is killed with SIGKILL at
    /// random and restarted; then every message is checked: 0 lost, 0 duplicated.
    Chaos {
        /// The herald binary to run.
        #[arg(long, default_value = "target/release/herald")]
        herald: PathBuf,
        /// Its data directory (emptied first).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 4)]
        pairs: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Seconds between kills: at least, at most.
        #[arg(long, default_value_t = 10)]
        kill_min: u64,
        #[arg(long, default_value_t = 30)]
        kill_max: u64,
        /// Messages per second per sender.
        #[arg(long, default_value_t = 100)]
        rate: u64,
    },
}

pub(crate) fn source(cli: &Cli, i: usize) -> Option<IpAddr> {
    (cli.sources > 1 && cli.server.ip().is_loopback() && cli.server.is_ipv4()).then(|| IpAddr::from([127, 0, 0, 1 + (i % cli.sources as usize) as u8]))
}

static SEED: AtomicU64 = AtomicU64::new(1);

pub(crate) fn seed() -> u64 {
    SEED.fetch_add(1, Ordering::Relaxed) ^ (now_us() as u64).rotate_left(17)
}

/// A client, connected and (for `phone`) logged in; the key exchange's panics (a broken
/// server answer) become errors.
pub(crate) async fn connect(cli: &Cli, key: &RsaPublic, i: usize) -> Result<Arc<Client>> {
    let (server, src, key) = (cli.server, source(cli, i), key.clone());
    tokio::spawn(async move { Client::connect(server, src, &key, seed()).await }).await.context("the key exchange panicked")?
}

#[derive(Serialize)]
struct PairsReport {
    scenario: &'static str,
    clients: usize,
    window: usize,
    rate: Option<u64>,
    size: usize,
    sent: u64,
    acknowledged: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    /// Sends answered with an error (by error name) instead of a result.
    failed: HashMap<String, u64>,
    seconds: f64,
    acked_per_sec: f64,
    delivered_per_sec: f64,
    delivery_ms: stats::Summary,
    ack_ms: stats::Summary,
    server_cpu_us_per_message: Option<f64>,
    server_rss_mib: Option<f64>,
    echo_per_sec: f64,
    ratio_to_echo: f64,
}

async fn pairs(cli: &Cli, key: &RsaPublic, clients: usize, window: usize, count: usize, size: usize, rate: Option<u64>) -> Result<()> {
    if clients < 2 || window == 0 || count == 0 || rate == Some(0) {
        bail!("pairs needs at least 2 clients, a window, a count and a positive rate");
    }
    let pairs = clients / 2;
    // Each sender's interval between scheduled sends.
    let interval = rate.map(|r| Duration::from_secs_f64(pairs as f64 / r as f64));
    let run = format!("{:06x}", now_us() as u64 & 0xff_ffff);
    eprintln!("pairs: logging in {} clients", pairs * 2);
    // Log in everyone (64 pairs at a time): receivers take a username their sender resolves.
    let ready = setups_in_batches(cli, key, pairs, &run).await?;

    let probe = cli.server_pid.map(ServerProbe::start);
    let delivery = Arc::new(Mutex::new(Latencies::default()));
    let ack = Arc::new(Mutex::new(Latencies::default()));
    let acked_ids: Arc<Mutex<std::collections::HashSet<(usize, u64)>>> = Default::default();
    let failures: Arc<Mutex<HashMap<String, u64>>> = Default::default();
    let seen: Arc<Mutex<HashMap<(usize, u64), u32>>> = Default::default();
    let started = Instant::now();
    let started_us = now_us();
    let mut tasks = tokio::task::JoinSet::new();
    for (p, (sender, receiver, peer)) in ready.into_iter().enumerate() {
        // The receiver: every pushed message is counted once, its latency from its stamp.
        let mut rx = receiver.updates.lock().unwrap().take().unwrap();
        let (delivery, seen) = (delivery.clone(), seen.clone());
        tokio::spawn(async move {
            let _keep = receiver;
            while let Some(u) = rx.recv().await {
                let now = now_us();
                for text in new_messages(&u) {
                    let mut parts = text.split(' ');
                    let (Some("hb"), Some(seq), Some(ts)) = (parts.next(), parts.next(), parts.next()) else { continue };
                    let (Ok(seq), Ok(ts)) = (seq.parse::<u64>(), ts.parse::<i64>()) else { continue };
                    *seen.lock().unwrap().entry((p, seq)).or_default() += 1;
                    delivery.lock().unwrap().add((now - ts) as f64 / 1000.0);
                }
            }
        });
        // The sender: `window` sends in flight.
        let (ack, acked_ids, failures) = (ack.clone(), acked_ids.clone(), failures.clone());
        tasks.spawn(async move {
            let next = Arc::new(AtomicU64::new(0));
            let mut lanes = tokio::task::JoinSet::new();
            for _ in 0..window {
                let (sender, peer, next, ack, acked_ids, failures) =
                    (sender.clone(), peer.clone(), next.clone(), ack.clone(), acked_ids.clone(), failures.clone());
                lanes.spawn(async move {
                    let mut acked = 0u64;
                    loop {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= count as u64 {
                            return acked;
                        }
                        // On a schedule, latency counts from the scheduled time, so a run
                        // that falls behind shows its queueing (no coordinated omission).
                        let t0 = match interval {
                            Some(every) => {
                                // Senders are spread over the interval, not in step.
                                let at = every * seq as u32 + every.mul_f64(p as f64 / pairs as f64);
                                tokio::time::sleep_until((started + at).into()).await;
                                started_us + at.as_micros() as i64
                            }
                            None => now_us(),
                        };
                        let mut text = format!("hb {seq} {t0} ");
                        while text.len() < size {
                            text.push('x');
                        }
                        let req = client::send_message(&peer, text, (seq as i64) ^ (t0 << 20));
                        match sender.call_raw(&grammers_tl_types::Serializable::to_bytes(&req)).await {
                            Ok(_) => {
                                acked += 1;
                                acked_ids.lock().unwrap().insert((p, seq));
                                ack.lock().unwrap().add((now_us() - t0) as f64 / 1000.0);
                            }
                            Err(e) => {
                                let name = match e.downcast_ref::<client::RpcFailure>() {
                                    Some(f) => f.name().to_string(),
                                    None => e.to_string(),
                                };
                                *failures.lock().unwrap().entry(name).or_default() += 1;
                            }
                        }
                    }
                });
            }
            let mut acked = 0;
            while let Some(r) = lanes.join_next().await {
                acked += r.unwrap_or(0);
            }
            acked
        });
    }
    let mut acknowledged = 0u64;
    while let Some(r) = tasks.join_next().await {
        acknowledged += r.unwrap_or(0);
    }
    let send_done = started.elapsed();
    // Deliveries may trail the last acknowledgement a little.
    let expected = (pairs * count) as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < acknowledged as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64().max(send_done.as_secs_f64());
    let server = probe.map(|p| p.finish());
    let (delivered, lost, duplicates) = stats::tally(&acked_ids.lock().unwrap(), &seen.lock().unwrap());
    let failures = failures.lock().unwrap().clone();
    let echo = stats::echo(pairs, window, size.max(64), Duration::from_secs(3)).await?;
    let report = PairsReport {
        scenario: "pairs",
        clients: pairs * 2,
        window,
        rate,
        size,
        sent: expected,
        acknowledged,
        delivered,
        lost,
        duplicates,
        failed: failures,
        seconds,
        acked_per_sec: acknowledged as f64 / send_done.as_secs_f64(),
        delivered_per_sec: delivered as f64 / seconds,
        delivery_ms: delivery.lock().unwrap().summary(),
        ack_ms: ack.lock().unwrap().summary(),
        server_cpu_us_per_message: server.as_ref().map(|s| s.cpu_secs * 1e6 / delivered.max(1) as f64),
        server_rss_mib: server.as_ref().map(|s| s.rss_mib),
        echo_per_sec: echo,
        ratio_to_echo: acknowledged as f64 / send_done.as_secs_f64() / echo.max(1.0),
    };
    eprintln!(
        "pairs {} clients, window {}: {:.0} acked/s, {:.0} delivered/s ({:.1}% of loopback echo {:.0}/s); delivery ms p50 {:.2} p99 {:.2} p999 {:.2} max {:.2}; lost {}, duplicates {}, failed {:?}{}",
        report.clients,
        window,
        report.acked_per_sec,
        report.delivered_per_sec,
        report.ratio_to_echo * 100.0,
        echo,
        report.delivery_ms.p50,
        report.delivery_ms.p99,
        report.delivery_ms.p999,
        report.delivery_ms.max,
        lost,
        duplicates,
        report.failed,
        server.map(|s| format!("; server {:.0} µs CPU per message, RSS {:.0} MiB", report.server_cpu_us_per_message.unwrap_or(0.0), s.rss_mib)).unwrap_or_default()
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

type Ready = (Arc<Client>, Arc<Client>, enums::InputPeer);

async fn setups_in_batches(cli: &Cli, key: &RsaPublic, pairs: usize, run: &str) -> Result<Vec<Ready>> {
    let mut out = Vec::with_capacity(pairs);
    for start in (0..pairs).step_by(64) {
        let mut batch = tokio::task::JoinSet::new();
        for p in start..(start + 64).min(pairs) {
            let (server, sources, key, run) = (cli.server, cli.sources, key.clone(), run.to_string());
            batch.spawn(async move {
                let cli =
                    Cli { server, pubkey: None, server_pid: None, sources, scenario: Scenario::Idle { connections: 0, signed_in: false, hold_seconds: 0 } };
                let r = setup_pair(&cli, &key, p, &run).await;
                (p, r)
            });
        }
        let mut got = Vec::new();
        while let Some(r) = batch.join_next().await {
            let (p, r) = r.context("a login task panicked")?;
            got.push((p, r.with_context(|| format!("setting up pair {p}"))?));
        }
        got.sort_by_key(|(p, _)| *p);
        out.extend(got.into_iter().map(|(_, r)| r));
    }
    Ok(out)
}

async fn setup_pair(cli: &Cli, key: &RsaPublic, p: usize, run: &str) -> Result<Ready> {
    let sender = connect(cli, key, 2 * p).await?;
    let receiver = connect(cli, key, 2 * p + 1).await?;
    let base = u64::from_str_radix(run, 16).unwrap_or(0) as usize * 7919 + p * 2;
    let (_, peer) = client::pair_up(&sender, &receiver, base, format!("hb{run}x{p}")).await?;
    Ok((sender, receiver, peer))
}

#[derive(Serialize)]
struct LoginReport {
    scenario: &'static str,
    concurrency: usize,
    seconds: f64,
    key_exchanges: u64,
    failed: u64,
    per_sec: f64,
    exchange_ms: stats::Summary,
    server_cpu_ms_per_exchange: Option<f64>,
}

async fn login(cli: &Cli, key: &RsaPublic, concurrency: usize, seconds: u64) -> Result<()> {
    let probe = cli.server_pid.map(ServerProbe::start);
    let lat = Arc::new(Mutex::new(Latencies::default()));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let (server, src, key, lat, ok, failed) = (cli.server, source(cli, i), key.clone(), lat.clone(), ok.clone(), failed.clone());
        tasks.spawn(async move {
            while Instant::now() < until {
                let t0 = Instant::now();
                let key = key.clone();
                let r = tokio::spawn(async move {
                    let s = client::open(server, src).await?;
                    client::handshake(s, &key, seed()).await
                })
                .await;
                match r {
                    Ok(Ok(_)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.lock().unwrap().add(t0.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let server = probe.map(|p| p.finish());
    let n = ok.load(Ordering::Relaxed);
    let report = LoginReport {
        scenario: "login",
        concurrency,
        seconds: secs,
        key_exchanges: n,
        failed: failed.load(Ordering::Relaxed),
        per_sec: n as f64 / secs,
        exchange_ms: lat.lock().unwrap().summary(),
        server_cpu_ms_per_exchange: server.map(|s| s.cpu_secs * 1000.0 / n.max(1) as f64),
    };
    eprintln!(
        "login, {} concurrent: {:.1} key exchanges/s ({} failed); exchange ms p50 {:.1} p99 {:.1}{}",
        concurrency,
        report.per_sec,
        report.failed,
        report.exchange_ms.p50,
        report.exchange_ms.p99,
        report.server_cpu_ms_per_exchange.map(|c| format!("; server {c:.1} ms CPU per exchange")).unwrap_or_default()
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

#[derive(Serialize)]
struct IdleReport {
    scenario: &'static str,
    connections: usize,
    signed_in: bool,
    opened: usize,
    server_rss_growth_mib: Option<f64>,
    server_bytes_per_connection: Option<f64>,
}

async fn idle(cli: &Cli, key: &RsaPublic, connections: usize, signed_in: bool, hold_seconds: u64) -> Result<()> {
    let before = cli.server_pid.map(stats::rss_mib);
    let mut held = Vec::with_capacity(connections);
    for start in (0..connections).step_by(64) {
        let mut batch = tokio::task::JoinSet::new();
        for i in start..(start + 64).min(connections) {
            let (server, src, key) = (cli.server, source(cli, i), key.clone());
            batch.spawn(async move {
                let c = Client::connect(server, src, &key, seed()).await?;
                if signed_in {
                    client::log_in(&c, &client::test_phone(i)).await?;
                    c.call(&functions::updates::GetState {}).await?;
                } else {
                    c.call(&functions::help::GetNearestDc {}).await?;
                }
                anyhow::Ok(c)
            });
        }
        while let Some(r) = batch.join_next().await {
            match r {
                Ok(Ok(c)) => held.push(c),
                Ok(Err(e)) => eprintln!("idle: a connection failed: {e:#}"),
                Err(e) => eprintln!("idle: a connection panicked: {e}"),
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cli.server_pid.map(stats::rss_mib);
    let growth = before.zip(after).map(|(b, a)| a - b);
    let report = IdleReport {
        scenario: "idle",
        connections,
        signed_in,
        opened: held.len(),
        server_rss_growth_mib: growth,
        server_bytes_per_connection: growth.map(|g| g * 1024.0 * 1024.0 / held.len().max(1) as f64),
    };
    eprintln!(
        "idle: {} of {} {}connections held{}",
        held.len(),
        connections,
        if signed_in { "signed-in " } else { "" },
        report
            .server_bytes_per_connection
            .map(|b| format!("; server RSS +{:.1} MiB, {:.0} bytes per connection", growth.unwrap_or(0.0), b))
            .unwrap_or_default()
    );
    println!("{}", serde_json::to_string(&report)?);
    tokio::time::sleep(Duration::from_secs(hold_seconds)).await;
    drop(held);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Scenario::Chaos { herald, data_dir, pairs, seconds, kill_min, kill_max, rate } = cli.scenario.clone() {
        chaos::check_binary(&herald)?;
        if kill_max < kill_min || kill_min == 0 {
            bail!("--kill-min must be positive and at most --kill-max");
        }
        let dir = data_dir.unwrap_or_else(chaos::default_data_dir);
        let args = chaos::ChaosArgs { herald, data_dir: dir.clone(), pairs, seconds, kill_min, kill_max, sources: cli.sources, rate };
        let report = rt.block_on(chaos::run(args))?;
        eprintln!(
            "chaos: {} kills in {:.0} s; {} sent: {} ok, {} lost, {} duplicated, {} unknown (in flight at the end); {} resends; errors {:?}; {} senders stalled",
            report.kills,
            report.seconds,
            report.sent,
            report.ok,
            report.lost,
            report.duplicates,
            report.unknown,
            report.resends,
            report.errors,
            report.stalled
        );
        println!("{}", serde_json::to_string(&report)?);
        // Each sender has at most one message in flight when the run ends.
        if report.lost > 0 || report.duplicates > 0 || report.ok == 0 || report.unknown > report.pairs as u64 || report.stalled > 0 {
            bail!("chaos failed (data kept in {})", dir.display());
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.with_extension("log"));
        return Ok(());
    }
    let pubkey = cli.pubkey.clone().context("--pubkey is required (the server's server.pub.pem)")?;
    let pem = std::fs::read_to_string(&pubkey).with_context(|| format!("reading {}", pubkey.display()))?;
    let key = RsaPublic::from_pem(&pem).context("parsing the server's public key")?;
    rt.block_on(async {
        match cli.scenario.clone() {
            Scenario::Pairs { clients, window, count, size, rate } => pairs(&cli, &key, clients, window, count, size, rate).await,
            Scenario::Login { concurrency, seconds } => login(&cli, &key, concurrency, seconds).await,
            Scenario::Idle { connections, signed_in, hold_seconds } => idle(&cli, &key, connections, signed_in, hold_seconds).await,
            Scenario::Fanout { members, online, posts, window, data_dir } => {
                fanout::run(&cli, &key, fanout::FanoutArgs { members, online, posts, window, data_dir }).await
            }
            Scenario::Files { size_mib, streams } => files::run(&cli, &key, files::FilesArgs { size_mib, streams }).await,
            Scenario::Chaos { .. } => unreachable!("handled above"),
        }
    })
}
