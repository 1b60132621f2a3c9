//! Domain ↔ TL conversions. Users are always rendered from a viewer's point of view
//! (`self` flag, per-viewer access hash, phone only to its owner).

use crate::{blank, RpcError, Services};
use grammers_tl_types::{enums, types, Deserializable, Serializable};
use herald_domain::error::{AccountError, DomainError};
use herald_domain::model::*;

pub fn peer(p: Peer) -> enums::Peer {
    match p {
        Peer::User(u) => enums::Peer::User(types::PeerUser { user_id: u.0 }),
    }
}

pub fn user(s: &Services, viewer: UserId, u: &User) -> enums::User {
    let mut t = blank::user();
    t.id = u.id.0;
    t.is_self = viewer == u.id;
    t.access_hash = Some(s.accounts.access_hash(viewer, u.id));
    t.first_name = Some(u.first_name.clone());
    t.last_name = (!u.last_name.is_empty()).then(|| u.last_name.clone());
    t.username = u.username.clone();
    t.phone = (viewer == u.id).then(|| u.phone.clone());
    t.verified = u.is_service;
    t.support = u.is_service;
    t.status = Some(if u.is_service { enums::UserStatus::Empty } else { enums::UserStatus::Recently(types::UserStatusRecently { by_me: false }) });
    enums::User::User(t)
}

/// TL users for `ids` as `viewer` sees them (duplicates and unknown ids dropped).
pub async fn users(s: &Services, viewer: UserId, ids: impl IntoIterator<Item = UserId>) -> Result<Vec<enums::User>, RpcError> {
    let mut ids: Vec<UserId> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    Ok(s.accounts.users(&ids).await?.iter().map(|u| user(s, viewer, u)).collect())
}

pub fn message(m: &Message) -> enums::Message {
    let mut t = blank::message(peer(m.peer));
    t.id = m.id;
    t.out = m.out;
    t.from_id = Some(peer(Peer::User(m.from)));
    t.date = m.date;
    t.message = m.text.clone();
    t.entities = (!m.entities.is_empty()).then(|| entities_out(&m.entities));
    t.edit_date = m.edit_date;
    t.reply_to = m.reply_to.map(|id| {
        enums::MessageReplyHeader::Header(types::MessageReplyHeader {
            reply_to_scheduled: false,
            forum_topic: false,
            quote: false,
            reply_to_ephemeral: false,
            reply_to_msg_id: Some(id),
            reply_to_peer_id: None,
            reply_from: None,
            reply_media: None,
            reply_to_top_id: None,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            todo_item_id: None,
            poll_option: None,
        })
    });
    enums::Message::Message(t)
}

/// The users a set of messages mentions (senders and peers).
pub fn message_users<'a>(msgs: impl IntoIterator<Item = &'a Message>) -> Vec<UserId> {
    msgs.into_iter().flat_map(|m| [m.from, m.peer.user_id()]).collect()
}

