//! Herald's embedded storage: SQLite, bundled so nothing needs installing.
//!
//! **Durability**: WAL mode with `synchronous = FULL`, so a commit is on disk when it returns.
//! **Group commit**: every write goes to one writer thread, which takes all queued jobs (up
//! to [`MAX_BATCH`]) into one transaction, each under its own savepoint so one failing job
//! does not undo the others, commits once, and only then releases the results: **no caller
//! hears "done" before its data is durable.** Reads run on a small pool of read-only
//! connections and see every committed write.

mod accounts;
pub mod blobs;
mod codes;
mod files;
mod groups;
mod keys;
mod messages;
mod passwords;
mod scheduled;
pub mod schema;
mod seen;

use herald_domain::error::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most write jobs folded into one transaction.
pub const MAX_BATCH: usize = 256;
/// Write jobs queued before callers wait (backpressure).
pub const WRITE_QUEUE: usize = 4096;
pub const READERS: usize = 2;
/// Read connections for [`SqliteStore::lookup`], used on the caller's own thread: one per
/// runtime thread (tokio starts one per core), at least 2 and at most 16.
pub fn lookup_connections() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 16)
}
/// The WAL's size, in pages (about 160 MiB), from which the writer works to start it over:
/// its next transaction does so only when it begins with every frame copied back into the
/// database file, so the writer copies the last frames itself, between two batches, once
/// the checkpointer thread has left few (`CHECKPOINT_LAST_STEP`). SQLite's own automatic
/// checkpoint did all of this inside the commit that crossed the size: thousands of pages
/// copied and the database file synced while that batch's callers waited.
///
/// Large because every message rewrites a page of each per-box index (its sender's and its
/// receiver's), and a checkpoint writes each page once however often it changed since the
/// last: with 10 000 pages the checkpoints wrote almost as many bytes as the WAL itself,
/// and the disk's bandwidth was what bounded the message rate (README "Benchmarks"). The
/// cost is disk space for the WAL (its file keeps the largest size it reached: usually a
/// little over this, at most about twice) and a longer replay after a crash (about a
/// second at this size).
pub const CHECKPOINT_PAGES: i32 = 40_000;
/// WAL pages written since the checkpointer thread was last asked for a pass at which it is
/// asked again: it copies them beside the writer, without holding it up. Not much smaller,
/// for the same reason: a page changed again after its copy is copied again.
pub const CHECKPOINT_STEP: i32 = 15_000;
/// The most WAL pages the writer copies itself (callers of the batches behind it wait for
/// that). Past `CHECKPOINT_PAGES` the checkpointer runs pass after pass, each copying what
/// was written during the one before, until no more than this is left; past twice
/// `CHECKPOINT_PAGES` (the checkpointer kept from catching up, by a long read for instance)
/// the writer copies what it can whatever is left.
pub const CHECKPOINT_LAST_STEP: i32 = 3_000;
/// Bytes the WAL file is cut back to when it starts over: above the most it holds (twice
/// `CHECKPOINT_PAGES` and a last batch, frames of 4 KiB pages and their headers, and the
/// file's header), so that it is rewritten in place rather than cut and grown again each time.
const WAL_SIZE_LIMIT: i64 = (2 * CHECKPOINT_PAGES as i64 + CHECKPOINT_LAST_STEP as i64) * (4096 + 24) + 32;

