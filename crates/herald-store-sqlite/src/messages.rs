//! Message boxes. Every op that changes a box advances its pts inside the same write
//! transaction as the change itself: an appended copy keeps the pts it took in its own row
//! (`alloc_and_bump`), every other change is logged ([`record`]: pts bump + log entry). That
//! keeps every box's pts gap-free and its updates complete for `difference`, which reads both.
//! This module stores; the rules (who gets a copy, receipts, revokes) are the domain's
//! (`herald-domain/src/messages.rs`).

use crate::{backend, SqliteStore};
use async_trait::async_trait;
use herald_domain::error::StoreError;
use herald_domain::model::*;
use herald_domain::store::{Applied, BoxOp, MessageStore, NewCopy, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// How an update is kept in the log (messages are referenced, not copied). A new message has
/// no entry: the stored copy, with its pts, is the update (`difference`).
#[derive(Serialize, Deserialize)]
enum Logged {
    /// Not written since migration 34, which removed them all.
    NewMessage {
        id: i32,
    },
    EditMessage {
        id: i32,
    },
    DeleteMessages {
        ids: Vec<i32>,
    },
    ReadInbox {
        peer: i64,
        max_id: i32,
        still_unread: i32,
    },
    ReadOutbox {
        peer: i64,
        max_id: i32,
    },
    Pinned {
        peer: i64,
        ids: Vec<i32>,
        pinned: bool,
    },
}

const MSG_COLUMNS: &str = "owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, action, post, post_author,
    (SELECT views FROM view_counts v WHERE v.owner = messages.owner AND v.id = messages.id), mentions, fwd, reactions, ttl_period, media, grouped_id";
/// How many columns [`MSG_COLUMNS`] names: a query may read more after them.
const MSG_COLUMN_COUNT: usize = 21;

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn msg_from_row(r: &Row) -> rusqlite::Result<Message> {
    let entities: String = r.get(8)?;
    let action: Option<String> = r.get(11)?;
    Ok(Message {
        owner: BoxId::from_key(r.get(0)?),
        id: r.get(1)?,
        logical_id: r.get(2)?,
        peer: Peer::from_marked(r.get(3)?),
        from: UserId(r.get(4)?),
        out: r.get(5)?,
        date: r.get(6)?,
        text: r.get(7)?,
        entities: serde_json::from_str(&entities).unwrap_or_default(),
        reply_to: r.get(9)?,
        edit_date: r.get(10)?,
        action: action.and_then(|a| serde_json::from_str(&a).ok()),
        post: r.get(12)?,
        post_author: r.get(13)?,
        mentions: r.get::<_, Option<String>>(15)?.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or_default(),
        views: if r.get(12)? { Some(r.get::<_, Option<i32>>(14)?.unwrap_or(0)) } else { None },
        pinned: false,
        fwd: r.get::<_, Option<String>>(16)?.and_then(|f| serde_json::from_str(&f).ok()),
        reactions: r.get::<_, Option<String>>(17)?.and_then(|f| serde_json::from_str(&f).ok()),
        ttl_period: r.get(18)?,
        media: r.get::<_, Option<String>>(19)?.and_then(|f| serde_json::from_str(&f).ok()),
        grouped_id: r.get(20)?,
    })
}

/// See [`MessageStore::react`]. Counts change by one per call; the recent list is re-read
/// through `reactions_recent` (bounded, whatever the number of reactors).
fn react(conn: &Connection, logical: i64, user: UserId, emoji: Option<String>, date: i32) -> StoreResult<Option<Reactions>> {
    let before: Option<String> = conn
        .prepare_cached("SELECT emoji FROM reactions WHERE logical_id = ?1 AND user = ?2")
        .map_err(backend)?
        .query_row(params![logical, user.0], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if before == emoji {
        return Ok(None);
    }
    let current: Option<String> = conn
        .prepare_cached("SELECT reactions FROM messages WHERE logical_id = ?1 LIMIT 1")
        .map_err(backend)?
        .query_row([logical], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .flatten();
    let mut summary: Reactions = current.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default();
    if let Some(old) = &before {
        if let Some(c) = summary.counts.iter_mut().find(|(e, _)| e == old) {
            c.1 -= 1;
        }
        summary.counts.retain(|(_, n)| *n > 0);
        conn.prepare_cached("DELETE FROM reactions WHERE logical_id = ?1 AND user = ?2")
            .map_err(backend)?
            .execute(params![logical, user.0])
            .map_err(backend)?;
    }
    if let Some(new) = &emoji {
        match summary.counts.iter_mut().find(|(e, _)| e == new) {
            Some(c) => c.1 += 1,
            None => summary.counts.push((new.clone(), 1)),
        }
        conn.prepare_cached("INSERT INTO reactions (logical_id, user, emoji, date) VALUES (?1, ?2, ?3, ?4)")
            .map_err(backend)?
            .execute(params![logical, user.0, new, date])
            .map_err(backend)?;
    }
    summary.counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    summary.recent = conn
        .prepare_cached("SELECT user, emoji, date FROM reactions WHERE logical_id = ?1 ORDER BY date DESC, user LIMIT ?2")
        .map_err(backend)?
        .query_map(params![logical, RECENT_REACTIONS_MAX as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let stored = if summary.counts.is_empty() { None } else { Some(serde_json::to_string(&summary).map_err(json_err)?) };
    conn.prepare_cached("UPDATE messages SET reactions = ?2 WHERE logical_id = ?1").map_err(backend)?.execute(params![logical, stored]).map_err(backend)?;
    Ok(Some(summary))
}

fn get_message(conn: &Connection, owner: BoxId, id: i32) -> StoreResult<Option<Message>> {
    conn.prepare_cached(&format!("SELECT {MSG_COLUMNS} FROM messages WHERE owner = ?1 AND id = ?2"))
        .map_err(backend)?
        .query_row(params![owner.key(), id], msg_from_row)
        .optional()
        .map_err(backend)
}

/// A box's pts before its first update. Not 0: Telethon treats a saved pts of 0 as "no
/// state" and would skip catching up (client-compat pitfall found by the acceptance suite).
pub const INITIAL_PTS: i32 = 1;

fn ensure_box(conn: &Connection, owner: BoxId) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO boxes (owner, pts, next_msg_id) VALUES (?1, ?2, 1)")
        .map_err(backend)?
        .execute(params![owner.key(), INITIAL_PTS])
        .map_err(backend)?;
    Ok(())
}

/// Advances the box's pts by `count` and returns the new value.
fn bump(conn: &Connection, owner: BoxId, count: i32) -> StoreResult<i32> {
    ensure_box(conn, owner)?;
    conn.prepare_cached("UPDATE boxes SET pts = pts + ?2 WHERE owner = ?1 RETURNING pts")
        .map_err(backend)?
        .query_row(params![owner.key(), count], |r| r.get(0))
        .map_err(backend)
}

/// For an appended copy: takes the box's next message id and advances its pts by one, in one
/// statement where the box exists (an id and then [`bump`] took four): (id, pts).
fn alloc_and_bump(conn: &Connection, owner: BoxId) -> StoreResult<(i32, i32)> {
    let mut stmt = conn
        .prepare_cached("UPDATE boxes SET next_msg_id = next_msg_id + 1, pts = pts + 1 WHERE owner = ?1 RETURNING next_msg_id - 1, pts")
        .map_err(backend)?;
    let row = |r: &rusqlite::Row| Ok((r.get(0)?, r.get(1)?));
    if let Some(taken) = stmt.query_row([owner.key()], row).optional().map_err(backend)? {
        return Ok(taken);
    }
    ensure_box(conn, owner)?;
    stmt.query_row([owner.key()], row).map_err(backend)
}

fn log(conn: &Connection, owner: BoxId, pts: i32, count: i32, entry: &Logged) -> StoreResult<()> {
    let data = serde_json::to_string(entry).map_err(json_err)?;
    conn.prepare_cached("INSERT INTO updates (owner, pts, pts_count, data) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?
        .execute(params![owner.key(), pts, count, data])
        .map_err(backend)?;
    Ok(())
}

/// Bumps pts, logs the entry and returns the domain update, all in one step.
fn record(conn: &Connection, owner: BoxId, count: i32, entry: Logged, kind: UpdateKind) -> StoreResult<PtsUpdate> {
    let pts = bump(conn, owner, count)?;
    log(conn, owner, pts, count, &entry)?;
    Ok(PtsUpdate { pts, pts_count: count, kind })
}

fn touch_dialog(conn: &Connection, owner: UserId, peer: i64, top: i32, date: i32, unread: bool) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO dialogs (owner, peer, top_message, top_date, unread_count) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(owner, peer) DO UPDATE SET top_message = excluded.top_message, top_date = excluded.top_date,
             unread_count = unread_count + excluded.unread_count",
    )
    .map_err(backend)?
    .execute(params![owner.0, peer, top, date, unread as i32])
    .map_err(backend)?;
    Ok(())
}

/// After deletions: point the dialog (or the channel box) at its newest remaining message (the
/// dialog stays, empty, as on Telegram, unless the caller removes it).
fn refresh_top(conn: &Connection, owner: BoxId, peer: i64) -> StoreResult<()> {
    let top: Option<(i32, i32)> = match owner {
        BoxId::User(_) => {
            conn.query_row("SELECT id, date FROM messages WHERE owner = ?1 AND peer = ?2 ORDER BY id DESC LIMIT 1", params![owner.key(), peer], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        }
        BoxId::Channel(_) => {
            conn.query_row("SELECT id, date FROM messages WHERE owner = ?1 ORDER BY id DESC LIMIT 1", params![owner.key()], |r| Ok((r.get(0)?, r.get(1)?)))
        }
    }
    .optional()
    .map_err(backend)?;
    let (top, date) = top.unwrap_or((0, 0));
    let sql = match owner {
        BoxId::User(_) => "UPDATE dialogs SET top_message = ?3, top_date = MAX(top_date * (?3 = 0), ?4) WHERE owner = ?1 AND peer = ?2",
        BoxId::Channel(_) => "UPDATE boxes SET top_message = ?3, top_date = MAX(top_date * (?3 = 0), ?4) WHERE owner = ?1 AND ?2 = ?2",
    };
    conn.execute(sql, params![owner.key(), peer, top, date]).map_err(backend)?;
    Ok(())
}

fn insert_message(conn: &Connection, m: &Message, random_id: Option<i64>, pts: i32) -> StoreResult<()> {
    let entities = serde_json::to_string(&m.entities).map_err(json_err)?;
    let action = m.action.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
    let mentions = if m.mentions.is_empty() { None } else { Some(serde_json::to_string(&m.mentions).map_err(json_err)?) };
    let fwd = m.fwd.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
    let expires_at = m.ttl_period.map(|t| m.date as i64 + t as i64);
    let media = m.media.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
    // Which file the copy carries (as media, or as a chat photo it announces): for access and
    // for keeping the file while the copy exists.
    if let Some(file) = m.media.as_ref().map(|x| x.file()).or_else(|| m.action.as_ref().and_then(|a| a.file())) {
        conn.prepare_cached("INSERT OR IGNORE INTO message_files (owner, msg_id, file_id) VALUES (?1, ?2, ?3)")
            .map_err(backend)?
            .execute(params![m.owner.key(), m.id, file.id])
            .map_err(backend)?;
    }
    conn.prepare_cached(
        "INSERT INTO messages (owner, id, logical_id, peer, from_id, out, date, text, entities, reply_to, edit_date, random_id, pts, action, post, post_author, mentions, fwd, ttl_period, expires_at, media, grouped_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    )
    .map_err(backend)?
    .execute(params![
        m.owner.key(),
        m.id,
        m.logical_id,
        m.peer.marked(),
        m.from.0,
        m.out,
        m.date,
        m.text,
        entities,
        m.reply_to,
        m.edit_date,
        random_id,
        pts,
        action,
        m.post,
        m.post_author,
        mentions,
        fwd,
        m.ttl_period,
        expires_at,
        media,
        m.grouped_id
    ])
    .map_err(backend)?;
    Ok(())
}

/// See [`BoxOp::NewChatTtl`]. One primary-key read per private send when the sender has no
/// default period (the common case).
fn new_chat_ttl(conn: &Connection, from: UserId, to: UserId) -> StoreResult<()> {
    let period: i32 = conn
        .prepare_cached("SELECT default_history_ttl FROM users WHERE id = ?1")
        .map_err(backend)?
        .query_row([from.0], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .unwrap_or(0);
    if period <= 0 {
        return Ok(());
    }
    let existing = conn
        .prepare_cached("SELECT 1 FROM dialogs WHERE (owner = ?1 AND peer = ?2) OR (owner = ?2 AND peer = ?1)")
        .map_err(backend)?
        .exists(params![from.0, to.0])
        .map_err(backend)?;
    if existing {
        return Ok(());
    }
    let mut set = conn
        .prepare_cached(
            "INSERT INTO dialog_state (owner, peer, ttl_period) VALUES (?1, ?2, ?3) ON CONFLICT (owner, peer) DO UPDATE SET ttl_period = excluded.ttl_period",
        )
        .map_err(backend)?;
    for (owner, peer) in [(from, to), (to, from)] {
        set.execute(params![BoxId::User(owner).key(), Peer::User(peer).marked(), period]).map_err(backend)?;
    }
    Ok(())
}

fn append(conn: &Connection, owner: BoxId, n: NewCopy, touched: &mut Touched) -> StoreResult<PtsUpdate> {
    let mut m = n.message;
    touched.appended(m.logical_id);
    m.owner = owner;
    if m.action.is_none() {
        // The conversation's self-deletion period applies to what is sent from now on.
        let ttl: Option<i32> = conn
            .prepare_cached("SELECT ttl_period FROM dialog_state WHERE owner = ?1 AND peer = ?2 AND ttl_period > 0")
            .map_err(backend)?
            .query_row(params![owner.key(), m.peer.marked()], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        m.ttl_period = ttl;
    }
    let (id, pts) = alloc_and_bump(conn, owner)?;
    m.id = id;
    insert_message(conn, &m, n.random_id, pts)?;
    match owner {
        BoxId::User(u) => touch_dialog(conn, u, m.peer.marked(), m.id, m.date, n.unread)?,
        BoxId::Channel(_) => {
            conn.prepare_cached("UPDATE boxes SET top_message = ?2, top_date = ?3 WHERE owner = ?1")
                .map_err(backend)?
                .execute(params![owner.key(), m.id, m.date])
                .map_err(backend)?;
        }
    }
    for u in &m.mentions {
        conn.prepare_cached("INSERT OR IGNORE INTO mentions (owner, user, peer, id) VALUES (?1, ?2, ?3, ?4)")
            .map_err(backend)?
            .execute(params![owner.key(), u, m.peer.marked(), m.id])
            .map_err(backend)?;
    }
    // No log entry: the stored copy, with its pts, is the update (see `difference`).
    Ok(PtsUpdate { pts, pts_count: 1, kind: UpdateKind::NewMessage(m) })
}

fn unread(conn: &Connection, owner: UserId, peer: i64, read_max: i32) -> StoreResult<i32> {
    conn.prepare_cached("SELECT COUNT(*) FROM messages WHERE owner = ?1 AND peer = ?2 AND out = 0 AND id > ?3")
        .map_err(backend)?
        .query_row(params![owner.0, peer, read_max], |r| r.get(0))
        .map_err(backend)
}

fn read_inbox(conn: &Connection, owner: BoxId, peer: Peer, max_id: i32) -> StoreResult<Option<PtsUpdate>> {
    let BoxId::User(u) = owner else { return Ok(None) };
    let p = peer.marked();
    let Some((top, read_max)) = conn
        .query_row("SELECT top_message, read_inbox_max_id FROM dialogs WHERE owner = ?1 AND peer = ?2", params![u.0, p], |r| {
            Ok((r.get::<_, i32>(0)?, r.get::<_, i32>(1)?))
        })
        .optional()
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let new_max = if max_id <= 0 || max_id > top { top } else { max_id };
    if new_max <= read_max {
        return Ok(None);
    }
    // Counted once here, when the mark moves, so that reading dialogs never counts.
    let still_unread = unread(conn, u, p, new_max)?;
    conn.execute(
        "UPDATE dialogs SET read_inbox_max_id = ?3, unread_count = ?4, unread_mark = 0 WHERE owner = ?1 AND peer = ?2",
        params![u.0, p, new_max, still_unread],
    )
    .map_err(backend)?;
    conn.execute("DELETE FROM mentions WHERE owner = ?1 AND user = ?1 AND peer = ?2 AND id <= ?3", params![u.0, p, new_max]).map_err(backend)?;
    Ok(Some(record(
        conn,
        owner,
        1,
        Logged::ReadInbox { peer: p, max_id: new_max, still_unread },
        UpdateKind::ReadHistoryInbox { peer, max_id: new_max, still_unread },
    )?))
}

fn read_outbox(conn: &Connection, owner: BoxId, peer: Peer, max_id: i32) -> StoreResult<Option<PtsUpdate>> {
    let BoxId::User(u) = owner else { return Ok(None) };
    let n = conn
        .execute("UPDATE dialogs SET read_outbox_max_id = ?3 WHERE owner = ?1 AND peer = ?2 AND read_outbox_max_id < ?3", params![u.0, peer.marked(), max_id])
        .map_err(backend)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(record(conn, owner, 1, Logged::ReadOutbox { peer: peer.marked(), max_id }, UpdateKind::ReadHistoryOutbox { peer, max_id })?))
}

#[allow(clippy::too_many_arguments)] // one BoxOp's fields
fn edit(
    conn: &Connection,
    owner: BoxId,
    id: i32,
    text: &str,
    entities: &[Entity],
    media: Option<&Media>,
    date: i32,
    touched: &mut Touched,
) -> StoreResult<Option<PtsUpdate>> {
    let entities = serde_json::to_string(entities).map_err(json_err)?;
    let n = conn
        .execute("UPDATE messages SET text = ?3, entities = ?4, edit_date = ?5 WHERE owner = ?1 AND id = ?2", params![owner.key(), id, text, entities, date])
        .map_err(backend)?;
    if n == 0 {
        return Ok(None);
    }
    if let Some(media) = media {
        let json = serde_json::to_string(media).map_err(json_err)?;
        conn.execute("UPDATE messages SET media = ?3 WHERE owner = ?1 AND id = ?2", params![owner.key(), id, json]).map_err(backend)?;
        conn.prepare_cached("DELETE FROM message_files WHERE owner = ?1 AND msg_id = ?2")
            .map_err(backend)?
            .execute(params![owner.key(), id])
            .map_err(backend)?;
        conn.prepare_cached("INSERT OR IGNORE INTO message_files (owner, msg_id, file_id) VALUES (?1, ?2, ?3)")
            .map_err(backend)?
            .execute(params![owner.key(), id, media.file().id])
            .map_err(backend)?;
    }
    let edited = get_message(conn, owner, id)?.ok_or_else(|| StoreError::Backend("edited message vanished".into()))?;
    touched.changed(edited.logical_id);
    Ok(Some(record(conn, owner, 1, Logged::EditMessage { id }, UpdateKind::EditMessage(edited))?))
}

fn delete(conn: &Connection, owner: BoxId, ids: &[i32], touched: &mut Touched) -> StoreResult<Option<PtsUpdate>> {
    let mut gone = Vec::new();
    let mut peers: Vec<i64> = Vec::new();
    for &id in ids {
        let row: Option<(i64, bool, i64, bool)> = conn
            .prepare_cached("DELETE FROM messages WHERE owner = ?1 AND id = ?2 RETURNING peer, out, logical_id, media IS NOT NULL OR action IS NOT NULL")
            .map_err(backend)?
            .query_row(params![owner.key(), id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .map_err(backend)?;
        let Some((peer, out, logical, media)) = row else { continue };
        if media {
            conn.prepare_cached("DELETE FROM message_files WHERE owner = ?1 AND msg_id = ?2")
                .map_err(backend)?
                .execute(params![owner.key(), id])
                .map_err(backend)?;
        }
        touched.changed(logical);
        gone.push(id);
        match owner {
            BoxId::User(u) => {
                if !out {
                    conn.prepare_cached("UPDATE dialogs SET unread_count = MAX(unread_count - 1, 0) WHERE owner = ?1 AND peer = ?2 AND read_inbox_max_id < ?3")
                        .map_err(backend)?
                        .execute(params![u.0, peer, id])
                        .map_err(backend)?;
                }
            }
            BoxId::Channel(_) => {
                conn.prepare_cached("INSERT OR IGNORE INTO box_deleted (owner, id) VALUES (?1, ?2)")
                    .map_err(backend)?
                    .execute(params![owner.key(), id])
                    .map_err(backend)?;
                conn.prepare_cached("DELETE FROM view_counts WHERE owner = ?1 AND id = ?2")
                    .map_err(backend)?
                    .execute(params![owner.key(), id])
                    .map_err(backend)?;
            }
        }
        conn.prepare_cached("DELETE FROM mentions WHERE owner = ?1 AND peer = ?2 AND id = ?3")
            .map_err(backend)?
            .execute(params![owner.key(), peer, id])
            .map_err(backend)?;
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    if gone.is_empty() {
        return Ok(None);
    }
    for p in peers {
        refresh_top(conn, owner, p)?;
    }
    let n = gone.len() as i32;
    Ok(Some(record(conn, owner, n, Logged::DeleteMessages { ids: gone.clone() }, UpdateKind::DeleteMessages(gone))?))
}

fn apply(conn: &Connection, ops: Vec<(BoxId, BoxOp)>, dedup: Option<(BoxId, UserId, i64)>) -> StoreResult<Applied> {
    if let Some((owner, from, rid)) = dedup {
        let existing: Option<(i32, i32)> = conn
            .prepare_cached("SELECT id, pts FROM messages WHERE owner = ?1 AND random_id = ?2 AND from_id = ?3")
            .map_err(backend)?
            .query_row(params![owner.key(), rid, from.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        if let Some((id, pts)) = existing {
            let m = get_message(conn, owner, id)?.ok_or_else(|| StoreError::Backend("deduplicated message vanished".into()))?;
            return Ok(Applied { updates: vec![(owner, PtsUpdate { pts, pts_count: 1, kind: UpdateKind::NewMessage(m) })], duplicate: true });
        }
    }
    let mut updates = Vec::with_capacity(ops.len());
    let mut touched = Touched::default();
    for (owner, op) in ops {
        let up = match op {
            BoxOp::Append(n) => Some(append(conn, owner, n, &mut touched)?),
            BoxOp::Edit { id, text, entities, media, date } => edit(conn, owner, id, &text, &entities, media.as_deref(), date, &mut touched)?,
            BoxOp::Delete { ids } => delete(conn, owner, &ids, &mut touched)?,
            BoxOp::ReadInbox { peer, max_id } => read_inbox(conn, owner, peer, max_id)?,
            BoxOp::ReadOutbox { peer, max_id } => read_outbox(conn, owner, peer, max_id)?,
            BoxOp::UnlessBlocked { a, b } => {
                let blocked = conn
                    .prepare_cached("SELECT 1 FROM blocked WHERE (user = ?1 AND blocked = ?2) OR (user = ?2 AND blocked = ?1)")
                    .map_err(backend)?
                    .exists(params![a.0, b.0])
                    .map_err(backend)?;
                if blocked {
                    return Err(StoreError::Conflict("blocked"));
                }
                let deleted = conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND deleted = 1").map_err(backend)?.exists([b.0]).map_err(backend)?;
                if deleted {
                    return Err(StoreError::Conflict("deactivated"));
                }
                None
            }
            BoxOp::NewChatTtl { from, to } => {
                new_chat_ttl(conn, from, to)?;
                None
            }
            BoxOp::Pin { peer, ids, pinned } => Some(record(
                conn,
                owner,
                1,
                Logged::Pinned { peer: peer.marked(), ids: ids.clone(), pinned },
                UpdateKind::PinnedMessages { peer, ids, pinned },
            )?),
        };
        if let Some(up) = up {
            updates.push((owner, up));
        }
    }
    touched.index_later_or_now(conn)?;
    Ok(Applied { updates, duplicate: false })
}

/// The full-text index work of the write batch under way on this thread (the writer's), done
/// once after all of the batch's jobs instead of inside each: FTS5 writes its pending terms out
/// as a new index segment at every savepoint, and every job runs under its own
/// (`run_batch`), so indexing inside the jobs wrote a segment, and later merged it, per
/// message. `job` collects what the running job touched; it joins `batch` only if the job is
/// kept (see [`job_ended`]).
#[derive(Default)]
struct PendingIndex {
    batch: Touched,
    job: Touched,
}

thread_local! {
    static PENDING_INDEX: std::cell::RefCell<Option<PendingIndex>> = const { std::cell::RefCell::new(None) };
}

/// A write batch begins on this thread: index work is collected from now on.
pub(crate) fn batch_started() {
    PENDING_INDEX.with(|p| *p.borrow_mut() = Some(PendingIndex::default()));
}

/// The running job ended: its index work is kept if its changes were (`kept`), dropped with
/// them otherwise.
pub(crate) fn job_ended(kept: bool) {
    PENDING_INDEX.with(|p| {
        if let Some(p) = p.borrow_mut().as_mut() {
            let job = std::mem::take(&mut p.job);
            if kept {
                p.batch.merge(job);
            }
        }
    });
}

/// The batch's jobs are done: brings the index up to date for everything they kept, inside
/// the batch's transaction (so a search sees a message exactly when its commit is visible).
/// With `apply` false the work is dropped (the batch is being rolled back). This runs outside
/// the jobs' savepoints, so an index write that fails (an I/O error, in practice) fails the
/// whole batch, not one job: no job of it is acknowledged, and each caller gets the error.
pub(crate) fn batch_ending(conn: &Connection, apply: bool) -> StoreResult<()> {
    match PENDING_INDEX.with(|p| p.borrow_mut().take()) {
        Some(p) if apply => p.batch.reindex(conn),
        _ => Ok(()),
    }
}

/// The logical messages one `apply` wrote, for the full-text index (and the reactions of
/// messages deleted everywhere).
#[derive(Default)]
struct Touched(Vec<(i64, usize, bool)>);

impl Touched {
    fn entry(&mut self, logical: i64) -> &mut (i64, usize, bool) {
        match self.0.iter().position(|t| t.0 == logical) {
            Some(i) => &mut self.0[i],
            None => {
                self.0.push((logical, 0, false));
                self.0.last_mut().expect("just pushed")
            }
        }
    }
    fn appended(&mut self, logical: i64) {
        self.entry(logical).1 += 1;
    }
    fn changed(&mut self, logical: i64) {
        self.entry(logical).2 = true;
    }

    /// Adds a later job's work: copies appended add up, a change anywhere is a change. Indexing
    /// the sum once, from the final rows, gives the row that indexing each job's part in turn
    /// would have left.
    fn merge(&mut self, later: Touched) {
        for (logical, appended, changed) in later.0 {
            let e = self.entry(logical);
            e.1 += appended;
            e.2 |= changed;
        }
    }

    /// Inside a write batch, hands the work to the batch (see [`PendingIndex`]); elsewhere
    /// does it now.
    fn index_later_or_now(self, conn: &Connection) -> StoreResult<()> {
        let this = PENDING_INDEX.with(|p| match p.borrow_mut().as_mut() {
            Some(p) => {
                p.job.merge(self);
                None
            }
            None => Some(self),
        });
        match this {
            Some(t) => t.reindex(conn),
            None => Ok(()),
        }
    }

    /// Brings each touched message's index row up to date: its text and the boxes that hold
    /// a copy now. A message whose copies were all written by this apply has no row yet. A
    /// message with no copy left loses its reactions too.
    fn reindex(self, conn: &Connection) -> StoreResult<()> {
        for (logical, appended, changed) in self.0 {
            let mut stmt = conn.prepare_cached("SELECT owner, text FROM messages WHERE logical_id = ?1").map_err(backend)?;
            let copies = stmt
                .query_map([logical], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            if copies.is_empty() && changed {
                conn.prepare_cached("DELETE FROM reactions WHERE logical_id = ?1").map_err(backend)?.execute([logical]).map_err(backend)?;
            }
            if changed || copies.len() != appended {
                conn.prepare_cached("DELETE FROM search WHERE rowid = ?1").map_err(backend)?.execute([logical]).map_err(backend)?;
            }
            let Some((_, text)) = copies.iter().find(|(_, t)| !t.is_empty()) else { continue };
            let owners: Vec<String> = copies.iter().map(|(o, _)| owner_token(*o)).collect();
            conn.prepare_cached("INSERT INTO search (rowid, text, owners) VALUES (?1, ?2, ?3)")
                .map_err(backend)?
                .execute(params![logical, text, owners.join(" ")])
                .map_err(backend)?;
        }
        Ok(())
    }
}

/// A box's token in the index's `owners` column (see schema migration 11).
fn owner_token(key: i64) -> String {
    if key >= 0 {
        format!("o{key}")
    } else {
        format!("n{}", key.unsigned_abs())
    }
}

/// An FTS5 query: every word as a prefix in `text`, and one of `boxes` in `owners`. Words
/// are letters and digits only (anything else separates them), so nothing needs escaping.
fn match_expr(boxes: &[BoxId], words: &[String]) -> String {
    let owners: Vec<String> = boxes.iter().map(|b| format!("\"{}\"", owner_token(b.key()))).collect();
    let words: Vec<String> = words.iter().map(|w| format!("\"{w}\"*")).collect();
    format!("owners : ({}) AND text : ({})", owners.join(" OR "), words.join(" AND "))
}

/// `messages` conditions and their parameters for `q`, paging aside.
fn search_filter(q: &SearchQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::new();
    let mut args: Vec<Value> = vec![];
    fn arg(args: &mut Vec<Value>, v: Value) -> String {
        args.push(v);
        format!("?{}", args.len())
    }
    let owners: Vec<String> = q.boxes.iter().map(|b| arg(&mut args, Value::Integer(b.key()))).collect();
    sql.push_str(&format!("owner IN ({})", owners.join(", ")));
    if !q.words.is_empty() {
        let m = arg(&mut args, Value::Text(match_expr(&q.boxes, &q.words)));
        sql.push_str(&format!(" AND logical_id IN (SELECT rowid FROM search WHERE search MATCH {m})"));
    }
    if let Some(p) = q.peer {
        let a = arg(&mut args, Value::Integer(p.marked()));
        sql.push_str(&format!(" AND peer = {a}"));
    }
    if let Some(f) = q.from {
        let a = arg(&mut args, Value::Integer(f.0));
        sql.push_str(&format!(" AND from_id = {a}"));
    }
    if let Some(u) = q.mentioning {
        let a = arg(&mut args, Value::Integer(u.0));
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each(messages.mentions) WHERE value = {a})"));
    }
    for (bound, col, op) in [(q.min_date, "date", ">"), (q.max_date, "date", "<"), (q.min_id, "id", ">"), (q.max_id, "id", "<")] {
        if bound > 0 {
            let a = arg(&mut args, Value::Integer(bound.into()));
            sql.push_str(&format!(" AND {col} {op} {a}"));
        }
    }
    (sql, args)
}

fn search(conn: &Connection, q: &SearchQuery) -> StoreResult<(Vec<Message>, i32)> {
    use rusqlite::types::Value;
    if q.boxes.is_empty() {
        return Ok((vec![], 0));
    }
    let (filter, mut args) = search_filter(q);
    let count: i32 = conn
        .prepare(&format!("SELECT COUNT(*) FROM messages WHERE {filter}"))
        .map_err(backend)?
        .query_row(rusqlite::params_from_iter(&args), |r| r.get(0))
        .map_err(backend)?;
    if q.limit <= 0 {
        return Ok((vec![], count));
    }
    let mut paging = String::new();
    if let Some((date, peer, id)) = q.before {
        args.extend([Value::Integer(date.into()), Value::Integer(peer), Value::Integer(id.into())]);
        let n = args.len();
        paging = format!(" AND (date, peer, id) < (?{}, ?{}, ?{})", n - 2, n - 1, n);
    } else if q.offset_id > 0 {
        args.push(Value::Integer(q.offset_id.into()));
        paging = format!(" AND id < ?{}", args.len());
    }
    args.extend([Value::Integer(q.limit.into()), Value::Integer(q.add_offset.max(0).into())]);
    let n = args.len();
    let sql = format!("SELECT {MSG_COLUMNS} FROM messages WHERE {filter}{paging} ORDER BY date DESC, peer DESC, id DESC LIMIT ?{} OFFSET ?{n}", n - 1);
    let msgs = conn
        .prepare(&sql)
        .map_err(backend)?
        .query_map(rusqlite::params_from_iter(&args), msg_from_row)
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok((msgs, count))
}

fn history(conn: &Connection, owner: BoxId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)> {
    // In a channel box every message is the channel's: the peer filter matches them all.
    let p = peer.marked();
    let count: i32 = match owner {
        BoxId::User(_) => conn
            .prepare_cached("SELECT COUNT(*) FROM messages WHERE owner = ?1 AND peer = ?2")
            .map_err(backend)?
            .query_row(params![owner.key(), p], |r| r.get(0))
            .map_err(backend)?,
        // A channel's count from its counters: ids issued minus ids deleted.
        BoxId::Channel(_) => conn
            .prepare_cached("SELECT next_msg_id - 1 - (SELECT COUNT(*) FROM box_deleted WHERE owner = ?1) FROM boxes WHERE owner = ?1")
            .map_err(backend)?
            .query_row(params![owner.key()], |r| r.get(0))
            .optional()
            .map_err(backend)?
            .unwrap_or(0),
    };
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
            .query_map(params![owner.key(), p, if q.offset_id > 0 { q.offset_id } else { i32::MAX }, max_bound, min_bound, -q.add_offset], msg_from_row)
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
            .query_map(params![owner.key(), p, offset_id, max_bound, min_bound, date_bound, older_limit, q.add_offset.max(0)], msg_from_row)
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        out.extend(older);
    }
    out.truncate(q.limit.max(0) as usize);
    Ok((out, count))
}

/// The id of `owner`'s first message with a pts above `pts`, if any. A copy takes its id and
/// its pts in one statement (`alloc_and_bump`) and keeps both, so within a box both rise
/// together, and the message is found by searching ids: galloping back from the newest, then
/// bisecting. Each probe is one primary-key seek: a client a few messages behind costs a few,
/// one a million behind about forty.
fn first_id_after_pts(conn: &Connection, owner: BoxId, pts: i32) -> StoreResult<Option<i32>> {
    let Some(next) = conn
        .prepare_cached("SELECT next_msg_id FROM boxes WHERE owner = ?1")
        .map_err(backend)?
        .query_row([owner.key()], |r| r.get::<_, i32>(0))
        .optional()
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let mut probe = conn.prepare_cached("SELECT id, pts FROM messages WHERE owner = ?1 AND id >= ?2 ORDER BY id LIMIT 1").map_err(backend)?;
    // The first message at or after id `at`: (id, pts).
    let mut first_from =
        |at: i32| -> StoreResult<Option<(i32, i32)>> { probe.query_row(params![owner.key(), at], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(backend) };
    // `after(i)`: no message at or after `i` has a pts up to `pts`. False up to some id, true
    // from there on; `hi` is always a true one.
    let mut after = |at: i32| -> StoreResult<bool> { Ok(first_from(at)?.is_none_or(|(_, p)| p > pts)) };
    let (mut lo, mut hi, mut step) = (1, next, 1);
    while hi - step >= lo {
        if after(hi - step)? {
            hi -= step;
            step = step.saturating_mul(2);
        } else {
            lo = hi - step + 1;
            break;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if after(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(first_from(hi)?.map(|(id, _)| id))
}

fn update_from_log(conn: &Connection, owner: BoxId, pts: i32, count: i32, data: &str) -> StoreResult<Option<PtsUpdate>> {
    let entry: Logged = serde_json::from_str(data).map_err(json_err)?;
    let kind = match entry {
        // Written before migration 34 (which removed them all): the message itself is the
        // update now (see `difference`).
        Logged::NewMessage { .. } => None,
        Logged::EditMessage { id } => get_message(conn, owner, id)?.map(UpdateKind::EditMessage),
        Logged::DeleteMessages { ids } => Some(UpdateKind::DeleteMessages(ids)),
        Logged::ReadInbox { peer, max_id, still_unread } => Some(UpdateKind::ReadHistoryInbox { peer: Peer::from_marked(peer), max_id, still_unread }),
        Logged::ReadOutbox { peer, max_id } => Some(UpdateKind::ReadHistoryOutbox { peer: Peer::from_marked(peer), max_id }),
        Logged::Pinned { peer, ids, pinned } => Some(UpdateKind::PinnedMessages { peer: Peer::from_marked(peer), ids, pinned }),
    };
    Ok(kind.map(|kind| PtsUpdate { pts, pts_count: count, kind }))
}

fn box_pts(conn: &Connection, owner: BoxId) -> StoreResult<i32> {
    Ok(conn
        .prepare_cached("SELECT pts FROM boxes WHERE owner = ?1")
        .map_err(backend)?
        .query_row([owner.key()], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .unwrap_or(INITIAL_PTS))
}

/// The dialogs query: the user's own dialogs (private chats, basic groups) and one row per
/// channel they are a member of, with the channel box's top message, pts and the member's
/// read mark. A supergroup's outbox mark is how far anyone else has read it (`ReadTop`);
/// a broadcast channel's posts count as read. Unread counts: the dialog's counter, or for a channel the ids above the mark
/// minus the deleted ones.
const DIALOG_ROWS: &str = "
    SELECT d.*, COALESCE(s.pin_order, 0) AS pin_order, COALESCE(s.folder, 0) AS folder, s.draft AS draft,
        CASE WHEN d.peer <= -1000000000000
            THEN COALESCE((SELECT c.ttl_period FROM dialog_state c WHERE c.owner = d.peer AND c.peer = d.peer), 0)
            ELSE COALESCE(s.ttl_period, 0) END AS ttl_period FROM (
    SELECT peer, top_message, top_date, read_inbox_max_id, read_outbox_max_id, unread_count, NULL AS pts, unread_mark FROM dialogs WHERE owner = ?1
    UNION ALL
    SELECT -(1000000000000 + m.grp), b.top_message, b.top_date, m.read_inbox_max_id,
        CASE WHEN g.kind != 1 THEN b.top_message WHEN g.read_top_user = ?1 THEN g.read_second ELSE g.read_top END,
        MAX(b.top_message - m.read_inbox_max_id
            - (SELECT COUNT(*) FROM box_deleted d WHERE d.owner = b.owner AND d.id > m.read_inbox_max_id), 0),
        b.pts, m.unread_mark
    FROM members m JOIN groups g ON g.id = m.grp AND g.kind != 0 AND g.deleted = 0
        JOIN boxes b ON b.owner = -(1000000000000 + m.grp)
    WHERE m.user = ?1 AND m.role <= 3
    ) d LEFT JOIN dialog_state s ON s.owner = ?1 AND s.peer = d.peer";

fn dialog_from_row(conn: &Connection, owner: UserId, r: DialogRow) -> StoreResult<Dialog> {
    let ((peer, top_message, top_date, read_inbox_max_id, read_outbox_max_id, unread_count, pts, unread_mark), (pin_order, folder, draft, ttl_period)) = r;
    let peer = Peer::from_marked(peer);
    let mbox = match peer {
        Peer::Channel(g) => BoxId::Channel(g).key(),
        _ => owner.0,
    };
    let unread_mentions: i32 = conn
        .prepare_cached("SELECT COUNT(*) FROM mentions WHERE owner = ?1 AND user = ?2 AND peer = ?3 AND id > ?4")
        .map_err(backend)?
        .query_row(params![mbox, owner.0, peer.marked(), read_inbox_max_id], |r| r.get(0))
        .map_err(backend)?;
    let draft = draft.and_then(|d| serde_json::from_str(&d).ok());
    Ok(Dialog {
        peer,
        top_message,
        top_date,
        read_inbox_max_id,
        read_outbox_max_id,
        unread_count,
        unread_mentions,
        pts,
        unread_mark,
        pinned: pin_order > 0,
        folder,
        draft,
        ttl_period,
    })
}

type DialogRow = ((i64, i32, i32, i32, i32, i32, Option<i32>, bool), (i64, i32, Option<String>, i32));

fn dialog_row(r: &Row) -> rusqlite::Result<DialogRow> {
    Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?), (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?)))
}

/// A dialog's folder (0 when it has no state row).
fn folder_of(conn: &Connection, owner: UserId, peer: i64) -> StoreResult<i32> {
    Ok(conn
        .prepare_cached("SELECT folder FROM dialog_state WHERE owner = ?1 AND peer = ?2")
        .map_err(backend)?
        .query_row(params![owner.0, peer], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .unwrap_or(0))
}

fn set_pin_order(conn: &Connection, owner: UserId, peer: i64, order: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO dialog_state (owner, peer, pin_order) VALUES (?1, ?2, ?3)
         ON CONFLICT (owner, peer) DO UPDATE SET pin_order = excluded.pin_order",
    )
    .map_err(backend)?
    .execute(params![owner.0, peer, order])
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn apply(&self, ops: Vec<(BoxId, BoxOp)>, dedup: Option<(BoxId, UserId, i64)>) -> StoreResult<Applied> {
        self.write(move |conn| apply(conn, ops, dedup)).await
    }

    async fn react(&self, logical: i64, user: UserId, emoji: Option<String>, date: i32) -> StoreResult<Option<Reactions>> {
        self.write(move |conn| react(conn, logical, user, emoji, date)).await
    }

    async fn search(&self, q: SearchQuery) -> StoreResult<(Vec<Message>, i32)> {
        self.read(move |conn| search(conn, &q)).await
    }

    async fn history(&self, owner: BoxId, peer: Peer, q: HistoryQuery) -> StoreResult<(Vec<Message>, i32)> {
        self.read(move |conn| history(conn, owner, peer, q)).await
    }

    async fn messages_by_ids(&self, owner: BoxId, ids: &[i32]) -> StoreResult<Vec<Message>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
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

    async fn copies(&self, logical_ids: &[i64]) -> StoreResult<Vec<(BoxId, i32)>> {
        if logical_ids.is_empty() {
            return Ok(vec![]);
        }
        let ids = logical_ids.to_vec();
        self.read(move |conn| {
            let mut out = Vec::new();
            let mut stmt = conn.prepare_cached("SELECT owner, id FROM messages WHERE logical_id = ?1").map_err(backend)?;
            for l in ids {
                let rows = stmt.query_map([l], |r| Ok((BoxId::from_key(r.get(0)?), r.get(1)?))).map_err(backend)?;
                for row in rows {
                    out.push(row.map_err(backend)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn newest_incoming(&self, owner: UserId, peer: Peer, max_id: i32) -> StoreResult<Option<Message>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {MSG_COLUMNS} FROM messages WHERE owner = ?1 AND peer = ?2 AND out = 0 AND id <= ?3 ORDER BY id DESC LIMIT 1"))
                .map_err(backend)?
                .query_row(params![owner.0, peer.marked(), max_id], msg_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn ids_before(&self, owner: BoxId, peer: Peer, max_id: i32, limit: usize) -> StoreResult<Vec<i32>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT id FROM messages WHERE owner = ?1 AND peer = ?2 AND id <= ?3 ORDER BY id DESC LIMIT ?4")
                .map_err(backend)?
                .query_map(params![owner.key(), peer.marked(), if max_id > 0 { max_id } else { i32::MAX }, limit as i64], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn dialogs(&self, owner: UserId, q: DialogsQuery) -> StoreResult<(Vec<Dialog>, i32)> {
        self.read(move |conn| {
            // `folder` NULL: every folder; the pinned ones on top are the main list's.
            let total: i32 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM ({DIALOG_ROWS}) WHERE ?2 IS NULL OR folder = ?2"))
                .map_err(backend)?
                .query_row(params![owner.0, q.folder], |r| r.get(0))
                .map_err(backend)?;
            let pin_folder = q.folder.unwrap_or(0);
            let mut rows: Vec<DialogRow> = vec![];
            if q.offset_date <= 0 && !q.exclude_pinned {
                rows = conn
                    .prepare_cached(&format!("SELECT * FROM ({DIALOG_ROWS}) WHERE folder = ?2 AND pin_order > 0 ORDER BY pin_order DESC LIMIT ?3"))
                    .map_err(backend)?
                    .query_map(params![owner.0, pin_folder, q.limit], dialog_row)
                    .map_err(backend)?
                    .collect::<Result<_, _>>()
                    .map_err(backend)?;
            }
            let (od, oid) = if q.offset_date > 0 { (q.offset_date, if q.offset_id > 0 { q.offset_id } else { i32::MAX }) } else { (i32::MAX, i32::MAX) };
            let rest = (q.limit - rows.len() as i32).max(0);
            let more: Vec<DialogRow> = conn
                .prepare_cached(&format!(
                    "SELECT * FROM ({DIALOG_ROWS}) WHERE (?4 IS NULL OR folder = ?4) AND NOT (folder = ?6 AND pin_order > 0)
                        AND (top_date < ?2 OR (top_date = ?2 AND top_message < ?3))
                     ORDER BY top_date DESC, top_message DESC LIMIT ?5"
                ))
                .map_err(backend)?
                .query_map(params![owner.0, od, oid, q.folder, rest, pin_folder], dialog_row)
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            rows.extend(more);
            let out = rows.into_iter().map(|r| dialog_from_row(conn, owner, r)).collect::<StoreResult<Vec<_>>>()?;
            Ok((out, total))
        })
        .await
    }

    async fn set_ttl(&self, owner: BoxId, peer: Peer, period: i32) -> StoreResult<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO dialog_state (owner, peer, ttl_period) VALUES (?1, ?2, ?3) ON CONFLICT (owner, peer) DO UPDATE SET ttl_period = excluded.ttl_period",
            )
            .map_err(backend)?
            .execute(params![owner.key(), peer.marked(), period])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn expired(&self, now: i32, limit: usize) -> StoreResult<Vec<(BoxId, i32)>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT owner, id FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2")
                .map_err(backend)?;
            let rows = stmt.query_map(params![now, limit as i64], |r| Ok((BoxId::from_key(r.get(0)?), r.get(1)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn has_draft(&self, owner: UserId, peer: Peer) -> StoreResult<bool> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM dialog_state WHERE owner = ?1 AND peer = ?2 AND draft IS NOT NULL)")
                .map_err(backend)?
                .query_row(params![owner.0, peer.marked()], |r| r.get(0))
                .map_err(backend)
        })
        .await
    }

    async fn set_draft(&self, owner: UserId, peer: Peer, draft: Option<Draft>) -> StoreResult<bool> {
        self.write(move |conn| {
            let json = draft.as_ref().map(serde_json::to_string).transpose().map_err(json_err)?;
            let before: Option<String> = conn
                .prepare_cached("SELECT draft FROM dialog_state WHERE owner = ?1 AND peer = ?2")
                .map_err(backend)?
                .query_row(params![owner.0, peer.marked()], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .flatten();
            let same = match (&before, &draft) {
                (None, None) => true,
                (Some(b), Some(d)) => {
                    serde_json::from_str::<Draft>(b).ok().is_some_and(|b| b.text == d.text && b.entities == d.entities && b.reply_to == d.reply_to)
                }
                _ => false,
            };
            if same {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO dialog_state (owner, peer, draft) VALUES (?1, ?2, ?3) ON CONFLICT (owner, peer) DO UPDATE SET draft = excluded.draft",
            )
            .map_err(backend)?
            .execute(params![owner.0, peer.marked(), json])
            .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn drafts(&self, owner: UserId) -> StoreResult<Vec<(Peer, Draft)>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT peer, draft FROM dialog_state WHERE owner = ?1 AND draft IS NOT NULL").map_err(backend)?;
            let rows = stmt.query_map([owner.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).map_err(backend)?;
            let mut out = vec![];
            for row in rows {
                let (peer, json) = row.map_err(backend)?;
                if let Ok(d) = serde_json::from_str(&json) {
                    out.push((Peer::from_marked(peer), d));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn set_pinned(&self, owner: UserId, peer: Peer, pinned: bool, max: usize) -> StoreResult<bool> {
        self.write(move |conn| {
            let p = peer.marked();
            let folder = folder_of(conn, owner, p)?;
            let order: i64 = conn
                .prepare_cached("SELECT pin_order FROM dialog_state WHERE owner = ?1 AND peer = ?2")
                .map_err(backend)?
                .query_row(params![owner.0, p], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .unwrap_or(0);
            if (order > 0) == pinned {
                return Ok(false);
            }
            if !pinned {
                set_pin_order(conn, owner, p, 0)?;
                return Ok(true);
            }
            let (count, top): (i64, i64) = conn
                .prepare_cached("SELECT COUNT(*), COALESCE(MAX(pin_order), 0) FROM dialog_state WHERE owner = ?1 AND folder = ?2 AND pin_order > 0")
                .map_err(backend)?
                .query_row(params![owner.0, folder], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            if count as usize >= max {
                return Err(StoreError::Conflict("pinned"));
            }
            set_pin_order(conn, owner, p, top + 1)?;
            Ok(true)
        })
        .await
    }

    async fn pinned(&self, owner: UserId, folder: i32) -> StoreResult<Vec<Peer>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT peer FROM dialog_state WHERE owner = ?1 AND folder = ?2 AND pin_order > 0 ORDER BY pin_order DESC")
                .map_err(backend)?;
            let rows = stmt.query_map(params![owner.0, folder], |r| Ok(Peer::from_marked(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_pinned_order(&self, owner: UserId, folder: i32, order: &[Peer]) -> StoreResult<()> {
        let order: Vec<i64> = order.iter().map(|p| p.marked()).collect();
        self.write(move |conn| {
            conn.prepare_cached("UPDATE dialog_state SET pin_order = 0 WHERE owner = ?1 AND folder = ?2")
                .map_err(backend)?
                .execute(params![owner.0, folder])
                .map_err(backend)?;
            let n = order.len() as i64;
            for (i, p) in order.iter().enumerate() {
                if folder_of(conn, owner, *p)? == folder {
                    set_pin_order(conn, owner, *p, n - i as i64)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn set_folder(&self, owner: UserId, peer: Peer, folder: i32) -> StoreResult<bool> {
        self.write(move |conn| {
            let p = peer.marked();
            if folder_of(conn, owner, p)? == folder {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO dialog_state (owner, peer, folder) VALUES (?1, ?2, ?3)
                 ON CONFLICT (owner, peer) DO UPDATE SET folder = excluded.folder, pin_order = 0",
            )
            .map_err(backend)?
            .execute(params![owner.0, p, folder])
            .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn channels_posted_since(&self, owner: UserId, since: i32, limit: usize) -> StoreResult<Vec<GroupId>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT m.grp FROM members m JOIN groups g ON g.id = m.grp AND g.kind != 0 AND g.deleted = 0
                         JOIN boxes b ON b.owner = -(1000000000000 + m.grp)
                     WHERE m.user = ?1 AND m.role <= 3 AND b.top_message > 0 AND b.top_date >= ?2
                     LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = st.query_map(params![owner.0, since, limit as i64], |r| Ok(GroupId(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn dialog(&self, owner: UserId, peer: Peer) -> StoreResult<Option<Dialog>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&format!("SELECT * FROM ({DIALOG_ROWS}) WHERE peer = ?2"))
                .map_err(backend)?
                .query_row(params![owner.0, peer.marked()], dialog_row)
                .optional()
                .map_err(backend)?;
            row.map(|r| dialog_from_row(conn, owner, r)).transpose()
        })
        .await
    }

    async fn drop_empty_dialog(&self, owner: UserId, peer: Peer) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute("DELETE FROM dialogs WHERE owner = ?1 AND peer = ?2 AND top_message = 0", params![owner.0, peer.marked()]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn state(&self, owner: UserId) -> StoreResult<BoxState> {
        self.read(move |conn| {
            let pts = box_pts(conn, BoxId::User(owner))?;
            let unread_count: i32 = conn
                .prepare_cached("SELECT COALESCE(SUM(unread_count), 0) FROM dialogs WHERE owner = ?1")
                .map_err(backend)?
                .query_row([owner.0], |r| r.get(0))
                .map_err(backend)?;
            Ok(BoxState { pts, unread_count })
        })
        .await
    }

    async fn pts(&self, owner: BoxId) -> StoreResult<i32> {
        self.read(move |conn| box_pts(conn, owner)).await
    }

    async fn difference(&self, owner: BoxId, pts: i32, limit: usize) -> StoreResult<Difference> {
        self.read(move |conn| {
            let floor: i32 = conn
                .prepare_cached("SELECT pts FROM log_floor WHERE owner = ?1")
                .map_err(backend)?
                .query_row([owner.key()], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .unwrap_or(0);
            if pts < floor {
                return Ok(Difference { updates: vec![], pts: box_pts(conn, owner)?, more: false, too_long: true });
            }
            // Two sources, each read in pts order up to one past the limit: the log (every
            // change but a new message) and the box's messages (a new message's update is the
            // message itself, under the pts it was stored with). Merged by pts, the first
            // `limit` are exactly the first `limit` updates.
            let rows: Vec<(i32, i32, String)> = conn
                .prepare_cached("SELECT pts, pts_count, data FROM updates WHERE owner = ?1 AND pts > ?2 ORDER BY pts LIMIT ?3")
                .map_err(backend)?
                .query_map(params![owner.key(), pts, limit as i64 + 1], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            let mut found: Vec<(i32, Option<PtsUpdate>)> = Vec::with_capacity(rows.len());
            for (p, count, data) in rows {
                found.push((p, update_from_log(conn, owner, p, count, &data)?));
            }
            if let Some(first) = first_id_after_pts(conn, owner, pts)? {
                let mut st = conn
                    .prepare_cached(&format!("SELECT {MSG_COLUMNS}, pts FROM messages WHERE owner = ?1 AND id >= ?2 ORDER BY id LIMIT ?3"))
                    .map_err(backend)?;
                let news = st
                    .query_map(params![owner.key(), first, limit as i64 + 1], |r| {
                        let p: i32 = r.get(MSG_COLUMN_COUNT)?;
                        Ok((p, Some(PtsUpdate { pts: p, pts_count: 1, kind: UpdateKind::NewMessage(msg_from_row(r)?) })))
                    })
                    .map_err(backend)?;
                for n in news {
                    found.push(n.map_err(backend)?);
                }
                found.sort_by_key(|(p, _)| *p);
            }
            let more = found.len() > limit;
            found.truncate(limit);
            let last = found.last().map_or(pts, |(p, _)| *p);
            let updates = found.into_iter().filter_map(|(_, u)| u).collect();
            let current = box_pts(conn, owner)?;
            Ok(Difference { updates, pts: if more { last } else { current }, more, too_long: false })
        })
        .await
    }

    async fn trim_log(&self, keep: i32, max_boxes: usize) -> StoreResult<usize> {
        // The boxes table is small (one row per account and channel); the log is not read.
        let due: Vec<(i64, i32)> = self
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT b.owner, b.pts - ?1 FROM boxes b LEFT JOIN log_floor f ON f.owner = b.owner
                         WHERE b.pts - ?1 > COALESCE(f.pts, 0) + ?1 / 10 LIMIT ?2",
                    )
                    .map_err(backend)?;
                let rows = st.query_map(params![keep, max_boxes as i64], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await?;
        let mut gone = 0;
        for (owner, floor) in due {
            gone += self
                .write(move |conn| {
                    let n = conn.execute("DELETE FROM updates WHERE owner = ?1 AND pts <= ?2", params![owner, floor]).map_err(backend)?;
                    conn.execute(
                        "INSERT INTO log_floor (owner, pts) VALUES (?1, ?2) ON CONFLICT (owner) DO UPDATE SET pts = MAX(pts, excluded.pts)",
                        params![owner, floor],
                    )
                    .map_err(backend)?;
                    Ok(n)
                })
                .await?;
        }
        Ok(gone)
    }

    async fn senders_between(&self, owner: BoxId, after: i32, up_to: i32, limit: usize) -> StoreResult<Vec<UserId>> {
        self.read(move |conn| {
            let mut st = conn.prepare_cached("SELECT DISTINCT from_id FROM messages WHERE owner = ?1 AND id > ?2 AND id <= ?3 LIMIT ?4").map_err(backend)?;
            let rows = st.query_map(params![owner.key(), after, up_to, limit as i64], |r| Ok(UserId(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_unread_mark(&self, owner: UserId, peer: Peer, mark: bool) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = match peer {
                Peer::Channel(g) => conn
                    .prepare_cached("UPDATE members SET unread_mark = ?3 WHERE grp = ?1 AND user = ?2 AND role <= 3 AND unread_mark != ?3")
                    .map_err(backend)?
                    .execute(params![g.0, owner.0, mark]),
                _ => conn
                    .prepare_cached("UPDATE dialogs SET unread_mark = ?3 WHERE owner = ?1 AND peer = ?2 AND unread_mark != ?3")
                    .map_err(backend)?
                    .execute(params![owner.0, peer.marked(), mark]),
            }
            .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn unread_marks(&self, owner: UserId) -> StoreResult<Vec<Peer>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT peer FROM dialogs WHERE owner = ?1 AND unread_mark = 1
                     UNION ALL SELECT -(1000000000000 + grp) FROM members WHERE user = ?1 AND role <= 3 AND unread_mark = 1",
                )
                .map_err(backend)?;
            let rows = st.query_map([owner.0], |r| Ok(Peer::from_marked(r.get(0)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_blocked(&self, user: UserId, target: UserId, blocked: bool, date: i32) -> StoreResult<bool> {
        self.write(move |conn| {
            let n = if blocked {
                conn.prepare_cached("INSERT OR IGNORE INTO blocked (user, blocked, date) VALUES (?1, ?2, ?3)")
                    .map_err(backend)?
                    .execute(params![user.0, target.0, date])
            } else {
                conn.prepare_cached("DELETE FROM blocked WHERE user = ?1 AND blocked = ?2").map_err(backend)?.execute(params![user.0, target.0])
            }
            .map_err(backend)?;
            if n == 1 {
                crate::seen::pair_changed(user.0, target.0);
            }
            Ok(n == 1)
        })
        .await
    }

    async fn blocking(&self, a: UserId, b: UserId) -> StoreResult<(bool, bool)> {
        self.read(move |conn| {
            let mut st = conn.prepare_cached("SELECT user FROM blocked WHERE (user = ?1 AND blocked = ?2) OR (user = ?2 AND blocked = ?1)").map_err(backend)?;
            let who = st.query_map(params![a.0, b.0], |r| r.get::<_, i64>(0)).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            Ok((who.contains(&a.0), who.contains(&b.0)))
        })
        .await
    }

    async fn blocked(&self, user: UserId, offset: i32, limit: i32) -> StoreResult<(Vec<(UserId, i32)>, i32)> {
        self.read(move |conn| {
            let count: i32 =
                conn.prepare_cached("SELECT COUNT(*) FROM blocked WHERE user = ?1").map_err(backend)?.query_row([user.0], |r| r.get(0)).map_err(backend)?;
            let mut st = conn
                .prepare_cached("SELECT blocked, date FROM blocked WHERE user = ?1 ORDER BY date DESC, blocked DESC LIMIT ?2 OFFSET ?3")
                .map_err(backend)?;
            let rows = st.query_map(params![user.0, limit, offset], |r| Ok((UserId(r.get(0)?), r.get(1)?))).map_err(backend)?;
            Ok((rows.collect::<Result<Vec<_>, _>>().map_err(backend)?, count))
        })
        .await
    }

    async fn views(&self, channel: GroupId, ids: &[i32], viewer: Option<UserId>) -> StoreResult<Vec<i32>> {
        let ids = ids.to_vec();
        let owner = BoxId::Channel(channel).key();
        let count = move |conn: &Connection, id: i32| -> StoreResult<i32> {
            Ok(conn
                .prepare_cached("SELECT views FROM view_counts WHERE owner = ?1 AND id = ?2")
                .map_err(backend)?
                .query_row(params![owner, id], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .unwrap_or(0))
        };
        match viewer {
            None => self.read(move |conn| ids.iter().map(|id| count(conn, *id)).collect()).await,
            Some(v) => {
                self.write(move |conn| {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in ids {
                        let exists = conn
                            .prepare_cached("SELECT 1 FROM messages WHERE owner = ?1 AND id = ?2")
                            .map_err(backend)?
                            .query_row(params![owner, id], |_| Ok(()))
                            .optional()
                            .map_err(backend)?
                            .is_some();
                        if exists {
                            let new = conn
                                .prepare_cached("INSERT OR IGNORE INTO post_views (owner, id, user) VALUES (?1, ?2, ?3)")
                                .map_err(backend)?
                                .execute(params![owner, id, v.0])
                                .map_err(backend)?;
                            if new == 1 {
                                conn.prepare_cached(
                                    "INSERT INTO view_counts (owner, id, views) VALUES (?1, ?2, 1) ON CONFLICT(owner, id) DO UPDATE SET views = views + 1",
                                )
                                .map_err(backend)?
                                .execute(params![owner, id])
                                .map_err(backend)?;
                            }
                        }
                        out.push(count(conn, id)?);
                    }
                    Ok(out)
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::INITIAL_PTS;
    use crate::test_support::temp_store;
    use herald_domain::model::*;
    use herald_domain::store::*;

    fn copy(from: i64, to: i64, text: &str, date: i32) -> Message {
        Message::draft(UserId(from), Peer::User(UserId(to)), date, text.into(), vec![], date as i64)
    }

    fn append(from: i64, to: i64, text: &str, date: i32, random_id: Option<i64>) -> (BoxId, BoxOp) {
        (BoxId::User(UserId(from)), BoxOp::Append(NewCopy { message: copy(from, to, text, date), random_id, unread: false }))
    }

    #[tokio::test]
    async fn ops_number_boxes_gaplessly_and_random_ids_dedup_per_sender() {
        let s = temp_store();
        let me = BoxId::User(UserId(1));
        let a = s.apply(vec![append(1, 2, "hi", 1000, Some(10))], Some((me, UserId(1), 10))).await.unwrap();
        assert_eq!(a.of(me).unwrap().pts, INITIAL_PTS + 1);
        let again = s.apply(vec![append(1, 2, "hi", 1000, Some(10))], Some((me, UserId(1), 10))).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(again.of(me), a.of(me));
        // a channel box: the same random_id from two senders is two messages
        let ch = BoxId::Channel(GroupId(5));
        for from in [1, 2] {
            let mut m = copy(from, 0, "post", 1001);
            m.peer = Peer::Channel(GroupId(5));
            let r = s.apply(vec![(ch, BoxOp::Append(NewCopy { message: m, random_id: Some(77), unread: false }))], Some((ch, UserId(from), 77))).await.unwrap();
            assert!(!r.duplicate);
        }
        assert_eq!(s.pts(ch).await.unwrap(), INITIAL_PTS + 2);
        let d = s.difference(ch, INITIAL_PTS, 1).await.unwrap();
        assert!(d.more);
        assert_eq!(d.pts, INITIAL_PTS + 1);
        // a delete of ids that do not exist changes nothing
        let none = s.apply(vec![(ch, BoxOp::Delete { ids: vec![99] })], None).await.unwrap();
        assert!(none.updates.is_empty());
        assert_eq!(s.pts(BoxId::User(UserId(42))).await.unwrap(), INITIAL_PTS, "a new box never reports pts 0");
    }

    /// New messages are not in the log: `difference` merges the box's messages (by the pts
    /// they were stored with) with the log. From every starting pts and with any page size,
    /// the pages must give exactly the updates after it, in pts order, without the new
    /// messages deleted since.
    #[tokio::test]
    async fn difference_merges_messages_and_log_from_any_pts() {
        let s = temp_store();
        let me = BoxId::User(UserId(1));
        let mut expected: Vec<(i32, &'static str, i32)> = Vec::new(); // (pts, kind, message id)
        let mut deleted = Vec::new();
        for i in 1..=40 {
            let a = s.apply(vec![append(1, 2, &format!("m{i}"), 1000 + i, None)], None).await.unwrap();
            let u = a.of(me).unwrap();
            let UpdateKind::NewMessage(m) = &u.kind else { panic!() };
            expected.push((u.pts, "new", m.id));
            let op = match i % 7 {
                2 => Some(BoxOp::Edit { id: m.id, text: format!("edited {i}"), entities: vec![], media: None, date: 2000 + i }),
                4 => Some(BoxOp::Edit { id: m.id - 2, text: format!("edited {i}"), entities: vec![], media: None, date: 2000 + i }),
                5 => Some(BoxOp::Delete { ids: vec![m.id - 5, m.id - 6] }),
                6 => Some(BoxOp::ReadInbox { peer: Peer::User(UserId(2)), max_id: m.id }),
                _ => None,
            };
            if let Some(op) = op {
                if let BoxOp::Delete { ids } = &op {
                    deleted.extend(ids.iter().copied().filter(|id| *id > 0));
                }
                if let Some(u) = s.apply(vec![(me, op)], None).await.unwrap().of(me) {
                    let (kind, id) = match &u.kind {
                        UpdateKind::EditMessage(m) => ("edit", m.id),
                        UpdateKind::DeleteMessages(_) => ("delete", 0),
                        _ => ("other", 0),
                    };
                    expected.push((u.pts, kind, id));
                }
            }
        }
        let last = s.pts(me).await.unwrap();
        assert_eq!(expected.last().unwrap().0, last);
        for from in INITIAL_PTS..=last {
            // A new message or an edit whose message is gone since is not sent (as before).
            let want: Vec<i32> = expected.iter().filter(|(p, k, id)| *p > from && !(*k != "delete" && deleted.contains(id))).map(|e| e.0).collect();
            for limit in [1, 3, 100] {
                let (mut at, mut got) = (from, Vec::new());
                loop {
                    let d = s.difference(me, at, limit).await.unwrap();
                    assert!(!d.too_long);
                    assert!(d.updates.len() <= limit);
                    got.extend(d.updates.iter().map(|u| u.pts));
                    assert!(d.pts > at || !d.more, "a page that is not the last moves on");
                    at = d.pts;
                    if !d.more {
                        break;
                    }
                }
                assert_eq!(at, last, "from {from}, limit {limit}: the last page ends at the box's pts");
                assert_eq!(got, want, "from {from}, limit {limit}");
            }
        }
        // An edited message comes as it is now.
        let d = s.difference(me, INITIAL_PTS, 100).await.unwrap();
        let edits: Vec<(i32, String)> = d
            .updates
            .iter()
            .filter_map(|u| match &u.kind {
                UpdateKind::EditMessage(m) => Some((m.id, m.text.clone())),
                _ => None,
            })
            .collect();
        // Message 37 was edited twice (at 37 and 39): both entries show its text now.
        assert_eq!(edits.iter().filter(|(id, _)| *id == 37).map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["edited 39", "edited 39"]);
    }

    /// The index is written once per batch, after the jobs: it must hold exactly what the
    /// kept jobs left (a rolled-back job's message absent, an edit in a later job seen).
    #[test]
    fn a_batch_indexes_what_its_kept_jobs_left() {
        let dir = std::env::temp_dir().join(format!("herald-index-batch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = crate::open(&dir.join("herald.db"), false).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let job = |ops: Vec<(BoxId, BoxOp)>, keep: bool| -> crate::WriteJob {
            Box::new(move |c| {
                let ok = super::apply(c, ops, None).is_ok() && keep;
                (ok, Box::new(|_| {}) as crate::Completion)
            })
        };
        let edit = (BoxId::User(UserId(1)), BoxOp::Edit { id: 1, text: "edited words".into(), entities: vec![], media: None, date: 1003 });
        crate::run_batch(
            &conn,
            &crate::seen::SeenCache::default(),
            vec![
                job(vec![append(1, 2, "kept words", 1000, None)], true),
                job(vec![append(3, 4, "dropped words", 1001, None)], false),
                job(vec![append(1, 2, "second kept", 1002, None)], true),
                job(vec![edit], true),
            ],
        );
        let hits = |word: &str| -> Vec<i64> {
            let mut st = conn.prepare("SELECT rowid FROM search WHERE search MATCH ?1 ORDER BY rowid").unwrap();
            st.query_map([word], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(hits("dropped"), Vec::<i64>::new(), "a rolled-back job leaves nothing in the index");
        assert_eq!(hits("kept"), vec![1002]);
        assert_eq!(hits("edited"), vec![1000]);
        assert_eq!(hits("words"), vec![1000]);
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 2);
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn history_follows_telegram_offsets() {
        let s = temp_store();
        for i in 1..=10 {
            s.apply(vec![append(1, 2, &format!("m{i}"), 1000 + i, None)], None).await.unwrap();
        }
        let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        let (me, peer) = (BoxId::User(UserId(1)), Peer::User(UserId(2)));
        let q = |offset_id, add_offset, limit, max_id, min_id| HistoryQuery { offset_id, add_offset, limit, max_id, min_id, offset_date: 0 };
        let (m, count) = s.history(me, peer, q(0, 0, 3, 0, 0)).await.unwrap();
        assert_eq!((ids(m), count), (vec![10, 9, 8], 10));
        assert_eq!(ids(s.history(me, peer, q(8, 0, 3, 0, 0)).await.unwrap().0), vec![7, 6, 5]);
        assert_eq!(ids(s.history(me, peer, q(8, 2, 3, 0, 0)).await.unwrap().0), vec![5, 4, 3]);
        assert_eq!(ids(s.history(me, peer, q(5, -2, 4, 0, 0)).await.unwrap().0), vec![6, 5, 4, 3]);
        assert_eq!(ids(s.history(me, peer, q(0, 0, 100, 7, 3)).await.unwrap().0), vec![6, 5, 4]);
        // paging as Telethon does, with offset_date = the last message's date: ids decide
        let mut same_second = q(8, 0, 3, 0, 0);
        same_second.offset_date = 1001;
        assert_eq!(ids(s.history(me, peer, same_second).await.unwrap().0), vec![7, 6, 5]);
        // without an offset_id, offset_date alone positions the start (dates are 1000 + i)
        let mut by_date = q(0, 0, 2, 0, 0);
        by_date.offset_date = 1005;
        assert_eq!(ids(s.history(me, peer, by_date).await.unwrap().0), vec![4, 3]);
    }
}
