//! Basic groups (`messages.*Chat*`), channels and supergroups (`channels.*`), invite links
//! and pins. Answers carry the group as the caller sees it and the service message the
//! change left (client-compat.md §4.7).

use super::messages::{affected, messages_answer, messages_in_order, pack, pts_change, updates_of};
use crate::convert;
use crate::{CallCtx, RpcError, Services};
use grammers_tl_types::{enums, functions, types};
use herald_domain::error::{AccountError, DomainError, FileError, GroupError};
use herald_domain::groups::{Changed, InviteCheck};
use herald_domain::model::*;
use std::sync::Arc;

fn group_update(g: &Group) -> enums::Update {
    if g.kind.is_channel() {
        enums::Update::Channel(types::UpdateChannel { channel_id: g.id.0 })
    } else {
        enums::Update::Chat(types::UpdateChat { chat_id: g.id.0 })
    }
}

/// The `Updates` answering a group change: the group's update, then the service message.
async fn changed(s: &Services, me: UserId, c: &Changed) -> Result<enums::Updates, RpcError> {
    let items: Vec<(BoxId, PtsUpdate)> = c.sent.iter().map(|x| (x.owner, x.update.clone())).collect();
    updates_of(s, me, &items, vec![group_update(&c.group)], vec![c.group.id]).await
}

fn invited(updates: enums::Updates) -> enums::messages::InvitedUsers {
    enums::messages::InvitedUsers::Users(types::messages::InvitedUsers { updates, missing_invitees: vec![] })
}

async fn users_in(s: &Services, me: UserId, list: &[enums::InputUser]) -> Result<Vec<UserId>, RpcError> {
    let mut out = Vec::with_capacity(list.len());
    for u in list.iter().take(herald_domain::groups::INVITE_BATCH_MAX + 1) {
        out.push(convert::input_user(s, me, u).await?.id);
    }
    Ok(out)
}

/// A group given as an `InputPeer` (basic group or channel).
async fn peer_group(s: &Services, me: UserId, p: &enums::InputPeer) -> Result<GroupId, RpcError> {
    convert::input_peer(s, me, p).await?.group().ok_or_else(|| DomainError::from(AccountError::PeerIdInvalid).into())
}

// ---- basic groups -----------------------------------------------------------------------

pub async fn create_chat(s: Arc<Services>, ctx: CallCtx, r: functions::messages::CreateChat) -> Result<enums::messages::InvitedUsers, RpcError> {
    let me = ctx.user()?;
    let users = users_in(&s, me, &r.users).await?;
    let c = s.groups.create_chat(me, ctx.auth_key_id, &r.title, &users).await?;
    Ok(invited(changed(&s, me, &c).await?))
}

pub async fn add_chat_user(s: Arc<Services>, ctx: CallCtx, r: functions::messages::AddChatUser) -> Result<enums::messages::InvitedUsers, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let u = convert::input_user(&s, me, &r.user_id).await?.id;
    let c = s.groups.add_members(me, ctx.auth_key_id, g, &[u]).await?;
    Ok(invited(changed(&s, me, &c).await?))
}

pub async fn delete_chat_user(s: Arc<Services>, ctx: CallCtx, r: functions::messages::DeleteChatUser) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let u = convert::input_user(&s, me, &r.user_id).await?.id;
    let c = s.groups.remove_member(me, ctx.auth_key_id, g, u, false).await?;
    changed(&s, me, &c).await
}

pub async fn edit_chat_title(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditChatTitle) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let c = s.groups.edit_title(me, ctx.auth_key_id, g, &r.title).await?;
    changed(&s, me, &c).await
}