pub fn entities_out(es: &[Entity]) -> Vec<enums::MessageEntity> {
    use enums::MessageEntity as E;
    es.iter()
        .map(|e| {
            let (offset, length) = (e.offset, e.length);
            match &e.kind {
                EntityKind::Mention => E::Mention(types::MessageEntityMention { offset, length }),
                EntityKind::Hashtag => E::Hashtag(types::MessageEntityHashtag { offset, length }),
                EntityKind::Cashtag => E::Cashtag(types::MessageEntityCashtag { offset, length }),
                EntityKind::BotCommand => E::BotCommand(types::MessageEntityBotCommand { offset, length }),
                EntityKind::Url => E::Url(types::MessageEntityUrl { offset, length }),
                EntityKind::Email => E::Email(types::MessageEntityEmail { offset, length }),
                EntityKind::Phone => E::Phone(types::MessageEntityPhone { offset, length }),
                EntityKind::Bold => E::Bold(types::MessageEntityBold { offset, length }),
                EntityKind::Italic => E::Italic(types::MessageEntityItalic { offset, length }),
                EntityKind::Underline => E::Underline(types::MessageEntityUnderline { offset, length }),
                EntityKind::Strike => E::Strike(types::MessageEntityStrike { offset, length }),
                EntityKind::Spoiler => E::Spoiler(types::MessageEntitySpoiler { offset, length }),
                EntityKind::Code => E::Code(types::MessageEntityCode { offset, length }),
                EntityKind::BankCard => E::BankCard(types::MessageEntityBankCard { offset, length }),
                EntityKind::Pre { language } => E::Pre(types::MessageEntityPre { offset, length, language: language.clone() }),
                EntityKind::TextUrl { url } => E::TextUrl(types::MessageEntityTextUrl { offset, length, url: url.clone() }),
                EntityKind::MentionName { user_id } => E::MentionName(types::MessageEntityMentionName { offset, length, user_id: *user_id }),
                EntityKind::CustomEmoji { document_id } => E::CustomEmoji(types::MessageEntityCustomEmoji { offset, length, document_id: *document_id }),
                EntityKind::Blockquote { collapsed } => E::Blockquote(types::MessageEntityBlockquote { collapsed: *collapsed, offset, length }),
                EntityKind::Unknown => E::Unknown(types::MessageEntityUnknown { offset, length }),
            }
        })
        .collect()
}

/// Client entities → domain. Mention-by-InputUser is resolved through the access check.
pub async fn entities_in(s: &Services, me: UserId, es: Option<Vec<enums::MessageEntity>>) -> Result<Vec<Entity>, RpcError> {
    use enums::MessageEntity as E;
    let es = es.unwrap_or_default();
    if es.len() > herald_domain::messages::ENTITIES_MAX {
        return Err(DomainError::from(herald_domain::error::MessageError::EntityBoundsInvalid).into());
    }
    let mut out = Vec::with_capacity(es.len());
    for e in es {
        let (offset, length) = (e.offset(), e.length());
        let kind = match e {
            E::Mention(_) => EntityKind::Mention,
            E::Hashtag(_) => EntityKind::Hashtag,
            E::Cashtag(_) => EntityKind::Cashtag,
            E::BotCommand(_) => EntityKind::BotCommand,
            E::Url(_) => EntityKind::Url,
            E::Email(_) => EntityKind::Email,
            E::Phone(_) => EntityKind::Phone,
            E::Bold(_) => EntityKind::Bold,
            E::Italic(_) => EntityKind::Italic,
            E::Underline(_) => EntityKind::Underline,
            E::Strike(_) => EntityKind::Strike,
            E::Spoiler(_) => EntityKind::Spoiler,
            E::Code(_) => EntityKind::Code,
            E::BankCard(_) => EntityKind::BankCard,
            E::Pre(p) => EntityKind::Pre { language: p.language },
            E::TextUrl(t) => EntityKind::TextUrl { url: t.url },
            // A raw user id is accepted only for users the sender already knows.
            E::MentionName(m) => {
                let u = s.accounts.check_access(me, UserId(m.user_id), 0, AccountError::UserIdInvalid).await?;
                EntityKind::MentionName { user_id: u.id.0 }
            }
            E::InputMessageEntityMentionName(m) => EntityKind::MentionName { user_id: input_user(s, me, &m.user_id).await?.id.0 },
            E::CustomEmoji(c) => EntityKind::CustomEmoji { document_id: c.document_id },
            E::Blockquote(b) => EntityKind::Blockquote { collapsed: b.collapsed },
            _ => EntityKind::Unknown,
        };
        out.push(Entity { offset, length, kind });
    }
    Ok(out)
}

