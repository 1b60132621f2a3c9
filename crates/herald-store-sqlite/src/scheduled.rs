use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::{Peer, Scheduled, UserId};
use herald_domain::store::{ScheduledStore, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "owner, id, peer, text, entities, reply_to, random_id, date, media";

fn from_row(r: &Row) -> rusqlite::Result<Scheduled> {
    let entities: String = r.get(4)?;
    Ok(Scheduled {
        owner: UserId(r.get(0)?),
        id: r.get(1)?,
        peer: Peer::from_marked(r.get(2)?),
        text: r.get(3)?,
        entities: serde_json::from_str(&entities).unwrap_or_default(),
        reply_to: r.get(5)?,
        random_id: r.get(6)?,
        date: r.get(7)?,
        media: r.get::<_, Option<String>>(8)?.and_then(|m| serde_json::from_str(&m).ok()),
    })
}

fn by_random(conn: &Connection, owner: UserId, random_id: i64) -> StoreResult<Option<Scheduled>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM scheduled WHERE owner = ?1 AND random_id = ?2"))
        .map_err(backend)?
        .query_row(params![owner.0, random_id], from_row)
        .optional()
        .map_err(backend)
}

#[async_trait]
impl ScheduledStore for SqliteStore {
    async fn put_scheduled(&self, s: Scheduled, max_per_peer: usize) -> StoreResult<Scheduled> {
        self.write(move |conn| {
            if let Some(existing) = by_random(conn, s.owner, s.random_id)? {
                return Ok(existing);
            }
            let waiting: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM scheduled WHERE owner = ?1 AND peer = ?2")
                .map_err(backend)?
                .query_row(params![s.owner.0, s.peer.marked()], |r| r.get(0))
                .map_err(backend)?;
            if waiting as usize >= max_per_peer {
                return Err(StoreError::Conflict("scheduled"));
            }
            let id: i32 = conn
                .query_row(
                    "INSERT INTO scheduled_seq (owner, next) VALUES (?1, 2) ON CONFLICT(owner) DO UPDATE SET next = next + 1 RETURNING next - 1",
                    [s.owner.0],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            let entities = serde_json::to_string(&s.entities).map_err(|e| StoreError::Backend(e.to_string()))?;
            let media = s.media.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Backend(e.to_string()))?;
            conn.execute(
                &format!("INSERT INTO scheduled ({COLUMNS}, file_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![s.owner.0, id, s.peer.marked(), s.text, entities, s.reply_to, s.random_id, s.date, media, s.media.as_ref().map(|m| m.file().id)],
            )
            .map_err(backend)?;
            Ok(Scheduled { id, ..s })
        })
        .await
    }

    async fn scheduled(&self, owner: UserId, peer: Peer, ids: Option<&[i32]>) -> StoreResult<Vec<Scheduled>> {
        let ids = ids.map(<[i32]>::to_vec);
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM scheduled WHERE owner = ?1 AND peer = ?2 ORDER BY date, id")).map_err(backend)?;
            let rows = stmt.query_map(params![owner.0, peer.marked()], from_row).map_err(backend)?;
            let all = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            Ok(match ids {
                Some(ids) => all.into_iter().filter(|s| ids.contains(&s.id)).collect(),
                None => all,
            })
        })
        .await
    }

    async fn delete_scheduled(&self, owner: UserId, ids: &[i32], claimed_too: bool) -> StoreResult<Vec<Scheduled>> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut gone = vec![];
            for id in ids {
                let row = conn
                    .prepare_cached(&format!("DELETE FROM scheduled WHERE owner = ?1 AND id = ?2 AND (sending = 0 OR ?3) RETURNING {COLUMNS}"))
                    .map_err(backend)?
                    .query_row(params![owner.0, id, claimed_too], from_row)
                    .optional()
                    .map_err(backend)?;
                gone.extend(row);
            }
            Ok(gone)
        })
        .await
    }

    async fn claim_scheduled(&self, owner: UserId, id: i32) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = conn.execute("UPDATE scheduled SET sending = 1 WHERE owner = ?1 AND id = ?2", params![owner.0, id]).map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn reschedule(&self, owner: UserId, id: i32, date: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("UPDATE scheduled SET sending = 0, date = ?3 WHERE owner = ?1 AND id = ?2", params![owner.0, id, date]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn due_scheduled(&self, now: i32, limit: usize) -> StoreResult<Vec<Scheduled>> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM scheduled WHERE date <= ?1 ORDER BY date, owner, id LIMIT ?2")).map_err(backend)?;
            let rows = stmt.query_map(params![now, limit as i64], from_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}