/// The photo an `InputChatPhoto` names: a fresh upload made into a photo, a stored photo the
/// caller can see, or none. Video photos are not supported (`PHOTO_INVALID`).
async fn chat_photo_in(s: &Services, me: UserId, p: &enums::InputChatPhoto) -> Result<Option<FileMeta>, RpcError> {
    let invalid = || RpcError::from(DomainError::from(FileError::PhotoInvalid));
    match p {
        enums::InputChatPhoto::Empty => Ok(None),
        enums::InputChatPhoto::InputChatUploadedPhoto(u) => {
            let (Some(file), None) = (&u.file, &u.video) else { return Err(invalid()) };
            Ok(Some(s.files.complete_photo(me, &crate::handlers::files::uploaded(file)?).await?))
        }
        enums::InputChatPhoto::Photo(p) => {
            let enums::InputPhoto::Photo(p) = &p.id else { return Ok(None) };
            let f = s.files.resolve(me, p.id, p.access_hash, None).await?;
            if !f.is_photo() {
                return Err(invalid());
            }
            Ok(Some(f))
        }
    }
}

pub async fn edit_chat_photo(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditChatPhoto) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let photo = chat_photo_in(&s, me, &r.photo).await?;
    let c = s.groups.edit_photo(me, ctx.auth_key_id, g, photo).await?;
    changed(&s, me, &c).await
}

pub async fn edit_photo(s: Arc<Services>, ctx: CallCtx, r: functions::channels::EditPhoto) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let photo = chat_photo_in(&s, me, &r.photo).await?;
    let c = s.groups.edit_photo(me, ctx.auth_key_id, g, photo).await?;
    changed(&s, me, &c).await
}

pub async fn edit_chat_about(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditChatAbout) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    s.groups.edit_about(me, g, &r.about).await?;
    Ok(true)
}

pub async fn edit_chat_admin(s: Arc<Services>, ctx: CallCtx, r: functions::messages::EditChatAdmin) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let u = convert::input_user(&s, me, &r.user_id).await?.id;
    let rights = if r.is_admin { AdminRights(AdminRights::ALL.0 & !AdminRights::ADD_ADMINS) } else { AdminRights::default() };
    s.groups.edit_admin(me, g, u, rights, None).await?;
    Ok(true)
}

pub async fn edit_chat_default_banned_rights(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::EditChatDefaultBannedRights,
) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let g = s.groups.edit_default_banned(me, g, convert::banned_rights_in(&r.banned_rights)).await?;
    pack(&s, me, vec![group_update(&g)], vec![], vec![g.id]).await
}

pub async fn get_chats(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetChats) -> Result<enums::messages::Chats, RpcError> {
    let me = ctx.user()?;
    let mut ids = Vec::new();
    for id in r.id.iter().take(200) {
        ids.push(convert::chat_id(&s, me, *id).await?);
    }
    Ok(enums::messages::Chats::Chats(types::messages::Chats { chats: convert::chats(&s, me, ids).await? }))
}

fn chat_participant(m: &Member) -> enums::ChatParticipant {
    match m.role {
        Role::Creator => enums::ChatParticipant::Creator(types::ChatParticipantCreator { user_id: m.user.0, rank: m.rank.clone() }),
        Role::Admin => {
            enums::ChatParticipant::Admin(types::ChatParticipantAdmin { user_id: m.user.0, inviter_id: m.actor.0, date: m.date, rank: m.rank.clone() })
        }
        _ => enums::ChatParticipant::Participant(types::ChatParticipant { user_id: m.user.0, inviter_id: m.actor.0, date: m.date, rank: m.rank.clone() }),
    }
}