thread_local! {
    /// The WAL's size in pages after the last commit on this thread (the writer's), from
    /// SQLite's WAL hook.
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn wal_committed(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// Runs a passive checkpoint: it copies what it can without waiting for readers or the
/// writer. What it found goes into `copied` (see [`Copied::pack`]); a failure is logged.
fn checkpoint(conn: &Connection, copied: &AtomicU64) {
    // Its row: busy, the WAL's frames and how many of them are copied back (-1 for both when
    // another connection held the checkpoint).
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok(Copied { wal: r.get(1)?, copied: r.get(2)? })) {
        Ok(c) => copied.store(c.pack(), Ordering::Relaxed),
        Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
    }
}

/// What a checkpoint found: the WAL's frames and how many of them are in the database file.
#[derive(Clone, Copy)]
struct Copied {
    wal: i32,
    copied: i32,
}

impl Copied {
    /// One value, so that the writer never reads one pass's WAL size with another's count.
    fn pack(self) -> u64 {
        (u64::from(self.wal as u32) << 32) | u64::from(self.copied as u32)
    }
    /// Frames of a WAL of `pages` frames known to be copied back: none when the pass saw a
    /// larger WAL (one since started over; its count says nothing of this one) or failed.
    fn of_wal(packed: u64, pages: i32) -> i32 {
        let (wal, copied) = ((packed >> 32) as u32 as i32, packed as u32 as i32);
        if wal < 0 || wal > pages {
            0
        } else {
            copied.max(0)
        }
    }
}

/// Most keys one [`SqliteStore::lookup`] reads; longer lists go to the readers.
pub const LOOKUP_MAX_KEYS: usize = 16;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::Sender<WriteJob>,
    readers: std_mpsc::SyncSender<ReadJob>,
    /// Idle connections for lookups run in place (see [`SqliteStore::lookup`]).
    lookups: Mutex<Vec<Connection>>,
    /// Users as viewers see them, kept coherent by the writer (`seen.rs`).
    seen: Arc<seen::SeenCache>,
}

fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The automatic checkpoint at 10 000 WAL pages serves connections other than the
        // store's writer, which replaces it with its own (`CHECKPOINT_PAGES`). Durability is
        // the WAL's (synced at each commit).
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals (one per savepoint, i.e. per write job) and temporary b-trees in
    // memory: on disk each was a temporary file created, written and deleted per transaction.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A larger page cache for the writer, which rewrites the same index pages message after
    // message (the default is 2 MiB). No mmap: a disk error while reading a mapped page is a
    // SIGBUS, not an error we can answer.
    conn.pragma_update(None, "cache_size", if read_only { -8 * 1024 } else { -32 * 1024 })?;
    Ok(conn)
}

