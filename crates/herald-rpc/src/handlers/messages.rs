//! messages.*: conversations of every kind (private chats, basic groups, channels).

use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{DomainError, GroupError, MessageError};
use herald_domain::forward::ForwardRequest;
use herald_domain::messages::SendRequest;
use herald_domain::model::{BoxId, DialogsQuery, GroupId, GroupKind, HistoryQuery, Media, Message, Peer, PtsUpdate, Reactions, UpdateKind, UserId};
use herald_domain::search::{Search, SearchFilter};
use std::sync::Arc;

/// (pts, pts_count) for an affectedMessages/affectedHistory answer: the owner's update, or
/// the unchanged pts with count 0 when nothing changed (client-compat.md §4.4).
pub(crate) async fn pts_change(s: &Services, owner: BoxId, up: Option<PtsUpdate>) -> Result<(i32, i32), RpcError> {
    Ok(match up {
        Some(u) => (u.pts, u.pts_count),
        None => (s.messages.pts(owner).await?, 0),
    })
}

pub(crate) fn affected((pts, pts_count): (i32, i32)) -> enums::messages::AffectedMessages {
    enums::messages::AffectedMessages::Messages(types::messages::AffectedMessages { pts, pts_count })
}

/// An `Updates` with the users and chats its parts mention, as `me` sees them.
pub(crate) async fn pack(s: &Services, me: UserId, updates: Vec<enums::Update>, users: Vec<UserId>, groups: Vec<GroupId>) -> Result<enums::Updates, RpcError> {
    Ok(enums::Updates::Updates(types::Updates {
        updates,
        users: convert::users(s, me, users.into_iter().chain([me])).await?,
        chats: convert::chats(s, me, groups).await?,
        date: s.clock.now_secs() as i32,
        seq: 0,
    }))
}

/// The `Updates` answering a change that wrote box updates (and maybe `extra` ones first).
pub(crate) async fn updates_of(
    s: &Services,
    me: UserId,
    items: &[(BoxId, PtsUpdate)],
    extra: Vec<enums::Update>,
    groups: Vec<GroupId>,
) -> Result<enums::Updates, RpcError> {
    let mut tl = extra;
    let (mut users, mut gs) = (vec![], groups);
    for (owner, u) in items {
        let (up, us, g) = convert::update(&s.files, me, *owner, u);
        tl.push(up);
        users.extend(us);
        gs.extend(g);
    }
    pack(s, me, tl, users, gs).await
}

/// Who a message list mentions, rendered for `me`.
pub(crate) async fn messages_answer(s: &Services, me: UserId, msgs: &[Message]) -> Result<(Vec<enums::Message>, Vec<enums::User>, Vec<enums::Chat>), RpcError> {
    let users = convert::users(s, me, convert::message_users(msgs)).await?;
    let chats = convert::chats(s, me, convert::message_groups(msgs)).await?;
    Ok((msgs.iter().map(|m| convert::message(&s.files, me, m)).collect(), users, chats))
}

/// A send with a future `schedule_date`: kept aside, answered with its id and
/// `updateNewScheduledMessage` (as Telegram does).
pub(crate) async fn schedule(s: &Services, me: UserId, req: SendRequest, date: i32, media: Option<Media>) -> Result<enums::Updates, RpcError> {
    let (peer, random_id) = (req.peer, req.random_id);
    let kept = s.scheduled.schedule(req, date, media).await?;
    let id = enums::Update::MessageId(types::UpdateMessageId { id: kept.id, random_id });
    let message = convert::message(&s.files, me, &kept.as_message());
    pack(
        s,
        me,
        vec![id, enums::Update::NewScheduledMessage(types::UpdateNewScheduledMessage { message })],
        peer.user().into_iter().collect(),
        peer.group().into_iter().collect(),
    )
    .await
}