pub async fn get_full_chat(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetFullChat) -> Result<enums::messages::ChatFull, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let (group, mine) = s.groups.visible(me, g).await?;
    let member = mine.as_ref().is_some_and(|m| m.role.is_member());
    let (members, _) = if member { s.groups.participants(me, g, &MemberFilter::Recent, 0, 200).await? } else { (vec![], 0) };
    let participants = if member {
        enums::ChatParticipants::Participants(types::ChatParticipants {
            chat_id: g.0,
            participants: members.iter().map(chat_participant).collect(),
            version: group.version,
        })
    } else {
        enums::ChatParticipants::Forbidden(types::ChatParticipantsForbidden { chat_id: g.0, self_participant: None })
    };
    let mut full = crate::blank::chat_full(participants, convert::notify_settings());
    full.id = g.0;
    full.about = group.about.clone();
    full.pinned_msg_id = group.pinned_msg_id;
    full.chat_photo = full_photo(&s, me, &group).await?;
    full.can_set_username = false;
    let users = convert::users(&s, me, members.iter().map(|m| m.user)).await?;
    let mut groups = vec![g];
    groups.extend(group.migrated_to);
    Ok(enums::messages::ChatFull::Full(types::messages::ChatFull {
        full_chat: enums::ChatFull::Full(full),
        chats: convert::chats(&s, me, groups).await?,
        users,
    }))
}

pub async fn migrate_chat(s: Arc<Services>, ctx: CallCtx, r: functions::messages::MigrateChat) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::chat_id(&s, me, r.chat_id).await?;
    let (old, new) = s.groups.migrate(me, ctx.auth_key_id, g).await?;
    pack(&s, me, vec![group_update(&old), group_update(&new)], vec![], vec![old.id, new.id]).await
}

// ---- channels ---------------------------------------------------------------------------

pub async fn create_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::CreateChannel) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let c = s.groups.create_channel(me, ctx.auth_key_id, &r.title, &r.about, !r.megagroup && r.broadcast).await?;
    changed(&s, me, &c).await
}

pub async fn invite_to_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::InviteToChannel) -> Result<enums::messages::InvitedUsers, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let users = users_in(&s, me, &r.users).await?;
    let c = s.groups.add_members(me, ctx.auth_key_id, g, &users).await?;
    Ok(invited(changed(&s, me, &c).await?))
}

/// A public channel is reachable by anyone: its id comes from `resolveUsername`, with the
/// resolver's access hash.
pub async fn join_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::JoinChannel) -> Result<enums::messages::ChatInviteJoinResult, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let c = s.groups.join(me, ctx.auth_key_id, g).await?;
    Ok(enums::messages::ChatInviteJoinResult::Ok(types::messages::ChatInviteJoinResultOk { updates: changed(&s, me, &c).await? }))
}

pub async fn leave_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::LeaveChannel) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let c = s.groups.remove_member(me, ctx.auth_key_id, g, me, false).await?;
    changed(&s, me, &c).await
}

pub async fn get_channels(s: Arc<Services>, ctx: CallCtx, r: functions::channels::GetChannels) -> Result<enums::messages::Chats, RpcError> {
    let me = ctx.user()?;
    let mut ids = Vec::new();
    for c in r.id.iter().take(200) {
        ids.push(convert::input_channel(&s, me, c).await?);
    }
    Ok(enums::messages::Chats::Chats(types::messages::Chats { chats: convert::chats(&s, me, ids).await? }))
}

/// A group's current photo, whole (`chatFull.chat_photo`, `channelFull.chat_photo`).
async fn full_photo(s: &Services, me: UserId, g: &Group) -> Result<Option<enums::Photo>, RpcError> {
    let Some(id) = g.photo_id else { return Ok(None) };
    Ok(s.files.file(id).await?.map(|f| convert::photo(&s.files, me, &f)))
}

