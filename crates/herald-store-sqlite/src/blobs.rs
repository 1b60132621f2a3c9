//! The embedded [`BlobStore`]: a directory (`files/` in the data directory).
//!
//! - `parts/<owner>/<file_id>/<part>`: an upload in progress, one file per part. A part is
//!   written to a temporary name and renamed, so a part sent again replaces the earlier one
//!   whole, and a crash leaves either the old part or the new one.
//! - `blobs/<ab>/<sha256>`: complete files, named by their content's SHA-256 (identical
//!   content is kept once). One is assembled by streaming the parts into a temporary file
//!   while hashing, synced, then renamed into place and its directory synced: a blob is
//!   visible only whole and durable.
//!
//! All file work runs on tokio's blocking pool, in 64 KiB steps; nothing holds a whole file.

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
        blocking(move || Ok((0..parts).map(|p| fs::metadata(dir.join(p.to_string())).ok().map(|m| m.len())).collect())).await
    }

    async fn assemble(&self, up: UploadId, parts: i32) -> StoreResult<Assembled> {
        let dir = self.upload_dir(up);
        let tmp = self.tmp_path();
        let root = self.root.clone();
        blocking(move || {
            let mut out = File::create(&tmp).map_err(io)?;
            let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0i64);
            let mut buf = vec![0u8; 64 * 1024];
            for p in 0..parts {
                let mut part = File::open(dir.join(p.to_string())).map_err(io)?;
                loop {
                    let n = part.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    sha.update(&buf[..n]);
                    md5.update(&buf[..n]);
                    out.write_all(&buf[..n]).map_err(io)?;
                    size += n as i64;
                }
            }
            let blob: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let path = FsBlobStore::blob_path(&root, &blob)?;
            if path.exists() {
                // The same content is already stored (and was synced when it was).
                drop(out);
                let _ = fs::remove_file(&tmp);
            } else {
                out.sync_all().map_err(io)?;
                drop(out);
                let parent = path.parent().expect("blob paths have a directory");
                fs::create_dir_all(parent).map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
                sync_dir(parent)?;
            }
            Ok(Assembled { blob, size, md5: md5.finalize().into() })
        })
        .await
    }

    async fn store(&self, bytes: Vec<u8>) -> StoreResult<Assembled> {
        let tmp = self.tmp_path();
        let root = self.root.clone();
        blocking(move || {
            let blob: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            let path = FsBlobStore::blob_path(&root, &blob)?;
            let made = Assembled { blob, size: bytes.len() as i64, md5: Md5::digest(&bytes).into() };
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
        let a = store.assemble(up, 2).await.unwrap();
        assert_eq!(a.size, 11);
        // Known answers: SHA-256 and MD5 of "HELLO world".
        let sha: String = Sha256::digest(b"HELLO world").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(a.blob, sha);
        assert_eq!(a.md5, <[u8; 16]>::from(Md5::digest(b"HELLO world")));
        assert_eq!(store.read(&a.blob, 6, 100).await.unwrap(), b"world");
        assert_eq!(store.read(&a.blob, 11, 100).await.unwrap(), b"");
        // The same content from another upload is the same blob.
        let other = UploadId { owner: UserId(8), file_id: -5 };
        store.put_part(other, 0, b"HELLO world".to_vec()).await.unwrap();
        assert_eq!(store.assemble(other, 1).await.unwrap().blob, a.blob);
        assert!(store.read("../../etc/passwd", 0, 10).await.is_err(), "only our own names reach a path");
        // A file the server makes is stored whole under its hash.
        let made = store.store(b"HELLO world".to_vec()).await.unwrap();
        assert_eq!((made.blob.as_str(), made.size), (a.blob.as_str(), 11));
        // Expiry: nothing is a day old yet; everything is older than zero seconds.
        assert_eq!(store.expire_uploads(86_400).await.unwrap(), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(store.expire_uploads(0).await.unwrap(), 2);
        assert_eq!(store.part_sizes(up, 1).await.unwrap(), vec![None]);
        assert_eq!(store.read(&a.blob, 0, 5).await.unwrap(), b"HELLO", "complete files stay");
        fs::remove_dir_all(&dir).unwrap();
    }
}
