//! `fanout`: one supergroup of M members, K of them online on real connections, one poster.
//! Reports deliveries per second, latency to the last online member, the server's CPU per
//! delivery, and the bytes stored per post at 10 members and at M (which should be about
//! equal: a channel post is stored once).

use crate::client::{log_in, now_us, send_message, test_phone, Client};
use crate::stats::{Latencies, ServerProbe};
use crate::{connect, Cli};
use anyhow::{bail, Context, Result};
use grammers_tl_types::{enums, functions, types};
use herald_mtproto::rsa::RsaPublic;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per post: how many members got it, its send stamp, the last arrival (µs).
type Arrivals = HashMap<u64, (u32, i64, i64)>;

pub struct FanoutArgs {
    pub members: usize,
    pub online: usize,
    pub posts: usize,
    pub window: usize,
    /// The server's data directory, to measure stored bytes.
    pub data_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct FanoutReport {
    scenario: &'static str,
    members: usize,
    online: usize,
    posts: usize,
    deliveries: u64,
    expected: u64,
    duplicates: u64,
    seconds: f64,
    deliveries_per_sec: f64,
    latency_to_last_ms: crate::stats::Summary,
    server_cpu_us_per_delivery: Option<f64>,
    deliveries_per_server_cpu_sec: Option<f64>,
    stored_bytes_per_post_10: Option<f64>,
    stored_bytes_per_post_all: Option<f64>,
}

/// Bytes of the database and its WAL.
fn stored(dir: &Path) -> Option<f64> {
    let size = |n: &str| std::fs::metadata(dir.join(n)).map(|m| m.len()).unwrap_or(0);
    let total = size("herald.db") + size("herald.db-wal");
    (total > 0).then_some(total as f64)
}

fn channel_of(updates: &enums::Updates) -> Option<enums::InputChannel> {
    let chats = match updates {
        enums::Updates::Updates(u) => &u.chats,
        enums::Updates::Combined(u) => &u.chats,
        _ => return None,
    };
    chats.iter().find_map(|c| match c {
        enums::Chat::Channel(c) => Some(enums::InputChannel::Channel(types::InputChannel { channel_id: c.id, access_hash: c.access_hash.unwrap_or(0) })),
        _ => None,
    })
}

/// The channel with this username, as `c`'s user sees it.
async fn resolve(c: &Client, name: &str) -> Result<enums::InputChannel> {
    let enums::contacts::ResolvedPeer::Peer(r) = c.call(&functions::contacts::ResolveUsername { username: name.into(), referer: None }).await?;
    r.chats
        .iter()
        .find_map(|c| match c {
            enums::Chat::Channel(c) => Some(enums::InputChannel::Channel(types::InputChannel { channel_id: c.id, access_hash: c.access_hash.unwrap_or(0) })),
            _ => None,
        })
        .context("the channel did not resolve")
}

async fn join(c: &Client, name: &str) -> Result<()> {
    let channel = resolve(c, name).await?;
    match c.call(&functions::channels::JoinChannel { channel }).await {
        Ok(_) => Ok(()),
        Err(e) if format!("{e:#}").contains("USER_ALREADY_PARTICIPANT") => Ok(()),
        Err(e) => Err(e),
    }
}

fn as_peer(c: &enums::InputChannel) -> enums::InputPeer {
    match c {
        enums::InputChannel::Channel(c) => enums::InputPeer::Channel(types::InputPeerChannel { channel_id: c.channel_id, access_hash: c.access_hash }),
        _ => enums::InputPeer::Empty,
    }
}

/// The stamped texts of channel posts in a pushed `Updates`.
fn posts(bytes: &[u8]) -> Vec<String> {
    use grammers_tl_types::Deserializable;
    let updates = match enums::Updates::from_bytes(bytes) {
        Ok(enums::Updates::Updates(u)) => u.updates,
        Ok(enums::Updates::Combined(u)) => u.updates,
        _ => return vec![],
    };
    updates
        .into_iter()
        .filter_map(|u| match u {
            enums::Update::NewChannelMessage(n) => match n.message {
                enums::Message::Message(m) => Some(m.message),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Posts `count` stamped messages with `window` in flight; returns when all are acknowledged.
async fn post(owner: &Arc<Client>, peer: &enums::InputPeer, tag: &str, count: usize, window: usize) -> Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut lanes = tokio::task::JoinSet::new();
    for _ in 0..window.max(1) {
        let (owner, peer, next, tag) = (owner.clone(), peer.clone(), next.clone(), tag.to_string());
        lanes.spawn(async move {
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= count {
                    return anyhow::Ok(());
                }
                let text = format!("{tag} {seq} {}", now_us());
                owner.call(&send_message(&peer, text, (now_us() << 8) ^ seq as i64)).await?;
            }
        });
    }
    while let Some(r) = lanes.join_next().await {
        r??;
    }
    Ok(())
}

pub async fn run(cli: &Cli, key: &RsaPublic, a: FanoutArgs) -> Result<()> {
    if a.online + 1 > a.members || a.online < 10 {
        bail!("fanout needs at least 10 online members and more members than that");
    }
    let run = format!("{:06x}", now_us() as u64 & 0xff_ffff);
    // Numbers from 20 000 up, apart from the pairs scenario's.
    let phone = |i: usize| test_phone(20_000 + i);
    let owner = connect(cli, key, 0).await?;
    log_in(&owner, &phone(0)).await?;
    let mut channels = Vec::new();
    for (title, name) in [("fanout", format!("fan{run}")), ("small", format!("fansmall{run}"))] {
        let created = owner
            .call(&functions::channels::CreateChannel {
                broadcast: false,
                megagroup: true,
                for_import: false,
                forum: false,
                title: title.into(),
                about: String::new(),
                geo_point: None,
                address: None,
                ttl_period: None,
            })
            .await?;
        let channel = channel_of(&created).context("createChannel answered no channel")?;
        owner.call(&functions::channels::UpdateUsername { channel: channel.clone(), username: name.clone() }).await?;
        channels.push((channel, name));
    }
    let (big, big_name) = channels[0].clone();
    let (small, small_name) = channels[1].clone();

    // Offline members: a few connections sign many accounts in and out, each joining.
    let offline = a.members - a.online - 1;
    eprintln!("fanout: {offline} offline members joining");
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    const WORKERS: usize = 8;
    for w in 0..WORKERS {
        let c = connect(cli, key, w + 1).await?;
        let name = big_name.clone();
        let phones: Vec<String> = (0..offline).filter(|i| i % WORKERS == w).map(|i| phone(1 + a.online + i)).collect();
        workers.spawn(async move {
            for p in phones {
                log_in(&c, &p).await?;
                join(&c, &name).await?;
                c.call(&functions::auth::LogOut {}).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    eprintln!("fanout: offline members joined in {:.0} s; connecting {} online members", started.elapsed().as_secs_f64(), a.online);

    // Online members: one connection each; the first nine also join the small channel.
    let mut online = Vec::with_capacity(a.online);
    for start in (0..a.online).step_by(64) {
        let mut batch = tokio::task::JoinSet::new();
        for i in start..(start + 64).min(a.online) {
            let (cli_server, src, key) = (cli.server, crate::source(cli, i), key.clone());
            let (big_name, small_name, p) = (big_name.clone(), small_name.clone(), phone(1 + i));
            batch.spawn(async move {
                let c = Client::connect(cli_server, src, &key, crate::seed()).await?;
                log_in(&c, &p).await?;
                join(&c, &big_name).await?;
                if i < 9 {
                    join(&c, &small_name).await?;
                }
                anyhow::Ok(c)
            });
        }
        while let Some(r) = batch.join_next().await {
            online.push(r.context("an online member panicked")??);
        }
    }

    // Receivers: every post counted once per member, the last arrival per post kept.
    let last: Arc<Mutex<Arrivals>> = Default::default();
    let dup = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for c in &online {
        let mut rx = c.updates.lock().unwrap().take().context("updates taken")?;
        let (last, dup, tag) = (last.clone(), dup.clone(), format!("fo{run}"));
        let mut seen = std::collections::HashSet::new();
        tokio::spawn(async move {
            while let Some(u) = rx.recv().await {
                let now = now_us();
                for text in posts(&u) {
                    let mut parts = text.split(' ');
                    let (Some(t), Some(seq), Some(ts)) = (parts.next(), parts.next(), parts.next()) else { continue };
                    let (true, Ok(seq), Ok(ts)) = (t == tag, seq.parse::<u64>(), ts.parse::<i64>()) else { continue };
                    if !seen.insert(seq) {
                        dup.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    let mut l = last.lock().unwrap();
                    let e = l.entry(seq).or_insert((0, ts, now));
                    e.0 += 1;
                    e.2 = e.2.max(now);
                }
            }
        });
    }

    // Stored bytes per post with 10 members.
    let per_post = |before: Option<f64>, after: Option<f64>, n: usize| before.zip(after).map(|(b, a)| (a - b) / n as f64);
    let dir = a.data_dir.clone();
    let size = || dir.as_deref().and_then(stored);
    let small_before = size();
    post(&owner, &as_peer(&small), &format!("fs{run}"), a.posts, a.window).await?;
    let small_bytes = per_post(small_before, size(), a.posts);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let probe = cli.server_pid.map(ServerProbe::start);
    let big_before = size();
    eprintln!("fanout: {} online members connected; posting {} times to the supergroup", a.online, a.posts);
    let t0 = Instant::now();
    post(&owner, &as_peer(&big), &format!("fo{run}"), a.posts, a.window).await?;
    let expected = (a.posts * a.online) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: u64 = last.lock().unwrap().values().map(|v| v.0 as u64).sum();
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let used = probe.map(|p| p.finish());
    let big_bytes = per_post(big_before, size(), a.posts);
    let (deliveries, mut lat) = {
        let l = last.lock().unwrap();
        let mut lat = Latencies::default();
        for (_, ts, at) in l.values() {
            lat.add((at - ts) as f64 / 1000.0);
        }
        (l.values().map(|v| v.0 as u64).sum::<u64>(), lat)
    };
    let report = FanoutReport {
        scenario: "fanout",
        members: a.members,
        online: a.online,
        posts: a.posts,
        deliveries,
        expected,
        duplicates: dup.load(std::sync::atomic::Ordering::Relaxed),
        seconds: secs,
        deliveries_per_sec: deliveries as f64 / secs,
        latency_to_last_ms: lat.summary(),
        server_cpu_us_per_delivery: used.as_ref().map(|u| u.cpu_secs * 1e6 / deliveries.max(1) as f64),
        deliveries_per_server_cpu_sec: used.as_ref().map(|u| deliveries as f64 / u.cpu_secs.max(1e-9)),
        stored_bytes_per_post_10: small_bytes,
        stored_bytes_per_post_all: big_bytes,
    };
    eprintln!(
        "fanout: {} members, {} online, {} posts: {}/{} deliveries ({} dup) in {:.2} s = {:.0}/s; to the last member p50 {:.1} ms p99 {:.1} ms{}{}",
        a.members,
        a.online,
        a.posts,
        deliveries,
        expected,
        report.duplicates,
        secs,
        report.deliveries_per_sec,
        report.latency_to_last_ms.p50,
        report.latency_to_last_ms.p99,
        report.deliveries_per_server_cpu_sec.map(|d| format!("; {d:.0} deliveries per server CPU-second")).unwrap_or_default(),
        small_bytes.zip(big_bytes).map(|(s, b)| format!("; stored per post: {s:.0} B at 10 members, {b:.0} B at {}", a.members)).unwrap_or_default(),
    );
    println!("{}", serde_json::to_string(&report)?);
    if deliveries < expected {
        bail!("{} of {expected} deliveries arrived", deliveries);
    }
    Ok(())
}