pub async fn get_full_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::GetFullChannel) -> Result<enums::messages::ChatFull, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let (group, mine) = s.groups.visible(me, g).await?;
    let dialog = s.messages.dialog(me, Peer::Channel(g)).await?;
    let admin = mine.as_ref().is_some_and(|m| m.role.is_admin());
    let photo = full_photo(&s, me, &group).await?.unwrap_or(enums::Photo::Empty(types::PhotoEmpty { id: 0 }));
    let mut full = crate::blank::channel_full(photo, convert::notify_settings());
    full.id = g.0;
    full.about = group.about.clone();
    full.participants_count = Some(group.participants_count);
    full.admins_count = Some(group.admins_count);
    full.kicked_count = admin.then_some(group.kicked_count);
    full.banned_count = admin.then_some(group.banned_count);
    full.can_view_participants = group.kind == GroupKind::Megagroup || admin;
    full.can_set_username = mine.as_ref().is_some_and(|m| m.role == Role::Creator);
    full.can_delete_channel = mine.as_ref().is_some_and(|m| m.role == Role::Creator);
    full.read_inbox_max_id = dialog.as_ref().map(|d| d.read_inbox_max_id).unwrap_or(0);
    full.read_outbox_max_id = dialog.as_ref().map(|d| d.read_outbox_max_id).unwrap_or(0);
    full.unread_count = dialog.as_ref().map(|d| d.unread_count).unwrap_or(0);
    full.pts = s.messages.pts(BoxId::Channel(g)).await?;
    full.pinned_msg_id = group.pinned_msg_id;
    full.slowmode_seconds = (group.slowmode_seconds > 0).then_some(group.slowmode_seconds);
    if let Some(from) = group.migrated_from {
        full.migrated_from_chat_id = Some(from.0);
        full.migrated_from_max_id = Some(i32::MAX);
    }
    let mut groups = vec![g];
    groups.extend(group.migrated_from);
    Ok(enums::messages::ChatFull::Full(types::messages::ChatFull {
        full_chat: enums::ChatFull::ChannelFull(full),
        chats: convert::chats(&s, me, groups).await?,
        users: vec![],
    }))
}

fn channel_participant(me: UserId, m: &Member) -> enums::ChannelParticipant {
    let user_peer = enums::Peer::User(types::PeerUser { user_id: m.user.0 });
    match m.role {
        Role::Creator => enums::ChannelParticipant::Creator(types::ChannelParticipantCreator {
            user_id: m.user.0,
            admin_rights: convert::admin_rights_out(m.admin_rights),
            rank: m.rank.clone(),
        }),
        Role::Admin => enums::ChannelParticipant::Admin(types::ChannelParticipantAdmin {
            can_edit: m.actor == me,
            is_self: m.user == me,
            user_id: m.user.0,
            inviter_id: (m.user == me).then_some(m.actor.0),
            promoted_by: m.actor.0,
            date: m.date,
            admin_rights: convert::admin_rights_out(m.admin_rights),
            rank: m.rank.clone(),
        }),
        Role::Restricted | Role::Kicked => enums::ChannelParticipant::Banned(types::ChannelParticipantBanned {
            left: m.role == Role::Kicked,
            peer: user_peer,
            kicked_by: m.actor.0,
            date: m.date,
            banned_rights: convert::banned_rights_out(m.banned),
            rank: None,
        }),
        Role::Left => enums::ChannelParticipant::Left(types::ChannelParticipantLeft { peer: user_peer }),
        Role::Member if m.user == me => enums::ChannelParticipant::ParticipantSelf(types::ChannelParticipantSelf {
            via_request: false,
            user_id: m.user.0,
            inviter_id: m.actor.0,
            date: m.date,
            subscription_until_date: None,
            rank: m.rank.clone(),
        }),
        Role::Member => enums::ChannelParticipant::Participant(types::ChannelParticipant {
            user_id: m.user.0,
            date: m.date,
            subscription_until_date: None,
            rank: m.rank.clone(),
        }),
    }
}

pub async fn get_participants(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::channels::GetParticipants,
) -> Result<enums::channels::ChannelParticipants, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    use enums::ChannelParticipantsFilter as F;
    let filter = match &r.filter {
        F::ChannelParticipantsRecent => MemberFilter::Recent,
        F::ChannelParticipantsAdmins => MemberFilter::Admins,
        F::ChannelParticipantsKicked(k) => MemberFilter::Kicked(k.q.clone()),
        F::ChannelParticipantsBanned(b) => MemberFilter::Banned(b.q.clone()),
        F::ChannelParticipantsSearch(q) => MemberFilter::Search(q.q.clone()),
        F::ChannelParticipantsContacts(q) => MemberFilter::Search(q.q.clone()),
        F::ChannelParticipantsMentions(m) => MemberFilter::Search(m.q.clone().unwrap_or_default()),
        F::ChannelParticipantsBots => return participants_list(&s, me, vec![], 0).await,
    };
    let (members, count) = s.groups.participants(me, g, &filter, r.offset, r.limit).await?;
    participants_list(&s, me, members, count).await
}

