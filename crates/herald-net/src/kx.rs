//! The key-exchange workers: RSA decryption and 2048-bit DH take milliseconds of CPU, so they
//! run here, off the runtime threads, on one thread per core at a lower scheduling priority
//! (nice 10 on Linux). Answering requests of logged-in clients then always comes first, and
//! a flood of key exchanges slows mostly other key exchanges (security.md §3.2).

use std::sync::mpsc;
use std::sync::Mutex;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct KxPool {
    // A std Mutex around the sender: taken only to clone-free send a job.
    tx: Mutex<mpsc::Sender<Job>>,
}

/// How much lower than the rest of the server the workers run (a `nice` increment).
pub const NICENESS: i32 = 10;

impl KxPool {
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("herald-kx-{i}")).spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rx.lock().unwrap().recv() {
                        Ok(j) => j,
                        Err(_) => return,
                    };
                    // A panicking job must not take the worker with it; its caller sees None.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a key-exchange worker");
            }
        }
        Self { tx: Mutex::new(tx) }
    }

    /// Runs `f` on a worker; None if the pool is gone or `f` panicked.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.tx.lock().unwrap().send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // two libc calls; std has no per-thread priority
fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers; on failure the thread simply keeps the
    // normal priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICENESS);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[allow(unsafe_code)] // reads the worker's priority back
    async fn jobs_run_on_lower_priority_workers() {
        let pool = KxPool::new(2);
        let nice = pool
            .run(|| {
                #[cfg(target_os = "linux")]
                // SAFETY: as above.
                unsafe {
                    libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t)
                }
                #[cfg(not(target_os = "linux"))]
                NICENESS
            })
            .await
            .unwrap();
        assert!(nice >= NICENESS, "{nice}");
        // a panicking job answers None and the pool goes on
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }
}