pub async fn send_message(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendMessage) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let reply_to = convert::reply_to_id(r.reply_to);
    let entities = convert::entities_in(&s, me, r.entities).await?;
    let req = SendRequest { from: me, peer, origin_key: ctx.auth_key_id, random_id: r.random_id, text: r.message, entities, reply_to };
    if let Some(date) = r.schedule_date.filter(|d| *d > s.clock.now_secs() as i32) {
        return schedule(&s, me, req, date, None).await;
    }
    let sent = s.messages.send(req).await?;
    if r.clear_draft {
        s.messages.clear_draft_after_send(me, ctx.auth_key_id, peer).await?;
    }
    let UpdateKind::NewMessage(m) = &sent.update.kind else { return Err(RpcError::internal()) };
    // Full Updates (as Telegram answers): the client gets the message exactly as stored,
    // reply header and entities included, matched to its request by random_id.
    let id = enums::Update::MessageId(types::UpdateMessageId { id: m.id, random_id: r.random_id });
    updates_of(&s, me, &[(sent.owner, sent.update.clone())], vec![id], vec![]).await
}

pub async fn get_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetHistory) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let q = HistoryQuery { offset_id: r.offset_id, offset_date: r.offset_date, add_offset: r.add_offset, limit: r.limit, max_id: r.max_id, min_id: r.min_id };
    let (msgs, count) = s.messages.history(me, peer, q).await?;
    let channel = match peer {
        Peer::Channel(g) => Some(g),
        _ => None,
    };
    let mut answer = found(&s, me, channel, msgs, count, None).await?;
    // The other side of a private chat comes along even when no message of theirs does.
    if let (Peer::User(u), enums::messages::Messages::Slice(slice)) = (peer, &mut answer) {
        slice.users.extend(convert::users(&s, me, [u]).await?);
    }
    Ok(answer)
}

/// Results in the requested order, `messageEmpty` for ids that do not exist.
/// `inputMessageReplyTo(id)` asks for the message that `id` replies to.
pub(crate) async fn messages_in_order(
    s: &Services,
    me: UserId,
    owner: BoxId,
    asked: &[enums::InputMessage],
) -> Result<(Vec<enums::Message>, Vec<Message>), RpcError> {
    let plain: Vec<i32> = asked
        .iter()
        .map(|m| match m {
            enums::InputMessage::Id(i) => i.id,
            enums::InputMessage::ReplyTo(t) => t.id,
            _ => 0,
        })
        .collect();
    let replies: Vec<i32> = asked.iter().zip(&plain).filter(|(m, _)| matches!(m, enums::InputMessage::ReplyTo(_))).map(|(_, id)| *id).collect();
    let repliers = s.messages.messages_by_ids(owner, &replies).await?;
    let ids: Vec<i32> = asked
        .iter()
        .zip(&plain)
        .map(|(m, id)| match m {
            enums::InputMessage::ReplyTo(_) => repliers.iter().find(|x| x.id == *id).and_then(|x| x.reply_to).unwrap_or(0),
            _ => *id,
        })
        .collect();
    let found = s.messages.messages_by_ids(owner, &ids).await?;
    let out = ids
        .iter()
        .map(|id| match found.iter().find(|m| m.id == *id) {
            Some(m) => convert::message(&s.files, me, m),
            None => enums::Message::Empty(types::MessageEmpty { id: *id, peer_id: None }),
        })
        .collect();
    Ok((out, found))
}

pub async fn get_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetMessages) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let (messages, found) = messages_in_order(&s, me, BoxId::User(me), &r.id).await?;
    let (_, users, chats) = messages_answer(&s, me, &found).await?;
    Ok(enums::messages::Messages::Messages(types::messages::Messages { messages, topics: vec![], chats, users }))
}

pub async fn get_dialogs(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetDialogs) -> Result<enums::messages::Dialogs, RpcError> {
    let me = ctx.user()?;
    let q = DialogsQuery { folder: r.folder_id, offset_date: r.offset_date, offset_id: r.offset_id, limit: r.limit, exclude_pinned: r.exclude_pinned };
    let (dialogs, msgs, count) = s.messages.dialogs(me, q).await?;
    let DialogsAnswer { dialogs: dialogs_tl, messages, chats, users } = dialogs_answer(&s, me, &dialogs, &msgs).await?;
    Ok(if r.offset_date == 0 && dialogs.len() as i32 >= count {
        enums::messages::Dialogs::Dialogs(types::messages::Dialogs { dialogs: dialogs_tl, messages, chats, users })
    } else {
        enums::messages::Dialogs::Slice(types::messages::DialogsSlice { count, dialogs: dialogs_tl, messages, chats, users })
    })
}

/// Dialogs with their top messages, and the users and chats they name, as TL: what
/// `getDialogs` and `getPeerDialogs` answer.
pub(crate) struct DialogsAnswer {
    pub dialogs: Vec<enums::Dialog>,
    pub messages: Vec<enums::Message>,
    pub chats: Vec<enums::Chat>,
    pub users: Vec<enums::User>,
}