async fn participants_list(s: &Services, me: UserId, members: Vec<Member>, count: i32) -> Result<enums::channels::ChannelParticipants, RpcError> {
    let users = convert::users(s, me, members.iter().flat_map(|m| [m.user, m.actor])).await?;
    Ok(enums::channels::ChannelParticipants::Participants(types::channels::ChannelParticipants {
        count,
        participants: members.iter().map(|m| channel_participant(me, m)).collect(),
        chats: vec![],
        users,
    }))
}

pub async fn get_participant(s: Arc<Services>, ctx: CallCtx, r: functions::channels::GetParticipant) -> Result<enums::channels::ChannelParticipant, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let u = convert::input_peer_user(&s, me, &r.participant).await?;
    let m = s.groups.participant(me, g, u).await?;
    Ok(enums::channels::ChannelParticipant::Participant(types::channels::ChannelParticipant {
        participant: channel_participant(me, &m),
        chats: vec![],
        users: convert::users(&s, me, [m.user, m.actor]).await?,
    }))
}

pub async fn edit_admin(s: Arc<Services>, ctx: CallCtx, r: functions::channels::EditAdmin) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let u = convert::input_user(&s, me, &r.user_id).await?.id;
    let c = s.groups.edit_admin(me, g, u, convert::admin_rights_in(&r.admin_rights), r.rank.filter(|r| !r.is_empty())).await?;
    changed(&s, me, &c).await
}

pub async fn edit_banned(s: Arc<Services>, ctx: CallCtx, r: functions::channels::EditBanned) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let u = convert::input_peer_user(&s, me, &r.participant).await?;
    let c = s.groups.edit_banned(me, ctx.auth_key_id, g, u, convert::banned_rights_in(&r.banned_rights)).await?;
    changed(&s, me, &c).await
}

pub async fn edit_title(s: Arc<Services>, ctx: CallCtx, r: functions::channels::EditTitle) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let c = s.groups.edit_title(me, ctx.auth_key_id, g, &r.title).await?;
    changed(&s, me, &c).await
}

pub async fn delete_channel(s: Arc<Services>, ctx: CallCtx, r: functions::channels::DeleteChannel) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let g = s.groups.delete_channel(me, g).await?;
    pack(&s, me, vec![group_update(&g)], vec![], vec![g.id]).await
}

pub async fn delete_channel_messages(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::channels::DeleteMessages,
) -> Result<enums::messages::AffectedMessages, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let up = s.messages.delete_channel_messages(me, ctx.auth_key_id, g, &r.id).await?;
    Ok(affected(pts_change(&s, BoxId::Channel(g), up).await?))
}

pub async fn read_channel_history(s: Arc<Services>, ctx: CallCtx, r: functions::channels::ReadHistory) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    s.messages.read_channel(me, g, r.max_id).await?;
    Ok(true)
}

pub async fn get_channel_messages(s: Arc<Services>, ctx: CallCtx, r: functions::channels::GetMessages) -> Result<enums::messages::Messages, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    s.messages.box_for(me, Peer::Channel(g)).await?;
    let (messages, found) = messages_in_order(&s, me, BoxId::Channel(g), &r.id).await?;
    let (_, users, chats) = messages_answer(&s, me, &found).await?;
    let chats = if chats.is_empty() { convert::chats(&s, me, [g]).await? } else { chats };
    Ok(enums::messages::Messages::ChannelMessages(types::messages::ChannelMessages {
        inexact: false,
        pts: s.messages.pts(BoxId::Channel(g)).await?,
        count: messages.len() as i32,
        offset_id_offset: None,
        messages,
        topics: vec![],
        chats,
        users,
    }))
}