/// A read connection for [`SqliteStore::lookup`], used on runtime threads. A small page
/// cache: SQLite empties a read connection's cache whenever another connection committed
/// since its last read, so under write load little survives between lookups anyway. A short
/// busy timeout: a WAL reader is kept waiting only while another connection recovers the WAL
/// after a crash (not while this process runs), and a runtime thread must not sleep for
/// seconds; such a read fails instead.
fn open_lookup(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(path, true)?;
    conn.busy_timeout(std::time::Duration::from_millis(50))?;
    conn.pragma_update(None, "cache_size", -2 * 1024)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = open(path, false).map_err(backend)?;
        schema::migrate(&mut conn).map_err(backend)?;
        // New logical ids stay above every one this store holds or still names (a deleted
        // message's search row or reactions), whatever the clock did since.
        let max_logical: Option<i64> = conn
            .query_row(
                "SELECT MAX(m) FROM (SELECT MAX(logical_id) AS m FROM messages
                    UNION ALL SELECT (SELECT rowid FROM search ORDER BY rowid DESC LIMIT 1)
                    UNION ALL SELECT MAX(logical_id) FROM reactions)",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        herald_domain::ids::raise_floor(max_logical.unwrap_or(0));

        // Every change to a user's row, whichever write made it, leaves the cache after its
        // commit (`seen.rs`).
        let seen = Arc::new(seen::SeenCache::default());
        conn.update_hook(Some(|_: rusqlite::hooks::Action, _: &str, table: &str, rowid: i64| {
            if table == "users" {
                seen::user_changed(rowid);
            }
        }));
        // Checkpoints in two steps (see `CHECKPOINT_PAGES` and `CHECKPOINT_STEP`): the
        // checkpointer thread, on a connection of its own, copies most of the WAL while the
        // writer goes on; the writer copies what is left between two batches. The WAL hook
        // replaces SQLite's automatic checkpoint on this connection.
        conn.wal_hook(Some(wal_committed));
        let checkpointer = open(path, false).map_err(backend)?;
        checkpointer.pragma_update(None, "cache_size", -256).map_err(backend)?;
        let (ctx, crx) = std_mpsc::sync_channel::<()>(1);
        // The WAL frames the checkpointer's last pass had copied back.
        let copied = Arc::new(AtomicU64::new(0));
        let copied_by_thread = copied.clone();
        // Held for each pass of the checkpointer, and by the writer for its own step, which so
        // waits for a pass still running instead of finding the checkpoint busy and letting the
        // WAL grow batch after batch.
        let pass = Arc::new(Mutex::new(()));
        let pass_of_thread = pass.clone();
        std::thread::Builder::new()
            .name("herald-sqlite-checkpoint".into())
            .spawn(move || {
                while crx.recv().is_ok() {
                    let _pass = pass_of_thread.lock().unwrap_or_else(|p| p.into_inner());
                    checkpoint(&checkpointer, &copied_by_thread);
                }
            })
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let (wtx, mut wrx) = mpsc::channel::<WriteJob>(WRITE_QUEUE);
        let writer_seen = seen.clone();
        std::thread::Builder::new()
            .name("herald-sqlite-writer".into())
            .spawn(move || {
                // The WAL's size when the checkpointer was last asked for a pass, and after
                // the last batch.
                let mut asked_at = 0;
                let mut last = 0;
                while let Some(first) = wrx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match wrx.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    run_batch(&conn, &writer_seen, batch);
                    let pages = WAL_PAGES.with(|p| p.get());
                    if pages < last {
                        // The WAL started over: nothing of it was asked for yet, or copied.
                        asked_at = 0;
                        copied.store(0, Ordering::Relaxed);
                    }
                    if pages >= 2 * CHECKPOINT_PAGES && last < 2 * CHECKPOINT_PAGES {
                        // Once per crossing: the checkpointer is not keeping up (a long read
                        // holding old frames, or a disk slower than the writes), and the
                        // writer's own steps, which callers wait for, now copy whatever is left.
                        tracing::warn!(pages, "the WAL holds twice its checkpoint size; checkpoints are falling behind");
                    }
                    last = pages;
                    if pages >= CHECKPOINT_PAGES {
                        let left = pages - Copied::of_wal(copied.load(Ordering::Relaxed), pages);
                        if left <= CHECKPOINT_LAST_STEP || pages >= 2 * CHECKPOINT_PAGES {
                            let _pass = pass.lock().unwrap_or_else(|p| p.into_inner());
                            checkpoint(&conn, &copied);
                        } else {
                            // Another pass as soon as this one ends (the channel holds one
                            // request), copying what was written meanwhile.
                            let _ = ctx.try_send(());
                        }
                    } else if pages - asked_at >= CHECKPOINT_STEP {
                        // A pass asked for (or one still queued) copies every frame up to
                        // when it runs.
                        let _ = ctx.try_send(());
                        asked_at = pages;
                    }
                }
                tracing::debug!("sqlite writer stopped");
            })
            .map_err(|e| StoreError::Backend(e.to_string()))?;

        let (rtx, rrx) = std_mpsc::sync_channel::<ReadJob>(WRITE_QUEUE);
        let rrx = Arc::new(Mutex::new(rrx));
        for i in 0..READERS {
            let conn = open(path, true).map_err(backend)?;
            let rrx = rrx.clone();
            std::thread::Builder::new()
                .name(format!("herald-sqlite-reader-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rrx.lock().unwrap().recv() {
                        Ok(j) => j,
                        Err(_) => break,
                    };
                    // One read transaction per job: every statement sees the same snapshot
                    // (getDifference reads the log and the box's pts together).
                    let _ = run_cached(&conn, "BEGIN");
                    job(&conn);
                    let _ = run_cached(&conn, "COMMIT");
                })
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        let lookups = (0..lookup_connections()).map(|_| open_lookup(path)).collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?;
        Ok(Self { inner: Arc::new(Inner { writer: wtx, readers: rtx, lookups: Mutex::new(lookups), seen }) })
    }

    /// Runs `f` in the next group-commit transaction; resolves after the commit.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, done)
        });
        self.inner.writer.send(job).await.map_err(|_| StoreError::Backend("writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Backend("writer dropped the job".into()))?
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let readers = self.inner.readers.clone();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        // Straight into the queue when it has room (no thread hop); a full queue is waited on
        // by a blocking-pool thread, never by the runtime.
        match readers.try_send(job) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(job)) => tokio::task::spawn_blocking(move || readers.send(job))
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?
                .map_err(|_| StoreError::Backend("readers stopped".into()))?,
            Err(std_mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Backend("readers stopped".into())),
        }
        rx.await.map_err(|_| StoreError::Backend("reader dropped the job".into()))?
    }

    /// Runs a small read by key (a few rows found through a primary key or unique index) on
    /// the caller's thread, on one of a few connections kept for this, instead of handing it
    /// to a reader thread: the hand-over and the wake-ups on both sides cost several times
    /// the read itself. Same snapshot rule as [`Self::read`] (one read transaction per call). When
    /// every lookup connection is busy (another thread holds it), the read goes to the
    /// readers as usual. Only for reads whose cost is bounded by their keys: scans,
    /// searches and lists stay on the readers, so a runtime thread never waits long.
    pub(crate) async fn lookup<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // A lookup never waits, so a caller looping over many would never give its runtime
        // thread back: each spends from the task's cooperative budget, yielding when it is
        // used up, as an await on a reader would.
        tokio::task::consume_budget().await;
        let Some(conn) = self.inner.lookups.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
            return self.read(f).await;
        };
        // Back into the pool however `f` ends (a panic included).
        struct Return<'a>(&'a Mutex<Vec<Connection>>, Option<Connection>);
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                if let Some(c) = self.1.take() {
                    // A panic inside `f` skipped the COMMIT: end that snapshot here, or the
                    // next lookup on this connection would read inside it.
                    if !c.is_autocommit() {
                        let _ = c.execute_batch("ROLLBACK");
                        if !c.is_autocommit() {
                            return; // cannot be trusted to start a fresh snapshot: dropped
                        }
                    }
                    self.0.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                }
            }
        }
        let held = Return(&self.inner.lookups, Some(conn));
        let conn = held.1.as_ref().expect("just put");
        let _ = run_cached(conn, "BEGIN");
        let result = f(conn);
        let _ = run_cached(conn, "COMMIT");
        drop(held);
        result
    }

    /// [`Self::lookup`] for a read of up to [`LOOKUP_MAX_KEYS`] keys, [`Self::read`] beyond.
    pub(crate) async fn lookup_keys<T, F>(&self, keys: usize, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if keys <= LOOKUP_MAX_KEYS {
            self.lookup(f).await
        } else {
            self.read(f).await
        }
    }
}