pub(crate) async fn dialogs_answer(s: &Services, me: UserId, dialogs: &[herald_domain::model::Dialog], msgs: &[Message]) -> Result<DialogsAnswer, RpcError> {
    let users = convert::users(s, me, dialogs.iter().filter_map(|d| d.peer.user()).chain(convert::message_users(msgs))).await?;
    let chats = convert::chats(s, me, dialogs.iter().filter_map(|d| d.peer.group()).chain(convert::message_groups(msgs))).await?;
    Ok(DialogsAnswer {
        dialogs: dialogs.iter().map(convert::dialog).collect(),
        messages: msgs.iter().map(|m| convert::message(&s.files, me, m)).collect(),
        chats,
        users,
    })
}

pub async fn read_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ReadHistory) -> Result<enums::messages::AffectedMessages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    if let Peer::Channel(g) = peer {
        s.messages.read_channel(me, g, r.max_id).await?;
        return Ok(affected(pts_change(&s, BoxId::User(me), None).await?));
    }
    let up = s.messages.read_history(me, ctx.auth_key_id, peer, r.max_id).await?;
    Ok(affected(pts_change(&s, BoxId::User(me), up).await?))
}

pub async fn edit_message(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditMessage) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let media = match &r.media {
        Some(m) => Some(super::files::input_media(&s, me, m).await?),
        None => None,
    };
    if r.message.is_none() && media.is_none() {
        return Err(RpcError::bad_request("MESSAGE_EMPTY"));
    }
    let text = match r.message {
        Some(text) => Some((text, convert::entities_in(&s, me, r.entities).await?)),
        None => None,
    };
    let (owner, up) = s.messages.edit_with_media(me, ctx.auth_key_id, peer, r.id, text, media).await?;
    updates_of(&s, me, &[(owner, up)], vec![], vec![]).await
}

pub async fn delete_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteMessages) -> Result<enums::messages::AffectedMessages, RpcError> {
    let me = ctx.user()?;
    let up = s.messages.delete(me, ctx.auth_key_id, &r.id, r.revoke).await?;
    Ok(affected(pts_change(&s, BoxId::User(me), up).await?))
}

pub async fn delete_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteHistory) -> Result<enums::messages::AffectedHistory, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    if let Peer::Channel(_) = peer {
        return Err(DomainError::from(GroupError::ChannelInvalid).into());
    }
    let up = s.messages.delete_history(me, ctx.auth_key_id, peer, r.max_id, r.revoke, r.just_clear).await?;
    let (pts, pts_count) = pts_change(&s, BoxId::User(me), up).await?;
    Ok(enums::messages::AffectedHistory::History(types::messages::AffectedHistory { pts, pts_count, offset: 0 }))
}

pub async fn set_typing(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SetTyping) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    s.messages.set_typing(me, peer, convert::action_in(&r.action)).await?;
    Ok(true)
}

pub async fn get_messages_views(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetMessagesViews) -> Result<enums::messages::MessageViews, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let views: Vec<Option<i32>> = match peer {
        Peer::Channel(g) => s.messages.views(me, g, &r.id, r.increment).await?.into_iter().map(Some).collect(),
        _ => r.id.iter().map(|_| None).collect(),
    };
    let chats = convert::chats(&s, me, peer.group()).await?;
    Ok(enums::messages::MessageViews::Views(types::messages::MessageViews {
        views: views.into_iter().map(|v| enums::MessageViews::Views(types::MessageViews { views: v, forwards: None, replies: None })).collect(),
        chats,
        users: vec![],
    }))
}

fn search_filter(f: &enums::MessagesFilter) -> SearchFilter {
    match f {
        enums::MessagesFilter::InputMessagesFilterEmpty => SearchFilter::Everything,
        enums::MessagesFilter::InputMessagesFilterMyMentions => SearchFilter::MyMentions,
        _ => SearchFilter::Nothing,
    }
}

