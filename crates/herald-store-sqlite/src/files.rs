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
            conn.prepare_cached("INSERT INTO files (id, owner, blob, size, mime, date, attributes, sizes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .map_err(backend)?
                .execute(params![id, f.owner.0, f.blob, f.size, f.mime, f.date, attributes, sizes])
                .map_err(backend)?;
            Ok(FileMeta { id, blob: f.blob, size: f.size, mime: f.mime, date: f.date, attributes: f.attributes, sizes: f.sizes })
        })
        .await
    }

    async fn file(&self, id: i64) -> StoreResult<Option<FileMeta>> {
        self.read(move |conn| {
            let row: Option<(String, i64, String, i32, String, String)> = conn
                .prepare_cached("SELECT blob, size, mime, date, attributes, sizes FROM files WHERE id = ?1")
                .map_err(backend)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                .optional()
                .map_err(backend)?;
            Ok(row.map(|(blob, size, mime, date, attributes, sizes)| FileMeta {
                id,
                blob,
                size,
                mime,
                date,
                attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                sizes: serde_json::from_str(&sizes).unwrap_or_default(),
            }))
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
}
