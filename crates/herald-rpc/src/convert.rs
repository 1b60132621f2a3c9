//! Domain ↔ TL conversions. Users are always rendered from a viewer's point of view
//! (`self` flag, per-viewer access hash, phone only to its owner).

use crate::{blank, RpcError, Services};
use grammers_tl_types::{enums, types, Deserializable, Identifiable, Serializable};
use herald_domain::error::{AccountError, DomainError};
use herald_domain::files::FileService;
use herald_domain::model::*;
use herald_domain::presence::Status;
use herald_domain::privacy::{PrivacyKey, Viewer};

pub fn peer(p: Peer) -> enums::Peer {
    match p {
        Peer::User(u) => enums::Peer::User(types::PeerUser { user_id: u.0 }),
        Peer::Chat(g) => enums::Peer::Chat(types::PeerChat { chat_id: g.0 }),
        Peer::Channel(g) => enums::Peer::Channel(types::PeerChannel { channel_id: g.0 }),
    }
}

pub fn admin_rights_out(r: AdminRights) -> enums::ChatAdminRights {
    let h = |b| r.has(b);
    enums::ChatAdminRights::Rights(types::ChatAdminRights {
        change_info: h(AdminRights::CHANGE_INFO),
        post_messages: h(AdminRights::POST_MESSAGES),
        edit_messages: h(AdminRights::EDIT_MESSAGES),
        delete_messages: h(AdminRights::DELETE_MESSAGES),
        ban_users: h(AdminRights::BAN_USERS),
        invite_users: h(AdminRights::INVITE_USERS),
        pin_messages: h(AdminRights::PIN_MESSAGES),
        add_admins: h(AdminRights::ADD_ADMINS),
        anonymous: h(AdminRights::ANONYMOUS),
        manage_call: h(AdminRights::MANAGE_CALL),
        other: h(AdminRights::OTHER),
        manage_topics: false,
        post_stories: false,
        edit_stories: false,
        delete_stories: false,
        manage_direct_messages: false,
        manage_ranks: false,
    })
}

pub fn admin_rights_in(r: &enums::ChatAdminRights) -> AdminRights {
    let enums::ChatAdminRights::Rights(r) = r;
    let bits = [
        (r.change_info, AdminRights::CHANGE_INFO),
        (r.post_messages, AdminRights::POST_MESSAGES),
        (r.edit_messages, AdminRights::EDIT_MESSAGES),
        (r.delete_messages, AdminRights::DELETE_MESSAGES),
        (r.ban_users, AdminRights::BAN_USERS),
        (r.invite_users, AdminRights::INVITE_USERS),
        (r.pin_messages, AdminRights::PIN_MESSAGES),
        (r.add_admins, AdminRights::ADD_ADMINS),
        (r.anonymous, AdminRights::ANONYMOUS),
        (r.manage_call, AdminRights::MANAGE_CALL),
        (r.other, AdminRights::OTHER),
    ];
    AdminRights(bits.iter().filter(|(on, _)| *on).fold(0, |acc, (_, b)| acc | b))
}

/// Banned rights travel as their TL flag bits (the same numbering as [`BannedRights`]): the
/// object is decoded from its own wire form, which cannot fail (its flags are all `true`
/// fields, which read nothing).
pub fn banned_rights_out(r: BannedRights) -> enums::ChatBannedRights {
    let mut b = types::ChatBannedRights::CONSTRUCTOR_ID.to_le_bytes().to_vec();
    b.extend_from_slice(&r.bits.to_le_bytes());
    b.extend_from_slice(&r.until.to_le_bytes());
    enums::ChatBannedRights::from_bytes(&b).unwrap_or_else(|_| unreachable!("flags and a date always decode"))
}

pub fn banned_rights_in(r: &enums::ChatBannedRights) -> BannedRights {
    let bytes = r.to_bytes();
    // constructor id, flags, until_date
    let bits = u32::from_le_bytes(bytes[4..8].try_into().unwrap_or_default());
    let enums::ChatBannedRights::Rights(t) = r;
    BannedRights { bits, until: t.until_date }
}

