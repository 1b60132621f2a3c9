//! Message boxes. Each function that changes a box calls [`bump`] and [`log`] inside the same
//! write transaction as the change itself, which keeps every box's pts gap-free and its log
//! complete.

use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::*;
use herald_domain::store::{Appended, Changes, MessageStore, NewMessage, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// How an update is kept in the log (messages are referenced, not copied).
#[derive(Serialize, Deserialize)]
enum Logged {
    NewMessage { id: i32 },
    EditMessage { id: i32 },
    DeleteMessages { ids: Vec<i32> },
    ReadInbox { peer: i64, max_id: i32, still_unread: i32 },
    ReadOutbox { peer: i64, max_id: i32 },
}

fn peer_key(p: Peer) -> i64 {
    match p {
        Peer::User(u) => u.0,
    }
}

fn peer_of(key: i64) -> Peer {
    Peer::User(UserId(key))
}

const MSG_COLUMNS: &str = "owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date";

fn msg_from_row(r: &Row) -> rusqlite::Result<Message> {
    let entities: String = r.get(8)?;
    Ok(Message {
        owner: UserId(r.get(0)?),
        id: r.get(1)?,
        logical_id: r.get(2)?,
        peer: peer_of(r.get(3)?),
        from: UserId(r.get(4)?),
        out: r.get(5)?,
        date: r.get(6)?,
        text: r.get(7)?,
        entities: serde_json::from_str(&entities).unwrap_or_default(),
        reply_to: r.get(9)?,
        edit_date: r.get(10)?,
    })
}

fn get_message(conn: &Connection, owner: UserId, id: i32) -> StoreResult<Option<Message>> {
    conn.prepare_cached(&format!("SELECT {MSG_COLUMNS} FROM messages WHERE owner = ?1 AND id = ?2"))
        .map_err(backend)?
        .query_row(params![owner.0, id], msg_from_row)
        .optional()
        .map_err(backend)
}

/// A box's pts before its first update. Not 0: Telethon treats a saved pts of 0 as "no
/// state" and would skip catching up (client-compat pitfall found by the acceptance suite).
pub const INITIAL_PTS: i32 = 1;

fn ensure_box(conn: &Connection, owner: UserId) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO boxes (owner, pts, next_msg_id) VALUES (?1, ?2, 1)")
        .map_err(backend)?
        .execute(params![owner.0, INITIAL_PTS])
        .map_err(backend)?;
    Ok(())
}

/// Advances the box's pts by `count` and returns the new value.
fn bump(conn: &Connection, owner: UserId, count: i32) -> StoreResult<i32> {
    ensure_box(conn, owner)?;
    conn.prepare_cached("UPDATE boxes SET pts = pts + ?2 WHERE owner = ?1 RETURNING pts")
        .map_err(backend)?
        .query_row(params![owner.0, count], |r| r.get(0))
        .map_err(backend)
}

fn alloc_id(conn: &Connection, owner: UserId) -> StoreResult<i32> {
    ensure_box(conn, owner)?;
    conn.prepare_cached("UPDATE boxes SET next_msg_id = next_msg_id + 1 WHERE owner = ?1 RETURNING next_msg_id - 1")
        .map_err(backend)?
        .query_row([owner.0], |r| r.get(0))
        .map_err(backend)
}

fn log(conn: &Connection, owner: UserId, pts: i32, count: i32, entry: &Logged) -> StoreResult<()> {
    let data = serde_json::to_string(entry).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.prepare_cached("INSERT INTO updates (owner, pts, pts_count, data) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?
        .execute(params![owner.0, pts, count, data])
        .map_err(backend)?;
    Ok(())
}

/// Bumps pts, logs the entry and returns the domain update, all in one step.
fn record(conn: &Connection, owner: UserId, count: i32, entry: Logged, kind: UpdateKind) -> StoreResult<PtsUpdate> {
    let pts = bump(conn, owner, count)?;
    log(conn, owner, pts, count, &entry)?;
    Ok(PtsUpdate { pts, pts_count: count, kind })
}

fn touch_dialog(conn: &Connection, owner: UserId, peer: i64, top: i32, date: i32) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO dialogs (owner, peer, top_message, top_date) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(owner, peer) DO UPDATE SET top_message = excluded.top_message, top_date = excluded.top_date",
    )
    .map_err(backend)?
    .execute(params![owner.0, peer, top, date])
    .map_err(backend)?;
    Ok(())
}

