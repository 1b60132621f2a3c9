//! The embedded [`BlobStore`]: a directory (`files/` in the data directory).
//!
//! - `parts/<owner>/<file_id>/<part>`: an upload in progress, one file per part: the part's
//!   SHA-256 (32 bytes), then its bytes. A part is written to a temporary name and renamed,
//!   so a part sent again replaces the earlier one whole, and a crash leaves either the old
//!   part or the new one. Hashing as parts arrive spreads that work over the upload.
//! - `parts/<owner>/<file_id>/done`: once an upload is assembled, its parts are deleted and
//!   this line says what they made (part count, first and last part sizes, the blob, its
//!   size and MD5), so the client can still use the upload again until it expires while the
//!   disk holds its bytes once. A part sent to a done upload starts it afresh.
//! - `blobs/<ab>/<name>`: complete files, named by a content hash (identical content is kept
//!   once): for an upload, the SHA-256 of its parts' hashes in order; for a file the server
//!   makes, the SHA-256 of its bytes. An upload is assembled by copying the parts into a
//!   temporary file (`copy_file_range` where the kernel has it), syncing it, renaming it into
//!   place and syncing its directory: a blob is visible only whole and durable. An upload
//!   whose blob exists already is not copied at all; the blob's modification time is renewed
//!   instead, which is what keeps [`BlobStore::delete_if_idle`] off a blob just reused.
//!
//! The bytes of parts each account holds are counted in memory (rebuilt from the directory
//! at open) for the upload quota. All file work runs on tokio's blocking pool; nothing holds a
//! whole file in memory.

use herald_domain::error::StoreError;
use herald_domain::files::{hex, unhex};
use herald_domain::model::UserId;
use herald_domain::store::{Assembled, BlobStore, StoreResult, UploadId};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub struct FsBlobStore {
    root: PathBuf,
    /// Bytes of parts held per account.
    held: Arc<Mutex<HashMap<i64, u64>>>,
    /// Held around "is this blob there; renew it" in assembly and around the last check and
    /// deletion of an idle blob, so a blob reused by an upload is never deleted under it.
    names: Arc<Mutex<()>>,
    /// One lock per upload being changed: a part put in place, an assembly (which reads the
    /// parts twice: their hashes name the blob, then their bytes are copied, and both must be
    /// the same parts), a release, an expiry. Writing a part's bytes happens outside it, so
    /// parallel parts of one upload still write in parallel.
    uploads: UploadLocks,
}

type UploadLocks = Arc<Mutex<HashMap<UploadId, Arc<Mutex<()>>>>>;

/// Runs `f` holding `up`'s lock (the entry goes when nobody else waits for it).
fn with_upload<T>(locks: &UploadLocks, up: UploadId, f: impl FnOnce() -> T) -> T {
    let lock = locks.lock().unwrap().entry(up).or_default().clone();
    let out = {
        let _held = lock.lock().unwrap();
        f()
    };
    let mut map = locks.lock().unwrap();
    if Arc::strong_count(&lock) == 2 {
        map.remove(&up);
    }
    out
}