pub async fn toggle_signatures(s: Arc<Services>, ctx: CallCtx, r: functions::channels::ToggleSignatures) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let g = s.groups.toggle_signatures(me, g, r.signatures_enabled).await?;
    pack(&s, me, vec![group_update(&g)], vec![], vec![g.id]).await
}

pub async fn toggle_slow_mode(s: Arc<Services>, ctx: CallCtx, r: functions::channels::ToggleSlowMode) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let g = s.groups.toggle_slowmode(me, g, r.seconds).await?;
    pack(&s, me, vec![group_update(&g)], vec![], vec![g.id]).await
}

pub async fn check_username(s: Arc<Services>, ctx: CallCtx, r: functions::channels::CheckUsername) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    Ok(s.groups.check_username(me, g, &r.username).await?)
}

pub async fn update_username(s: Arc<Services>, ctx: CallCtx, r: functions::channels::UpdateUsername) -> Result<bool, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    s.groups.update_username(me, g, &r.username).await?;
    Ok(true)
}

// ---- pins -------------------------------------------------------------------------------

pub async fn update_pinned_message(s: Arc<Services>, ctx: CallCtx, r: functions::messages::UpdatePinnedMessage) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let sent = s.groups.pin(me, ctx.auth_key_id, g, r.id, r.unpin, r.silent).await?;
    let items: Vec<(BoxId, PtsUpdate)> = sent.into_iter().map(|x| (x.owner, x.update)).collect();
    updates_of(&s, me, &items, vec![], vec![g]).await
}

pub async fn unpin_all_messages(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::UnpinAllMessages,
) -> Result<enums::messages::AffectedHistory, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let (group, _) = s.groups.visible(me, g).await?;
    if let Some(id) = group.pinned_msg_id {
        s.groups.pin(me, ctx.auth_key_id, g, id, true, true).await?;
    }
    let owner = if group.kind.is_channel() { BoxId::Channel(g) } else { BoxId::User(me) };
    let (pts, _) = pts_change(&s, owner, None).await?;
    Ok(enums::messages::AffectedHistory::History(types::messages::AffectedHistory { pts, pts_count: 0, offset: 0 }))
}

// ---- invite links -----------------------------------------------------------------------

/// Links look like Telegram's: `https://t.me/+HASH`; clients send back the hash alone.
fn invite_out(i: &Invite) -> enums::ExportedChatInvite {
    enums::ExportedChatInvite::ChatInviteExported(types::ChatInviteExported {
        revoked: i.revoked,
        permanent: i.permanent,
        request_needed: i.request_needed,
        link: format!("https://t.me/+{}", i.hash),
        admin_id: i.admin.0,
        date: i.date,
        start_date: None,
        expire_date: i.expire_date,
        usage_limit: i.usage_limit,
        usage: (i.usage > 0).then_some(i.usage),
        requested: None,
        subscription_expired: None,
        title: i.title.clone(),
        subscription_pricing: None,
    })
}

/// The hash part of a link or the hash itself.
fn invite_hash(link: &str) -> &str {
    let tail = link.rsplit('/').next().unwrap_or(link);
    tail.trim_start_matches('+')
}

pub async fn export_chat_invite(s: Arc<Services>, ctx: CallCtx, r: functions::messages::ExportChatInvite) -> Result<enums::ExportedChatInvite, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let i = s.groups.export_invite(me, g, r.expire_date, r.usage_limit, r.request_needed, r.title).await?;
    Ok(invite_out(&i))
}

