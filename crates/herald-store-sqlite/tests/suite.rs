//! The storage test suite (`herald_domain::testsuite`) on SQLite: each case gets a fresh
//! database file in the temp directory.

use herald_store_sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn fresh() -> Arc<SqliteStore> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("herald-suite-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open(&dir.join("h.db")).unwrap())
}

herald_domain::storage_suite!(fresh());
