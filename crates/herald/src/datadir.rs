//! Guarding the data directory: `herald serve` refuses to start when what it finds does not
//! add up, instead of silently starting as a new, empty server (which would log every user
//! out, or change every access hash and the key clients pin). Each refusal names the file
//! and the way out; README "Data directory" documents the recovery.

use crate::keys::{PRIVATE_KEY, SECRET};
use anyhow::{bail, Result};
use herald_store_sqlite::{inspect, integrity_check, DbFile};
use std::path::Path;

pub const DATABASE: &str = "herald.db";
/// Locked by the running server: one `herald serve` per data directory.
pub const LOCK: &str = "herald.lock";
/// The directory of file bytes (uploads in progress and complete files), beside the database.
pub const FILES: &str = "files";

/// What `serve` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Nothing yet: a first start, which creates keys and database.
    Fresh,
    /// A database with its keys: a restart.
    Existing,
    /// Keys without a database, and `--init-database` said to create one.
    NewDatabase,
}

/// Holds the directory for this process: a second `herald serve` on it is refused. Its state
/// in memory (sessions, key states, the bus, the counter behind logical message ids) assumes
/// it is the only server writing there. Released when the file is dropped, or by the kernel
/// when the process dies (`kill -9` included).
pub fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK);
    let file =
        std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("{} is in use: another herald serve holds {}. Stop it first.", dir.display(), path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => bail!("cannot lock {}: {e}", path.display()),
    }
}

