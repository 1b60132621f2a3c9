//! [`FileStore`]: file metadata, and which message copies carry which file.

use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::{FileMeta, UserId, CHANNEL_MARK};
use herald_domain::store::{FileStore, NewFile, StoreResult};
use rusqlite::{params, OptionalExtension};

fn json(e: serde_json::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn create_file(&self, f: NewFile) -> StoreResult<FileMeta> {
        self.write(move |conn| {
            let attributes = serde_json::to_string(&f.attributes).map_err(json)?;
            let sizes = serde_json::to_string(&f.sizes).map_err(json)?;
            // Ids are random (positive) so that they reveal nothing of how many files exist.
            let id = loop {
                let id = (herald_domain::clock::random_u64() >> 2) as i64 + 1;
                let taken = conn.prepare_cached("SELECT 1 FROM files WHERE id = ?1").map_err(backend)?.exists([id]).map_err(backend)?;
                if !taken {
                    break id;
                }
            };
            conn.prepare_cached(
                "INSERT INTO files (id, owner, blob, size, mime, date, attributes, sizes, stripped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(backend)?
            .execute(params![id, f.owner.0, f.blob, f.size, f.mime, f.date, attributes, sizes, f.stripped])
            .map_err(backend)?;
            let mut blobs = conn.prepare_cached("INSERT OR IGNORE INTO file_blobs (blob, file_id) VALUES (?1, ?2)").map_err(backend)?;
            for blob in std::iter::once(&f.blob).chain(f.sizes.iter().map(|s| &s.blob)) {
                blobs.execute(params![blob, id]).map_err(backend)?;
            }
            drop(blobs);
            Ok(FileMeta { id, blob: f.blob, size: f.size, mime: f.mime, date: f.date, attributes: f.attributes, sizes: f.sizes, stripped: f.stripped })
        })
        .await
    }

    async fn file(&self, id: i64) -> StoreResult<Option<FileMeta>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT blob, size, mime, date, attributes, sizes, stripped FROM files WHERE id = ?1")
                .map_err(backend)?
                .query_row([id], |r| {
                    Ok(FileMeta {
                        id,
                        blob: r.get(0)?,
                        size: r.get(1)?,
                        mime: r.get(2)?,
                        date: r.get(3)?,
                        attributes: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                        sizes: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                        stripped: r.get(6)?,
                    })
                })
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn file_visible(&self, viewer: UserId, id: i64) -> StoreResult<bool> {
        self.read(move |conn| {
            // The uploader; a message in the viewer's box; a message in a channel box
            // (keyed by its marked id) of a channel the viewer is a member of (roles up to
            // restricted: not kicked, not left).
            conn.prepare_cached(
                "SELECT 1 FROM files WHERE id = ?1 AND owner = ?2
                 UNION ALL SELECT 1 FROM message_files WHERE file_id = ?1 AND owner = ?2
                 UNION ALL SELECT 1 FROM user_photos WHERE photo_id = ?1
                 UNION ALL SELECT 1 FROM message_files f JOIN members m ON f.owner = -(?3 + m.grp)
                    WHERE f.file_id = ?1 AND f.owner < -?3 AND m.user = ?2 AND m.role <= 3
                 LIMIT 1",
            )
            .map_err(backend)?
            .exists(params![id, viewer.0, CHANNEL_MARK])
            .map_err(backend)
        })
        .await
    }

    async fn stored_bytes(&self, owner: UserId) -> StoreResult<i64> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT COALESCE(SUM(size), 0) FROM files WHERE owner = ?1")
                .map_err(backend)?
                .query_row([owner.0], |r| r.get(0))
                .map_err(backend)
        })
        .await
    }

    async fn delete_unused_files(&self, before: i32, limit: usize) -> StoreResult<usize> {
        // Referred to by a message copy, a scheduled message, a profile photo (users.photo_id
        // is always one of user_photos) or a chat's photo: kept. Candidates are found on a reader (a scan of the
        // old files) and deleted by the writer only if still unused then.
        const UNUSED: &str = "NOT EXISTS (SELECT 1 FROM message_files m WHERE m.file_id = f.id)
                       AND NOT EXISTS (SELECT 1 FROM user_photos p WHERE p.photo_id = f.id)
                       AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.photo_id = f.id)
                       AND NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.file_id = f.id)";
        let ids: Vec<i64> = self
            .read(move |conn| {
                conn.prepare_cached(&format!("SELECT id FROM files f WHERE date < ?1 AND {UNUSED} LIMIT ?2"))
                    .map_err(backend)?
                    .query_map(params![before, limit as i64], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(backend)
            })
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        self.write(move |conn| {
            let mut gone = 0;
            for id in &ids {
                let n = conn.prepare_cached(&format!("DELETE FROM files AS f WHERE id = ?1 AND {UNUSED}")).map_err(backend)?.execute([id]).map_err(backend)?;
                if n > 0 {
                    conn.prepare_cached("DELETE FROM file_blobs WHERE file_id = ?1").map_err(backend)?.execute([id]).map_err(backend)?;
                    gone += 1;
                }
            }
            Ok(gone)
        })
        .await
    }

    async fn blob_in_use(&self, blob: &str) -> StoreResult<bool> {
        let blob = blob.to_string();
        self.read(move |conn| conn.prepare_cached("SELECT 1 FROM file_blobs WHERE blob = ?1").map_err(backend)?.exists([blob]).map_err(backend)).await
    }
}