/// Removes `tmp` when `result` is an error (a failed write leaves no orphan behind).
fn or_remove<T>(tmp: &Path, result: StoreResult<T>) -> StoreResult<T> {
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Each part file starts with the part's SHA-256.
const PART_HEADER: u64 = 32;
/// The marker an assembled upload leaves (see the module comment).
const DONE: &str = "done";

/// Distinct temporary names within the process (a crash leaves `*.tmp` files, which
/// [`FsBlobStore::open`] removes).
static TMP: AtomicU64 = AtomicU64::new(0);

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("file store: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Backend(format!("file store task: {e}")))?
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// A part file's payload size (its length less the header), if it is there.
fn part_len(path: &Path) -> Option<u64> {
    fs::metadata(path).ok()?.len().checked_sub(PART_HEADER)
}

/// What an assembled upload made: `parts first last size blob md5|-`.
#[derive(Debug, PartialEq, Eq)]
struct Done {
    parts: i32,
    first: u64,
    last: u64,
    made: Assembled,
}

impl Done {
    fn line(&self) -> String {
        let md5 = self.made.md5.map_or("-".to_string(), |m| hex(&m));
        format!("{} {} {} {} {} {}\n", self.parts, self.first, self.last, self.made.size, self.made.blob, md5)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut w = text.split_whitespace();
        let (parts, first, last, size) = (w.next()?.parse().ok()?, w.next()?.parse().ok()?, w.next()?.parse().ok()?, w.next()?.parse().ok()?);
        let blob = w.next()?.to_string();
        let md5 = match w.next()? {
            "-" => None,
            h => Some(unhex(h)?.try_into().ok()?),
        };
        Some(Done { parts, first, last, made: Assembled { blob, size, md5 } })
    }

    fn read(dir: &Path) -> Option<Self> {
        Done::parse(&fs::read_to_string(dir.join(DONE)).ok()?)
    }
}

impl FsBlobStore {
    /// The store under `root` (created if missing); leftovers of interrupted writes go.
    pub fn open(root: &Path) -> StoreResult<Self> {
        for sub in ["parts", "blobs", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(io)?;
        }
        for e in fs::read_dir(root.join("tmp")).map_err(io)?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        // What each account holds in parts.
        let mut held = HashMap::new();
        for owner in fs::read_dir(root.join("parts")).map_err(io)?.flatten() {
            let Some(id) = owner.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else { continue };
            for up in fs::read_dir(owner.path()).map_err(io)?.flatten() {
                for p in fs::read_dir(up.path()).map_err(io)?.flatten() {
                    if p.file_name() != DONE {
                        *held.entry(id).or_insert(0) += part_len(&p.path()).unwrap_or(0);
                    }
                }
            }
        }
        Ok(Self { root: root.to_path_buf(), held: Arc::new(Mutex::new(held)), names: Arc::new(Mutex::new(())), uploads: Arc::default() })
    }

    fn upload_dir(&self, up: UploadId) -> PathBuf {
        self.root.join("parts").join(up.owner.0.to_string()).join(format!("{:016x}", up.file_id as u64))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(format!("{}-{}.tmp", std::process::id(), TMP.fetch_add(1, Ordering::Relaxed)))
    }

    fn blob_path(root: &Path, blob: &str) -> StoreResult<PathBuf> {
        // Names are our own hex digests; anything else must never reach a path.
        if blob.len() != 64 || !blob.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(StoreError::Backend(format!("bad blob name {blob:?}")));
        }
        Ok(root.join("blobs").join(&blob[..2]).join(blob))
    }

    /// Puts a finished temporary file in place as blob `path`, durably, unless it is there
    /// already (then it is renewed and the temporary file dropped).
    fn place(names: &Mutex<()>, tmp: &Path, path: &Path) -> StoreResult<()> {
        let parent = path.parent().expect("blob paths have a directory");
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(io)?;
            // The new `blobs/<ab>` directory's entry must be durable too.
            sync_dir(parent.parent().expect("blob directories have a parent"))?;
        }
        let _names = names.lock().unwrap();
        if renew(path) {
            let _ = fs::remove_file(tmp);
            return Ok(());
        }
        fs::rename(tmp, path).map_err(io)?;
        sync_dir(parent)
    }
}

/// Sets a blob's modification time to now; false when it is not there.
fn renew(path: &Path) -> bool {
    File::options().append(true).open(path).and_then(|f| f.set_modified(SystemTime::now())).is_ok()
}

/// [`renew`] under the lock deletion takes: a blob found here is not deleted for the grace
/// period that follows.
fn renew_locked(names: &Mutex<()>, path: &Path) -> bool {
    let _names = names.lock().unwrap();
    renew(path)
}

/// Removes the part files of an upload directory (not its marker), uncounting them.
fn remove_parts(dir: &Path, owner: i64, held: &Mutex<HashMap<i64, u64>>) -> StoreResult<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for p in entries.flatten() {
        if p.file_name() == DONE {
            continue;
        }
        let mut held = held.lock().unwrap();
        let len = part_len(&p.path()).unwrap_or(0);
        if fs::remove_file(p.path()).is_ok() {
            if let Some(h) = held.get_mut(&owner) {
                *h = h.saturating_sub(len);
            }
        }
    }
    Ok(())
}

