//! `chaos`: the pairs load while the server is killed with SIGKILL at random intervals and
//! started again on the same data directory. Senders resend every unacknowledged message with
//! the same `random_id` until it is acknowledged; afterwards each receiver reads its whole
//! history and every message is classified: ok (acknowledged, stored once), lost
//! (acknowledged, not stored), duplicate (stored more than once), or unknown (in flight when
//! the run ended: stored once or not at all). The run fails on any lost or duplicate message.

use crate::client::{now_us, pair_up, send_message, Client, Credentials, Refused, RpcFailure};
use anyhow::{bail, Context, Result};
use grammers_tl_types::{enums, functions, types};
use herald_mtproto::rsa::RsaPublic;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ChaosArgs {
    pub herald: PathBuf,
    pub data_dir: PathBuf,
    pub pairs: usize,
    pub seconds: u64,
    pub kill_min: u64,
    pub kill_max: u64,
    pub sources: u8,
    /// Messages per second per sender (bounds how much the final check must read).
    pub rate: u64,
}

#[derive(Serialize, Default)]
pub struct ChaosReport {
    pub scenario: &'static str,
    pub pairs: usize,
    pub seconds: f64,
    pub kills: u64,
    pub sent: u64,
    pub ok: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unknown: u64,
    pub resends: u64,
    /// Answers other than a result, by name (FLOOD_WAIT is waited out and retried).
    pub errors: HashMap<String, u64>,
    /// Senders with no acknowledged message in the last 10 s of the run.
    pub stalled: u64,
}

struct Server {
    child: Option<Child>,
    herald: PathBuf,
    data_dir: PathBuf,
    addr: SocketAddr,
}

impl Server {
    fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.with_extension("log"))?;
        let child = Command::new(&self.herald)
            .args(["serve", "--test-phones", "--data-dir"])
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.herald.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the server did not start listening on {}", self.addr)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn source(sources: u8, i: usize) -> Option<IpAddr> {
    (sources > 1).then(|| IpAddr::from([127, 0, 0, 1 + (i % sources as usize) as u8]))
}

