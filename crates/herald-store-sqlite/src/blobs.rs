//! The embedded [`BlobStore`]: a directory (`files/` in the data directory).
//!
//! - `parts/<owner>/<file_id>/<part>`: an upload in progress, one file per part: the part's
//!   SHA-256 (32 bytes), then its bytes. A part is written to a temporary name and renamed,
//!   so a part sent again replaces the earlier one whole, and a crash leaves either the old
//!   part or the new one. Hashing as parts arrive spreads that work over the upload.
//! - `blobs/<ab>/<name>`: complete files, named by a content hash (identical content is kept
//!   once): for an upload, the SHA-256 of its parts' hashes in order; for a file the server
//!   makes, the SHA-256 of its bytes. An upload is assembled by copying the parts into a
//!   temporary file (`copy_file_range` where the kernel has it), syncing it, renaming it into
//!   place and syncing its directory: a blob is visible only whole and durable. An upload
//!   whose blob exists already is not copied at all.
//!
//! All file work runs on tokio's blocking pool; nothing holds a whole file in memory.

use herald_domain::error::StoreError;
use herald_domain::store::{Assembled, BlobStore, StoreResult, UploadId};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub struct FsBlobStore {
    root: PathBuf,
}

/// Each part file starts with the part's SHA-256.
const PART_HEADER: u64 = 32;

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

impl FsBlobStore {
    /// The store under `root` (created if missing); leftovers of interrupted writes go.
    pub fn open(root: &Path) -> StoreResult<Self> {
        for sub in ["parts", "blobs", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(io)?;
        }
        for e in fs::read_dir(root.join("tmp")).map_err(io)?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        Ok(Self { root: root.to_path_buf() })
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
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put_part(&self, up: UploadId, part: i32, bytes: Vec<u8>) -> StoreResult<()> {
        let dir = self.upload_dir(up);
        let tmp = self.tmp_path();
        blocking(move || {
            fs::create_dir_all(&dir).map_err(io)?;
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(&Sha256::digest(&bytes)).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            // Parts are synced with the blob they become, not one by one: an upload cut by a
            // crash is resent by the client, which has not been told the file exists.
            drop(f);
            fs::rename(&tmp, dir.join(part.to_string())).map_err(io)?;
            Ok(())
        })
        .await
    }

    async fn part_sizes(&self, up: UploadId, parts: i32) -> StoreResult<Vec<Option<u64>>> {
        let dir = self.upload_dir(up);
        blocking(move || Ok((0..parts).map(|p| fs::metadata(dir.join(p.to_string())).ok().and_then(|m| m.len().checked_sub(PART_HEADER))).collect())).await
    }

    async fn assemble(&self, up: UploadId, parts: i32, with_md5: bool) -> StoreResult<Assembled> {
        let dir = self.upload_dir(up);
        let tmp = self.tmp_path();
        let root = self.root.clone();
        blocking(move || {
            // The name first, from the parts' headers: if the blob exists, nothing is copied.
            let (mut name, mut size) = (Sha256::new(), 0i64);
            name.update(b"herald-parts/1");
            for p in 0..parts {
                let mut part = File::open(dir.join(p.to_string())).map_err(io)?;
                let mut h = [0u8; PART_HEADER as usize];
                part.read_exact(&mut h).map_err(io)?;
                name.update(h);
                size += part.metadata().map_err(io)?.len() as i64 - PART_HEADER as i64;
            }
            let blob: String = name.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let path = FsBlobStore::blob_path(&root, &blob)?;
            let exists = path.exists();
            let mut md5 = with_md5.then(Md5::new);
            let mut out = if exists { None } else { Some(File::create(&tmp).map_err(io)?) };
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
                let parent = path.parent().expect("blob paths have a directory");
                fs::create_dir_all(parent).map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
                sync_dir(parent)?;
            }
            Ok(Assembled { blob, size, md5: md5.map(|m| m.finalize().into()) })
        })
        .await
    }

    async fn store(&self, bytes: Vec<u8>) -> StoreResult<Assembled> {
        let tmp = self.tmp_path();
        let root = self.root.clone();
        blocking(move || {
            let blob: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            let path = FsBlobStore::blob_path(&root, &blob)?;
            let made = Assembled { blob, size: bytes.len() as i64, md5: None };
            if !path.exists() {
                let mut f = File::create(&tmp).map_err(io)?;
                f.write_all(&bytes).map_err(io)?;
                f.sync_all().map_err(io)?;
                drop(f);
                let parent = path.parent().expect("blob paths have a directory");
                fs::create_dir_all(parent).map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
                sync_dir(parent)?;
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
        blocking(move || {
            let cutoff = SystemTime::now() - Duration::from_secs(max_age_secs);
            let mut gone = 0;
            for owner in fs::read_dir(&parts).map_err(io)?.flatten() {
                for up in fs::read_dir(owner.path()).map_err(io)?.flatten() {
                    // The newest part decides: an upload still receiving parts stays.
                    let newest = fs::read_dir(up.path())
                        .map_err(io)?
                        .flatten()
                        .filter_map(|p| p.metadata().ok()?.modified().ok())
                        .max()
                        .or_else(|| up.metadata().ok()?.modified().ok());
                    if newest.is_none_or(|t| t < cutoff) {
                        fs::remove_dir_all(up.path()).map_err(io)?;
                        gone += 1;
                    }
                }
                let _ = fs::remove_dir(owner.path()); // only if now empty
            }
            Ok(gone)
        })
        .await
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
}