/// A group as `viewer` sees it (member flags, rights, the per-viewer access hash).
pub fn chat(s: &Services, viewer: UserId, g: &Group, m: Option<&Member>) -> enums::Chat {
    let member = m.is_some_and(|m| m.role.is_member());
    let role = m.map(|m| m.role);
    if g.kind == GroupKind::Basic {
        return enums::Chat::Chat(types::Chat {
            creator: role == Some(Role::Creator),
            left: !member,
            deactivated: g.migrated_to.is_some(),
            call_active: false,
            call_not_empty: false,
            noforwards: false,
            id: g.id.0,
            title: g.title.clone(),
            photo: chat_photo(s, g),
            participants_count: g.participants_count,
            date: g.date,
            version: g.version,
            migrated_to: g
                .migrated_to
                .map(|c| enums::InputChannel::Channel(types::InputChannel { channel_id: c.0, access_hash: s.accounts.channel_access_hash(viewer, c) })),
            admin_rights: m.filter(|m| m.role.is_admin()).map(|m| admin_rights_out(m.admin_rights)),
            default_banned_rights: Some(banned_rights_out(g.default_banned)),
        });
    }
    let access_hash = s.accounts.channel_access_hash(viewer, g.id);
    if g.deleted || role == Some(Role::Kicked) {
        return enums::Chat::ChannelForbidden(types::ChannelForbidden {
            broadcast: g.kind == GroupKind::Broadcast,
            megagroup: g.kind == GroupKind::Megagroup,
            monoforum: false,
            id: g.id.0,
            access_hash,
            title: g.title.clone(),
            until_date: m.filter(|m| m.banned.until > 0).map(|m| m.banned.until),
        });
    }
    let mut t = blank::channel(chat_photo(s, g));
    t.creator = role == Some(Role::Creator);
    t.left = !member;
    t.broadcast = g.kind == GroupKind::Broadcast;
    t.megagroup = g.kind == GroupKind::Megagroup;
    t.signatures = g.signatures;
    t.slowmode_enabled = g.slowmode_seconds > 0;
    t.id = g.id.0;
    t.access_hash = Some(access_hash);
    t.title = g.title.clone();
    t.username = g.username.clone();
    t.date = g.date;
    t.admin_rights = m.filter(|m| m.role.is_admin()).map(|m| admin_rights_out(m.admin_rights));
    t.banned_rights = m.filter(|m| m.role == Role::Restricted).map(|m| banned_rights_out(m.banned));
    t.default_banned_rights = Some(banned_rights_out(g.default_banned));
    t.participants_count = Some(g.participants_count);
    enums::Chat::Channel(t)
}

/// TL chats for `ids` as `viewer` sees them (duplicates and unknown ids dropped).
pub async fn chats(s: &Services, viewer: UserId, ids: impl IntoIterator<Item = GroupId>) -> Result<Vec<enums::Chat>, RpcError> {
    let mut ids: Vec<GroupId> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    Ok(s.groups.known(viewer, &ids).await?.iter().map(|(g, m)| chat(s, viewer, g, m.as_ref())).collect())
}

/// The groups a set of messages mentions (peers and migration links).
pub fn message_groups<'a>(msgs: impl IntoIterator<Item = &'a Message>) -> Vec<GroupId> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend(m.peer.group());
        if let Some(f) = &m.fwd {
            out.extend(f.from.group());
            out.extend(f.saved_from.and_then(|(p, _)| p.group()));
        }
        match &m.action {
            Some(Action::ChatMigrateTo { channel }) => out.push(GroupId(*channel)),
            Some(Action::ChannelMigrateFrom { chat, .. }) => out.push(GroupId(*chat)),
            _ => {}
        }
    }
    out
}

/// `u` for `viewer` without knowing how they relate (pushes rendered once for many
/// receivers): as to a stranger, whatever the viewer, so every receiver's copy is the same —
/// the status approximate, no phone number, the profile names. Oneself sees it all.
pub fn user(s: &Services, viewer: UserId, u: &User) -> enums::User {
    render_user(s, viewer, u, None, None)
}

/// A user as `viewer` sees them, knowing `viewer`'s contact entry for them, whether they have
/// `viewer` in their contacts and whether they blocked `viewer` (client-compat §4.9, §4.10,
/// §4.19): a contact shows under the names
/// `viewer` gave, with `contact` / `mutual_contact`; the phone number and the exact status
/// show as the user's privacy settings allow (phone: to their contacts by default; last
/// seen: to everybody by default), and the number also to whoever added them by it. A
/// status the viewer may not see shows as "recently", "last week" or "last month".
pub fn seen_user(s: &Services, viewer: UserId, seen: &SeenUser) -> enums::User {
    // Whom a user blocked sees them as a stranger does (Telegram hides status and photo).
    let relation = if seen.blocked_viewer { None } else { Some(seen.has_viewer) };
    render_user(s, viewer, &seen.user, seen.contact.as_ref(), relation)
}