pub async fn check_chat_invite(s: Arc<Services>, ctx: CallCtx, r: functions::messages::CheckChatInvite) -> Result<enums::ChatInvite, RpcError> {
    let me = ctx.user()?;
    Ok(match s.groups.check_invite(me, invite_hash(&r.hash)).await? {
        InviteCheck::Already(g) => {
            let m = s.groups.member(g.id, me).await?;
            enums::ChatInvite::Already(types::ChatInviteAlready { chat: convert::chat(&s, me, &g, m.as_ref()) })
        }
        InviteCheck::Invite { group: g, invite } => enums::ChatInvite::Invite(types::ChatInvite {
            channel: g.kind.is_channel(),
            broadcast: g.kind == GroupKind::Broadcast,
            public: g.username.is_some(),
            megagroup: g.kind == GroupKind::Megagroup,
            request_needed: invite.request_needed,
            verified: false,
            scam: false,
            fake: false,
            can_refulfill_subscription: false,
            title: g.title.clone(),
            about: (!g.about.is_empty()).then(|| g.about.clone()),
            photo: enums::Photo::Empty(types::PhotoEmpty { id: 0 }),
            participants_count: g.participants_count,
            participants: None,
            color: 0,
            subscription_pricing: None,
            subscription_form_id: None,
            bot_verification: None,
        }),
    })
}

pub async fn import_chat_invite(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::ImportChatInvite,
) -> Result<enums::messages::ChatInviteJoinResult, RpcError> {
    let me = ctx.user()?;
    let c = s.groups.import_invite(me, ctx.auth_key_id, invite_hash(&r.hash)).await?;
    Ok(enums::messages::ChatInviteJoinResult::Ok(types::messages::ChatInviteJoinResultOk { updates: changed(&s, me, &c).await? }))
}

pub async fn get_exported_chat_invites(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::GetExportedChatInvites,
) -> Result<enums::messages::ExportedChatInvites, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let admin = convert::input_user(&s, me, &r.admin_id).await?.id;
    let list = s.groups.invites(me, g, Some(admin), r.revoked, r.limit).await?;
    Ok(enums::messages::ExportedChatInvites::Invites(types::messages::ExportedChatInvites {
        count: list.len() as i32,
        invites: list.iter().map(invite_out).collect(),
        users: convert::users(&s, me, [admin]).await?,
    }))
}

pub async fn edit_exported_chat_invite(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::EditExportedChatInvite,
) -> Result<enums::messages::ExportedChatInvite, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let i = s
        .groups
        .edit_invite(me, g, invite_hash(&r.link), |i| {
            if r.revoked {
                i.revoked = true;
            }
            if let Some(d) = r.expire_date {
                i.expire_date = (d > 0).then_some(d);
            }
            if let Some(l) = r.usage_limit {
                i.usage_limit = (l > 0).then_some(l);
            }
            if let Some(q) = r.request_needed {
                i.request_needed = q;
            }
            if let Some(t) = &r.title {
                i.title = Some(t.chars().take(32).collect());
            }
        })
        .await?;
    Ok(enums::messages::ExportedChatInvite::Invite(types::messages::ExportedChatInvite {
        invite: invite_out(&i),
        users: convert::users(&s, me, [i.admin]).await?,
    }))
}

pub async fn hide_chat_join_request(s: Arc<Services>, ctx: CallCtx, r: functions::messages::HideChatJoinRequest) -> Result<enums::Updates, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    let u = match &r.user_id {
        enums::InputUser::User(u) => UserId(u.user_id),
        _ => return Err(DomainError::from(AccountError::UserIdInvalid).into()),
    };
    match s.groups.decide_request(me, ctx.auth_key_id, g, u, r.approved).await? {
        Some(c) => changed(&s, me, &c).await,
        None => {
            let (group, _) = s.groups.visible(me, g).await?;
            pack(&s, me, vec![group_update(&group)], vec![], vec![g]).await
        }
    }
}