/// Resolves an `InputPeer` to a user the caller may address, or PEER_ID_INVALID.
pub async fn input_peer(s: &Services, me: UserId, p: &enums::InputPeer) -> Result<User, RpcError> {
    let (id, hash) = match p {
        enums::InputPeer::PeerSelf => (me, 0),
        enums::InputPeer::User(u) => (UserId(u.user_id), u.access_hash),
        _ => return Err(DomainError::from(AccountError::PeerIdInvalid).into()),
    };
    Ok(s.accounts.check_access(me, id, hash, AccountError::PeerIdInvalid).await?)
}

/// Resolves an `InputUser`, or USER_ID_INVALID.
pub async fn input_user(s: &Services, me: UserId, u: &enums::InputUser) -> Result<User, RpcError> {
    let (id, hash) = match u {
        enums::InputUser::UserSelf => (me, 0),
        enums::InputUser::User(u) => (UserId(u.user_id), u.access_hash),
        _ => return Err(DomainError::from(AccountError::UserIdInvalid).into()),
    };
    Ok(s.accounts.check_access(me, id, hash, AccountError::UserIdInvalid).await?)
}

pub fn action_in(a: &enums::SendMessageAction) -> TypingAction {
    match a {
        enums::SendMessageAction::SendMessageTypingAction => TypingAction::Typing,
        enums::SendMessageAction::SendMessageCancelAction => TypingAction::Cancel,
        other => TypingAction::Other(other.to_bytes()),
    }
}

pub fn action_out(a: &TypingAction) -> enums::SendMessageAction {
    match a {
        TypingAction::Typing => enums::SendMessageAction::SendMessageTypingAction,
        TypingAction::Cancel => enums::SendMessageAction::SendMessageCancelAction,
        TypingAction::Other(b) => enums::SendMessageAction::from_bytes(b).unwrap_or(enums::SendMessageAction::SendMessageTypingAction),
    }
}

/// A box update as TL, plus the users it mentions.
pub fn update(u: &PtsUpdate) -> (enums::Update, Vec<UserId>) {
    let (pts, pts_count) = (u.pts, u.pts_count);
    match &u.kind {
        UpdateKind::NewMessage(m) => (enums::Update::NewMessage(types::UpdateNewMessage { message: message(m), pts, pts_count }), message_users([m])),
        UpdateKind::EditMessage(m) => (enums::Update::EditMessage(types::UpdateEditMessage { message: message(m), pts, pts_count }), message_users([m])),
        UpdateKind::DeleteMessages(ids) => (enums::Update::DeleteMessages(types::UpdateDeleteMessages { messages: ids.clone(), pts, pts_count }), vec![]),
        UpdateKind::ReadHistoryInbox { peer: p, max_id, still_unread } => (
            enums::Update::ReadHistoryInbox(types::UpdateReadHistoryInbox {
                folder_id: None,
                peer: peer(*p),
                top_msg_id: None,
                max_id: *max_id,
                still_unread_count: *still_unread,
                pts,
                pts_count,
            }),
            vec![p.user_id()],
        ),
        UpdateKind::ReadHistoryOutbox { peer: p, max_id } => {
            (enums::Update::ReadHistoryOutbox(types::UpdateReadHistoryOutbox { peer: peer(*p), max_id: *max_id, pts, pts_count }), vec![p.user_id()])
        }
    }
}

pub fn dialog(d: &Dialog) -> enums::Dialog {
    let mut t = blank::dialog(peer(d.peer), notify_settings());
    t.top_message = d.top_message;
    t.read_inbox_max_id = d.read_inbox_max_id;
    t.read_outbox_max_id = d.read_outbox_max_id;
    t.unread_count = d.unread_count;
    enums::Dialog::Dialog(t)
}

pub fn notify_settings() -> enums::PeerNotifySettings {
    enums::PeerNotifySettings::Settings(blank::peer_notify_settings())
}

pub fn user_full(u: &User) -> enums::UserFull {
    let mut t = blank::user_full(enums::PeerSettings::Settings(blank::peer_settings()), notify_settings());
    t.id = u.id.0;
    t.about = (!u.about.is_empty()).then(|| u.about.clone());
    enums::UserFull::Full(t)
}
