//! Latency summaries, the server's CPU and memory from /proc, and the loopback echo baseline.

use anyhow::Result;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
pub struct Latencies(Vec<f64>);

#[derive(Serialize, Default, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latencies {
    pub fn add(&mut self, ms: f64) {
        self.0.push(ms);
    }

    pub fn summary(&mut self) -> Summary {
        if self.0.is_empty() {
            return Summary::default();
        }
        self.0.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| self.0[((self.0.len() as f64 * q).ceil() as usize).clamp(1, self.0.len()) - 1];
        Summary { count: self.0.len(), p50: at(0.50), p99: at(0.99), p999: at(0.999), max: *self.0.last().unwrap() }
    }
}

/// (delivered, lost, duplicates) message by message: a message counts as delivered once
/// however often it arrived, every extra arrival is a duplicate, and an acknowledged message
/// that never arrived is lost (whatever else arrived).
pub fn tally<K: std::hash::Hash + Eq>(acknowledged: &std::collections::HashSet<K>, seen: &std::collections::HashMap<K, u32>) -> (u64, u64, u64) {
    let delivered = seen.values().filter(|&&n| n > 0).count() as u64;
    let duplicates = seen.values().map(|&n| n.saturating_sub(1) as u64).sum();
    let lost = acknowledged.iter().filter(|k| seen.get(k).is_none_or(|&n| n == 0)).count() as u64;
    (delivered, lost, duplicates)
}

/// The server's CPU seconds (user + system) and RSS, read from /proc.
pub struct ServerProbe {
    pid: u32,
    cpu_start: f64,
}

pub struct ServerUse {
    pub cpu_secs: f64,
    pub rss_mib: f64,
}

fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which may contain spaces): utime is the 14th, stime 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

impl ServerProbe {
    pub fn start(pid: u32) -> Self {
        Self { pid, cpu_start: cpu_secs(pid) }
    }

    pub fn finish(self) -> ServerUse {
        ServerUse { cpu_secs: cpu_secs(self.pid) - self.cpu_start, rss_mib: rss_mib(self.pid) }
    }
}

/// Messages per second a loopback TCP echo carries with `pairs` connections, `window`
/// messages in flight each, `size` bytes each, for `time`: the machine's ceiling.
pub async fn echo(pairs: usize, window: usize, size: usize, time: Duration) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + time;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..pairs.max(1) {
        let done = done.clone();
        tasks.spawn(async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return };
            let _ = s.set_nodelay(true);
            let msg = vec![7u8; size];
            let mut back = vec![0u8; size * window];
            while Instant::now() < until {
                for _ in 0..window {
                    if s.write_all(&msg).await.is_err() {
                        return;
                    }
                }
                if s.read_exact(&mut back).await.is_err() {
                    return;
                }
                done.fetch_add(window as u64, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    server.abort();
    Ok(done.load(Ordering::Relaxed) as f64 / time.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_counts_once_and_losses_show() {
        let seen: std::collections::HashMap<(usize, u64), u32> = [((0, 1), 1), ((0, 2), 3), ((1, 1), 1)].into();
        // four acknowledged: three seen (one of them three times), one lost
        let acked = [(0, 1), (0, 2), (1, 1), (1, 2)].into();
        assert_eq!(tally(&acked, &seen), (3, 1, 2));
        // a message that arrived without its acknowledgement does not hide a lost one
        let acked = [(0, 1), (0, 2), (9, 9)].into();
        assert_eq!(tally(&acked, &seen), (3, 1, 2));
    }

    #[test]
    fn percentiles_count_each_sample_once() {
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.add(i as f64);
        }
        let s = l.summary();
        assert_eq!((s.count, s.p50, s.p99, s.p999, s.max), (1000, 500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Latencies::default().summary().count, 0);
    }
}