pub async fn get_chat_invite_importers(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::messages::GetChatInviteImporters,
) -> Result<enums::messages::ChatInviteImporters, RpcError> {
    let me = ctx.user()?;
    let g = peer_group(&s, me, &r.peer).await?;
    if !r.requested {
        return Err(DomainError::from(GroupError::ChatAdminRequired).into());
    }
    let reqs = s.groups.join_requests(me, g).await?;
    Ok(enums::messages::ChatInviteImporters::Importers(types::messages::ChatInviteImporters {
        count: reqs.len() as i32,
        importers: reqs
            .iter()
            .map(|q| {
                enums::ChatInviteImporter::Importer(types::ChatInviteImporter {
                    requested: true,
                    via_chatlist: false,
                    user_id: q.user.0,
                    date: q.date,
                    about: None,
                    approved_by: None,
                })
            })
            .collect(),
        users: convert::users(&s, me, reqs.iter().map(|q| q.user)).await?,
    }))
}

pub(crate) async fn channel_difference(
    s: Arc<Services>,
    ctx: CallCtx,
    r: functions::updates::GetChannelDifference,
) -> Result<enums::updates::ChannelDifference, RpcError> {
    let me = ctx.user()?;
    let g = convert::input_channel(&s, me, &r.channel).await?;
    let limit = r.limit.clamp(1, herald_domain::messages::CHANNEL_DIFFERENCE_MAX as i32) as usize;
    let current = s.messages.pts(BoxId::Channel(g)).await?;
    // Too far behind (or ahead: a state from elsewhere), or behind the trimmed log: the latest
    // messages and the dialog.
    let behind = r.pts <= 0 || r.pts > current || current - r.pts > limit as i32 * 10;
    let diff = if behind { None } else { Some(s.messages.channel_difference(me, g, r.pts, limit).await?) };
    let Some(diff) = diff.filter(|d| !d.too_long) else {
        let (msgs, _) = s.messages.history(me, Peer::Channel(g), HistoryQuery { limit: limit.min(100) as i32, ..Default::default() }).await?;
        let (messages, users, _) = messages_answer(&s, me, &msgs).await?;
        let d = s.messages.dialog(me, Peer::Channel(g)).await?;
        let dialog = match d {
            Some(d) => convert::dialog(&d),
            None => convert::dialog(&Dialog { top_message: msgs.first().map(|m| m.id).unwrap_or(0), pts: Some(current), ..Dialog::empty(Peer::Channel(g)) }),
        };
        return Ok(enums::updates::ChannelDifference::TooLong(types::updates::ChannelDifferenceTooLong {
            r#final: true,
            timeout: None,
            dialog,
            messages,
            chats: convert::chats(&s, me, [g]).await?,
            users,
        }));
    };
    if diff.updates.is_empty() && !diff.more {
        return Ok(enums::updates::ChannelDifference::Empty(types::updates::ChannelDifferenceEmpty { r#final: true, pts: diff.pts, timeout: None }));
    }
    let convert::SplitDifference { new_messages, other_updates, users, mut groups } = convert::split_difference(&s.files, me, BoxId::Channel(g), &diff.updates);
    groups.push(g);
    Ok(enums::updates::ChannelDifference::Difference(types::updates::ChannelDifference {
        r#final: !diff.more,
        pts: diff.pts,
        timeout: None,
        new_messages,
        other_updates,
        chats: convert::chats(&s, me, groups).await?,
        users: convert::users(&s, me, users).await?,
    }))
}

/// `messages.getCommonChats`: the groups and channels the caller shares with a user.
pub async fn get_common_chats(s: Arc<Services>, ctx: CallCtx, r: functions::messages::GetCommonChats) -> Result<enums::messages::Chats, RpcError> {
    let me = ctx.user()?;
    let other = convert::input_user(&s, me, &r.user_id).await?;
    let ids = s.groups.common(me, other.id, r.max_id, r.limit).await?;
    // Newest first, as the store listed them (`convert::chats` orders by id).
    let mut chats = convert::chats(&s, me, ids.iter().copied()).await?;
    chats.reverse();
    Ok(enums::messages::Chats::Chats(types::messages::Chats { chats }))
}