/// Checks the directory before anything is created or opened for writing. `init_database`
/// (`--init-database`) allows a new, empty database next to existing keys: for a directory
/// whose keys were made before its database (an older `herald pubkey`, or a first start that
/// stopped half-way).
pub fn guard(dir: &Path, init_database: bool) -> Result<Found> {
    let db_path = dir.join(DATABASE);
    let (has_key, has_secret) = (dir.join(PRIVATE_KEY).exists(), dir.join(SECRET).exists());
    let wal = dir.join(format!("{DATABASE}-wal"));
    let db = inspect(&db_path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", db_path.display()))?;
    if db == DbFile::Missing && wal.exists() {
        bail!(
            "{} exists without {}: the database file is gone but its log of recent writes is not. Restore \
             {DATABASE} from a backup (together with its -wal file), or move {DATABASE}-wal and {DATABASE}-shm \
             away to start without them.",
            wal.display(),
            db_path.display()
        );
    }
    match db {
        DbFile::Missing if !has_key && !has_secret => return Ok(Found::Fresh),
        DbFile::Missing | DbFile::Empty if init_database && has_key && has_secret => return Ok(Found::NewDatabase),
        DbFile::Missing => bail!(
            "{} is missing, but the data directory has server keys ({}): this directory held a server whose \
             database is gone. Restore {DATABASE} from a backup. If this server never had a database (its \
             keys were made first, or its first start stopped half-way), `herald serve --init-database` \
             creates one and keeps the keys; to start a brand-new server, use an empty data directory.",
            db_path.display(),
            if has_key { PRIVATE_KEY } else { SECRET }
        ),
        DbFile::Empty => bail!(
            "{} is empty (0 bytes or no tables). Starting on it would make a new, empty server and every \
             client would lose its login. Restore {DATABASE} from a backup; if this server never had data, \
             `herald serve --init-database` creates the database and keeps the keys; to start a brand-new \
             server, use an empty data directory.",
            db_path.display()
        ),
        DbFile::Foreign(what) => bail!(
            "{} is not a Herald database ({what}). Point --data-dir at Herald's data directory, or restore \
             {DATABASE} from a backup.",
            db_path.display()
        ),
        DbFile::Herald { .. } => {}
    }
    if !has_secret {
        bail!(
            "{} is missing from a data directory that has a database: every salt and access hash clients \
             cached would change. Restore it from a backup of this directory (it is 32 bytes, mode 0600).",
            dir.join(SECRET).display()
        );
    }
    if !has_key {
        bail!(
            "{} is missing from a data directory that has a database: clients pin the server's RSA key and \
             could not connect to a new one. Restore it from a backup of this directory.",
            dir.join(PRIVATE_KEY).display()
        );
    }
    let problems = integrity_check(&db_path, true).unwrap_or_else(|e| vec![e.to_string()]);
    if !problems.is_empty() {
        bail!(
            "{} failed its integrity check ({}). Run `herald check --data-dir {}` for the full report, and \
             restore {DATABASE} from a backup.",
            db_path.display(),
            problems.first().map(String::as_str).unwrap_or("unknown problem"),
            dir.display()
        );
    }
    Ok(Found::Existing)
}

/// `herald check`: the full integrity check. Returns the problems (empty: sound).
pub fn check(dir: &Path) -> Result<Vec<String>> {
    let db_path = dir.join(DATABASE);
    match inspect(&db_path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", db_path.display()))? {
        DbFile::Missing => bail!("{} does not exist", db_path.display()),
        DbFile::Empty => return Ok(vec![format!("{} is empty", db_path.display())]),
        DbFile::Foreign(what) => return Ok(vec![format!("{} is not a Herald database ({what})", db_path.display())]),
        DbFile::Herald { .. } => {}
    }
    let mut problems = integrity_check(&db_path, false).unwrap_or_else(|e| vec![e.to_string()]);
    for f in [SECRET, PRIVATE_KEY] {
        if !dir.join(f).exists() {
            problems.push(format!("{} is missing", dir.join(f).display()));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("herald-datadir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn each_inconsistency_is_refused_with_its_file_named() {
        let d = dir("guard");
        assert_eq!(guard(&d, false).unwrap(), Found::Fresh);
        // a log without its database
        std::fs::write(d.join("herald.db-wal"), b"x").unwrap();
        assert!(guard(&d, true).unwrap_err().to_string().contains("herald.db-wal exists"));
        std::fs::remove_file(d.join("herald.db-wal")).unwrap();
        // keys without a database, unless --init-database
        std::fs::write(d.join(SECRET), [0u8; 32]).unwrap();
        assert!(guard(&d, false).unwrap_err().to_string().contains("herald.db is missing"));
        std::fs::write(d.join(PRIVATE_KEY), b"x").unwrap();
        assert_eq!(guard(&d, true).unwrap(), Found::NewDatabase);
        std::fs::remove_file(d.join(PRIVATE_KEY)).unwrap();
        // an empty database
        std::fs::write(d.join(DATABASE), b"").unwrap();
        assert!(guard(&d, false).unwrap_err().to_string().contains("is empty"));
        // not SQLite
        std::fs::write(d.join(DATABASE), b"hello world, this is not a database at all").unwrap();
        assert!(guard(&d, false).unwrap_err().to_string().contains("not a Herald database"));
        // someone else's SQLite
        std::fs::remove_file(d.join(DATABASE)).unwrap();
        rusqlite::Connection::open(d.join(DATABASE)).unwrap().execute_batch("CREATE TABLE notes (x)").unwrap();
        assert!(guard(&d, false).unwrap_err().to_string().contains("another schema"));
        // a database from before the application id was set is still Herald's
        std::fs::remove_file(d.join(DATABASE)).unwrap();
        {
            let c = rusqlite::Connection::open(d.join(DATABASE)).unwrap();
            c.execute_batch("CREATE TABLE users (x); CREATE TABLE auth_keys (x); CREATE TABLE messages (x); CREATE TABLE boxes (x); PRAGMA user_version = 2;")
                .unwrap();
        }
        assert!(matches!(inspect(&d.join(DATABASE)).unwrap(), DbFile::Herald { version: 2 }));
        // a Herald database without its RSA key, then without its secret
        std::fs::remove_file(d.join(DATABASE)).unwrap();
        drop(herald_store_sqlite::SqliteStore::open(&d.join(DATABASE)).unwrap());
        assert!(guard(&d, false).unwrap_err().to_string().contains(PRIVATE_KEY));
        std::fs::write(d.join(PRIVATE_KEY), b"x").unwrap();
        std::fs::remove_file(d.join(SECRET)).unwrap();
        assert!(guard(&d, false).unwrap_err().to_string().contains(SECRET));
        std::fs::write(d.join(SECRET), [0u8; 32]).unwrap();
        assert_eq!(guard(&d, false).unwrap(), Found::Existing);
        assert!(check(&d).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn one_server_per_directory() {
        let d = std::env::temp_dir().join(format!("herald-lock-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let held = lock(&d).unwrap();
        let refused = lock(&d).unwrap_err().to_string();
        assert!(refused.contains("in use") && refused.contains(LOCK), "{refused}");
        drop(held);
        assert!(lock(&d).is_ok(), "released with its holder");
        let _ = std::fs::remove_dir_all(&d);
    }
}