fn render_user(s: &Services, viewer: UserId, u: &User, contact: Option<&Contact>, has_viewer: Option<bool>) -> enums::User {
    let mut t = blank::user();
    t.id = u.id.0;
    t.is_self = viewer == u.id;
    t.access_hash = Some(s.accounts.access_hash(viewer, u.id));
    if u.deleted {
        // "Deleted Account": no name, number, username or status, as Telegram shows it.
        t.deleted = true;
        return enums::User::User(t);
    }
    let (first, last) = match contact {
        Some(c) => (&c.first_name, &c.last_name),
        None => (&u.first_name, &u.last_name),
    };
    t.first_name = Some(first.clone());
    t.last_name = (!last.is_empty()).then(|| last.clone());
    t.username = u.username.clone();
    t.contact = contact.is_some();
    t.mutual_contact = contact.is_some() && has_viewer == Some(true);
    let sees =
        |key: PrivacyKey| viewer == u.id || has_viewer.is_some_and(|contact| u.privacy.allows(key, u.id, Viewer { id: viewer, contact, common_chats: &[] }));
    let knows_number = contact.is_some_and(|c| !c.phone.is_empty() && c.phone == u.phone);
    t.photo = u.photo_id.filter(|_| sees(PrivacyKey::ProfilePhoto)).map(|photo_id| {
        enums::UserProfilePhoto::Photo(types::UserProfilePhoto {
            has_video: false,
            personal: false,
            photo_id,
            stripped_thumb: u.photo_stripped.clone(),
            dc_id: s.files.dc_id(),
        })
    });
    t.phone = (knows_number || sees(PrivacyKey::PhoneNumber)).then(|| u.phone.clone());
    t.verified = u.is_service;
    t.support = u.is_service;
    let st = s.accounts.status(u);
    t.status = Some(if u.is_service {
        enums::UserStatus::Empty
    } else if sees(PrivacyKey::StatusTimestamp) {
        status(st)
    } else {
        approximate(st, s.clock.now_secs())
    });
    enums::User::User(t)
}

/// A status for one who may not see the exact one: online or seen within 3 days is
/// "recently", within a week "last week", within a month "last month", else "long ago".
pub fn approximate(st: Status, now: i64) -> enums::UserStatus {
    let seen = match st {
        Status::Online { .. } | Status::Unknown => now,
        Status::Offline { was_online } => was_online,
    };
    match now - seen {
        age if age <= 3 * 86_400 => enums::UserStatus::Recently(types::UserStatusRecently { by_me: false }),
        age if age <= 7 * 86_400 => enums::UserStatus::LastWeek(types::UserStatusLastWeek { by_me: false }),
        age if age <= 30 * 86_400 => enums::UserStatus::LastMonth(types::UserStatusLastMonth { by_me: false }),
        _ => enums::UserStatus::Empty,
    }
}

/// TL users for `ids` as `viewer` sees them (duplicates and unknown ids dropped).
pub async fn users(s: &Services, viewer: UserId, ids: impl IntoIterator<Item = UserId>) -> Result<Vec<enums::User>, RpcError> {
    let mut ids: Vec<UserId> = ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    Ok(s.accounts.users_seen_by(viewer, &ids).await?.iter().map(|u| seen_user(s, viewer, u)).collect())
}

/// A group's current photo as its `chat`/`channel` carries it (downloaded with
/// `inputPeerPhotoFileLocation` on the group).
fn chat_photo(s: &Services, g: &Group) -> enums::ChatPhoto {
    match g.photo_id {
        Some(photo_id) => {
            enums::ChatPhoto::Photo(types::ChatPhoto { has_video: false, photo_id, stripped_thumb: g.photo_stripped.clone(), dc_id: s.files.dc_id() })
        }
        None => enums::ChatPhoto::Empty,
    }
}