/// A found-messages answer: a channel's `channelMessages` with its pts, else a slice with the
/// count; `next_rate` (global search) is the last result's date when a page was full.
async fn found(
    s: &Services,
    me: UserId,
    channel: Option<GroupId>,
    msgs: Vec<Message>,
    count: i32,
    next_rate: Option<i32>,
) -> Result<enums::messages::Messages, RpcError> {
    let (messages, users, mut chats) = messages_answer(s, me, &msgs).await?;
    if let Some(g) = channel {
        if chats.is_empty() {
            chats = convert::chats(s, me, [g]).await?;
        }
        let pts = s.messages.pts(BoxId::Channel(g)).await?;
        return Ok(enums::messages::Messages::ChannelMessages(types::messages::ChannelMessages {
            inexact: false,
            pts,
            count,
            offset_id_offset: None,
            messages,
            topics: vec![],
            chats,
            users,
        }));
    }
    Ok(enums::messages::Messages::Slice(types::messages::MessagesSlice {
        inexact: false,
        count,
        next_rate,
        offset_id_offset: None,
        search_flood: None,
        messages,
        topics: vec![],
        chats,
        users,
    }))
}

/// `messages.search`: one conversation, or every private chat and basic group for
/// `inputPeerEmpty` (client-compat §4.11).
pub async fn search(s: Arc<Services>, ctx: CallCtx, r: functions::messages::Search) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let peer = match &r.peer {
        enums::InputPeer::Empty => None,
        p => Some(convert::input_peer(&s, me, p).await?),
    };
    let from = match &r.from_id {
        Some(p) => match convert::input_peer(&s, me, p).await? {
            Peer::User(u) => Some(u),
            _ => None,
        },
        None => None,
    };
    let q = Search {
        q: r.q,
        from,
        filter: search_filter(&r.filter),
        min_date: r.min_date,
        max_date: r.max_date,
        offset_id: r.offset_id,
        add_offset: r.add_offset,
        limit: r.limit,
        max_id: r.max_id,
        min_id: r.min_id,
    };
    let (msgs, count) = s.messages.search(me, peer, q).await?;
    let channel = match peer {
        Some(Peer::Channel(g)) => Some(g),
        _ => None,
    };
    found(&s, me, channel, msgs, count, None).await
}

/// `messages.searchGlobal`: text across the account's chats and channels, paged by
/// (`offset_rate`, `offset_peer`, `offset_id`) of the last result.
pub async fn search_global(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SearchGlobal) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let after = match &r.offset_peer {
        enums::InputPeer::Empty => None,
        p => Some((r.offset_rate, convert::input_peer(&s, me, p).await?, r.offset_id)),
    };
    let q = Search {
        q: r.q,
        from: None,
        filter: search_filter(&r.filter),
        min_date: r.min_date,
        max_date: r.max_date,
        offset_id: 0,
        add_offset: 0,
        limit: r.limit,
        max_id: 0,
        min_id: 0,
    };
    let limit = q.limit;
    let (msgs, count) = s.messages.search_global(me, q, after).await?;
    let next_rate = msgs.last().filter(|_| msgs.len() as i32 >= limit && limit > 0).map(|m| m.date);
    found(&s, me, None, msgs, count, next_rate).await
}

/// `messages.forwardMessages`: one new message in `to_peer` per forwarded one, answered like a
/// send (an `updateMessageID` per random id, then the messages as stored).
pub async fn forward_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ForwardMessages) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let from_peer = convert::input_peer(&s, me, &r.from_peer).await?;
    let to = convert::input_peer(&s, me, &r.to_peer).await?;
    let req = ForwardRequest { from: me, origin_key: ctx.auth_key_id, from_peer, ids: &r.id, random_ids: &r.random_id, to, drop_author: r.drop_author };
    let sent = s.messages.forward(req).await?;
    let mut ids = Vec::with_capacity(sent.len());
    let mut items = Vec::with_capacity(sent.len());
    for (rid, one) in &sent {
        if let UpdateKind::NewMessage(m) = &one.update.kind {
            ids.push(enums::Update::MessageId(types::UpdateMessageId { id: m.id, random_id: *rid }));
        }
        items.push((one.owner, one.update.clone()));
    }
    updates_of(&s, me, &items, ids, vec![]).await
}

