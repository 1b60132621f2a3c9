//! messages.*: private chats.

use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::messages::SendRequest;
use herald_domain::model::{HistoryQuery, Peer, PtsUpdate, UpdateKind, UserId};
use std::sync::Arc;

/// (pts, pts_count) for an affectedMessages/affectedHistory answer: the owner's update, or
/// the unchanged pts with count 0 when nothing changed (client-compat.md §4.4).
async fn pts_change(s: &Services, me: UserId, up: Option<PtsUpdate>) -> Result<(i32, i32), RpcError> {
    Ok(match up {
        Some(u) => (u.pts, u.pts_count),
        None => (s.messages.state(me).await?.pts, 0),
    })
}

fn affected((pts, pts_count): (i32, i32)) -> enums::messages::AffectedMessages {
    enums::messages::AffectedMessages::Messages(types::messages::AffectedMessages { pts, pts_count })
}

pub async fn send_message(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendMessage) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let to = convert::input_peer(&s, me, &r.peer).await?;
    let reply_to = match r.reply_to {
        Some(enums::InputReplyTo::Message(m)) => Some(m.reply_to_msg_id),
        _ => None,
    };
    let entities = convert::entities_in(&s, me, r.entities).await?;
    let sent =
        s.messages.send(SendRequest { from: me, to: to.id, origin_key: ctx.auth_key_id, random_id: r.random_id, text: r.message, entities, reply_to }).await?;
    let UpdateKind::NewMessage(m) = &sent.update.kind else { return Err(RpcError::internal()) };
    // Full Updates (as Telegram answers): the client gets the message exactly as stored,
    // reply header and entities included, matched to its request by random_id.
    let (new_message, ids) = convert::update(&sent.update);
    Ok(enums::Updates::Updates(types::Updates {
        updates: vec![enums::Update::MessageId(types::UpdateMessageId { id: m.id, random_id: r.random_id }), new_message],
        users: convert::users(&s, me, ids).await?,
        chats: vec![],
        date: m.date,
        seq: 0,
    }))
}

pub async fn get_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetHistory) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let q = HistoryQuery { offset_id: r.offset_id, offset_date: r.offset_date, add_offset: r.add_offset, limit: r.limit, max_id: r.max_id, min_id: r.min_id };
    let (msgs, count) = s.messages.history(me, Peer::User(peer.id), q).await?;
    let users = convert::users(&s, me, convert::message_users(&msgs).into_iter().chain([peer.id])).await?;
    Ok(enums::messages::Messages::Slice(types::messages::MessagesSlice {
        inexact: false,
        count,
        next_rate: None,
        offset_id_offset: None,
        search_flood: None,
        messages: msgs.iter().map(convert::message).collect(),
        topics: vec![],
        chats: vec![],
        users,
    }))
}

/// Results in the requested order, `messageEmpty` for ids that do not exist.
/// `inputMessageReplyTo(id)` asks for the message that `id` replies to.
pub async fn get_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetMessages) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let asked: Vec<i32> =
        r.id.iter()
            .map(|m| match m {
                enums::InputMessage::Id(i) => i.id,
                enums::InputMessage::ReplyTo(t) => t.id,
                _ => 0,
            })
            .collect();
    let replies: Vec<i32> = r.id.iter().zip(&asked).filter(|(m, _)| matches!(m, enums::InputMessage::ReplyTo(_))).map(|(_, id)| *id).collect();
    let repliers = s.messages.messages_by_ids(me, &replies).await?;
    let ids: Vec<i32> =
        r.id.iter()
            .zip(&asked)
            .map(|(m, id)| match m {
                enums::InputMessage::ReplyTo(_) => repliers.iter().find(|x| x.id == *id).and_then(|x| x.reply_to).unwrap_or(0),
                _ => *id,
            })
            .collect();
    let found = s.messages.messages_by_ids(me, &ids).await?;
    let messages = ids
        .iter()
        .map(|id| match found.iter().find(|m| m.id == *id) {
            Some(m) => convert::message(m),
            None => enums::Message::Empty(types::MessageEmpty { id: *id, peer_id: None }),
        })
        .collect();
    let users = convert::users(&s, me, convert::message_users(&found)).await?;
    Ok(enums::messages::Messages::Messages(types::messages::Messages { messages, topics: vec![], chats: vec![], users }))
}

pub async fn get_dialogs(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetDialogs) -> Result<enums::messages::Dialogs, RpcError> {
    let me = ctx.user()?;
    let (dialogs, msgs, count) = s.messages.dialogs(me, r.offset_date, r.offset_id, r.limit).await?;
    let users = convert::users(&s, me, dialogs.iter().map(|d| d.peer.user_id()).chain(convert::message_users(&msgs))).await?;
    let dialogs_tl: Vec<_> = dialogs.iter().map(convert::dialog).collect();
    let messages: Vec<_> = msgs.iter().map(convert::message).collect();
    Ok(if r.offset_date == 0 && dialogs.len() as i32 >= count {
        enums::messages::Dialogs::Dialogs(types::messages::Dialogs { dialogs: dialogs_tl, messages, chats: vec![], users })
    } else {
        enums::messages::Dialogs::Slice(types::messages::DialogsSlice { count, dialogs: dialogs_tl, messages, chats: vec![], users })
    })
}

pub async fn read_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ReadHistory) -> Result<enums::messages::AffectedMessages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let up = s.messages.read_history(me, ctx.auth_key_id, Peer::User(peer.id), r.max_id).await?;
    Ok(affected(pts_change(&s, me, up).await?))
}

pub async fn edit_message(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditMessage) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    convert::input_peer(&s, me, &r.peer).await?;
    let Some(text) = r.message else { return Err(RpcError::bad_request("MESSAGE_EMPTY")) };
    let entities = convert::entities_in(&s, me, r.entities).await?;
    let up = s.messages.edit(me, ctx.auth_key_id, r.id, text, entities).await?;
    let (update, ids) = convert::update(&up);
    Ok(enums::Updates::Updates(types::Updates {
        updates: vec![update],
        users: convert::users(&s, me, ids).await?,
        chats: vec![],
        date: s.clock.now_secs() as i32,
        seq: 0,
    }))
}

pub async fn delete_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteMessages) -> Result<enums::messages::AffectedMessages, RpcError> {
    let me = ctx.user()?;
    let up = s.messages.delete(me, ctx.auth_key_id, &r.id, r.revoke).await?;
    Ok(affected(pts_change(&s, me, up).await?))
}

pub async fn delete_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteHistory) -> Result<enums::messages::AffectedHistory, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let up = s.messages.delete_history(me, ctx.auth_key_id, Peer::User(peer.id), r.max_id, r.revoke, r.just_clear).await?;
    let (pts, pts_count) = pts_change(&s, me, up).await?;
    Ok(enums::messages::AffectedHistory::History(types::messages::AffectedHistory { pts, pts_count, offset: 0 }))
}

pub async fn set_typing(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SetTyping) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    s.messages.set_typing(me, peer.id, convert::action_in(&r.action));
    Ok(true)
}