fn service_action_out(f: &FileService, viewer: UserId, a: &Action) -> enums::MessageAction {
    use enums::MessageAction as A;
    match a {
        Action::ChatEditPhoto { photo: p } => A::ChatEditPhoto(types::MessageActionChatEditPhoto { photo: photo(f, viewer, p) }),
        Action::ChatDeletePhoto => A::ChatDeletePhoto,
        Action::ChatCreate { title, users } => A::ChatCreate(types::MessageActionChatCreate { title: title.clone(), users: users.clone() }),
        Action::ChatAddUser { users } => A::ChatAddUser(types::MessageActionChatAddUser { users: users.clone() }),
        Action::ChatDeleteUser { user } => A::ChatDeleteUser(types::MessageActionChatDeleteUser { user_id: *user }),
        Action::ChatJoinedByLink { inviter } => A::ChatJoinedByLink(types::MessageActionChatJoinedByLink { inviter_id: *inviter }),
        Action::ChatJoinedByRequest => A::ChatJoinedByRequest,
        Action::ChatEditTitle { title } => A::ChatEditTitle(types::MessageActionChatEditTitle { title: title.clone() }),
        Action::ChannelCreate { title } => A::ChannelCreate(types::MessageActionChannelCreate { title: title.clone() }),
        Action::ChatMigrateTo { channel } => A::ChatMigrateTo(types::MessageActionChatMigrateTo { channel_id: *channel }),
        Action::ChannelMigrateFrom { title, chat } => A::ChannelMigrateFrom(types::MessageActionChannelMigrateFrom { title: title.clone(), chat_id: *chat }),
        Action::PinMessage => A::PinMessage,
        Action::SetMessagesTtl { period } => A::SetMessagesTtl(types::MessageActionSetMessagesTtl { period: *period, auto_setting_from: None }),
    }
}

fn reply_header(id: i32) -> enums::MessageReplyHeader {
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
}

/// A message as `viewer` sees it (`out` is per viewer in channel boxes; a broadcast post is
/// the channel's, with its view counter).
pub fn message(f: &FileService, viewer: UserId, m: &Message) -> enums::Message {
    let from = (!m.post).then(|| peer(Peer::User(m.from)));
    if let Some(action) = &m.action {
        let mut t = blank::message_service(peer(m.peer), service_action_out(f, viewer, action));
        t.id = m.id;
        t.out = m.out_for(viewer);
        t.from_id = from;
        t.post = m.post;
        t.date = m.date;
        t.reply_to = m.reply_to.map(reply_header);
        return enums::Message::Service(t);
    }
    let mut t = blank::message(peer(m.peer));
    t.id = m.id;
    t.out = m.out_for(viewer);
    t.mentioned = m.mentions.contains(&viewer.0);
    t.pinned = m.pinned;
    t.from_id = from;
    t.post = m.post;
    // `views` and `forwards` share one flag bit (flags.10): both or neither.
    t.views = m.views;
    t.forwards = m.views.map(|_| 0);
    t.post_author = m.post_author.clone();
    t.date = m.date;
    t.message = m.text.clone();
    t.entities = (!m.entities.is_empty()).then(|| entities_out(&m.entities));
    t.edit_date = m.edit_date;
    t.reply_to = m.reply_to.map(reply_header);
    t.fwd_from = m.fwd.as_deref().map(fwd_header);
    t.reactions = m.reactions.as_deref().map(|r| reactions(viewer, r, !m.post));
    t.ttl_period = m.ttl_period;
    t.media = m.media.as_deref().map(|media| message_media(f, viewer, media));
    t.grouped_id = m.grouped_id;
    enums::Message::Message(t)
}

/// A message's media for `viewer`: the file addressed with the viewer's access hash and a
/// fresh file reference, on this server's DC (clients fetch a file from the DC it names).
pub fn message_media(f: &FileService, viewer: UserId, media: &Media) -> enums::MessageMedia {
    match media {
        Media::Document(d) => enums::MessageMedia::Document(types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(document(f, viewer, d)),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }),
        Media::Photo(p) => enums::MessageMedia::Photo(types::MessageMediaPhoto {
            spoiler: false,
            live_photo: false,
            photo: Some(photo(f, viewer, p)),
            ttl_seconds: None,
            video: None,
        }),
    }
}