/// `messages.sendReaction`: no reaction (or an empty list) removes one's reaction; custom
/// emoji and paid reactions are `REACTION_INVALID`. Answered with the message's
/// `updateMessageReactions` as the caller now sees it.
pub async fn send_reaction(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendReaction) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let emoji = match r.reaction.as_deref() {
        None | Some([]) => None,
        Some([enums::Reaction::Emoji(e)]) => Some(e.emoticon.clone()),
        Some([enums::Reaction::Empty]) => None,
        Some(_) => return Err(DomainError::from(MessageError::ReactionInvalid).into()),
    };
    let reactions = s.messages.react(me, peer, r.msg_id, emoji).await?;
    reactions_answer(&s, me, peer, vec![(r.msg_id, reactions)]).await
}

/// `messages.getMessagesReactions`: an `updateMessageReactions` per listed message.
pub async fn get_messages_reactions(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetMessagesReactions) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let found = s.messages.reactions_of(me, peer, &r.id).await?;
    reactions_answer(&s, me, peer, found).await
}

async fn reactions_answer(s: &Services, me: UserId, peer: Peer, items: Vec<(i32, Reactions)>) -> Result<enums::Updates, RpcError> {
    // Who reacted is listed except on broadcast posts.
    let list = match peer {
        Peer::Channel(g) => !s.groups.known(me, &[g]).await?.first().is_some_and(|(g, _)| g.kind == GroupKind::Broadcast),
        _ => true,
    };
    let users: Vec<UserId> = if list { items.iter().flat_map(|(_, r)| r.recent.iter().map(|(u, _, _)| UserId(*u))).collect() } else { vec![] };
    let updates = items
        .iter()
        .map(|(id, r)| {
            enums::Update::MessageReactions(types::UpdateMessageReactions {
                peer: convert::peer(peer),
                msg_id: *id,
                top_msg_id: None,
                saved_peer_id: None,
                reactions: convert::reactions(me, r, list),
            })
        })
        .collect();
    pack(s, me, updates, users, peer.group().into_iter().collect()).await
}

/// `messages.setHistoryTTL`: messages sent from now on delete themselves after `period`
/// seconds; answered with the service message that says so (client-compat §4.17).
pub async fn set_history_ttl(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SetHistoryTtl) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let sent = s.messages.set_history_ttl(me, ctx.auth_key_id, peer, r.period).await?;
    updates_of(&s, me, &[(sent.owner, sent.update)], vec![], vec![]).await
}

/// Scheduled messages as a `messages.messages` answer.
async fn scheduled_answer(s: &Services, me: UserId, kept: &[herald_domain::model::Scheduled]) -> Result<enums::messages::Messages, RpcError> {
    let msgs: Vec<Message> = kept.iter().map(|k| k.as_message()).collect();
    let (messages, users, chats) = messages_answer(s, me, &msgs).await?;
    Ok(enums::messages::Messages::Messages(types::messages::Messages { messages, topics: vec![], chats, users }))
}

/// `messages.getScheduledHistory`: the caller's messages waiting for `peer`, by time.
pub async fn get_scheduled_history(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetScheduledHistory) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    scheduled_answer(&s, me, &s.scheduled.list(me, peer, None).await?).await
}

pub async fn get_scheduled_messages(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::GetScheduledMessages,
) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let ids: Vec<i32> = r.id.into_iter().take(herald_domain::messages::IDS_MAX).collect();
    scheduled_answer(&s, me, &s.scheduled.list(me, peer, Some(&ids)).await?).await
}

/// `messages.sendScheduledMessages`: sends the listed ones now; answered like sends.
pub async fn send_scheduled_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::SendScheduledMessages) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let ids: Vec<i32> = r.id.into_iter().take(herald_domain::messages::IDS_MAX).collect();
    let sent = s.scheduled.send_listed(me, peer, &ids).await?;
    let items: Vec<(BoxId, PtsUpdate)> = sent.into_iter().map(|x| (x.owner, x.update)).collect();
    updates_of(&s, me, &items, vec![], vec![]).await
}

/// `messages.deleteScheduledMessages`: answered with `updateDeleteScheduledMessages`.
pub async fn delete_scheduled_messages(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteScheduledMessages) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let peer = convert::input_peer(&s, me, &r.peer).await?;
    let ids: Vec<i32> = r.id.into_iter().take(herald_domain::messages::IDS_MAX).collect();
    let gone = s.scheduled.delete(me, peer, &ids).await?;
    let update =
        enums::Update::DeleteScheduledMessages(types::UpdateDeleteScheduledMessages { peer: convert::peer(peer), messages: gone, sent_messages: None });
    pack(&s, me, vec![update], vec![], vec![]).await
}