/// After deletions: point the dialog at its newest remaining message (the dialog stays,
/// empty, as on Telegram, unless the caller removes it).
fn refresh_dialog(conn: &Connection, owner: UserId, peer: i64) -> StoreResult<()> {
    let top: Option<(i32, i32)> = conn
        .query_row("SELECT id, date FROM messages WHERE owner = ?1 AND peer = ?2 ORDER BY id DESC LIMIT 1", params![owner.0, peer], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    let (top, date) = top.unwrap_or((0, 0));
    conn.execute(
        "UPDATE dialogs SET top_message = ?3, top_date = MAX(top_date * (?3 = 0), ?4) WHERE owner = ?1 AND peer = ?2",
        params![owner.0, peer, top, date],
    )
    .map_err(backend)?;
    Ok(())
}

fn insert_message(conn: &Connection, m: &Message, random_id: Option<i64>, pts: i32) -> StoreResult<()> {
    let entities = serde_json::to_string(&m.entities).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, random_id, pts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .map_err(backend)?
    .execute(params![m.owner.0, m.id, m.logical_id, peer_key(m.peer), m.from.0, m.out, m.date, m.text, entities, m.reply_to, m.edit_date, random_id, pts])
    .map_err(backend)?;
    Ok(())
}

/// Writes one copy of a message into `owner`'s box.
fn append_copy(conn: &Connection, owner: UserId, mut m: Message, random_id: Option<i64>) -> StoreResult<PtsUpdate> {
    m.owner = owner;
    m.id = alloc_id(conn, owner)?;
    let pts = bump(conn, owner, 1)?;
    insert_message(conn, &m, random_id, pts)?;
    touch_dialog(conn, owner, peer_key(m.peer), m.id, m.date)?;
    log(conn, owner, pts, 1, &Logged::NewMessage { id: m.id })?;
    Ok(PtsUpdate { pts, pts_count: 1, kind: UpdateKind::NewMessage(m) })
}

/// The id, in `owner`'s box, of the copy of logical message `logical`.
fn copy_in(conn: &Connection, owner: UserId, logical: i64) -> StoreResult<Option<i32>> {
    conn.query_row("SELECT id FROM messages WHERE owner = ?1 AND logical_id = ?2", params![owner.0, logical], |r| r.get(0)).optional().map_err(backend)
}

fn append(conn: &Connection, n: NewMessage) -> StoreResult<Appended> {
    if let (Some(rid), false) = (n.random_id, n.one_sided) {
        let existing: Option<(i32, i32)> = conn
            .query_row("SELECT id, pts FROM messages WHERE owner = ?1 AND random_id = ?2", params![n.from.0, rid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        if let Some((id, pts)) = existing {
            let m = get_message(conn, n.from, id)?.ok_or_else(|| StoreError::Backend("deduplicated message vanished".into()))?;
            let update = PtsUpdate { pts, pts_count: 1, kind: UpdateKind::NewMessage(m) };
            return Ok(Appended { sender: Some(update), recipient: None, duplicate: true });
        }
    }
    let reply_logical = match n.reply_to {
        Some(r) if !n.one_sided => get_message(conn, n.from, r)?.filter(|m| m.peer == Peer::User(n.to)).map(|m| m.logical_id),
        _ => None,
    };
    let base = Message {
        owner: n.from,
        id: 0,
        logical_id: n.logical_id,
        peer: Peer::User(n.to),
        from: n.from,
        out: true,
        date: n.date,
        text: n.text,
        entities: n.entities,
        reply_to: reply_logical.and(n.reply_to),
        edit_date: None,
    };
    let sender = if n.one_sided { None } else { Some(append_copy(conn, n.from, base.clone(), n.random_id)?) };
    let recipient = if n.to == n.from && !n.one_sided {
        None
    } else {
        let reply_to = match reply_logical {
            Some(l) => copy_in(conn, n.to, l)?,
            None => None,
        };
        let copy = Message { peer: Peer::User(n.from), out: false, reply_to, ..base };
        Some(append_copy(conn, n.to, copy, None)?)
    };
    Ok(Appended { sender, recipient, duplicate: false })
}

fn history(conn: &Connection, owner: UserId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)> {
    let p = peer_key(peer);
    let count: i32 = conn.query_row("SELECT COUNT(*) FROM messages WHERE owner = ?1 AND peer = ?2", params![owner.0, p], |r| r.get(0)).map_err(backend)?;
    let upper = |x: i32| if x > 0 { x } else { i32::MAX };
    let max_bound = upper(q.max_id);
    let min_bound = q.min_id.max(0);
    // offset_id has priority: offset_date only positions the start when no id is given
    // (clients page with both, and many messages can share one second).
    let date_bound = if q.offset_id > 0 { i32::MAX } else { upper(q.offset_date) };
    let offset_id = upper(q.offset_id);
    let mut out = Vec::new();
    // Newer than offset_id, when add_offset reaches back (negative): the closest ones.
    if q.add_offset < 0 {
        let mut newer: Vec<Message> = conn
            .prepare_cached(&format!(
                "SELECT {MSG_COLUMNS} FROM messages WHERE owner = ?1 AND peer = ?2 AND id >= ?3 AND id < ?4 AND id > ?5
                 ORDER BY id ASC LIMIT ?6"
            ))
            .map_err(backend)?
            .query_map(params![owner.0, p, if q.offset_id > 0 { q.offset_id } else { i32::MAX }, max_bound, min_bound, -q.add_offset], msg_from_row)
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        newer.reverse();
        out.extend(newer);
    }
    let older_limit = q.limit + q.add_offset.min(0);
    if older_limit > 0 {
        let older: Vec<Message> = conn
            .prepare_cached(&format!(
                "SELECT {MSG_COLUMNS} FROM messages WHERE owner = ?1 AND peer = ?2 AND id < ?3 AND id < ?4 AND id > ?5 AND date < ?6
                 ORDER BY id DESC LIMIT ?7 OFFSET ?8"
            ))
            .map_err(backend)?
            .query_map(params![owner.0, p, offset_id, max_bound, min_bound, date_bound, older_limit, q.add_offset.max(0)], msg_from_row)
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        out.extend(older);
    }
    out.truncate(q.limit.max(0) as usize);
    Ok((out, count))
}

fn unread(conn: &Connection, owner: UserId, peer: i64, read_max: i32) -> StoreResult<i32> {
    conn.prepare_cached("SELECT COUNT(*) FROM messages WHERE owner = ?1 AND peer = ?2 AND out = 0 AND id > ?3")
        .map_err(backend)?
        .query_row(params![owner.0, peer, read_max], |r| r.get(0))
        .map_err(backend)
}

fn read_history(conn: &Connection, owner: UserId, peer: Peer, max_id: i32) -> StoreResult<Changes> {
    let p = peer_key(peer);
    let Some((top, read_max)) = conn
        .query_row("SELECT top_message, read_inbox_max_id FROM dialogs WHERE owner = ?1 AND peer = ?2", params![owner.0, p], |r| {
            Ok((r.get::<_, i32>(0)?, r.get::<_, i32>(1)?))
        })
        .optional()
        .map_err(backend)?
    else {
        return Ok(vec![]);
    };
    let new_max = if max_id <= 0 || max_id > top { top } else { max_id };
    if new_max <= read_max {
        return Ok(vec![]);
    }
    conn.execute("UPDATE dialogs SET read_inbox_max_id = ?3 WHERE owner = ?1 AND peer = ?2", params![owner.0, p, new_max]).map_err(backend)?;
    let still_unread = unread(conn, owner, p, new_max)?;
    let mut changes = vec![(
        owner,
        record(
            conn,
            owner,
            1,
            Logged::ReadInbox { peer: p, max_id: new_max, still_unread },
            UpdateKind::ReadHistoryInbox { peer, max_id: new_max, still_unread },
        )?,
    )];
    // The sender's outbox: the newest message read, as an id in the sender's box.
    let other = peer.user_id();
    if other != owner {
        let logical: Option<i64> = conn
            .query_row(
                "SELECT logical_id FROM messages WHERE owner = ?1 AND peer = ?2 AND out = 0 AND id <= ?3 ORDER BY id DESC LIMIT 1",
                params![owner.0, p, new_max],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if let Some(out_id) = logical.map(|l| copy_in(conn, other, l)).transpose()?.flatten() {
            let n = conn
                .execute(
                    "UPDATE dialogs SET read_outbox_max_id = ?3 WHERE owner = ?1 AND peer = ?2 AND read_outbox_max_id < ?3",
                    params![other.0, owner.0, out_id],
                )
                .map_err(backend)?;
            if n == 1 {
                let me = Peer::User(owner);
                let up =
                    record(conn, other, 1, Logged::ReadOutbox { peer: owner.0, max_id: out_id }, UpdateKind::ReadHistoryOutbox { peer: me, max_id: out_id })?;
                changes.push((other, up));
            }
        }
    }
    Ok(changes)
}

fn edit(conn: &Connection, owner: UserId, id: i32, text: &str, entities: &[Entity], date: i32) -> StoreResult<Changes> {
    let Some(m) = get_message(conn, owner, id)? else { return Ok(vec![]) };
    let entities = serde_json::to_string(entities).map_err(|e| StoreError::Backend(e.to_string()))?;
    let copies: Vec<(i64, i32)> = conn
        .prepare_cached("SELECT owner, id FROM messages WHERE logical_id = ?1")
        .map_err(backend)?
        .query_map([m.logical_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?
        .collect::<Result<_, _>>()
        .map_err(backend)?;
    let mut changes = Vec::new();
    for (o, cid) in copies {
        let o = UserId(o);
        conn.execute("UPDATE messages SET text = ?3, entities = ?4, edit_date = ?5 WHERE owner = ?1 AND id = ?2", params![o.0, cid, text, entities, date])
            .map_err(backend)?;
        let edited = get_message(conn, o, cid)?.ok_or_else(|| StoreError::Backend("edited message vanished".into()))?;
        changes.push((o, record(conn, o, 1, Logged::EditMessage { id: cid }, UpdateKind::EditMessage(edited))?));
    }
    Ok(changes)
}

/// Deletes `ids` from `owner`'s box; with `revoke`, their copies in other boxes too.
fn delete(conn: &Connection, owner: UserId, ids: &[i32], revoke: bool) -> StoreResult<Changes> {
    let mut doomed: Vec<Message> = Vec::new();
    for &id in ids {
        if let Some(m) = get_message(conn, owner, id)? {
            doomed.push(m);
        }
    }
    let mut per_owner: Vec<(UserId, Vec<(i32, i64)>)> = vec![(owner, doomed.iter().map(|m| (m.id, peer_key(m.peer))).collect())];
    if revoke {
        for m in &doomed {
            let copies: Vec<(i64, i32, i64)> = conn
                .prepare_cached("SELECT owner, id, peer FROM messages WHERE logical_id = ?1 AND owner != ?2")
                .map_err(backend)?
                .query_map(params![m.logical_id, owner.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            for (o, id, peer) in copies {
                match per_owner.iter_mut().find(|(u, _)| u.0 == o) {
                    Some((_, v)) => v.push((id, peer)),
                    None => per_owner.push((UserId(o), vec![(id, peer)])),
                }
            }
        }
    }
    let mut changes = Vec::new();
    for (o, list) in per_owner {
        if list.is_empty() {
            continue;
        }
        let mut peers: Vec<i64> = Vec::new();
        for (id, peer) in &list {
            conn.execute("DELETE FROM messages WHERE owner = ?1 AND id = ?2", params![o.0, id]).map_err(backend)?;
            if !peers.contains(peer) {
                peers.push(*peer);
            }
        }
        for p in peers {
            refresh_dialog(conn, o, p)?;
        }
        let ids: Vec<i32> = list.iter().map(|(id, _)| *id).collect();
        let n = ids.len() as i32;
        changes.push((o, record(conn, o, n, Logged::DeleteMessages { ids: ids.clone() }, UpdateKind::DeleteMessages(ids))?));
    }
    Ok(changes)
}

fn update_from_log(conn: &Connection, owner: UserId, pts: i32, count: i32, data: &str) -> StoreResult<Option<PtsUpdate>> {
    let entry: Logged = serde_json::from_str(data).map_err(|e| StoreError::Backend(e.to_string()))?;
    let kind = match entry {
        Logged::NewMessage { id } => get_message(conn, owner, id)?.map(UpdateKind::NewMessage),
        Logged::EditMessage { id } => get_message(conn, owner, id)?.map(UpdateKind::EditMessage),
        Logged::DeleteMessages { ids } => Some(UpdateKind::DeleteMessages(ids)),
        Logged::ReadInbox { peer, max_id, still_unread } => Some(UpdateKind::ReadHistoryInbox { peer: peer_of(peer), max_id, still_unread }),
        Logged::ReadOutbox { peer, max_id } => Some(UpdateKind::ReadHistoryOutbox { peer: peer_of(peer), max_id }),
    };
    Ok(kind.map(|kind| PtsUpdate { pts, pts_count: count, kind }))
}

fn box_pts(conn: &Connection, owner: UserId) -> StoreResult<i32> {
    Ok(conn.query_row("SELECT pts FROM boxes WHERE owner = ?1", [owner.0], |r| r.get(0)).optional().map_err(backend)?.unwrap_or(INITIAL_PTS))
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, msg: NewMessage) -> StoreResult<Appended> {
        self.write(move |conn| append(conn, msg)).await
    }

    async fn history(&self, owner: UserId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)> {
        self.read(move |conn| history(conn, owner, peer, q)).await
    }

    async fn messages_by_ids(&self, owner: UserId, ids: &[i32]) -> StoreResult<Vec<Message>> {
        let ids = ids.to_vec();
        self.read(move |conn| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(m) = get_message(conn, owner, id)? {
                    out.push(m);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn dialogs(&self, owner: UserId, offset_date: i32, offset_id: i32, limit: i32) -> StoreResult<(Vec<Dialog>, i32)> {
        self.read(move |conn| {
            let total: i32 = conn.query_row("SELECT COUNT(*) FROM dialogs WHERE owner = ?1", [owner.0], |r| r.get(0)).map_err(backend)?;
            let (od, oid) = if offset_date > 0 { (offset_date, if offset_id > 0 { offset_id } else { i32::MAX }) } else { (i32::MAX, i32::MAX) };
            let rows: Vec<(i64, i32, i32, i32, i32)> = conn
                .prepare_cached(
                    "SELECT peer, top_message, top_date, read_inbox_max_id, read_outbox_max_id FROM dialogs
                     WHERE owner = ?1 AND (top_date < ?2 OR (top_date = ?2 AND top_message < ?3))
                     ORDER BY top_date DESC, top_message DESC LIMIT ?4",
                )
                .map_err(backend)?
                .query_map(params![owner.0, od, oid, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let mut out = Vec::with_capacity(rows.len());
            for (peer, top_message, top_date, read_inbox_max_id, read_outbox_max_id) in rows {
                let unread_count = unread(conn, owner, peer, read_inbox_max_id)?;
                out.push(Dialog { peer: peer_of(peer), top_message, top_date, read_inbox_max_id, read_outbox_max_id, unread_count });
            }
            Ok((out, total))
        })
        .await
    }

    async fn has_dialog(&self, owner: UserId, peer: Peer) -> StoreResult<bool> {
        self.read(move |conn| {
            conn.query_row("SELECT 1 FROM dialogs WHERE owner = ?1 AND peer = ?2", params![owner.0, peer_key(peer)], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
                .map_err(backend)
        })
        .await
    }

    async fn read_history(&self, owner: UserId, peer: Peer, max_id: i32) -> StoreResult<Changes> {
        self.write(move |conn| read_history(conn, owner, peer, max_id)).await
    }

    async fn edit(&self, owner: UserId, id: i32, text: &str, entities: &[Entity], date: i32) -> StoreResult<Changes> {
        let (text, entities) = (text.to_string(), entities.to_vec());
        self.write(move |conn| edit(conn, owner, id, &text, &entities, date)).await
    }

    async fn delete(&self, owner: UserId, ids: &[i32], revoke: bool) -> StoreResult<Changes> {
        let ids = ids.to_vec();
        self.write(move |conn| delete(conn, owner, &ids, revoke)).await
    }

    async fn delete_history(&self, owner: UserId, peer: Peer, max_id: i32, revoke: bool, keep_dialog: bool, limit: usize) -> StoreResult<(Changes, bool)> {
        self.write(move |conn| {
            let p = peer_key(peer);
            let ids: Vec<i32> = conn
                .prepare_cached("SELECT id FROM messages WHERE owner = ?1 AND peer = ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4")
                .map_err(backend)?
                .query_map(params![owner.0, p, if max_id > 0 { max_id } else { i32::MAX }, limit as i64 + 1], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let more = ids.len() > limit;
            let changes = delete(conn, owner, &ids[..ids.len().min(limit)], revoke)?;
            if !keep_dialog && !more {
                conn.execute("DELETE FROM dialogs WHERE owner = ?1 AND peer = ?2 AND top_message = 0", params![owner.0, p]).map_err(backend)?;
            }
            Ok((changes, more))
        })
        .await
    }

    async fn state(&self, owner: UserId) -> StoreResult<BoxState> {
        self.read(move |conn| {
            let pts = box_pts(conn, owner)?;
            let unread_count: i32 = conn
                .query_row(
                    "SELECT COUNT(*) FROM messages m JOIN dialogs d ON d.owner = m.owner AND d.peer = m.peer
                     WHERE m.owner = ?1 AND m.out = 0 AND m.id > d.read_inbox_max_id",
                    [owner.0],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(BoxState { pts, unread_count })
        })
        .await
    }

    async fn difference(&self, owner: UserId, pts: i32, limit: usize) -> StoreResult<Difference> {
        self.read(move |conn| {
            let rows: Vec<(i32, i32, String)> = conn
                .prepare_cached("SELECT pts, pts_count, data FROM updates WHERE owner = ?1 AND pts > ?2 ORDER BY pts LIMIT ?3")
                .map_err(backend)?
                .query_map(params![owner.0, pts, limit as i64 + 1], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let more = rows.len() > limit;
            let mut updates = Vec::new();
            let mut last = pts;
            for (p, count, data) in rows.into_iter().take(limit) {
                last = p;
                if let Some(u) = update_from_log(conn, owner, p, count, &data)? {
                    updates.push(u);
                }
            }
            let current = box_pts(conn, owner)?;
            Ok(Difference { updates, pts: if more { last } else { current }, more })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::INITIAL_PTS;
    use crate::test_support::temp_store;
    use herald_domain::model::*;
    use herald_domain::store::*;

    fn msg(from: i64, to: i64, text: &str, random_id: i64) -> NewMessage {
        NewMessage {
            from: UserId(from),
            to: UserId(to),
            random_id: Some(random_id),
            logical_id: random_id * 7 + 1,
            date: 1000 + random_id as i32,
            text: text.into(),
            entities: vec![],
            reply_to: None,
            one_sided: false,
        }
    }

    #[tokio::test]
    async fn append_writes_both_boxes_with_gapless_pts_and_dedups() {
        let s = temp_store();
        let a = s.append(msg(1, 2, "hi", 10)).await.unwrap();
        let (sa, rb) = (a.sender.unwrap(), a.recipient.unwrap());
        assert_eq!((sa.pts, rb.pts), (2, 2));
        let b = s.append(msg(2, 1, "yo", 11)).await.unwrap();
        assert_eq!((b.sender.unwrap().pts, b.recipient.unwrap().pts), (3, 3));
        let again = s.append(msg(1, 2, "hi", 10)).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.sender.unwrap(), sa);
        assert_eq!(s.state(UserId(1)).await.unwrap().pts, 3);
        let d = s.difference(UserId(2), INITIAL_PTS, 100).await.unwrap();
        assert_eq!(d.pts, 3);
        assert_eq!(d.updates.iter().map(|u| u.pts).collect::<Vec<_>>(), vec![2, 3]);
        assert!(!d.more);
        let d = s.difference(UserId(2), INITIAL_PTS, 1).await.unwrap();
        assert!(d.more);
        assert_eq!(d.pts, 2);
        // a new box never reports pts 0
        assert_eq!(s.state(UserId(99)).await.unwrap().pts, INITIAL_PTS);
    }

    #[tokio::test]
    async fn history_follows_telegram_offsets() {
        let s = temp_store();
        for i in 1..=10 {
            s.append(msg(1, 2, &format!("m{i}"), i)).await.unwrap();
        }
        let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        let peer = Peer::User(UserId(2));
        let q = |offset_id, add_offset, limit, max_id, min_id| HistoryQuery { offset_id, add_offset, limit, max_id, min_id, offset_date: 0 };
        let (m, count) = s.history(UserId(1), peer, q(0, 0, 3, 0, 0)).await.unwrap();
        assert_eq!((ids(m), count), (vec![10, 9, 8], 10));
        assert_eq!(ids(s.history(UserId(1), peer, q(8, 0, 3, 0, 0)).await.unwrap().0), vec![7, 6, 5]);
        assert_eq!(ids(s.history(UserId(1), peer, q(8, 2, 3, 0, 0)).await.unwrap().0), vec![5, 4, 3]);
        assert_eq!(ids(s.history(UserId(1), peer, q(5, -2, 4, 0, 0)).await.unwrap().0), vec![6, 5, 4, 3]);
        assert_eq!(ids(s.history(UserId(1), peer, q(0, 0, 100, 7, 3)).await.unwrap().0), vec![6, 5, 4]);
        // paging as Telethon does, with offset_date = the last message's date: ids decide
        let mut same_second = q(8, 0, 3, 0, 0);
        same_second.offset_date = 1001;
        assert_eq!(ids(s.history(UserId(1), peer, same_second).await.unwrap().0), vec![7, 6, 5]);
        // without an offset_id, offset_date alone positions the start (dates are 1000 + i)
        let mut by_date = q(0, 0, 2, 0, 0);
        by_date.offset_date = 1005;
        assert_eq!(ids(s.history(UserId(1), peer, by_date).await.unwrap().0), vec![4, 3]);
    }

    #[tokio::test]
    async fn delete_history_works_in_chunks_with_consistent_pts() {
        let s = temp_store();
        for i in 1..=5 {
            s.append(msg(1, 2, "x", i)).await.unwrap();
        }
        let peer = Peer::User(UserId(2));
        let before = s.state(UserId(1)).await.unwrap().pts;
        let (ch, more) = s.delete_history(UserId(1), peer, 0, false, false, 2).await.unwrap();
        assert!(more);
        assert_eq!(ch[0].1.pts, before + 2);
        let (_, more) = s.delete_history(UserId(1), peer, 0, false, false, 2).await.unwrap();
        assert!(more);
        let (ch, more) = s.delete_history(UserId(1), peer, 0, false, false, 2).await.unwrap();
        assert!(!more);
        assert_eq!((ch[0].1.pts, ch[0].1.pts_count), (before + 5, 1));
        assert!(!s.has_dialog(UserId(1), peer).await.unwrap());
        // the other side keeps its copies (no revoke)
        assert_eq!(s.history(UserId(2), Peer::User(UserId(1)), HistoryQuery { limit: 10, ..Default::default() }).await.unwrap().1, 5);
    }

    #[tokio::test]
    async fn read_edit_delete_touch_both_boxes() {
        let s = temp_store();
        s.append(msg(1, 2, "a", 1)).await.unwrap();
        s.append(msg(1, 2, "b", 2)).await.unwrap();
        let (d, _) = s.dialogs(UserId(2), 0, 0, 10).await.unwrap();
        assert_eq!(d[0].unread_count, 2);
        let ch = s.read_history(UserId(2), Peer::User(UserId(1)), 0).await.unwrap();
        assert_eq!(ch.len(), 2);
        assert!(matches!(ch[1].1.kind, UpdateKind::ReadHistoryOutbox { max_id: 2, .. }));
        assert!(s.read_history(UserId(2), Peer::User(UserId(1)), 0).await.unwrap().is_empty());
        let ch = s.edit(UserId(1), 1, "a2", &[], 5000).await.unwrap();
        assert_eq!(ch.len(), 2);
        let bob = s.messages_by_ids(UserId(2), &[1]).await.unwrap();
        assert_eq!(bob[0].text, "a2");
        let ch = s.delete(UserId(1), &[1, 99], true).await.unwrap();
        assert_eq!(ch.iter().map(|(u, up)| (u.0, up.pts_count)).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
        assert!(s.messages_by_ids(UserId(2), &[1]).await.unwrap().is_empty());
        let st = s.state(UserId(2)).await.unwrap();
        // pts: initial + 2 new messages + read + edit + delete
        assert_eq!(st.pts, INITIAL_PTS + 5);
    }
}