/// Connects again with `creds` until it works or `give_up` passes.
async fn reconnect(addr: SocketAddr, src: Option<IpAddr>, creds: &Credentials, give_up: Instant) -> Result<Arc<Client>> {
    let mut n = 0u64;
    loop {
        n += 1;
        match Client::resume(addr, src, creds, (now_us() as u64) ^ n).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > give_up => return Err(e).context("reconnecting"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

struct Pair {
    sender: Credentials,
    receiver: Credentials,
    sender_id: i64,
    to_receiver: enums::InputPeer,
}

async fn set_up(addr: SocketAddr, sources: u8, key: &RsaPublic, p: usize, run: u64) -> Result<Pair> {
    let sender = Client::connect(addr, source(sources, 2 * p), key, run ^ (2 * p as u64 + 1)).await?;
    let receiver = Client::connect(addr, source(sources, 2 * p + 1), key, run ^ (2 * p as u64 + 2)).await?;
    let base = (run as usize % 7919) * 13 + p * 2;
    let (sender_id, to_receiver) = pair_up(&sender, &receiver, base, format!("ch{:x}x{p}", run & 0xff_ffff)).await?;
    Ok(Pair { sender: sender.credentials(), receiver: receiver.credentials(), sender_id, to_receiver })
}

/// Every text in the receiver's dialog with the sender, newest first.
async fn history(c: &Client, sender_id: i64) -> Result<Vec<String>> {
    let peer = enums::InputPeer::User(types::InputPeerUser { user_id: sender_id, access_hash: 0 });
    let mut texts = Vec::new();
    let mut offset_id = 0;
    loop {
        let req = functions::messages::GetHistory { peer: peer.clone(), offset_id, offset_date: 0, add_offset: 0, limit: 100, max_id: 0, min_id: 0, hash: 0 };
        let msgs = match c.call(&req).await? {
            enums::messages::Messages::Messages(m) => m.messages,
            enums::messages::Messages::Slice(m) => m.messages,
            enums::messages::Messages::ChannelMessages(m) => m.messages,
            enums::messages::Messages::NotModified(_) => vec![],
        };
        let mut last = None;
        for m in &msgs {
            if let enums::Message::Message(m) = m {
                texts.push(m.message.clone());
                last = Some(m.id);
            }
        }
        match last {
            Some(id) => offset_id = id,
            None => return Ok(texts),
        }
    }
}

/// Classifies each sent sequence number: (ok, lost, duplicates, unknown).
pub fn classify(sent: u64, acked: &[bool], stored: &HashMap<u64, u32>) -> (u64, u64, u64, u64) {
    let (mut ok, mut lost, mut dup, mut unknown) = (0, 0, 0, 0);
    for seq in 0..sent {
        let n = stored.get(&seq).copied().unwrap_or(0);
        let was_acked = acked.get(seq as usize).copied().unwrap_or(false);
        match (was_acked, n) {
            (_, n) if n > 1 => dup += 1,
            (true, 1) => ok += 1,
            (true, _) => lost += 1,
            (false, _) => unknown += 1,
        }
    }
    (ok, lost, dup, unknown)
}

pub async fn run(args: ChaosArgs) -> Result<ChaosReport> {
    let addr = free_port()?;
    let _ = std::fs::remove_dir_all(&args.data_dir);
    let mut server = Server { child: None, herald: args.herald.clone(), data_dir: args.data_dir.clone(), addr };
    server.start()?;
    let pem = std::fs::read_to_string(args.data_dir.join("server.pub.pem")).context("reading the server's public key")?;
    let key = RsaPublic::from_pem(&pem)?;
    let run = now_us() as u64;
    let mut pairs = Vec::new();
    for p in 0..args.pairs {
        pairs.push(set_up(addr, args.sources, &key, p, run).await.with_context(|| format!("setting up pair {p}"))?);
    }
    eprintln!("chaos: {} pairs logged in; sending for {} s, killing the server every {}–{} s", args.pairs, args.seconds, args.kill_min, args.kill_max);

    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let resends = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<HashMap<String, u64>>> = Default::default();
    let mut senders = tokio::task::JoinSet::new();
    for (p, pair) in pairs.iter().enumerate() {
        let (creds, peer, stop, resends, errors, src, rate) =
            (pair.sender.clone(), pair.to_receiver.clone(), stop.clone(), resends.clone(), errors.clone(), source(args.sources, 2 * p), args.rate);
        senders.spawn(async move {
            let mut acked: Vec<bool> = Vec::new();
            let mut last_ack = Instant::now();
            let mut client = reconnect(addr, src, &creds, Instant::now() + Duration::from_secs(60)).await?;
            let mut seq = 0u64;
            let pace = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let mut next_send = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next_send.into()).await;
                next_send += pace;
                let random_id = ((run as i64) << 24) ^ ((p as i64) << 40) ^ seq as i64 ^ 0x5a5a;
                acked.push(false);
                while !stop.load(Ordering::Relaxed) {
                    let req = send_message(&peer, format!("c {seq}"), random_id);
                    let err = match client.call(&req).await {
                        Ok(_) => {
                            acked[seq as usize] = true;
                            last_ack = Instant::now();
                            break;
                        }
                        Err(e) => e,
                    };
                    // Every retry sends the same random_id: the server must store it once.
                    resends.fetch_add(1, Ordering::Relaxed);
                    if let Some(f) = err.downcast_ref::<RpcFailure>() {
                        *errors.lock().unwrap().entry(f.name().to_string()).or_default() += 1;
                        let wait = f.flood_wait().unwrap_or(0).max(if f.code >= 500 { 1 } else { 0 });
                        tokio::time::sleep(Duration::from_secs(wait).max(Duration::from_millis(20))).await;
                    } else if let Some(r) = err.downcast_ref::<Refused>() {
                        // A new salt (48) or a refused msg_id: the same connection can go on.
                        *errors.lock().unwrap().entry(r.to_string()).or_default() += 1;
                    } else {
                        // The connection is gone (the server was killed): reconnect, backing off.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        client = reconnect(addr, src, &creds, Instant::now() + Duration::from_secs(60)).await?;
                    }
                }
                seq += 1;
            }
            anyhow::Ok((p, acked, last_ack))
        });
    }
    // The killer.
    let mut kills = 0u64;
    let mut rng = run | 1;
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = Duration::from_secs(args.kill_min) + Duration::from_millis(rng % ((args.kill_max.saturating_sub(args.kill_min)) * 1000 + 1));
        if Instant::now() + wait >= until {
            tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
            break;
        }
        tokio::time::sleep(wait).await;
        server.kill();
        kills += 1;
        eprintln!("chaos: killed the server ({kills}), starting it again");
        server.start()?;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked_by_pair = HashMap::new();
    let mut stalled = 0;
    while let Some(r) = senders.join_next().await {
        let (p, acked, last_ack) = r.context("a sender panicked")??;
        if last_ack.elapsed() > Duration::from_secs(10) {
            stalled += 1;
        }
        acked_by_pair.insert(p, acked);
    }
    let seconds = started.elapsed().as_secs_f64();
    // One last restart, so the check reads what is on disk, not what a process remembers.
    server.kill();
    server.start()?;
    let errors = errors.lock().unwrap().clone();
    let mut report =
        ChaosReport { scenario: "chaos", pairs: args.pairs, seconds, kills, resends: resends.load(Ordering::Relaxed), errors, stalled, ..Default::default() };
    for (p, pair) in pairs.iter().enumerate() {
        let receiver = reconnect(addr, source(args.sources, 2 * p + 1), &pair.receiver, Instant::now() + Duration::from_secs(60)).await?;
        let mut stored: HashMap<u64, u32> = HashMap::new();
        for t in history(&receiver, pair.sender_id).await? {
            if let Some(seq) = t.strip_prefix("c ").and_then(|s| s.parse().ok()) {
                *stored.entry(seq).or_default() += 1;
            }
        }
        let acked = acked_by_pair.remove(&p).unwrap_or_default();
        let (ok, lost, dup, unknown) = classify(acked.len() as u64, &acked, &stored);
        report.sent += acked.len() as u64;
        report.ok += ok;
        report.lost += lost;
        report.duplicates += dup;
        report.unknown += unknown;
    }
    server.kill();
    Ok(report)
}

pub fn default_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("herald-chaos-{}", std::process::id()))
}

pub fn check_binary(p: &Path) -> Result<()> {
    if !p.is_file() {
        bail!("no herald binary at {} (build it first)", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_is_classified_once() {
        // seq 0 ok, 1 lost, 2 duplicated, 3 in flight at the end and stored, 4 in flight, not stored
        let acked = [true, true, true, false, false];
        let stored: HashMap<u64, u32> = [(0, 1), (2, 2), (3, 1)].into();
        assert_eq!(classify(5, &acked, &stored), (1, 1, 1, 2));
    }
}