/// A photo's sizes (or a document's thumbnails): the stripped one (`i`, inline) first, then
/// the stored ones, smallest first (Telethon downloads the largest).
fn photo_sizes(p: &FileMeta) -> Vec<enums::PhotoSize> {
    let stripped = p.stripped.iter().map(|b| enums::PhotoSize::PhotoStrippedSize(types::PhotoStrippedSize { r#type: "i".into(), bytes: b.clone() }));
    stripped.chain(p.sizes.iter().map(|s| enums::PhotoSize::Size(types::PhotoSize { r#type: s.kind.clone(), w: s.w, h: s.h, size: s.size as i32 }))).collect()
}

/// A photo for `viewer`: its sizes, smallest first (Telethon downloads the largest).
pub fn photo(f: &FileService, viewer: UserId, p: &FileMeta) -> enums::Photo {
    enums::Photo::Photo(types::Photo {
        has_stickers: false,
        id: p.id,
        access_hash: f.access_hash(viewer, p.id),
        file_reference: f.reference(p.id),
        date: p.date,
        sizes: photo_sizes(p),
        video_sizes: None,
        dc_id: f.dc_id(),
    })
}

pub fn document(f: &FileService, viewer: UserId, d: &FileMeta) -> enums::Document {
    enums::Document::Document(types::Document {
        id: d.id,
        access_hash: f.access_hash(viewer, d.id),
        file_reference: f.reference(d.id),
        date: d.date,
        mime_type: d.mime.clone(),
        size: d.size,
        thumbs: (!d.sizes.is_empty()).then(|| photo_sizes(d)),
        video_thumbs: None,
        dc_id: f.dc_id(),
        attributes: d.attributes.iter().map(doc_attr_out).collect(),
    })
}

fn doc_attr_out(a: &DocAttr) -> enums::DocumentAttribute {
    use enums::DocumentAttribute as A;
    match a {
        DocAttr::Filename(n) => A::Filename(types::DocumentAttributeFilename { file_name: n.clone() }),
        DocAttr::ImageSize { w, h } => A::ImageSize(types::DocumentAttributeImageSize { w: *w, h: *h }),
        DocAttr::Animated => A::Animated,
        DocAttr::Video { duration_ms, w, h, round, streaming, nosound } => A::Video(types::DocumentAttributeVideo {
            round_message: *round,
            supports_streaming: *streaming,
            nosound: *nosound,
            duration: *duration_ms as f64 / 1000.0,
            w: *w,
            h: *h,
            preload_prefix_size: None,
            video_start_ts: None,
            video_codec: None,
        }),
        DocAttr::Audio { duration, voice, title, performer } => {
            A::Audio(types::DocumentAttributeAudio { voice: *voice, duration: *duration, title: title.clone(), performer: performer.clone(), waveform: None })
        }
        DocAttr::Sticker { alt } => {
            A::Sticker(types::DocumentAttributeSticker { mask: false, alt: alt.clone(), stickerset: enums::InputStickerSet::Empty, mask_coords: None })
        }
    }
}

/// The attributes a client gave, as stored (bounded strings; unknown kinds dropped).
pub fn doc_attrs_in(attrs: &[enums::DocumentAttribute]) -> Vec<DocAttr> {
    use enums::DocumentAttribute as A;
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    attrs
        .iter()
        .take(16)
        .filter_map(|a| match a {
            A::Filename(f) => Some(DocAttr::Filename(f.file_name.clone())),
            A::ImageSize(i) => Some(DocAttr::ImageSize { w: i.w, h: i.h }),
            A::Animated => Some(DocAttr::Animated),
            A::Video(v) => Some(DocAttr::Video {
                duration_ms: (v.duration.clamp(0.0, 1e9) * 1000.0) as i64,
                w: v.w,
                h: v.h,
                round: v.round_message,
                streaming: v.supports_streaming,
                nosound: v.nosound,
            }),
            A::Audio(a) => Some(DocAttr::Audio {
                duration: a.duration,
                voice: a.voice,
                title: a.title.as_deref().map(|t| cut(t, 256)),
                performer: a.performer.as_deref().map(|t| cut(t, 256)),
            }),
            A::Sticker(st) => Some(DocAttr::Sticker { alt: cut(&st.alt, 16) }),
            _ => None,
        })
        .collect()
}

/// A message's reactions as `viewer` sees them: their own marked as chosen, and who reacted
/// when the chat lets members see that (`list`; not on broadcast posts).
pub fn reactions(viewer: UserId, r: &Reactions, list: bool) -> enums::MessageReactions {
    let emoji = |e: &str| enums::Reaction::Emoji(types::ReactionEmoji { emoticon: e.to_string() });
    let mine = r.recent.iter().find(|(u, _, _)| *u == viewer.0).map(|(_, e, _)| e.as_str());
    enums::MessageReactions::Reactions(types::MessageReactions {
        min: false,
        can_see_list: list,
        reactions_as_tags: false,
        results: r
            .counts
            .iter()
            .map(|(e, n)| {
                enums::ReactionCount::Count(types::ReactionCount { chosen_order: (mine == Some(e.as_str())).then_some(0), reaction: emoji(e), count: *n })
            })
            .collect(),
        recent_reactions: list.then(|| {
            r.recent
                .iter()
                .map(|(u, e, date)| {
                    enums::MessagePeerReaction::Reaction(types::MessagePeerReaction {
                        big: false,
                        unread: false,
                        my: *u == viewer.0,
                        peer_id: peer(Peer::User(UserId(*u))),
                        date: *date,
                        reaction: emoji(e),
                    })
                })
                .collect()
        }),
        top_reactors: None,
    })
}

fn fwd_header(f: &Forward) -> enums::MessageFwdHeader {
    enums::MessageFwdHeader::Header(types::MessageFwdHeader {
        imported: false,
        saved_out: false,
        from_id: f.hidden_name.is_none().then(|| peer(f.from)),
        from_name: f.hidden_name.clone(),
        date: f.date,
        channel_post: f.channel_post,
        post_author: f.post_author.clone(),
        saved_from_peer: f.saved_from.map(|(p, _)| peer(p)),
        saved_from_msg_id: f.saved_from.map(|(_, id)| id),
        saved_from_id: None,
        saved_from_name: None,
        saved_date: None,
        psa_type: None,
    })
}

/// The users a set of messages mentions (senders, peers, users named by service actions).
pub fn message_users<'a>(msgs: impl IntoIterator<Item = &'a Message>) -> Vec<UserId> {
    let mut out = Vec::new();
    for m in msgs {
        out.push(m.from);
        out.extend(m.peer.user());
        if let Some(f) = &m.fwd {
            out.extend(f.from.user().filter(|_| f.hidden_name.is_none()));
            out.extend(f.saved_from.and_then(|(p, _)| p.user()));
        }
        // Who reacted is shown except on broadcast posts (see `message`).
        if let Some(r) = m.reactions.as_ref().filter(|_| !m.post) {
            out.extend(r.recent.iter().map(|(u, _, _)| UserId(*u)));
        }
        match &m.action {
            Some(Action::ChatCreate { users, .. }) | Some(Action::ChatAddUser { users }) => out.extend(users.iter().map(|u| UserId(*u))),
            Some(Action::ChatDeleteUser { user }) => out.push(UserId(*user)),
            Some(Action::ChatJoinedByLink { inviter }) => out.push(UserId(*inviter)),
            _ => {}
        }
    }
    out
}

/// A status as TL: online with its expiry, offline with the last-seen time, or "recently"
/// when nothing is known (a service account: no status).
pub fn status(st: Status) -> enums::UserStatus {
    match st {
        Status::Online { expires } => enums::UserStatus::Online(types::UserStatusOnline { expires: expires as i32 }),
        Status::Offline { was_online } => enums::UserStatus::Offline(types::UserStatusOffline { was_online: was_online as i32 }),
        Status::Unknown => enums::UserStatus::Recently(types::UserStatusRecently { by_me: false }),
    }
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

/// Resolves an `InputPeer` to a peer the caller may address: a user (checked access hash),
/// a basic group the caller has been in, or a channel (checked access hash). PEER_ID_INVALID
/// otherwise (CHANNEL_INVALID for a channel with a wrong hash).
pub async fn input_peer(s: &Services, me: UserId, p: &enums::InputPeer) -> Result<Peer, RpcError> {
    match p {
        enums::InputPeer::PeerSelf => Ok(Peer::User(me)),
        enums::InputPeer::User(u) => Ok(Peer::User(s.accounts.check_access(me, UserId(u.user_id), u.access_hash, AccountError::PeerIdInvalid).await?.id)),
        enums::InputPeer::Chat(c) => {
            let id = GroupId(c.chat_id);
            match s.groups.known(me, &[id]).await?.into_iter().next() {
                Some((g, Some(_))) if g.kind == GroupKind::Basic => Ok(Peer::Chat(id)),
                _ => Err(DomainError::from(AccountError::PeerIdInvalid).into()),
            }
        }
        enums::InputPeer::Channel(c) => Ok(Peer::Channel(channel_id(s, me, c.channel_id, c.access_hash).await?)),
        _ => Err(DomainError::from(AccountError::PeerIdInvalid).into()),
    }
}

/// A private chat's user, or PEER_ID_INVALID for anything else.
pub async fn input_peer_user(s: &Services, me: UserId, p: &enums::InputPeer) -> Result<UserId, RpcError> {
    match input_peer(s, me, p).await? {
        Peer::User(u) => Ok(u),
        _ => Err(DomainError::from(AccountError::PeerIdInvalid).into()),
    }
}

/// A channel by id and the caller's access hash (0 for channels the caller is in, as Telethon
/// sends after losing its cache, client-compat.md §4.1), or CHANNEL_INVALID.
async fn channel_id(s: &Services, me: UserId, id: i64, hash: i64) -> Result<GroupId, RpcError> {
    let g = GroupId(id);
    let ok = if hash == 0 { s.groups.member(g, me).await?.is_some() } else { hash == s.accounts.channel_access_hash(me, g) };
    let is_channel = ok && s.groups.known(me, &[g]).await?.first().is_some_and(|(g, _)| g.kind.is_channel());
    if !is_channel {
        return Err(DomainError::from(herald_domain::error::GroupError::ChannelInvalid).into());
    }
    Ok(g)
}

pub async fn input_channel(s: &Services, me: UserId, c: &enums::InputChannel) -> Result<GroupId, RpcError> {
    match c {
        enums::InputChannel::Channel(c) => channel_id(s, me, c.channel_id, c.access_hash).await,
        _ => Err(DomainError::from(herald_domain::error::GroupError::ChannelInvalid).into()),
    }
}

/// A basic group by id for `messages.*Chat*` calls (the caller must have been in it).
pub async fn chat_id(s: &Services, me: UserId, id: i64) -> Result<GroupId, RpcError> {
    match s.groups.known(me, &[GroupId(id)]).await?.into_iter().next() {
        Some((g, Some(_))) if g.kind == GroupKind::Basic => Ok(g.id),
        _ => Err(DomainError::from(herald_domain::error::GroupError::ChatIdInvalid).into()),
    }
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

/// The message a send or a draft replies to (other reply kinds: none).
pub fn reply_to_id(r: Option<enums::InputReplyTo>) -> Option<i32> {
    match r {
        Some(enums::InputReplyTo::Message(m)) => Some(m.reply_to_msg_id),
        _ => None,
    }
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

/// A box update as TL for `viewer`, plus the users and groups it mentions.
/// A difference's updates as clients take them: new messages apart, every other update in
/// `other_updates`, with the users and groups they name (client-compat.md §4.4).
#[derive(Default)]
pub struct SplitDifference {
    pub new_messages: Vec<enums::Message>,
    pub other_updates: Vec<enums::Update>,
    pub users: Vec<UserId>,
    pub groups: Vec<GroupId>,
}

pub fn split_difference(f: &FileService, viewer: UserId, owner: BoxId, updates: &[PtsUpdate]) -> SplitDifference {
    let mut out = SplitDifference::default();
    for u in updates {
        if let UpdateKind::NewMessage(m) = &u.kind {
            out.new_messages.push(message(f, viewer, m));
            out.users.extend(message_users([m]));
            out.groups.extend(message_groups([m]));
        } else {
            let (up, users, groups) = update(f, viewer, owner, u);
            out.other_updates.push(up);
            out.users.extend(users);
            out.groups.extend(groups);
        }
    }
    out
}

pub fn update(f: &FileService, viewer: UserId, owner: BoxId, u: &PtsUpdate) -> (enums::Update, Vec<UserId>, Vec<GroupId>) {
    let (pts, pts_count) = (u.pts, u.pts_count);
    let channel = owner.channel();
    let (update, users) = match (&u.kind, channel) {
        (UpdateKind::NewMessage(m), None) => {
            (enums::Update::NewMessage(types::UpdateNewMessage { message: message(f, viewer, m), pts, pts_count }), message_users([m]))
        }
        (UpdateKind::NewMessage(m), Some(_)) => {
            (enums::Update::NewChannelMessage(types::UpdateNewChannelMessage { message: message(f, viewer, m), pts, pts_count }), message_users([m]))
        }
        (UpdateKind::EditMessage(m), None) => {
            (enums::Update::EditMessage(types::UpdateEditMessage { message: message(f, viewer, m), pts, pts_count }), message_users([m]))
        }
        (UpdateKind::EditMessage(m), Some(_)) => {
            (enums::Update::EditChannelMessage(types::UpdateEditChannelMessage { message: message(f, viewer, m), pts, pts_count }), message_users([m]))
        }
        (UpdateKind::DeleteMessages(ids), None) => {
            (enums::Update::DeleteMessages(types::UpdateDeleteMessages { messages: ids.clone(), pts, pts_count }), vec![])
        }
        (UpdateKind::DeleteMessages(ids), Some(c)) => {
            (enums::Update::DeleteChannelMessages(types::UpdateDeleteChannelMessages { channel_id: c.0, messages: ids.clone(), pts, pts_count }), vec![])
        }
        (UpdateKind::ReadHistoryInbox { peer: p, max_id, still_unread }, _) => (
            enums::Update::ReadHistoryInbox(types::UpdateReadHistoryInbox {
                folder_id: None,
                peer: peer(*p),
                top_msg_id: None,
                max_id: *max_id,
                still_unread_count: *still_unread,
                pts,
                pts_count,
            }),
            p.user().into_iter().collect(),
        ),
        (UpdateKind::ReadHistoryOutbox { peer: p, max_id }, _) => (
            enums::Update::ReadHistoryOutbox(types::UpdateReadHistoryOutbox { peer: peer(*p), max_id: *max_id, pts, pts_count }),
            p.user().into_iter().collect(),
        ),
        (UpdateKind::PinnedMessages { peer: p, ids, pinned }, None) => (
            enums::Update::PinnedMessages(types::UpdatePinnedMessages { pinned: *pinned, peer: peer(*p), messages: ids.clone(), pts, pts_count }),
            p.user().into_iter().collect(),
        ),
        (UpdateKind::PinnedMessages { ids, pinned, .. }, Some(c)) => (
            enums::Update::PinnedChannelMessages(types::UpdatePinnedChannelMessages {
                pinned: *pinned,
                channel_id: c.0,
                messages: ids.clone(),
                pts,
                pts_count,
            }),
            vec![],
        ),
    };
    let mut groups: Vec<GroupId> = channel.into_iter().collect();
    if let UpdateKind::NewMessage(m) | UpdateKind::EditMessage(m) = &u.kind {
        groups.extend(message_groups([m]));
    }
    if let UpdateKind::ReadHistoryInbox { peer: p, .. } | UpdateKind::ReadHistoryOutbox { peer: p, .. } | UpdateKind::PinnedMessages { peer: p, .. } = &u.kind {
        groups.extend(p.group());
    }
    (update, users, groups)
}

pub fn dialog(d: &Dialog) -> enums::Dialog {
    let mut t = blank::dialog(peer(d.peer), notify_settings());
    t.top_message = d.top_message;
    t.read_inbox_max_id = d.read_inbox_max_id;
    t.read_outbox_max_id = d.read_outbox_max_id;
    t.unread_count = d.unread_count;
    t.unread_mentions_count = d.unread_mentions;
    t.pts = d.pts;
    t.unread_mark = d.unread_mark;
    t.pinned = d.pinned;
    t.folder_id = (d.folder != 0).then_some(d.folder);
    t.draft = d.draft.as_ref().map(draft);
    t.ttl_period = (d.ttl_period > 0).then_some(d.ttl_period);
    enums::Dialog::Dialog(t)
}

/// A dialog's draft (`draftMessageEmpty` when cleared).
pub fn draft(d: &Draft) -> enums::DraftMessage {
    enums::DraftMessage::Message(types::DraftMessage {
        no_webpage: false,
        invert_media: false,
        reply_to: d.reply_to.map(|id| {
            enums::InputReplyTo::Message(types::InputReplyToMessage {
                reply_to_msg_id: id,
                top_msg_id: None,
                reply_to_peer_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                monoforum_peer_id: None,
                todo_item_id: None,
                poll_option: None,
            })
        }),
        message: d.text.clone(),
        entities: (!d.entities.is_empty()).then(|| entities_out(&d.entities)),
        media: None,
        date: d.date,
        effect: None,
        suggested_post: None,
        rich_message: None,
    })
}

pub fn dialog_peer(p: Peer) -> enums::DialogPeer {
    enums::DialogPeer::Peer(types::DialogPeer { peer: peer(p) })
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