/// Assembly proper, under the upload's lock (see [`BlobStore::assemble`]).
fn assemble_locked(root: &Path, dir: &Path, tmp: &Path, names: &Mutex<()>, parts: i32, with_md5: bool) -> StoreResult<Assembled> {
    // Used before: what it made, if that is still stored.
    if let Some(mut d) = Done::read(dir).filter(|d| d.parts == parts) {
        let path = FsBlobStore::blob_path(root, &d.made.blob)?;
        if renew_locked(names, &path) {
            if with_md5 && d.made.md5.is_none() {
                let mut md5 = Md5::new();
                std::io::copy(&mut File::open(&path).map_err(io)?, &mut md5).map_err(io)?;
                d.made.md5 = Some(md5.finalize().into());
            }
            return Ok(d.made);
        }
        return Err(StoreError::Backend("an assembled upload's blob is gone".into()));
    }
    // The name first, from the parts' headers: if the blob exists, nothing is copied.
    let (mut name, mut size) = (Sha256::new(), 0i64);
    name.update(b"herald-parts/1");
    for p in 0..parts {
        let mut part = File::open(dir.join(p.to_string())).map_err(io)?;
        let mut h = [0u8; PART_HEADER as usize];
        part.read_exact(&mut h).map_err(io)?;
        name.update(h);
        size += (part.metadata().map_err(io)?.len() - PART_HEADER) as i64;
    }
    let blob = hex(&name.finalize());
    let path = FsBlobStore::blob_path(root, &blob)?;
    let exists = renew_locked(names, &path);
    let mut md5 = with_md5.then(Md5::new);
    let mut out = if exists { None } else { Some(File::create(tmp).map_err(io)?) };
    if md5.is_some() || out.is_some() {
        let mut buf = vec![0u8; 64 * 1024];
        for p in 0..parts {
            let mut part = File::open(dir.join(p.to_string())).map_err(io)?;
            part.seek(SeekFrom::Start(PART_HEADER)).map_err(io)?;
            match (md5.as_mut(), out.as_mut()) {
                // No digest to take: the kernel copies (copy_file_range).
                (None, Some(o)) => {
                    std::io::copy(&mut part, o).map_err(io)?;
                }
                (mut m, mut o) => loop {
                    let n = part.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    if let Some(m) = m.as_deref_mut() {
                        m.update(&buf[..n]);
                    }
                    if let Some(o) = o.as_deref_mut() {
                        o.write_all(&buf[..n]).map_err(io)?;
                    }
                },
            }
        }
    }
    if let Some(out) = out {
        out.sync_all().map_err(io)?;
        drop(out);
        FsBlobStore::place(names, tmp, &path)?;
    }
    Ok(Assembled { blob, size, md5: md5.map(|m| m.finalize().into()) })
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put_part(&self, up: UploadId, part: i32, bytes: Vec<u8>) -> StoreResult<()> {
        let dir = self.upload_dir(up);
        let tmp = self.tmp_path();
        let (held, uploads) = (self.held.clone(), self.uploads.clone());
        blocking(move || {
            // Parts are synced with the blob they become, not one by one: an upload cut by a
            // crash is resent by the client, which has not been told the file exists.
            let written = File::create(&tmp).and_then(|mut f| {
                f.write_all(&Sha256::digest(&bytes))?;
                f.write_all(&bytes)
            });
            or_remove(&tmp, written.map_err(io))?;
            let placed = with_upload(&uploads, up, || {
                fs::create_dir_all(&dir).map_err(io)?;
                // A part sent to an assembled upload starts a new one under the same id.
                let _ = fs::remove_file(dir.join(DONE));
                let path = dir.join(part.to_string());
                let mut held = held.lock().unwrap();
                let old = part_len(&path).unwrap_or(0);
                fs::rename(&tmp, &path).map_err(io)?;
                let h = held.entry(up.owner.0).or_insert(0);
                *h = h.saturating_sub(old) + bytes.len() as u64;
                Ok(())
            });
            or_remove(&tmp, placed)
        })
        .await
    }

    async fn part_sizes(&self, up: UploadId, parts: i32) -> StoreResult<Vec<Option<u64>>> {
        let dir = self.upload_dir(up);
        let root = self.root.clone();
        blocking(move || {
            // An assembled upload stands for its parts while what it made is stored.
            let done = Done::read(&dir).filter(|d| d.parts == parts);
            if let Some(d) = done.filter(|d| FsBlobStore::blob_path(&root, &d.made.blob).is_ok_and(|p| p.exists())) {
                return Ok((0..parts).map(|p| Some(if p + 1 == parts { d.last } else { d.first })).collect());
            }
            Ok((0..parts).map(|p| part_len(&dir.join(p.to_string()))).collect())
        })
        .await
    }

    async fn assemble(&self, up: UploadId, parts: i32, with_md5: bool) -> StoreResult<Assembled> {
        let dir = self.upload_dir(up);
        let tmp = self.tmp_path();
        let root = self.root.clone();
        let (names, uploads) = (self.names.clone(), self.uploads.clone());
        blocking(move || {
            let made = with_upload(&uploads, up, || assemble_locked(&root, &dir, &tmp, &names, parts, with_md5));
            or_remove(&tmp, made)
        })
        .await
    }

    async fn release(&self, up: UploadId, parts: i32, made: &Assembled) -> StoreResult<()> {
        let dir = self.upload_dir(up);
        let (held, uploads, made) = (self.held.clone(), self.uploads.clone(), made.clone());
        blocking(move || {
            with_upload(&uploads, up, || {
                if Done::read(&dir).is_some_and(|d| d.parts == parts) {
                    return Ok(()); // released before (the upload was used again)
                }
                let first = part_len(&dir.join("0")).unwrap_or(0);
                let last = part_len(&dir.join((parts - 1).to_string())).unwrap_or(0);
                let done = Done { parts, first, last, made };
                fs::write(dir.join(DONE), done.line()).map_err(io)?;
                remove_parts(&dir, up.owner.0, &held)
            })
        })
        .await
    }

    async fn store(&self, bytes: Vec<u8>) -> StoreResult<Assembled> {
        let tmp = self.tmp_path();
        let root = self.root.clone();
        let names = self.names.clone();
        blocking(move || {
            let blob = hex(&Sha256::digest(&bytes));
            let path = FsBlobStore::blob_path(&root, &blob)?;
            let made = Assembled { blob, size: bytes.len() as i64, md5: None };
            if !renew_locked(&names, &path) {
                let written = File::create(&tmp).and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_all()
                });
                or_remove(&tmp, written.map_err(io).and_then(|()| FsBlobStore::place(&names, &tmp, &path)))?;
            }
            Ok(made)
        })
        .await
    }

    async fn read(&self, blob: &str, offset: u64, limit: usize) -> StoreResult<Vec<u8>> {
        let path = Self::blob_path(&self.root, blob)?;
        blocking(move || {
            let mut f = File::open(&path).map_err(io)?;
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut out = Vec::with_capacity(limit.min(1 << 20));
            f.take(limit as u64).read_to_end(&mut out).map_err(io)?;
            Ok(out)
        })
        .await
    }

    async fn expire_uploads(&self, max_age_secs: u64) -> StoreResult<usize> {
        let parts = self.root.join("parts");
        let (held, uploads) = (self.held.clone(), self.uploads.clone());
        blocking(move || {
            let cutoff = SystemTime::now() - Duration::from_secs(max_age_secs);
            let mut gone = 0;
            for owner in fs::read_dir(&parts).map_err(io)?.flatten() {
                let id = owner.file_name().to_str().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
                for dir in fs::read_dir(owner.path()).map_err(io)?.flatten() {
                    let file_id = dir.file_name().to_str().and_then(|n| u64::from_str_radix(n, 16).ok()).unwrap_or(0) as i64;
                    let up = UploadId { owner: UserId(id), file_id };
                    // The newest part decides: an upload still receiving parts stays. Checked
                    // and removed under the upload's lock, so no part lands in between.
                    let expired = with_upload(&uploads, up, || {
                        let newest = fs::read_dir(dir.path())
                            .map_err(io)?
                            .flatten()
                            .filter_map(|p| p.metadata().ok()?.modified().ok())
                            .max()
                            .or_else(|| dir.metadata().ok()?.modified().ok());
                        if newest.is_some_and(|t| t >= cutoff) {
                            return Ok(false);
                        }
                        remove_parts(&dir.path(), id, &held)?;
                        fs::remove_dir_all(dir.path()).map_err(io)?;
                        Ok::<_, StoreError>(true)
                    })?;
                    gone += expired as usize;
                }
                let _ = fs::remove_dir(owner.path()); // only if now empty
            }
            Ok(gone)
        })
        .await
    }

    async fn held_bytes(&self, owner: UserId) -> StoreResult<u64> {
        Ok(self.held.lock().unwrap().get(&owner.0).copied().unwrap_or(0))
    }

    async fn free_bytes(&self) -> StoreResult<Option<u64>> {
        let root = self.root.clone();
        blocking(move || free_space(&root).map(Some)).await
    }

    async fn idle_blobs(&self, idle_secs: u64, limit: usize) -> StoreResult<Vec<String>> {
        let blobs = self.root.join("blobs");
        blocking(move || {
            let cutoff = SystemTime::now() - Duration::from_secs(idle_secs);
            let mut out = Vec::new();
            // From a random one of the `<ab>` directories on, so that idle blobs still in use
            // (which stay idle) cannot fill every round's list with the same names.
            let mut dirs: Vec<_> = fs::read_dir(&blobs).map_err(io)?.flatten().map(|d| d.path()).collect();
            dirs.sort();
            if !dirs.is_empty() {
                let at = (herald_domain::clock::random_u64() % dirs.len() as u64) as usize;
                dirs.rotate_left(at);
            }
            for dir in dirs {
                for b in fs::read_dir(&dir).map_err(io)?.flatten() {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    let idle = b.metadata().ok().and_then(|m| m.modified().ok()).is_some_and(|t| t <= cutoff);
                    if let (true, Some(name)) = (idle, b.file_name().to_str()) {
                        out.push(name.to_string());
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_if_idle(&self, blob: &str, idle_secs: u64) -> StoreResult<bool> {
        let path = Self::blob_path(&self.root, blob)?;
        let names = self.names.clone();
        blocking(move || {
            let cutoff = SystemTime::now() - Duration::from_secs(idle_secs);
            let _names = names.lock().unwrap();
            let idle = fs::metadata(&path).ok().and_then(|m| m.modified().ok()).is_some_and(|t| t <= cutoff);
            if idle {
                fs::remove_file(&path).map_err(io)?;
            }
            Ok(idle)
        })
        .await
    }
}

/// Bytes free to unprivileged writers on the file system holding `path`.
#[allow(unsafe_code)] // one statvfs call; std has no free-space query
fn free_space(path: &Path) -> StoreResult<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| StoreError::Backend(e.to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter that
    // statvfs fills before we read it (only when it returns 0).
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::model::UserId;

    #[tokio::test]
    async fn parts_become_one_blob_named_by_content_and_are_read_by_range() {
        let dir = std::env::temp_dir().join(format!("herald-blobs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FsBlobStore::open(&dir).unwrap();
        let up = UploadId { owner: UserId(7), file_id: -5 };
        store.put_part(up, 1, b"world".to_vec()).await.unwrap();
        store.put_part(up, 0, b"hello ".to_vec()).await.unwrap();
        assert_eq!(store.part_sizes(up, 3).await.unwrap(), vec![Some(6), Some(5), None]);
        store.put_part(up, 0, b"HELLO ".to_vec()).await.unwrap();
        let a = store.assemble(up, 2, true).await.unwrap();
        assert_eq!(a.size, 11);
        // Known answers: the name is the SHA-256 of the parts' SHA-256s; the MD5 the bytes'.
        let mut name = Sha256::new();
        name.update(b"herald-parts/1");
        name.update(Sha256::digest(b"HELLO "));
        name.update(Sha256::digest(b"world"));
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(a.blob, hex(&name.finalize()));
        assert_eq!(a.md5, Some(<[u8; 16]>::from(Md5::digest(b"HELLO world"))));
        assert_eq!(store.read(&a.blob, 6, 100).await.unwrap(), b"world");
        assert_eq!(store.read(&a.blob, 11, 100).await.unwrap(), b"");
        assert_eq!(store.read(&a.blob, 0, 100).await.unwrap(), b"HELLO world");
        // The same content from another upload (cut the same way) is the same blob, not copied
        // again.
        let other = UploadId { owner: UserId(8), file_id: -5 };
        store.put_part(other, 0, b"HELLO ".to_vec()).await.unwrap();
        store.put_part(other, 1, b"world".to_vec()).await.unwrap();
        assert_eq!(store.assemble(other, 2, false).await.unwrap().blob, a.blob);
        assert!(store.read("../../etc/passwd", 0, 10).await.is_err(), "only our own names reach a path");
        // A file the server makes is stored whole under its SHA-256.
        let made = store.store(b"HELLO world".to_vec()).await.unwrap();
        assert_eq!((made.blob.clone(), made.size), (hex(&Sha256::digest(b"HELLO world")), 11));
        assert_eq!(store.read(&made.blob, 0, 5).await.unwrap(), b"HELLO");
        // Expiry: nothing is a day old yet; everything is older than zero seconds.
        assert_eq!(store.expire_uploads(86_400).await.unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(store.expire_uploads(0).await.unwrap(), 2);
        assert_eq!(store.part_sizes(up, 1).await.unwrap(), vec![None]);
        assert_eq!(store.read(&a.blob, 0, 5).await.unwrap(), b"HELLO", "complete files stay");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn held_parts_are_counted_assembled_uploads_keep_one_copy_and_idle_blobs_go() {
        let dir = std::env::temp_dir().join(format!("herald-blobs-held-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FsBlobStore::open(&dir).unwrap();
        let (me, up) = (UserId(3), UploadId { owner: UserId(3), file_id: 1 });
        store.put_part(up, 0, vec![1; 2048]).await.unwrap();
        store.put_part(up, 1, vec![2; 100]).await.unwrap();
        store.put_part(up, 1, vec![2; 1000]).await.unwrap();
        assert_eq!(store.held_bytes(me).await.unwrap(), 3048, "a part sent again replaces the old one's count");
        assert_eq!(FsBlobStore::open(&dir).unwrap().held_bytes(me).await.unwrap(), 3048, "recounted at open");
        assert_eq!(store.held_bytes(UserId(4)).await.unwrap(), 0);
        let a = store.assemble(up, 2, false).await.unwrap();
        assert_eq!(store.held_bytes(me).await.unwrap(), 3048, "held until the file is recorded");
        assert!(dir.join("parts/3/0000000000000001/0").exists());
        store.release(up, 2, &a).await.unwrap();
        assert_eq!(store.held_bytes(me).await.unwrap(), 0, "the bytes live in the blob now");
        assert!(!dir.join("parts/3/0000000000000001/0").exists());
        assert!(fs::read_dir(dir.join("tmp")).unwrap().next().is_none(), "no temporary file left");
        // The upload stands for its file: same sizes, same blob, MD5 on demand.
        assert_eq!(store.part_sizes(up, 2).await.unwrap(), vec![Some(2048), Some(1000)]);
        assert_eq!(store.part_sizes(up, 3).await.unwrap(), vec![None, None, None]);
        let again = store.assemble(up, 2, true).await.unwrap();
        let mut bytes = vec![1u8; 2048];
        bytes.extend(vec![2u8; 1000]);
        assert_eq!((again.blob.as_str(), again.md5), (a.blob.as_str(), Some(<[u8; 16]>::from(Md5::digest(&bytes)))));
        assert_eq!(Done::parse(&Done { parts: 2, first: 2048, last: 1000, made: again.clone() }.line()).unwrap().made, again);
        // A new part starts the upload afresh.
        store.put_part(up, 0, vec![9; 1024]).await.unwrap();
        assert_eq!(store.part_sizes(up, 2).await.unwrap(), vec![Some(1024), None]);
        // Idle blobs: none idle for an hour; with no grace, the blob, which then goes.
        assert!(store.idle_blobs(3600, 10).await.unwrap().is_empty());
        assert!(!store.delete_if_idle(&a.blob, 3600).await.unwrap());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(store.idle_blobs(0, 10).await.unwrap(), vec![a.blob.clone()]);
        assert!(store.delete_if_idle(&a.blob, 0).await.unwrap());
        assert!(store.read(&a.blob, 0, 1).await.is_err());
        assert!(store.free_bytes().await.unwrap().is_some_and(|f| f > 0));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_replaced_during_assembly_never_mixes_names_and_bytes() {
        let dir = std::env::temp_dir().join(format!("herald-blobs-race-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = std::sync::Arc::new(FsBlobStore::open(&dir).unwrap());
        let up = UploadId { owner: UserId(5), file_id: 9 };
        for p in 0..64 {
            store.put_part(up, p, vec![1; 4096]).await.unwrap();
        }
        // Part 63 is replaced over and over while the upload is assembled again and again:
        // each blob must hold exactly the bytes its name was taken from.
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..200u32 {
                    store.put_part(up, 63, vec![(i % 2) as u8 + 2; 4096]).await.unwrap();
                }
            })
        };
        for _ in 0..40 {
            let a = store.assemble(up, 64, false).await.unwrap();
            let bytes = store.read(&a.blob, 63 * 4096, 4096).await.unwrap();
            let mut name = Sha256::new();
            name.update(b"herald-parts/1");
            for _ in 0..63 {
                name.update(Sha256::digest([1u8; 4096]));
            }
            name.update(Sha256::digest(&bytes));
            assert_eq!(hex(&name.finalize()), a.blob, "the blob's name matches its bytes");
        }
        writer.await.unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