/// What a database file at a path is, judged without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFile {
    Missing,
    /// Zero bytes: a file that was created and never written (or truncated).
    Empty,
    /// Not a Herald database: not SQLite at all, or SQLite with another application's schema.
    Foreign(String),
    /// A Herald database at this schema version.
    Herald {
        version: u32,
    },
}

/// Looks at the file at `path` (read-only).
pub fn inspect(path: &Path) -> Result<DbFile, StoreError> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DbFile::Missing),
        Err(e) => return Err(StoreError::Backend(e.to_string())),
    };
    if meta.len() == 0 {
        return Ok(DbFile::Empty);
    }
    let mut magic = [0u8; 16];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut magic)).map_err(|e| StoreError::Backend(e.to_string()))?;
    if n < 16 || &magic != b"SQLite format 3\0" {
        return Ok(DbFile::Foreign("not a SQLite database".into()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(backend)?;
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(backend)?;
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('users', 'auth_keys', 'messages', 'boxes')", [], |r| r.get(0))
        .map_err(backend)?;
    let any: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(backend)?;
    Ok(match (app, tables, any) {
        (schema::APPLICATION_ID, _, _) => DbFile::Herald { version },
        // Written before the application id was set: known by its tables.
        (0, 4, _) if version > 0 => DbFile::Herald { version },
        (0, _, 0) => DbFile::Empty,
        (0, _, _) => DbFile::Foreign("a SQLite database with another schema".into()),
        (other, _, _) => DbFile::Foreign(format!("a SQLite database of another application (application_id {other:#x})")),
    })
}

/// SQLite's integrity check (`quick` skips the index-content comparison, which is the slow
/// part): the problems found, empty when the database is sound.
pub fn integrity_check(path: &Path, quick: bool) -> Result<Vec<String>, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(backend)?;
    let pragma = if quick { "PRAGMA quick_check(100)" } else { "PRAGMA integrity_check(100)" };
    let mut stmt = conn.prepare(pragma).map_err(backend)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(backend)?;
    let found: Vec<String> = rows.collect::<Result<_, _>>().map_err(backend)?;
    Ok(if found == ["ok"] { vec![] } else { found })
}

/// Runs one statement without parameters or rows (savepoints, a reader's BEGIN and COMMIT),
/// prepared once.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_batch(conn: &Connection, seen: &seen::SeenCache, batch: Vec<WriteJob>) {
    let n = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unrun drops their reply channels: each caller gets an error.
        tracing::error!(error = %e, jobs = n, "could not begin a write transaction");
        return;
    }
    messages::batch_started();
    let mut completions = Vec::with_capacity(n);
    // Set when the transaction can no longer be trusted: SQLite rolled it back by itself
    // (disk full, I/O error) or a savepoint failed. Nothing of the batch may then be
    // reported as written, and later jobs must not run outside the transaction.
    let mut aborted: Option<String> = None;
    for job in batch {
        if aborted.is_some() {
            continue; // dropped unrun: its caller gets an error
        }
        if let Err(e) = run_cached(conn, "SAVEPOINT job") {
            aborted = Some(e.to_string());
            continue;
        }
        let kept = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
            Ok((ok, done)) => {
                completions.push(done);
                ok
            }
            Err(_) => {
                // The job's reply channel was dropped while unwinding: its caller gets an error.
                tracing::error!("a write job panicked; its changes are rolled back");
                false
            }
        };
        let end = if kept { run_cached(conn, "RELEASE job") } else { run_cached(conn, "ROLLBACK TO job").and_then(|_| run_cached(conn, "RELEASE job")) };
        if let Err(e) = end {
            aborted = Some(e.to_string());
        }
        messages::job_ended(kept && aborted.is_none());
        if conn.is_autocommit() {
            aborted.get_or_insert_with(|| "the transaction was rolled back by SQLite".into());
        }
    }
    // The full-text index for every kept job, once (see `messages::PendingIndex`).
    if let Err(e) = messages::batch_ending(conn, aborted.is_none()) {
        aborted.get_or_insert_with(|| e.to_string());
    }
    let commit = match aborted {
        Some(why) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(StoreError::Backend(why))
        }
        None => conn.execute_batch("COMMIT").map_err(backend),
    };
    if let Err(e) = &commit {
        tracing::error!(error = %e, jobs = n, "group commit failed; no job of the batch is acknowledged");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    tracing::trace!(jobs = n, "group commit");
    // Before any caller hears: whoever reads after an answer reads the change.
    seen.apply_pending();
    for done in completions {
        done(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::temp_store;
    use super::{backend, CHECKPOINT_PAGES};
    use herald_domain::error::StoreError;

    /// `.cargo/config.toml` builds SQLite without its memory statistics (a global mutex per
    /// allocation): a build that lost the setting fails here.
    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut st = conn.prepare("PRAGMA compile_options").unwrap();
        let opts: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        assert!(opts.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{opts:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_survives() {
        let s = temp_store();
        let boom = s.write(|_| -> Result<(), StoreError> { panic!("injected") });
        let fine = s.write(|c| c.execute_batch("CREATE TABLE t (x)").map_err(super::backend));
        let (boom, fine) = tokio::join!(boom, fine);
        assert!(boom.is_err());
        fine.unwrap();
        s.write(|c| c.execute_batch("INSERT INTO t VALUES (1)").map_err(super::backend)).await.unwrap();
        let n: i64 = s.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).map_err(super::backend)).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_failing_job_is_rolled_back_without_touching_its_batch_mates() {
        let s = temp_store();
        s.write(|c| c.execute_batch("CREATE TABLE t (x UNIQUE)").map_err(super::backend)).await.unwrap();
        let bad = s.write(|c| {
            c.execute_batch("INSERT INTO t VALUES (1)").map_err(super::backend)?;
            Err::<(), _>(StoreError::Conflict("test"))
        });
        let good = s.write(|c| c.execute_batch("INSERT INTO t VALUES (2)").map_err(super::backend));
        let (bad, good) = tokio::join!(bad, good);
        assert_eq!(bad, Err(StoreError::Conflict("test")));
        good.unwrap();
        let xs: Vec<i64> = s
            .read(|c| {
                let mut st = c.prepare("SELECT x FROM t ORDER BY x").map_err(super::backend)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(super::backend)?;
                rows.collect::<Result<_, _>>().map_err(super::backend)
            })
            .await
            .unwrap();
        assert_eq!(xs, vec![2]);
    }

    /// Users as a viewer sees them come from memory after a first read, and every kind of
    /// change shows at once in the next read: a profile, a last-seen time, a contact either
    /// way, a block either way, a deleted account's address book.
    #[tokio::test]
    async fn users_seen_by_shows_every_change_after_its_commit() {
        use herald_domain::model::{Contact, NewUser, UserId};
        use herald_domain::store::{AccountStore, MessageStore};
        let s = temp_store();
        let new = |phone: &str| NewUser { phone: phone.into(), first_name: phone.into(), last_name: String::new(), home_dc: 1, created_at: 0 };
        let a = s.create_user(new("9990001")).await.unwrap().id;
        let b = s.create_user(new("9990002")).await.unwrap().id;
        let seen = |viewer: UserId| {
            let s = s.clone();
            async move { s.users_seen_by(viewer, &[b]).await.unwrap().remove(0) }
        };
        // Read twice: the second comes from memory.
        assert_eq!(seen(a).await.user.first_name, "9990002");
        assert_eq!(seen(a).await.user.first_name, "9990002");
        assert_eq!(s.inner.seen.len(), (1, 1));

        s.update_profile(b, "Bea", "", "").await.unwrap();
        assert_eq!(seen(a).await.user.first_name, "Bea");
        assert_eq!(s.user_by_id(b).await.unwrap().unwrap().first_name, "Bea");
        s.set_last_seen(b, 1234).await.unwrap();
        assert_eq!(seen(a).await.user.last_seen, 1234);
        assert_eq!(s.user_by_id(b).await.unwrap().unwrap().last_seen, 1234);

        let contact = Contact { owner: a, target: b, first_name: "B".into(), last_name: String::new(), phone: "9990002".into(), date: 1 };
        s.put_contact(contact).await.unwrap();
        assert_eq!(seen(a).await.contact.map(|c| c.first_name), Some("B".into()));
        let back = Contact { owner: b, target: a, first_name: "A".into(), last_name: String::new(), phone: "9990001".into(), date: 1 };
        s.put_contact(back).await.unwrap();
        assert!(seen(a).await.has_viewer, "b has a as a contact now");
        s.set_blocked(b, a, true, 2).await.unwrap();
        assert!(seen(a).await.blocked_viewer);
        s.set_blocked(b, a, false, 3).await.unwrap();
        assert!(!seen(a).await.blocked_viewer);
        s.delete_contacts(a, &[b]).await.unwrap();
        assert!(seen(a).await.contact.is_none());
        s.delete_account(b).await.unwrap();
        let gone = seen(a).await;
        assert!(gone.user.deleted && !gone.has_viewer, "b's row and address book are gone");
    }

    /// A pass's count is believed only for the WAL it saw: one that saw a larger WAL (since
    /// started over) or failed counts nothing copied.
    #[test]
    fn a_checkpoint_count_is_believed_only_for_its_own_wal() {
        use super::Copied;
        let seen = |wal, copied| Copied { wal, copied }.pack();
        assert_eq!(Copied::of_wal(seen(41_000, 39_500), 41_200), 39_500);
        assert_eq!(Copied::of_wal(seen(41_000, 41_000), 41_000), 41_000);
        assert_eq!(Copied::of_wal(seen(41_000, 41_000), 900), 0, "a count from the WAL before it started over");
        assert_eq!(Copied::of_wal(seen(-1, -1), 50_000), 0, "the checkpoint was busy");
        assert_eq!(Copied::of_wal(0, 12), 0, "nothing reported since the WAL started over");
    }

    /// The WAL is copied back and started over while writes go on (the checkpointer thread
    /// and the writer's own last step), so it never holds much more than twice
    /// `CHECKPOINT_PAGES`: without the writer's step it would only grow, and nothing written
    /// is lost.
    #[tokio::test]
    async fn the_wal_is_checkpointed_and_started_over_under_writes() {
        let store = temp_store();
        store.write(|c| c.execute_batch("CREATE TABLE scratch (n INTEGER, b BLOB)").map_err(backend)).await.unwrap();
        // About 2.5 times CHECKPOINT_PAGES of 4 KiB pages, in 100 transactions.
        let rows = 100;
        let bytes = (CHECKPOINT_PAGES as usize) * 4096 * 5 / 2 / rows;
        let db: String =
            store.read(|c| c.query_row("SELECT file FROM pragma_database_list WHERE name = 'main'", [], |r| r.get(0)).map_err(backend)).await.unwrap();
        for n in 0..rows {
            store
                .write(move |c| {
                    c.execute("INSERT INTO scratch VALUES (?1, zeroblob(?2))", rusqlite::params![n as i64, bytes as i64]).map(|_| ()).map_err(backend)
                })
                .await
                .unwrap();
        }
        // The WAL file keeps its largest size (it is cut back only beyond `WAL_SIZE_LIMIT`), and
        // a WAL that never started over would hold everything written: 2.5 times
        // CHECKPOINT_PAGES.
        let wal = std::fs::metadata(format!("{db}-wal")).unwrap().len();
        let frames = wal / (4096 + 24);
        // A row: its overflow pages, a leaf, the first page and the odd split.
        let per_row = (bytes / 4096 + 8) as u64;
        assert!(frames < 2 * CHECKPOINT_PAGES as u64 + 2 * per_row, "the WAL grew to {frames} frames");
        let (count, total): (i64, i64) =
            store.read(|c| c.query_row("SELECT COUNT(*), SUM(length(b)) FROM scratch", [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)).await.unwrap();
        assert_eq!((count, total), (rows as i64, (rows * bytes) as i64));
    }

    /// A lookup runs on the caller's thread and sees every commit before it; with its
    /// connections taken it goes to a reader thread; a panic inside one gives its connection
    /// back.
    #[tokio::test]
    async fn lookups_run_in_place_see_commits_and_fall_back_to_the_readers() {
        let s = temp_store();
        s.write(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (7)").map_err(super::backend)).await.unwrap();
        let here = std::thread::current().id();
        let read = |c: &rusqlite::Connection| -> Result<(i64, std::thread::ThreadId, Option<String>), StoreError> {
            let x = c.query_row("SELECT SUM(x) FROM t", [], |r| r.get(0)).map_err(super::backend)?;
            Ok((x, std::thread::current().id(), std::thread::current().name().map(str::to_string)))
        };
        let (x, thread, _) = s.lookup(read).await.unwrap();
        assert_eq!((x, thread), (7, here));
        s.write(|c| c.execute_batch("INSERT INTO t VALUES (1)").map_err(super::backend)).await.unwrap();
        assert_eq!(s.lookup(read).await.unwrap().0, 8);

        let taken: Vec<_> = std::mem::take(&mut *s.inner.lookups.lock().unwrap());
        assert_eq!(taken.len(), super::lookup_connections());
        let (x, thread, name) = s.lookup(read).await.unwrap();
        assert_eq!(x, 8);
        assert_ne!(thread, here);
        assert!(name.unwrap_or_default().starts_with("herald-sqlite-reader"));
        s.inner.lookups.lock().unwrap().extend(taken);

        let s2 = s.clone();
        // The panic comes after a read, so the connection holds a snapshot then.
        let boom = tokio::spawn(async move {
            s2.lookup(|c| -> Result<(), StoreError> {
                let _: i64 = c.query_row("SELECT SUM(x) FROM t", [], |r| r.get(0)).map_err(super::backend)?;
                panic!("injected")
            })
            .await
        })
        .await;
        assert!(boom.unwrap_err().is_panic());
        assert_eq!(s.inner.lookups.lock().unwrap().len(), super::lookup_connections());
        s.write(|c| c.execute_batch("INSERT INTO t VALUES (1)").map_err(super::backend)).await.unwrap();
        assert_eq!(s.lookup(read).await.unwrap().0, 9);
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::SqliteStore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub fn temp_store() -> SqliteStore {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("herald-store-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        SqliteStore::open(&dir.join("herald.db")).unwrap()
    }
}
