//! Write-path benchmark: `cargo bench -p herald-store-sqlite`.
//!
//! The store's side of a private message, without the network: `SENDERS` senders each send to
//! their own receiver, one send in flight each (like `herald-bench pairs --window 1`), every
//! send the ops `MessageService::send_private` writes (the block and deactivation check, the
//! new-chat TTL, the sender's copy under its random id, the receiver's copy) through the real
//! group-commit writer onto a real file with `synchronous = FULL`. Reported per phase, as the
//! store grows: messages per second, and the CPU time per message of the writer thread, of the
//! reader threads and of the whole process (from `/proc/self/task`). Run it on an idle machine
//! and compare runs in the same hour; the figures are for telling a change's effect, not
//! targets.

use herald_domain::model::{BoxId, Message, Peer, UserId};
use herald_domain::store::{BoxOp, MessageStore, NewCopy};
use herald_store_sqlite::SqliteStore;
use std::time::Instant;

const SENDERS: i64 = 100;
const PER_PHASE: i64 = 100; // messages per sender per phase
const PHASES: usize = 5;

/// CPU seconds so far of this process's threads whose name starts with `prefix` (all with "").
fn cpu(prefix: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14 and stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            total += (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
        }
    }
    total
}

fn send_ops(from: i64, to: i64, text: String, date: i32, random_id: i64) -> Vec<(BoxId, BoxOp)> {
    let (f, t) = (UserId(from), UserId(to));
    let msg = Message::draft(f, Peer::User(t), date, text, vec![], herald_domain::ids::next());
    let copy = Message { peer: Peer::User(f), out: false, ..msg.clone() };
    vec![
        (BoxId::User(t), BoxOp::UnlessBlocked { a: f, b: t }),
        (BoxId::User(f), BoxOp::NewChatTtl { from: f, to: t }),
        (BoxId::User(f), BoxOp::Append(NewCopy { message: msg, random_id: Some(random_id), unread: false })),
        (BoxId::User(t), BoxOp::Append(NewCopy { message: copy, random_id: None, unread: true })),
    ]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("herald-write-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("herald.db")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    println!("{SENDERS} senders to {SENDERS} receivers, window 1, {} messages per phase", SENDERS * PER_PHASE);
    for phase in 0..PHASES {
        let (all, writer, readers) = (cpu(""), cpu("herald-sqlite-w"), cpu("herald-sqlite-r"));
        let start = Instant::now();
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for s in 0..SENDERS {
                let store = store.clone();
                let (from, to) = (1_000 + s, 2_000 + s);
                tasks.spawn(async move {
                    for k in 0..PER_PHASE {
                        let rid = (phase as i64) << 40 | s << 20 | k;
                        let text = format!("message {k} of phase {phase} from sender {s}, sixty-four bytes long.");
                        let ops = send_ops(from, to, text, 1_800_000_000, rid);
                        let applied = store.apply(ops, Some((BoxId::User(UserId(from)), UserId(from), rid))).await.unwrap();
                        assert!(!applied.duplicate);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        let n = (SENDERS * PER_PHASE) as f64;
        let secs = start.elapsed().as_secs_f64();
        let per = |c: f64| c * 1e6 / n;
        println!(
            "phase {phase} ({:>7} stored): {:>7.0} msg/s; CPU per message: writer {:>4.0} µs, readers {:>3.0} µs, process {:>4.0} µs",
            (phase + 1) as i64 * SENDERS * PER_PHASE,
            n / secs,
            per(cpu("herald-sqlite-w") - writer),
            per(cpu("herald-sqlite-r") - readers),
            per(cpu("") - all),
        );
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
